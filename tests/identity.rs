//! Issue 12: ownership by identity, not by name. Races between topologies
//! and with anyone else making a namesake, a renamed owned bridge, foreign
//! tables, global sysctls and hostile names — each read back with ip/nft.

mod common;

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, STATE, Sandbox, text};

fn np(sb: &Sandbox, args: &[&str]) -> Output {
    sb.np_at(args)
}

fn np_ok(sb: &Sandbox, args: &[&str]) -> String {
    sb.np_at_ok(args)
}

/// A link's ifindex in `ns` ("" for the sandbox's own namespace).
fn ifindex(sb: &Sandbox, ns: &str, name: &str) -> Option<u64> {
    let n = if ns.is_empty() { "" } else { "-n " };
    let v = sb.json(&format!("ip {n}{ns} -j link show 2>/dev/null"));
    v.as_array()?
        .iter()
        .find(|l| l["ifname"] == name)
        .and_then(|l| l["ifindex"].as_u64())
}

/// A namespace's nsfs inode, or None when it is not there.
fn netns_ino(sb: &Sandbox, ns: &str) -> Option<String> {
    let o = sb.sh(&format!("stat -c %i /run/netns/{ns}"));
    o.status
        .success()
        .then(|| text(&o.stdout).trim().to_string())
}

