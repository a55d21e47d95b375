//! Issue 19: one script across several machines. The machines are
//! simulated (tests/common/machines.rs): namespaces with their own /run,
//! joined by an underlay bridge, reached through a stand-in for ssh.

mod common;

use common::Sandbox;
use common::machines::{machines, ssh_script};

#[test]
fn simulated_machines_reach_each_other_and_keep_their_own_run() {
    let sb = Sandbox::new();
    let ms = machines(&sb, &["east", "west"]);
    ms[0].ok(&sb, "touch /run/netplumb/only-east");
    assert!(
        ms[1]
            .sh(&sb, "test -e /run/netplumb/only-east")
            .status
            .code()
            == Some(1)
    );
    let ssh = ssh_script(&sb, &ms);
    let o = sb.ok(&format!("{ssh} root@west ip -j addr show dev eth0"));
    assert!(o.contains("192.0.2.2"), "{o}");
    let o = sb.ok(&format!("{ssh} east netplumb --version"));
    assert!(o.contains("netplumb"), "{o}");
}
