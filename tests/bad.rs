//! The bad-input corpus: every script in tests/bad/ must fail with its exact
//! golden error (plain, no colour), name its script line, never panic, and
//! leave the kernel exactly as it was. `UPDATE_GOLDEN=1` rewrites the goldens.

mod common;

use common::{Sandbox, text};

fn header(src: &str, key: &str) -> Option<String> {
    src.lines()
        .filter_map(|l| l.strip_prefix("// "))
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
}

#[test]
fn corpus_fails_cleanly_with_golden_errors() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let dir = common::root().join("tests/bad");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for path in &cases {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let rel = format!("tests/bad/{name}.rhai");
        let src = std::fs::read_to_string(path).unwrap();
        let mut args = vec!["up".to_string(), rel.clone()];
        if let Some(a) = header(&src, "args:") {
            args.extend(a.split_whitespace().map(str::to_string));
        }
        let want_exit: i32 = header(&src, "exit:")
            .map(|e| e.parse().unwrap())
            .unwrap_or(1);
        let o = sb
            .cmd("/usr/bin/env")
            .arg("NO_COLOR=1")
            .arg(common::BIN)
            .args(&args)
            .output()
            .unwrap();
        let err = text(&o.stderr);
        let golden = dir.join(format!("{name}.err"));
        if update {
            std::fs::write(&golden, &err).unwrap();
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if o.status.code() != Some(want_exit) {
            failures.push(format!(
                "{name}: exit {:?}, want {want_exit}\n{err}",
                o.status.code()
            ));
        }
        if err != want {
            failures.push(format!(
                "{name}: stderr differs from {}:\n--- got\n{err}--- want\n{want}",
                golden.display()
            ));
        }
        let named_line = err
            .match_indices(&format!("{rel}:"))
            .any(|(i, m)| err[i + m.len()..].starts_with(|c: char| c.is_ascii_digit()));
        if !named_line {
            failures.push(format!(
                "{name}: the error does not name its script line:\n{err}"
            ));
        }
        if err.contains("panicked") {
            failures.push(format!("{name}: panicked\n{err}"));
        }
        let after = sb.snapshot();
        if after != before {
            failures.push(format!("{name}: the kernel changed:\n{after}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn command_line_mistakes() {
    let sb = Sandbox::new();
    let o = sb.netplumb(&["up", "tests/bad/does-not-exist.rhai"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("cannot read script tests/bad/does-not-exist.rhai"),
        "{}",
        text(&o.stderr)
    );
    let o = sb.netplumb(&["up", "scripts/seed.rhai", "--set", "9x=1"]);
    assert_eq!(o.status.code(), Some(2));
    let o = sb.netplumb(&["down"]);
    assert_eq!(o.status.code(), Some(2));
    // A bad --name is a usage error, like any malformed argument (exit 2).
    for args in [
        &["up", "scripts/seed.rhai", "--name", "bad/name"][..],
        &["plan", "scripts/seed.rhai", "--name", "x$(id)"],
        &["down", "--name", "bad name"],
    ] {
        let o = sb.netplumb(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains("cannot name a topology"));
    }
    assert_eq!(sb.ok("ip netns list"), "");
}
