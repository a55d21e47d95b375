//! Issue 11 acceptance, the edit loop: `up` of an edited script converges
//! the kernel to it (removals included) and equals a fresh `up` of the new
//! version in another sandbox, read back with `ip -j`, `nft -j` and sysctl;
//! a late failure rolls the whole edit back; `plan --diff` run as a shell
//! script makes the same edit.

mod common;

use common::kstate::{assert_same, state};
use common::{Sandbox, text};

/// A client outside, n1 and n2 behind the host, a host and a namespace
/// sysctl, two published ports.
const V1: &str = r#"
let cl = netns("cl");
let c = veth("c0", cl, "eth0");
c.addr("10.61.9.1/24").up();
c.peer.addr("10.61.9.2/24").up();
cl.route("default", "10.61.9.1");
let n1 = netns("n1");
let n2 = netns("n2");
let a = veth("s1", n1, "eth0");
a.addr("10.61.1.1/24").up();
a.peer.addr("10.61.1.2/24").up();
n1.route("default", "10.61.1.1");
let b = veth("s2", n2, "eth0");
b.addr("10.61.2.1/24").up();
b.peer.addr("10.61.2.2/24").up();
n2.route("default", "10.61.2.1");
host().sysctl("net.ipv4.conf.all.rp_filter", "2");
n1.sysctl("net.ipv4.conf.all.rp_filter", "1");
dnat(8080, "10.61.1.2:80");
dnat(8081, "10.61.2.2:80");
"#;

/// n2 dropped, n1's address changed, both sysctls dropped, one port left.
const V2: &str = r#"
let cl = netns("cl");
let c = veth("c0", cl, "eth0");
c.addr("10.61.9.1/24").up();
c.peer.addr("10.61.9.2/24").up();
cl.route("default", "10.61.9.1");
let n1 = netns("n1");
let a = veth("s1", n1, "eth0");
a.addr("10.61.1.1/24").up();
a.peer.addr("10.61.1.3/24").up();
n1.route("default", "10.61.1.1");
dnat(8080, "10.61.1.3:80");
"#;

/// A fresh sandbox after only `up` of `body` as `name`, and its state.
fn fresh_sb(name: &str, body: &str) -> (Sandbox, String) {
    let sb = Sandbox::new();
    let s = sb.script("v.rhai", body);
    sb.np_ok(&["-q", "up", "--name", name, &s]);
    let st = state(&sb);
    (sb, st)
}

fn fresh(name: &str, body: &str) -> String {
    fresh_sb(name, body).1
}

fn no_drift(sb: &Sandbox, name: &str) {
    let out = sb.np_ok(&["check", name]);
    assert!(out.contains("no drift"), "check {name}: {out}");
}

#[test]
fn edit_v1_to_v2_equals_fresh_v2_and_down_restores() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let v1 = sb.script("v1.rhai", V1);
    let v2 = sb.script("v2.rhai", V2);
    sb.np_ok(&["up", "--name", "site", &v1]);
    assert_eq!(sb.ok("sysctl -n net.ipv4.conf.all.rp_filter").trim(), "2");
    let out = sb.np_ok(&["up", "--name", "site", &v2]);
    for line in [
        "- netns n2",
        "- link s2",
        "- addr 10.61.1.2/24 on n1:eth0",
        "+ addr 10.61.1.3/24 on n1:eth0",
        "~ sysctl net.ipv4.conf.all.rp_filter=0 in host",
        "~ nat table netplumb-site in host (1 rule)",
    ] {
        assert!(out.lines().any(|l| l == line), "no `{line}` in:\n{out}");
    }
    assert!(!out.contains("repaired"), "an edit is no repair:\n{out}");
    let summary = out.lines().last().unwrap_or_default();
    let counts: Vec<usize> = summary
        .trim_start_matches("topology 'site': ")
        .split(", ")
        .take(3)
        .map(|p| p.split(' ').next().unwrap_or("x").parse().unwrap_or(999))
        .collect();
    assert!(
        summary.starts_with("topology 'site': ")
            && summary.contains(" created, ")
            && summary.contains(" changed, ")
            && summary.contains(" removed"),
        "{summary}"
    );
    let lines = |p: &str| out.lines().filter(|l| l.starts_with(p)).count();
    assert_eq!(counts, vec![lines("+ "), lines("~ "), lines("- ")], "{out}");

    assert_same(&state(&sb), &fresh("site", V2), "up v1; up v2 vs up v2");
    no_drift(&sb, "site");
    // The new address is the primary: n1's traffic comes from it.
    let _c = sb.server("cl", "0.0.0.0", &[7000], "cl", false);
    assert_eq!(
        sb.fetch("n1", "10.61.9.2", 7000, false).as_deref(),
        Some("cl from 10.61.1.3")
    );
    // The remaining port goes to the new address; the dropped one is gone.
    let _w = sb.server("n1", "0.0.0.0", &[80], "n1", false);
    assert_eq!(
        sb.fetch("cl", "10.61.9.1", 8080, false).as_deref(),
        Some("n1 from 10.61.9.2")
    );
    assert_eq!(sb.fetch("cl", "10.61.9.1", 8081, false), None);
    let again = sb.np_ok(&["up", "--name", "site", &v2]);
    assert!(again.contains("no changes"), "{again}");

    sb.np_ok(&["down", "--name", "site"]);
    assert_eq!(sb.snapshot(), before);
    assert_eq!(sb.ok("sysctl -n net.ipv4.conf.all.rp_filter").trim(), "0");
}

