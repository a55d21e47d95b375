//! Issue 3 acceptance: NAT over nf_tables netlink, checked with real TCP/UDP
//! between namespaces and read back with `nft -j`.

mod common;

use common::{Sandbox, script_path, text};

fn ruleset(sb: &Sandbox, ns: Option<&str>) -> serde_json::Value {
    match ns {
        None => sb.json("nft -j list ruleset"),
        Some(n) => sb.json(&format!("ip netns exec {n} nft -j list ruleset")),
    }
}

/// Rules and map element counts of the ruleset, handles dropped.
fn normalized(v: &serde_json::Value) -> String {
    let mut items: Vec<String> = v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x.get("metainfo").is_none())
        .map(|x| {
            let mut x = x.clone();
            for (_, inner) in x.as_object_mut().unwrap().iter_mut() {
                if let Some(o) = inner.as_object_mut() {
                    o.remove("handle");
                    if let Some(e) = o.get_mut("elem").and_then(|e| e.as_array_mut()) {
                        e.sort_by_key(|a| a.to_string());
                    }
                }
            }
            x.to_string()
        })
        .collect();
    items.sort();
    items.join("\n")
}

#[test]
fn zabbix_cases_carry_tcp_to_the_right_container() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    sb.np_ok(&["up", &script_path("scripts/zabbix.rhai")]);
    let _s3 = sb.server("zc3", "0.0.0.0", &[10050], "zc3", false);
    let _s4 = sb.server("zc4", "0.0.0.0", &[10050], "zc4", false);
    let _s5 = sb.server("zc5", "0.0.0.0", &[10050], "zc5", false);
    let got = |addr: &str, port| sb.fetch("zclient", addr, port, false);
    // 1. single IP, one container; the container sees the client (DNAT only).
    assert_eq!(
        got("10.200.0.1", 10050).as_deref(),
        Some("zc3 from 10.200.0.2")
    );
    // 2. single IP, many containers
    assert_eq!(
        got("10.200.0.1", 10051).as_deref(),
        Some("zc4 from 10.200.0.2")
    );
    assert_eq!(
        got("10.200.0.1", 10052).as_deref(),
        Some("zc5 from 10.200.0.2")
    );
    // 3. per-address mappings of the same port
    assert_eq!(
        got("10.200.0.10", 10050).as_deref(),
        Some("zc3 from 10.200.0.2")
    );
    assert_eq!(
        got("10.200.0.11", 10050).as_deref(),
        Some("zc4 from 10.200.0.2")
    );
    // unmapped pairs do not answer
    assert_eq!(got("10.200.0.1", 10053), None);
    assert_eq!(
        got("10.200.0.10", 10051).as_deref(),
        Some("zc4 from 10.200.0.2"),
        "port mappings without daddr apply to every address"
    );
    // the host itself reaches a mapped port (output chain)
    let o = sb.sh("python3 -c \"import socket;s=socket.create_connection(('10.200.0.1',10052),timeout=2);print(s.recv(100).decode())\"");
    assert!(
        text(&o.stdout).starts_with("zc5 from"),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );

    // Masquerade: a container talking out is seen as the host's address.
    let _c = sb.server("zclient", "0.0.0.0", &[7000], "client", false);
    assert_eq!(
        sb.fetch("zc4", "10.200.0.2", 7000, false).as_deref(),
        Some("client from 10.200.0.1")
    );

    // One table, readable, with maps; forwarding on.
    let rs = sb.ok("nft list ruleset");
    assert!(rs.contains("table inet netplumb-zabbix"), "{rs}");
    assert!(rs.contains("dnat ip to tcp dport map @dnat_tcp"), "{rs}");
    assert!(
        rs.contains("dnat ip to ip daddr . tcp dport map @dnat_tcp_daddr"),
        "{rs}"
    );
    assert_eq!(sb.ok("sysctl -n net.ipv4.ip_forward").trim(), "1");

    let again = sb.np_ok(&["up", &script_path("scripts/zabbix.rhai")]);
    assert!(again.contains("no changes"), "{again}");
    sb.np_ok(&["down", &script_path("scripts/zabbix.rhai")]);
    assert_eq!(sb.snapshot(), before);
    assert_eq!(sb.ok("nft list ruleset"), "");
}

const EDGE: &str = r#"
// a client on the "outside", a server behind the host
let cl = netns("cl");
let o = veth("out0", cl, "eth0");
o.addr("10.201.0.1/24").addr("10.201.0.5/24").up();
o.peer.addr("10.201.0.2/24").addr("fd01::2/64").up();
o.addr("fd01::1/64");
cl.route("default", "10.201.0.1");
cl.route("default", "fd01::1");
let br = bridge("nbr0");
br.addr("172.18.0.1/16").addr("fd00::1/64").up();
let sv = netns("sv");
let v = veth("sv0", sv, "eth0");
v.peer.addr("172.18.0.2/16").addr("fd00::2/64").up();
br.attach(v);
v.up();
sv.route("default", "172.18.0.1");
sv.route("default", "fd00::1");
"#;

