//! Issue 7: drift repair, locking, crash safety at scale, limits, privilege.

mod common;

use std::time::{Duration, Instant};

use common::{BIN, Sandbox, as_nobody, script_path, text};

#[test]
fn drift_is_reported_by_check_and_repaired_by_up() {
    let sb = Sandbox::new();
    let z = script_path("scripts/zabbix.rhai");
    sb.np_ok(&["up", &z]);
    assert_eq!(sb.netplumb(&["check", "zabbix"]).status.code(), Some(0));
    let before = sb.snapshot();
    // Behind its back: a namespace deleted, a bridge downed, a firewall reload.
    sb.ok("ip netns del zc4 && ip link set zbr0 down && nft flush ruleset");
    let c = sb.netplumb(&["check", "zabbix"]);
    assert_eq!(c.status.code(), Some(1), "{}", text(&c.stdout));
    let report = text(&c.stdout);
    for want in [
        "drifted",
        "+ netns zc4",
        "~ link zbr0 up",
        "+ nat table netplumb-zabbix",
    ] {
        assert!(
            report.contains(want),
            "check must report `{want}`:\n{report}"
        );
    }
    assert_eq!(sb.ok("nft list ruleset"), "", "check must change nothing");
    let up = sb.np_ok(&["up", &z]);
    assert!(up.contains("repaired"), "{up}");
    assert_eq!(sb.netplumb(&["check", "zabbix"]).status.code(), Some(0));
    assert_eq!(
        sb.snapshot().lines().filter(|l| !l.contains("zv4")).count(),
        before.lines().filter(|l| !l.contains("zv4")).count()
    );
    let _s = sb.server("zc4", "0.0.0.0", &[10050], "zc4", false);
    assert_eq!(
        sb.fetch("zclient", "10.200.0.1", 10051, false).as_deref(),
        Some("zc4 from 10.200.0.2")
    );
    // down still succeeds after more drift, and removes the rest
    sb.ok("ip netns del zc3");
    sb.np_ok(&["down", &z]);
    assert_eq!(sb.ok("ip netns list"), "");
    assert_eq!(sb.ok("nft list ruleset"), "");
}

/// `check NAME` of a dozen namespaces (read on several threads, in no fixed
/// order): each drift is reported against its own namespace, and nothing
/// changes until `up` repairs them.
#[test]
fn check_of_a_dozen_namespaces_names_each_drift_where_it_is() {
    let sb = Sandbox::new();
    let s = sb.script(
        "dozen.rhai",
        r#"
for i in 1..=12 {
    let ns = netns(`d${i}`);
    let v = veth(`dv${i}`, ns, "eth0");
    v.addr(`10.62.${i}.1/24`).up();
    v.peer.addr(`10.62.${i}.2/24`).up();
    ns.route("10.99.0.0/16", `10.62.${i}.1`);
}
"#,
    );
    sb.np_ok(&["-q", "up", "--name", "dozen", &s]);
    assert_eq!(sb.netplumb(&["check", "dozen"]).status.code(), Some(0));
    sb.ok(
        "ip -n d3 addr del 10.62.3.2/24 dev eth0 && ip -n d7 link set eth0 down \
         && ip -n d11 route del 10.99.0.0/16",
    );
    let c = sb.netplumb(&["check", "dozen"]);
    assert_eq!(c.status.code(), Some(1), "{}", text(&c.stdout));
    let report = text(&c.stdout);
    let drifts: Vec<&str> = report.lines().skip(1).map(str::trim).collect();
    // The kernel drops a route with the address or link its gateway was
    // reached by.
    assert_eq!(
        drifts,
        [
            "+ addr 10.62.3.2/24 on d3:eth0",
            "+ route 10.99.0.0/16 via 10.62.3.1 in d3",
            "~ link d7:eth0 up",
            "+ route 10.99.0.0/16 via 10.62.7.1 in d7",
            "+ route 10.99.0.0/16 via 10.62.11.1 in d11",
        ],
        "{report}"
    );
    assert_eq!(
        sb.ok("ip -n d3 -4 -br addr show dev eth0")
            .split_whitespace()
            .nth(2),
        None
    );
    sb.np_ok(&["-q", "up", "--name", "dozen", &s]);
    assert_eq!(sb.netplumb(&["check", "dozen"]).status.code(), Some(0));
    assert!(
        sb.ok("ip -n d3 -4 -br addr show dev eth0")
            .contains("10.62.3.2/24")
    );
    assert!(sb.ok("ip -n d7 -br link show dev eth0").contains("UP"));
    assert!(
        sb.ok("ip -n d11 route")
            .contains("10.99.0.0/16 via 10.62.11.1")
    );
}

