//! The scene as Graphviz dot, and as SVG through Graphviz.

use std::fmt::Write;
use std::io::Write as _;
use std::process::{Command, Stdio};

use super::super::view::TopologyView;
use super::GraphError;
use super::scene::*;

// ---------------------------------------------------------------- dot

pub(super) fn dot_id(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub(super) fn html(s: &str) -> String {
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
    svg_of(dot(views))
}

/// Graphviz source rendered as SVG by `dot -Tsvg`.
pub fn svg_of(text: String) -> Result<Vec<u8>, GraphError> {
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
