//! Issue 2 acceptance: real topologies in private namespaces, read back with
//! `ip -j`, real ICMP between namespaces, exact teardown.

mod common;

use common::{Sandbox, script_path, text};

fn names(v: &serde_json::Value, key: &str) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x[key].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn seed_up_readback_ping_idempotent_down() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let out = sb.np_ok(&["up", &script_path("scripts/seed.rhai")]);
    assert!(out.contains("+ netns foons"), "{out}");
    assert!(out.contains("foons reaches the bridge"), "{out}");

    assert_eq!(sb.ok("ip netns list | cut -d' ' -f1").trim(), "foons");
    let host = sb.json("ip -j link show");
    let hl = names(&host, "ifname");
    assert!(
        hl.contains(&"veth0".to_string()) && hl.contains(&"foobr0".to_string()),
        "{hl:?}"
    );
    let veth0 = sb.json("ip -j -d link show veth0");
    assert_eq!(veth0[0]["master"], "foobr0");
    assert_eq!(veth0[0]["linkinfo"]["info_kind"], "veth");
    assert!(
        veth0[0]["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "UP")
    );
    let br = sb.json("ip -j -d link show foobr0");
    assert_eq!(br[0]["linkinfo"]["info_kind"], "bridge");
    assert_eq!(br[0]["linkinfo"]["info_data"]["stp_state"], 0);
    let addrs = sb.json("ip -j -n foons addr show eth0");
    let a = &addrs[0]["addr_info"];
    assert!(
        a.as_array()
            .unwrap()
            .iter()
            .any(|x| x["local"] == "172.18.0.20" && x["prefixlen"] == 16),
        "{a}"
    );
    let routes = sb.json("ip -j -n foons route show default");
    assert_eq!(routes[0]["gateway"], "172.18.0.1");
    assert_eq!(routes[0]["dev"], "eth0");
    let lo = sb.json("ip -j -n foons link show lo");
    assert!(lo[0]["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    sb.ok("ip netns exec foons ping -c1 -W2 172.18.0.1");

    let again = sb.np_ok(&["up", &script_path("scripts/seed.rhai")]);
    assert!(
        again.contains("no changes"),
        "second up changed something:\n{again}"
    );

    let down = sb.np_ok(&["down", &script_path("scripts/seed.rhai")]);
    assert!(down.contains("removed"), "{down}");
    assert_eq!(sb.snapshot(), before);
    let again = sb.np_ok(&["down", &script_path("scripts/seed.rhai")]);
    assert!(again.contains("nothing to remove"), "{again}");
}

#[test]
fn router_loop_pings_across_networks() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    sb.np_ok(&[
        "up",
        &script_path("scripts/router.rhai"),
        "--set",
        "leaves=3",
    ]);
    let ns = sb.ok("ip netns list | cut -d' ' -f1 | sort");
    for n in [
        "router", "sw1", "sw2", "n1h0", "n1h1", "n1h2", "n2h0", "n2h1", "n2h2",
    ] {
        assert!(ns.lines().any(|l| l == n), "{n} missing from {ns}");
    }
    for (from, to) in [
        ("n1h0", "10.2.0.12"),
        ("n2h2", "10.1.0.10"),
        ("n1h1", "10.1.0.12"),
    ] {
        sb.ok(&format!("ip netns exec {from} ping -c1 -W2 {to}"));
    }
    sb.np_ok(&["down", "--name", "router"]);
    assert_eq!(sb.snapshot(), before);
}

#[test]
fn ipv6_addresses_and_routes_ping6() {
    let sb = Sandbox::new();
    let s = sb.script(
        "v6.rhai",
        r#"
let a = netns("a6");
let b = netns("b6");
let v = a.veth("eth0", b, "eth0");
v.addr("fd00:1::1/64").up();
v.peer.addr("fd00:1::2/64").up();
// a second prefix behind b, reached through a v6 route
b.link("lo").addr("fd00:2::2/128");
a.route("fd00:2::/64", "fd00:1::2");
a.route("default", "fd00:1::2");
"#,
    );
    sb.np_ok(&["up", &s]);
    let r = sb.json("ip -j -6 -n a6 route show fd00:2::/64");
    assert_eq!(r[0]["gateway"], "fd00:1::2");
    let d = sb.json("ip -j -6 -n a6 route show default");
    assert_eq!(d[0]["gateway"], "fd00:1::2");
    sb.ok("ip netns exec a6 ping -6 -c1 -W2 fd00:1::2");
    sb.ok("ip netns exec a6 ping -6 -c1 -W2 fd00:2::2");
    sb.np_ok(&["down", &s]);
    assert_eq!(sb.ok("ip netns list"), "");
}

#[test]
fn preexisting_bridge_and_namespace_survive() {
    let sb = Sandbox::new();
    sb.ok(
        "ip netns add pre && ip link add foobr0 type bridge && ip addr add 10.77.0.1/24 dev foobr0",
    );
    let before = sb.snapshot();
    let s = sb.script(
        "adopt.rhai",
        r#"
let p = netns("pre");
let br = bridge("foobr0");
br.up();
let v = veth("vp0", p, "eth0");
v.peer.addr("10.77.0.2/24").up();
br.attach(v);
v.up();
"#,
    );
    sb.np_ok(&["up", &s]);
    sb.ok("ip netns exec pre ping -c1 -W2 10.77.0.1");
    sb.np_ok(&["down", &s]);
    assert_eq!(
        sb.snapshot(),
        before,
        "down must restore the adopted bridge's state and keep both"
    );
    assert!(sb.ok("ip netns list").contains("pre"));
    assert_eq!(sb.json("ip -j link show foobr0")[0]["ifname"], "foobr0");
}

#[test]
fn late_kernel_refusal_rolls_back_twenty_namespaces() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let s = sb.script(
        "late.rhai",
        r#"
for i in 0..20 {
    let n = netns(`t${i}`);
    n.veth("eth0", "peer0").addr(`10.0.${i}.1/24`).up();
}
let a = bridge("bra");
let b = bridge("brb");
a.attach(b);
"#,
    );
    let o = sb.netplumb(&["up", &s]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("brb"), "error must name the object: {err}");
    assert!(
        err.contains("late.rhai:8"),
        "error must give the script line: {err}"
    );
    assert_eq!(sb.snapshot(), before, "a failed up must leave no trace");
    assert_eq!(
        sb.ok("find /run/netplumb -type f -printf '%f\\n'"),
        "late.lock\n"
    );
}

