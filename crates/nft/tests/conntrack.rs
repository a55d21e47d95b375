//! Conntrack on remap (issue 17): a UDP flow keeps going to the backend its
//! first packet was DNAT'd to until its conntrack entry is deleted; after
//! delete_conntrack it reaches the new backend within a second.

mod common;

use std::time::Duration;

use common::dnat;
use common::net::*;
use netplumb_nft::{CtMatch, DnatMapping, L4Proto, NatRule, NatTable, NftSocket};

fn table(to: &str) -> NatTable {
    NatTable {
        name: "np".into(),
        rules: vec![NatRule::Dnat(DnatMapping {
            proto: L4Proto::Udp,
            ..match dnat(1, 5000, to, Some(5000)) {
                NatRule::Dnat(m) => m,
                _ => unreachable!(),
            }
        })],
        ..Default::default()
    }
}

#[test]
fn a_udp_flow_follows_a_remap_once_its_entries_are_deleted() {
    let (client, router, backends) = (Ns::new(), Ns::new(), Ns::new());
    veth(&client, "c0", &router, "r0");
    veth(&router, "r1", &backends, "b0");
    client.ok("ip addr add 10.0.1.2/24 dev c0 && ip route add default via 10.0.1.1");
    router.ok(
        "ip addr add 10.0.1.1/24 dev r0 && ip addr add 10.0.2.1/24 dev r1 && \
         sysctl -qw net.ipv4.ip_forward=1",
    );
    backends.ok(
        "ip addr add 10.0.2.2/24 dev b0 && ip addr add 10.0.2.3/24 dev b0 && \
         ip route add default via 10.0.2.1",
    );
    let dir = Scratch::new("ct");
    let (old, new) = (dir.file("old"), dir.file("new"));
    udp_sink(&backends, &dir, "10.0.2.2", 5000, &old);
    udp_sink(&backends, &dir, "10.0.2.3", 5000, &new);
    router.with(|| {
        NftSocket::open()
            .expect("open")
            .replace_table(&table("10.0.2.2"))
            .expect("first mapping")
    });
    udp_flow(&client, &dir, "10.0.1.1", 5000, 40000);
    assert!(
        within(Duration::from_secs(5), || lines(&old) >= 3).is_some(),
        "the flow never reached the first backend"
    );
    router.with(|| {
        NftSocket::open()
            .expect("open")
            .replace_table(&table("10.0.2.3"))
            .expect("remap")
    });
    // without deleting the entry the flow stays where it was
    let before = lines(&old);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lines(&new), 0, "the flow moved without a conntrack delete");
    assert!(lines(&old) > before + 10, "the flow stopped altogether");
    let (deleted, other, at) = router.with(|| {
        let mut s = NftSocket::open().expect("open");
        let m = CtMatch {
            v6: false,
            proto: L4Proto::Udp,
            daddr: None,
            ports: (5000, 5000),
        };
        let other = s
            .delete_conntrack(&CtMatch {
                ports: (5001, 6000),
                ..m.clone()
            })
            .expect("delete other ports");
        let deleted = s.delete_conntrack(&m).expect("delete");
        (deleted, other, std::time::Instant::now())
    });
    assert_eq!((other, deleted), (0, 1));
    assert!(
        within(Duration::from_secs(1), || lines(&new) > 0).is_some(),
        "the new backend got nothing within 1 s of the delete"
    );
    eprintln!("new backend reached {:?} after the delete", at.elapsed());
    let stopped = lines(&old);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lines(&old), stopped, "the old backend still gets the flow");
}
