//! What the kernel has for each topology, gathered once and shared by the
//! table, the JSON, the graph and ping-all.
//!
//! The ledger says which namespaces and objects belong to a topology; the
//! kernel says what they look like now. A namespace the topology created is
//! shown whole (everything inside it is the topology's); in any other
//! namespace (the host, or a namespace some other tool made) only the links
//! the topology created or changed are shown, with the routes through them.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::apply::inspect::{Inspector, LinkDetail, NsConn, NsDetail};
use crate::kernel::KernelError;
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    /// The address with its prefix, host bits kept.
    pub net: IpNet,
    pub scope: String,
}

impl Addr {
    /// Worth pinging and drawing: not loopback, not IPv6 link-local (which
    /// needs an interface to be reached and says nothing about the topology).
    pub fn is_routable(&self) -> bool {
        let ip = self.net.addr();
        if ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() {
            return false;
        }
        match ip {
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
            IpAddr::V4(v4) => !v4.is_link_local(),
        }
    }
}

/// The other end of a veth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// None when the peer's namespace could not be found (no name under
    /// /run/netns, e.g. a container's namespace).
    pub name: Option<String>,
    pub index: u32,
    /// The namespace the peer is in (None: not found, see `netnsid`).
    pub ns: Option<NsRef>,
    /// The peer namespace's id as seen from this link's namespace (None: same namespace).
    pub netnsid: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub kind: Option<String>,
    pub admin_up: bool,
    pub lower_up: bool,
    pub oper: String,
    pub mtu: u32,
    pub mac: Option<String>,
    pub master: Option<String>,
    pub peer: Option<Peer>,
    pub addrs: Vec<Addr>,
}