#[test]
fn kill_9_mid_up_then_down_leaves_nothing() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let s = sb.script(
        "big.rhai",
        r#"
let br = bridge("kbr0");
br.addr("10.90.0.1/16").up();
for i in 0..300 {
    let n = netns(`k${i}`);
    let v = veth(`kv${i}`, n, "eth0");
    br.attach(v);
    v.up();
    v.peer.addr(`10.90.${i / 250}.${i % 250 + 2}/16`).up();
    n.route("default", "10.90.0.1");
}
"#,
    );
    for delay_ms in [30u64, 120] {
        let mut child = sb.cmd(common::BIN).args(["-q", "up", &s]).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        // nsenter execs netplumb in place: this is netplumb's own pid.
        let _ = child.kill();
        let _ = child.wait();
        sb.down_after_kill("big", delay_ms);
        assert_eq!(
            sb.snapshot(),
            before,
            "after kill -9 at {delay_ms} ms and down"
        );
    }
}

#[test]
fn works_without_ip_or_nft_on_path() {
    let sb = Sandbox::new();
    let empty = sb.dir.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let path = format!("PATH={}", empty.display());
    let o = sb
        .cmd("/usr/bin/env")
        .args([&path, common::BIN, "up", &script_path("scripts/seed.rhai")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("foons reaches the bridge"));
    sb.ok("ip netns exec foons ping -c1 -W2 172.18.0.1");
    let o = sb
        .cmd("/usr/bin/env")
        .args([
            &path,
            common::BIN,
            "down",
            &script_path("scripts/seed.rhai"),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(sb.ok("ip netns list"), "");
}

#[test]
fn exec_runs_inside_a_namespace_and_passes_status() {
    let sb = Sandbox::new();
    sb.np_ok(&["up", &script_path("scripts/seed.rhai")]);
    let o = sb.netplumb(&["exec", "foons", "--", "ip", "-br", "addr", "show", "eth0"]);
    assert!(
        text(&o.stdout).contains("172.18.0.20/16"),
        "{}",
        text(&o.stdout)
    );
    let o = sb.netplumb(&["exec", "foons", "--", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    let o = sb.netplumb(&["exec", "nope", "--", "true"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("no netns 'nope'"));
}

#[test]
fn script_exec_returns_status_stdout_stderr() {
    let sb = Sandbox::new();
    let s = sb.script(
        "ex.rhai",
        r#"
let n = netns("exn");
n.veth("d0", "d1").addr("10.5.0.1/24").up();
let out = n.exec("ip -br addr show d0; echo oops >&2; exit 3");
if out.status != 3 { throw "status " + out.status; }
if !out.stdout.contains("10.5.0.1/24") { throw "stdout " + out.stdout; }
if !out.stderr.contains("oops") { throw "stderr " + out.stderr; }
print("exec ok");
"#,
    );
    let out = sb.np_ok(&["up", &s]);
    assert!(out.contains("exec ok"), "{out}");
}

#[test]
fn concurrent_ups_of_different_topologies() {
    let sb = Sandbox::new();
    let mk = |n: &str| {
        sb.script(
            &format!("{n}.rhai"),
            &format!("for i in 0..30 {{ let x = netns(`{n}${{i}}`); x.veth(\"a\", \"b\").up(); }}"),
        )
    };
    let (a, b) = (mk("ca"), mk("cb"));
    let mut c1 = sb.cmd(common::BIN).args(["-q", "up", &a]).spawn().unwrap();
    let mut c2 = sb.cmd(common::BIN).args(["-q", "up", &b]).spawn().unwrap();
    assert!(c1.wait().unwrap().success());
    assert!(c2.wait().unwrap().success());
    assert_eq!(sb.ok("ip netns list | wc -l").trim(), "60");
    sb.np_ok(&["down", "--all"]);
    assert_eq!(sb.ok("ip netns list"), "");
}

#[test]
fn foreign_topology_link_is_refused_by_name() {
    let sb = Sandbox::new();
    let a = sb.script(
        "lab.rhai",
        "let f = netns(\"foons\"); f.veth(\"eth0\", \"x0\");",
    );
    let b = sb.script(
        "other.rhai",
        "let f = netns(\"foons\"); f.veth(\"eth0\", \"x0\");",
    );
    sb.np_ok(&["up", &a]);
    let o = sb.netplumb(&["up", &b]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("netns 'foons' already has eth0 — from topology 'lab'"),
        "{err}"
    );
    sb.np_ok(&["down", &b]);
    assert!(
        sb.ok("ip netns list").contains("foons"),
        "other's down must not remove lab's namespace"
    );
}

/// A namespace kept alive by a process of someone else's (here a `sleep`
/// started with `ip netns exec`) is unmounted by `down`, but the kernel
/// never destroys it while the process lives, so its veth's host end would
/// stay: `down` waits a little for it, then deletes that end itself.
#[test]
fn down_removes_the_host_end_of_a_namespace_a_process_keeps_alive() {
    let sb = Sandbox::new();
    let s = sb.script(
        "held.rhai",
        "let br = bridge(\"hbr0\");\nbr.addr(\"10.77.0.1/24\").up();\nfor i in 1..=3 {\n  let ns = netns(`hns${i}`);\n  let v = veth(`hv${i}`, ns, \"eth0\");\n  br.attach(v);\n  v.up();\n  v.peer.addr(`10.77.0.${i + 1}/24`).up();\n}\n",
    );
    sb.np_ok(&["up", &s]);
    let mut holder = sb
        .cmd("ip")
        .args(["netns", "exec", "hns2", "sleep", "60"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("spawn the holder");
    // The holder is inside once its namespace is not the sandbox's.
    let inside = || {
        let own = std::fs::read_link(format!("/proc/{}/ns/net", sb.pid())).ok();
        let its = std::fs::read_link(format!("/proc/{}/ns/net", holder.id())).ok();
        its.is_some() && its != own
    };
    let t0 = std::time::Instant::now();
    while !inside() && t0.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = sb.np_ok(&["down", "--name", "held"]);
    assert!(out.contains("removed"), "{out}");
    let host = names(&sb.json("ip -j link show"), "ifname");
    for gone in ["hv1", "hv2", "hv3", "hbr0"] {
        assert!(!host.contains(&gone.to_string()), "{gone} left: {host:?}");
    }
    assert_eq!(sb.ok("ip netns list").trim(), "");
    let _ = holder.kill();
    let _ = holder.wait();
}
