//! `show --json`: the stable, documented shape (docs/show-json.md). These
//! structs are the schema: renaming or removing a field is a breaking change
//! and bumps `SCHEMA`; adding one is not.

use serde::Serialize;

use netplumb_nft::{ElemField, MapElem, NatRule};

use super::view::{Addr, Link, Namespace, Nat, NatMap, Peer, Route, TopologyView};
use crate::model::NsRef;

/// Bumped only on incompatible changes. 2: map elements are typed values
/// (`Element`), no longer nft's text; NAT rules are given typed (`rules`).
pub const SCHEMA: u32 = 2;

#[derive(Debug, Serialize)]
pub struct Show {
    pub schema: u32,
    pub topologies: Vec<Topology>,
}

#[derive(Debug, Serialize)]
pub struct Topology {
    pub name: String,
    /// The site whose part this machine holds (`up --site`); null for a
    /// topology without sites.
    pub site: Option<String>,
    pub namespaces: Vec<NamespaceJ>,
}

#[derive(Debug, Serialize)]
pub struct NamespaceJ {
    /// The namespace's name; "host" for the namespace netplumb runs in.
    pub name: String,
    /// True only for the namespace netplumb runs in.
    pub host: bool,
    /// Created by this topology (everything inside is shown).
    pub owned: bool,
    pub exists: bool,
    pub forwarding: Forwarding,
    pub links: Vec<LinkJ>,
    pub routes: Vec<RouteJ>,
    pub nat: Vec<NatJ>,
    /// Objects the topology's record names that the kernel no longer has.
    pub missing: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Forwarding {
    pub ipv4: Option<bool>,
    pub ipv6: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct LinkJ {
    pub name: String,
    pub index: u32,
    /// "veth", "bridge", …; null for physical devices and lo.
    pub kind: Option<String>,
    pub admin_up: bool,
    pub carrier: bool,
    /// As `ip -j link` reports it: "UP", "DOWN", "LOWERLAYERDOWN", "UNKNOWN", …
    pub operstate: String,
    pub mtu: u32,
    pub mac: Option<String>,
    pub master: Option<String>,
    pub peer: Option<PeerJ>,
    pub addresses: Vec<AddrJ>,
}

#[derive(Debug, Serialize)]
pub struct PeerJ {
    /// null when the peer's namespace was not found.
    pub name: Option<String>,
    pub index: u32,
    /// The peer's namespace, named as in `namespaces[].name`; null when not found.
    pub netns: Option<String>,
    /// True when the peer is in the namespace netplumb runs in.
    pub host: bool,
    /// The peer namespace's id as this link's namespace numbers it; null
    /// when both ends are in the same namespace.
    pub netnsid: Option<i32>,
}

#[derive(Debug, Serialize)]
pub struct AddrJ {
    pub address: String,
    pub prefixlen: u8,
    /// "172.18.0.20/16"
    pub cidr: String,
    /// "inet" or "inet6"
    pub family: &'static str,
    pub scope: String,
    /// As `ip -j addr` names them: "dynamic", "tentative", "noprefixroute", …
    pub flags: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct RouteJ {
    /// "default" or a prefix, as `ip -j route` prints it.
    pub dst: String,
    pub family: &'static str,
    pub gateway: Option<String>,
    pub dev: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub protocol: String,
    pub scope: String,
    pub prefsrc: Option<String>,
    pub metric: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct NatJ {
    /// nftables table (family inet).
    pub table: String,
    pub family: &'static str,
    pub chains: Vec<ChainJ>,
    /// The NAT rules other than port mappings, typed.
    pub rules: Vec<RuleJ>,
    pub maps: Vec<MapJ>,
    /// Elements of every DNAT map together.
    pub dnat_mappings: usize,
    /// DNAT mappings per target address, most first.
    pub dnat_targets: Vec<TargetJ>,
}

#[derive(Debug, Serialize)]
pub struct ChainJ {
    pub name: String,
    pub rules: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct MapJ {
    pub name: String,
    pub key_type: String,
    pub data_type: String,
    pub interval: bool,
    pub count: usize,
    pub targets: Vec<TargetJ>,
    pub elements: Vec<ElementJ>,
}

#[derive(Debug, Serialize)]
pub struct ElementJ {
    /// The key's fields in order.
    pub key: Vec<FieldJ>,
    /// The value's fields in order ([] for a plain set).
    pub value: Vec<FieldJ>,
}

/// One field of a key or value. An address field names its first and last
/// address (strings), a port field its first and last port (numbers).
#[derive(Debug, Serialize)]
pub struct FieldJ {
    /// "ipv4_addr", "ipv6_addr", "inet_service", "ifname", "?"
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub first: Option<serde_json::Value>,
    pub last: Option<serde_json::Value>,
    /// As nft prints the field: "20000-20999", "10.0.0.0/8", "\"eth0\"".
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct RuleJ {
    /// "masquerade", "snat", "hairpin" or "localhost_masquerade".
    pub kind: &'static str,
    /// The subnet whose traffic is rewritten (null for localhost_masquerade).
    pub subnet: Option<String>,
    /// snat: the source address it takes.
    pub to: Option<String>,
    /// Only traffic leaving through this interface.
    pub oif: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TargetJ {
    pub address: String,
    pub count: usize,
}

fn ns_name(ns: &NsRef) -> String {
    match ns {
        NsRef::Host => "host".into(),
        NsRef::Named(n) => n.to_string(),
    }
}

fn family(ip: &std::net::IpAddr) -> &'static str {
    if ip.is_ipv4() { "inet" } else { "inet6" }
}

fn addr(a: &Addr) -> AddrJ {
    AddrJ {
        address: a.net.addr().to_string(),
        prefixlen: a.net.prefix_len(),
        cidr: a.net.to_string(),
        family: family(&a.net.addr()),
        scope: a.scope.clone(),
        flags: a.flags.clone(),
    }
}

fn peer(p: &Peer) -> PeerJ {
    PeerJ {
        name: p.name.clone(),
        index: p.index,
        netns: p.ns.as_ref().map(ns_name),
        host: p.ns == Some(NsRef::Host),
        netnsid: p.netnsid,
    }
}

fn link(l: &Link) -> LinkJ {
    LinkJ {
        name: l.name.clone(),
        index: l.index,
        kind: l.kind.clone(),
        admin_up: l.admin_up,
        carrier: l.lower_up,
        operstate: l.oper.clone(),
        mtu: l.mtu,
        mac: l.mac.clone(),
        master: l.master.clone(),
        peer: l.peer.as_ref().map(peer),
        addresses: l.addrs.iter().map(addr).collect(),
    }
}

fn route(r: &Route) -> RouteJ {
    RouteJ {
        dst: r.dest_text(),
        family: family(&r.dest.addr()),
        gateway: r.via.map(|v| v.to_string()),
        dev: r.dev.clone(),
        kind: r.kind.clone(),
        protocol: r.proto.clone(),
        scope: r.scope.clone(),
        prefsrc: r.src.map(|s| s.to_string()),
        metric: r.metric,
    }
}

fn targets(t: Vec<(std::net::IpAddr, usize)>) -> Vec<TargetJ> {
    t.into_iter()
        .map(|(a, count)| TargetJ {
            address: a.to_string(),
            count,
        })
        .collect()
}

fn field(f: &ElemField) -> FieldJ {
    use serde_json::Value;
    let (first, last) = match f {
        ElemField::Addr { first, last } => (
            Some(Value::from(first.to_string())),
            Some(Value::from(last.to_string())),
        ),
        ElemField::Port { first, last } => (Some(Value::from(*first)), Some(Value::from(*last))),
        ElemField::Ifname(n) => (Some(Value::from(n.clone())), Some(Value::from(n.clone()))),
        ElemField::Other(_) => (None, None),
    };
    FieldJ {
        kind: f.type_name(),
        first,
        last,
        text: f.to_string(),
    }
}

fn element(e: &MapElem) -> ElementJ {
    ElementJ {
        key: e.key.iter().map(field).collect(),
        value: e.value.iter().map(field).collect(),
    }
}

fn rule(r: &NatRule) -> Option<RuleJ> {
    let s = |x: &dyn ToString| Some(x.to_string());
    Some(match r {
        NatRule::Masquerade { src, oif, .. } => RuleJ {
            kind: "masquerade",
            subnet: s(src),
            to: None,
            oif: oif.clone(),
        },
        NatRule::Snat { src, to, oif, .. } => RuleJ {
            kind: "snat",
            subnet: s(src),
            to: s(to),
            oif: oif.clone(),
        },
        NatRule::Hairpin { subnet, .. } => RuleJ {
            kind: "hairpin",
            subnet: s(subnet),
            to: None,
            oif: None,
        },
        NatRule::LocalhostMasquerade { oif, .. } => RuleJ {
            kind: "localhost_masquerade",
            subnet: None,
            to: None,
            oif: Some(oif.clone()),
        },
        // Port mappings are the maps' elements.
        NatRule::Dnat(_) => return None,
    })
}

fn map(m: &NatMap) -> MapJ {
    MapJ {
        name: m.name.clone(),
        key_type: m.key_type.clone(),
        data_type: m.data_type.clone(),
        interval: m.interval,
        count: m.elements.len(),
        targets: targets(m.targets()),
        elements: m.elements.iter().map(element).collect(),
    }
}

fn nat(n: &Nat) -> NatJ {
    NatJ {
        table: n.table.clone(),
        family: "inet",
        chains: n
            .chains
            .iter()
            .map(|(name, rules)| ChainJ {
                name: name.clone(),
                rules: rules.clone(),
            })
            .collect(),
        rules: n.rules.iter().filter_map(rule).collect(),
        maps: n.maps.iter().map(map).collect(),
        dnat_mappings: n.dnat_count(),
        dnat_targets: targets(n.dnat_targets()),
    }
}

fn namespace(n: &Namespace) -> NamespaceJ {
    NamespaceJ {
        name: n.label(),
        host: n.ns == NsRef::Host,
        owned: n.owned,
        exists: n.exists,
        forwarding: Forwarding {
            ipv4: n.forwarding_v4,
            ipv6: n.forwarding_v6,
        },
        links: n.links.iter().map(link).collect(),
        routes: n.routes.iter().map(route).collect(),
        nat: n.nat.iter().map(nat).collect(),
        missing: n.missing.clone(),
    }
}

pub fn build(views: &[TopologyView]) -> Show {
    Show {
        schema: SCHEMA,
        topologies: views
            .iter()
            .map(|t| Topology {
                name: t.name.clone(),
                site: t.site.clone(),
                namespaces: t.namespaces.iter().map(namespace).collect(),
            })
            .collect(),
    }
}

pub fn render(views: &[TopologyView]) -> String {
    // Serialising plain structs of strings and numbers cannot fail.
    serde_json::to_string_pretty(&build(views)).unwrap_or_default() + "\n"
}
