//! Issue 12: records cannot be steered. The state directory is private
//! whatever the umask, records planted by another user or through symlinks
//! are refused or not followed, a hostile or damaged line is an error that
//! names its file and line, and one topology's damaged record blocks only
//! that topology.

mod common;

use std::process::Output;

use common::{BIN, STATE, Sandbox, text};

fn np(sb: &Sandbox, args: &[&str]) -> Output {
    sb.np_at(args)
}

fn np_ok(sb: &Sandbox, args: &[&str]) -> String {
    sb.np_at_ok(args)
}

fn ifindex(sb: &Sandbox, name: &str) -> Option<u64> {
    let v = sb.json("ip -j link show");
    v.as_array()?
        .iter()
        .find(|l| l["ifname"] == name)
        .and_then(|l| l["ifindex"].as_u64())
}

/// A shell snippet run as user nobody inside the sandbox, under umask 000.
fn as_nobody(sb: &Sandbox, script: &str) -> Output {
    sb.run(
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            "sh",
            "-c",
            &format!("umask 000; {script}"),
        ],
    )
}

#[test]
fn under_umask_000_records_stay_private_and_nobody_cannot_plant_one() {
    let sb = Sandbox::new();
    let s = sb.script(
        "u1.rhai",
        "netns(\"un1\");\nlet br = bridge(\"ub0\");\nbr.up();\n",
    );
    sb.ok(&format!("umask 000; {BIN} -q up {s}"));
    let dir = sb.ok("ls -d /run/netplumb/netns-*").trim().to_string();
    let modes = sb.ok(&format!(
        "stat -c '%n %a %U' /run/netplumb {dir} {dir}/u1.jsonl {dir}/u1.lock {dir}/u1.up.json"
    ));
    let want = format!(
        "/run/netplumb 755 root\n{dir} 700 root\n{dir}/u1.jsonl 600 root\n{dir}/u1.lock 600 root\n{dir}/u1.up.json 600 root\n"
    );
    assert_eq!(modes, want);
    sb.ok("ip link add victim0 type bridge");
    let victim = ifindex(&sb, "victim0");
    let line = format!(
        r#"{{"add":{{"type":"link","ns":"Host","name":"victim0","kind":"bridge","index":{}}}}}"#,
        victim.expect("victim0")
    );
    // Nobody cannot read, write or add to root's records.
    for evil in [
        format!("echo '{line}' >> {dir}/u1.jsonl"),
        format!("echo '{line}' > {dir}/evil.jsonl"),
        format!("echo '{line}' > /run/netplumb/evil.jsonl"),
        format!("ls {dir}"),
    ] {
        let o = as_nobody(&sb, &evil);
        assert!(!o.status.success(), "nobody could: {evil}");
    }
    // Nor point root at a directory of theirs, or one they may write to.
    let work = sb.dir.path().display();
    sb.ok(&format!("mkdir -m 777 {work}/pub {work}/open"));
    let o = as_nobody(
        &sb,
        &format!(
            "mkdir -m 700 {work}/pub/theirs && echo '{line}' > {work}/pub/theirs/evil.jsonl && echo '{line}' > {work}/open/evil.jsonl"
        ),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    for (d, why) in [
        (format!("{work}/pub/theirs"), "another user owns it"),
        (format!("{work}/open"), "other users may write to it"),
    ] {
        for args in [&["down", "--all"][..], &["down", "--name", "evil"]] {
            let o = sb
                .cmd(BIN)
                .env("NETPLUMB_STATE_DIR", &d)
                .args(args)
                .output()
                .expect("netplumb");
            let err = text(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{d}: {err}");
            assert!(err.contains(why) && err.contains("chmod 700"), "{d}: {err}");
        }
    }
    assert_eq!(ifindex(&sb, "victim0"), victim, "nothing touched victim0");
    sb.ok(&format!("umask 000; {BIN} -q down --all"));
    assert_eq!(ifindex(&sb, "victim0"), victim, "root's down --all too");
    assert_eq!(ifindex(&sb, "ub0"), None);
    assert_eq!(sb.ok("ip netns list"), "");
}

#[test]
fn a_path_traversal_record_line_is_refused_naming_file_and_line() {
    let sb = Sandbox::new();
    let f = sb.dir.path().join("f");
    std::fs::write(&f, "keep\n").expect("write");
    sb.ok(&format!("mkdir -m 700 {STATE}"));
    let rec = format!(
        "{{\"add\":{{\"type\":\"netns\",\"ns\":\"fine1\"}}}}\n{{\"add\":{{\"type\":\"netns\",\"ns\":\"../..{}\"}}}}\n",
        f.display()
    );
    std::fs::write(sb.dir.path().join("evil.jsonl"), rec).expect("write");
    sb.ok(&format!(
        "cp {}/evil.jsonl {STATE}/ && chmod 600 {STATE}/evil.jsonl",
        sb.dir.path().display()
    ));
    for args in [&["down", "--name", "evil"][..], &["down", "--all"]] {
        let o = np(&sb, args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        for want in [
            format!("{STATE}/evil.jsonl"),
            "line 2".into(),
            "down --force-forget evil".into(),
        ] {
            assert!(err.contains(&want), "{args:?}: `{want}` in {err}");
        }
        assert_eq!(std::fs::read_to_string(&f).ok().as_deref(), Some("keep\n"));
    }
    np_ok(&sb, &["down", "--force-forget", "evil"]);
    assert!(!sb.ok(&format!("ls {STATE}")).contains("evil.jsonl"));
    assert!(f.exists());
}

#[test]
fn symlinked_record_files_are_not_followed() {
    let sb = Sandbox::new();
    sb.ok(&format!(
        "mkdir -m 700 {STATE} && for v in up tmp uptmp rec lock; do echo keep > /run/victim-$v; done"
    ));
    let s4 = sb.script("s4.rhai", "let br = bridge(\"sb4\");\nbr.up();\n");
    // `exec` keeps the shell's pid: the temporary names are predictable.
    sb.ok(&format!(
        "ln -s /run/victim-up {STATE}/s4.up.json && \
         sh -c 'ln -s /run/victim-tmp {STATE}/s4.tmp.$$ && ln -s /run/victim-uptmp {STATE}/s4.up.tmp.$$ && \
                NETPLUMB_STATE_DIR={STATE} exec {BIN} -q up {s4}'"
    ));
    assert!(ifindex(&sb, "sb4").is_some());
    sb.ok(&format!(
        "test -f {STATE}/s4.up.json && ! test -L {STATE}/s4.up.json"
    ));
    // The record and the lock themselves are opened without following.
    for (name, file) in [("s5", "s5.jsonl"), ("s6", "s6.lock")] {
        let victim = if name == "s5" { "rec" } else { "lock" };
        sb.ok(&format!("ln -s /run/victim-{victim} {STATE}/{file}"));
        let s = sb.script(&format!("{name}.rhai"), &format!("bridge(\"b{name}\");\n"));
        let o = np(&sb, &["up", &s]);
        assert_eq!(o.status.code(), Some(1), "{file}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains(STATE), "{}", text(&o.stderr));
        assert_eq!(
            ifindex(&sb, &format!("b{name}")),
            None,
            "refused before any change"
        );
    }
    assert_eq!(
        sb.ok(
            "cat /run/victim-up /run/victim-tmp /run/victim-uptmp /run/victim-rec /run/victim-lock"
        ),
        "keep\n".repeat(5)
    );
    np_ok(&sb, &["down", "--name", "s4"]);
    assert_eq!(ifindex(&sb, "sb4"), None);
}

#[test]
fn a_damaged_and_a_truncated_record_block_only_their_own_topology() {
    let sb = Sandbox::new();
    for (name, n) in [("o1", 1), ("o2", 2), ("o3", 3)] {
        let s = sb.script(
            &format!("{name}.rhai"),
            &format!(
                "let c = netns(\"on{n}\");\nlet v = veth(\"ov{n}\", c, \"eth0\");\nv.addr(\"10.5{n}.0.1/24\").up();\nv.peer.addr(\"10.5{n}.0.2/24\").up();\nmasquerade(\"10.5{n}.0.0/24\");\n"
            ),
        );
        np_ok(&sb, &["-q", "up", &s]);
    }
    // o1: a garbage line in the middle; o2: its last line cut short.
    sb.ok(&format!(
        "sed -i '2i this is not json' {STATE}/o1.jsonl && \
         head -c -25 {STATE}/o2.jsonl > /run/o2 && cat /run/o2 > {STATE}/o2.jsonl"
    ));
    let lines = sb
        .ok(&format!("wc -l < {STATE}/o2.jsonl"))
        .trim()
        .to_string();
    let t = sb.script(
        "t1.rhai",
        "let c = netns(\"tn1\");\nlet v = veth(\"tv1\", c, \"eth0\");\nv.up();\n",
    );
    np_ok(&sb, &["up", &t]);
    assert!(ifindex(&sb, "tv1").is_some());
    np_ok(&sb, &["down", &t]);
    assert_eq!(ifindex(&sb, "tv1"), None);
    let o = np(&sb, &["down", "--all"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let cut = format!("line {}", lines.parse::<usize>().unwrap_or(0) + 1);
    for want in [
        format!("{STATE}/o1.jsonl"),
        "line 2".into(),
        "down --force-forget o1".into(),
        format!("{STATE}/o2.jsonl"),
        cut,
        "cut short".into(),
        "down --force-forget o2".into(),
    ] {
        assert!(err.contains(&want), "`{want}` in:\n{err}");
    }
    // It went on past them: o3 is gone, o1's and o2's objects are not.
    assert_eq!(ifindex(&sb, "ov3"), None, "{err}");
    assert!(ifindex(&sb, "ov1").is_some() && ifindex(&sb, "ov2").is_some());
    let nft = sb.ok("nft list tables");
    assert!(
        !nft.contains("netplumb-o3") && nft.contains("netplumb-o1"),
        "{nft}"
    );
    np_ok(&sb, &["down", "--force-forget", "o1"]);
    np_ok(&sb, &["down", "--force-forget", "o2"]);
    let left = sb.ok(&format!("ls {STATE}"));
    assert!(!left.contains(".jsonl"), "{left}");
}

#[test]
fn an_empty_state_dir_variable_means_the_default_never_the_cwd() {
    let sb = Sandbox::new();
    let work = sb.dir.path().display().to_string();
    let s = sb.script("e1.rhai", "bridge(\"eb1\");\n");
    sb.ok(&format!("cd {work} && NETPLUMB_STATE_DIR= {BIN} -q up {s}"));
    assert!(ifindex(&sb, "eb1").is_some());
    let here = sb.ok(&format!("ls -A {work}"));
    assert_eq!(here.trim(), "e1.rhai", "nothing written into the cwd");
    sb.ok("ls /run/netplumb/netns-*/e1.jsonl");
    sb.ok(&format!(
        "cd {work} && NETPLUMB_STATE_DIR= {BIN} -q down --name e1"
    ));
    assert_eq!(ifindex(&sb, "eb1"), None);
}
