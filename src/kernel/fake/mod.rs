//! A recording kernel: keeps a model of namespaces, links, addresses,
//! routes, sysctls and NAT tables, records every op, and refuses what the
//! real kernel would refuse (EEXIST, ENODEV, ENETUNREACH). `plan` and
//! `check FILE` run on it; unit tests check the planner, the runner and the
//! read-back commands with it. It sends no packets and runs no programs:
//! `exec` answers "not run"; `ping` too, unless a test has said which
//! pings are answered (`answers`). How each op changes the model is in
//! ops.rs.

mod ops;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{Addr, ExecOutput, Kernel, KernelError, Link, NotReady, NsState, TableInfo};
use crate::model::{IfName, NsName, NsRef};
use crate::op::{Op, Outcome};

#[derive(Debug, Default, Clone)]
pub struct Recorder {
    pub log: Vec<Op>,
    /// Keep no `log`: the diff's simulation only needs the state (a copy of
    /// every op, a NAT table of 100,000 mappings among them, for nothing).
    pub unlogged: bool,
    pub netns: BTreeMap<NsName, u64>,
    /// Shared: the diff seeds its simulation with what a caching kernel
    /// read, and copies a namespace only once an op changes it (a REPL
    /// statement diffing a thousand namespaces copied all of them).
    /// Read it freely; put states in through `seed` (the link index below
    /// must hear of it).
    pub state: BTreeMap<NsRef, Arc<NsState>>,
    pub sysctls: BTreeMap<(NsRef, String), String>,
    pub nat: BTreeMap<(NsRef, String), (u64, netplumb_nft::NatTable)>,
    /// Per-namespace files (/etc/netns/NS/NAME) by (namespace, /etc/NAME).
    pub files: BTreeMap<(NsName, String), Vec<u8>>,
    next_index: u32,
    next_ino: u64,
    next_handle: u64,
    /// `plan` / `check FILE`: an adopted device a script names is taken
    /// to exist (see `Kernel::assume_device`).
    pub assume_devices: bool,
    /// Devices assumed so far: once each, so one moved away is not
    /// assumed again at its old place by the next flush.
    assumed: BTreeSet<(NsRef, String)>,
    /// Fail the n-th op applied (0-based) with EPERM, once: for rollback tests.
    pub fail_at: Option<usize>,
    /// veth pairs: deleting one end, or the namespace of one end, deletes both.
    pairs: Vec<[(NsRef, String); 2]>,
    /// Where each end's pair is in `pairs`, for the first `pair_ix.0`
    /// pairs (a push only extends it); dropped when pairs go or are renamed.
    pair_ix: Option<(usize, PairIndex)>,
    /// Ids namespaces give each other, as the kernel assigns them on demand.
    nsids: BTreeMap<(NsRef, NsRef), i32>,
    /// The next id each namespace gives (None: to be found again from
    /// `nsids`, after ids went): a pass over `nsids` per new namespace made
    /// a plan of thousands of namespaces quadratic.
    nsid_next: Option<HashMap<NsRef, i32>>,
    /// Where each link is in its namespace's `links`, by name, so that
    /// asking for a link (or whether a name is free) is not a pass over
    /// the host's thousands. Made again from the list on the first lookup
    /// after anything here that renames, removes or reorders links, and
    /// whenever the list's length is not what the index counted (the
    /// state is public: a caller may replace it).
    link_pos: HashMap<NsRef, LinkPos>,
    /// (macvlan, parent): deleting the parent deletes the macvlan.
    uppers: Vec<[(NsRef, String); 2]>,
    /// The pings that get an answer, when a test says so (None: pings are
    /// "not run", the fake sends no packets).
    pub answers: Option<BTreeSet<(NsRef, IpAddr)>>,
}

/// One namespace's links by name (see `Recorder::link_pos`).
#[derive(Debug, Clone, Default)]
struct LinkPos {
    by_name: HashMap<String, usize>,
    len: usize,
}

/// Positions in `Recorder::pairs` by end.
type PairIndex = HashMap<(NsRef, String), Vec<usize>>;

fn enodev() -> KernelError {
    KernelError::errno(libc::ENODEV, "No such device")
}

impl Recorder {
    pub fn new() -> Self {
        let mut r = Self {
            next_index: 2,
            next_ino: 4_026_532_000,
            next_handle: 1,
            ..Self::default()
        };
        r.state.insert(NsRef::Host, Arc::new(Self::fresh_ns()));
        r
    }

