//! Commands that need no root: plan as an unprivileged user, --sandbox as an
//! unprivileged user, usage errors.

mod common;

use std::process::Command;

use common::{BIN, as_nobody, script_path, text};

#[test]
fn plan_as_unprivileged_user_prints_ip_commands() {
    let o = as_nobody(&["plan", &script_path("scripts/seed.rhai")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let want = [
        "ip netns add foons",
        "ip link add veth0 type veth peer name eth0 netns foons",
        "ip link add foobr0 type bridge",
        "ip link set veth0 master foobr0",
        "ip -n foons addr add 172.18.0.20/16 dev eth0",
        "ip addr add 172.18.0.1/16 dev foobr0",
        "ip -n foons route add default via 172.18.0.1",
    ];
    for w in want {
        assert!(out.lines().any(|l| l == w), "missing `{w}` in plan:\n{out}");
    }
    // Apply order: the namespace before the veth into it, the address before the route.
    let idx = |s: &str| out.lines().position(|l| l == s).unwrap();
    assert!(idx(want[0]) < idx(want[1]));
    assert!(idx(want[4]) < idx(want[6]));
}

#[test]
fn sandbox_as_unprivileged_user_builds_and_pings() {
    let o = as_nobody(&["--sandbox", "up", &script_path("scripts/seed.rhai")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("foons reaches the bridge at 172.18.0.1"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn up_without_root_or_sandbox_says_what_to_do() {
    let o = as_nobody(&["up", &script_path("scripts/seed.rhai")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("run as root or add --sandbox"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn usage_errors_exit_2() {
    let o = Command::new(BIN).args(["up"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(BIN).args(["frobnicate"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(BIN).args(["--version"]).output().unwrap();
    assert!(o.status.success() && text(&o.stdout).starts_with("netplumb "));
}

#[test]
fn completions_for_bash() {
    let o = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(text(&o.stdout).contains("netplumb"));
}