impl Link {
    pub fn is_bridge(&self) -> bool {
        self.kind.as_deref() == Some("bridge")
    }
    pub fn is_veth(&self) -> bool {
        self.kind.as_deref() == Some("veth")
    }
    /// "up", "down" or "up (no carrier)": what a person checks first.
    pub fn state(&self) -> &'static str {
        match (self.admin_up, self.lower_up) {
            (false, _) => "down",
            (true, true) => "up",
            (true, false) => "up, no carrier",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dest: IpNet,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub kind: String,
    pub proto: String,
    pub scope: String,
    pub src: Option<IpAddr>,
    pub metric: Option<u32>,
}

impl Route {
    pub fn is_default(&self) -> bool {
        self.dest.prefix_len() == 0
    }
    /// `ip route`-style destination: "default" or the prefix.
    pub fn dest_text(&self) -> String {
        if self.is_default() {
            "default".into()
        } else {
            self.dest.to_string()
        }
    }
    /// The route as `ip route` prints it.
    pub fn text(&self) -> String {
        let mut s = String::new();
        if self.kind != "unicast" {
            s.push_str(&self.kind);
            s.push(' ');
        }
        s.push_str(&self.dest_text());
        if let Some(v) = self.via {
            s.push_str(&format!(" via {v}"));
        }
        if let Some(d) = &self.dev {
            s.push_str(&format!(" dev {d}"));
        }
        if self.proto != "boot" && self.proto != "unspec" {
            s.push_str(&format!(" proto {}", self.proto));
        }
        if self.scope != "global" {
            s.push_str(&format!(" scope {}", self.scope));
        }
        if let Some(src) = self.src {
            s.push_str(&format!(" src {src}"));
        }
        if let Some(m) = self.metric {
            s.push_str(&format!(" metric {m}"));
        }
        s
    }
    /// Does this route carry packets for `ip` (a route that drops them does not)?
    pub fn covers(&self, ip: &IpAddr) -> bool {
        self.kind == "unicast" && self.dest.contains(ip)
    }
}

/// Most mappings first; ties in address order (numeric, so .9 before .10).
fn sort_targets(t: &mut [(String, usize)]) {
    t.sort_by(|a, b| {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        b.1.cmp(&a.1)
            .then_with(|| ip(&a.0).cmp(&ip(&b.0)))
            .then_with(|| a.0.cmp(&b.0))
    });
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatMap {
    pub name: String,
    pub key_type: String,
    pub data_type: String,
    pub interval: bool,
    /// key -> value as nft prints them ("10050" -> "172.17.0.3 . 10050").
    pub elements: Vec<(String, String)>,
}

impl NatMap {
    /// How many elements go to each target address, most first.
    pub fn targets(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for (_, v) in &self.elements {
            let addr = v.split(" . ").next().unwrap_or(v).to_string();
            match counts.iter_mut().find(|(a, _)| *a == addr) {
                Some((_, n)) => *n += 1,
                None => counts.push((addr, 1)),
            }
        }
        sort_targets(&mut counts);
        counts
    }
    /// Is this a DNAT map (its values are addresses to translate to)?
    pub fn is_dnat(&self) -> bool {
        self.data_type.starts_with("ipv4_addr") || self.data_type.starts_with("ipv6_addr")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nat {
    pub table: String,
    /// (chain, rules as nft-like text)
    pub chains: Vec<(String, Vec<String>)>,
    pub maps: Vec<NatMap>,
}

impl Nat {
    /// Rules that are not map lookups: masquerade, SNAT and one-off DNATs.
    pub fn plain_rules(&self) -> Vec<String> {
        self.chains
            .iter()
            .flat_map(|(_, rules)| rules.iter())
            .filter(|r| !r.contains(" map @"))
            .cloned()
            .collect()
    }
    pub fn dnat_count(&self) -> usize {
        self.maps
            .iter()
            .filter(|m| m.is_dnat())
            .map(|m| m.elements.len())
            .sum()
    }
    /// DNAT elements per target address over every map, most first.
    pub fn dnat_targets(&self) -> Vec<(String, usize)> {
        let mut all: Vec<(String, usize)> = Vec::new();
        for m in self.maps.iter().filter(|m| m.is_dnat()) {
            for (a, n) in m.targets() {
                match all.iter_mut().find(|(x, _)| *x == a) {
                    Some((_, k)) => *k += n,
                    None => all.push((a, n)),
                }
            }
        }
        sort_targets(&mut all);
        all
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub ns: NsRef,
    /// Created by this topology: everything inside belongs to it.
    pub owned: bool,
    pub exists: bool,
    /// net.ipv4.ip_forward / net.ipv6.conf.all.forwarding.
    pub forwarding_v4: Option<bool>,
    pub forwarding_v6: Option<bool>,
    pub links: Vec<Link>,
    pub routes: Vec<Route>,
    pub nat: Vec<Nat>,
    /// Objects the ledger records that the kernel no longer has.
    pub missing: Vec<String>,
}

impl Namespace {
    pub fn label(&self) -> String {
        match &self.ns {
            NsRef::Host => "host".into(),
            NsRef::Named(n) => n.to_string(),
        }
    }
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }
    pub fn routable_addrs(&self) -> impl Iterator<Item = (&Link, &Addr)> {
        self.links
            .iter()
            .flat_map(|l| l.addrs.iter().map(move |a| (l, a)))
            .filter(|(_, a)| a.is_routable())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyView {
    pub name: String,
    pub namespaces: Vec<Namespace>,
}

impl TopologyView {
    pub fn namespace(&self, ns: &NsRef) -> Option<&Namespace> {
        self.namespaces.iter().find(|n| &n.ns == ns)
    }
    /// Which namespace and link hold `ip`.
    pub fn owner_of(&self, ip: &IpAddr) -> Option<(&Namespace, &Link)> {
        self.namespaces.iter().find_map(|n| {
            n.links
                .iter()
                .find(|l| l.addrs.iter().any(|a| &a.net.addr() == ip))
                .map(|l| (n, l))
        })
    }
}

/// What one topology wants shown in one namespace, from its ledger.
struct Wanted {
    ns: NsRef,
    owned: bool,
    links: BTreeSet<String>,
    routes: Vec<(IpNet, IpAddr)>,
    nat: BTreeSet<String>,
}

fn wanted(entries: &[Owned]) -> Vec<Wanted> {
    let mut out: Vec<Wanted> = Vec::new();
    fn slot<'a>(out: &'a mut Vec<Wanted>, ns: &NsRef) -> &'a mut Wanted {
        let pos = match out.iter().position(|w| &w.ns == ns) {
            Some(p) => p,
            None => {
                out.push(Wanted {
                    ns: ns.clone(),
                    owned: false,
                    links: BTreeSet::new(),
                    routes: Vec::new(),
                    nat: BTreeSet::new(),
                });
                out.len() - 1
            }
        };
        &mut out[pos]
    }
    for e in entries {
        match e {
            Owned::Netns { ns, .. } => slot(&mut out, &NsRef::Named(ns.clone())).owned = true,
            Owned::Link { ns, name, .. }
            | Owned::LinkAttr { ns, name, .. }
            | Owned::LinkPlace { ns, name, .. }
            | Owned::Qdisc { ns, name, .. } => {
                slot(&mut out, ns).links.insert(name.to_string());
            }
            Owned::Addr { ns, dev, .. } => {
                slot(&mut out, ns).links.insert(dev.to_string());
            }
            Owned::Route { ns, dest, via } => {
                slot(&mut out, ns).routes.push((dest.as_net(), *via));
            }
            Owned::Nat { ns, table, .. } => {
                slot(&mut out, ns).nat.insert(table.as_str().to_string());
            }
            Owned::Sysctl { ns, .. } | Owned::RouteEx { ns, .. } | Owned::Rule { ns, .. } => {
                slot(&mut out, ns);
            }
        }
    }
    // The host first, then namespaces in the order the topology made them.
    out.sort_by_key(|w| w.ns != NsRef::Host);
    out
}

fn kerr(ns: &NsRef) -> impl Fn(KernelError) -> GatherError + '_ {
    move |err| GatherError::Kernel {
        ns: ns.clone(),
        err,
    }
}

/// Reads namespaces once each and finds where veth peers are.
struct Reader {
    insp: Inspector,
    details: HashMap<NsRef, NsDetail>,
    /// Per namespace: the ids it gives other namespaces, as far as asked.
    nsids: HashMap<NsRef, HashMap<i32, NsRef>>,
    /// (from, to) pairs already asked.
    asked: BTreeSet<(NsRef, NsRef)>,
    conns: HashMap<NsRef, NsConn>,
}

impl Reader {
    fn read(&mut self, ns: &NsRef) -> Result<Option<&NsDetail>, GatherError> {
        if !self.details.contains_key(ns) {
            if !self.insp.exists(ns) {
                return Ok(None);
            }
            let d = match self.insp.connect(ns).and_then(|mut c| c.read()) {
                Ok(d) => d,
                // Deleted between the check and the read: as good as absent.
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(kerr(ns)(e)),
            };
            self.details.insert(ns.clone(), d);
        }
        Ok(self.details.get(ns))
    }

    /// Ask `from` which id it gives `to`, remembering the answer.
    fn ask(&mut self, from: &NsRef, to: &NsRef) -> Result<Option<i32>, GatherError> {
        if !self.asked.insert((from.clone(), to.clone())) {
            return Ok(self
                .nsids
                .get(from)
                .and_then(|m| m.iter().find(|(_, n)| *n == to).map(|(i, _)| *i)));
        }
        if !self.conns.contains_key(from) {
            let c = self.insp.connect(from).map_err(kerr(from))?;
            self.conns.insert(from.clone(), c);
        }
        let Some(conn) = self.conns.get_mut(from) else {
            return Ok(None);
        };
        let id = match self.insp.nsid_of(conn, to) {
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
        link: &LinkDetail,
        back: &HashMap<(u32, u32), Vec<NsRef>>,
    ) -> Result<Option<NsRef>, GatherError> {
        if let Some(n) = self.nsids.get(from).and_then(|m| m.get(&id)) {
            return Ok(Some(n.clone()));
        }
        let mut candidates: Vec<NsRef> = link
            .link
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
        all.extend(self.insp.named_namespaces().into_iter().map(NsRef::Named));
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
}

/// Gather every given topology (name, ledger entries) from the kernel.
pub fn gather(topos: &[(String, Vec<Owned>)]) -> Result<Vec<TopologyView>, GatherError> {
    let insp = Inspector::new().map_err(kerr(&NsRef::Host))?;
    let mut rd = Reader {
        insp,
        details: HashMap::new(),
        nsids: HashMap::new(),
        asked: BTreeSet::new(),
        conns: HashMap::new(),
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
    for (ns, d) in &rd.details {
        for l in &d.links {
            if let (Some(p), Some(_)) = (l.link, l.link_netnsid) {
                back.entry((l.index, p)).or_default().push(ns.clone());
            }
        }
    }
    // Peers of the links that will be shown: (ns, link index) -> Peer.
    let mut peers: HashMap<(NsRef, u32), Peer> = HashMap::new();
    for (_, ws) in &plans {
        for w in ws {
            let Some(d) = rd.details.get(&w.ns).cloned() else {
                continue;
            };
            for l in &d.links {
                let shown = w.owned || w.links.contains(&l.name);
                if !shown
                    || l.kind.as_deref() != Some("veth")
                    || peers.contains_key(&(w.ns.clone(), l.index))
                {
                    continue;
                }
                let Some(pidx) = l.link else { continue };
                let peer = match l.link_netnsid {
                    None => Peer {
                        name: d
                            .links
                            .iter()
                            .find(|x| x.index == pidx)
                            .map(|x| x.name.clone()),
                        index: pidx,
                        ns: Some(w.ns.clone()),
                        netnsid: None,
                    },
                    Some(id) => {
                        let pns = rd.resolve(&w.ns, id, l, &back)?;
                        let name = match &pns {
                            Some(p) => rd
                                .read(p)?
                                .and_then(|pd| pd.links.iter().find(|x| x.index == pidx))
                                .map(|x| x.name.clone()),
                            None => None,
                        };
                        Peer {
                            name,
                            index: pidx,
                            ns: pns,
                            netnsid: Some(id),
                        }
                    }
                };
                peers.insert((w.ns.clone(), l.index), peer);
            }
        }
    }
    rd.conns.clear();

    let mut out = Vec::new();
    for (name, ws) in plans {
        let mut namespaces = Vec::new();
        for w in ws {
            namespaces.push(build_ns(&mut rd, &peers, w)?);
        }
        out.push(TopologyView { name, namespaces });
    }
    Ok(out)
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
    let Some(d) = rd.details.get(&w.ns).cloned() else {
        ns.missing.push(format!("netns {}", w.ns));
        return Ok(ns);
    };
    ns.exists = true;
    let name_of = |i: u32| {
        d.links
            .iter()
            .find(|l| l.index == i)
            .map(|l| l.name.clone())
    };
    for l in &d.links {
        if !(w.owned || w.links.contains(&l.name)) {
            continue;
        }
        ns.links.push(Link {
            index: l.index,
            name: l.name.clone(),
            kind: l.kind.clone(),
            admin_up: l.admin_up,
            lower_up: l.lower_up,
            oper: l.oper.clone(),
            mtu: l.mtu,
            mac: l.mac.clone(),
            master: l.master.and_then(name_of),
            peer: peers.get(&(w.ns.clone(), l.index)).cloned(),
            addrs: d
                .addrs
                .iter()
                .filter(|a| a.index == l.index)
                .map(|a| Addr {
                    net: a.net,
                    scope: a.scope.clone(),
                })
                .collect(),
        });
    }
    for l in &w.links {
        if !d.links.iter().any(|x| &x.name == l) {
            ns.missing.push(format!("link {l}"));
        }
    }
    let shown: BTreeSet<u32> = ns.links.iter().map(|l| l.index).collect();
    for r in &d.routes {
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
        if !d
            .routes
            .iter()
            .any(|r| r.dest == *dest && r.via == Some(*via))
        {
            ns.missing.push(format!("route {dest} via {via}"));
        }
    }
    let fw = rd
        .insp
        .sysctls(
            &w.ns,
            &["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"],
        )
        .map_err(kerr(&w.ns))?;
    let on = |v: &Option<String>| v.as_deref().map(|s| s.trim() != "0");
    ns.forwarding_v4 = fw.first().and_then(on);
    ns.forwarding_v6 = fw.get(1).and_then(on);
    for t in &w.nat {
        match rd.insp.nat_summary(&w.ns, t).map_err(kerr(&w.ns))? {
            Some(s) => ns.nat.push(Nat {
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
                        elements: m.elements,
                    })
                    .collect(),
            }),
            None => ns.missing.push(format!("nft table inet {t}")),
        }
    }
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cidr, IfName, NsName, RouteDest};

    fn net(s: &str) -> Addr {
        Addr {
            net: s.parse().unwrap(),
            scope: "global".into(),
        }
    }

    #[test]
    fn routable_addresses() {
        assert!(net("10.0.0.1/24").is_routable());
        assert!(net("fd00::1/64").is_routable());
        assert!(!net("127.0.0.1/8").is_routable());
        assert!(!net("::1/128").is_routable());
        assert!(!net("fe80::1/64").is_routable());
    }

    #[test]
    fn wanted_puts_host_first_and_collects_links() {
        let foo = NsName::new("foons").unwrap();
        let entries = vec![
            Owned::Netns {
                ns: foo.clone(),
                ino: None,
            },
            Owned::Link {
                ns: NsRef::Host,
                name: IfName::new("veth0").unwrap(),
                kind: crate::ledger::MadeKind::Veth,
                peer: None,
                index: None,
                key: None,
                shared: false,
            },
            Owned::Addr {
                ns: NsRef::Host,
                dev: IfName::new("foobr0").unwrap(),
                cidr: Cidr::parse("172.18.0.1/16").unwrap(),
            },
            Owned::Route {
                ns: NsRef::Named(foo.clone()),
                dest: RouteDest::parse("default", &"172.18.0.1".parse().unwrap()).unwrap(),
                via: "172.18.0.1".parse().unwrap(),
            },
        ];
        let w = wanted(&entries);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].ns, NsRef::Host);
        assert!(!w[0].owned);
        assert_eq!(
            w[0].links.iter().cloned().collect::<Vec<_>>(),
            vec!["foobr0".to_string(), "veth0".to_string()]
        );
        assert!(w[1].owned);
        assert_eq!(w[1].routes.len(), 1);
    }

    #[test]
    fn nat_targets_are_counted() {
        let m = NatMap {
            name: "dnat_tcp".into(),
            key_type: "inet_service".into(),
            data_type: "ipv4_addr . inet_service".into(),
            interval: false,
            elements: vec![
                ("80".into(), "172.17.0.3 . 80".into()),
                ("81".into(), "172.17.0.3 . 81".into()),
                ("82".into(), "172.17.0.4 . 82".into()),
            ],
        };
        assert_eq!(
            m.targets(),
            vec![("172.17.0.3".to_string(), 2), ("172.17.0.4".to_string(), 1)]
        );
        assert!(m.is_dnat());
    }

    #[test]
    fn route_text_reads_like_ip_route() {
        let r = Route {
            dest: "0.0.0.0/0".parse().unwrap(),
            via: Some("10.1.0.1".parse().unwrap()),
            dev: Some("eth0".into()),
            kind: "unicast".into(),
            proto: "boot".into(),
            scope: "global".into(),
            src: None,
            metric: None,
        };
        assert_eq!(r.text(), "default via 10.1.0.1 dev eth0");
        assert!(r.covers(&"8.8.8.8".parse().unwrap()));
    }
}
