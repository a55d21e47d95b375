//! Issue 8: the bundled stdlib (docker, portmap, lab), the example scripts
//! and the reference. Every script in scripts/ and every module's test
//! script plans to a checked-in golden file (UPDATE_GOLDEN=1 rewrites
//! them); each is brought up in a private namespace and checked with real
//! TCP/UDP and ICMP where it promises connectivity; `down` leaves nothing.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use common::{BIN, Sandbox, root, script_path, text};

// ---------------------------------------------------------------- plan goldens

/// Every script in scripts/ and every module test script, with the
/// arguments its golden plan is made with.
const PLANS: &[(&str, &[&str])] = &[
    ("scripts/seed.rhai", &[]),
    ("scripts/router.rhai", &[]),
    ("scripts/zabbix.rhai", &[]),
    ("scripts/bulk.rhai", &["--set", "n=3", "--set", "k=10"]),
    ("scripts/docker.rhai", &[]),
    ("scripts/lab-ring.rhai", &[]),
    ("scripts/kinds.rhai", &[]),
    ("scripts/sites.rhai", &[]),
    ("tests/scripts/mod-docker.rhai", &[]),
    ("tests/scripts/mod-portmap.rhai", &[]),
    ("tests/scripts/mod-lab.rhai", &[]),
];

fn golden_path(script: &str) -> PathBuf {
    let stem = std::path::Path::new(script)
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("script stem");
    root().join("tests/golden/plan").join(format!("{stem}.txt"))
}

/// `netplumb plan` needs no root and no sandbox: it touches nothing.
fn plan(script: &str, args: &[&str]) -> String {
    let o = Command::new(BIN)
        .arg("plan")
        .arg(script_path(script))
        .args(args)
        .current_dir(root())
        .output()
        .expect("netplumb plan");
    assert!(
        o.status.success(),
        "plan {script} {args:?} failed:\n{}",
        text(&o.stderr)
    );
    text(&o.stdout)
}

#[test]
fn plans_match_their_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    for (script, args) in PLANS {
        let got = plan(script, args);
        let path = golden_path(script);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
                path.display()
            )
        });
        if got != want {
            let first = got
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| got.lines().count().min(want.lines().count()));
            stale.push(format!(
                "{script}: plan differs from {} at line {}:\n  got:  {:?}\n  want: {:?}",
                path.display(),
                first + 1,
                got.lines().nth(first),
                want.lines().nth(first)
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "{}\n(if the change is intended: UPDATE_GOLDEN=1 cargo test --test stdlib)",
        stale.join("\n")
    );
}

#[test]
fn every_script_has_a_golden_plan_and_a_header() {
    let listed: BTreeSet<String> = PLANS.iter().map(|(s, _)| s.to_string()).collect();
    for e in std::fs::read_dir(root().join("scripts")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("rhai") {
            continue;
        }
        let rel = format!("scripts/{}", p.file_name().unwrap().to_str().unwrap());
        assert!(
            listed.contains(&rel),
            "{rel} has no golden plan: add it to PLANS"
        );
        let body = std::fs::read_to_string(&p).unwrap();
        let header: Vec<&str> = body.lines().take_while(|l| l.starts_with("//")).collect();
        assert!(
            header.len() >= 3,
            "{rel} needs a header comment saying what it shows"
        );
        assert!(
            header
                .iter()
                .any(|l| l.contains("netplumb plan") || l.contains("netplumb up"))
                && header.iter().any(|l| l.contains(" up ")),
            "{rel}'s header must say how to run it (plan and up):\n{}",
            header.join("\n")
        );
    }
}

// ---------------------------------------------------------------- helpers