/// `netplumb up` under strace, stopped (SIGSTOP) right after its first
/// write to `NAME.jsonl`: the write-ahead record is on disk, nothing of it
/// is in the kernel yet. Returns strace and netplumb's pid.
fn up_stopped_at_record(sb: &Sandbox, script: &str, name: &str) -> (Child, i32) {
    let log = sb.dir.path().join(format!("{name}.strace"));
    let rec = format!("{STATE}/{name}.jsonl");
    let mut child = sb
        .cmd("strace")
        .env("NETPLUMB_STATE_DIR", STATE)
        .args(["-f", "-o"])
        .arg(&log)
        .args([
            "-e",
            "trace=write",
            "-e",
            "inject=write:signal=SIGSTOP:when=1",
        ])
        .args(["-P", &rec, BIN, "up", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace");
    let t0 = Instant::now();
    let l = loop {
        let l = std::fs::read_to_string(&log).unwrap_or_default();
        if l.contains("--- stopped by SIGSTOP") || t0.elapsed() > Duration::from_secs(120) {
            break l;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let pid = l
        .lines()
        .find(|l| l.contains("--- stopped by SIGSTOP"))
        .and_then(|line| line.split_whitespace().next())
        .and_then(|p| p.parse().ok());
    match pid {
        Some(pid) if l.contains(r#"{\"add\""#) => (child, pid),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("netplumb never stopped after writing its record:\n{l}");
        }
    }
}

fn signal(pid: i32, sig: &str) {
    let mut kill = std::process::Command::new("kill");
    kill.args([&format!("-{sig}"), &pid.to_string()]);
    assert!(kill.status().expect("kill").success());
}

#[test]
fn five_parallel_ups_sharing_a_bridge_and_a_namespace_keep_their_objects() {
    let sb = Sandbox::new();
    sb.ok("ip link add foreign0 type bridge && ip netns add foreignns");
    let before = sb.snapshot();
    let mounts = || sb.ok("grep -c ' /run/netns/' /proc/self/mountinfo || true");
    let mounts_before = mounts();
    let scripts: Vec<String> = (0..5)
        .map(|i| {
            sb.script(
                &format!("p{i}.rhai"),
                &format!(
                    r#"
let br = bridge("shared0");
br.up();
let s = netns("sharedns");
let o = netns("own{i}");
let v = veth("pv{i}", o, "eth0");
br.attach(v);
v.up();
v.peer.addr("10.77.0.{a}/24").up();
let w = veth("pw{i}", s, "w{i}");
w.up();
"#,
                    a = i + 1
                ),
            )
        })
        .collect();
    let mut successes = 0;
    for trial in 0..10 {
        let runs: Vec<Child> = scripts
            .iter()
            .map(|s| {
                sb.cmd(BIN)
                    .args(["-q", "up", s])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("up")
            })
            .collect();
        let outs: Vec<Output> = runs
            .into_iter()
            .map(|c| c.wait_with_output().expect("wait"))
            .collect();
        for (i, o) in outs.iter().enumerate() {
            if !o.status.success() {
                eprintln!("trial {trial}: p{i} failed: {}", text(&o.stderr));
                continue;
            }
            successes += 1;
            let why = format!("trial {trial}: p{i} exited 0");
            assert!(ifindex(&sb, "", "shared0").is_some(), "{why}: shared0 gone");
            assert!(netns_ino(&sb, "sharedns").is_some(), "{why}: sharedns gone");
            assert!(netns_ino(&sb, &format!("own{i}")).is_some(), "{why}");
            let pv = sb.json(&format!("ip -j link show pv{i}"));
            assert_eq!(pv[0]["master"], "shared0", "{why}: {pv}");
            let addr = sb.ok(&format!("ip -n own{i} -br addr show eth0"));
            assert!(addr.contains(&format!("10.77.0.{}/24", i + 1)), "{why}");
            assert!(
                ifindex(&sb, "sharedns", &format!("w{i}")).is_some(),
                "{why}"
            );
            assert!(ifindex(&sb, "", &format!("pw{i}")).is_some(), "{why}");
        }
        // Made once, not mounted over again by each run that raced for it.
        let shared = sb.ok("grep -c ' /run/netns/sharedns ' /proc/self/mountinfo || true");
        assert_eq!(shared.trim(), "1", "trial {trial}: sharedns mounts");
        let downs: Vec<Child> = (0..5)
            .map(|i| {
                sb.cmd(BIN)
                    .args(["-q", "down", "--name", &format!("p{i}")])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("down")
            })
            .collect();
        for d in downs {
            let o = d.wait_with_output().expect("wait");
            assert!(o.status.success(), "trial {trial}: {}", text(&o.stderr));
        }
        assert_eq!(sb.snapshot(), before, "trial {trial}: after every down");
        assert_eq!(mounts(), mounts_before, "trial {trial}: namespace mounts");
    }
    assert!(successes >= 10, "only {successes} of 50 ups succeeded");
}

#[test]
fn a_bridge_namesake_made_between_record_and_create_is_left_by_rollback_and_down() {
    let sb = Sandbox::new();
    let s = sb.script(
        "t1.rhai",
        "netns(\"r1\");\nlet br = bridge(\"shared0\");\nbr.up();\n",
    );
    let (child, pid) = up_stopped_at_record(&sb, &s, "t1");
    assert_eq!(
        ifindex(&sb, "", "shared0"),
        None,
        "stopped before the create"
    );
    sb.ok("ip link add shared0 type bridge");
    let theirs = ifindex(&sb, "", "shared0");
    signal(pid, "CONT");
    let o = child.wait_with_output().expect("wait");
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("shared0") && err.contains("File exists"),
        "{err}"
    );
    assert!(!err.contains("rolling back failed"), "{err}");
    assert_eq!(ifindex(&sb, "", "shared0"), theirs, "rollback kept theirs");
    assert_eq!(netns_ino(&sb, "r1"), None, "rollback removed its own");
    let d = np_ok(&sb, &["down", "--name", "t1"]);
    assert!(d.contains("nothing to remove"), "{d}");
    assert_eq!(ifindex(&sb, "", "shared0"), theirs, "down kept theirs");
}

#[test]
fn a_netns_namesake_made_between_record_and_create_is_left_by_rollback_and_down() {
    let sb = Sandbox::new();
    let s = sb.script(
        "t2.rhai",
        "netns(\"sharedns\");\nlet br = bridge(\"b2\");\nbr.up();\n",
    );
    let (child, pid) = up_stopped_at_record(&sb, &s, "t2");
    assert_eq!(netns_ino(&sb, "sharedns"), None);
    sb.ok("ip netns add sharedns && ip -n sharedns link add mark0 type bridge");
    let theirs = netns_ino(&sb, "sharedns");
    signal(pid, "CONT");
    let o = child.wait_with_output().expect("wait");
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("sharedns"), "{err}");
    assert!(!err.contains("rolling back failed"), "{err}");
    assert_eq!(netns_ino(&sb, "sharedns"), theirs, "rollback kept theirs");
    assert!(ifindex(&sb, "sharedns", "mark0").is_some());
    assert_eq!(ifindex(&sb, "", "b2"), None);
    np_ok(&sb, &["down", "--name", "t2"]);
    assert_eq!(netns_ino(&sb, "sharedns"), theirs, "down kept theirs");
    assert!(ifindex(&sb, "sharedns", "mark0").is_some());
    // One mount, not stacked ones: their `ip netns del` works in one go.
    sb.ok("ip netns del sharedns");
    assert_eq!(netns_ino(&sb, "sharedns"), None);
}

#[test]
fn killed_right_after_its_record_down_leaves_the_namesakes_made_since() {
    let sb = Sandbox::new();
    let s = sb.script(
        "t3.rhai",
        "netns(\"k399\");\nlet br = bridge(\"kb0\");\nbr.up();\n",
    );
    let (child, pid) = up_stopped_at_record(&sb, &s, "t3");
    signal(pid, "KILL");
    let _ = child.wait_with_output();
    assert_eq!(netns_ino(&sb, "k399"), None, "killed before the create");
    let rec = sb.ok(&format!("cat {STATE}/t3.jsonl"));
    assert!(rec.contains("k399"), "{rec}");
    sb.ok("ip netns add k399 && ip -n k399 link add mark0 type bridge");
    let ino = netns_ino(&sb, "k399");
    let o = np(&sb, &["down", "--name", "t3"]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(netns_ino(&sb, "k399"), ino, "{err}");
    assert!(ifindex(&sb, "k399", "mark0").is_some());
    assert!(
        err.contains("k399 is not the one this topology made"),
        "{err}"
    );
    assert_eq!(
        sb.ok(&format!("cat {STATE}/t3.jsonl 2>/dev/null || true")),
        ""
    );
}

#[test]
fn a_renamed_owned_bridge_is_removed_by_identity_and_the_namesake_left() {
    let sb = Sandbox::new();
    let s = sb.script("t4.rhai", "let br = bridge(\"foobr0\");\nbr.up();\n");
    np_ok(&sb, &["up", &s]);
    let ours = ifindex(&sb, "", "foobr0").expect("made");
    sb.ok("ip link set foobr0 name stolen0 && ip link add foobr0 type bridge");
    let theirs = ifindex(&sb, "", "foobr0").expect("theirs");
    let o = np(&sb, &["down", "--name", "t4"]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{out}{err}");
    assert_eq!(ifindex(&sb, "", "stolen0"), None, "ours, renamed: removed");
    assert_eq!(
        ifindex(&sb, "", "foobr0"),
        Some(theirs),
        "the namesake stays"
    );
    assert_ne!(ours, theirs);
    assert!(
        format!("{out}{err}").contains("stolen0"),
        "down says under which name it found its bridge:\n{out}{err}"
    );
}

#[test]
fn a_foreign_netplumb_table_survives_up_and_down() {
    let sb = Sandbox::new();
    sb.ok(
        "nft add table inet netplumb-t1 && \
         nft add chain inet netplumb-t1 theirs '{ type filter hook input priority 0; policy accept; }' && \
         nft add rule inet netplumb-t1 theirs tcp dport 9 counter",
    );
    let table = || sb.ok("nft -j list table inet netplumb-t1 | sed 's/\"handle\": [0-9]*//g'");
    let before = table();
    let snap = sb.snapshot();
    let s = sb.script(
        "t1.rhai",
        "let c = netns(\"tc1\");\nlet v = veth(\"tv1\", c, \"eth0\");\nv.addr(\"10.61.0.1/24\").up();\nv.peer.addr(\"10.61.0.2/24\").up();\nmasquerade(\"10.61.0.0/24\");\ndnat(8080, \"10.61.0.2:80\");\n",
    );
    let o = np(&sb, &["up", &s]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "up must refuse: {err}");
    assert!(err.contains("netplumb-t1"), "{err}");
    assert_eq!(table(), before, "their table untouched");
    assert_eq!(sb.snapshot(), snap, "refused before any change");
    let _ = np(&sb, &["down", "--name", "t1"]);
    let _ = np(&sb, &["down", "--all"]);
    assert_eq!(table(), before, "their table survives down");
}

#[test]
fn global_sysctls_and_bad_values_are_refused_before_any_change() {
    let sb = Sandbox::new();
    let knob = "/proc/sys/kernel/printk_ratelimit_burst";
    let old = sb.ok(&format!("cat {knob}"));
    let snap = sb.snapshot();
    let cases = [
        (
            "ns.sysctl(\"kernel.printk_ratelimit_burst\", \"11\");",
            "not one of the network namespace's",
        ),
        ("ns.sysctl(\"net.ipv4.ip_forward\", \"\");", "empty"),
        (
            "ns.sysctl(\"net.ipv4.ip_forward\", \"1\\n0\");",
            "more than one line",
        ),
        ("v.addr(\"0.0.0.0/0\");", "0.0.0.0/0"),
        // net.*, but kept by the initial namespace only: not there to set.
        (
            "ns.sysctl(\"net.core.netdev_max_backlog\", \"1234\");",
            "has no sysctl",
        ),
    ];
    for (i, (line, want)) in cases.iter().enumerate() {
        let s = sb.script(
            &format!("g{i}.rhai"),
            &format!("let ns = netns(\"gs\");\nlet v = veth(\"ga0\", ns, \"gb0\");\n{line}\n"),
        );
        let o = np(&sb, &["up", &s]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{line}: {err}");
        assert!(err.contains(want), "{line}: {err}");
        assert!(
            err.contains(&format!("g{i}.rhai:3")),
            "names the line: {err}"
        );
        assert_eq!(sb.snapshot(), snap, "{line}: nothing made");
        assert_eq!(
            sb.ok(&format!("cat {knob}")),
            old,
            "{line}: nothing written"
        );
    }
}

#[test]
fn plan_piped_to_sh_runs_nothing_but_its_commands() {
    let sb = Sandbox::new();
    let work = sb.dir.path().display().to_string();
    for (i, name) in [
        "x$(touch${IFS}PWNED)",
        "x;touch${IFS}PWNED",
        "x`touch PWNED`",
    ]
    .iter()
    .enumerate()
    {
        for decl in [format!("netns({name:?});"), format!("bridge({name:?});")] {
            let s = sb.script(&format!("h{i}.rhai"), &format!("{decl}\n"));
            let o = sb.sh(&format!("cd {work} && {BIN} plan {s} | sh"));
            let err = text(&o.stderr);
            assert!(err.contains("contains"), "{decl}: refused with why: {err}");
            assert!(
                !sb.dir.path().join("PWNED").exists(),
                "{decl}: the shell ran it: {err}"
            );
        }
    }
    // What may be any text is quoted: a sysctl value with spaces is set
    // whole by `plan | sh`, and the plan is nothing but ip and sysctl.
    let s = sb.script(
        "q.rhai",
        "let ns = netns(\"q1\");\nns.sysctl(\"net.ipv4.ping_group_range\", \"0 2147483647\");\n",
    );
    let plan = sb.ok(&format!("{BIN} plan {s}"));
    for l in plan
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        assert!(l.starts_with("ip ") || l.starts_with("sysctl "), "{l}");
    }
    sb.ok(&format!("cd {work} && {BIN} plan {s} | sh -e"));
    assert_eq!(
        sb.ok("ip netns exec q1 sysctl -n net.ipv4.ping_group_range")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", "2147483647"]
    );
}

#[test]
fn two_thousand_namespaces_fit_in_a_thousand_descriptors() {
    let sb = Sandbox::new();
    let n = 2000;
    let s = sb.script(
        "fd.rhai",
        &format!("for i in 0..{n} {{ netns(`f${{i}}`); }}\n"),
    );
    let t0 = Instant::now();
    let o = sb.sh(&format!(
        "ulimit -n 1024 && NETPLUMB_STATE_DIR={STATE} {BIN} -q up {s}"
    ));
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    eprintln!("S({n}) up under ulimit -n 1024: {:?}", t0.elapsed());
    let count = sb.ok("ip netns list | wc -l");
    assert_eq!(count.trim(), n.to_string());
    let o = sb.sh(&format!(
        "ulimit -n 1024 && NETPLUMB_STATE_DIR={STATE} {BIN} -q down --name fd"
    ));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(sb.ok("ip netns list"), "");
}
