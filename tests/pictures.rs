//! `graph` pictures that say what they mean: the zabbix example's NAT note
//! names its mapped ports (not a count that reads as a port), ten thousand
//! mappings fold into a few lines, several topologies share one host box,
//! and every example script's picture renders with Graphviz.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Sandbox, script_path, text};

fn graph(sb: &Sandbox, args: &[&str]) -> String {
    let mut a = vec!["graph"];
    a.extend(args);
    sb.np_ok(&a)
}

/// `dot -Tpng` of the text: the PNG's bytes, or the error.
fn png(dot_text: &str) -> Result<Vec<u8>, String> {
    let mut c = Command::new("dot")
        .arg("-Tpng")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("dot: {e}"))?;
    c.stdin
        .take()
        .ok_or("stdin")?
        .write_all(dot_text.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = c.wait_with_output().map_err(|e| e.to_string())?;
    // a big picture is scaled to fit (a note on stderr); errors are errors
    let err = text(&out.stderr);
    if !out.status.success() || err.contains("rror") || err.contains("syntax") {
        return Err(err);
    }
    Ok(out.stdout)
}

#[test]
fn zabbix_graph_names_its_mapped_ports() {
    let sb = Sandbox::new();
    sb.np_ok(&["up", "-q", &script_path("scripts/zabbix.rhai")]);
    let g = graph(&sb, &["zabbix"]);
    for m in [
        "tcp 10050 → 172.17.0.3:10050",
        "tcp 10051 → 172.17.0.4:10050",
        "tcp 10052 → 172.17.0.5:10050",
        "tcp 10.200.0.10:10050 → 172.17.0.3:10050",
        "tcp 10.200.0.11:10050 → 172.17.0.4:10050",
        "masquerade 172.17.0.0/16",
    ] {
        assert!(g.contains(m), "no `{m}` in the graph:\n{g}");
    }
    // the arrow to zc5 says which port leads there
    assert!(g.contains("label=\"DNAT tcp 10052\""), "{g}");
    assert!(g.contains("5 DNAT mappings:<br/>"), "{g}");
    // no bare count beside an address, which reads as a port
    assert!(!g.contains("<br/>2 → ") && !g.contains("<br/>1 → "), "{g}");
    let mm = graph(&sb, &["zabbix", "--format", "mermaid"]);
    assert!(mm.contains("tcp 10051 → 172.17.0.4:10050"), "{mm}");
    assert!(png(&g).is_ok_and(|p| p.starts_with(b"\x89PNG")));
}

#[test]
fn a_port_range_counts_as_its_ports() {
    let sb = Sandbox::new();
    sb.np_ok(&["up", "-q", &script_path("scripts/docker.rhai")]);
    let g = graph(&sb, &[]);
    assert!(g.contains("tcp 30000–30099 → 172.30.0.3"), "{g}");
    // 5 single ports and a range of 100
    assert!(g.contains("105 DNAT mappings:"), "{g}");
}

#[test]
fn ten_thousand_mappings_fold_into_a_few_lines() {
    let sb = Sandbox::new();
    sb.np_ok(&[
        "up",
        "-q",
        &script_path("scripts/bulk.rhai"),
        "--set",
        "n=4",
        "--set",
        "k=10000",
    ]);
    let g = graph(&sb, &[]);
    let note = g
        .lines()
        .find(|l| l.contains("NAT (netplumb-bulk)"))
        .unwrap_or_else(|| panic!("no NAT note:\n{g}"));
    let lines = note.matches("<br/>").count();
    assert!(lines <= 10, "{lines} lines in the NAT note: {note}");
    assert!(note.contains("tcp 20000 → 172."), "{note}");
    assert!(note.contains(" more>") || note.contains(" more<"), "{note}");
}

#[test]
fn several_topologies_share_one_host_box() {
    let sb = Sandbox::new();
    sb.np_ok(&["up", "-q", &script_path("scripts/zabbix.rhai")]);
    sb.np_ok(&["up", "-q", &script_path("scripts/seed.rhai")]);
    let g = graph(&sb, &[]);
    assert_eq!(g.matches("subgraph \"cluster_host\"").count(), 1, "{g}");
    assert!(
        g.contains("topology seed") && g.contains("topology zabbix"),
        "{g}"
    );
    // both topologies' host bridges are in it
    assert!(
        g.contains("<b>foobr0</b>") && g.contains("<b>zbr0</b>"),
        "{g}"
    );
    png(&g).expect("dot renders the picture");
    let mm = graph(&sb, &["--format", "mermaid"]);
    assert_eq!(mm.matches("[\"host\"]").count(), 1, "{mm}");
}

#[test]
fn every_example_script_renders() {
    let mut scripts: Vec<_> = std::fs::read_dir(common::root().join("scripts"))
        .expect("scripts/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 5, "{scripts:?}");
    for s in scripts {
        let sb = Sandbox::new();
        let path = s.display().to_string();
        let mut args = vec!["up", "-q", path.as_str()];
        if path.ends_with("bulk.rhai") {
            args.extend(["--set", "n=5", "--set", "k=50"]);
        }
        if path.ends_with("sites.rhai") {
            // One machine holds one site's part (issue 19).
            args.extend(["--site", "east"]);
        }
        sb.np_ok(&args);
        let g = graph(&sb, &[]);
        let p = png(&g).unwrap_or_else(|e| panic!("dot -Tpng of {path}'s graph: {e}\n{g}"));
        assert!(p.starts_with(b"\x89PNG"), "{path}: not a PNG");
    }
}
