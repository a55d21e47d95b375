//! Fill the view (view.rs) from the kernel, through the `Kernel` trait, so
//! the real kernel and the recording fake are read the same way.
//!
//! The ledger says which namespaces and objects belong to a topology; the
//! kernel says what they look like now. A namespace the topology created is
//! shown whole (everything inside it is the topology's); in any other
//! namespace (the host, or a namespace some other tool made) only the links
//! the topology created or changed are shown, with the routes through them.

use std::collections::{BTreeSet, HashMap};

use super::view::{Addr, Link, Namespace, Nat, NatMap, Peer, Route, TopologyView};
use super::wanted::{Wanted, wanted};
use crate::kernel::{self, Kernel, KernelError, NsState, RT_TABLE_MAIN};
use crate::ledger::{Entry as Owned, LedgerError};
use crate::model::NsRef;

#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("cannot read netns {ns}: {err}")]
    Kernel { ns: NsRef, err: KernelError },
    #[error("no topology named '{name}'{}", known_list(.known))]
    NoTopology { name: String, known: Vec<String> },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        " (netplumb has no topologies here)".into()
    } else {
        format!(" (known: {})", known.join(", "))
    }
}

impl GatherError {
    pub fn help(&self) -> Option<&'static str> {
        match self {
            GatherError::Kernel { err, .. }
                if matches!(err.errno, Some(libc::EPERM | libc::EACCES)) =>
            {
                Some("run as root or add --sandbox")
            }
            GatherError::NoTopology { .. } => {
                Some("`netplumb show` lists every topology; names are the scripts' file stems")
            }
            _ => None,
        }
    }
}

fn kerr(ns: &NsRef) -> impl Fn(KernelError) -> GatherError + '_ {
    move |err| GatherError::Kernel {
        ns: ns.clone(),
        err,
    }
}

/// Reads namespaces once each and finds where veth peers are.
struct Reader<'k> {
    k: &'k mut dyn Kernel,
    /// None: the namespace does not exist.
    states: HashMap<NsRef, Option<NsState>>,
    /// Per namespace: the ids it gives other namespaces, as far as asked.
    nsids: HashMap<NsRef, HashMap<i32, NsRef>>,
    /// (from, to) pairs already asked.
    asked: BTreeSet<(NsRef, NsRef)>,
}

