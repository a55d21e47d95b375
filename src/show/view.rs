//! What the kernel has for each topology, as `show`, `graph` and
//! `ping-all` present it: namespaces with their links (addresses, veth
//! peers, bridge masters by name), main-table routes and NAT tables.
//! gather.rs fills it in through the `Kernel` trait.

use std::net::IpAddr;

use ipnet::IpNet;
use netplumb_nft::{ElemField, MapElem, NatRule};

use crate::model::NsRef;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    /// The address with its prefix, host bits kept.
    pub net: IpNet,
    pub scope: String,
    /// As `ip -j addr` names them: "dynamic", "tentative", "noprefixroute", …
    pub flags: Vec<&'static str>,
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

/// Most mappings first; ties in address order.
fn sort_targets(t: &mut [(IpAddr, usize)]) {
    t.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
}

fn count_into(counts: &mut Vec<(IpAddr, usize)>, addr: IpAddr, n: usize) {
    match counts.iter_mut().find(|(a, _)| *a == addr) {
        Some((_, k)) => *k += n,
        None => counts.push((addr, n)),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatMap {
    pub name: String,
    pub key_type: String,
    pub data_type: String,
    pub interval: bool,
    /// Every element, typed: key fields (a port range, an address and a
    /// port range, …) and value fields (the address and port it maps to).
    pub elements: Vec<MapElem>,
}

impl NatMap {
    /// How many elements go to each target address, most first.
    pub fn targets(&self) -> Vec<(IpAddr, usize)> {
        let mut counts = Vec::new();
        for a in self.elements.iter().filter_map(MapElem::to_addr) {
            count_into(&mut counts, a, 1);
        }
        sort_targets(&mut counts);
        counts
    }
    /// Is this a DNAT map (its values are addresses to translate to)? An
    /// empty map maps nothing either way.
    pub fn is_dnat(&self) -> bool {
        self.elements
            .iter()
            .any(|e| matches!(e.value.first(), Some(ElemField::Addr { .. })))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nat {
    pub table: String,
    /// (chain, rules as nft-like text): what `nft list table` would say.
    pub chains: Vec<(String, Vec<String>)>,
    pub maps: Vec<NatMap>,
    /// The table's NAT rules, typed (a port mapping is one map element).
    pub rules: Vec<NatRule>,
}

impl Nat {
    /// The rules that are not port mappings: masquerade, SNAT, hairpin and
    /// localhost masquerade.
    pub fn source_rules(&self) -> impl Iterator<Item = &NatRule> {
        self.rules.iter().filter(|r| !matches!(r, NatRule::Dnat(_)))
    }
    pub fn dnat_count(&self) -> usize {
        self.maps
            .iter()
            .filter(|m| m.is_dnat())
            .map(|m| m.elements.len())
            .sum()
    }
    /// DNAT elements per target address over every map, most first.
    pub fn dnat_targets(&self) -> Vec<(IpAddr, usize)> {
        let mut all = Vec::new();
        for m in self.maps.iter().filter(|m| m.is_dnat()) {
            for (a, n) in m.targets() {
                count_into(&mut all, a, n);
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
    /// The site whose part this machine holds (`up --site`), if any.
    pub site: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Addr {
        Addr {
            net: s.parse().unwrap(),
            scope: "global".into(),
            flags: vec![],
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

    fn elem(port: u16, to: &str) -> MapElem {
        let a: IpAddr = to.parse().unwrap();
        MapElem {
            key: vec![ElemField::Port {
                first: port,
                last: port,
            }],
            value: vec![
                ElemField::Addr { first: a, last: a },
                ElemField::Port {
                    first: port,
                    last: port,
                },
            ],
        }
    }

    #[test]
    fn nat_targets_are_counted() {
        let m = NatMap {
            name: "dnat_tcp".into(),
            key_type: "inet_service".into(),
            data_type: "ipv4_addr . inet_service".into(),
            interval: false,
            elements: vec![
                elem(80, "172.17.0.3"),
                elem(81, "172.17.0.3"),
                elem(82, "172.17.0.4"),
            ],
        };
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            m.targets(),
            vec![(a("172.17.0.3"), 2), (a("172.17.0.4"), 1)]
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
