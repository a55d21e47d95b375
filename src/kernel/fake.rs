//! A recording kernel: keeps a model of namespaces, links, addresses,
//! routes, sysctls and NAT tables, records every op, and refuses what the
//! real kernel would refuse (EEXIST, ENODEV, ENETUNREACH). `plan` and
//! `check FILE` run on it; unit tests check the planner, the runner and the
//! read-back commands with it. It sends no packets and runs no programs:
//! `exec` and `ping` answer "not run".

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use super::{
    Addr, ExecOutput, Kernel, KernelError, Link, NotReady, NsState, RT_TABLE_MAIN, Route, TableInfo,
};
use crate::model::{IfName, NsName, NsRef};
use crate::op::{LinkChange, LinkSpec, Made, Op, Outcome};

#[derive(Debug, Default, Clone)]
pub struct Recorder {
    pub log: Vec<Op>,
    pub netns: BTreeMap<NsName, u64>,
    pub state: BTreeMap<NsRef, NsState>,
    pub sysctls: BTreeMap<(NsRef, String), String>,
    pub nat: BTreeMap<(NsRef, String), (u64, netplumb_nft::NatTable)>,
    next_index: u32,
    next_ino: u64,
    next_handle: u64,
    /// Fail the n-th op applied (0-based) with EPERM, once: for rollback tests.
    pub fail_at: Option<usize>,
    /// veth pairs: deleting one end, or the namespace of one end, deletes both.
    pairs: Vec<[(NsRef, String); 2]>,
    /// Ids namespaces give each other, as the kernel assigns them on demand.
    nsids: BTreeMap<(NsRef, NsRef), i32>,
    /// (macvlan, parent): deleting the parent deletes the macvlan.
    uppers: Vec<[(NsRef, String); 2]>,
}

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
        r.state.insert(NsRef::Host, Self::fresh_ns());
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
                })
                .collect(),
            ..NsState::default()
        }
    }

    fn ns_mut(&mut self, ns: &NsRef) -> Result<&mut NsState, KernelError> {
        self.state
            .get_mut(ns)
            .ok_or_else(|| KernelError::errno(libc::ENOENT, format!("netns {ns} does not exist")))
    }

    fn add_link(&mut self, ns: &NsRef, name: &str, kind: &str) -> Result<u32, KernelError> {
        let index = self.next_index;
        let st = self.ns_mut(ns)?;
        if st.link(name).is_some() {
            return Err(KernelError::errno(libc::EEXIST, "File exists"));
        }
        st.links.push(Link {
            index,
            name: name.into(),
            kind: Some(kind.into()),
            oper: "DOWN".into(),
            mtu: 1500,
            stp: (kind == "bridge").then_some(false),
            ..Link::default()
        });
        self.next_index += 1;
        Ok(index)
    }

    /// Remove these link ends (and forget their pairs).
    fn drop_ends(&mut self, ends: &[(NsRef, String)]) {
        for (ns, name) in ends {
            if let Some(st) = self.state.get_mut(ns) {
                if let Some(l) = st.link(name) {
                    let i = l.index;
                    st.addrs.retain(|a| a.index != i);
                    st.routes.retain(|r| {
                        r.oif != Some(i) && r.nexthops.iter().all(|h| h.oif != Some(i))
                    });
                }
                st.links.retain(|l| &l.name != name);
            }
        }
        self.pairs
            .retain(|p| !ends.contains(&p[0]) && !ends.contains(&p[1]));
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
        for p in self.pairs.iter_mut().chain(self.uppers.iter_mut()) {
            for end in p.iter_mut() {
                if &end.0 == ns && end.1 == name {
                    *end = (to_ns.clone(), to.to_string());
                }
            }
        }
    }

    fn link_mut(&mut self, ns: &NsRef, name: &str) -> Result<&mut Link, KernelError> {
        self.ns_mut(ns)?
            .links
            .iter_mut()
            .find(|l| l.name == name)
            .ok_or_else(enodev)
    }

    fn index_of(&mut self, ns: &NsRef, name: &str) -> Result<u32, KernelError> {
        Ok(self.link_mut(ns, name)?.index)
    }

    /// The id `from` gives `to`, assigned on first use like the kernel does.
    fn nsid_assign(&mut self, from: &NsRef, to: &NsRef) -> i32 {
        let next = self
            .nsids
            .iter()
            .filter(|((f, _), _)| f == from)
            .map(|(_, id)| *id + 1)
            .max()
            .unwrap_or(0);
        *self.nsids.entry((from.clone(), to.clone())).or_insert(next)
    }

    /// Recompute what the kernel derives: veth carrier (both ends up),
    /// operstate, peer pointers and bridge port state.
    fn settle_links(&mut self) {
        let pairs = self.pairs.clone();
        for [a, b] in &pairs {
            let find = |s: &Self, (ns, n): &(NsRef, String)| {
                s.state
                    .get(ns)
                    .and_then(|st| st.link(n))
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
        for st in self.state.values_mut() {
            let bridges: BTreeSet<u32> = st
                .links
                .iter()
                .filter(|l| l.is_bridge())
                .map(|l| l.index)
                .collect();
            for l in &mut st.links {
                if l.kind.as_deref() == Some("vxlan") {
                    // No carrier of its own to report, as the kernel says.
                    l.oper = if l.up { "UNKNOWN" } else { "DOWN" }.into();
                } else if l.kind.as_deref() == Some("tun") {
                    // No carrier until a program opens it.
                    l.oper = "DOWN".into();
                } else if l.kind.as_deref() == Some("macvlan") {
                    l.oper = if l.up { "UP" } else { "DOWN" }.into();
                } else if l.kind.as_deref() == Some("veth") || l.is_bridge() {
                    l.oper = if l.up && (l.lower_up || l.is_bridge()) {
                        "UP".into()
                    } else if l.up {
                        "LOWERLAYERDOWN".into()
                    } else {
                        "DOWN".into()
                    };
                }
                l.port_state = match l.master {
                    Some(m) if bridges.contains(&m) => Some(if l.up { 3 } else { 0 }),
                    _ => None,
                };
            }
        }
    }

    fn apply_one(&mut self, op: &Op) -> Result<Made, KernelError> {
        if self.fail_at == Some(self.log.len()) {
            self.fail_at = None;
            return Err(KernelError::errno(libc::EPERM, "Operation not permitted"));
        }
        let made = match op {
            Op::AddNetns { ns } => {
                if self.netns.contains_key(ns) {
                    return Err(KernelError::errno(libc::EEXIST, "File exists"));
                }
                let ino = self.next_ino;
                self.next_ino += 1;
                self.netns.insert(ns.clone(), ino);
                self.state
                    .insert(NsRef::Named(ns.clone()), Self::fresh_ns());
                Made::Netns { ino }
            }
            Op::DelNetns { ns, ino } => {
                match (self.netns.get(ns), ino) {
                    (None, _) => return Err(KernelError::errno(libc::ENOENT, "No such file")),
                    (Some(have), Some(want)) if have != want => {
                        return Err(KernelError::errno(libc::ESTALE, "another namespace"));
                    }
                    _ => {}
                }
                self.netns.remove(ns);
                let gone = NsRef::Named(ns.clone());
                self.state.remove(&gone);
                let dead: Vec<(NsRef, String)> = self
                    .pairs
                    .iter()
                    .filter(|p| p[0].0 == gone || p[1].0 == gone)
                    .flat_map(|p| p.clone())
                    .collect();
                self.drop_ends(&dead);
                self.nsids.retain(|(a, b), _| a != &gone && b != &gone);
                Made::Nothing
            }
            Op::AddVeth {
                ns,
                name,
                peer_ns,
                peer,
                with,
            } => {
                let master = match &with.master {
                    Some(m) => Some(self.index_of(ns, m.as_str())?),
                    None => None,
                };
                let a = self.add_link(ns, name.as_str(), "veth")?;
                let b = match self.add_link(peer_ns, peer.as_str(), "veth") {
                    Ok(b) => b,
                    Err(e) => {
                        self.ns_mut(ns)?.links.retain(|l| l.name != name.as_str());
                        return Err(e);
                    }
                };
                self.pairs.push([
                    (ns.clone(), name.to_string()),
                    (peer_ns.clone(), peer.to_string()),
                ]);
                let l = self.link_mut(ns, name.as_str())?;
                l.master = master;
                l.up = with.up;
                Made::Link {
                    index: a,
                    peer: Some(b),
                }
            }
            Op::AddBridge { ns, name } => Made::Link {
                index: self.add_link(ns, name.as_str(), "bridge")?,
                peer: None,
            },
            Op::AddLink {
                ns,
                name,
                into,
                spec,
            } => {
                let home = into.clone().unwrap_or_else(|| ns.clone());
                let (mtu, parent) = match spec {
                    LinkSpec::Macvlan { parent, .. } => {
                        (self.link_mut(ns, parent.as_str())?.mtu, Some(parent))
                    }
                    LinkSpec::Vxlan { spec, mtu } => {
                        let under = match &spec.dev {
                            Some(d) => self.link_mut(ns, d.as_str())?.mtu,
                            None => 1500,
                        };
                        (mtu.unwrap_or(under.saturating_sub(spec.overhead())), None)
                    }
                    LinkSpec::Tun(_) => (1500, None),
                };
                let index = self.add_link(&home, name.as_str(), spec.kind())?;
                let l = self.link_mut(&home, name.as_str())?;
                l.mtu = mtu;
                l.info = Some(spec.info());
                if let Some(p) = parent {
                    self.uppers.push([
                        (home.clone(), name.to_string()),
                        (ns.clone(), p.to_string()),
                    ]);
                }
                Made::Link { index, peer: None }
            }
            Op::DelLink { ns, name, index } => {
                let st = self.ns_mut(ns)?;
                let found = st
                    .links
                    .iter()
                    .find(|l| match index {
                        Some(i) => l.index == *i,
                        None => l.name == name.as_str(),
                    })
                    .map(|l| l.name.clone())
                    .ok_or_else(enodev)?;
                let me = (ns.clone(), found.clone());
                let mut dead: Vec<(NsRef, String)> = self
                    .pairs
                    .iter()
                    .filter(|p| p.contains(&me))
                    .flat_map(|p| p.clone())
                    .collect();
                dead.push(me);
                self.drop_ends(&dead);
                Made::Nothing
            }
            Op::MoveLink { ns, name, to } => {
                let st = self.ns_mut(ns)?;
                let pos = st
                    .links
                    .iter()
                    .position(|l| l.name == name.as_str())
                    .ok_or_else(enodev)?;
                let mut link = st.links.remove(pos);
                let old = link.index;
                st.addrs.retain(|a| a.index != old);
                st.routes.retain(|r| r.oif != Some(old));
                // A moved device gets a fresh index there, and is down.
                link.index = self.next_index;
                self.next_index += 1;
                link.up = false;
                link.master = None;
                let dest = self.ns_mut(to)?;
                if dest.link(&link.name).is_some() {
                    return Err(KernelError::errno(libc::EEXIST, "File exists"));
                }
                dest.links.push(link);
                self.rename_end(ns, name.as_str(), to, name.as_str());
                Made::Nothing
            }
            Op::RenameLink { ns, name, to } => {
                if self.ns_mut(ns)?.link(to.as_str()).is_some() {
                    return Err(KernelError::errno(libc::EEXIST, "File exists"));
                }
                self.link_mut(ns, name.as_str())?.name = to.to_string();
                self.rename_end(ns, name.as_str(), ns, to.as_str());
                Made::Nothing
            }
            Op::SetLink { ns, name, change } => {
                let master_index = match change {
                    LinkChange::Master(Some(m)) => Some(self.index_of(ns, m.as_str())?),
                    _ => None,
                };
                let l = self.link_mut(ns, name.as_str())?;
                match change {
                    LinkChange::Up(up) => {
                        l.up = *up;
                        if l.kind.as_deref() != Some("veth") {
                            l.lower_up = *up;
                        }
                    }
                    LinkChange::Mtu(m) => l.mtu = *m,
                    LinkChange::Master(_) => l.master = master_index,
                    LinkChange::Stp(on) => l.stp = Some(*on),
                }
                Made::Nothing
            }
            Op::AddAddr { ns, dev, cidr } => {
                let index = self.index_of(ns, dev.as_str())?;
                let st = self.ns_mut(ns)?;
                if st.has_addr(dev.as_str(), cidr) {
                    return Err(KernelError::errno(libc::EEXIST, "File exists"));
                }
                st.addrs.push(Addr {
                    index,
                    cidr: *cidr,
                    scope: "global".into(),
                    tentative: false,
                });
                Made::Nothing
            }
            Op::DelAddr { ns, dev, cidr } => {
                let index = self.index_of(ns, dev.as_str())?;
                let st = self.ns_mut(ns)?;
                let before = st.addrs.len();
                st.addrs.retain(|a| !(a.index == index && &a.cidr == cidr));
                if st.addrs.len() == before {
                    return Err(KernelError::errno(
                        libc::EADDRNOTAVAIL,
                        "Cannot assign requested address",
                    ));
                }
                // The kernel drops the routes that went through it.
                let gone = cidr.trunc();
                st.routes
                    .retain(|r| r.via.is_none_or(|v| !gone.contains(&v)));
                Made::Nothing
            }
            Op::AddRoute { ns, route } | Op::ReplaceRoute { ns, route } => {
                let replace = matches!(op, Op::ReplaceRoute { .. });
                let st = self.ns_mut(ns)?;
                let dest = route.dest.as_net();
                let dev = st
                    .addrs
                    .iter()
                    .find(|a| a.cidr.trunc().contains(&route.via))
                    .map(|a| a.index);
                let Some(oif) = dev else {
                    return Err(KernelError::errno(
                        libc::ENETUNREACH,
                        "Network is unreachable",
                    ));
                };
                let exists = st.routes_to(&dest).next().is_some();
                if exists && !replace {
                    return Err(KernelError::errno(libc::EEXIST, "File exists"));
                }
                st.routes
                    .retain(|r| !(r.table == RT_TABLE_MAIN && r.dest == dest));
                st.routes.push(Route {
                    table: RT_TABLE_MAIN,
                    dest,
                    via: Some(route.via),
                    oif: Some(oif),
                    kind: "unicast".into(),
                    proto: "boot".into(),
                    scope: "global".into(),
                    src: None,
                    metric: route.dest.is_v6().then_some(1024),
                    ..Route::default()
                });
                Made::Nothing
            }
            Op::DelRoute { ns, route } => {
                let d = route.dest.as_net();
                let st = self.ns_mut(ns)?;
                let before = st.routes.len();
                st.routes
                    .retain(|r| !(r.dest == d && r.via == Some(route.via)));
                if st.routes.len() == before {
                    return Err(KernelError::errno(libc::ESRCH, "No such process"));
                }
                Made::Nothing
            }
            Op::PutRoute { ns, route, replace } => {
                super::routes::put(self.ns_mut(ns)?, route, *replace)?;
                Made::Nothing
            }
            Op::DelRouteEx { ns, route } => {
                super::routes::delete(self.ns_mut(ns)?, route)?;
                Made::Nothing
            }
            Op::AddRule { ns, rule } => {
                super::routes::add_rule(self.ns_mut(ns)?, rule)?;
                Made::Nothing
            }
            Op::DelRule { ns, rule } => {
                super::routes::del_rule(self.ns_mut(ns)?, rule)?;
                Made::Nothing
            }
            Op::SetQdisc {
                ns,
                dev,
                shape,
                mtu,
            } => {
                self.link_mut(ns, dev.as_str())?.qdisc = super::shape::as_read(shape, *mtu);
                Made::Nothing
            }
            Op::DelQdisc { ns, dev } => {
                let l = self.link_mut(ns, dev.as_str())?;
                if l.qdisc.take().is_none() {
                    return Err(KernelError::errno(
                        libc::ENOENT,
                        "No such file or directory",
                    ));
                }
                Made::Nothing
            }
            Op::Sysctl { ns, key, value } => {
                self.ns_mut(ns)?;
                let old = self
                    .sysctls
                    .insert((ns.clone(), key.clone()), value.clone())
                    .unwrap_or_else(|| "0".into());
                Made::Sysctl { old }
            }
            Op::ReplaceNat {
                ns,
                table,
                replaces,
            } => {
                self.ns_mut(ns)?;
                let k = (ns.clone(), table.name.clone());
                match (self.nat.get(&k), replaces) {
                    (Some((h, _)), Some(r)) if h != r => {
                        return Err(KernelError::errno(libc::ENOENT, "No such file"));
                    }
                    (Some(_), None) => {
                        return Err(KernelError::errno(libc::EEXIST, "File exists"));
                    }
                    _ => {}
                }
                let handle = self.next_handle;
                self.next_handle += 1;
                self.nat.insert(k, (handle, (**table).clone()));
                Made::Table { handle }
            }
            Op::DelNat { ns, table, handle } => {
                let k = (ns.clone(), table.clone());
                match (self.nat.get(&k), handle) {
                    (None, _) => return Err(KernelError::errno(libc::ENOENT, "No such file")),
                    (Some((h, _)), Some(want)) if h != want => {
                        return Err(KernelError::errno(libc::ENOENT, "No such file"));
                    }
                    _ => {}
                }
                self.nat.remove(&k);
                Made::Nothing
            }
        };
        self.settle_links();
        self.log.push(op.clone());
        Ok(made)
    }
}

impl Kernel for Recorder {
    fn netns_list(&mut self) -> Result<Vec<NsName>, KernelError> {
        Ok(self.netns.keys().cloned().collect())
    }

    fn netns_ino(&mut self, ns: &NsName) -> Result<Option<u64>, KernelError> {
        Ok(self.netns.get(ns).copied())
    }

    fn observe(&mut self, ns: &NsRef) -> Result<NsState, KernelError> {
        self.state
            .get(ns)
            .cloned()
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

    fn nat_summary(
        &mut self,
        ns: &NsRef,
        table: &str,
    ) -> Result<Option<netplumb_nft::TableSummary>, KernelError> {
        // The summary is what the kernel's dump says; the fake has none.
        let _ = (ns, table);
        Ok(None)
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
        Err(KernelError::not_run(format!("ping {addr} from netns {ns}")))
    }

    fn wait_ready(
        &mut self,
        _links: &[(NsRef, IfName)],
        _timeout: Duration,
    ) -> Result<(), NotReady> {
        Ok(())
    }
}