#[test]
fn snat_udp_v6_and_ranges() {
    let sb = Sandbox::new();
    let s = sb.script(
        "edge.rhai",
        &format!(
            "{EDGE}
snat(\"172.18.0.0/16\", \"10.201.0.5\", #{{ oif: \"out0\" }});
masquerade(\"fd00::/64\");
dnat(#{{ port: 5353, to: \"172.18.0.2:53\", proto: \"udp\" }});
dnat(8080, \"[fd00::2]:80\");
dnat(#{{ port: 30000..30100, to: \"172.18.0.2\" }});
dnat(#{{ port: 40000..=40010, to: \"172.18.0.2:9000\" }});
"
        ),
    );
    sb.np_ok(&["up", &s]);
    // SNAT to the chosen address
    let _c = sb.server("cl", "0.0.0.0", &[7000], "client", false);
    assert_eq!(
        sb.fetch("sv", "10.201.0.2", 7000, false).as_deref(),
        Some("client from 10.201.0.5")
    );
    // v6 masquerade
    let _c6 = sb.server("cl", "::", &[7001], "client6", false);
    assert_eq!(
        sb.fetch("sv", "fd01::2", 7001, false).as_deref(),
        Some("client6 from fd01::1")
    );
    // UDP mapping
    let _u = sb.server("sv", "0.0.0.0", &[53], "dns", true);
    assert_eq!(
        sb.fetch("cl", "10.201.0.1", 5353, true).as_deref(),
        Some("dns from 10.201.0.2")
    );
    // v6 mapping
    let _w = sb.server("sv", "::", &[80], "web6", false);
    assert_eq!(
        sb.fetch("cl", "fd01::1", 8080, false).as_deref(),
        Some("web6 from fd01::2")
    );
    // a range, same ports (Rhai's `a..b` excludes b)
    let _r = sb.server("sv", "0.0.0.0", &[30000, 30099, 30100], "range", false);
    assert!(sb.fetch("cl", "10.201.0.1", 30000, false).is_some());
    assert!(sb.fetch("cl", "10.201.0.1", 30099, false).is_some());
    assert_eq!(sb.fetch("cl", "10.201.0.1", 30100, false), None);
    // a range to one port
    let _p = sb.server("sv", "0.0.0.0", &[9000], "nine", false);
    assert!(sb.fetch("cl", "10.201.0.1", 40000, false).is_some());
    assert!(sb.fetch("cl", "10.201.0.1", 40010, false).is_some());
    assert_eq!(sb.ok("sysctl -n net.ipv6.conf.all.forwarding").trim(), "1");
    sb.np_ok(&["down", &s]);
    assert_eq!(sb.ok("nft list ruleset"), "");
    assert_eq!(sb.ok("sysctl -n net.ipv6.conf.all.forwarding").trim(), "0");
}

#[test]
fn ten_thousand_mappings_one_map_last_one_works() {
    let sb = Sandbox::new();
    let s = sb.script(
        "bulk10k.rhai",
        &format!(
            "{EDGE}
for j in 0..10000 {{ dnat(20000 + j, \"172.18.0.2:80\"); }}
"
        ),
    );
    sb.np_ok(&["up", &s]);
    let rs = ruleset(&sb, None);
    let items = rs["nftables"].as_array().unwrap();
    let rules = items.iter().filter(|x| x.get("rule").is_some()).count();
    assert!(rules <= 4, "{rules} rules");
    let maps: Vec<_> = items.iter().filter_map(|x| x.get("map")).collect();
    assert_eq!(maps.len(), 1);
    assert_eq!(maps[0]["elem"].as_array().unwrap().len(), 10000);
    let _w = sb.server("sv", "0.0.0.0", &[80], "web", false);
    assert_eq!(
        sb.fetch("cl", "10.201.0.1", 29999, false).as_deref(),
        Some("web from 10.201.0.2")
    );
    assert_eq!(
        sb.fetch("cl", "10.201.0.1", 20000, false).as_deref(),
        Some("web from 10.201.0.2")
    );
    sb.np_ok(&["down", &s]);
    assert_eq!(sb.ok("nft list ruleset"), "");
}

/// The one map's `size` as `nft -j` shows it (None: not declared).
fn map_size(sb: &Sandbox) -> Option<u64> {
    let rs = ruleset(sb, None);
    let maps: Vec<serde_json::Value> = rs["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x.get("map").cloned())
        .collect();
    assert_eq!(maps.len(), 1, "{rs}");
    maps[0].get("size").and_then(|v| v.as_u64())
}

/// A map of 1,000 elements or more declares its size; edited to 999 it
/// declares none, to 1,200 it declares 1,200. Each edit's ruleset equals a
/// fresh `up` of that version, and the last mapping carries TCP.
#[test]
fn a_map_declares_its_size_across_edits_equal_to_a_fresh_up() {
    let sb = Sandbox::new();
    let version = |k: u32| {
        sb.script(
            "sized.rhai",
            &format!("{EDGE}\nfor j in 0..{k} {{ dnat(20000 + j, \"172.18.0.2:80\"); }}\n"),
        )
    };
    for (k, size) in [(1000, Some(1000)), (999, None), (1200, Some(1200))] {
        let s = version(k);
        sb.np_ok(&["up", &s]);
        assert_eq!(map_size(&sb), size, "{k} mappings after an edit");
        let edited = normalized(&ruleset(&sb, None));
        sb.np_ok(&["down", &s]);
        sb.np_ok(&["up", &s]);
        assert_eq!(
            normalized(&ruleset(&sb, None)),
            edited,
            "{k} mappings: edit and fresh up differ"
        );
        let _w = sb.server("sv", "0.0.0.0", &[80], "web", false);
        assert_eq!(
            sb.fetch("cl", "10.201.0.1", 20000 + k as u16 - 1, false)
                .as_deref(),
            Some("web from 10.201.0.2"),
            "the last of {k} mappings"
        );
    }
    sb.np_ok(&["down", "sized"]);
    assert_eq!(sb.ok("nft list ruleset"), "");
}

#[test]
fn plan_fed_to_nft_gives_the_same_ruleset() {
    let sb = Sandbox::new();
    let plan = sb.np_ok(&["plan", &script_path("scripts/zabbix.rhai")]);
    let start = plan
        .lines()
        .position(|l| l.starts_with("nft -f - <<'NFT'"))
        .expect("nft here-doc in plan");
    let body: Vec<&str> = plan
        .lines()
        .skip(start + 1)
        .take_while(|l| *l != "NFT")
        .collect();
    let f = sb.script("plan.nft", &(body.join("\n") + "\n"));
    let other = Sandbox::new();
    other.ok(&format!("nft -f {f}"));
    sb.np_ok(&["up", &script_path("scripts/zabbix.rhai")]);
    assert_eq!(
        normalized(&ruleset(&sb, None)),
        normalized(&ruleset(&other, None))
    );
}

#[test]
fn nat_inside_a_namespace_and_nothing_else_touched() {
    let sb = Sandbox::new();
    sb.ok("nft add table inet theirs && nft add chain inet theirs c '{ type filter hook input priority 0; }' && nft add rule inet theirs c tcp dport 22 accept");
    let before = sb.ok("nft list ruleset");
    let s = sb.script(
        "inner.rhai",
        r#"
let gw = netns("gw");
gw.veth("a", "b");
gw.masquerade("10.9.0.0/16", #{ oif: "a" });
gw.dnat(#{ port: 443, to: "10.9.0.7:8443", iif: "a" });
"#,
    );
    sb.np_ok(&["up", &s]);
    let inner = sb.ok("ip netns exec gw nft list ruleset");
    assert!(inner.contains("table inet netplumb-inner"), "{inner}");
    assert!(inner.contains("oifname \"a\""), "{inner}");
    assert_eq!(
        sb.ok("ip netns exec gw sysctl -n net.ipv4.ip_forward")
            .trim(),
        "1"
    );
    assert_eq!(
        sb.ok("nft list ruleset"),
        before,
        "host ruleset must be untouched"
    );
    sb.np_ok(&["down", &s]);
    assert_eq!(sb.ok("nft list ruleset"), before);
}

#[test]
fn conflicting_mapping_is_refused_with_both_lines() {
    let sb = Sandbox::new();
    let s = sb.script(
        "clash.rhai",
        "dnat(8080, \"172.17.0.3:80\");\n\ndnat(8080, \"172.17.0.4:80\");\n",
    );
    let o = sb.netplumb(&["up", &s]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("clash.rhai:3"), "{err}");
    assert_eq!(sb.ok("nft list ruleset"), "");
}

#[test]
fn a_dnat_destination_in_each_of_its_forms_reaches_the_map_as_written() {
    let sb = Sandbox::new();
    // "v4:port" is split before it is parsed; the bare and bracketed forms
    // and a v6 address whose last group looks like a port must not be.
    let s = sb.script(
        "forms",
        r#"dnat(8080, "172.17.0.3:10050");
dnat(8081, "172.17.0.4");
dnat(8082, "[fd00::2]:80");
dnat(8083, "fd00::3");
dnat(8084, "fd00::2:80");
dnat(#{ port: 8085, to: "[172.17.0.5]:81" });
"#,
    );
    sb.np_ok(&["up", &s]);
    let v4 = sb.ok("nft list map inet netplumb-forms dnat_tcp");
    assert!(
        v4.contains("elements = { 8080 : 172.17.0.3 . 10050, 8081 : 172.17.0.4 . 8081, 8085 : 172.17.0.5 . 81 }"),
        "{v4}"
    );
    let v6 = sb.ok("nft list map inet netplumb-forms dnat_tcp6");
    assert!(
        v6.contains(
            "elements = { 8082 : fd00::2 . 80, 8083 : fd00::3 . 8083, 8084 : fd00::2:80 . 8084 }"
        ),
        "{v6}"
    );
    for bad in ["172.17.0.3:", "172.17.0.3:x", "fd00::2]:80", "nowhere:80"] {
        let s = sb.script("bad", &format!("dnat(8080, \"{bad}\");\n"));
        let out = sb.netplumb(&["plan", &s]);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains(&format!("'{bad}' is not a destination")),
            "{bad}: {}",
            text(&out.stderr)
        );
    }
}
