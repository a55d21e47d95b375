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
    // watch cannot re-run a script that came on stdin: it says so and
    // leaves the topology alone (an empty stdin would remove it all).
    let before = kstate::state(&sb);
    let o = sb.run("timeout", &["-s", "TERM", "3", BIN, "watch", "lab"]);
    assert!(
        text(&o.stderr).contains("it was brought up from stdin (`up -`"),
        "{}",
        text(&o.stderr)
    );
    kstate::assert_same(&kstate::state(&sb), &before, "after watch");
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

#[path = "remote/all_sites.rs"]
mod all_sites;
