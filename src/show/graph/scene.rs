//! The scene: clusters (namespaces), nodes (stacks, bridges, NAT notes,
//! peers outside the picture) and edges (veth pairs, routes, NAT), built
//! once from the gathered view and written by dot.rs and mermaid.rs.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;

use netplumb_nft::NatRule;

use super::super::mappings;
use super::super::table::thousands;
use super::super::view::{Link, Namespace, Nat, TopologyView};
use crate::model::NsRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NodeKind {
    /// A namespace's own IP stack (routes, unbridged veth ends, NAT).
    Stack,
    Bridge,
    Nat,
    /// A peer outside the picture.
    External,
}

#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) key: String,
    pub(super) kind: NodeKind,
    pub(super) title: String,
    pub(super) lines: Vec<String>,
    pub(super) down: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Cluster {
    pub(super) key: String,
    pub(super) label: String,
    pub(super) host: bool,
    pub(super) nodes: Vec<Node>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EdgeKind {
    Veth,
    /// A NAT note to its namespace.
    Nat,
    /// A NAT note to where its DNAT mappings lead (`head` says how many).
    Dnat,
}

#[derive(Debug, Clone)]
pub(super) struct Edge {
    pub(super) a: String,
    pub(super) b: String,
    pub(super) kind: EdgeKind,
    /// Interface names and addresses at the `a` end and at the `b` end.
    pub(super) tail: String,
    pub(super) head: String,
    pub(super) down: bool,
}

#[derive(Debug, Default)]
pub(super) struct Scene {
    pub(super) title: String,
    /// (topology name, its namespaces), outer clusters when there are several.
    pub(super) topos: Vec<(String, Vec<Cluster>)>,
    /// The host, once, whichever topologies have something in it.
    pub(super) host: Option<Cluster>,
    pub(super) external: Vec<Node>,
    pub(super) edges: Vec<Edge>,
}

/// Add one topology's host cluster to the picture's one host.
fn merge_host(into: &mut Option<Cluster>, c: Cluster) {
    let Some(h) = into else {
        *into = Some(c);
        return;
    };
    for n in c.nodes {
        match h.nodes.iter_mut().find(|m| m.key == n.key) {
            Some(m) => {
                for l in n.lines {
                    if !m.lines.contains(&l) {
                        m.lines.push(l);
                    }
                }
            }
            None => h.nodes.push(n),
        }
    }
}

pub(super) fn ns_key(t: usize, ns: &NsRef) -> String {
    match ns {
        // one host, however many topologies draw on it
        NsRef::Host => "host".into(),
        NsRef::Named(n) => format!("t{t}/ns/{n}"),
    }
}

pub(super) fn stack_key(t: usize, ns: &NsRef) -> String {
    format!("{}/@stack", ns_key(t, ns))
}

pub(super) fn link_key(t: usize, ns: &NsRef, name: &str) -> String {
    format!("{}/{name}", ns_key(t, ns))
}

pub(super) fn ns_label(ns: &NsRef) -> String {
    match ns {
        NsRef::Host => "host".into(),
        NsRef::Named(n) => n.to_string(),
    }
}

/// Where a link attaches in the picture: its bridge, itself when it is a
/// bridge, or its namespace's stack.
pub(super) fn endpoint(t: usize, n: &Namespace, l: &Link, used: &mut BTreeSet<String>) -> String {
    if l.is_bridge() {
        return link_key(t, &n.ns, &l.name);
    }
    if let Some(m) = &l.master
        && n.link(m).is_some_and(Link::is_bridge)
    {
        return link_key(t, &n.ns, m);
    }
    let k = stack_key(t, &n.ns);
    used.insert(k.clone());
    k
}

pub(super) fn end_text(l: &Link) -> String {
    let mut parts = vec![l.name.clone()];
    parts.extend(
        l.addrs
            .iter()
            .filter(|a| a.is_routable())
            .map(|a| a.net.to_string()),
    );
    parts.join("\n")
}

/// A NAT rule in a few words: "masquerade 172.18.0.0/16".
pub(super) fn short_rule(r: &NatRule) -> String {
    let out = |oif: &Option<String>| {
        oif.as_ref()
            .map(|o| format!(" out {o}"))
            .unwrap_or_default()
    };
    match r {
        NatRule::Masquerade { src, oif, .. } => format!("masquerade {src}{}", out(oif)),
        NatRule::Snat { src, to, oif, .. } => format!("SNAT {src}{} → {to}", out(oif)),
        NatRule::Hairpin { subnet, .. } => format!("hairpin {subnet}"),
        NatRule::LocalhostMasquerade { oif, .. } => format!("localhost masquerade out {oif}"),
        NatRule::Dnat(m) => format!("DNAT {}-{} → {}", m.ports.0, m.ports.1, m.to_addr),
    }
}

pub(super) fn nat_lines(n: &Nat) -> Vec<String> {
    let mut lines: Vec<String> = n.source_rules().map(short_rule).collect();
    // the mappings themselves under their count (a bare "3 → 172.30.0.3"
    // read as port 3)
    let count = mappings::total(n);
    if count > 0 {
        lines.push(format!(
            "{} DNAT mapping{}:",
            thousands(count),
            if count == 1 { "" } else { "s" }
        ));
        lines.extend(mappings::lines(n, 6));
    }
    lines
}

pub(super) fn scene(views: &[TopologyView]) -> Scene {
    let mut sc = Scene {
        title: match views {
            [one] => format!("netplumb: {}", one.name),
            _ => "netplumb".into(),
        },
        ..Scene::default()
    };
    let mut external: HashMap<String, Node> = HashMap::new();
    let mut seen_pairs: BTreeSet<(String, String)> = BTreeSet::new();
    for (t, v) in views.iter().enumerate() {
        let mut used: BTreeSet<String> = BTreeSet::new();
        let mut stack_lines: HashMap<String, Vec<String>> = HashMap::new();
        let mut clusters = Vec::new();
        for n in &v.namespaces {
            let mut nodes = Vec::new();
            for l in n.links.iter().filter(|l| l.is_bridge()) {
                let mut lines = vec!["bridge".to_string()];
                lines.extend(
                    l.addrs
                        .iter()
                        .filter(|a| a.is_routable())
                        .map(|a| a.net.to_string()),
                );
                if !l.admin_up {
                    lines.push("DOWN".into());
                }
                nodes.push(Node {
                    key: link_key(t, &n.ns, &l.name),
                    kind: NodeKind::Bridge,
                    title: l.name.clone(),
                    lines,
                    down: !l.admin_up,
                });
            }
            // veth pairs, each drawn once.
            for l in n.links.iter().filter(|l| l.is_veth()) {
                let Some(p) = &l.peer else { continue };
                let a = endpoint(t, n, l, &mut used);
                let here = (ns_key(t, &n.ns), l.name.clone());
                let peer_in_view = p.ns.as_ref().and_then(|pns| {
                    let pn = v.namespace(pns)?;
                    let pl = pn.link(p.name.as_deref()?)?;
                    Some((pn, pl))
                });
                let (b, head, down) = match peer_in_view {
                    Some((pn, pl)) => {
                        let there = (ns_key(t, &pn.ns), pl.name.clone());
                        let pair = if here <= there {
                            (
                                format!("{}/{}", here.0, here.1),
                                format!("{}/{}", there.0, there.1),
                            )
                        } else {
                            (
                                format!("{}/{}", there.0, there.1),
                                format!("{}/{}", here.0, here.1),
                            )
                        };
                        if !seen_pairs.insert(pair) {
                            continue;
                        }
                        (
                            endpoint(t, pn, pl, &mut used),
                            end_text(pl),
                            !(pl.admin_up && pl.lower_up),
                        )
                    }
                    None => {
                        let (key, title, line) = match (&p.ns, &p.name) {
                            (Some(pns), Some(pname)) => (
                                format!("x/{}/{pname}", ns_label(pns)),
                                pname.to_string(),
                                format!(
                                    "in {} (not in this topology)",
                                    match pns {
                                        NsRef::Host => "the host".to_string(),
                                        NsRef::Named(x) => format!("netns {x}"),
                                    }
                                ),
                            ),
                            _ => (
                                format!("x/{}/{}/if{}", ns_key(t, &n.ns), l.name, p.index),
                                format!("if{}", p.index),
                                format!(
                                    "in an unnamed netns (netnsid {})",
                                    p.netnsid.map_or("?".into(), |i| i.to_string())
                                ),
                            ),
                        };
                        external.entry(key.clone()).or_insert(Node {
                            key: key.clone(),
                            kind: NodeKind::External,
                            title,
                            lines: vec![line],
                            down: false,
                        });
                        (key, p.name.clone().unwrap_or_default(), false)
                    }
                };
                sc.edges.push(Edge {
                    a,
                    b,
                    kind: EdgeKind::Veth,
                    tail: end_text(l),
                    head,
                    down: down || !(l.admin_up && l.lower_up),
                });
            }
            // Routes through a gateway, naming whoever has that address. (Drawn
            // as arrows they cross the whole picture and hide the links.)
            for r in &n.routes {
                let Some(gw) = r.via else { continue };
                let from = stack_key(t, &n.ns);
                used.insert(from.clone());
                let owner = v
                    .owner_of(&gw)
                    .map(|(gn, gl)| format!(" ({}:{})", ns_label(&gn.ns), gl.name))
                    .unwrap_or_default();
                stack_lines
                    .entry(from)
                    .or_default()
                    .push(format!("{} via {gw}{owner}", r.dest_text()));
            }
            // Other devices with addresses (dummy, vlan, a physical NIC…).
            for l in &n.links {
                if l.is_bridge() || l.is_veth() || l.name == "lo" {
                    continue;
                }
                let k = stack_key(t, &n.ns);
                used.insert(k.clone());
                let mut s = format!("{} ({})", l.name, l.kind.as_deref().unwrap_or("device"));
                for a in l.addrs.iter().filter(|a| a.is_routable()) {
                    let _ = write!(s, " {}", a.net);
                }
                stack_lines.entry(k).or_default().push(s);
            }
            for (i, nat) in n.nat.iter().enumerate() {
                let key = format!("{}/@nat{t}.{i}", ns_key(t, &n.ns));
                let to = stack_key(t, &n.ns);
                used.insert(to.clone());
                nodes.push(Node {
                    key: key.clone(),
                    kind: NodeKind::Nat,
                    title: format!("NAT ({})", nat.table),
                    lines: nat_lines(nat),
                    down: false,
                });
                // Where the mappings lead, when that address is in the picture.
                for (addr, _) in nat.dnat_targets().iter().take(5) {
                    let Some((tn, tl)) = v.owner_of(addr) else {
                        continue;
                    };
                    sc.edges.push(Edge {
                        a: key.clone(),
                        b: endpoint(t, tn, tl, &mut used),
                        kind: EdgeKind::Dnat,
                        tail: String::new(),
                        head: mappings::to_addr(nat, &addr.to_string()),
                        down: false,
                    });
                }
                sc.edges.push(Edge {
                    a: key,
                    b: to,
                    kind: EdgeKind::Nat,
                    tail: String::new(),
                    head: String::new(),
                    down: false,
                });
            }
            if n.forwarding_v4 == Some(true) || n.forwarding_v6 == Some(true) {
                stack_lines
                    .entry(stack_key(t, &n.ns))
                    .or_default()
                    .push("ip forwarding on".into());
            }
            // A cluster with nothing else in it still gets its stack node, so
            // every namespace appears.
            if nodes.is_empty() {
                used.insert(stack_key(t, &n.ns));
            }
            clusters.push(Cluster {
                key: ns_key(t, &n.ns),
                label: match &n.ns {
                    NsRef::Host => "host".into(),
                    NsRef::Named(x) => format!("netns {x}"),
                },
                host: n.ns == NsRef::Host,
                nodes,
            });
        }
        for (c, n) in clusters.iter_mut().zip(&v.namespaces) {
            let k = stack_key(t, &n.ns);
            if used.contains(&k) {
                let mut lines = stack_lines.remove(&k).unwrap_or_default();
                if !n.exists {
                    lines.push("MISSING from the kernel".into());
                }
                c.nodes.insert(
                    0,
                    Node {
                        key: k,
                        kind: NodeKind::Stack,
                        title: ns_label(&n.ns),
                        lines,
                        down: !n.exists,
                    },
                );
            }
        }
        let (hosts, named): (Vec<Cluster>, Vec<Cluster>) =
            clusters.into_iter().partition(|c| c.host);
        for h in hosts {
            merge_host(&mut sc.host, h);
        }
        sc.topos.push((v.name.clone(), named));
    }
    let mut ext: Vec<Node> = external.into_values().collect();
    ext.sort_by(|a, b| a.key.cmp(&b.key));
    sc.external = ext;
    sc
}

/// "veth0 ↔ eth0 172.18.0.20/16": the end at `a` first (dot ranks the
/// tail on the left); broken after the arrow when long.
pub(super) fn veth_label(e: &Edge) -> String {
    let tail = e.tail.replace('\n', " ");
    let head = e.head.replace('\n', " ");
    let mut s = if tail.len() + head.len() > 36 {
        format!("{tail} ↔\n{head}")
    } else {
        format!("{tail} ↔ {head}")
    };
    if e.down {
        s.push_str("\n(down)");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_nat_rules() {
        let src: ipnet::IpNet = "172.18.0.0/16".parse().unwrap();
        let m = NatRule::Masquerade {
            src,
            oif: None,
            tag: 0,
        };
        assert_eq!(short_rule(&m), "masquerade 172.18.0.0/16");
        let s = NatRule::Snat {
            src,
            to: "192.168.1.10".parse().unwrap(),
            oif: Some("eth0".into()),
            tag: 0,
        };
        assert_eq!(short_rule(&s), "SNAT 172.18.0.0/16 out eth0 → 192.168.1.10");
    }
}
