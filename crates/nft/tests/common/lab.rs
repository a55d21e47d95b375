//! A small routed lab for real-traffic tests of NAT and filter rules.

use super::dnat;
use super::net::*;
use netplumb_nft::{FilterRule, NatRule, NatTable, NftSocket};

/// X (10.2.0.2) — R — br0 (10.1.0.1/24) with C1 (10.1.0.2) and C2 (10.1.0.3).
/// C1 listens on tcp 80 and 81, X on 90. R forwards.
pub struct Lab {
    pub x: Ns,
    pub r: Ns,
    pub c1: Ns,
    pub c2: Ns,
}

pub fn reachable(from: &Ns, addr: &str) -> bool {
    within(std::time::Duration::from_secs(5), || {
        from.sh(&format!("ping -c1 -W1 {addr}")).0
    })
    .is_some()
}

pub fn lab() -> Lab {
    let l = Lab {
        x: Ns::new(),
        r: Ns::new(),
        c1: Ns::new(),
        c2: Ns::new(),
    };
    l.r.ok(
        "ip link add br0 type bridge && ip addr add 10.1.0.1/24 dev br0 && ip link set br0 up && \
         sysctl -qw net.ipv4.ip_forward=1",
    );
    veth(&l.x, "x0", &l.r, "rx");
    l.x.ok("ip addr add 10.2.0.2/24 dev x0 && ip route add default via 10.2.0.1");
    l.r.ok("ip addr add 10.2.0.1/24 dev rx");
    for (c, port, addr) in [(&l.c1, "v1", "10.1.0.2"), (&l.c2, "v2", "10.1.0.3")] {
        veth(c, "eth0", &l.r, port);
        l.r.ok(&format!("ip link set {port} master br0"));
        c.ok(&format!(
            "ip addr add {addr}/24 dev eth0 && ip route add default via 10.1.0.1"
        ));
    }
    tcp_listen(&l.c1, 80);
    tcp_listen(&l.c1, 81);
    tcp_listen(&l.x, 90);
    for (from, to) in [(&l.x, "10.1.0.2"), (&l.c2, "10.1.0.2"), (&l.c1, "10.2.0.2")] {
        assert!(reachable(from, to), "no path to {to}");
    }
    for (ns, addr, port) in [
        (&l.c1, "10.1.0.2", 80),
        (&l.c1, "10.1.0.2", 81),
        (&l.x, "10.2.0.2", 90),
    ] {
        assert!(
            within(std::time::Duration::from_secs(5), || tcp_connects(
                ns, addr, port, 1.0
            ))
            .is_some(),
            "listener {addr}:{port} never came up"
        );
    }
    l
}

pub fn apply(l: &Lab, filter: Vec<FilterRule>) {
    apply_nat(l, vec![dnat(1, 8080, "10.1.0.2", Some(80))], filter);
}

pub fn apply_nat(l: &Lab, rules: Vec<NatRule>, filter: Vec<FilterRule>) {
    let t = NatTable {
        name: "np".into(),
        rules,
        filter,
        ..Default::default()
    };
    l.r.with(|| {
        NftSocket::open()
            .expect("open")
            .replace_table(&t)
            .expect("replace")
    });
}