    /// A new namespace as the kernel makes it, with `lo` up.
    fn fresh_ns() -> NsState {
        NsState {
            links: vec![Link {
                index: 1,
                name: "lo".into(),
                up: true,
                lower_up: true,
                oper: "UNKNOWN".into(),
                mtu: 65536,
                alias: Some(super::NETNS_MARK.into()),
                ..Link::default()
            }],
            // What the kernel gives `lo` once it is up.
            addrs: ["127.0.0.1/8", "::1/128"]
                .iter()
                .filter_map(|c| crate::model::Cidr::parse(c).ok())
                .map(|cidr| Addr {
                    index: 1,
                    cidr,
                    scope: "host".into(),
                    tentative: false,
                    flags: crate::kernel::IFA_F_PERMANENT,
                })
                .collect(),
            ..NsState::default()
        }
    }

    fn ns_mut(&mut self, ns: &NsRef) -> Result<&mut NsState, KernelError> {
        self.state
            .get_mut(ns)
            .map(Arc::make_mut)
            .ok_or_else(|| KernelError::errno(libc::ENOENT, format!("netns {ns} does not exist")))
    }

    fn add_link(&mut self, ns: &NsRef, name: &str, kind: &str) -> Result<u32, KernelError> {
        let index = self.next_index;
        if self.link_at(ns, name).is_some() {
            return Err(KernelError::errno(libc::EEXIST, "File exists"));
        }
        let st = self.ns_mut(ns)?;
        let at = st.links.len();
        st.links.push(Link {
            index,
            name: name.into(),
            kind: Some(kind.into()),
            oper: "DOWN".into(),
            mtu: 1500,
            stp: (kind == "bridge").then_some(false),
            mcast_snooping: (kind == "bridge").then_some(true),
            ..Link::default()
        });
        self.next_index += 1;
        // link_at just made the index whole for this list.
        if let Some(ix) = self.link_pos.get_mut(ns)
            && ix.len == at
        {
            ix.by_name.insert(name.to_string(), at);
            ix.len = at + 1;
        }
        Ok(index)
    }

    /// Links of `ns` were renamed, removed or reordered: its index is made
    /// again at the next lookup.
    pub(super) fn links_changed(&mut self, ns: &NsRef) {
        self.link_pos.remove(ns);
    }

    /// Put `st` in as what `ns` holds (the diff seeds the simulation with
    /// what it read).
    pub fn seed(&mut self, ns: NsRef, st: Arc<NsState>) {
        self.links_changed(&ns);
        self.state.insert(ns, st);
    }

    /// No namespace at all, the host's neither (before seeding).
    pub fn clear_state(&mut self) {
        self.state.clear();
        self.link_pos.clear();
    }

    /// The link `name` of `ns`, found through the index.
    pub fn find_link(&mut self, ns: &NsRef, name: &str) -> Option<&Link> {
        let p = self.link_at(ns, name)?;
        self.state.get(ns)?.links.get(p)
    }

    /// The position of link `name` in `ns`'s list.
    fn link_at(&mut self, ns: &NsRef, name: &str) -> Option<usize> {
        let links = &self.state.get(ns)?.links;
        if let Some(ix) = self.link_pos.get(ns)
            && ix.len == links.len()
        {
            // A hit is checked too: a rename in place keeps the length.
            match ix.by_name.get(name) {
                Some(&p) if links.get(p).is_some_and(|l| l.name == name) => return Some(p),
                None => return None,
                Some(_) => {}
            }
        }
        let ix = LinkPos {
            by_name: links
                .iter()
                .enumerate()
                .map(|(i, l)| (l.name.clone(), i))
                .collect(),
            len: links.len(),
        };
        let p = ix.by_name.get(name).copied();
        self.link_pos.insert(ns.clone(), ix);
        p
    }

