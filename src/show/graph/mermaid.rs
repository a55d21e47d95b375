//! The scene as a Mermaid flowchart.

use std::collections::HashMap;
use std::fmt::Write;

use super::super::view::TopologyView;
use super::scene::*;

// ------------------------------------------------------------ mermaid

pub(super) fn mm_text(s: &str) -> String {
    // Mermaid labels are quoted; entity codes keep quotes and brackets literal.
    s.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
        .replace('\n', "<br/>")
}

struct MmIds(HashMap<String, String>);

impl MmIds {
    /// Mermaid ids must be plain words: number every key.
    fn id(&mut self, key: &str) -> String {
        let n = self.0.len();
        self.0
            .entry(key.to_string())
            .or_insert_with(|| format!("n{n}"))
            .clone()
    }
}

fn mm_node(out: &mut String, indent: &str, ids: &mut MmIds, n: &Node) {
    let mut label = format!("<b>{}</b>", mm_text(&n.title));
    for l in &n.lines {
        let _ = write!(label, "<br/>{}", mm_text(l));
    }
    let id = ids.id(&n.key);
    let shape = match n.kind {
        NodeKind::Stack => format!("{id}(\"{label}\")"),
        NodeKind::Bridge => format!("{id}[[\"{label}\"]]"),
        NodeKind::Nat => format!("{id}>\"{label}\"]"),
        NodeKind::External => format!("{id}[/\"{label}\"/]"),
    };
    let _ = writeln!(out, "{indent}{shape}");
}

pub fn mermaid(views: &[TopologyView]) -> String {
    let sc = scene(views);
    let mut ids = MmIds(HashMap::new());
    let mut out = String::from("flowchart LR\n");
    let several = sc.topos.len() > 1;
    let host = sc.host.iter().map(|h| ("", std::slice::from_ref(h)));
    let topos = sc.topos.iter().map(|(n, c)| (n.as_str(), c.as_slice()));
    for (i, (name, clusters)) in host.chain(topos).enumerate() {
        // the host (i == 0 when there is one) stands outside the topologies
        let wrap = several && !(i == 0 && sc.host.is_some());
        let indent = if wrap { "    " } else { "  " };
        if wrap {
            let _ = writeln!(out, "  subgraph topo{i}[\"topology {}\"]", mm_text(name));
        }
        for c in clusters {
            let id = ids.id(&format!("cluster/{}", c.key));
            let _ = writeln!(out, "{indent}subgraph {id}[\"{}\"]", mm_text(&c.label));
            for n in &c.nodes {
                mm_node(&mut out, &format!("{indent}  "), &mut ids, n);
            }
            let _ = writeln!(out, "{indent}end");
        }
        if wrap {
            out.push_str("  end\n");
        }
    }
    for n in &sc.external {
        mm_node(&mut out, "  ", &mut ids, n);
    }
    let mut down_links = Vec::new();
    for (i, e) in sc.edges.iter().enumerate() {
        let a = ids.id(&e.a);
        let b = ids.id(&e.b);
        let line = match e.kind {
            EdgeKind::Veth => {
                let text = veth_label(e);
                if e.down {
                    down_links.push(i);
                }
                format!("{a} ---|\"{}\"| {b}", mm_text(&text))
            }
            EdgeKind::Nat => format!("{a} -.- {b}"),
            EdgeKind::Dnat => format!("{a} -.->|\"{}\"| {b}", mm_text(&e.head)),
        };
        let _ = writeln!(out, "  {line}");
    }
    for i in down_links {
        let _ = writeln!(out, "  linkStyle {i} stroke:#c00000,stroke-dasharray:5 5");
    }
    out
}
