//! Issue 17: published ports that behave like Docker's (hairpin, localhost),
//! filter rules in the topology's own table, and conntrack on remap — all
//! checked with real TCP/UDP between namespaces the test made, and with
//! `nft -j` / `bridge -j` / sysctl read back.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Child;
use std::time::{Duration, Instant};

use common::*;

/// The host's own "outside" address: a veth end in the host the test made.
const EXT: &str = "10.99.0.1";

fn with_ext(sb: &Sandbox) {
    sb.ok(&format!(
        "ip link add ext0 type veth peer name ext1 && ip addr add {EXT}/24 dev ext0 && \
         ip link set ext0 up && ip link set ext1 up"
    ));
}

/// A TCP connect from the host (not from a namespace), like `fetch`.
fn fetch_host(sb: &Sandbox, addr: &str, port: u16) -> Option<String> {
    let code = format!(
        "import socket\ns=socket.create_connection(('{addr}', {port}), timeout=2)\ns.settimeout(2)\nprint(s.recv(100).decode())"
    );
    let o = sb.run("python3", &["-c", &code]);
    o.status
        .success()
        .then(|| text(&o.stdout).trim().to_string())
}

const WEB: &str = r#"
import "docker" as d;
let n = d::network("web", "172.30.0.0/24");
let app = d::container(n, "app");
let sib = d::container(n, "sib");
d::publish(app, 8080, 80, #{ localhost: local });
"#;

#[test]
fn published_port_answers_the_host_localhost_a_sibling_and_itself() {
    let sb = Sandbox::new();
    with_ext(&sb);
    let before = sb.snapshot();
    let s = sb.script("web.rhai", WEB);
    sb.np_ok(&["up", &s, "--set", "local=true"]);
    let _srv = sb.server("app", "0.0.0.0", &[80], "app", false);
    let host = fetch_host(&sb, EXT, 8080);
    assert!(host.is_some_and(|r| r.starts_with("app")), "from the host");
    let lo = fetch_host(&sb, "127.0.0.1", 8080);
    assert!(lo.is_some_and(|r| r.starts_with("app")), "from 127.0.0.1");
    // Hairpin: the answer comes back through the host, so the backend sees
    // the bridge's address, not the sibling's.
    let sib = sb.fetch("sib", EXT, 8080, false);
    assert_eq!(
        sib.as_deref(),
        Some("app from 172.30.0.1"),
        "from a sibling"
    );
    let me = sb.fetch("app", EXT, 8080, false);
    assert_eq!(me.as_deref(), Some("app from 172.30.0.1"), "from itself");
    // What made it so, read back.
    assert_eq!(
        sb.ok("sysctl -n net.ipv4.conf.web.route_localnet").trim(),
        "1"
    );
    let ports = sb.json("bridge -j -d link show");
    let hairpin = |dev: &str| {
        ports
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["ifname"] == dev)
            .map(|p| p["hairpin"].as_bool().unwrap())
    };
    assert_eq!(hairpin("app"), Some(true), "{ports}");
    assert_eq!(hairpin("sib"), Some(false), "{ports}");
    assert!(sb.np_ok(&["check", "web"]).contains("no drift"));
    sb.np_ok(&["down", "web"]);
    assert_eq!(sb.snapshot(), before);
    assert_eq!(
        sb.ok("sysctl -n net.ipv4.conf.all.route_localnet").trim(),
        "0"
    );
}

#[test]
fn without_localhost_127_0_0_1_does_not_answer_and_the_edit_converges() {
    let sb = Sandbox::new();
    with_ext(&sb);
    let s = sb.script("web.rhai", WEB);
    sb.np_ok(&["up", &s, "--set", "local=false"]);
    let _srv = sb.server("app", "0.0.0.0", &[80], "app", false);
    assert!(fetch_host(&sb, EXT, 8080).is_some());
    assert_eq!(fetch_host(&sb, "127.0.0.1", 8080), None);
    // Day two: switching localhost on and off again converges both ways.
    let on = sb.np_ok(&["up", &s, "--set", "local=true"]);
    assert!(on.contains("route_localnet=1"), "{on}");
    assert!(fetch_host(&sb, "127.0.0.1", 8080).is_some());
    let off = sb.np_ok(&["up", &s, "--set", "local=false"]);
    assert!(off.contains("route_localnet"), "{off}");
    assert_eq!(
        sb.ok("sysctl -n net.ipv4.conf.web.route_localnet").trim(),
        "0"
    );
    assert_eq!(fetch_host(&sb, "127.0.0.1", 8080), None);
    sb.np_ok(&["down", "web"]);
}

