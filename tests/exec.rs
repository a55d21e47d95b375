//! `netplumb exec` and script `exec`: shell exit statuses, the iproute2
//! /etc/netns convention, and a background child under a timeout.

mod common;

use std::time::{Duration, Instant};

use common::{Sandbox, text};

/// /etc covered by an overlay inside the sandbox's own mount namespace, so
/// that /etc/netns can be written without touching the machine's /etc.
fn private_etc(sb: &Sandbox) {
    sb.ok("mkdir -p /run/etc-ov/u /run/etc-ov/w && \
           mount -t overlay overlay -o lowerdir=/etc,upperdir=/run/etc-ov/u,workdir=/run/etc-ov/w /etc");
}

#[test]
fn exec_exits_like_a_shell() {
    let sb = Sandbox::new();
    sb.ok("ip netns add x");
    let code = |args: &[&str]| {
        let mut a = vec!["exec", "x", "--"];
        a.extend_from_slice(args);
        let o = sb.netplumb(&a);
        (o.status.code(), text(&o.stderr))
    };
    assert_eq!(code(&["sh", "-c", "exit 7"]).0, Some(7));
    assert_eq!(code(&["sh", "-c", "kill -TERM $$"]).0, Some(143));
    assert_eq!(code(&["sh", "-c", "kill -KILL $$"]).0, Some(137));
    let (c, err) = code(&["no-such-command-here"]);
    assert_eq!(c, Some(127), "{err}");
    assert!(
        err.contains("netplumb: no-such-command-here: command not found"),
        "{err}"
    );
    let plain = sb.dir.path().join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\necho hi\n").unwrap();
    let (c, err) = code(&[plain.to_str().unwrap()]);
    assert_eq!(c, Some(126), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    let (c, err) = code(&["/no/such/dir/prog"]);
    assert_eq!(c, Some(127), "{err}");
    assert!(
        err.contains("/no/such/dir/prog: No such file or directory"),
        "{err}"
    );
}

#[test]
fn exec_sees_the_namespace_files_and_sysfs() {
    let sb = Sandbox::new();
    private_etc(&sb);
    sb.ok("ip netns add web && ip -n web link add v0 type veth peer name v1");
    sb.ok("mkdir -p /etc/netns/web && printf '10.9.9.9 db.lab\\n' > /etc/netns/web/hosts");
    let host_hosts = sb.ok("cat /etc/hosts");
    let o = sb.netplumb(&["exec", "web", "--", "cat", "/etc/hosts"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "10.9.9.9 db.lab\n");
    // Only the command's own mount namespace sees it.
    assert_eq!(sb.ok("cat /etc/hosts"), host_hosts);
    assert_ne!(host_hosts, "10.9.9.9 db.lab\n");
    // /sys describes the namespace's devices, as under `ip netns exec`.
    let o = sb.netplumb(&["exec", "web", "--", "ls", "/sys/class/net"]);
    let mut devs: Vec<String> = text(&o.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    devs.sort();
    assert_eq!(devs, ["lo", "v0", "v1"]);
    // The script's exec sees the same.
    let s = sb.script(
        "hosts.rhai",
        r#"let w = netns("web"); print("got: " + w.exec("cat /etc/hosts").stdout);"#,
    );
    let out = sb.np_ok(&["up", &s]);
    assert!(out.contains("got: 10.9.9.9 db.lab"), "{out}");
    // A namespace without a directory under /etc/netns sees the host's files.
    sb.ok("ip netns add plain");
    let o = sb.netplumb(&["exec", "plain", "--", "cat", "/etc/hosts"]);
    assert_eq!(text(&o.stdout), host_hosts);
}

#[test]
fn script_exec_with_a_background_child_returns_at_the_timeout() {
    let sb = Sandbox::new();
    let s = sb.script(
        "bg.rhai",
        r#"
let n = netns("bg");
let t = timestamp();
let out = n.exec("sleep 20 & echo $!; echo before", #{ timeout: 1 });
print(`elapsed ${t.elapsed}`);
print(`status ${out.status}`);
print(`pid ${out.stdout.split("\n")[0]}`);
print(`out ${out.stdout.split("\n")[1]}`);
print(`err ${out.stderr}`);
"#,
    );
    let t = Instant::now();
    let out = sb.np_ok(&["up", &s]);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let field = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k} ")))
            .unwrap_or_else(|| panic!("no {k} in {out}"))
            .to_string()
    };
    let elapsed: f64 = field("elapsed").parse().unwrap();
    assert!((0.9..3.0).contains(&elapsed), "{out}");
    assert_eq!(field("status"), "-1", "{out}");
    assert_eq!(field("out"), "before", "{out}");
    assert!(field("err").contains("exec timeout"), "{out}");
    // The background sleep was killed with its group: gone, or a zombie
    // waiting for init to reap it. SIGKILL is delivered asynchronously, so
    // a loaded machine may take a moment; a sleep that was missed would
    // still be there long after.
    let pid = field("pid");
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if !stat.contains("(sleep) ") || stat.contains(") Z ") {
            break;
        }
        assert!(Instant::now() < deadline, "sleep {pid} still runs: {stat}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn script_exec_returns_at_once_when_the_background_child_lets_go_of_the_output() {
    let sb = Sandbox::new();
    let s = sb.script(
        "bg2.rhai",
        r#"
let n = netns("bg");
let t = timestamp();
let out = n.exec("sleep 3 >/dev/null 2>&1 & echo started", #{ timeout: 10 });
if out.status != 0 { throw `status ${out.status}`; }
if out.stdout != "started\n" { throw `stdout ${out.stdout}`; }
if t.elapsed > 2.0 { throw `took ${t.elapsed}`; }
print("quick");
"#,
    );
    let out = sb.np_ok(&["up", &s]);
    assert!(out.contains("quick"), "{out}");
}
