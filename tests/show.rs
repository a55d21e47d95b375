//! Issue 5 acceptance: `show` (table and JSON), `graph` (dot, svg, mermaid)
//! and `ping-all`, against real topologies in private namespaces, checked
//! against what `ip -j` reads back.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use common::{Sandbox, script_path, text};
use serde_json::Value;

/// One link as both `ip -j` and `show --json` describe it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct LinkFacts {
    index: u64,
    kind: Option<String>,
    up: bool,
    operstate: String,
    mtu: u64,
    master: Option<String>,
    mac: Option<String>,
    /// "cidr scope flags"
    addrs: BTreeSet<String>,
}

/// Address flags as `ip -j addr` names them, in the order it prints them.
const ADDR_FLAGS: [&str; 13] = [
    "secondary",
    "temporary",
    "nodad",
    "optimistic",
    "dadfailed",
    "home",
    "deprecated",
    "tentative",
    "mngtmpaddr",
    "noprefixroute",
    "autojoin",
    "stable-privacy",
    "dynamic",
];

/// (dst, gateway, dev, type)
type RouteFacts = (String, String, String, String);

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct NsFacts {
    links: BTreeMap<String, LinkFacts>,
    routes: BTreeSet<RouteFacts>,
    /// ifname -> (link_index, link_netnsid): where `ip` says the peer is.
    peers: BTreeMap<String, (Option<u64>, Option<i64>)>,
    /// netnsid -> namespace name, as `ip netns list-id` resolves them.
    nsids: BTreeMap<i64, Option<String>>,
}

