//! Issue 16: routes of every kind and policy rules, real in private
//! namespaces: read back exactly through `ip -j route show table all` and
//! `ip -j rule`, traffic that follows the rule (interface counters), a
//! blackhole that drops, idempotent, edited in place, drift repaired.

mod common;

use common::{Sandbox, text};
use serde_json::{Value, json};

/// Client `rc` reaches server `rs` over two veths: p1 (10.1.0.0/24) and
/// p2 (10.2.0.0/24). The server's addresses 10.99.0.1 and 10.97.0.1 sit on
/// its lo.
const BASE: &str = r#"
let c = netns("rc");
let s = netns("rs");
let p1 = c.veth("p1", s, "q1");
p1.addr("10.1.0.2/24").up();
p1.peer.addr("10.1.0.1/24").up();
let p2 = c.veth("p2", s, "q2");
p2.addr("10.2.0.2/24").up();
p2.peer.addr("10.2.0.1/24").up();
s.link("lo").addr("10.99.0.1/32").addr("10.97.0.1/32");
"#;

const V1: &str = r#"
c.route("10.96.0.0/24", #{ dev: "p1" });
c.route("10.98.0.0/24", #{ type: "blackhole" });
c.route("10.97.0.0/24", #{ nexthops: [#{ via: "10.1.0.1" }, #{ via: "10.2.0.1", dev: "p2", weight: 3 }] });
c.route("10.99.0.1/32", #{ via: "10.1.0.1" });
c.route("10.99.0.1/32", #{ via: "10.2.0.1", table: 100 });
c.rule(#{ from: "10.2.0.2", table: 100, priority: 1000 });
"#;

const V2: &str = r#"
c.route("10.96.0.0/24", #{ dev: "p2", metric: 10 });
c.route("10.97.0.0/24", #{ nexthops: [#{ via: "10.1.0.1", weight: 2 }, #{ via: "10.2.0.1", weight: 2 }] });
c.route("10.99.0.1/32", #{ via: "10.1.0.1" });
c.route("10.99.0.1/32", #{ via: "10.2.0.1", table: 100 });
c.route("2001:db8::/64", #{ type: "unreachable" });
c.rule(#{ from: "10.2.0.2", table: 100, priority: 900 });
c.rule(#{ fwmark: 7, type: "prohibit", priority: 800 });
"#;

/// The client's routes netplumb made (proto boot, as `ip route add` makes
/// them) and non-kernel rules, as `ip -j` prints them.
fn routing(sb: &Sandbox) -> (Vec<Value>, Vec<Value>) {
    let routes = sb.json("ip -n rc -j route show table all proto boot");
    let routes6 = sb.json("ip -n rc -6 -j route show table all proto boot");
    let mut r: Vec<Value> = routes
        .as_array()
        .into_iter()
        .chain(routes6.as_array())
        .flatten()
        .cloned()
        .collect();
    r.sort_by_key(|v| v.to_string());
    let rules = sb.json("ip -n rc -j rule");
    let rules6 = sb.json("ip -n rc -6 -j rule");
    let mut u: Vec<Value> = rules
        .as_array()
        .into_iter()
        .chain(rules6.as_array())
        .flatten()
        .filter(|x| !matches!(x["priority"].as_u64(), Some(0 | 32766 | 32767)))
        .cloned()
        .collect();
    u.sort_by_key(|v| v.to_string());
    (r, u)
}

fn find<'a>(routes: &'a [Value], dst: &str, table: Option<&str>) -> &'a Value {
    routes
        .iter()
        .find(|r| r["dst"] == dst && r["table"].as_str() == table)
        .unwrap_or_else(|| panic!("no route {dst} table {table:?} in {routes:?}"))
}

fn tx(sb: &Sandbox, dev: &str) -> u64 {
    sb.json(&format!("ip -n rc -s -j link show {dev}"))[0]["stats64"]["tx"]["packets"]
        .as_u64()
        .expect("tx packets")
}

#[test]
fn device_blackhole_ecmp_routes_and_a_rule_read_back_and_traffic_follows_the_rule() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let s = sb.script("rt.rhai", &format!("{BASE}{V1}"));
    let plan = sb.np_ok(&["plan", &s]);
    for line in [
        "ip -n rc route add 10.96.0.0/24 dev p1",
        "ip -n rc route add blackhole 10.98.0.0/24",
        "ip -n rc route add 10.97.0.0/24 nexthop via 10.1.0.1 weight 1 nexthop via 10.2.0.1 dev p2 weight 3",
        "ip -n rc route add 10.99.0.1/32 via 10.2.0.1 table 100",
        "ip -n rc rule add from 10.2.0.2/32 priority 1000 table 100",
    ] {
        assert!(plan.contains(line), "plan lacks `{line}`:\n{plan}");
    }
    sb.np_ok(&["up", &s]);
    let (routes, rules) = routing(&sb);
    assert_eq!(
        find(&routes, "10.96.0.0/24", None),
        &json!({"dst": "10.96.0.0/24", "dev": "p1", "scope": "link", "flags": []})
    );
    assert_eq!(
        find(&routes, "10.98.0.0/24", None),
        &json!({"type": "blackhole", "dst": "10.98.0.0/24", "flags": []})
    );
    assert_eq!(
        find(&routes, "10.97.0.0/24", None)["nexthops"],
        json!([
            {"gateway": "10.1.0.1", "dev": "p1", "weight": 1, "flags": []},
            {"gateway": "10.2.0.1", "dev": "p2", "weight": 3, "flags": []}
        ])
    );
    assert_eq!(
        find(&routes, "10.99.0.1", Some("100"))["gateway"],
        "10.2.0.1"
    );
    assert_eq!(find(&routes, "10.99.0.1", None)["gateway"], "10.1.0.1");
    assert_eq!(
        rules,
        vec![json!({"priority": 1000, "src": "10.2.0.2", "table": "100"})]
    );

    // Traffic follows the rule: from 10.2.0.2 out of p2, otherwise p1.
    let (a1, a2) = (tx(&sb, "p1"), tx(&sb, "p2"));
    sb.ok("ip netns exec rc ping -c5 -i0.05 -W2 -I 10.2.0.2 10.99.0.1");
    let (b1, b2) = (tx(&sb, "p1"), tx(&sb, "p2"));
    assert!(
        b2 - a2 >= 5 && b1 - a1 < 3,
        "rule: p1 {a1}→{b1}, p2 {a2}→{b2}"
    );
    sb.ok("ip netns exec rc ping -c5 -i0.05 -W2 -I 10.1.0.2 10.99.0.1");
    let (c1, c2) = (tx(&sb, "p1"), tx(&sb, "p2"));
    assert!(
        c1 - b1 >= 5 && c2 - b2 < 3,
        "main: p1 {b1}→{c1}, p2 {b2}→{c2}"
    );
    // ECMP carries, the blackhole drops.
    sb.ok("ip netns exec rc ping -c1 -W2 10.97.0.1");
    let bh = sb.sh("ip netns exec rc ping -c1 -W1 10.98.0.1");
    assert!(!bh.status.success(), "the blackhole must drop");

    let again = sb.np_ok(&["up", &s]);
    assert!(again.contains("no changes"), "{again}");
    assert_eq!(sb.netplumb(&["check", "rt"]).status.code(), Some(0));
    // Drift: the rule and a route removed behind its back.
    sb.ok("ip -n rc rule del priority 1000 && ip -n rc route del 10.98.0.0/24");
    let c = sb.netplumb(&["check", "rt"]);
    assert_eq!(c.status.code(), Some(1), "{}", text(&c.stdout));
    let report = text(&c.stdout);
    assert!(
        report.contains("+ rule from 10.2.0.2/32 priority 1000 table 100"),
        "{report}"
    );
    assert!(
        report.contains("+ route blackhole 10.98.0.0/24"),
        "{report}"
    );
    sb.np_ok(&["up", &s]);
    assert_eq!(routing(&sb), (routes, rules), "repaired");
    sb.np_ok(&["down", "rt"]);
    assert_eq!(sb.snapshot(), before);
}

#[test]
fn day_two_route_and_rule_edits_equal_a_fresh_up() {
    let fresh = Sandbox::new();
    let s2 = fresh.script("rt.rhai", &format!("{BASE}{V2}"));
    fresh.np_ok(&["up", &s2]);
    let want = routing(&fresh);

    let sb = Sandbox::new();
    let s1 = sb.script("rt.rhai", &format!("{BASE}{V1}"));
    sb.np_ok(&["up", &s1]);
    let s2 = sb.script("rt.rhai", &format!("{BASE}{V2}"));
    let out = sb.np_ok(&["up", &s2]);
    assert!(out.contains("- route blackhole 10.98.0.0/24"), "{out}");
    assert!(
        out.contains("~ route 10.97.0.0/24"),
        "replaced in place: {out}"
    );
    assert_eq!(routing(&sb), want, "edited:\n{out}");
    let again = sb.np_ok(&["up", &s2]);
    assert!(again.contains("no changes"), "{again}");
}

#[test]
fn bad_routes_and_rules_are_refused_with_the_line() {
    let sb = Sandbox::new();
    for (body, want) in [
        (
            "let c = netns(\"x\");\nc.route(\"10.0.0.0/8\", #{ type: \"blackhole\", via: \"10.0.0.1\" });",
            "a blackhole route takes no via",
        ),
        (
            "let c = netns(\"x\");\nc.route(\"10.0.0.0/8\", #{ type: \"fast\" });",
            "unknown route type \"fast\"",
        ),
        (
            "let c = netns(\"x\");\nc.route(\"10.0.0.0/8\", #{ nexthops: [#{ weight: 2 }] });",
            "each next hop needs a via or a dev",
        ),
        (
            "let c = netns(\"x\");\nc.rule(#{ from: \"10.0.0.0/8\", table: 100 });",
            "a rule needs a priority",
        ),
        (
            "let c = netns(\"x\");\nc.route(\"10.0.0.0/8\", #{ via: \"fd00::1\" });",
            "10.0.0.0/8",
        ),
    ] {
        let s = sb.script("bad.rhai", body);
        let o = sb.netplumb(&["up", &s]);
        let err = text(&o.stderr);
        assert!(!o.status.success());
        assert!(err.contains(want), "want {want}: {err}");
        assert!(err.contains("bad.rhai:2"), "names the line: {err}");
        assert_eq!(sb.ok("ip netns list"), "", "nothing made");
    }
}
