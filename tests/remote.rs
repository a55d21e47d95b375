//! Issue 19, the remote half: `up -` reading a script bundle from stdin,
//! `--hold`'s two-phase commit, and `--all-sites` fanning out over
//! `$NETPLUMB_SSH` to simulated machines (tests/common/machines.rs).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use common::{BIN, Sandbox, kstate, text};

/// A bundle as the format says it (written here, not by netplumb).
fn bundle(files: &[(&str, &str)]) -> Vec<u8> {
    let mut out = b"#!netplumb-bundle 1\n".to_vec();
    for (p, t) in files {
        out.extend_from_slice(format!("@@ file {p} {}\n{t}\n", t.len()).as_bytes());
    }
    out.extend_from_slice(b"@@ end\n");
    out
}

/// `cmd` with `input` on stdin (then stdin closed), to the end.
fn feed(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("netplumb");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    child.wait_with_output().expect("wait")
}

const MAIN: &str = r#"import "lib/nets" as nets;
let a = netns("ra");
let b = netns("rb");
nets::pair(a, b, ADDR);
"#;

const NETS: &str = r#"// A veth pair between a and b, a.x and b.x+1 in 10.9.0.0/24.
fn pair(a, b, x) {
  let v = a.veth("eth0", b, "eth0");
  v.addr(`10.9.0.${x}/24`).up();
  v.peer.addr(`10.9.0.${x + 1}/24`).up();
}
"#;

fn lab(addr: u8) -> Vec<u8> {
    let main = MAIN.replace("ADDR", &addr.to_string());
    bundle(&[("lab.rhai", &main), ("lib/nets.rhai", NETS)])
}

