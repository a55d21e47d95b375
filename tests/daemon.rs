//! Processes on the wires (issue 15, acceptance 1–4): a daemon serving
//! through a DNAT mapping, `ps --json`, `down` leaving no process of its
//! tree (read back in /proc), `kill -9` of `up` after the start, restart on
//! an edit, stop on removal, repair of a dead one, and reachability
//! assertions in `up` and `netplumb test --junit`.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Sandbox, text};

/// A client and a server namespace behind the host; host port 8080 is
/// DNATed to app:80, where the daemon answers `reply`. `extra` is a second
/// daemon, declared or not. The server also leaves a double-forked child
/// (`sleep`) in its session.
fn lab(reply: &str, extra: bool) -> String {
    let extra = if extra {
        "app.daemon(\"sleep 1002\", #{ name: \"extra\" });\n"
    } else {
        ""
    };
    format!(
        r#"let app = netns("app");
let cl = netns("client");
let a = veth("app0", app, "eth0");
a.addr("10.77.0.1/24").up();
a.peer.addr("10.77.0.2/24").up();
app.route("default", "10.77.0.1");
let c = veth("cl0", cl, "eth0");
c.addr("10.78.0.1/24").up();
c.peer.addr("10.78.0.2/24").up();
cl.route("default", "10.78.0.1");
dnat(8080, "10.77.0.2:80");
let web = app.daemon(["sh", "-c", "(sleep 1001 &); exec socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:'echo {reply}'"], #{{ name: "web", ready: "tcp:80" }});
{extra}"#
    )
}

/// Is the process gone (or a zombie: dead, waiting for init to reap it)?
fn gone(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Every process of the session `sid` (the daemon's tree: it is the
/// session leader, and a double fork keeps the session).
fn session(sid: i64) -> Vec<i64> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i64>() else {
            continue;
        };
        let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = s.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // state ppid pgrp session …
        if f.get(3).and_then(|x| x.parse::<i64>().ok()) == Some(sid) && f[0] != "Z" {
            out.push(pid);
        }
    }
    out.sort();
    out
}

fn ps(sb: &Sandbox) -> serde_json::Value {
    serde_json::from_str(&sb.np_ok(&["ps", "--json"])).expect("ps --json")
}

fn pid_of(sb: &Sandbox, name: &str) -> i64 {
    let v = ps(sb);
    let d = v["daemons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no daemon {name} in {v}"));
    assert_eq!(d["state"], "running", "{v}");
    d["pid"].as_i64().unwrap()
}

#[test]
fn a_daemon_serves_through_dnat_and_down_leaves_no_process_of_its_tree() {
    let sb = Sandbox::new();
    let f = sb.script("lab.rhai", &lab("hello-from-app", false));
    let out = sb.np_ok(&["up", &f]);
    assert!(out.contains("+ daemon web in app"), "{out}");
    // A connection from another namespace, through the host's DNAT.
    assert_eq!(
        sb.fetch("client", "10.78.0.1", 8080, false).as_deref(),
        Some("hello-from-app")
    );
    let v = ps(&sb);
    let d = &v["daemons"][0];
    assert_eq!(d["topology"], "lab", "{v}");
    assert_eq!(d["namespace"], "app", "{v}");
    assert_eq!(d["name"], "web", "{v}");
    assert_eq!(d["command"][0], "sh", "{v}");
    let pid = d["pid"].as_i64().unwrap();
    // It runs in netns app, read back in /proc.
    let want = sb.ok("stat -L -c %i /run/netns/app").trim().to_string();
    let have = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(have.display().to_string(), format!("net:[{want}]"));
    let tree = session(pid);
    assert!(
        tree.len() >= 2,
        "the server and its double-forked child: {tree:?}"
    );
    // Running again changes nothing and keeps the process.
    let again = sb.np_ok(&["up", &f]);
    assert!(again.contains("no changes"), "{again}");
    assert_eq!(pid_of(&sb, "web"), pid);
    sb.np_ok(&["down", &f]);
    for p in &tree {
        assert!(gone(*p), "process {p} of the daemon's tree is still there");
    }
    assert!(session(pid).is_empty());
    assert_eq!(sb.ok("ip netns list"), "");
    assert!(ps(&sb)["daemons"].as_array().unwrap().is_empty());
}

