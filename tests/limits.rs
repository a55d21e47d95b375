//! Scripts are bounded in memory as well as in operations: a string or an
//! array that doubles in a loop ends `plan` (which needs no root) with an
//! error naming its line, under a memory cap that would otherwise kill the
//! process; a push loop stops at the limit at once; a big real script fits
//! the default.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::tempdir::TempDir;
use common::{BIN, text};

/// The address-space cap of the bomb tests: the default budget fits under
/// it, an unbounded doubling does not.
const CAP_KIB: u64 = 1 << 20;

fn script(dir: &TempDir, name: &str, body: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

/// `netplumb plan FILE ARGS…` under `ulimit -v CAP_KIB`, without colour.
fn plan_capped(file: &str, args: &[&str]) -> Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -c 0; ulimit -v {CAP_KIB}; exec env NO_COLOR=1 \"$0\" plan \"$@\""
        ))
        .arg(BIN)
        .arg(file)
        .args(args)
        .output()
        .unwrap()
}

fn assert_stopped_at(o: &Output, file: &str, line: usize, mib: u64) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "not a clean exit 1:\n{err}");
    assert!(
        err.contains(&format!(
            "the script used more than {mib} MiB of memory: stopped"
        )),
        "{err}"
    );
    assert!(err.contains(&format!("at {file}:{line}:")), "{err}");
    assert!(err.contains("--max-memory"), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("memory allocation"),
        "{err}"
    );
    assert!(o.stdout.is_empty(), "nothing is planned");
}

#[test]
fn a_doubling_string_stops_plan_with_its_line_under_a_memory_cap() {
    let dir = TempDir::new();
    let f = script(
        &dir,
        "bomb.rhai",
        "let s = \"x\";\nloop {\n    s += s;\n}\n",
    );
    assert_stopped_at(&plan_capped(&f, &[]), &f, 3, 256);
    // The cap is real: without the budget the same script dies of it.
    let o = plan_capped(&f, &["--max-memory", "0"]);
    assert_ne!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_ne!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
fn a_doubling_array_stops_plan_with_its_line_under_a_memory_cap() {
    let dir = TempDir::new();
    let f = script(&dir, "bomb.rhai", "let a = [1];\nloop {\n    a += a;\n}\n");
    assert_stopped_at(&plan_capped(&f, &[]), &f, 3, 256);
    let o = plan_capped(&f, &["--max-memory", "0"]);
    assert_ne!(o.status.code(), Some(1), "{}", text(&o.stderr));
}

#[test]
fn doubling_by_interpolation_and_a_growing_map_stop_too() {
    let dir = TempDir::new();
    let f = script(
        &dir,
        "interp.rhai",
        "let s = \"ab\";\nwhile true { s = `${s}${s}`; }\n",
    );
    assert_stopped_at(&plan_capped(&f, &["--max-memory", "64"]), &f, 2, 64);
    let f = script(
        &dir,
        "map.rhai",
        "let m = #{};\nlet i = 0;\nloop { m[`k${i}`] = i; i += 1; }\n",
    );
    assert_stopped_at(&plan_capped(&f, &["--max-memory", "4"]), &f, 3, 4);
}

#[test]
fn a_push_loop_stops_at_the_limit_quickly() {
    // With Rhai's debugger registered every push copied the whole array
    // (721 s to the op limit); with Rhai's own array limit every push
    // re-measured it. Here each push is O(1): 8 MiB of elements is a
    // moment even in a debug build.
    let dir = TempDir::new();
    let f = script(&dir, "push.rhai", "let a = [];\nloop { a.push(1); }\n");
    let t = Instant::now();
    let o = plan_capped(&f, &["--max-memory", "8", "--max-ops", "0"]);
    let took = t.elapsed();
    assert_stopped_at(&o, &f, 2, 8);
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

#[test]
fn one_huge_request_ends_netplumb_with_a_message_not_an_abort() {
    let dir = TempDir::new();
    let f = script(&dir, "pad.rhai", "let a = [];\na.pad(1 << 40, 0);\n");
    let o = plan_capped(&f, &[]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the script asked for 16777216 MiB of memory at once: stopped"),
        "{err}"
    );
    assert!(err.contains("--max-memory"), "{err}");
}

#[test]
fn a_hundred_thousand_mappings_fit_the_default_budget() {
    let dir = TempDir::new();
    let f = script(
        &dir,
        "big.rhai",
        "import \"portmap\" as pm;\n\
         let maps = [];\n\
         for i in 0..100000 {\n\
         \x20   maps.push(#{ port: 1 + i % 50000, to: `172.18.${i / 50000}.2:80`, proto: \"tcp\", daddr: `10.0.${i / 50000}.1` });\n\
         }\n\
         let copy = maps;\n\
         pm::apply(maps);\n\
         print(copy.len());\n",
    );
    let o = plan_capped(&f, &[]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("100000"), "{err}");
    assert!(text(&o.stdout).contains("nft"), "the mappings are planned");
}

#[test]
fn max_memory_is_checked_like_max_ops() {
    let dir = TempDir::new();
    let f = script(&dir, "ok.rhai", "let s = \"x\";\n");
    let o = std::process::Command::new(BIN)
        .args(["plan", &f, "--max-memory", "lots"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("--max-memory"));
}