/// A namespace deleted behind netplumb's back while a process keeps it alive
/// (so its replacement cannot get its inode): the repair records the new
/// one and forgets the old, and `down` removes the new one without a word.
#[test]
fn a_namespace_remade_by_up_is_the_one_down_removes() {
    let sb = Sandbox::new();
    let s = sb.script("re.rhai", r#"netns("stay"); netns("gone");"#);
    sb.np_ok(&["up", &s]);
    let ino = |n: &str| sb.ok(&format!("stat -L -c %i /run/netns/{n}"));
    let old = ino("gone");
    let mut hold = sb
        .cmd("ip")
        .args(["netns", "exec", "gone", "sleep", "60"])
        .spawn()
        .expect("sleep");
    // nsenter and ip exec in place: the child is the sleep, once inside.
    let inside = format!("net:[{}]", old.trim());
    let t0 = Instant::now();
    while std::fs::read_link(format!("/proc/{}/ns/net", hold.id()))
        .map(|l| l.to_string_lossy() != inside)
        .unwrap_or(true)
    {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "sleep never entered gone"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    sb.ok("ip netns del gone");
    let up = sb.np_ok(&["up", &s]);
    assert!(
        up.contains("+ netns gone") && up.contains("repaired"),
        "{up}"
    );
    assert_ne!(ino("gone"), old, "a new namespace, another inode");
    let down = sb.netplumb(&["down", &s]);
    let said = format!("{}{}", text(&down.stdout), text(&down.stderr));
    assert!(down.status.success(), "{said}");
    assert!(!said.contains("not the one"), "{said}");
    assert_eq!(sb.ok("ip netns list"), "");
    let _ = hold.kill();
    let _ = hold.wait();
}

fn big_script(sb: &Sandbox, n: usize, k: usize) -> String {
    sb.script(
        "big.rhai",
        &format!(
            r#"
let br = bridge("kbr0");
br.addr("10.90.0.1/16").up();
for i in 0..{n} {{
    let ns = netns(`k${{i}}`);
    let v = veth(`kv${{i}}`, ns, "eth0");
    br.attach(v);
    v.up();
    v.peer.addr(`10.90.${{i / 250}}.${{i % 250 + 2}}/16`).up();
    ns.route("default", "10.90.0.1");
}}
masquerade("10.90.0.0/16");
for j in 0..{k} {{ let i = j % {n}; dnat(20000 + j, `10.90.${{i / 250}}.${{i % 250 + 2}}:80`); }}
"#
        ),
    )
}

/// Pseudo-random delays, different on each run, reproducible from the printed seed.
fn delays(count: usize, max_ms: u64) -> Vec<u64> {
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    eprintln!("kill delays seed {x}");
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % max_ms
        })
        .collect()
}