    /// Remove these link ends (and forget their pairs).
    fn drop_ends(&mut self, ends: &[(NsRef, String)]) {
        for (ns, name) in ends {
            let Some(st) = self.state.get_mut(ns) else {
                continue;
            };
            let Some(p) = st.links.iter().position(|l| &l.name == name) else {
                continue;
            };
            let st = Arc::make_mut(st);
            let i = st.links[p].index;
            st.addrs.retain(|a| a.index != i);
            st.routes
                .retain(|r| r.oif != Some(i) && r.nexthops.iter().all(|h| h.oif != Some(i)));
            st.links.remove(p);
            // The index follows (a namespace's links going one by one,
            // each remaking it, was quadratic in what it holds).
            let len = st.links.len();
            if let Some(ix) = self.link_pos.get_mut(ns) {
                if ix.len == len + 1 && ix.by_name.get(name) == Some(&p) {
                    ix.by_name.remove(name);
                    for at in ix.by_name.values_mut().filter(|at| **at > p) {
                        *at -= 1;
                    }
                    ix.len = len;
                } else {
                    self.links_changed(ns);
                }
            }
        }
        self.pairs
            .retain(|p| !ends.contains(&p[0]) && !ends.contains(&p[1]));
        self.pair_ix = None;
        let children: Vec<(NsRef, String)> = self
            .uppers
            .iter()
            .filter(|u| ends.contains(&u[1]))
            .map(|u| u[0].clone())
            .collect();
        self.uppers
            .retain(|u| !ends.contains(&u[0]) && !ends.contains(&u[1]));
        if !children.is_empty() {
            self.drop_ends(&children);
        }
    }

    fn rename_end(&mut self, ns: &NsRef, name: &str, to_ns: &NsRef, to: &str) {
        self.pair_ix = None;
        for p in self.pairs.iter_mut().chain(self.uppers.iter_mut()) {
            for end in p.iter_mut() {
                if &end.0 == ns && end.1 == name {
                    *end = (to_ns.clone(), to.to_string());
                }
            }
        }
    }

    fn link_mut(&mut self, ns: &NsRef, name: &str) -> Result<&mut Link, KernelError> {
        let at = self.link_at(ns, name);
        let st = self.ns_mut(ns)?;
        at.and_then(|p| st.links.get_mut(p)).ok_or_else(enodev)
    }

    fn index_of(&mut self, ns: &NsRef, name: &str) -> Result<u32, KernelError> {
        Ok(self.link_mut(ns, name)?.index)
    }

    /// The id `from` gives `to`, assigned on first use like the kernel does.
    fn nsid_assign(&mut self, from: &NsRef, to: &NsRef) -> i32 {
        if let Some(id) = self.nsids.get(&(from.clone(), to.clone())) {
            return *id;
        }
        let nsids = &self.nsids;
        let nexts = self.nsid_next.get_or_insert_with(|| {
            let mut m: HashMap<NsRef, i32> = HashMap::new();
            for ((f, _), id) in nsids {
                let n = m.entry(f.clone()).or_insert(0);
                *n = (*n).max(id + 1);
            }
            m
        });
        let next = nexts.get(from).copied().unwrap_or(0);
        nexts.insert(from.clone(), next + 1);
        *self.nsids.entry((from.clone(), to.clone())).or_insert(next)
    }

    /// Recompute what the kernel derives: veth carrier (both ends up),
    /// operstate, peer pointers and bridge port state.
    fn settle_links(&mut self) {
        let pairs = self.pairs.clone();
        let all: Vec<NsRef> = self.state.keys().cloned().collect();
        self.settle(&pairs, &all);
    }

    /// `settle_links` for what one op can have changed: the pairs it made
    /// or set, and the namespaces they and the op are in. Settling all of
    /// them after every op made a plan of a thousand namespaces cubic.
    fn settle_after(&mut self, op: &Op) {
        let ends: Vec<(NsRef, &str)> = match op {
            Op::AddVeth {
                ns,
                name,
                peer_ns,
                peer,
                ..
            } => vec![
                (ns.clone(), name.as_str()),
                (peer_ns.clone(), peer.as_str()),
            ],
            Op::SetLink { ns, name, .. } => vec![(ns.clone(), name.as_str())],
            // No link's state depends on these.
            Op::AddAddr { .. }
            | Op::DelAddr { .. }
            | Op::AddRoute { .. }
            | Op::ReplaceRoute { .. }
            | Op::DelRoute { .. }
            | Op::Sysctl { .. }
            | Op::ReplaceNat { .. }
            | Op::DelNat { .. } => return,
            Op::AddNetns { .. } | Op::AddBridge { .. } => Vec::new(),
            // Rare, and they move or remove ends: everything.
            _ => return self.settle_links(),
        };
        let mut at: Vec<usize> = {
            let ix = self.pair_index();
            ends.iter()
                .filter_map(|(n, l)| ix.get(&(n.clone(), l.to_string())))
                .flatten()
                .copied()
                .collect()
        };
        at.sort_unstable();
        at.dedup();
        let pairs: Vec<[(NsRef, String); 2]> = at.iter().map(|&i| self.pairs[i].clone()).collect();
        let mut nss: Vec<NsRef> = vec![op.ns()];
        for p in &pairs {
            for (n, _) in p {
                if !nss.contains(n) {
                    nss.push(n.clone());
                }
            }
        }
        // Only the links of those pairs and the op can have changed: a pass
        // over every link of the host per op made planning 3,000 namespaces
        // quadratic. A new namespace or bridge settles its namespace whole.
        let mut touched: Vec<(NsRef, String)> = pairs.iter().flatten().cloned().collect();
        touched.extend(ends.iter().map(|(n, l)| (n.clone(), l.to_string())));
        let only = (!ends.is_empty()).then_some(touched.as_slice());
        self.settle_only(&pairs, &nss, only);
    }

