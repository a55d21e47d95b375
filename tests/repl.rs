//! Issue 4 acceptance: `netplumb repl`, statements from a pipe and through a
//! pseudo-terminal, each in its own private namespace.

mod common;

use std::io::Write;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{BIN, Sandbox, text};
use rexpect::session::{PtySession, spawn_with_options};

const PROMPT: &str = "netplumb> ";

/// Run `netplumb repl ARGS` in the sandbox with `input` on stdin.
fn repl(sb: &Sandbox, args: &[&str], input: &str) -> Output {
    let mut child = sb
        .cmd(BIN)
        .arg("repl")
        .args(args)
        .env("XDG_STATE_HOME", sb.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn netplumb repl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("netplumb repl")
}

fn netns_list(sb: &Sandbox) -> Vec<String> {
    let mut v: Vec<String> = sb
        .ok("ip netns list | cut -d' ' -f1")
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn ifnames(v: &serde_json::Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["ifname"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    n.sort();
    n
}

#[test]
fn piped_statement_creates_namespace() {
    let sb = Sandbox::new();
    let o = repl(&sb, &[], "let n = netns(\"foons\");\nn.name\n");
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("+ netns foons"), "{out}");
    assert!(out.contains("=> \"foons\""), "{out}");
    // No prompt or banner when stdin is not a terminal.
    assert!(!out.contains(PROMPT) && !out.contains("Ctrl-D"), "{out}");
    assert_eq!(netns_list(&sb), ["foons"]);
    let lo = sb.json("ip -j -n foons link show lo");
    assert!(
        lo[0]["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
        "{lo}"
    );
}

#[test]
fn piped_multiline_loop_creates_three_bridges() {
    let sb = Sandbox::new();
    let o = repl(
        &sb,
        &[],
        "let n = netns(\"lab\");\nfor i in 0..3 {\n  n.bridge(`br${i}`).up();\n}\n",
    );
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("+ bridge lab:br2"), "{out}");
    let br = sb.json("ip -j -n lab link show type bridge");
    assert_eq!(ifnames(&br), ["br0", "br1", "br2"]);
    assert!(
        br[0]["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
        "{br}"
    );
}

#[test]
fn error_mid_session_is_reported_and_state_stays() {
    let sb = Sandbox::new();
    let input = "let a = netns(\"a\");\n\
                 let b = netns(\"b\"); b.exec(\"true\"); throw \"boom\";\n\
                 let c = netns(\"c\"); c.route(\"10.9.0.0/16\", \"172.18.0.1\");\n\
                 a.name\n\
                 b\n\
                 let d = netns(\"d\");\n";
    let o = repl(&sb, &[], input);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    // Failures are reported, the session goes on, and the exit status says so.
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("boom"), "{err}");
    assert!(
        err.contains("input#2") && err.contains("throw \"boom\""),
        "{err}"
    );
    assert!(err.contains("10.9.0.0/16"), "{err}");
    assert!(err.contains("Variable not found: b"), "{err}");
    // netns b was created by exec() before the throw: rolled back.
    assert!(out.contains("+ netns b"), "{out}");
    assert!(out.contains("=> \"a\""), "{out}");
    assert!(out.contains("+ netns d"), "{out}");
    assert_eq!(netns_list(&sb), ["a", "d"]);
}

#[test]
fn functions_and_imports_persist_between_statements() {
    let sb = Sandbox::new();
    let input = "import \"lab\" as lab;\n\
                 fn pair(x) {\n  let n = netns(x);\n  n.bridge(\"br\" + x).up();\n  n\n}\n\
                 pair(\"p1\")\n\
                 let l = lab::line(2, \"ch\");\n\
                 fn bad(x) { veth(x, \"b\") }\n\
                 bad(\"waytoolongname12345\")\n\
                 pair(\"p2\").name\n";
    let o = repl(&sb, &[], input);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(out.contains("=> netns p1"), "{out}");
    assert!(out.contains("=> \"p2\""), "{out}");
    // The error inside bad() points into the input that defined it.
    assert!(err.contains("is 19 bytes"), "{err}");
    assert!(
        err.contains("input#5") && err.contains("fn bad(x)"),
        "{err}"
    );
    assert_eq!(netns_list(&sb), ["ch0", "ch1", "p1", "p2"]);
    let br = sb.json("ip -j -n p2 link show type bridge");
    assert_eq!(ifnames(&br), ["brp2"]);
}

const BUILD: &str = "let n = netns(\"foons\");\n\
    let v = veth(\"veth0\", n, \"eth0\");\n\
    let br = bridge(\"foobr0\");\n\
    br.addr(\"172.18.0.1/24\").up();\n\
    br.attach(v);\n\
    v.up();\n\
    v.peer.addr(\"172.18.0.2/24\").up();\n\
    n.route(\"default\", \"172.18.0.1\");\n\
    for i in 0..2 {\n  n.bridge(`inner${i}`);\n}\n\
    masquerade(\"172.18.0.0/24\");\n";

/// The sandbox's state without what differs between two equal builds:
/// link-local addresses (from random MACs) and a carrier still coming up.
fn comparable(sb: &Sandbox) -> String {
    // A veth's carrier comes up a moment after the link.
    for _ in 0..50 {
        if !sb.snapshot().contains("NO-CARRIER") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    sb.snapshot()
        .split_inclusive('\n')
        .map(|l| {
            l.split(' ')
                .filter(|w| !w.starts_with("fe80::"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn save_replays_with_up_to_the_same_state() {
    let sb = Sandbox::new();
    let saved = sb.dir.path().join("session.rhai");
    let input = format!(
        "{BUILD}let oops = veth(\"x\", \"x\");\n:save {}\n",
        saved.display()
    );
    let o = repl(&sb, &[], &input);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let script = std::fs::read_to_string(&saved).expect("saved script");
    assert!(
        !script.contains("oops"),
        "failed statements are not saved:\n{script}"
    );
    let want = comparable(&sb);

    let fresh = Sandbox::new();
    let path = saved.display().to_string();
    let out = fresh.np_ok(&["up", &path, "--name", "repl"]);
    assert!(out.contains("+ netns foons"), "{out}");
    assert_eq!(comparable(&fresh), want);
    let br = fresh.json("ip -j -d link show veth0");
    assert_eq!(br[0]["master"], "foobr0");
}

#[test]
fn down_removes_what_the_session_made_and_nothing_else() {
    let sb = Sandbox::new();
    sb.ok("ip netns add keep && ip link add pre0 type veth peer name pre1");
    let before = sb.snapshot();
    let input = format!(
        "{BUILD}host().link(\"pre0\").up();\n:down\nlet after = netns(\"after\");\n:down\n"
    );
    let o = repl(&sb, &[], &input);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(
        out.contains("- netns foons") && out.contains("- link foobr0"),
        "{out}"
    );
    assert!(
        out.contains("+ netns after") && out.contains("- netns after"),
        "{out}"
    );
    // pre0 was adopted and set up: down puts it back, and keeps it.
    assert!(out.contains("~ link pre0 down"), "{out}");
    assert_eq!(sb.snapshot(), before);
    assert_eq!(netns_list(&sb), ["keep"]);
}

#[test]
fn meta_commands_plan_show_help_load() {
    let sb = Sandbox::new();
    let file = sb.script(
        "part.rhai",
        "fn twice(x) { x * 2 }\nlet p = netns(\"loaded\");\n",
    );
    let input = format!(
        ":load {file}\ntwice(21)\np.bridge(\"b0\");\n:plan\n:show\n:help\n:help veth\n:nope\n"
    );
    let o = repl(&sb, &[], &input);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(
        o.status.code(),
        Some(1),
        "unknown command counts as a failure: {out}{err}"
    );
    assert!(
        out.contains("+ netns loaded") && out.contains("=> 42"),
        "{out}"
    );
    assert!(out.contains("ip netns add loaded"), "{out}");
    assert!(
        out.contains("ip -n loaded link add b0 type bridge"),
        "{out}"
    );
    // :show reads the kernel back, like `netplumb show`.
    assert!(out.contains("netns loaded (made by repl)"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().take(2).eq(["b0", "bridge"])),
        "{out}"
    );
    assert!(out.contains("Netns.bridge(string) -> Link"), "{out}");
    assert!(out.contains("twice(x)"), "{out}");
    assert!(
        out.contains("veth(name, peer) · veth(name, ns, peer)"),
        "{out}"
    );
    assert!(err.contains("unknown command :nope"), "{err}");
}

#[test]
fn repl_file_runs_first_with_params() {
    let sb = Sandbox::new();
    let file = sb.script("start.rhai", "let n = netns(prefix + \"0\");\n");
    let o = repl(
        &sb,
        &[&file, "--set", "prefix=lab", "--name", "mine"],
        "n.name\n",
    );
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("=> \"lab0\""), "{out}");
    // The session's objects belong to topology `mine`.
    sb.np_ok(&["down", "--name", "mine"]);
    assert!(netns_list(&sb).is_empty());
}

// ---- through a pseudo-terminal ------------------------------------------------

fn pty(sb: &Sandbox) -> PtySession {
    let mut cmd = sb.cmd(BIN);
    cmd.arg("repl")
        .env("TERM", "xterm")
        .env("XDG_STATE_HOME", sb.dir.path());
    let opts = rexpect::reader::Options::new()
        .timeout_ms(Some(15_000))
        .strip_ansi_escape_codes(true);
    let mut p = spawn_with_options(cmd, opts).expect("spawn repl in a pty");
    p.exp_string(PROMPT).expect("first prompt");
    p
}

fn send(p: &mut PtySession, keys: &str) {
    p.send(keys).expect("send");
    p.flush().expect("flush");
}

fn quit(mut p: PtySession) {
    p.send_control('d').expect("ctrl-d");
    p.exp_eof().expect("repl exits on ctrl-d");
}

#[test]
fn pty_statement_applies_before_the_next_prompt() {
    let sb = Sandbox::new();
    let mut p = pty(&sb);
    p.send_line("let n = netns(\"x\");").expect("send");
    p.exp_string("+ netns x").expect("change line");
    p.exp_string(PROMPT).expect("next prompt");
    // The session is still open and the namespace is already there.
    assert_eq!(netns_list(&sb), ["x"]);
    // A block typed over three lines.
    p.send_line("for i in 0..3 {").expect("send");
    p.exp_string("...").expect("continuation prompt");
    p.send_line("  n.bridge(`b${i}`);").expect("send");
    p.send_line("}").expect("send");
    p.exp_string("+ bridge x:b2").expect("bridges");
    p.exp_string(PROMPT).expect("prompt");
    assert_eq!(
        ifnames(&sb.json("ip -j -n x link show type bridge")),
        ["b0", "b1", "b2"]
    );
    quit(p);
    // History persists in the XDG state dir.
    let h = std::fs::read_to_string(sb.dir.path().join("netplumb/history")).expect("history");
    assert!(
        h.contains("netns(\\\"x\\\")") || h.contains("netns(\"x\")"),
        "{h}"
    );
}

#[test]
fn pty_tab_completes_functions_and_namespace_names() {
    let sb = Sandbox::new();
    sb.ok("ip netns add alpha");
    let mut p = pty(&sb);
    // `net` + Tab becomes `netns`; the rest of the line makes it a call.
    send(&mut p, "net\t");
    send(&mut p, "(\"beta\")\r");
    p.exp_string("=> netns beta").expect("completed to netns");
    p.exp_string(PROMPT).expect("prompt");
    // Inside a string: existing namespace names.
    send(&mut p, "netns(\"alp\t");
    send(&mut p, "\")\r");
    p.exp_string("=> netns alpha").expect("completed to alpha");
    p.exp_string(PROMPT).expect("prompt");
    // Two candidates: the second Tab lists them.
    // Two candidates: the second Tab lists them (`break` is only in the list;
    // `bridge` is also the hint after `br`).
    send(&mut p, "br\t\t");
    p.exp_string("break").expect("lists break");
    p.exp_string("bridge").expect("lists bridge");
    p.exp_string(PROMPT).expect("line redrawn under the list");
    // Ctrl-C at the prompt drops the line: what follows runs on its own.
    p.send_control('c').expect("ctrl-c clears the line");
    p.exp_string(PROMPT).expect("fresh prompt");
    p.send_line("40 + 2").expect("send");
    p.exp_string("=> 42").expect("line was cleared");
    p.exp_string(PROMPT).expect("prompt");
    quit(p);
}

#[test]
fn pty_ctrl_c_interrupts_a_running_loop_and_rolls_it_back() {
    let sb = Sandbox::new();
    let mut p = pty(&sb);
    p.send_line("let n = netns(\"before\");").expect("send");
    p.exp_string(PROMPT).expect("prompt");
    p.send_line("let m = netns(\"inloop\"); m.exec(\"true\"); loop { }")
        .expect("send");
    p.exp_string("+ netns inloop")
        .expect("applied before the loop");
    std::thread::sleep(Duration::from_millis(500));
    p.send_control('c').expect("ctrl-c");
    p.exp_string("interrupted").expect("interrupted");
    p.exp_string(PROMPT).expect("prompt is back");
    assert_eq!(netns_list(&sb), ["before"]);
    // The session goes on with its state.
    p.send_line("n.name").expect("send");
    p.exp_string("=> \"before\"").expect("variable kept");
    p.send_line("m").expect("send");
    p.exp_string("Variable not found: m")
        .expect("interrupted statement's variable gone");
    p.exp_string(PROMPT).expect("prompt");
    quit(p);
}

#[test]
fn pty_ctrl_c_stops_a_command_run_by_exec() {
    let sb = Sandbox::new();
    let mut p = pty(&sb);
    p.send_line("let m = netns(\"ex\"); m.exec(\"sleep 30\");")
        .expect("send");
    p.exp_string("+ netns ex").expect("applied before exec");
    std::thread::sleep(Duration::from_millis(500));
    let t = std::time::Instant::now();
    p.send_control('c').expect("ctrl-c");
    p.exp_string("interrupted").expect("interrupted");
    p.exp_string(PROMPT).expect("prompt is back");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "waited {:?} for sleep 30",
        t.elapsed()
    );
    assert!(netns_list(&sb).is_empty(), "the statement is rolled back");
    quit(p);
}

#[test]
fn a_module_handle_after_down_is_a_script_error_not_a_panic() {
    // Issue 13: a bridge handle exported by a module outlives `:down`,
    // which empties the model; using it names the line, and the session
    // goes on.
    let sb = Sandbox::new();
    sb.script("m.rhai", "let br = bridge(\"mbr0\");\nexport br;\n");
    let start = sb.script("start.rhai", "// the session starts beside m.rhai\n");
    let o = repl(
        &sb,
        &[&start],
        "import \"m\" as m;\n:down\nm::br.name\nlet after = netns(\"after\");\nafter.name\n",
    );
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        o.status.code(),
        Some(1),
        "the stale handle is a failure: {out}{err}"
    );
    assert!(
        err.contains("at input#2:1:7"),
        "the error names the line: {err}"
    );
    assert!(
        err.contains("link handle is from before the topology was reset"),
        "{err}"
    );
    assert!(out.contains("=> \"after\""), "the session goes on: {out}");
    assert_eq!(netns_list(&sb), ["after"]);
}