/// A client namespace outside the topology: `cl` with 10.250.0.2, its
/// default route via the host at 10.250.0.1 (made with `ip`, not netplumb,
/// so `down` must leave it alone).
fn client(sb: &Sandbox) {
    // No IPv6 on the client's link and a ping across it: the link has
    // settled (carrier, no link-local address still to come) before a test
    // takes its "before" snapshot.
    sb.ok(
        "ip netns add cl && ip netns exec cl sysctl -qw net.ipv6.conf.default.disable_ipv6=1 && \
         ip link add cl0 type veth peer name eth0 netns cl && \
         sysctl -qw net.ipv6.conf.cl0.disable_ipv6=1 && \
         ip addr add 10.250.0.1/24 dev cl0 && ip link set cl0 up && \
         ip -n cl addr add 10.250.0.2/24 dev eth0 && ip -n cl link set eth0 up && \
         ip -n cl route add default via 10.250.0.1 && \
         ip netns exec cl ping -c1 -W2 -q 10.250.0.1 >/dev/null",
    );
    // The operational state follows the carrier a moment later (linkwatch).
    for _ in 0..50 {
        let links = sb.ok("ip -br link show cl0; ip -n cl -br link show eth0");
        if !links.contains("NO-CARRIER") && !links.contains("LOWERLAYERDOWN") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the client link did not come up");
}

/// TCP from the host itself (the output chain path).
fn fetch_from_host(sb: &Sandbox, addr: &str, port: u16) -> Option<String> {
    let o = sb.sh(&format!(
        "python3 -c \"import socket;s=socket.create_connection(('{addr}',{port}),timeout=2);print(s.recv(100).decode())\""
    ));
    o.status
        .success()
        .then(|| text(&o.stdout).trim().to_string())
}

fn assert_clean(sb: &Sandbox) {
    assert_eq!(sb.ok("ip netns list"), "", "namespaces left behind");
    assert_eq!(sb.ok("nft list ruleset"), "", "nftables rules left behind");
}

/// The IPv4 addresses of a namespace, lo's 127.0.0.1 left out.
fn addrs_of(sb: &Sandbox, ns: &str) -> Vec<String> {
    let v = sb.json(&format!("ip -j -4 -n {ns} addr show"));
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["local"].as_str().map(str::to_string))
        .filter(|a| a != "127.0.0.1")
        .collect()
}

/// Ping each of `targets` from each of `sources`, the sources in parallel;
/// returns the failures as "src -> addr".
fn ping_matrix(sb: &Sandbox, sources: &[String], targets: &[String]) -> Vec<String> {
    let list = targets.join(" ");
    let script: String = sources
        .iter()
        .map(|s| {
            format!(
                "( for a in {list}; do ip netns exec {s} ping -c1 -W1 -q $a >/dev/null 2>&1 || echo \"{s} -> $a\"; done ) & "
            )
        })
        .collect::<String>()
        + "wait";
    let out = sb.ok(&script);
    out.lines().map(str::to_string).collect()
}

// ---------------------------------------------------------------- docker