fn s(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// `ip` prints a host route's destination without its /32 (or /128).
fn norm_dst(d: &str) -> String {
    if d == "default" || d.contains('/') {
        d.to_string()
    } else if d.contains(':') {
        format!("{d}/128")
    } else {
        format!("{d}/32")
    }
}

fn ip_facts(sb: &Sandbox, ns: &str) -> NsFacts {
    let p = if ns == "host" {
        String::new()
    } else {
        format!("-n {ns} ")
    };
    let links = sb.json(&format!("ip {p}-d -j link show"));
    let addrs = sb.json(&format!("ip {p}-j addr show"));
    let mut f = NsFacts::default();
    for l in links.as_array().expect("ip link array") {
        let name = s(&l["ifname"]).expect("ifname");
        let a: BTreeSet<String> = addrs
            .as_array()
            .expect("ip addr array")
            .iter()
            .filter(|x| x["ifname"] == l["ifname"])
            .flat_map(|x| x["addr_info"].as_array().cloned().unwrap_or_default())
            .map(|ai| {
                // `ip -j` gives each flag as a key set to true.
                let flags: Vec<&str> = ADDR_FLAGS
                    .iter()
                    .copied()
                    .filter(|f| ai[*f] == true)
                    .collect();
                format!(
                    "{}/{} {} [{}]",
                    ai["local"].as_str().unwrap_or("?"),
                    ai["prefixlen"],
                    ai["scope"].as_str().unwrap_or("?"),
                    flags.join(",")
                )
            })
            .collect();
        f.peers.insert(
            name.clone(),
            (l["link_index"].as_u64(), l["link_netnsid"].as_i64()),
        );
        f.links.insert(
            name,
            LinkFacts {
                index: l["ifindex"].as_u64().expect("ifindex"),
                kind: s(&l["linkinfo"]["info_kind"]),
                up: l["flags"]
                    .as_array()
                    .is_some_and(|fl| fl.iter().any(|x| x == "UP")),
                operstate: s(&l["operstate"]).unwrap_or_default(),
                mtu: l["mtu"].as_u64().unwrap_or(0),
                master: s(&l["master"]),
                mac: s(&l["address"]),
                addrs: a,
            },
        );
    }
    for n in sb
        .json(&format!("ip {p}-j netns list-id"))
        .as_array()
        .expect("list-id")
    {
        f.nsids
            .insert(n["nsid"].as_i64().expect("nsid"), s(&n["name"]));
    }
    for fam in ["-4", "-6"] {
        for r in sb
            .json(&format!("ip {p}{fam} -j route show"))
            .as_array()
            .expect("ip route array")
        {
            f.routes.insert((
                norm_dst(r["dst"].as_str().unwrap_or("?")),
                s(&r["gateway"]).unwrap_or_default(),
                s(&r["dev"]).unwrap_or_default(),
                s(&r["type"]).unwrap_or_else(|| "unicast".into()),
            ));
        }
    }
    f
}

fn show_facts(ns: &Value) -> NsFacts {
    let mut f = NsFacts::default();
    for l in ns["links"].as_array().expect("links") {
        let name = s(&l["name"]).expect("name");
        f.links.insert(
            name,
            LinkFacts {
                index: l["index"].as_u64().expect("index"),
                kind: s(&l["kind"]),
                up: l["admin_up"].as_bool().expect("admin_up"),
                operstate: s(&l["operstate"]).unwrap_or_default(),
                mtu: l["mtu"].as_u64().unwrap_or(0),
                master: s(&l["master"]),
                mac: s(&l["mac"]),
                addrs: l["addresses"]
                    .as_array()
                    .expect("addresses")
                    .iter()
                    .map(|a| {
                        let flags: Vec<&str> = a["flags"]
                            .as_array()
                            .expect("address flags")
                            .iter()
                            .map(|f| f.as_str().expect("a flag name"))
                            .collect();
                        format!(
                            "{} {} [{}]",
                            a["cidr"].as_str().unwrap_or("?"),
                            a["scope"].as_str().unwrap_or("?"),
                            flags.join(",")
                        )
                    })
                    .collect(),
            },
        );
    }
    for r in ns["routes"].as_array().expect("routes") {
        f.routes.insert((
            norm_dst(r["dst"].as_str().unwrap_or("?")),
            s(&r["gateway"]).unwrap_or_default(),
            s(&r["dev"]).unwrap_or_default(),
            s(&r["type"]).unwrap_or_default(),
        ));
    }
    f
}

fn namespaces(show: &Value, topo: &str) -> Vec<Value> {
    show["topologies"]
        .as_array()
        .expect("topologies")
        .iter()
        .find(|t| t["name"] == topo)
        .unwrap_or_else(|| panic!("no topology {topo} in {show:#}"))["namespaces"]
        .as_array()
        .expect("namespaces")
        .clone()
}

/// `show --json` together with `ip -j` for every namespace it names, read
/// until two `ip` reads around the `show` agree (a veth's carrier and its
/// IPv6 link-local address settle a moment after `up`).
fn settled(sb: &Sandbox, topo: &str) -> (Value, BTreeMap<String, NsFacts>) {
    for _ in 0..40 {
        let first = sb.json(&format!("{} show --json {topo}", common::BIN));
        let names: Vec<String> = namespaces(&first, topo)
            .iter()
            .map(|n| s(&n["name"]).expect("ns name"))
            .collect();
        let before: BTreeMap<String, NsFacts> =
            names.iter().map(|n| (n.clone(), ip_facts(sb, n))).collect();
        let show = sb.json(&format!("{} show --json {topo}", common::BIN));
        let after: BTreeMap<String, NsFacts> =
            names.iter().map(|n| (n.clone(), ip_facts(sb, n))).collect();
        if before == after {
            return (show, after);
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    panic!("the kernel state of {topo} never settled");
}

/// Every link, address and route `show` lists is exactly what `ip` has; in
/// namespaces the topology made, `show` lists everything `ip` has.
fn assert_matches_ip(show: &Value, ip: &BTreeMap<String, NsFacts>, topo: &str) {
    for ns in namespaces(show, topo) {
        let name = s(&ns["name"]).expect("name");
        let owned = ns["owned"].as_bool().expect("owned");
        let shown = show_facts(&ns);
        let real = &ip[&name];
        if owned {
            assert!(
                shown.links.len() >= 2,
                "netns {name} shows only {:?}",
                shown.links
            );
            assert_eq!(shown.links, real.links, "links of netns {name}: show vs ip");
            assert_eq!(
                shown.routes, real.routes,
                "routes of netns {name}: show vs ip"
            );
        } else {
            for (l, facts) in &shown.links {
                assert_eq!(
                    Some(facts),
                    real.links.get(l),
                    "link {l} in {name}: show vs ip"
                );
            }
            let devs: BTreeSet<&String> = shown.links.keys().collect();
            let expect: BTreeSet<RouteFacts> = real
                .routes
                .iter()
                .filter(|r| devs.contains(&r.2))
                .cloned()
                .collect();
            assert_eq!(
                shown.routes, expect,
                "routes through {name}'s links: show vs ip"
            );
        }
        // Peers: show names the other end; ip agrees on both ends' indexes.
        for l in ns["links"].as_array().expect("links") {
            let Some(p) = l.get("peer").filter(|p| !p.is_null()) else {
                continue;
            };
            let lname = s(&l["name"]).expect("name");
            let pns = s(&p["netns"]).unwrap_or_else(|| panic!("peer of {lname} unresolved: {p}"));
            let pname = s(&p["name"]).expect("peer name");
            let there = ip_facts_cached(ip, &pns);
            let pl = there
                .links
                .get(&pname)
                .unwrap_or_else(|| panic!("ip has no {pname} in {pns}"));
            assert_eq!(
                Some(pl.index),
                p["index"].as_u64(),
                "peer index of {name}:{lname}"
            );
            assert_eq!(
                real.peers[&lname].0,
                Some(pl.index),
                "ip's link_index of {name}:{lname}"
            );
            assert_eq!(
                there.peers[&pname].0,
                l["index"].as_u64(),
                "ip's link_index of {pns}:{pname} points back"
            );
            assert_eq!(
                real.peers[&lname].1,
                p["netnsid"].as_i64(),
                "link_netnsid of {name}:{lname}"
            );
            // ifindexes repeat across namespaces: the namespace itself must
            // be the one ip resolves the netnsid to (unnamed: the host).
            let ip_ns = match p["netnsid"].as_i64() {
                None => name.clone(),
                Some(id) => real.nsids[&id].clone().unwrap_or_else(|| "host".into()),
            };
            assert_eq!(pns, ip_ns, "peer namespace of {name}:{lname}");
        }
    }
}

fn ip_facts_cached<'a>(ip: &'a BTreeMap<String, NsFacts>, ns: &str) -> &'a NsFacts {
    ip.get(ns)
        .unwrap_or_else(|| panic!("peer namespace {ns} is not part of the topology"))
}

#[test]
fn seed_show_json_names_the_seed_and_matches_ip() {
    let sb = Sandbox::new();
    sb.np_ok(&["up", &script_path("scripts/seed.rhai")]);
    let (show, ip) = settled(&sb, "seed");
    assert_eq!(show["schema"], 2);
    assert_matches_ip(&show, &ip, "seed");

    let ns = namespaces(&show, "seed");
    let foons = ns
        .iter()
        .find(|n| n["name"] == "foons")
        .expect("foons shown");
    assert_eq!(foons["owned"], true);
    let eth0 = foons["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "eth0")
        .expect("eth0 in foons");
    assert_eq!(eth0["kind"], "veth");
    assert!(
        eth0["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["address"] == "172.18.0.20" && a["prefixlen"] == 16),
        "{eth0:#}"
    );
    assert_eq!(eth0["peer"]["name"], "veth0");
    assert_eq!(eth0["peer"]["netns"], "host");
    assert_eq!(eth0["peer"]["host"], true);
    assert!(
        foons["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["dst"] == "default" && r["gateway"] == "172.18.0.1" && r["dev"] == "eth0")
    );
    let host = ns.iter().find(|n| n["host"] == true).expect("host shown");
    let names: BTreeSet<String> = host["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| s(&l["name"]).unwrap())
        .collect();
    assert_eq!(
        names,
        ["foobr0", "veth0"].iter().map(|x| x.to_string()).collect(),
        "the host shows only the topology's links"
    );
    let veth0 = host["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "veth0")
        .unwrap();
    assert_eq!(veth0["master"], "foobr0");
    assert_eq!(veth0["peer"]["netns"], "foons");
    assert_eq!(veth0["peer"]["name"], "eth0");

    let table = sb.np_ok(&["show"]);
    for want in [
        "topology seed",
        "netns foons",
        "eth0",
        "foobr0",
        "172.18.0.20/16",
        "host:veth0",
        "default via 172.18.0.1",
    ] {
        assert!(table.contains(want), "table lacks {want}:\n{table}");
    }
}

#[test]
fn router_show_json_is_exactly_what_ip_reads_back() {
    let sb = Sandbox::new();
    sb.np_ok(&["up", &script_path("scripts/router.rhai")]);
    let (show, ip) = settled(&sb, "router");
    assert_matches_ip(&show, &ip, "router");
    let names: BTreeSet<String> = namespaces(&show, "router")
        .iter()
        .map(|n| s(&n["name"]).unwrap())
        .collect();
    let listed: BTreeSet<String> = sb
        .ok("ip netns list | cut -d' ' -f1")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(names, listed, "show names every namespace of the topology");
    let router = namespaces(&show, "router")
        .into_iter()
        .find(|n| n["name"] == "router")
        .unwrap();
    assert_eq!(router["forwarding"]["ipv4"], true);
}

fn render_svg(dot: &str) -> String {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("Graphviz `dot` must be installed (apt-get install graphviz)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(dot.as_bytes())
        .expect("write dot");
    let out = child.wait_with_output().expect("dot");
    assert!(
        out.status.success(),
        "dot rejected the graph: {}\n{dot}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn graph_dot_renders_with_graphviz_and_names_everything() {
    let sb = Sandbox::new();
    sb.np_ok(&["up", &script_path("scripts/router.rhai")]);
    sb.np_ok(&["up", &script_path("scripts/seed.rhai")]);
    for topo in ["router", "seed"] {
        let dot = sb.np_ok(&["graph", topo, "--format", "dot"]);
        let svg = render_svg(&dot);
        assert!(svg.contains("<svg"), "{svg}");
        let show = sb.json(&format!("{} show --json {topo}", common::BIN));
        for ns in namespaces(&show, topo) {
            let name = s(&ns["name"]).unwrap();
            assert!(
                dot.contains(&name),
                "{topo}: namespace {name} not in the graph:\n{dot}"
            );
            for l in ns["links"].as_array().unwrap() {
                let ln = s(&l["name"]).unwrap();
                if ln != "lo" {
                    assert!(
                        dot.contains(&ln),
                        "{topo}: link {name}:{ln} not in the graph:\n{dot}"
                    );
                }
            }
        }
    }
    // Both topologies at once: one cluster each.
    let both = sb.np_ok(&["graph"]);
    render_svg(&both);
    assert!(
        both.contains("topology router") && both.contains("topology seed"),
        "{both}"
    );
    // The seed's picture: the bridge is a node, the veth pair one edge
    // labelled with both ends, foons a cluster.
    let seed = sb.np_ok(&["graph", "seed"]);
    assert!(seed.contains("cluster_t0/ns/foons"), "{seed}");
    assert!(
        seed.contains("<b>foobr0</b><br/>bridge<br/>172.18.0.1/16"),
        "{seed}"
    );
    assert!(seed.contains("veth0 ↔ eth0 172.18.0.20/16"), "{seed}");
}

#[test]
fn graph_svg_and_output_file() {
    let sb = Sandbox::new();
    sb.np_ok(&["up", &script_path("scripts/seed.rhai")]);
    let svg = sb.np_ok(&["graph", "seed", "--format", "svg"]);
    assert!(svg.contains("<svg") && svg.contains("foons"), "{svg}");
    let file = sb.dir.path().join("seed.mmd");
    sb.np_ok(&[
        "graph",
        "seed",
        "--format",
        "mermaid",
        "-o",
        &file.display().to_string(),
    ]);
    let mm = std::fs::read_to_string(&file).expect("graph -o wrote the file");
    assert!(mm.starts_with("flowchart"), "{mm}");
    // Without Graphviz on PATH, svg says how to get it.
    let o = sb.run(
        "sh",
        &[
            "-c",
            &format!("PATH=/nonexistent {} graph seed --format svg", common::BIN),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("apt-get install graphviz"), "{err}");
}

/// Structural check of a Mermaid flowchart: header, balanced subgraphs,
/// every edge between declared nodes.
fn assert_mermaid(mm: &str) {
    let mut lines = mm.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with("flowchart ") || first.starts_with("graph "),
        "{mm}"
    );
    let mut depth = 0i32;
    let mut ids: BTreeSet<String> = BTreeSet::new();
    for l in mm.lines().skip(1) {
        let t = l.trim();
        if let Some(rest) = t.strip_prefix("subgraph ") {
            depth += 1;
            ids.insert(rest.split('[').next().unwrap().to_string());
        } else if t == "end" {
            depth -= 1;
            assert!(depth >= 0, "unbalanced end:\n{mm}");
        } else if t.starts_with("linkStyle") {
        } else if t.contains("---") || t.contains("-.-") {
            let a = t.split_whitespace().next().unwrap();
            let b = t.split_whitespace().last().unwrap();
            assert!(
                ids.contains(a) && ids.contains(b),
                "edge {t} uses undeclared nodes:\n{mm}"
            );
        } else {
            let id: String = t
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(!id.is_empty(), "unexpected line {t:?}:\n{mm}");
            ids.insert(id);
        }
        assert_eq!(t.matches('"').count() % 2, 0, "unbalanced quotes in {t}");
    }
    assert_eq!(depth, 0, "unbalanced subgraph/end:\n{mm}");
}

#[test]
fn graph_mermaid_is_well_formed() {
    let sb = Sandbox::new();
    sb.np_ok(&["up", &script_path("scripts/router.rhai")]);
    let mm = sb.np_ok(&["graph", "router", "--format", "mermaid"]);
    assert_mermaid(&mm);
    for n in ["router", "sw1", "sw2", "n1h0", "n1h1", "n2h0", "n2h1"] {
        assert!(mm.contains(&format!("netns {n}")), "{n} missing:\n{mm}");
    }
    assert_eq!(mm.matches("subgraph ").count(), 7, "{mm}");
    assert!(mm.contains("eth1 10.1.0.1/24 ↔ r"), "{mm}");
}

/// The matrix row of namespace `ns` (below the header, whose first line
/// names the targets' namespaces).
fn matrix_row<'a>(out: &'a str, ns: &str) -> Option<&'a str> {
    out.lines()
        .skip_while(|l| !l.contains("FROM"))
        .skip(1)
        .find(|l| l.split_whitespace().next() == Some(ns))
}

#[test]
fn ping_all_router_matrix_then_a_link_down() {
    let sb = Sandbox::new();
    sb.np_ok(&["up", &script_path("scripts/router.rhai")]);
    let o = sb.netplumb(&["ping-all", "router"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    let addrs = [
        "10.1.0.1",
        "10.2.0.1",
        "10.1.0.10",
        "10.1.0.11",
        "10.2.0.10",
        "10.2.0.11",
    ];
    let header = out
        .lines()
        .find(|l| l.contains("FROM"))
        .unwrap_or_else(|| panic!("no matrix header:\n{out}"));
    for a in addrs {
        assert!(header.contains(a), "{a} not a column:\n{out}");
    }
    for n in ["router", "n1h0", "n1h1", "n2h0", "n2h1"] {
        let row = matrix_row(&out, n).unwrap_or_else(|| panic!("no row for {n}:\n{out}"));
        let cells: Vec<&str> = row.split_whitespace().skip(1).collect();
        assert_eq!(
            cells,
            vec!["ok"; 6],
            "{n} does not reach everything:\n{out}"
        );
    }
    assert!(out.contains("not pinging from sw1, sw2"), "{out}");
    assert!(out.contains("30/30 answered"), "{out}");

    sb.ok("ip -n n1h0 link set eth0 down");
    let o = sb.netplumb(&["ping-all", "router"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("FAIL"), "{out}");
    assert!(out.contains("n1h1 → 10.1.0.10 (n1h0 eth0)"), "{out}");
    assert!(out.contains("router → 10.1.0.10 (n1h0 eth0)"), "{out}");
    // The rest of the network is untouched.
    let row = matrix_row(&out, "n2h1").unwrap();
    assert_eq!(
        row.split_whitespace().filter(|c| *c == "ok").count(),
        5,
        "{out}"
    );
}

#[test]
fn script_ping_all_returns_the_matrix_as_data() {
    let sb = Sandbox::new();
    let script = sb.script(
        "pa.rhai",
        r#"
let a = netns("pa");
let b = netns("pb");
let v = a.veth("e0", b, "e0");
v.addr("10.5.0.1/24").up();
v.peer.addr("10.5.0.2/24").up();
let r = ping_all();
print(`first ok=${r.ok} total=${r.total} reached=${r.reached}`);
v.peer.down();
let r2 = ping_all();
print(`second ok=${r2.ok} failures=${r2.failures.len()}`);
for f in r2.failures { print(`fail ${f.from} -> ${f.to} (${f.netns} ${f.dev})`); }
"#,
    );
    let out = sb.np_ok(&["up", &script]);
    assert!(out.contains("first ok=true total=4 reached=4"), "{out}");
    assert!(out.contains("second ok=false failures=2"), "{out}");
    assert!(out.contains("fail pa -> 10.5.0.2 (pb e0)"), "{out}");
    // plan pings nothing and says so, but the script still runs.
    let plan = sb.netplumb(&["plan", &script]);
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    assert!(
        text(&plan.stderr).contains("first ok=true total=0"),
        "{}",
        text(&plan.stderr)
    );
}

#[test]
fn show_nat_counts_and_lists_mappings() {
    let sb = Sandbox::new();
    let script = sb.script(
        "natx.rhai",
        r#"
let c = netns("ctr");
let v = veth("vctr", c, "eth0");
v.addr("172.17.0.1/24").up();
v.peer.addr("172.17.0.3/24").up();
masquerade("172.17.0.0/24");
for p in 20000..21000 { dnat(p, `172.17.0.3:${p}`); }
dnat(8080, "172.17.0.4:80");
"#,
    );
    sb.np_ok(&["up", &script]);
    let show = sb.json(&format!("{} show --json natx", common::BIN));
    let host = namespaces(&show, "natx")
        .into_iter()
        .find(|n| n["host"] == true)
        .unwrap();
    let nat = &host["nat"][0];
    assert_eq!(nat["table"], "netplumb-natx");
    assert_eq!(nat["dnat_mappings"], 1001, "{nat:#}");
    assert_eq!(nat["dnat_targets"][0]["address"], "172.17.0.3");
    assert_eq!(nat["dnat_targets"][0]["count"], 1000);
    let rules: Vec<String> = nat["chains"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["rules"].as_array().unwrap().iter().map(|r| s(r).unwrap()))
        .collect();
    assert!(rules.iter().any(|r| r.contains("masquerade")), "{rules:?}");
    // The kernel agrees on the element count.
    let nft = sb.json("nft -j list table inet netplumb-natx");
    let elems: usize = nft["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["map"]["elem"].as_array())
        .map(|e| e.len())
        .sum();
    assert_eq!(elems, 1001);

    let table = sb.np_ok(&["show", "natx"]);
    assert!(
        table.contains("20000-20999 → 172.17.0.3 (same ports)"),
        "{table}"
    );
    assert!(table.contains("8080 → 172.17.0.4:80"), "{table}");
    assert!(table.contains("1,001 elements"), "{table}");
    let dot = sb.np_ok(&["graph", "natx"]);
    render_svg(&dot);
    assert!(dot.contains("1,001 DNAT mappings"), "{dot}");
    assert!(dot.contains("masquerade 172.17.0.0/24"), "{dot}");
}

#[test]
fn show_without_topologies_and_unknown_names() {
    let sb = Sandbox::new();
    let out = sb.np_ok(&["show"]);
    assert!(out.contains("no netplumb topologies"), "{out}");
    let j = sb.json(&format!("{} show --json", common::BIN));
    assert_eq!(j["topologies"].as_array().map(Vec::len), Some(0));
    sb.np_ok(&["up", &script_path("scripts/seed.rhai")]);
    let o = sb.netplumb(&["show", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("no topology named 'nosuch'") && err.contains("seed"),
        "{err}"
    );
    let o = sb.netplumb(&["ping-all", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    // A link removed behind netplumb's back is reported, not hidden.
    sb.ok("ip link del veth0");
    let table = sb.np_ok(&["show", "seed"]);
    assert!(
        table.contains("missing") && table.contains("link veth0"),
        "{table}"
    );
}