#[test]
fn up_dash_reads_a_bundle_with_its_module_and_builds_it() {
    let sb = Sandbox::new();
    let mut c = sb.cmd(BIN);
    c.args(["up", "-", "--name", "lab"]);
    let o = feed(c, &lab(1));
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        text(&o.stdout).contains("+ veth ra:eth0 ↔ rb:eth0"),
        "{}",
        text(&o.stdout)
    );
    let a = sb.json("ip -n ra -j addr show dev eth0");
    assert_eq!(a[0]["addr_info"][0]["local"], "10.9.0.1", "{a}");
    let a = sb.json("ip -n rb -j addr show dev eth0");
    assert_eq!(a[0]["addr_info"][0]["local"], "10.9.0.2", "{a}");
    sb.ok("ip netns exec ra ping -c1 -W2 10.9.0.2");
    let show = sb.np_ok(&["show", "lab"]);
    assert!(show.contains("netns ra (made by lab)"), "{show}");
    // The same again: nothing to change.
    let mut c = sb.cmd(BIN);
    c.args(["up", "-", "--name", "lab"]);
    let o = feed(c, &lab(1));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("topology 'lab': no changes"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn up_dash_without_a_bundle_header_is_one_plain_script_and_needs_a_name() {
    let sb = Sandbox::new();
    let plain = b"let a = netns(\"pa\");\nprint(\"@@ end\");\n";
    let mut c = sb.cmd(BIN);
    c.args(["up", "-"]);
    let o = feed(c, plain);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("`up -` reads the script from stdin, which has no file name"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(sb.ok("ip netns list"), "");
    let mut c = sb.cmd(BIN);
    c.args(["up", "-", "--name", "p"]);
    let o = feed(c, plain);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(sb.ok("ip netns list | cut -d' ' -f1").trim(), "pa");
    // A plain script has no modules with it: an import is not found.
    let mut c = sb.cmd(BIN);
    c.args(["up", "-", "--name", "q"]);
    let o = feed(c, MAIN.as_bytes());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("module 'lib/nets' not found"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_broken_bundle_is_refused_before_any_change() {
    let sb = Sandbox::new();
    let mut cut = lab(1);
    cut.truncate(cut.len() - 30);
    let mut c = sb.cmd(BIN);
    c.args(["up", "-", "--name", "lab"]);
    let o = feed(c, &cut);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("bundle on stdin: lib/nets.rhai is cut short"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(sb.ok("ip netns list"), "");
}

/// `up - --hold` under way: its stdout read up to READY.
struct Held {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Held {
    fn start(sb: &Sandbox, bundle: &[u8]) -> Held {
        let mut child = sb
            .cmd(BIN)
            .args(["up", "-", "--name", "lab", "--hold"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("netplumb");
        child
            .stdin
            .as_mut()
            .expect("stdin")
            .write_all(bundle)
            .expect("write bundle");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut h = Held { child, out };
        let mut line = String::new();
        h.out.read_line(&mut line).expect("read READY");
        if line != "READY\n" {
            let mut err = String::new();
            let _ = h
                .child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err);
            panic!("expected READY, got {line:?}: {err}");
        }
        h
    }

    /// Send `verdict` (None: close stdin), then the rest of its output.
    fn finish(mut self, verdict: Option<&str>) -> (Option<i32>, String, String) {
        let mut stdin = self.child.stdin.take().expect("stdin");
        if let Some(v) = verdict {
            stdin
                .write_all(format!("{v}\n").as_bytes())
                .expect("verdict");
        }
        drop(stdin);
        let mut out = String::new();
        self.out.read_to_string(&mut out).expect("stdout");
        let mut err = String::new();
        let _ = self
            .child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err);
        let code = self.child.wait().expect("wait").code();
        (code, out, err)
    }
}

#[test]
fn hold_abort_or_eof_leaves_the_machine_as_before_and_commit_keeps() {
    let sb = Sandbox::new();
    let empty = kstate::state(&sb);
    for verdict in [Some("ABORT"), None] {
        let h = Held::start(&sb, &lab(1));
        // Applied (and waiting): the namespaces are there.
        let held = kstate::state(&sb);
        assert!(held.contains("== netns ra"), "{held}");
        let (code, _, err) = h.finish(verdict);
        assert_eq!(code, Some(3), "{verdict:?}: {err}");
        assert!(err.contains("the changes are rolled back"), "{err}");
        kstate::assert_same(&kstate::state(&sb), &empty, "after ABORT of a fresh up");
        let show = sb.np_ok(&["show"]);
        assert!(show.contains("no netplumb topologies"), "{show}");
    }
    let (code, out, err) = Held::start(&sb, &lab(1)).finish(Some("COMMIT"));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("topology 'lab': 5 created"), "{out}");
    let up = kstate::state(&sb);
    sb.ok("ip netns exec ra ping -c1 -W2 10.9.0.2");
    // An edit held and aborted: the committed topology as it was, record too.
    let h = Held::start(&sb, &lab(7));
    assert!(kstate::state(&sb).contains("10.9.0.7/24"));
    let (code, _, err) = h.finish(Some("ABORT"));
    assert_eq!(code, Some(3), "{err}");
    kstate::assert_same(&kstate::state(&sb), &up, "after ABORT of an edit");
    // Its record too: the committed script again changes nothing.
    let mut c = sb.cmd(BIN);
    c.args(["up", "-", "--name", "lab"]);
    let o = feed(c, &lab(1));
    assert!(
        text(&o.stdout).contains("topology 'lab': no changes"),
        "{}",
        text(&o.stdout)
    );
    sb.np_ok(&["down", "--name", "lab"]);
    kstate::assert_same(&kstate::state(&sb), &empty, "after down");
}

#[test]
fn hold_needs_a_bundle() {
    let sb = Sandbox::new();
    let mut c = sb.cmd(BIN);
    c.args(["up", "-", "--name", "p", "--hold"]);
    let o = feed(c, b"netns(\"pa\");\n");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("--hold waits for COMMIT on stdin"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(sb.ok("ip netns list"), "");
}

// ---- --all-sites over simulated machines (acceptance 3 and 4) ----

use common::machines::{Machine, machines, ssh_script};

/// Everything a user could check on a machine: its namespaces, per
/// namespace links, addresses, routes and nft ruleset, and netplumb's
/// records (not the lock files any run leaves).
fn snap(sb: &Sandbox, m: &Machine) -> String {
    m.ok(
        sb,
        "for ns in '' $(ip netns list | cut -d' ' -f1 | sort); do \
           if [ -z \"$ns\" ]; then p=''; echo '== host'; else p=\"-n $ns\"; echo \"== $ns\"; fi; \
           ip $p -d -br link | sed 's/  */ /g' | cut -d' ' -f1,2,4 | sort; \
           ip $p -br addr | sed 's/  */ /g' | cut -d' ' -f1,3- | sort; \
           ip $p route | sort; ip $p -6 route | grep -v '^fe80' | sort; \
           if [ -z \"$ns\" ]; then nft list ruleset 2>/dev/null; \
           else ip netns exec $ns nft list ruleset 2>/dev/null; fi; \
         done; echo '== records'; find /run/netplumb -type f ! -name '*.lock' | sort",
    )
}

const SITES: &str = r#"let east = site("east", #{ underlay: "192.0.2.1" });
let west = site("west", #{ underlay: "192.0.2.2" });
let north = site("north", #{ underlay: "192.0.2.3", ssh: "root@north" });
import "lib/lan" as lan;
lan::pair(east, "e", 1);
lan::pair(west, "w", 2);
lan::pair(north, "n", 3);
"#;

const LAN: &str = r#"// Two namespaces on site s with a veth between them, and a bridge.
fn pair(s, tag, i) {
  let a = s.netns(`${tag}a`);
  let b = s.netns(`${tag}b`);
  let v = a.veth("eth0", b, "eth0");
  v.addr(`10.${i}.0.1/24`).up();
  v.peer.addr(`10.${i}.0.2/24`).up();
  s.bridge(`br${tag}`);
}
"#;

/// Three machines, the ssh stand-in, and the script (with its module in
/// lib/) in the sandbox's scratch directory.
fn three(sb: &Sandbox) -> (Vec<Machine>, String, String) {
    let ms = machines(sb, &["east", "west", "north"]);
    let ssh = ssh_script(sb, &ms);
    std::fs::create_dir_all(sb.dir.path().join("lib")).expect("lib dir");
    sb.script("lib/lan.rhai", LAN);
    let file = sb.script("three.rhai", SITES);
    (ms, ssh, file)
}

fn driver(sb: &Sandbox, ssh: &str, args: &[&str]) -> Output {
    sb.cmd(BIN)
        .env("NETPLUMB_SSH", ssh)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("netplumb")
}

#[test]
fn up_all_sites_builds_every_site_with_prefixed_output() {
    let sb = Sandbox::new();
    let (ms, ssh, file) = three(&sb);
    let o = driver(
        &sb,
        &ssh,
        &["-v", "up", &file, "--all-sites", "--set", "unused=1"],
    );
    let out = text(&o.stdout);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{out}{err}");
    // What each site was asked to run (-v), --set passed along.
    let north = format!(
        "netplumb: [north] {ssh} root@north netplumb -v up - --site north --name three --hold --set unused=1\n"
    );
    assert!(err.contains(&north), "{err}");
    assert!(err.contains("[west] READY (holding)"), "{err}");
    for (m, tag, i) in [(&ms[0], "e", 1), (&ms[1], "w", 2), (&ms[2], "n", 3)] {
        let name = &m.name;
        assert!(out.contains(&format!("[{name}] + netns {tag}a\n")), "{out}");
        assert!(
            out.contains(&format!("[{name}] topology 'three': ")),
            "{out}"
        );
        let a = m.ok(&sb, &format!("ip -n {tag}a -br addr show dev eth0"));
        assert!(a.contains(&format!("10.{i}.0.1/24")), "{name}: {a}");
        m.ok(
            &sb,
            &format!("ip netns exec {tag}a ping -c1 -W2 10.{i}.0.2"),
        );
        // Only its own part: no other site's namespaces.
        let nss = m.ok(&sb, "ip netns list | cut -d' ' -f1 | sort | tr '\\n' ' '");
        assert_eq!(nss, format!("{tag}a {tag}b "), "{name}");
    }
    assert!(
        out.contains("topology 'three': up on all 3 sites (east, west, north)"),
        "{out}"
    );
    // The driver's own machine is untouched.
    assert_eq!(sb.ok("ip netns list"), "");
}

#[test]
fn a_failure_on_one_site_leaves_none_of_them_changed() {
    let sb = Sandbox::new();
    let (ms, ssh, file) = three(&sb);
    // A foreign device holds the bridge's name on north.
    ms[2].ok(&sb, "ip link add brn type veth peer name brn-p");
    let before: Vec<String> = ms.iter().map(|m| snap(&sb, m)).collect();
    let o = driver(&sb, &ssh, &["up", &file, "--all-sites"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}{err}", text(&o.stdout));
    assert!(err.contains("site north failed: "), "{err}");
    assert!(err.contains("brn"), "{err}");
    assert!(err.contains("; east, west rolled back"), "{err}");
    // north's own report, prefixed; east and west built their part, held
    // it, and were told to roll back.
    assert!(
        err.contains("[north]   × netns host already has brn"),
        "{err}"
    );
    for m in ["east", "west"] {
        let said = format!("[{m}] netplumb: ABORT: the changes are rolled back");
        assert!(err.contains(&said), "{err}");
    }
    for (m, b) in ms.iter().zip(&before) {
        kstate::assert_same(&snap(&sb, m), b, &format!("{} after the failed up", m.name));
    }
}

#[test]
fn down_all_sites_leaves_all_three_as_before() {
    let sb = Sandbox::new();
    let (ms, ssh, file) = three(&sb);
    let before: Vec<String> = ms.iter().map(|m| snap(&sb, m)).collect();
    let o = driver(&sb, &ssh, &["up", &file, "--all-sites"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_ne!(snap(&sb, &ms[1]), before[1]);
    let o = driver(&sb, &ssh, &["down", &file, "--all-sites"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    for m in &ms {
        assert!(
            out.contains(&format!("[{}] topology 'three': removed ", m.name)),
            "{out}"
        );
    }
    for (m, b) in ms.iter().zip(&before) {
        kstate::assert_same(
            &snap(&sb, m),
            b,
            &format!("{} after down --all-sites", m.name),
        );
    }
    // --name names the topology; the script still names the sites.
    let o = driver(&sb, &ssh, &["up", &file, "--all-sites", "--name", "other"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = driver(
        &sb,
        &ssh,
        &["down", "--name", "other", &file, "--all-sites"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    for (m, b) in ms.iter().zip(&before) {
        kstate::assert_same(&snap(&sb, m), b, &format!("{} after down --name", m.name));
    }
}

#[test]
fn down_all_sites_names_the_site_that_failed() {
    let sb = Sandbox::new();
    let (ms, ssh, file) = three(&sb);
    let o = driver(&sb, &ssh, &["up", &file, "--all-sites"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // west cannot be reached any more.
    let ssh2 = sb.script(
        "ssh-no-west",
        &format!(
            "#!/bin/sh\ncase \"$1\" in west|*@west) echo 'ssh: connect to host west: No route to host' >&2; exit 255 ;; esac\nexec {ssh} \"$@\"\n"
        ),
    );
    sb.ok(&format!("chmod +x {ssh2}"));
    let o = driver(&sb, &ssh2, &["down", &file, "--all-sites"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("site west failed: ssh: connect to host west: No route to host; down succeeded on east, north"),
        "{err}"
    );
    assert_eq!(ms[0].ok(&sb, "ip netns list"), "");
    assert_ne!(ms[1].ok(&sb, "ip netns list"), "");
}

#[test]
fn ping_all_all_sites_runs_on_every_site_and_fails_when_one_does() {
    let sb = Sandbox::new();
    let (ms, ssh, file) = three(&sb);
    let o = driver(&sb, &ssh, &["up", &file, "--all-sites"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = driver(&sb, &ssh, &["ping-all", &file, "--all-sites"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    for m in &ms {
        assert!(out.contains(&format!("[{}] ", m.name)), "{out}");
    }
    // A link down on north: its ping-all fails, and so does the whole.
    ms[2].ok(&sb, "ip -n na link set eth0 down");
    let o = driver(&sb, &ssh, &["ping-all", &file, "--all-sites"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}{err}", text(&o.stdout));
    assert!(err.contains("site north failed: "), "{err}");
    assert!(err.contains("ping-all succeeded on east, west"), "{err}");
}
