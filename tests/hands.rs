//! What a network engineer's hands meet first: `--json` documents that
//! match their pages under docs/ field for field, `--json` refused where it
//! means nothing, `down` alone naming its three forms, `exec` without `--`,
//! man pages that `man -l` reads, and `up`'s output in the order things
//! happened (a print after the change lines of what was made before it).

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{BIN, Sandbox, root, script_path, text};
use serde_json::Value;

// ---------------------------------------------------------------------------
// The schema pages, read as the tests' contract: every `| field | type |`
// table under "## Document" or "### Name" is an object type; a document must
// have every field listed, with a value of the listed type, and no other.

#[derive(Debug, Clone)]
enum Ty {
    Str,
    Num,
    Bool,
    Null,
    Lit(String),
    Arr(Box<Ty>),
    Obj(String),
    Any(Vec<Ty>),
}

fn parse_ty(s: &str) -> Ty {
    let alts: Vec<Ty> = s.split('|').map(|a| parse_one(a.trim())).collect();
    if alts.len() == 1 {
        alts.into_iter().next().unwrap()
    } else {
        Ty::Any(alts)
    }
}

fn parse_one(s: &str) -> Ty {
    match s {
        "string" => Ty::Str,
        "number" => Ty::Num,
        "bool" => Ty::Bool,
        "null" => Ty::Null,
        _ if s.starts_with('"') && s.ends_with('"') => Ty::Lit(s.trim_matches('"').to_string()),
        _ if s.starts_with('[') && s.ends_with(']') => {
            Ty::Arr(Box::new(parse_ty(&s[1..s.len() - 1])))
        }
        _ => {
            assert!(
                s.chars().all(|c| c.is_ascii_alphanumeric()) && s.starts_with(char::is_uppercase),
                "unknown type {s:?} in a schema page"
            );
            Ty::Obj(s.to_string())
        }
    }
}

type Types = BTreeMap<String, Vec<(String, Ty)>>;

/// The object types of docs/NAME (and of docs/up-json.md, where `Change`
/// and `Counts` live). The document itself is the type "Document".
fn schema(page: &str) -> Types {
    let mut types = Types::new();
    let pages = if page == "up-json.md" {
        vec![page]
    } else {
        vec!["up-json.md", page]
    };
    for p in pages {
        // up-json.md's own document is not the other pages' document.
        types.remove("Document");
        let body = std::fs::read_to_string(root().join("docs").join(p)).expect("schema page");
        let mut current: Option<String> = None;
        for line in body.lines() {
            if let Some(h) = line.strip_prefix("### ") {
                current = Some(h.trim().to_string());
            } else if line.starts_with("## ") {
                current = (line.trim() == "## Document").then(|| "Document".to_string());
            } else if let Some(name) = &current
                && line.starts_with("| `")
            {
                // A `\|` inside a cell is part of a type, not a column.
                let cells: Vec<String> = line
                    .replace("\\|", "\u{1}")
                    .split('|')
                    .map(|c| c.trim().replace('\u{1}', "|"))
                    .collect();
                let field = cells[1].trim_matches('`').to_string();
                let ty = parse_ty(&cells[2]);
                types.entry(name.clone()).or_default().push((field, ty));
            }
        }
    }
    assert!(
        types.contains_key("Document"),
        "{page} has no ## Document table"
    );
    types
}

fn check_value(types: &Types, ty: &Ty, v: &Value, at: &str, errs: &mut Vec<String>) {
    let ok = match (ty, v) {
        (Ty::Str, Value::String(_)) | (Ty::Num, Value::Number(_)) | (Ty::Bool, Value::Bool(_)) => {
            true
        }
        (Ty::Null, Value::Null) => true,
        (Ty::Lit(l), Value::String(s)) => l == s,
        (Ty::Arr(t), Value::Array(items)) => {
            for (i, x) in items.iter().enumerate() {
                check_value(types, t, x, &format!("{at}[{i}]"), errs);
            }
            true
        }
        (Ty::Obj(name), Value::Object(_)) => {
            check_object(types, name, v, at, errs);
            true
        }
        (Ty::Any(alts), _) => {
            let fits = alts.iter().find(|t| {
                let mut e = Vec::new();
                check_value(types, t, v, at, &mut e);
                e.is_empty()
            });
            match fits {
                Some(t) => {
                    check_value(types, t, v, at, errs);
                    true
                }
                None => false,
            }
        }
        _ => false,
    };
    if !ok {
        errs.push(format!("{at}: {v} is not {ty:?}"));
    }
}