#[test]
fn docker_acceptance_tcp_to_host_8080_reaches_the_container() {
    let sb = Sandbox::new();
    client(&sb);
    let before = sb.snapshot();
    let s = sb.script(
        "accept.rhai",
        r#"import "docker" as d; let n = d::network("web", "172.30.0.0/16"); let c = d::container(n, "app"); d::publish(c, 8080, 80);"#,
    );
    sb.np_ok(&["up", &s]);
    let _srv = sb.server("app", "0.0.0.0", &[80], "app", false);
    // From outside: DNAT only, the container sees the client.
    assert_eq!(
        sb.fetch("cl", "10.250.0.1", 8080, false).as_deref(),
        Some("app from 10.250.0.2")
    );
    // From the host itself, to the gateway address.
    let got = fetch_from_host(&sb, "172.30.0.1", 8080).unwrap_or_default();
    assert!(got.starts_with("app from"), "{got}");
    // The container talks out masqueraded as the host.
    let _c = sb.server("cl", "0.0.0.0", &[7000], "client", false);
    assert_eq!(
        sb.fetch("app", "10.250.0.2", 7000, false).as_deref(),
        Some("client from 10.250.0.1")
    );
    // What it built, read back.
    let addr = sb.json("ip -j -n app addr show eth0");
    assert!(
        addr[0]["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["local"] == "172.30.0.2" && a["prefixlen"] == 16)
    );
    assert_eq!(
        sb.json("ip -j -n app route show default")[0]["gateway"],
        "172.30.0.1"
    );
    assert_eq!(sb.json("ip -j -d link show app")[0]["master"], "web");

    let again = sb.np_ok(&["up", &s]);
    assert!(again.contains("no changes"), "{again}");
    sb.np_ok(&["down", &s]);
    assert_eq!(
        sb.snapshot(),
        before,
        "down must leave exactly what was there"
    );
    sb.ok("ip netns del cl");
    assert_clean(&sb);
}

#[test]
fn docker_script_publishes_tcp_udp_ranges_and_spread() {
    let sb = Sandbox::new();
    client(&sb);
    let before = sb.snapshot();
    let out = sb.np_ok(&["up", &script_path("scripts/docker.rhai")]);
    assert!(
        out.contains("web 172.30.0.2, api 172.30.0.3, db 172.31.0.2"),
        "{out}"
    );
    let _web = sb.server("web", "0.0.0.0", &[80, 9100], "web", false);
    let _api = sb.server("api", "0.0.0.0", &[30000, 30050, 30099, 9100], "api", false);
    let _dns = sb.server("api", "0.0.0.0", &[53], "dns", true);
    let _db = sb.server("db", "0.0.0.0", &[9100], "db", false);
    let got = |port| sb.fetch("cl", "10.250.0.1", port, false);
    assert_eq!(got(8080).as_deref(), Some("web from 10.250.0.2"));
    assert_eq!(
        sb.fetch("cl", "10.250.0.1", 5353, true).as_deref(),
        Some("dns from 10.250.0.2")
    );
    for p in [30000, 30050, 30099] {
        assert_eq!(got(p).as_deref(), Some("api from 10.250.0.2"), "port {p}");
    }
    assert_eq!(got(30100), None, "30100 is past the published range");
    assert_eq!(got(9100).as_deref(), Some("web from 10.250.0.2"));
    assert_eq!(got(9101).as_deref(), Some("api from 10.250.0.2"));
    assert_eq!(got(9102).as_deref(), Some("db from 10.250.0.2"));
    // A container on the other network reaches the published port through the host.
    let from_db = sb
        .fetch("db", "172.30.0.1", 8080, false)
        .unwrap_or_default();
    assert!(from_db.starts_with("web from"), "{from_db}");
    // and the web container directly, masqueraded by the host.
    sb.ok("ip netns exec web ping -c1 -W2 172.31.0.2");

    sb.np_ok(&["down", &script_path("scripts/docker.rhai")]);
    assert_eq!(sb.snapshot(), before);
    sb.ok("ip netns del cl");
    assert_clean(&sb);
}

#[test]
fn docker_module_options_up_and_down() {
    let sb = Sandbox::new();
    client(&sb);
    let s = script_path("tests/scripts/mod-docker.rhai");
    sb.np_ok(&["up", &s]);
    let _app = sb.server("app", "0.0.0.0", &[80], "app", false);
    let _api = sb.server("api", "0.0.0.0", &[90, 30005], "api", false);
    let _dns = sb.server("api", "0.0.0.0", &[53], "dns", true);
    assert_eq!(
        sb.fetch("cl", "10.250.0.1", 8080, false).as_deref(),
        Some("app from 10.250.0.2")
    );
    assert_eq!(
        sb.fetch("cl", "10.250.0.1", 5353, true).as_deref(),
        Some("dns from 10.250.0.2")
    );
    assert_eq!(
        sb.fetch("cl", "10.250.0.1", 30005, false).as_deref(),
        Some("api from 10.250.0.2")
    );
    // publish_on: only on that host address.
    let on = fetch_from_host(&sb, "172.30.0.1", 9090).unwrap_or_default();
    assert!(on.starts_with("api from"), "{on}");
    assert_eq!(sb.fetch("cl", "10.250.0.1", 9090, false), None);
    // Gateway, first host, MTU, ifname options.
    let br = sb.json("ip -j -d link show back");
    assert_eq!(br[0]["mtu"], 1400);
    assert!(sb.ok("ip -br addr show back").contains("10.40.0.254/24"));
    assert_eq!(
        sb.json("ip -j -n fixed route show default")[0]["gateway"],
        "10.40.0.254"
    );
    assert_eq!(
        sb.json("ip -j -d link show veth-fixed")[0]["master"],
        "back"
    );
    sb.ok("ip netns exec db ping -c1 -W2 10.40.0.200");
    // masquerade: false leaves the network out of NAT.
    let rs = sb.ok("nft list ruleset");
    assert!(
        rs.contains("ip saddr 10.40.0.0/24") && !rs.contains("10.41.0.0/24"),
        "{rs}"
    );
    sb.np_ok(&["down", &s]);
    sb.ok("ip netns del cl");
    assert_clean(&sb);
}

// ---------------------------------------------------------------- portmap

#[test]
fn portmap_spread_lists_ranges_tables_and_files() {
    let sb = Sandbox::new();
    client(&sb);
    let s = script_path("tests/scripts/mod-portmap.rhai");
    let out = sb.np_ok(&["up", &s]);
    assert!(out.contains("portmap: 21 mappings"), "{out}");
    let _p0 = sb.server(
        "pm0",
        "0.0.0.0",
        &[7000, 80, 443, 40000, 40004],
        "pm0",
        false,
    );
    let _p1 = sb.server(
        "pm1",
        "0.0.0.0",
        &[7000, 80, 443, 30000, 30009],
        "pm1",
        false,
    );
    let _p1u = sb.server("pm1", "0.0.0.0", &[12001, 12002], "pm1u", true);
    let _p2 = sb.server("pm2", "0.0.0.0", &[7000, 7001, 21, 22], "pm2", false);
    let cases: &[(u16, &str)] = &[
        (10000, "pm0"),
        (10001, "pm1"),
        (10002, "pm2"), // spread of one port
        (11000, "pm0"),
        (11001, "pm0"),
        (11002, "pm1"),
        (11003, "pm1"), // spread of two
        (21, "pm2"),
        (22, "pm2"), // list
        (30000, "pm1"),
        (30009, "pm1"), // range_to
        (20000, "pm0"),
        (20004, "pm0"), // shift
        (12000, "pm2"), // table
        (14000, "pm0"),
        (14001, "pm2"),
        (14003, "pm2"), // load: file beside the script
        (13000, "pm1"), // parse + apply
    ];
    for (port, who) in cases {
        let got = sb.fetch("cl", "10.250.0.1", *port, false);
        assert_eq!(
            got.as_deref(),
            Some(format!("{who} from 10.250.0.2").as_str()),
            "port {port}"
        );
    }
    assert_eq!(
        sb.fetch("cl", "10.250.0.1", 12002, true).as_deref(),
        Some("pm1u from 10.250.0.2")
    );
    assert_eq!(sb.fetch("cl", "10.250.0.1", 30010, false), None);
    // 14004 is only on 172.20.0.1 (daddr from the table).
    assert_eq!(sb.fetch("cl", "10.250.0.1", 14004, false), None);
    let on = fetch_from_host(&sb, "172.20.0.1", 14004).unwrap_or_default();
    assert!(on.starts_with("pm1 from"), "{on}");
    sb.np_ok(&["down", &s]);
    sb.ok("ip netns del cl");
    assert_clean(&sb);
}

#[test]
fn portmap_table_from_set_replaces_the_default() {
    let out = plan(
        "tests/scripts/mod-portmap.rhai",
        &["--set", "maps=15000,172.20.0.2:7000;15001,172.20.0.3"],
    );
    assert!(out.contains("15000 : 172.20.0.2 . 7000"), "{out}");
    assert!(out.contains("15001 : 172.20.0.3 . 15001"), "{out}");
    assert!(!out.contains("12000 :"), "{out}");
}

// ---------------------------------------------------------------- lab

#[test]
fn lab_ring_of_50_every_node_reaches_every_other() {
    let sb = Sandbox::new();
    let s = script_path("scripts/lab-ring.rhai");
    let t0 = std::time::Instant::now();
    sb.np_ok(&["-q", "up", &s]);
    let nodes: Vec<String> = (0..50).map(|i| format!("r{i}")).collect();
    let ns = sb.ok("ip netns list | cut -d' ' -f1 | sort -V");
    assert_eq!(ns.lines().collect::<Vec<_>>(), nodes);
    // Every node's address from every node: 2450 pings.
    let loopbacks: Vec<String> = (0..50).map(|i| format!("10.100.{i}.1")).collect();
    let bad = ping_matrix(&sb, &nodes, &loopbacks);
    assert!(bad.is_empty(), "{} unreachable: {bad:?}", bad.len());
    // Every address of the ring (links too), from a few nodes.
    let mut every: Vec<String> = Vec::new();
    for n in &nodes {
        every.extend(addrs_of(&sb, n));
    }
    assert_eq!(every.len(), 150, "a loopback and two link ends per node");
    let bad = ping_matrix(
        &sb,
        &["r0".into(), "r17".into(), "r25".into(), "r42".into()],
        &every,
    );
    assert!(bad.is_empty(), "{bad:?}");
    // Aggregated routes: a handful per node, not one per destination.
    let routes = sb.ok("ip -n r0 route | grep -c via");
    assert!(
        routes.trim().parse::<usize>().unwrap() <= 14,
        "r0 has {routes} routes"
    );
    assert_eq!(
        sb.ok("ip netns exec r7 sysctl -n net.ipv4.ip_forward")
            .trim(),
        "1"
    );
    let again = sb.np_ok(&["up", &s]);
    assert!(again.contains("no changes"), "{again}");
    sb.np_ok(&["down", &s]);
    assert_clean(&sb);
    assert!(t0.elapsed().as_secs() < 60, "took {:?}", t0.elapsed());
}

#[test]
fn lab_shapes_coexist_and_reach_within_each_lab() {
    let sb = Sandbox::new();
    let s = script_path("tests/scripts/mod-lab.rhai");
    // The module's own check: lab::check pings every address of each lab.
    let out = sb.np_ok(&["up", &s, "--set", "check=true"]);
    assert!(
        out.contains("lab: every node reaches every address of its lab"),
        "{out}"
    );
    let labs: &[(&str, usize)] = &[("s", 4), ("ln", 4), ("t", 7), ("sq", 4), ("a", 5), ("b", 4)];
    let all_ns: BTreeSet<String> = sb
        .ok("ip netns list | cut -d' ' -f1")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(all_ns.len(), labs.iter().map(|(_, n)| n).sum::<usize>());
    // An independent oracle: the addresses `ip` shows, pinged with `ping`.
    for (prefix, n) in labs {
        let nodes: Vec<String> = (0..*n).map(|i| format!("{prefix}{i}")).collect();
        let mut every = Vec::new();
        for node in &nodes {
            assert!(all_ns.contains(node), "{node} missing");
            every.extend(addrs_of(&sb, node));
        }
        let bad = ping_matrix(&sb, &nodes, &every);
        assert!(bad.is_empty(), "lab {prefix}: {bad:?}");
    }
    // The hub forwards; a leaf keeps what any new namespace gets. That
    // default is inherited from the machine's init namespace (ipv4 devconf,
    // devconf_inherit_init_net=0), so a Docker host with forwarding on gives
    // 1 here: compare against a namespace the test makes itself.
    assert_eq!(
        sb.ok("ip netns exec s0 sysctl -n net.ipv4.ip_forward")
            .trim(),
        "1"
    );
    let default = sb.ok(
        "ip netns add fwdprobe && ip netns exec fwdprobe sysctl -n net.ipv4.ip_forward; ip netns del fwdprobe",
    );
    assert_eq!(
        sb.ok("ip netns exec s1 sysctl -n net.ipv4.ip_forward")
            .trim(),
        default.trim(),
        "a leaf sets nothing"
    );
    // Interfaces are named after the neighbour.
    assert!(
        sb.ok("ip -n ln1 -br link").contains("ln0@"),
        "ln1 links to ln0 by name"
    );
    sb.np_ok(&["down", &s]);
    assert_clean(&sb);
}

#[test]
fn lab_check_reports_the_pairs_a_blocked_node_separates() {
    let sb = Sandbox::new();
    // r1 drops everything with a filter table of its own (not netplumb's,
    // so converging leaves it in place).
    let s = sb.script(
        "cut.rhai",
        r#"
import "lab" as lab;
let r = lab::ring(4);
let before = lab::check(r, r.all_addrs);
r.nodes[1].exec("nft add table inet cut && nft add chain inet cut i '{ type filter hook input priority 0; policy drop; }' && nft add chain inet cut f '{ type filter hook forward priority 0; policy drop; }'");
let after = lab::check(r);
print(`before ${before.len()}; after ${after}`);
"#,
    );
    let out = sb.np_ok(&["up", &s]);
    assert!(out.contains("before 0;"), "{out}");
    assert!(out.contains("\"r0 -> 10.100.1.1\""), "{out}");
    assert!(out.contains("\"r2 -> 10.100.1.1\""), "{out}");
    assert!(
        !out.contains("\"r0 -> 10.100.3.1\""),
        "r0 still reaches its other neighbour: {out}"
    );
    sb.np_ok(&["down", &s]);
    assert_clean(&sb);
}

// ---------------------------------------------------------------- modules, errors

#[test]
fn stdlib_errors_name_the_problem_and_the_calling_line() {
    let sb = Sandbox::new();
    let cases: &[(&str, &str)] = &[
        (
            "import \"lab\" as lab;\nlab::ring(2);",
            "a ring needs at least 3 nodes",
        ),
        (
            "import \"docker\" as d;\nlet n = d::network(\"web\", \"10.0.0.0/24\");\nd::container(n, \"a-very-long-container\");",
            "interface names are at most 15 bytes",
        ),
        (
            "import \"portmap\" as pm;\npm::table(\"80,10.0.0.1\\n8080\");",
            "mapping 2 (\"8080\")",
        ),
        (
            "import \"portmap\" as pm;\npm::table(\"99999,10.0.0.1\");",
            "port 99999 is out of range",
        ),
        (
            "import \"portmap\" as pm;\npm::load(\"missing.csv\");",
            "missing.csv",
        ),
        (
            "import \"docker\" as d;\nlet n = d::network(\"web\", \"10.0.0.0/30\");\nd::container(n, \"a\");\nd::container(n, \"b\");\nd::container(n, \"c\");",
            "outside 10.0.0.0/30",
        ),
    ];
    for (i, (body, want)) in cases.iter().enumerate() {
        let s = sb.script(&format!("bad{i}.rhai"), body);
        let o = sb.netplumb(&["plan", &s]);
        assert_eq!(o.status.code(), Some(1), "{body}");
        let err = unwrap_report(&text(&o.stderr));
        assert!(err.contains(want), "{body}: expected '{want}' in\n{err}");
        let lines = body.lines().count();
        assert!(
            err.contains(&format!("called from {s}:{lines}")),
            "{body}: the calling line in\n{err}"
        );
    }
}

/// miette wraps long messages with "│" gutters: one line again.
fn unwrap_report(err: &str) -> String {
    err.lines()
        .map(|l| l.trim_start().trim_start_matches(['│', '×']).trim())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn a_module_beside_the_script_overrides_the_bundled_one_and_cycles_are_refused() {
    let sb = Sandbox::new();
    sb.script("docker.rhai", "fn network(name, cidr) { `mine ${name}` }");
    let s = sb.script(
        "use.rhai",
        "import \"docker\" as d;\nprint(d::network(\"x\", \"10.0.0.0/24\"));",
    );
    let o = sb.netplumb(&["plan", &s]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("mine x"), "{}", text(&o.stderr));
    // A script named like a module gets the bundled one, not itself.
    let o = sb.netplumb(&["plan", &script_path("scripts/docker.rhai")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // Modules importing each other: an error, not a stack overflow.
    sb.script("ca.rhai", "import \"cb\" as b;\nfn f() { 1 }");
    sb.script("cb.rhai", "import \"ca\" as a;\nfn g() { 2 }");
    let s = sb.script("cyc.rhai", "import \"ca\" as a;");
    let o = sb.netplumb(&["plan", &s]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("circular import"),
        "{}",
        text(&o.stderr)
    );
}

// ---------------------------------------------------------------- docs

#[test]
fn reference_covers_every_registered_function() {
    // The engine's registrations against docs/dsl.md and the modules' doc comments.
    let o = Command::new(BIN).args(["doc", "--check"]).output().unwrap();
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
}

#[test]
fn doc_command_lists_modules_and_functions() {
    let doc = |args: &[&str]| {
        let o = Command::new(BIN).arg("doc").args(args).output().unwrap();
        assert!(o.status.success(), "doc {args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    };
    let overview = doc(&[]);
    for m in ["docker", "portmap", "lab", "netns", "dnat", "cidr_host"] {
        assert!(
            overview.contains(m),
            "{m} missing from the overview:\n{overview}"
        );
    }
    let modules: &[(&str, &[&str])] = &[
        (
            "docker",
            &[
                "network",
                "container",
                "publish",
                "publish_on",
                "publish_range",
            ],
        ),
        (
            "portmap",
            &[
                "spread", "list", "range_to", "shift", "parse", "apply", "table", "load",
            ],
        ),
        ("lab", &["star", "line", "ring", "tree", "graph", "check"]),
    ];
    for (m, fns) in modules {
        let page = doc(&[m]);
        for f in *fns {
            assert!(
                page.contains(&format!("{m}::{f}(")),
                "{m}::{f} missing:\n{page}"
            );
        }
        assert!(!page.contains("private fn"), "{page}");
        // docs/dsl.md documents the module's functions too.
        let dsl = std::fs::read_to_string(root().join("docs/dsl.md")).unwrap();
        for f in *fns {
            assert!(
                dsl.contains(&format!("`{m}::{f}(")),
                "docs/dsl.md lacks {m}::{f}"
            );
        }
    }
    assert!(doc(&["core"]).contains("ns.masquerade(cidr) → ()"));
    assert!(doc(&["veth"]).contains("veth(name, ns, peer) → Link"));
    assert!(doc(&["lab::ring"]).contains("lab::ring(n)"));
    let json: serde_json::Value = serde_json::from_str(&{
        let o = Command::new(BIN)
            .args(["--json", "doc", "docker"])
            .output()
            .unwrap();
        text(&o.stdout)
    })
    .unwrap();
    assert_eq!(json["modules"][0]["name"], "docker");
    let o = Command::new(BIN).args(["doc", "nosuch"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("no function or module named 'nosuch'"));
}

#[test]
fn every_script_and_module_goes_up_and_down_cleanly() {
    // The scripts other tests do not bring up in full, one after another.
    let sb = Sandbox::new();
    for script in [
        "scripts/seed.rhai",
        "scripts/router.rhai",
        "scripts/zabbix.rhai",
    ] {
        let path = script_path(script);
        sb.np_ok(&["-q", "up", &path]);
        sb.np_ok(&["down", &path]);
        assert_clean(&sb);
    }
}

#[test]
fn a_refusal_inside_a_module_names_the_callers_line() {
    let sb = Sandbox::new();
    sb.ok("ip link add app type bridge");
    let s = sb.script(
        "app.rhai",
        "import \"docker\" as d;\nlet n = d::network(\"web\", \"172.30.0.0/16\");\n\nlet c = d::container(n, \"app\");\n",
    );
    let o = sb.netplumb(&["up", &s]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("called from {s}:4 (container)")),
        "{err}"
    );
    assert!(err.contains("at stdlib/docker.rhai:"), "{err}");
    assert_eq!(sb.ok("ip netns list"), "", "nothing is left behind");
}
