//! Hairpin and localhost masquerade (issue 17 item 1) with real traffic: a
//! container reaches its own and its sibling's published port through the
//! host's address, and 127.0.0.1 on the host reaches a published port.

mod common;

use common::dnat;
use common::lab::*;
use common::net::tcp_connects;
use netplumb_nft::NatRule;

fn published() -> NatRule {
    dnat(1, 8080, "10.1.0.2", Some(80))
}

#[test]
fn a_container_reaches_its_own_and_its_siblings_published_port() {
    let l = lab();
    // the backend's bridge port must send frames back where they came from
    l.r.ok("ip link set v1 type bridge_slave hairpin on");
    // With br_netfilter calling the inet hooks for bridged frames (this
    // kernel's default), conntrack un-NATs the backend's direct answer to a
    // sibling on its way across the bridge. Without it — no br_netfilter
    // module, as on many hosts — only the hairpin masquerade makes it work.
    l.r.ok("sysctl -qw net.bridge.bridge-nf-call-iptables=0");
    apply_nat(&l, vec![published()], vec![]);
    assert!(
        tcp_connects(&l.x, "10.2.0.1", 8080, 2.0),
        "published port from outside"
    );
    assert!(
        !tcp_connects(&l.c2, "10.2.0.1", 8080, 1.0),
        "a sibling got an answer without hairpin masquerade"
    );
    let hairpin = NatRule::Hairpin {
        subnet: "10.1.0.0/24".parse().expect("net"),
        tag: 2,
    };
    apply_nat(&l, vec![published(), hairpin], vec![]);
    assert!(
        tcp_connects(&l.c2, "10.2.0.1", 8080, 2.0),
        "sibling through the host address"
    );
    assert!(
        tcp_connects(&l.c1, "10.2.0.1", 8080, 2.0),
        "the container itself"
    );
    assert!(
        tcp_connects(&l.x, "10.2.0.1", 8080, 2.0),
        "outside still answers"
    );
}

#[test]
fn localhost_reaches_a_published_port_with_route_localnet_and_masquerade() {
    let l = lab();
    l.r.ok("sysctl -qw net.ipv4.conf.br0.route_localnet=1");
    apply_nat(&l, vec![published()], vec![]);
    assert!(
        !tcp_connects(&l.r, "127.0.0.1", 8080, 1.0),
        "127.0.0.1 answered without localhost masquerade"
    );
    let localhost = NatRule::LocalhostMasquerade {
        oif: "br0".into(),
        tag: 2,
    };
    apply_nat(&l, vec![published(), localhost], vec![]);
    assert!(tcp_connects(&l.r, "127.0.0.1", 8080, 2.0), "127.0.0.1:8080");
}