    /// `pair_ix`, brought up to date with pushes since it was made.
    fn pair_index(&mut self) -> &PairIndex {
        let (covered, ix) = self.pair_ix.get_or_insert_with(|| (0, HashMap::new()));
        for (i, p) in self.pairs.iter().enumerate().skip(*covered) {
            for end in p {
                ix.entry(end.clone()).or_default().push(i);
            }
        }
        *covered = self.pairs.len();
        ix
    }

    fn settle(&mut self, pairs: &[[(NsRef, String); 2]], nss: &[NsRef]) {
        self.settle_only(pairs, nss, None);
    }

    /// `settle`, recomputing in `nss` only the links named in `only` (all
    /// of them when None).
    fn settle_only(
        &mut self,
        pairs: &[[(NsRef, String); 2]],
        nss: &[NsRef],
        only: Option<&[(NsRef, String)]>,
    ) {
        for [a, b] in pairs {
            let find = |s: &mut Self, (ns, n): &(NsRef, String)| {
                let p = s.link_at(ns, n)?;
                s.state
                    .get(ns)
                    .and_then(|st| st.links.get(p))
                    .map(|l| (l.index, l.up))
            };
            let (Some((ia, ua)), Some((ib, ub))) = (find(self, a), find(self, b)) else {
                continue;
            };
            let id_ab = (a.0 != b.0).then(|| self.nsid_assign(&a.0, &b.0));
            let id_ba = (a.0 != b.0).then(|| self.nsid_assign(&b.0, &a.0));
            for ((ns, n), peer, id) in [(a, ib, id_ab), (b, ia, id_ba)] {
                if let Ok(l) = self.link_mut(ns, n) {
                    l.peer = Some(peer);
                    l.peer_netnsid = id;
                    l.lower_up = ua && ub;
                }
            }
        }
        for ns in nss {
            match only {
                Some(o) => self.settle_named(ns, o),
                None => self.settle_ns(ns),
            }
        }
    }

    /// Every link of `ns`.
    fn settle_ns(&mut self, ns: &NsRef) {
        let Some(st) = self.state.get_mut(ns) else {
            return;
        };
        let bridges: BTreeSet<u32> = st
            .links
            .iter()
            .filter(|l| l.is_bridge())
            .map(|l| l.index)
            .collect();
        let on_bridge = |l: &Link| l.master.is_some_and(|m| bridges.contains(&m));
        // Looked at first, copied only when something changes: the state
        // may be shared with what a caching kernel read.
        if !st.links.iter().any(|l| is_stale(l, on_bridge(l))) {
            return;
        }
        let new: Vec<_> = st.links.iter().map(|l| derived(l, on_bridge(l))).collect();
        for (l, d) in Arc::make_mut(st).links.iter_mut().zip(new) {
            put_derived(l, d);
        }
    }

    /// The links of `ns` that `only` names, found by name: a pass over
    /// every link of the host per op made planning thousands of
    /// namespaces quadratic.
    fn settle_named(&mut self, ns: &NsRef, only: &[(NsRef, String)]) {
        for (_, name) in only.iter().filter(|(n, _)| n == ns) {
            let Some(p) = self.link_at(ns, name) else {
                continue;
            };
            let Some(st) = self.state.get_mut(ns) else {
                return;
            };
            let Some(l) = st.links.get(p) else { continue };
            let on_bridge = l
                .master
                .is_some_and(|m| st.links.iter().any(|b| b.index == m && b.is_bridge()));
            if !is_stale(l, on_bridge) {
                continue;
            }
            let d = derived(l, on_bridge);
            if let Some(l) = Arc::make_mut(st).links.get_mut(p) {
                put_derived(l, d);
            }
        }
    }
}

