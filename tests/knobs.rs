//! Issue 14 item 6: kernel knobs as script options, read back from the
//! kernel — `bridge(name, #{ mcast_snooping: false })` with `ip -j -d link`,
//! `netns(name, #{ ipv6: false })` with sysctl and `ip -6 addr` — and day
//! two: changing an option between two ups converges, and down leaves
//! nothing.

mod common;

use common::{Sandbox, script_path, text};

fn snooping(sb: &Sandbox, br: &str) -> u64 {
    let j = sb.json(&format!("ip -j -d link show {br}"));
    j[0]["linkinfo"]["info_data"]["mcast_snooping"]
        .as_u64()
        .unwrap_or_else(|| panic!("no mcast_snooping in {j}"))
}

fn sysctl(sb: &Sandbox, ns: &str, key: &str) -> String {
    sb.ok(&format!("ip netns exec {ns} sysctl -n {key}"))
        .trim()
        .to_string()
}

const SCRIPT: &str = r#"
let lean = if is_def_var("lean") { lean } else { false };
let br = if lean { bridge("knbr0", #{ mcast_snooping: false }) } else { bridge("knbr0") };
br.addr("10.77.0.1/24").up();
let ns = if lean { netns("knns", #{ ipv6: false }) } else { netns("knns") };
let v = veth("knv0", ns, "eth0");
br.attach(v);
v.up();
v.peer.addr("10.77.0.2/24").up();
"#;

#[test]
fn options_are_set_read_back_and_converge_both_ways() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let s = sb.script("knobs.rhai", SCRIPT);
    sb.np_ok(&["up", &s, "--name", "kn", "--set", "lean=true"]);
    assert_eq!(snooping(&sb, "knbr0"), 0);
    for key in [
        "net.ipv6.conf.all.disable_ipv6",
        "net.ipv6.conf.default.disable_ipv6",
        "net.ipv6.conf.eth0.disable_ipv6",
    ] {
        assert_eq!(sysctl(&sb, "knns", key), "1", "{key}");
    }
    // Off before eth0 came in: it never had an IPv6 address.
    let v6 = sb.json("ip -n knns -j -6 addr show dev eth0");
    assert!(
        v6.as_array().is_none_or(|a| a
            .iter()
            .all(|l| l["addr_info"].as_array().is_none_or(|x| x.is_empty()))),
        "{v6}"
    );
    // The namespaces still talk over IPv4.
    sb.ok("ip netns exec knns ping -c 1 -W 2 10.77.0.1");

    // Day two: the options dropped give the kernel's defaults back.
    sb.np_ok(&["up", &s, "--name", "kn"]);
    assert_eq!(snooping(&sb, "knbr0"), 1);
    assert_eq!(sysctl(&sb, "knns", "net.ipv6.conf.all.disable_ipv6"), "0");
    assert_eq!(
        sysctl(&sb, "knns", "net.ipv6.conf.default.disable_ipv6"),
        "0"
    );

    // And back again, in place: the same bridge and namespace.
    let ino = sb.ok("stat -L -c %i /run/netns/knns");
    sb.np_ok(&["up", &s, "--name", "kn", "--set", "lean=true"]);
    assert_eq!(snooping(&sb, "knbr0"), 0);
    assert_eq!(sysctl(&sb, "knns", "net.ipv6.conf.all.disable_ipv6"), "1");
    assert_eq!(sb.ok("stat -L -c %i /run/netns/knns"), ino);

    // A second up with the same options changes nothing.
    let again = sb.np_ok(&["up", &s, "--name", "kn", "--set", "lean=true"]);
    assert!(!again.contains("+ ") && !again.contains("~ "), "{again}");

    sb.np_ok(&["down", "--name", "kn"]);
    assert_eq!(sb.snapshot(), before);
}

#[test]
fn a_namespace_declared_again_without_ipv6_gets_its_two_sysctls_once() {
    let sb = Sandbox::new();
    let s = sb.script(
        "twice.rhai",
        r#"netns("kt1", #{ ipv6: false });
netns("kt2", #{ ipv6: false });
netns("kt1", #{ ipv6: false });
"#,
    );
    let plan = sb.np_ok(&["plan", &s]);
    let lines: Vec<&str> = plan
        .lines()
        .filter(|l| l.contains("disable_ipv6"))
        .collect();
    assert_eq!(
        lines,
        [
            "ip netns exec kt1 sysctl -w net.ipv6.conf.all.disable_ipv6=1",
            "ip netns exec kt1 sysctl -w net.ipv6.conf.default.disable_ipv6=1",
            "ip netns exec kt2 sysctl -w net.ipv6.conf.all.disable_ipv6=1",
            "ip netns exec kt2 sysctl -w net.ipv6.conf.default.disable_ipv6=1",
        ],
        "{plan}"
    );
}

#[test]
fn unknown_or_mistyped_options_are_refused_with_what_is_accepted() {
    let sb = Sandbox::new();
    let s = sb.script("bad.rhai", r#"bridge("kb0", #{ snooping: false });"#);
    let o = sb.netplumb(&["plan", &s]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("no option 'snooping'") && err.contains("mcast_snooping"),
        "{err}"
    );
    let s = sb.script("bad2.rhai", r#"netns("kb", #{ ipv6: "no" });"#);
    let o = sb.netplumb(&["plan", &s]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("true or false"), "{err}");
}

#[test]
fn bulk_lean_spreads_over_bridges_with_the_knobs_set() {
    let sb = Sandbox::new();
    let bulk = script_path("scripts/bulk.rhai");
    let args = [
        "up",
        &bulk,
        "--name",
        "bl",
        "--set",
        "n=6",
        "--set",
        "k=4",
        "--set",
        "bridges=2",
        "--set",
        "lean=true",
    ];
    sb.np_ok(&args);
    for (br, port) in [("foobr0", "bv1"), ("foobr1", "bv6")] {
        assert_eq!(snooping(&sb, br), 0, "{br}");
        let p = sb.json(&format!("ip -j link show {port}"));
        assert_eq!(p[0]["master"], br, "{port}");
    }
    assert_eq!(sysctl(&sb, "bns6", "net.ipv6.conf.all.disable_ipv6"), "1");
    sb.ok("ip netns exec bns6 ping -c 1 -W 2 172.19.0.1");
    let o = sb.netplumb(&["plan", &bulk, "--set", "n=2100", "--set", "k=1"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("at most 1023"),
        "{}",
        text(&o.stderr)
    );
    sb.np_ok(&["down", "--name", "bl"]);
}