#[test]
fn kill_9_of_up_after_the_daemon_started_then_down_leaves_no_process() {
    let sb = Sandbox::new();
    let mark = sb.dir.path().join("mark");
    // Never ready: `up` waits for it, and is killed while it does.
    let body = format!(
        "let app = netns(\"app\");\napp.daemon([\"sh\", \"-c\", \"echo $$ > {}; (sleep 1003 &); exec sleep 1004\"], #{{ name: \"slow\", ready: \"tcp:81\" }});\n",
        mark.display()
    );
    let f = sb.script("slow.rhai", &body);
    let mut up = sb
        .cmd(common::BIN)
        .args(["up", &f])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while std::fs::read_to_string(&mark).map_or(true, |s| s.trim().is_empty()) {
        assert!(
            t0.elapsed() < Duration::from_secs(8),
            "the daemon never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let pid: i64 = std::fs::read_to_string(&mark)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let tree = session(pid);
    assert!(tree.len() >= 2, "{tree:?}");
    // SAFETY: kill(2) of our own, unreaped child (nsenter execs netplumb
    // in place).
    unsafe { libc::kill(up.id() as i32, libc::SIGKILL) };
    let st = up.wait().unwrap();
    assert!(!st.success());
    assert!(tree.iter().all(|p| !gone(*p)), "the daemon outlives up");
    sb.np_ok(&["down", "--name", "slow"]);
    for p in &tree {
        assert!(gone(*p), "process {p} is still there after down");
    }
    assert_eq!(sb.ok("ip netns list"), "");
}

#[test]
fn removing_a_daemon_stops_it_changing_its_command_restarts_it_a_dead_one_is_repaired() {
    let sb = Sandbox::new();
    let f = sb.script("lab.rhai", &lab("one", true));
    sb.np_ok(&["up", &f]);
    let web = pid_of(&sb, "web");
    let extra = pid_of(&sb, "extra");
    // Removed from the script: stopped; the other one is left alone.
    std::fs::write(&f, lab("one", false)).unwrap();
    let out = sb.np_ok(&["up", &f]);
    assert!(out.contains("- daemon extra in app"), "{out}");
    assert!(gone(extra), "extra still runs");
    assert_eq!(pid_of(&sb, "web"), web);
    assert!(!gone(web));
    // Its command changed: restarted, with a new pid and the new reply.
    std::fs::write(&f, lab("two", false)).unwrap();
    let out = sb.np_ok(&["up", &f]);
    assert!(out.contains("- daemon web in app"), "{out}");
    assert!(out.contains("+ daemon web in app"), "{out}");
    let web2 = pid_of(&sb, "web");
    assert_ne!(web2, web);
    assert!(gone(web));
    assert_eq!(
        sb.fetch("client", "10.78.0.1", 8080, false).as_deref(),
        Some("two")
    );
    // Killed behind netplumb's back: drift, which check reports and up repairs.
    sb.ok(&format!("kill -9 {web2}"));
    let t0 = Instant::now();
    while !gone(web2) && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let v = ps(&sb);
    assert_ne!(v["daemons"][0]["state"], "running", "{v}");
    let drift = sb.netplumb(&["check", "lab"]);
    assert!(!drift.status.success(), "check sees no drift");
    assert!(
        text(&drift.stdout).contains("daemon web"),
        "{}",
        text(&drift.stdout)
    );
    let out = sb.np_ok(&["up", &f]);
    assert!(
        out.contains("+ daemon web in app") && out.contains("(repaired)"),
        "{out}"
    );
    let web3 = pid_of(&sb, "web");
    assert_ne!(web3, web2);
    sb.np_ok(&["down", &f]);
    assert!(gone(web3));
}

#[test]
fn a_failing_assert_reach_makes_up_exit_1_naming_its_line_and_test_writes_junit() {
    let sb = Sandbox::new();
    let body = r#"let a = netns("a");
let b = netns("b");
let v = a.veth("x0", b, "y0");
v.addr("10.79.0.1/24").up();
v.peer.addr("10.79.0.2/24").up();
b.daemon("socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:'echo hi'", #{ ready: "tcp:80" });
assert_reach(a, "10.79.0.2");
assert_reach(a, "10.79.0.2:80");
assert_reach(a, "10.79.0.2:81");
assert_no_reach(a, "10.79.0.9");
"#;
    let f = sb.script("reach.rhai", body);
    let o = sb.netplumb(&["up", &f]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("line 9: assert_reach(a, \"10.79.0.2:81\") failed"),
        "{err}"
    );
    assert_eq!(err.matches(" failed: ").count(), 1, "{err}");
    // The topology stays up for inspection.
    assert!(sb.ok("ip netns list").contains('a'));
    sb.np_ok(&["down", &f]);

    // One failure and one pass, as a JUnit parser reads them.
    let small = sb.script(
        "small.rhai",
        &body
            .replace("assert_reach(a, \"10.79.0.2\");\n", "")
            .replace("assert_no_reach(a, \"10.79.0.9\");\n", ""),
    );
    let xml = sb.dir.path().join("out.xml");
    let o = sb.netplumb(&["test", &small, "--junit", &xml.display().to_string()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let parsed = sb.ok(&format!(
        "python3 -c \"
import xml.etree.ElementTree as E
r = E.parse('{}').getroot()
s = r.find('testsuite')
cases = s.findall('testcase')
print(r.tag, s.get('tests'), s.get('failures'), len(cases))
for c in cases:
    f = c.find('failure')
    print('FAIL' if f is not None else 'PASS', c.get('name'), '' if f is None else f.text)
\"",
        xml.display()
    ));
    let lines: Vec<&str> = parsed.lines().collect();
    // The two assertions, and ping-all's expectations as a third case.
    assert_eq!(lines[0], "testsuites 3 1 3", "{parsed}");
    assert!(
        lines[1].starts_with("PASS line 7: assert_reach(a, \"10.79.0.2:80\")"),
        "{parsed}"
    );
    assert!(
        lines[2].starts_with("FAIL line 8: assert_reach(a, \"10.79.0.2:81\")"),
        "{parsed}"
    );
    assert!(lines[2].contains("at line 8"), "{parsed}");
    assert!(lines[3].starts_with("PASS ping-all"), "{parsed}");
    // --junit -: the report alone on stdout. Without --keep `test` builds
    // in a throwaway sandbox of its own: no root needed.
    let o = common::as_nobody(&["test", &small, "--junit", "-"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.starts_with("<?xml") && out.trim_end().ends_with("</testsuites>"),
        "{out}"
    );
    // Torn down after the test.
    assert_eq!(sb.ok("ip netns list"), "");
}

#[test]
fn per_namespace_files_are_seen_by_exec_and_daemons_adopted_files_are_put_back() {
    let sb = Sandbox::new();
    // A private /etc for this sandbox: what netplumb writes under
    // /etc/netns stays in it.
    sb.ok("mkdir -p /run/ov/u /run/ov/w && mount -t overlay overlay -o lowerdir=/etc,upperdir=/run/ov/u,workdir=/run/ov/w /etc");
    sb.ok("mkdir -p /etc/netns/app && echo 'nameserver 192.0.2.1' > /etc/netns/app/resolv.conf");
    let log = sb.dir.path().join("seen.log");
    let body = format!(
        r#"let app = netns("app");
app.hosts(#{{ web: "172.30.0.2", db: "172.30.0.3" }});
app.file("/etc/resolv.conf", "nameserver 10.0.0.53\n");
app.daemon(["sh", "-c", "cat /etc/hosts /etc/resolv.conf; exec sleep 1006"], #{{ name: "reader", log: "{}", ready: "100ms" }});
"#,
        log.display()
    );
    let f = sb.script("files.rhai", &body);
    sb.np_ok(&["up", &f]);
    let hosts = sb.np_ok(&["exec", "app", "cat", "/etc/hosts"]);
    assert!(
        hosts.contains("172.30.0.2\tweb") && hosts.contains("172.30.0.3\tdb"),
        "{hosts}"
    );
    assert!(hosts.contains("localhost"), "{hosts}");
    let seen = std::fs::read_to_string(&log).unwrap();
    assert!(
        seen.contains("172.30.0.2\tweb"),
        "the daemon's /etc/hosts: {seen}"
    );
    assert!(seen.contains("nameserver 10.0.0.53"), "{seen}");
    // The host's own /etc/hosts is untouched.
    assert!(!sb.ok("cat /etc/hosts").contains("172.30.0.2"));
    // Drift: check reports it, up repairs it.
    sb.ok("echo changed > /etc/netns/app/hosts");
    let o = sb.netplumb(&["check", "files"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stdout).contains("file /etc/hosts in app"),
        "{}",
        text(&o.stdout)
    );
    let out = sb.np_ok(&["up", &f]);
    assert!(out.contains("(repaired)"), "{out}");
    assert!(
        sb.ok("cat /etc/netns/app/hosts")
            .contains("172.30.0.2\tweb")
    );
    // down: the file it made is removed, the one it adopted is put back.
    sb.np_ok(&["down", &f]);
    assert_eq!(sb.ok("ls /etc/netns/app"), "resolv.conf\n");
    assert_eq!(
        sb.ok("cat /etc/netns/app/resolv.conf"),
        "nameserver 192.0.2.1\n"
    );
    // Only under /etc, one level.
    let bad = sb.script(
        "bad.rhai",
        "let a = netns(\"a\");\na.file(\"/etc/ssh/sshd_config\", \"x\");\n",
    );
    let o = sb.netplumb(&["up", &bad]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("not a file directly in /etc"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_pid_reused_by_an_unrelated_process_is_never_signalled() {
    let sb = Sandbox::new();
    let f = sb.script(
        "reuse.rhai",
        "let app = netns(\"app\");\napp.daemon(\"sleep 1007\", #{ name: \"napper\" });\n",
    );
    sb.np_ok(&["up", &f]);
    let pid = pid_of(&sb, "napper");
    sb.ok(&format!("kill -9 {pid}"));
    // An unrelated process, and the record pointing at its pid as if it had
    // been reused: same pid, another start time.
    let mut other = std::process::Command::new("sleep")
        .arg("1008")
        .spawn()
        .unwrap();
    let record = sb.ok("ls /run/netplumb/*/reuse.jsonl").trim().to_string();
    let body = sb.ok(&format!("cat {record}"));
    let planted = body.replace(
        &format!("\"pid\":{pid},"),
        &format!("\"pid\":{},", other.id()),
    );
    assert_ne!(planted, body);
    sb.ok(&format!("cat > {record} <<'EOF'\n{planted}EOF"));
    let v = ps(&sb);
    assert_eq!(v["daemons"][0]["state"], "exited (pid reused)", "{v}");
    sb.np_ok(&["down", &f]);
    assert!(
        !gone(other.id() as i64),
        "down signalled an unrelated process"
    );
    other.kill().unwrap();
    other.wait().unwrap();
}