/// What the kernel derives for `l`: its operstate (None: left as it is)
/// and its bridge port state.
fn derived(l: &Link, on_bridge: bool) -> (Option<&'static str>, Option<u8>) {
    let oper = if l.kind.as_deref() == Some("vxlan") {
        // No carrier of its own to report, as the kernel says.
        Some(if l.up { "UNKNOWN" } else { "DOWN" })
    } else if l.kind.as_deref() == Some("tun") {
        // No carrier until a program opens it.
        Some("DOWN")
    } else if l.kind.as_deref() == Some("macvlan") {
        Some(if l.up { "UP" } else { "DOWN" })
    } else if l.kind.as_deref() == Some("veth") || l.is_bridge() {
        Some(if l.up && (l.lower_up || l.is_bridge()) {
            "UP"
        } else if l.up {
            "LOWERLAYERDOWN"
        } else {
            "DOWN"
        })
    } else {
        None
    };
    let port = on_bridge.then_some(if l.up { 3 } else { 0 });
    (oper, port)
}

fn is_stale(l: &Link, on_bridge: bool) -> bool {
    let (oper, port) = derived(l, on_bridge);
    oper.is_some_and(|o| l.oper != o) || l.port_state != port
}

fn put_derived(l: &mut Link, (oper, port): (Option<&'static str>, Option<u8>)) {
    if let Some(o) = oper {
        l.oper = o.into();
    }
    l.port_state = port;
}

impl Kernel for Recorder {
    fn assume_device(&mut self, ns: &NsRef, name: &str) -> bool {
        if !self.assume_devices || !self.assumed.insert((ns.clone(), name.to_string())) {
            return false;
        }
        let index = self.next_index;
        let Some(st) = self.state.get_mut(ns) else {
            return false;
        };
        if st.link(name).is_some() {
            return false;
        }
        Arc::make_mut(st).links.push(Link {
            index,
            name: name.to_string(),
            oper: "DOWN".into(),
            mtu: 1500,
            ..Link::default()
        });
        self.links_changed(ns);
        self.next_index += 1;
        true
    }

    fn netns_list(&mut self) -> Result<Vec<NsName>, KernelError> {
        Ok(self.netns.keys().cloned().collect())
    }

    fn netns_ino(&mut self, ns: &NsName) -> Result<Option<u64>, KernelError> {
        Ok(self.netns.get(ns).copied())
    }

    fn observe(&mut self, ns: &NsRef) -> Result<NsState, KernelError> {
        self.state
            .get(ns)
            .map(|st| NsState::clone(st))
            .ok_or_else(|| KernelError::errno(libc::ENOENT, format!("netns {ns} does not exist")))
    }

    fn nsid(&mut self, from: &NsRef, to: &NsRef) -> Result<Option<i32>, KernelError> {
        Ok(self.nsids.get(&(from.clone(), to.clone())).copied())
    }

    fn sysctl_get(&mut self, ns: &NsRef, key: &str) -> Result<Option<String>, KernelError> {
        Ok(Some(
            self.sysctls
                .get(&(ns.clone(), key.to_string()))
                .cloned()
                .unwrap_or_else(|| "0".into()),
        ))
    }

    fn nat_info(&mut self, ns: &NsRef, table: &str) -> Result<Option<TableInfo>, KernelError> {
        Ok(self
            .nat
            .get(&(ns.clone(), table.to_string()))
            .map(|(handle, t)| TableInfo {
                handle: *handle,
                userdata: t.userdata.clone(),
            }))
    }

    fn nat_table(
        &mut self,
        ns: &NsRef,
        table: &str,
    ) -> Result<Option<netplumb_nft::NatTable>, KernelError> {
        Ok(self
            .nat
            .get(&(ns.clone(), table.to_string()))
            .map(|(_, t)| t.clone()))
    }

    fn sysctl_scope(&mut self, _key: &str) -> Result<super::SysctlScope, KernelError> {
        // The fake has no kernel to ask; the model already refused non-net keys.
        Ok(super::SysctlScope::PerNetns)
    }

    fn etc_read(&mut self, ns: &NsName, path: &str) -> Result<Option<Vec<u8>>, KernelError> {
        Ok(self.files.get(&(ns.clone(), path.to_string())).cloned())
    }

    fn nat_summary(
        &mut self,
        ns: &NsRef,
        table: &str,
    ) -> Result<Option<netplumb_nft::TableSummary>, KernelError> {
        // What the kernel would read back after making the table.
        Ok(self
            .nat
            .get(&(ns.clone(), table.to_string()))
            .map(|(_, t)| netplumb_nft::summarize(t)))
    }

    fn apply_all(&mut self, ops: &[Op]) -> Outcome<KernelError> {
        let mut applied = vec![None; ops.len()];
        for (i, op) in ops.iter().enumerate() {
            match self.apply_one(op) {
                Ok(m) => applied[i] = Some(m),
                Err(e) => {
                    return Outcome {
                        applied,
                        failed: Some((i, e)),
                    };
                }
            }
        }
        Outcome {
            applied,
            failed: None,
        }
    }

    fn exec(
        &mut self,
        ns: &NsRef,
        cmd: &str,
        _timeout: Duration,
    ) -> Result<ExecOutput, KernelError> {
        Err(KernelError::not_run(format!("exec `{cmd}` in netns {ns}")))
    }

    fn ping(&mut self, ns: &NsRef, addr: IpAddr) -> Result<bool, KernelError> {
        match &self.answers {
            Some(a) => Ok(a.contains(&(ns.clone(), addr))),
            None => Err(KernelError::not_run(format!("ping {addr} from netns {ns}"))),
        }
    }

    fn wait_ready(
        &mut self,
        _links: &[(NsRef, IfName)],
        _timeout: Duration,
    ) -> Result<(), NotReady> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Kernel;
    use crate::model::IfName;
    use crate::op::Op;

    fn n(s: &str) -> IfName {
        IfName::new(s).unwrap()
    }

    /// After each op, every name ever used is found through the index
    /// exactly where a pass over the list finds it, or nowhere; each asked
    /// first (of a copy), so no earlier lookup has mended the index.
    #[test]
    fn the_link_index_agrees_with_the_lists_through_adds_renames_moves_and_deletes() {
        let mut k = Recorder::new();
        let ns = NsName::new("x").unwrap();
        let x = NsRef::Named(ns.clone());
        let h = NsRef::Host;
        let ops = vec![
            Op::AddNetns { ns: ns.clone() },
            Op::AddBridge {
                ns: h.clone(),
                name: n("br0"),
            },
            Op::AddVeth {
                ns: h.clone(),
                name: n("v0"),
                peer_ns: x.clone(),
                peer: n("eth0"),
                with: Default::default(),
            },
            Op::AddVeth {
                ns: h.clone(),
                name: n("v1"),
                peer_ns: h.clone(),
                peer: n("v1p"),
                with: Default::default(),
            },
            Op::RenameLink {
                ns: h.clone(),
                name: n("v0"),
                to: n("w0"),
            },
            Op::MoveLink {
                ns: h.clone(),
                name: n("br0"),
                to: x.clone(),
            },
            Op::AddBridge {
                ns: h.clone(),
                name: n("br0"),
            },
            Op::DelLink {
                ns: h.clone(),
                name: n("v1"),
                index: None,
            },
            Op::AddVeth {
                ns: h.clone(),
                name: n("v1"),
                peer_ns: x.clone(),
                peer: n("v1p"),
                with: Default::default(),
            },
            Op::DelNetns {
                ns: ns.clone(),
                ino: None,
            },
        ];
        let names = ["lo", "br0", "v0", "w0", "eth0", "v1", "v1p"];
        for op in &ops {
            k.apply(op).unwrap();
            for where_ in [&h, &x] {
                for name in names {
                    let scan = k
                        .state
                        .get(where_)
                        .and_then(|st| st.link(name))
                        .map(|l| l.index);
                    let found = k.clone().find_link(where_, name).map(|l| l.index);
                    assert_eq!(found, scan, "{name} in {where_} after {op:?}");
                }
            }
        }
        // What the ops left: v1's pair went with x, the new br0 stayed.
        assert!(k.find_link(&h, "br0").is_some());
        assert!(k.find_link(&h, "w0").is_none());
        assert!(k.find_link(&h, "v1").is_none());
    }
}