fn kill_up_after(sb: &Sandbox, script: &str, ms: u64) {
    let mut child = sb.cmd(BIN).args(["-q", "up", script]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    // nsenter execs netplumb in place (SIGKILL of this pid is kill -9 of
    // netplumb itself, and of no other test's).
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn ten_random_kills_then_down_leave_nothing() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let s = big_script(&sb, 200, 2000);
    for ms in delays(10, 400) {
        kill_up_after(&sb, &s, ms);
        sb.down_after_kill("big", ms);
        assert_eq!(sb.snapshot(), before, "after kill -9 at {ms} ms and down");
    }
}

#[test]
fn random_kills_then_up_converges_to_the_full_topology() {
    let sb = Sandbox::new();
    let s = big_script(&sb, 200, 2000);
    for ms in delays(5, 400) {
        kill_up_after(&sb, &s, ms);
    }
    sb.np_ok(&["up", &s]);
    assert_eq!(sb.ok("ip netns list | wc -l").trim(), "200");
    let rs = sb.json("nft -j list ruleset");
    let elems: usize = rs["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x.get("map"))
        .map(|m| m["elem"].as_array().map_or(0, |e| e.len()))
        .sum();
    assert_eq!(elems, 2000);
    sb.ok("ip netns exec k199 ping -c1 -W2 10.90.0.1");
    let again = sb.np_ok(&["up", &s]);
    assert!(again.contains("no changes"), "{again}");
    sb.np_ok(&["down", &s]);
    assert_eq!(sb.ok("ip netns list"), "");
}

#[test]
fn same_topology_up_and_down_take_turns() {
    let sb = Sandbox::new();
    let s = big_script(&sb, 150, 10);
    let up = sb
        .cmd(BIN)
        .args(["-q", "up", &s])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until `up` holds the lock (its record exists), then race it.
    let t = Instant::now();
    while sb.sh("test -s /run/netplumb/*/big.jsonl").status.code() != Some(0)
        && t.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let nowait = sb.netplumb(&["down", "--name", "big", "--no-wait"]);
    let down = sb.netplumb(&["down", "--name", "big"]);
    let up = up.wait_with_output().unwrap();
    assert!(up.status.success(), "{}", text(&up.stderr));
    if nowait.status.success() {
        // `up` finished before the race began: nothing to assert about the lock.
        eprintln!("up was too fast to race");
    } else {
        assert!(
            text(&nowait.stderr).contains("busy"),
            "{}",
            text(&nowait.stderr)
        );
    }
    assert!(down.status.success(), "{}", text(&down.stderr));
    // The waiting down ran after up: everything is gone, nothing half-made.
    assert_eq!(sb.ok("ip netns list"), "");
    assert_eq!(sb.ok("ip -br link | grep -c kv || true").trim(), "0");
}

#[test]
fn exec_timeout_kills_a_hung_command() {
    let sb = Sandbox::new();
    let s = sb.script(
        "hang.rhai",
        r#"
let n = netns("h");
let t = timestamp();
let out = n.exec("echo started; sleep 30", #{ timeout: 0.5 });
if out.status != -1 { throw `status ${out.status}`; }
if !out.stdout.contains("started") { throw "stdout lost"; }
if !out.stderr.contains("exec timeout") { throw "no timeout note"; }
if t.elapsed > 5.0 { throw "took too long"; }
print("timed out as asked");
"#,
    );
    let out = sb.np_ok(&["up", &s]);
    assert!(out.contains("timed out as asked"), "{out}");
}

#[test]
fn without_root_kernel_commands_fail_fast_and_validation_works() {
    for args in [
        vec!["up", "scripts/seed.rhai"],
        vec!["down", "--all"],
        vec!["show"],
        vec!["graph"],
        vec!["ping-all"],
        vec!["exec", "foons", "--", "true"],
        vec!["check", "seed"],
    ] {
        let o = as_nobody(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = text(&o.stderr);
        assert!(
            err.contains("run as root or add --sandbox"),
            "{args:?}: {err}"
        );
        assert!(
            err.lines().count() <= 3,
            "one clear line, not a wall: {err}"
        );
    }
    let o = as_nobody(&["check", "scripts/zabbix.rhai"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("valid"));
    let o = as_nobody(&["check", "tests/bad/dnat_conflict.rhai"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("dnat_conflict.rhai:3"));
}

#[test]
fn a_namespace_file_left_by_a_kill_before_its_mount_is_taken_over() {
    let sb = Sandbox::new();
    // What a kill between "create the file" and "bind-mount it" leaves behind.
    sb.ok("touch /run/netns/stale0");
    let s = sb.script(
        "stale.rhai",
        "let n = netns(\"stale0\"); n.veth(\"a\", \"b\").up();",
    );
    sb.np_ok(&["up", &s]);
    sb.ok("ip -n stale0 link show a");
    sb.np_ok(&["down", &s]);
    assert_eq!(sb.ok("ls /run/netns"), "");
}