fn check_object(types: &Types, name: &str, v: &Value, at: &str, errs: &mut Vec<String>) {
    let fields = types
        .get(name)
        .unwrap_or_else(|| panic!("no table for type {name}"));
    let Value::Object(map) = v else {
        errs.push(format!("{at}: not an object"));
        return;
    };
    for (f, t) in fields {
        match map.get(f) {
            Some(x) => check_value(types, t, x, &format!("{at}.{f}"), errs),
            None => errs.push(format!("{at}: documented field `{f}` is missing")),
        }
    }
    for k in map.keys() {
        if !fields.iter().any(|(f, _)| f == k) {
            errs.push(format!(
                "{at}: field `{k}` is not documented in the {name} table"
            ));
        }
    }
}

/// Parse `out` as one JSON document and check it against docs/`page`.
fn conforms(page: &str, out: &str) -> Value {
    let v: Value =
        serde_json::from_str(out).unwrap_or_else(|e| panic!("not one JSON document: {e}\n{out}"));
    let types = schema(page);
    let mut errs = Vec::new();
    check_object(&types, "Document", &v, "$", &mut errs);
    assert!(errs.is_empty(), "{page}: {errs:#?}\n{out}");
    assert_eq!(v["schema"], documented_schema(page));
    v
}

/// The schema number a page's title gives: "# `netplumb up --json`: schema 1".
fn documented_schema(page: &str) -> u64 {
    let body = std::fs::read_to_string(root().join("docs").join(page)).expect("schema page");
    let title = body.lines().next().unwrap_or_default();
    title
        .rsplit_once("schema ")
        .and_then(|(_, n)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{page}: no schema number in its title {title:?}"))
}

#[test]
fn show_json_matches_its_schema_with_nat_and_peers() {
    let sb = Sandbox::new();
    let script = sb.script(
        "shown.rhai",
        r#"
let c = netns("ctr");
let v = veth("vctr", c, "eth0");
v.addr("172.17.0.1/24").up();
v.peer.addr("172.17.0.3/24").up();
masquerade("172.17.0.0/24");
dnat(8080, "172.17.0.3:80");
dnat(#{ port: 20000..20010, to: "172.17.0.3" });
"#,
    );
    sb.np_ok(&["up", &script]);
    let v = conforms("show-json.md", &sb.np_ok(&["--json", "show", "shown"]));
    let host = &v["topologies"][0]["namespaces"][0];
    assert_eq!(host["host"], true);
    let nat = &host["nat"][0];
    assert_eq!(nat["rules"][0]["kind"], "masquerade");
    let elems: Vec<&Value> = nat["maps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["elements"].as_array().unwrap())
        .collect();
    // The kernel's elements, typed: 8080 -> 172.17.0.3:80 and a port range.
    assert!(
        elems.iter().any(|e| e["key"][0]["first"] == 8080
            && e["value"][0]["first"] == "172.17.0.3"
            && e["value"][1]["first"] == 80),
        "{elems:#?}"
    );
    assert!(
        elems
            .iter()
            .any(|e| e["key"][0]["first"] == 20000 && e["key"][0]["last"] == 20009),
        "{elems:#?}"
    );
    let nft = sb.json("nft -j list table inet netplumb-shown");
    let kernel_elems: usize = nft["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["map"]["elem"].as_array())
        .map(Vec::len)
        .sum();
    assert_eq!(elems.len(), kernel_elems);
}

fn summaries(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["summary"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_schema_checker_catches_what_it_should() {
    let types = schema("plan-json.md");
    let mut errs = Vec::new();
    let bad = serde_json::json!({"schema": 1, "topology": "t", "mode": "sideways", "ops": [{"op": "add"}],
        "counts": {"created": 0, "changed": 0, "removed": 0, "repaired": 0, "total": "0"}, "extra": 1});
    check_object(&types, "Document", &bad, "$", &mut errs);
    let all = errs.join("\n");
    for want in [
        "$.mode",
        "`not_run` is missing",
        "$.ops[0]: documented field `kind`",
        "$.counts.total",
        "`extra` is not documented",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
}

// ---------------------------------------------------------------------------
// --json per command

#[test]
fn up_json_matches_its_schema_and_marks_repairs() {
    let sb = Sandbox::new();
    let seed = script_path("scripts/seed.rhai");
    let o = sb.netplumb(&["up", "--json", &seed]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v = conforms("up-json.md", &text(&o.stdout));
    assert_eq!(v["topology"], "seed");
    let s = summaries(&v["changes"]);
    assert_eq!(s[0], "+ netns foons");
    assert!(
        s.contains(&"+ route default via 172.18.0.1 in foons".to_string()),
        "{s:?}"
    );
    assert_eq!(v["counts"]["created"], 6);
    assert_eq!(v["counts"]["changed"], 4);
    assert_eq!(v["counts"]["total"], s.len());
    let veth = &v["changes"][1];
    assert_eq!(veth["kind"], "veth");
    assert_eq!(veth["namespace"], Value::Null);
    assert_eq!(veth["peer"]["namespace"], "foons");
    assert_eq!(veth["peer"]["name"], "eth0");
    // The script's print went to stderr, and into the document with its place.
    assert!(
        text(&o.stderr).contains("foons reaches the bridge"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        v["printed"][0]["text"],
        "foons reaches the bridge at 172.18.0.1"
    );
    assert_eq!(
        v["printed"][0]["after"],
        s.len(),
        "the ping ran after every change"
    );

    // Drift behind netplumb's back, then up again: only the repairs.
    sb.ok("ip -n foons link set eth0 down");
    let o = sb.netplumb(&["up", "--json", &seed]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v = conforms("up-json.md", &text(&o.stdout));
    let up = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["summary"] == "~ link foons:eth0 up")
        .unwrap_or_else(|| panic!("no repair of eth0 in {v}"));
    assert_eq!(up["repaired"], true);
    assert_eq!(up["op"], "set");
    assert_eq!(up["object"], "eth0");
    assert_eq!(up["value"], "up");
    assert!(v["counts"]["repaired"].as_u64().unwrap() >= 1);
    let state = sb.json("ip -j -n foons link show eth0");
    assert!(
        state[0]["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "UP"),
        "{state}"
    );

    let o = sb.netplumb(&["up", "--json", &seed]);
    let v = conforms("up-json.md", &text(&o.stdout));
    assert_eq!(v["changes"], serde_json::json!([]));
    assert_eq!(v["counts"]["total"], 0);
}

#[test]
fn ps_json_matches_its_schema_and_follows_the_process() {
    let sb = Sandbox::new();
    let f = sb.script(
        "procs.rhai",
        "let w = netns(\"w\");\nw.daemon(\"sh -c 'echo started; exec sleep 1005'\", #{ name: \"napper\", ready: \"100ms\" });\n",
    );
    sb.np_ok(&["up", &f]);
    let v = conforms("ps-json.md", &sb.np_ok(&["ps", "--json"]));
    let d = &v["daemons"][0];
    assert_eq!(d["topology"], "procs");
    assert_eq!(d["namespace"], "w");
    assert_eq!(d["name"], "napper");
    assert_eq!(d["state"], "running");
    assert!(d["uptime"].as_f64().unwrap() >= 0.0);
    assert_eq!(d["command"][0], "sh");
    let pid = d["pid"].as_i64().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(
        cmdline, b"sleep\x001005\x00",
        "the recorded pid runs the command"
    );
    // The same for one topology, and in the text form.
    let one = conforms("ps-json.md", &sb.np_ok(&["ps", "--json", "procs"]));
    assert_eq!(one["daemons"][0]["pid"], pid);
    let table = sb.np_ok(&["ps"]);
    assert!(
        table.contains("napper") && table.contains("running"),
        "{table}"
    );
    assert_eq!(sb.np_ok(&["logs", "procs", "napper"]), "started\n");
    // Killed behind netplumb's back: shown as exited, with no uptime.
    sb.ok(&format!("kill -9 {pid}"));
    let t0 = std::time::Instant::now();
    let v = loop {
        let v = conforms("ps-json.md", &sb.np_ok(&["ps", "--json"]));
        if v["daemons"][0]["state"] != "running" || t0.elapsed().as_secs() > 5 {
            break v;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(v["daemons"][0]["state"], "exited", "{v}");
    assert_eq!(v["daemons"][0]["uptime"], Value::Null);
    sb.np_ok(&["down", &f]);
    let v = conforms("ps-json.md", &sb.np_ok(&["ps", "--json"]));
    assert_eq!(v["daemons"], serde_json::json!([]));
    let o = sb.netplumb(&["logs", "procs", "napper"]);
    assert!(!o.status.success());
}

#[test]
fn up_json_carries_daemons_files_and_assertions() {
    let sb = Sandbox::new();
    sb.ok("mkdir -p /run/ov/u /run/ov/w && mount -t overlay overlay -o lowerdir=/etc,upperdir=/run/ov/u,workdir=/run/ov/w /etc");
    let f = sb.script(
        "lab.rhai",
        "let w = netns(\"w\");\nw.hosts(#{ gw: \"10.0.0.1\" });\nw.daemon(\"sleep 1010\", #{ name: \"z\" });\nassert_reach(w, \"127.0.0.1\");\nassert_reach(w, \"127.0.0.1:9\");\n",
    );
    let o = sb.netplumb(&["up", "--json", &f]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let v = conforms("up-json.md", &text(&o.stdout));
    let kinds: Vec<&str> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["netns", "file", "daemon"]);
    assert_eq!(v["changes"][2]["value"], "sleep 1010");
    assert_eq!(v["asserts"][0]["passed"], true, "{v}");
    assert_eq!(v["asserts"][1]["passed"], false, "{v}");
    assert_eq!(v["asserts"][1]["at"], "line 5");
    let plan = sb.netplumb(&["plan", "--json", &f]);
    conforms("plan-json.md", &text(&plan.stdout));
    sb.np_ok(&["down", &f]);
}

#[test]
fn down_json_lists_what_the_kernel_no_longer_has() {
    let sb = Sandbox::new();
    let seed = script_path("scripts/seed.rhai");
    sb.np_ok(&["up", &seed]);
    let o = sb.netplumb(&["down", "--json", &seed]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v = conforms("down-json.md", &text(&o.stdout));
    let t = &v["topologies"][0];
    assert_eq!(t["name"], "seed");
    assert_eq!(t["removed"], 3);
    let mut s = summaries(&t["objects"]);
    s.sort();
    assert_eq!(s, ["- link foobr0", "- link veth0", "- netns foons"]);
    assert_eq!(t["left"], serde_json::json!([]));
    assert_eq!(t["error"], Value::Null);
    assert_eq!(sb.ok("ip netns list"), "");
    assert!(!sb.ok("ip -br link").contains("foobr0"));

    // Nothing left: the same document, with nothing in it.
    let o = sb.netplumb(&["down", "--json", "--all"]);
    let v = conforms("down-json.md", &text(&o.stdout));
    assert_eq!(v["topologies"], serde_json::json!([]));
    let o = sb.netplumb(&["down", "--json", "--force-forget", "--name", "seed"]);
    let v = conforms("down-json.md", &text(&o.stdout));
    assert_eq!(v["topologies"][0]["forgotten"], false);
}

#[test]
fn plan_json_ops_carry_exactly_the_text_forms_lines() {
    let seed = script_path("scripts/seed.rhai");
    let plain = Command::new(BIN).args(["plan", &seed]).output().unwrap();
    let o = Command::new(BIN)
        .args(["plan", "--json", &seed])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v = conforms("plan-json.md", &text(&o.stdout));
    assert_eq!(v["mode"], "scratch");
    let lines: Vec<String> = v["ops"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|op| {
            op["shell"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().to_string())
        })
        .collect();
    let want: Vec<String> = text(&plain.stdout).lines().map(str::to_string).collect();
    assert_eq!(lines, want);
    assert_eq!(v["not_run"][0], "ping 172.18.0.1 from netns foons");
    // The print and the note stay on stderr.
    assert!(text(&o.stderr).contains("foons reaches the bridge"));

    // --diff against a topology that is up: nothing; after drift: the repair.
    let sb = Sandbox::new();
    sb.np_ok(&["up", &seed]);
    let v = conforms(
        "plan-json.md",
        &sb.np_ok(&["plan", "--diff", "--json", &seed]),
    );
    assert_eq!(
        (v["mode"].as_str(), v["ops"].as_array().map(Vec::len)),
        (Some("diff"), Some(0))
    );
    sb.ok("ip link set foobr0 down");
    let v = conforms(
        "plan-json.md",
        &sb.np_ok(&["plan", "--diff", "--json", &seed]),
    );
    assert_eq!(summaries(&v["ops"]), ["~ link foobr0 up"]);
    assert_eq!(v["ops"][0]["repaired"], true);
    assert_eq!(v["ops"][0]["shell"][0], "ip link set foobr0 up");
}

#[test]
fn check_json_for_a_file_and_for_a_topology() {
    let seed = script_path("scripts/seed.rhai");
    let o = Command::new(BIN)
        .args(["check", "--json", &seed])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v = conforms("check-json.md", &text(&o.stdout));
    assert_eq!(
        (v["kind"].as_str(), v["valid"].as_bool()),
        (Some("file"), Some(true))
    );
    assert_eq!(v["counts"]["total"], 10);
    assert_eq!(v["drifted"], Value::Null);

    let sb = Sandbox::new();
    let bad = sb.script(
        "bad.rhai",
        "let a = netns(\"a\");\na.route(\"default\", \"not-an-ip\");\n",
    );
    let o = Command::new(BIN)
        .args(["check", "--json", &bad])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let v = conforms("check-json.md", &text(&o.stdout));
    assert_eq!(v["valid"], false);
    assert!(!v["error"].as_str().unwrap().is_empty());
    assert!(
        !text(&o.stderr).is_empty(),
        "the report still goes to stderr"
    );

    sb.np_ok(&["up", &seed]);
    let o = sb.netplumb(&["check", "--json", "seed"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v = conforms("check-json.md", &text(&o.stdout));
    assert_eq!(
        (v["kind"].as_str(), v["drifted"].as_bool()),
        (Some("topology"), Some(false))
    );
    assert_eq!(v["repair"], Value::Null);
    assert_eq!(v["script"].as_str(), Some(seed.as_str()));

    sb.ok("ip link del foobr0");
    let o = sb.netplumb(&["check", "--json", "seed"]);
    assert_eq!(o.status.code(), Some(1), "drift exits 1");
    let v = conforms("check-json.md", &text(&o.stdout));
    assert_eq!(v["drifted"], true);
    assert!(
        v["repair"].as_str().unwrap().starts_with("netplumb up "),
        "{v}"
    );
    let s = summaries(&v["changes"]);
    assert!(s.contains(&"+ bridge foobr0".to_string()), "{s:?}");
    // check changed nothing.
    assert!(!sb.ok("ip -br link").contains("foobr0"));
}

#[test]
fn json_where_it_means_nothing_exits_2() {
    for args in [
        &["exec", "x", "true"][..],
        &["repl"],
        &["graph"],
        &["completions", "bash"],
        &["man"],
        &["sandbox", "shell"],
        &["sandbox", "stop", "w"],
    ] {
        let o = Command::new(BIN).arg("--json").args(args).output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(2),
            "--json {args:?}: {}",
            text(&o.stderr)
        );
        assert!(
            text(&o.stderr).contains("error: --json: "),
            "{}",
            text(&o.stderr)
        );
        assert!(o.stdout.is_empty());
    }
}

// ---------------------------------------------------------------------------
// Help that teaches

#[test]
fn down_alone_shows_all_three_forms() {
    let o = Command::new(BIN).arg("down").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    for form in [
        "netplumb down lab.rhai",
        "netplumb down --name lab",
        "netplumb down --all",
    ] {
        assert!(err.contains(form), "{err}");
    }
}

#[test]
fn exec_without_double_dash_passes_the_status_through() {
    let sb = Sandbox::new();
    sb.ok("ip netns add ns");
    let o = sb.netplumb(&["exec", "ns", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let o = sb.netplumb(&["exec", "ns", "ip", "-j", "link"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let links: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        links.as_array().map(Vec::len),
        Some(1),
        "only lo in the new namespace: {links}"
    );
}

#[test]
fn man_pages_render_with_man_and_groff() {
    let dir = common::tempdir::TempDir::new();
    let out = dir.path().join("man1");
    let o = Command::new(BIN)
        .args(["man", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut pages: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for want in [
        "netplumb.1",
        "netplumb-up.1",
        "netplumb-down.1",
        "netplumb-exec.1",
        "netplumb-sandbox-start.1",
        "netplumb-man.1",
    ] {
        assert!(pages.iter().any(|p| p == want), "{want} not in {pages:?}");
    }
    // `netplumb man` alone is the top page.
    let top = Command::new(BIN).arg("man").output().unwrap();
    assert_eq!(top.stdout, std::fs::read(out.join("netplumb.1")).unwrap());

    let has = |p: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(
        has("man") || has("groff"),
        "neither man nor groff is installed (.ci/run installs man-db)"
    );
    for p in &pages {
        let path = out.join(p);
        if has("groff") {
            // -k: UTF-8 input as man reads it; -ww: every warning; -z: parse only.
            let g = Command::new("groff")
                .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                g.status.success() && g.stderr.is_empty(),
                "groff on {p}: {}",
                text(&g.stderr)
            );
        }
        if has("man") {
            let m = Command::new("man")
                .arg("-l")
                .arg(&path)
                .env("MANWIDTH", "80")
                .env("MAN_KEEP_FORMATTING", "")
                .output()
                .unwrap();
            assert!(m.status.success(), "man -l {p}: {}", text(&m.stderr));
            let page = text(&m.stdout);
            for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "EXAMPLES"] {
                assert!(page.contains(section), "{p} has no {section}:\n{page}");
            }
        }
    }
    if has("man") {
        let m = Command::new("man")
            .arg("-l")
            .arg(out.join("netplumb-down.1"))
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        let page = text(&m.stdout);
        assert!(page.contains("netplumb down --name lab"), "{page}");
        assert!(page.contains("--force-forget"), "{page}");
    }
}

// ---------------------------------------------------------------------------
// Order of output

/// The position of the first line of `out` that starts with `prefix`.
fn at(out: &str, prefix: &str) -> usize {
    out.lines()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{out}"))
}

#[test]
fn up_prints_changes_before_the_print_that_came_after_them() {
    let sb = Sandbox::new();
    let out = sb.np_ok(&["up", &script_path("scripts/seed.rhai")]);
    let ping = at(&out, "foons reaches the bridge");
    assert!(at(&out, "+ netns foons") < ping, "{out}");
    assert!(
        at(&out, "+ route default via 172.18.0.1 in foons") < ping,
        "{out}"
    );
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("topology 'seed': 6 created, 4 changed, 0 removed in "),
        "{out}"
    );
}

#[test]
fn each_batch_before_a_print_is_compressed_on_its_own() {
    let sb = Sandbox::new();
    let script = sb.script(
        "many.rhai",
        r#"
for i in 0..50 { netns(`n${i}`); }
let lo = netns("n0");
if lo.ping("127.0.0.1") { print("first ping"); }
print("nothing new since");
for i in 50..53 { netns(`n${i}`); }
netns("n50").ping("127.0.0.1");
print("second ping");
netns("n53");
"#,
    );
    let out = sb.np_ok(&["up", &script]);
    let lines: Vec<&str> = out.lines().collect();
    let counts = lines.last().unwrap();
    assert_eq!(
        &lines[..lines.len() - 1],
        [
            "+ netns ×50",
            "first ping",
            "nothing new since",
            "+ netns n50",
            "+ netns n51",
            "+ netns n52",
            "second ping",
            "+ netns n53"
        ],
        "{out}"
    );
    assert!(
        counts.starts_with("topology 'many': 54 created, 0 changed, 0 removed in "),
        "{out}"
    );
    assert_eq!(sb.ok("ip netns list | wc -l").trim(), "54");
}

#[test]
fn a_failure_after_a_print_says_the_listed_changes_were_rolled_back() {
    let sb = Sandbox::new();
    let script = sb.script(
        "fails.rhai",
        r#"
let a = netns("a");
a.ping("127.0.0.1");
print("a is there");
throw "stop here";
"#,
    );
    let o = sb.netplumb(&["up", &script]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    assert!(at(&out, "+ netns a") < at(&out, "a is there"), "{out}");
    let err = text(&o.stderr);
    assert!(
        err.contains("the changes listed above are rolled back"),
        "{err}"
    );
    assert!(err.contains("stop here"), "{err}");
    assert_eq!(sb.ok("ip netns list"), "", "rolled back for real");
}

#[test]
fn quiet_up_prints_only_the_scripts_own_lines() {
    let sb = Sandbox::new();
    let out = sb.np_ok(&["-q", "up", &script_path("scripts/seed.rhai")]);
    assert_eq!(out, "foons reaches the bridge at 172.18.0.1\n");
}

#[test]
fn debug_is_chatter_on_stderr_even_in_a_plan_or_a_document() {
    let sb = Sandbox::new();
    let script = sb.script("dbg.rhai", "let a = netns(\"a\");\ndebug(\"dbg-line\");\n");
    let o = Command::new(BIN).args(["plan", &script]).output().unwrap();
    assert_eq!(text(&o.stdout), "ip netns add a\nip -n a link set lo up\n");
    assert!(
        text(&o.stderr).contains("line 2: \"dbg-line\""),
        "{}",
        text(&o.stderr)
    );
    let o = sb.netplumb(&["up", "--json", &script]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    conforms("up-json.md", &text(&o.stdout));
    assert!(text(&o.stderr).contains("dbg-line"));
}