impl Reader<'_> {
    fn read(&mut self, ns: &NsRef) -> Result<Option<&NsState>, GatherError> {
        if !self.states.contains_key(ns) {
            let st = match self.k.observe(ns) {
                Ok(st) => Some(st),
                // Not there, or deleted meanwhile: as good as absent.
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(kerr(ns)(e)),
            };
            self.states.insert(ns.clone(), st);
        }
        Ok(self.states.get(ns).and_then(Option::as_ref))
    }

    fn state(&self, ns: &NsRef) -> Option<&NsState> {
        self.states.get(ns).and_then(Option::as_ref)
    }

    /// Ask `from` which id it gives `to`, remembering the answer.
    fn ask(&mut self, from: &NsRef, to: &NsRef) -> Result<Option<i32>, GatherError> {
        if !self.asked.insert((from.clone(), to.clone())) {
            return Ok(self
                .nsids
                .get(from)
                .and_then(|m| m.iter().find(|(_, n)| *n == to).map(|(i, _)| *i)));
        }
        let id = match self.k.nsid(from, to) {
            Ok(id) => id,
            // `to` vanished meanwhile: it cannot hold the peer.
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(kerr(from)(e)),
        };
        if let Some(id) = id {
            self.nsids
                .entry(from.clone())
                .or_default()
                .insert(id, to.clone());
        }
        Ok(id)
    }

    /// The namespace `from` calls `id`. Tries first the namespaces that have
    /// a veth pointing back at `link` (cheap and nearly always right; ifindexes
    /// repeat across namespaces, so the id is always checked), then every
    /// namespace there is.
    fn resolve(
        &mut self,
        from: &NsRef,
        id: i32,
        link: &kernel::Link,
        back: &HashMap<(u32, u32), Vec<NsRef>>,
    ) -> Result<Option<NsRef>, GatherError> {
        if let Some(n) = self.nsids.get(from).and_then(|m| m.get(&id)) {
            return Ok(Some(n.clone()));
        }
        let mut candidates: Vec<NsRef> = link
            .peer
            .and_then(|peer_idx| back.get(&(peer_idx, link.index)))
            .cloned()
            .unwrap_or_default();
        candidates.retain(|c| c != from);
        for c in &candidates {
            if self.ask(from, c)? == Some(id) {
                return Ok(Some(c.clone()));
            }
        }
        let mut all: Vec<NsRef> = vec![NsRef::Host];
        let named = self.k.netns_list().map_err(kerr(&NsRef::Host))?;
        all.extend(named.into_iter().map(NsRef::Named));
        for c in all {
            if &c == from || candidates.contains(&c) {
                continue;
            }
            if self.ask(from, &c)? == Some(id) {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// The other end of the veth `l` in `ns`.
    fn peer(
        &mut self,
        ns: &NsRef,
        l: &kernel::Link,
        back: &HashMap<(u32, u32), Vec<NsRef>>,
    ) -> Result<Option<Peer>, GatherError> {
        let Some(pidx) = l.peer else { return Ok(None) };
        let Some(id) = l.peer_netnsid else {
            let name = self
                .state(ns)
                .and_then(|st| st.link_by_index(pidx))
                .map(|x| x.name.clone());
            return Ok(Some(Peer {
                name,
                index: pidx,
                ns: Some(ns.clone()),
                netnsid: None,
            }));
        };
        let pns = self.resolve(ns, id, l, back)?;
        let name = match &pns {
            Some(p) => self
                .read(p)?
                .and_then(|st| st.link_by_index(pidx))
                .map(|x| x.name.clone()),
            None => None,
        };
        Ok(Some(Peer {
            name,
            index: pidx,
            ns: pns,
            netnsid: Some(id),
        }))
    }
}

/// Gather every given topology (name, ledger entries) from `k`.
pub fn gather(
    k: &mut dyn Kernel,
    topos: &[(String, Vec<Owned>)],
) -> Result<Vec<TopologyView>, GatherError> {
    let mut rd = Reader {
        k,
        states: HashMap::new(),
        nsids: HashMap::new(),
        asked: BTreeSet::new(),
    };
    let plans: Vec<(String, Vec<Wanted>)> =
        topos.iter().map(|(n, e)| (n.clone(), wanted(e))).collect();
    for (_, ws) in &plans {
        for w in ws {
            rd.read(&w.ns)?;
        }
    }

    // veths whose peer is in another namespace, by (ifindex, peer ifindex).
    let mut back: HashMap<(u32, u32), Vec<NsRef>> = HashMap::new();
    for (ns, st) in &rd.states {
        for l in st.iter().flat_map(|s| &s.links) {
            if let (Some(p), Some(_)) = (l.peer, l.peer_netnsid) {
                back.entry((l.index, p)).or_default().push(ns.clone());
            }
        }
    }
    // Peers of the links that will be shown: (ns, link index) -> Peer.
    let mut peers: HashMap<(NsRef, u32), Peer> = HashMap::new();
    for (_, ws) in &plans {
        for w in ws {
            let links = rd.state(&w.ns).map(|s| s.links.clone()).unwrap_or_default();
            for l in links.iter().filter(|l| l.is_veth()) {
                let shown = w.owned || w.links.contains(&l.name);
                if !shown || peers.contains_key(&(w.ns.clone(), l.index)) {
                    continue;
                }
                if let Some(p) = rd.peer(&w.ns, l, &back)? {
                    peers.insert((w.ns.clone(), l.index), p);
                }
            }
        }
    }

    let mut out = Vec::new();
    for (name, ws) in plans {
        let mut namespaces = Vec::new();
        for w in ws {
            namespaces.push(build_ns(&mut rd, &peers, w)?);
        }
        let site = crate::uprecord::UpRecord::load(&name).and_then(|r| r.site);
        out.push(TopologyView {
            name,
            site,
            namespaces,
        });
    }
    Ok(out)
}

/// The links and routes of `st` that `w` shows, and what it misses.
fn links_and_routes(
    ns: &mut Namespace,
    st: &NsState,
    peers: &HashMap<(NsRef, u32), Peer>,
    w: &Wanted,
) {
    let name_of = |i: u32| st.link_by_index(i).map(|l| l.name.clone());
    for l in &st.links {
        if !(w.owned || w.links.contains(&l.name)) {
            continue;
        }
        ns.links.push(Link {
            index: l.index,
            name: l.name.clone(),
            kind: l.kind.clone(),
            admin_up: l.up,
            lower_up: l.lower_up,
            oper: l.oper.clone(),
            mtu: l.mtu,
            mac: l.mac.clone(),
            master: l.master.and_then(name_of),
            peer: peers.get(&(w.ns.clone(), l.index)).cloned(),
            addrs: st
                .addrs
                .iter()
                .filter(|a| a.index == l.index)
                .map(|a| Addr {
                    net: a.cidr.net(),
                    scope: a.scope.clone(),
                    flags: a.flag_names(),
                })
                .collect(),
        });
    }
    for l in &w.links {
        if st.link(l).is_none() {
            ns.missing.push(format!("link {l}"));
        }
    }
    let shown: BTreeSet<u32> = ns.links.iter().map(|l| l.index).collect();
    // `ip route` shows the main table; local/broadcast routes live elsewhere.
    let main = || st.routes.iter().filter(|r| r.table == RT_TABLE_MAIN);
    for r in main() {
        let recorded = r.via.is_some_and(|v| {
            w.routes
                .iter()
                .any(|(dest, via)| *dest == r.dest && *via == v)
        });
        let through_shown = r.oif.is_some_and(|i| shown.contains(&i));
        if !(w.owned || recorded || through_shown) {
            continue;
        }
        ns.routes.push(Route {
            dest: r.dest,
            via: r.via,
            dev: r.oif.and_then(name_of),
            kind: r.kind.clone(),
            proto: r.proto.clone(),
            scope: r.scope.clone(),
            src: r.src,
            metric: r.metric,
        });
    }
    for (dest, via) in &w.routes {
        if !main().any(|r| r.dest == *dest && r.via == Some(*via)) {
            ns.missing.push(format!("route {dest} via {via}"));
        }
    }
    // IPv4 then IPv6, as `ip route; ip -6 route` list them.
    ns.routes.sort_by_key(|r| r.dest.addr().is_ipv6());
}

fn nat(s: netplumb_nft::TableSummary) -> Nat {
    Nat {
        table: s.name,
        chains: s.chains.into_iter().map(|c| (c.name, c.rules)).collect(),
        maps: s
            .maps
            .into_iter()
            .map(|m| NatMap {
                name: m.name,
                key_type: m.key_type,
                data_type: m.data_type,
                interval: m.interval,
                elements: m.elems,
            })
            .collect(),
        rules: s.nat,
    }
}

fn build_ns(
    rd: &mut Reader,
    peers: &HashMap<(NsRef, u32), Peer>,
    w: Wanted,
) -> Result<Namespace, GatherError> {
    let mut ns = Namespace {
        ns: w.ns.clone(),
        owned: w.owned,
        exists: false,
        forwarding_v4: None,
        forwarding_v6: None,
        links: Vec::new(),
        routes: Vec::new(),
        nat: Vec::new(),
        missing: Vec::new(),
    };
    let Some(st) = rd.state(&w.ns) else {
        ns.missing.push(format!("netns {}", w.ns));
        return Ok(ns);
    };
    ns.exists = true;
    links_and_routes(&mut ns, st, peers, &w);
    let on = |v: Option<String>| v.map(|s| s.trim() != "0");
    let mut sysctl = |key: &str| rd.k.sysctl_get(&w.ns, key).map_err(kerr(&w.ns));
    ns.forwarding_v4 = on(sysctl("net.ipv4.ip_forward")?);
    ns.forwarding_v6 = on(sysctl("net.ipv6.conf.all.forwarding")?);
    for t in &w.nat {
        match rd.k.nat_summary(&w.ns, t).map_err(kerr(&w.ns))? {
            Some(s) => ns.nat.push(nat(s)),
            None => ns.missing.push(format!("nft table inet {t}")),
        }
    }
    Ok(ns)
}