#[test]
fn route_gateway_change_replaces_the_route_and_traffic_follows() {
    // c reaches s's 10.71.9.9 through router r1 or r2.
    let base = r#"
let c = netns("c");
let s = netns("s");
for i in 1..=2 {
    let r = netns(`r${i}`);
    r.sysctl("net.ipv4.ip_forward", "1");
    let a = c.veth(`to${i}`, r, "in");
    a.addr(`10.71.${i}.2/24`).up();
    a.peer.addr(`10.71.${i}.1/24`).up();
    let b = r.veth("out", s, `from${i}`);
    b.addr(`10.72.${i}.1/24`).up();
    b.peer.addr(`10.72.${i}.2/24`).up();
    s.route(`10.71.${i}.0/24`, `10.72.${i}.1`);
    r.route("10.71.99.9/32", `10.72.${i}.2`);
}
s.link("lo").addr("10.71.99.9/32");
"#;
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let v1 = sb.script(
        "gw1.rhai",
        &format!("{base}c.route(\"10.71.99.9/32\", \"10.71.1.1\");"),
    );
    let v2 = sb.script(
        "gw2.rhai",
        &format!("{base}c.route(\"10.71.99.9/32\", \"10.71.2.1\");"),
    );
    sb.np_ok(&["-q", "up", "--name", "gw", &v1]);
    let _srv = sb.server("s", "0.0.0.0", &[9000], "s", false);
    assert_eq!(
        sb.fetch("c", "10.71.99.9", 9000, false).as_deref(),
        Some("s from 10.71.1.2")
    );
    let out = sb.np_ok(&["up", "--name", "gw", &v2]);
    assert!(
        out.contains("~ route 10.71.99.9/32 via 10.71.2.1 in c"),
        "{out}"
    );
    assert!(!out.contains("repaired"), "{out}");
    let r = sb.json("ip -j -n c route show 10.71.99.9/32");
    assert_eq!(r.as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(r[0]["gateway"], "10.71.2.1");
    let rx = |ns: &str| -> u64 {
        sb.json(&format!("ip -j -s -n {ns} link show in"))[0]["stats64"]["rx"]["packets"]
            .as_u64()
            .unwrap()
    };
    let (r1, r2) = (rx("r1"), rx("r2"));
    sb.ok("ip netns exec c ping -c20 -i0.05 -W2 10.71.99.9");
    assert!(rx("r2") >= r2 + 20, "the pings did not cross r2");
    assert!(rx("r1") < r1 + 10, "the pings still crossed r1");
    // TCP leaves c by the new gateway's link (its address is the source).
    assert_eq!(
        sb.fetch("c", "10.71.99.9", 9000, false).as_deref(),
        Some("s from 10.71.2.2")
    );
    assert_same(
        &state(&sb),
        &fresh("gw", &std::fs::read_to_string(&v2).unwrap()),
        "gateway edit",
    );
    no_drift(&sb, "gw");
    sb.np_ok(&["-q", "down", "--name", "gw"]);
    assert_eq!(sb.snapshot(), before);
}

#[test]
fn late_failure_of_an_edit_rolls_back_to_v1_exactly() {
    let sb = Sandbox::new();
    let v1 = sb.script("v1.rhai", V1);
    // v2's removals and changes, then a bridge the kernel refuses to
    // enslave to another bridge: the last op of the run fails.
    let v2 = sb.script(
        "v2.rhai",
        &format!("{V2}\nlet ba = bridge(\"lbra\");\nlet bb = bridge(\"lbrb\");\nba.attach(bb);\n"),
    );
    sb.np_ok(&["-q", "up", "--name", "site", &v1]);
    let after_v1 = state(&sb);
    let o = sb.netplumb(&["up", "--name", "site", &v2]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("lbrb"), "{err}");
    assert!(!err.contains("rolling back failed"), "{err}");
    assert_same(&state(&sb), &after_v1, "failed edit vs v1");
    no_drift(&sb, "site");
    let _w = sb.server("n2", "0.0.0.0", &[80], "n2", false);
    assert_eq!(
        sb.fetch("cl", "10.61.9.1", 8081, false).as_deref(),
        Some("n2 from 10.61.9.2"),
        "v1's second port works again"
    );
    sb.np_ok(&["-q", "down", "--name", "site"]);
    assert_eq!(sb.ok("ip netns list"), "");
}

#[test]
fn kill_9_during_a_converging_up_then_down_leaves_nothing() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let v1 = sb.script(
        "big1.rhai",
        r#"
let br = bridge("kbr0");
br.addr("10.91.0.1/16").up();
for i in 0..40 {
    let n = netns(`k${i}`);
    let v = veth(`kv${i}`, n, "eth0");
    br.attach(v);
    v.up();
    v.peer.addr(`10.91.0.${i + 2}/16`).up();
    n.route("default", "10.91.0.1");
}
"#,
    );
    // Half of v1 goes, 150 new namespaces come.
    let v2 = sb.script(
        "big2.rhai",
        r#"
let br = bridge("kbr0");
br.addr("10.91.0.1/16").up();
for i in 20..190 {
    let n = netns(`k${i}`);
    let v = veth(`kv${i}`, n, "eth0");
    br.attach(v);
    v.up();
    v.peer.addr(`10.91.${i / 200}.${i % 200 + 2}/16`).up();
}
host().sysctl("net.ipv4.ip_forward", "1");
"#,
    );
    for delay_ms in [40u64, 150, 400] {
        sb.np_ok(&["-q", "up", "--name", "big", &v1]);
        let mut child = sb
            .cmd(common::BIN)
            .args(["-q", "up", "--name", "big", &v2])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        // nsenter execs netplumb in place: this is netplumb's own pid.
        let _ = child.kill();
        let _ = child.wait();
        sb.np_ok(&["-q", "down", "--name", "big"]);
        assert_eq!(
            sb.snapshot(),
            before,
            "after kill -9 at {delay_ms} ms into the edit, and down"
        );
    }
}

#[test]
fn plan_diff_run_as_shell_turns_v1_into_v2() {
    let sb = Sandbox::new();
    let v1 = sb.script("v1.rhai", V1);
    let v2 = sb.script("v2.rhai", V2);
    sb.np_ok(&["-q", "up", "--name", "site", &v1]);
    let plan = sb.np_ok(&["plan", "--diff", "--name", "site", &v2]);
    assert!(
        plan.contains("ip netns del n2") || plan.contains("ip netns delete n2"),
        "{plan}"
    );
    assert!(plan.contains("addr del 10.61.1.2/24"), "{plan}");
    let file = sb.script("edit.sh", &plan);
    sb.ok(&format!("sh -e {file}"));
    let (other, want) = fresh_sb("site", V2);
    assert_same(&state(&sb), &want, "plan --diff | sh vs up v2");
    // Up to date: nothing to print.
    let v2b = other.script("v2.rhai", V2);
    assert_eq!(other.np_ok(&["plan", "--diff", "--name", "site", &v2b]), "");
}
