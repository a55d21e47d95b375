//! `graph FILE.rhai` of a script with sites (issue 19): drawn from the
//! script's model, since no one machine has every part. Each site is a
//! cluster (its namespaces nested in it), links are nodes, veth pairs and
//! bridge ports solid edges, and tunnels dashed edges labelled with their
//! VNI: between the two ends of a cross-site veth, and between the vxlan
//! ports of every pair of sites of a stretched bridge.

use std::fmt::Write;

use super::dot::{dot_id, html};
use super::mermaid::mm_text;
use crate::model::NsRef;
use crate::site::Tunnel;
use crate::topo::{LinkKind, Topology};

/// One site's part, as the picture needs it.
pub struct SitePart<'a> {
    pub name: String,
    pub underlay: String,
    pub topo: &'a Topology,
}

struct Node {
    id: String,
    label: String,
    bridge: bool,
}

struct Edge {
    a: String,
    b: String,
    label: String,
    tunnel: bool,
}

/// (site label, [(namespace label, nodes)]), edges.
type Picture = (Vec<(String, Vec<(String, Vec<Node>)>)>, Vec<Edge>);

fn node_id(site: &str, ns: &NsRef, dev: &str) -> String {
    let ns = match ns {
        NsRef::Host => "host".to_string(),
        NsRef::Named(n) => format!("ns_{n}"),
    };
    format!("{site}__{ns}__{dev}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn ns_label(ns: &NsRef) -> String {
    match ns {
        NsRef::Host => "host".into(),
        NsRef::Named(n) => format!("netns {n}"),
    }
}

fn picture(parts: &[SitePart], tunnels: &[Tunnel]) -> Picture {
    let mut sites = Vec::new();
    let mut edges = Vec::new();
    for p in parts {
        let t = p.topo;
        let mut nss: Vec<(NsRef, Vec<Node>)> = Vec::new();
        for (id, l) in t.links() {
            let addrs: Vec<String> = t
                .addrs()
                .iter()
                .filter(|a| a.link == id)
                .map(|a| a.cidr.to_string())
                .collect();
            let mut label = l.name.to_string();
            if let LinkKind::Vxlan { spec, .. } = &l.kind {
                label.push_str(&format!("\nvxlan {}", spec.id));
            }
            for a in addrs {
                label.push('\n');
                label.push_str(&a);
            }
            let node = Node {
                id: node_id(&p.name, &l.ns, l.name.as_str()),
                label,
                bridge: l.kind == LinkKind::Bridge,
            };
            match nss.iter_mut().find(|(n, _)| *n == l.ns) {
                Some((_, v)) => v.push(node),
                None => nss.push((l.ns.clone(), vec![node])),
            }
            if let LinkKind::Veth { peer } = l.kind
                && id.index() < peer.index()
            {
                let q = t.get(peer);
                edges.push(Edge {
                    a: node_id(&p.name, &l.ns, l.name.as_str()),
                    b: node_id(&p.name, &q.ns, q.name.as_str()),
                    label: String::new(),
                    tunnel: false,
                });
            }
            if let Some(m) = l.master {
                let b = t.get(m);
                edges.push(Edge {
                    a: node_id(&p.name, &l.ns, l.name.as_str()),
                    b: node_id(&p.name, &b.ns, b.name.as_str()),
                    label: String::new(),
                    tunnel: false,
                });
            }
        }
        let nss = nss.into_iter().map(|(n, v)| (ns_label(&n), v)).collect();
        sites.push((format!("site {} ({})", p.name, p.underlay), nss));
    }
    for t in tunnels {
        for (i, a) in t.ends.iter().enumerate() {
            for b in &t.ends[i + 1..] {
                edges.push(Edge {
                    a: node_id(&a.0, &a.1, &a.2),
                    b: node_id(&b.0, &b.1, &b.2),
                    label: format!("vni {}", t.vni),
                    tunnel: true,
                });
            }
        }
    }
    (sites, edges)
}

pub fn dot(parts: &[SitePart], tunnels: &[Tunnel]) -> String {
    let (sites, edges) = picture(parts, tunnels);
    let mut out =
        String::from("graph netplumb {\n  compound=true;\n  node [fontname=\"Helvetica\"];\n");
    for (i, (label, nss)) in sites.iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_site{i} {{");
        let _ = writeln!(out, "    label={}; style=bold;", dot_id(label));
        for (j, (nl, nodes)) in nss.iter().enumerate() {
            let _ = writeln!(out, "    subgraph cluster_site{i}_ns{j} {{");
            let _ = writeln!(out, "      label={}; style=rounded;", dot_id(nl));
            for n in nodes {
                let shape = if n.bridge { "box" } else { "ellipse" };
                let label = n.label.lines().map(html).collect::<Vec<_>>().join("<br/>");
                let _ = writeln!(
                    out,
                    "      {} [shape={shape}, label=<{label}>];",
                    dot_id(&n.id)
                );
            }
            out.push_str("    }\n");
        }
        out.push_str("  }\n");
    }
    for e in &edges {
        if e.tunnel {
            let _ = writeln!(
                out,
                "  {} -- {} [style=dashed, label={}];",
                dot_id(&e.a),
                dot_id(&e.b),
                dot_id(&e.label)
            );
        } else {
            let _ = writeln!(out, "  {} -- {};", dot_id(&e.a), dot_id(&e.b));
        }
    }
    out.push_str("}\n");
    out
}

pub fn mermaid(parts: &[SitePart], tunnels: &[Tunnel]) -> String {
    let (sites, edges) = picture(parts, tunnels);
    let mut out = String::from("flowchart LR\n");
    for (i, (label, nss)) in sites.iter().enumerate() {
        let _ = writeln!(out, "  subgraph site{i}[\"{}\"]", mm_text(label));
        for (j, (nl, nodes)) in nss.iter().enumerate() {
            let _ = writeln!(out, "    subgraph site{i}_ns{j}[\"{}\"]", mm_text(nl));
            for n in nodes {
                let (o, c) = if n.bridge { ("[", "]") } else { ("(", ")") };
                let _ = writeln!(out, "      {}{o}\"{}\"{c}", n.id, mm_text(&n.label));
            }
            out.push_str("    end\n");
        }
        out.push_str("  end\n");
    }
    for e in &edges {
        if e.tunnel {
            let _ = writeln!(out, "  {} -. \"{}\" .- {}", e.a, mm_text(&e.label), e.b);
        } else {
            let _ = writeln!(out, "  {} --- {}", e.a, e.b);
        }
    }
    out
}
