//! `graph`: the gathered topology as a picture. A scene (clusters, nodes,
//! edges) is built once and written as Graphviz dot or as a Mermaid
//! flowchart; SVG is dot piped through Graphviz.
//!
//! Namespaces are clusters. Bridges are nodes. A namespace's own IP stack is
//! a node when something attaches to it (a veth end that is not a bridge
//! port, a route, NAT). veth pairs are edges labelled at each end with the
//! interface name and its addresses. Routes with a gateway are dotted arrows
//! to whoever holds the gateway address; NAT is a note beside its namespace.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;
use std::io::Write as _;
use std::process::{Command, Stdio};

use super::model::{Link, Namespace, Nat, TopologyView};
use super::table::thousands;
use crate::model::NsRef;

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("cannot render SVG: Graphviz's `dot` is not installed")]
    NoGraphviz,
    #[error("Graphviz `dot -Tsvg` failed: {0}")]
    Dot(String),
}

impl GraphError {
    pub fn help(&self) -> Option<&'static str> {
        match self {
            GraphError::NoGraphviz => Some(
                "install Graphviz (apt-get install graphviz, dnf install graphviz, brew install graphviz), \
                 or use --format dot or --format mermaid",
            ),
            GraphError::Dot(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    /// A namespace's own IP stack (routes, unbridged veth ends, NAT).
    Stack,
    Bridge,
    Nat,
    /// A peer outside the picture.
    External,
}

#[derive(Debug, Clone)]
struct Node {
    key: String,
    kind: NodeKind,
    title: String,
    lines: Vec<String>,
    down: bool,
}

#[derive(Debug, Clone)]
struct Cluster {
    key: String,
    label: String,
    host: bool,
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EdgeKind {
    Veth,
    /// A NAT note to its namespace.
    Nat,
    /// A NAT note to where its DNAT mappings lead (`head` says how many).
    Dnat,
}

#[derive(Debug, Clone)]
struct Edge {
    a: String,
    b: String,
    kind: EdgeKind,
    /// Interface names and addresses at the `a` end and at the `b` end.
    tail: String,
    head: String,
    down: bool,
}

#[derive(Debug, Default)]
struct Scene {
    title: String,
    /// (topology name, its namespaces), outer clusters when there are several.
    topos: Vec<(String, Vec<Cluster>)>,
    /// The host, once, whichever topologies have something in it.
    host: Option<Cluster>,
    external: Vec<Node>,
    edges: Vec<Edge>,
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

fn ns_key(t: usize, ns: &NsRef) -> String {
    match ns {
        // one host, however many topologies draw on it
        NsRef::Host => "host".into(),
        NsRef::Named(n) => format!("t{t}/ns/{n}"),
    }
}

fn stack_key(t: usize, ns: &NsRef) -> String {
    format!("{}/@stack", ns_key(t, ns))
}

fn link_key(t: usize, ns: &NsRef, name: &str) -> String {
    format!("{}/{name}", ns_key(t, ns))
}

fn ns_label(ns: &NsRef) -> String {
    match ns {
        NsRef::Host => "host".into(),
        NsRef::Named(n) => n.to_string(),
    }
}

/// Where a link attaches in the picture: its bridge, itself when it is a
/// bridge, or its namespace's stack.
fn endpoint(t: usize, n: &Namespace, l: &Link, used: &mut BTreeSet<String>) -> String {
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

fn end_text(l: &Link) -> String {
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
fn short_rule(r: &str) -> String {
    let words: Vec<&str> = r.split_whitespace().collect();
    let after = |w: &str| {
        words
            .iter()
            .position(|x| *x == w)
            .and_then(|i| words.get(i + 1))
            .copied()
    };
    let src = after("saddr").unwrap_or("any");
    let oif = after("oifname")
        .map(|o| format!(" out {}", o.trim_matches('"')))
        .unwrap_or_default();
    if let Some(to) = r.split(" dnat ").nth(1) {
        let proto = if r.contains("udp") { "udp" } else { "tcp" };
        let port = after("dport").unwrap_or("?");
        let dst = after("daddr").map(|d| format!("{d}:")).unwrap_or_default();
        let to = to.rsplit(' ').next().unwrap_or(to);
        return format!("{proto} {dst}{port} → {to}");
    }
    if r.ends_with("masquerade") {
        return format!("masquerade {src}{oif}");
    }
    if let Some(i) = words.iter().position(|w| *w == "snat") {
        let to = words.get(i + 3).copied().unwrap_or("?");
        return format!("SNAT {src}{oif} → {to}");
    }
    r.to_string()
}

fn nat_lines(n: &Nat) -> Vec<String> {
    let mut lines: Vec<String> = n.plain_rules().iter().map(|r| short_rule(r)).collect();
    // the mappings themselves under their count (a bare "3 → 172.30.0.3"
    // read as port 3)
    let count = super::mappings::total(n);
    if count > 0 {
        lines.push(format!(
            "{} DNAT mapping{}:",
            thousands(count),
            if count == 1 { "" } else { "s" }
        ));
        lines.extend(super::mappings::lines(n, 6));
    }
    lines
}

fn scene(views: &[TopologyView]) -> Scene {
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
                    let Some((tn, tl)) = addr.parse().ok().and_then(|ip| v.owner_of(&ip)) else {
                        continue;
                    };
                    sc.edges.push(Edge {
                        a: key.clone(),
                        b: endpoint(t, tn, tl, &mut used),
                        kind: EdgeKind::Dnat,
                        tail: String::new(),
                        head: super::mappings::to_addr(nat, addr),
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
fn veth_label(e: &Edge) -> String {
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

// ---------------------------------------------------------------- dot

fn dot_id(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn dot_node(out: &mut String, indent: &str, n: &Node) {
    let mut label = format!("<b>{}</b>", html(&n.title));
    for l in &n.lines {
        let _ = write!(label, "<br/>{}", html(l));
    }
    let style = match n.kind {
        NodeKind::Stack => "shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\"",
        NodeKind::Bridge => {
            "shape=box, style=\"filled\", fillcolor=\"#cfe2f3\", color=\"#1f4e79\", penwidth=2"
        }
        NodeKind::Nat => "shape=note, style=\"filled\", fillcolor=\"#fff2cc\", color=\"#bf9000\"",
        NodeKind::External => "shape=box, style=\"dashed\"",
    };
    let color = if n.down {
        ", fontcolor=\"#c00000\""
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "{indent}{} [{style}{color}, label=<{label}>];",
        dot_id(&n.key)
    );
}

fn dot_label(s: &str) -> String {
    // In a quoted dot label "\n" centres a line break.
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn dot_cluster(out: &mut String, indent: &str, c: &Cluster) {
    let _ = writeln!(
        out,
        "{indent}subgraph {} {{",
        dot_id(&format!("cluster_{}", c.key))
    );
    let fill = if c.host { "#fdf3e1" } else { "#eef3ea" };
    let _ = writeln!(
        out,
        "{indent}  label=<<b>{}</b>>; style=\"rounded,filled\"; fillcolor=\"{fill}\"; color=\"#7f7f7f\";",
        html(&c.label)
    );
    for n in &c.nodes {
        dot_node(out, &format!("{indent}  "), n);
    }
    let _ = writeln!(out, "{indent}}}");
}

pub fn dot(views: &[TopologyView]) -> String {
    let sc = scene(views);
    let mut out = String::new();
    let _ = writeln!(out, "graph {} {{", dot_id("netplumb"));
    let _ = writeln!(
        out,
        "  graph [rankdir=LR, fontname=\"Helvetica\", fontsize=14, labelloc=t, nodesep=0.6, ranksep=1.4, \
         label=<<b>{}</b>>];",
        html(&sc.title)
    );
    out.push_str("  node [fontname=\"Helvetica\", fontsize=11];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=10];\n");
    let several = sc.topos.len() > 1;
    if let Some(h) = &sc.host {
        dot_cluster(&mut out, "  ", h);
    }
    for (i, (name, clusters)) in sc.topos.iter().enumerate() {
        let indent = if several { "    " } else { "  " };
        if several {
            let _ = writeln!(out, "  subgraph {} {{", dot_id(&format!("cluster_topo{i}")));
            let _ = writeln!(
                out,
                "    label=<<b>topology {}</b>>; style=\"dashed\"; color=\"#666666\";",
                html(name)
            );
        }
        for c in clusters {
            dot_cluster(&mut out, indent, c);
        }
        if several {
            out.push_str("  }\n");
        }
    }
    for n in &sc.external {
        dot_node(&mut out, "  ", n);
    }
    for e in &sc.edges {
        let attrs = match e.kind {
            EdgeKind::Veth => {
                let color = if e.down { "#c00000" } else { "#1f4e79" };
                let style = if e.down { "dashed" } else { "solid" };
                // A middle label gets its own place in dot's layout; head and
                // tail labels are laid over whatever is there.
                let text: Vec<String> = veth_label(e).lines().map(html).collect();
                format!(
                    "penwidth=2, color=\"{color}\", style={style}, fontcolor=\"{}\", \
                     label=<<font point-size=\"9\" color=\"#595959\">veth pair</font><br/>{}>",
                    if e.down { "#c00000" } else { "#1f1f1f" },
                    text.join("<br/>")
                )
            }
            EdgeKind::Nat => "style=dotted, color=\"#bf9000\", arrowhead=none".to_string(),
            EdgeKind::Dnat => format!(
                "style=dashed, color=\"#bf9000\", dir=forward, arrowhead=vee, constraint=false, \
                 label=\"{}\", fontcolor=\"#7f6000\"",
                dot_label(&e.head)
            ),
        };
        let _ = writeln!(out, "  {} -- {} [{attrs}];", dot_id(&e.a), dot_id(&e.b));
    }
    out.push_str("}\n");
    out
}

/// dot piped through Graphviz.
pub fn svg(views: &[TopologyView]) -> Result<Vec<u8>, GraphError> {
    let text = dot(views);
    let mut child = match Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(GraphError::NoGraphviz),
        Err(e) => return Err(GraphError::Dot(e.to_string())),
    };
    // Write on another thread: dot may fill its stdout pipe before it has
    // read all of a large graph.
    let stdin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let Some(mut s) = stdin {
            let _ = s.write_all(text.as_bytes());
        }
    });
    let out = child
        .wait_with_output()
        .map_err(|e| GraphError::Dot(e.to_string()))?;
    let _ = writer.join();
    if !out.status.success() {
        return Err(GraphError::Dot(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(out.stdout)
}

// ------------------------------------------------------------ mermaid

fn mm_text(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_nat_rules() {
        assert_eq!(
            short_rule("ip saddr 172.18.0.0/16 ip daddr != 172.18.0.0/16 masquerade"),
            "masquerade 172.18.0.0/16"
        );
        assert_eq!(
            short_rule(
                "ip saddr 172.18.0.0/16 ip daddr != 172.18.0.0/16 oifname \"eth0\" snat ip to 192.168.1.10"
            ),
            "SNAT 172.18.0.0/16 out eth0 → 192.168.1.10"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(dot_id("a\"b"), "\"a\\\"b\"");
        assert_eq!(html("<a&b>"), "&lt;a&amp;b&gt;");
        assert_eq!(mm_text("a \"b\"\nc"), "a #quot;b#quot;<br/>c");
    }
}