const TWO: &str = r#"
let a = netns("a");
let b = netns("b");
let va = veth("va", "eth0"); va.peer.move_to(a); va.peer.addr("10.1.0.2/24").up(); va.addr("10.1.0.1/24").up();
let vb = veth("vb", "eth0"); vb.peer.move_to(b); vb.peer.addr("10.2.0.2/24").up(); vb.addr("10.2.0.1/24").up();
a.route("default", "10.1.0.1");
b.route("default", "10.2.0.1");
host().sysctl("net.ipv4.ip_forward", "1");
if deny_81 { deny(#{ from: a, to: b, proto: "tcp", port: 81 }); }
"#;

#[test]
fn deny_blocks_exactly_one_port_between_two_namespaces() {
    let sb = Sandbox::new();
    let s = sb.script("two.rhai", TWO);
    let out = sb.np_ok(&["up", &s, "--set", "deny_81=true"]);
    assert!(out.contains("1 filter rule"), "{out}");
    let _srv = sb.server("b", "0.0.0.0", &[80, 81, 82], "b", false);
    assert!(sb.fetch("a", "10.2.0.2", 80, false).is_some());
    assert_eq!(sb.fetch("a", "10.2.0.2", 81, false), None, "81 is denied");
    assert!(sb.fetch("a", "10.2.0.2", 82, false).is_some());
    // Only a→b: b still reaches a's port 81.
    let _srv_a = sb.server("a", "0.0.0.0", &[81], "a", false);
    assert!(sb.fetch("b", "10.1.0.2", 81, false).is_some());
    // The rule is in the topology's table and nowhere else.
    let rs = sb.json("nft -j list ruleset");
    let tables: Vec<String> = rs["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["table"]["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(tables, ["netplumb-two"], "{rs}");
    let chain = sb.ok("nft list chain inet netplumb-two forward");
    assert!(chain.contains("hook forward priority filter"), "{chain}");
    assert!(chain.contains("drop"), "{chain}");
    // Day two: dropping the rule opens the port again, like a fresh up.
    sb.np_ok(&["up", &s, "--set", "deny_81=false"]);
    assert!(sb.fetch("a", "10.2.0.2", 81, false).is_some());
    let after = sb.ok("nft list ruleset");
    assert!(!after.contains("forward"), "{after}");
    sb.np_ok(&["down", "two"]);
    assert_eq!(sb.ok("nft list ruleset"), "");
}

#[test]
fn an_isolated_network_answers_only_on_published_ports() {
    let sb = Sandbox::new();
    with_ext(&sb);
    let s = sb.script(
        "iso.rhai",
        r#"
import "docker" as d;
let n = d::network("iso", "172.31.0.0/24", #{ isolate: true });
let app = d::container(n, "app");
d::publish(app, 8080, 80);
let out = netns("out");
let v = veth("vout", "eth0"); v.peer.move_to(out); v.peer.addr("10.3.0.2/24").up(); v.addr("10.3.0.1/24").up();
out.route("default", "10.3.0.1");
"#,
    );
    sb.np_ok(&["up", &s]);
    let _srv = sb.server("app", "0.0.0.0", &[80, 81], "app", false);
    // Straight to the container's address: not published, dropped.
    assert_eq!(sb.fetch("out", "172.31.0.2", 80, false), None);
    assert_eq!(sb.fetch("out", "172.31.0.2", 81, false), None);
    // Through the published port: it answers.
    let r = sb.fetch("out", EXT, 8080, false);
    assert!(r.is_some_and(|r| r.starts_with("app")), "published port");
    // The container still gets out.
    let _o = sb.server("out", "0.0.0.0", &[9000], "out", false);
    assert!(sb.fetch("app", "10.3.0.2", 9000, false).is_some());
    sb.np_ok(&["down", "iso"]);
    assert_eq!(sb.ok("nft list ruleset"), "");
}

#[test]
fn a_udp_flow_follows_a_remap_within_a_second() {
    let sb = Sandbox::new();
    let s = sb.script(
        "u.rhai",
        r#"
let br = bridge("br0"); br.addr("10.5.0.1/24").up();
for i in [2, 3] {
  let n = netns(`b${i}`);
  let v = veth(`vb${i}`, "eth0"); v.peer.move_to(n); v.peer.addr(`10.5.0.${i}/24`).up(); br.attach(v); v.up();
  n.route("default", "10.5.0.1");
}
let cl = netns("cl");
let c = veth("vcl", "eth0"); c.peer.move_to(cl); c.peer.addr("10.6.0.2/24").up(); c.addr("10.6.0.1/24").up();
cl.route("default", "10.6.0.1");
dnat(#{ port: 5000, to: `10.5.0.${to}:5000`, proto: "udp" });
"#,
    );
    sb.np_ok(&["up", &s, "--set", "to=2"]);
    let dir = sb.dir.path().display().to_string();
    let mut rx: Vec<_> = [2, 3]
        .iter()
        .map(|i| {
            sb.cmd("ip")
                .args(["netns", "exec", &format!("b{i}"), "socat", "-u"])
                .arg("UDP-RECV:5000")
                .arg(format!("OPEN:{dir}/r{i},creat,trunc"))
                .process_group(0)
                .spawn()
                .expect("socat")
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // One flow: the same source port every 50 ms, as a media stream is.
    let mut tx = sb
        .cmd("sh")
        .arg("-c")
        .arg(
            "while true; do echo x; sleep 0.05; done | \
             ip netns exec cl socat -u - UDP:10.6.0.1:5000,sourceport=40000",
        )
        .process_group(0)
        .spawn()
        .expect("sender");
    std::thread::sleep(Duration::from_millis(600));
    let lines = |i: u32| {
        std::fs::read_to_string(format!("{dir}/r{i}"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    assert!(lines(2) > 0, "the flow reaches b2 first");
    sb.np_ok(&["up", &s, "--set", "to=3"]);
    let t0 = Instant::now();
    while lines(3) == 0 && t0.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = t0.elapsed();
    // Each in a process group of its own (the sender is a shell pipeline):
    // killed by group, never by name, which would also end another run's.
    for c in std::iter::once(&mut tx).chain(&mut rx) {
        kill_group(c);
    }
    assert!(lines(3) > 0, "the flow never moved to b3");
    assert!(took < Duration::from_secs(1), "moved after {took:?}");
    sb.np_ok(&["down", "u"]);
}

#[test]
fn filter_rules_with_bad_input_name_the_line() {
    let sb = Sandbox::new();
    let s = sb.script(
        "bad.rhai",
        "let a = netns(\"a\");\ndeny(#{ from: a, port: 22 });\n",
    );
    let o = sb.netplumb(&["plan", &s]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(e.contains("a port needs proto"), "{e}");
    assert!(e.contains("bad.rhai:2"), "{e}");
    let s = sb.script("bad2.rhai", "let v = veth(\"x0\", \"x1\");\nisolate(v);\n");
    let e = text(&sb.netplumb(&["plan", &s]).stderr);
    assert!(
        e.contains("x0 is not a bridge: isolate() takes a bridge"),
        "{e}"
    );
    assert!(e.contains("bad2.rhai:2"), "{e}");
}

#[test]
fn a_mapping_over_a_listening_socket_is_refused_naming_it() {
    let sb = Sandbox::new();
    let s = sb.script(
        "l.rhai",
        r#"
let n = netns("b");
let v = veth("vb", "eth0"); v.peer.move_to(n); v.peer.addr("10.8.0.2/24").up(); v.addr("10.8.0.1/24").up();
dnat(#{ port: 8080, to: "10.8.0.2:80", force: force });
"#,
    );
    let before = sb.snapshot();
    // A service of the host's own on 8080.
    let mut svc = sb
        .cmd("python3")
        .args([
            "-c",
            "import socket,time\ns=socket.socket()\ns.bind(('0.0.0.0',8080))\ns.listen()\nprint('ready',flush=True)\ntime.sleep(60)",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(svc.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let o = sb.netplumb(&["up", &s, "--set", "force=false"]);
    assert_eq!(o.status.code(), Some(1));
    let e = text(&o.stderr);
    // miette wraps long lines: compare with the wrapping taken out.
    let flat = e
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat.contains(
            "tcp port 8080 in host already has a listening socket (0.0.0.0:8080, held by python3 (pid"
        ),
        "{e}"
    );
    assert!(e.contains("l.rhai:4"), "{e}");
    assert_eq!(sb.snapshot(), before, "nothing changed");
    assert_eq!(sb.ok("nft list ruleset"), "");
    // force: true publishes it anyway.
    sb.np_ok(&["up", &s, "--set", "force=true"]);
    assert!(sb.ok("nft list ruleset").contains("8080"));
    sb.np_ok(&["down", "l"]);
    // nsenter execs python3 in place: the child is the service itself.
    let _ = svc.kill();
    let _ = svc.wait();
}

#[test]
fn watch_repairs_a_flushed_ruleset_within_a_second_and_stops_on_sigterm() {
    let sb = Sandbox::new();
    with_ext(&sb);
    let s = sb.script("web.rhai", WEB);
    sb.np_ok(&["up", &s, "--set", "local=false"]);
    let _srv = sb.server("app", "0.0.0.0", &[80], "app", false);
    let w = sb
        .cmd(BIN)
        .args(["watch", "web"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("watch");
    // Its first pass done, it waits for events.
    std::thread::sleep(Duration::from_millis(1500));
    sb.ok("nft flush ruleset");
    let t0 = Instant::now();
    let mut answered = None;
    while t0.elapsed() < Duration::from_secs(3) {
        if let Some(r) = sb.fetch("sib", EXT, 8080, false) {
            answered = Some((r, t0.elapsed()));
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (r, took) = answered.expect("the published port never came back");
    assert!(r.starts_with("app"), "{r}");
    assert!(took < Duration::from_secs(1), "answered after {took:?}");
    // SIGTERM: it stops and leaves all up.
    // SAFETY: kill(2) of our own, unreaped child (nsenter execs netplumb in
    // place, so the child is the watcher).
    unsafe { libc::kill(w.id() as i32, libc::SIGTERM) };
    let out = w.wait_with_output().expect("watch output");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = text(&out.stdout);
    assert!(log.contains("(repaired)"), "{log}");
    assert!(sb.np_ok(&["check", "web"]).contains("no drift"));
    sb.np_ok(&["down", "web"]);
}

/// SIGKILL to the process group `c` leads (spawned with `process_group(0)`),
/// then reap it.
fn kill_group(c: &mut Child) {
    // SAFETY: kill(2) of the group of our own, unreaped child: its pid is
    // still its group's id.
    unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
    let _ = c.wait();
}
