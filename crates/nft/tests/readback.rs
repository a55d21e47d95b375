//! Typed read-back (issue 13): a table made by this crate reads back as the
//! same rules (normal form); iptables-nft's and plain nft NAT tables read
//! back as the rules netplumb can express, plus a description of the rest.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::*;
use netplumb_nft::{
    DnatMapping, Endpoint, Family, FilterMatch, FilterProto, FilterRule, L4Proto, NatRule,
    NatTable, NftSocket, RandomLoss,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[test]
fn own_table_reads_back_as_the_same_rules() {
    let t = kitchen_sink("np");
    let t2 = t.clone();
    let rb = in_netns(move |_| {
        let mut s = NftSocket::open().expect("open");
        s.replace_table(&t2).expect("replace");
        s.read_table("np").expect("read").expect("exists")
    });
    assert_eq!(rb.unrecognized, Vec::<String>::new());
    assert_eq!(rb.table, t.normalized());
    assert_eq!(rb.table.userdata, t.userdata);
    assert_eq!(rb.info.marker(), Some(&t.userdata[..]));
}

fn v4() -> impl Strategy<Value = IpAddr> {
    (1u8..=223, any::<[u8; 3]>())
        .prop_map(|(a, [b, c, d])| IpAddr::V4(Ipv4Addr::new(a, b, c, d.max(1))))
}

fn v6() -> impl Strategy<Value = IpAddr> {
    (any::<u16>(), any::<u64>()).prop_map(|(a, b)| {
        IpAddr::V6(Ipv6Addr::from(
            ((0xfd00u128 | a as u128 & 0xff) << 112) | b as u128 | 1,
        ))
    })
}

fn ifname() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,14}"
}

fn ports() -> impl Strategy<Value = (u16, u16)> {
    prop_oneof![
        (1u16..=65535).prop_map(|p| (p, p)),
        (1u16..=65000, 0u16..500).prop_map(|(lo, n)| (lo, lo.saturating_add(n))),
    ]
}

fn mapping(v6_: bool) -> BoxedStrategy<NatRule> {
    let addr = if v6_ { v6().boxed() } else { v4().boxed() };
    (
        any::<bool>(),
        proptest::option::of(addr.clone()),
        proptest::option::of(ifname()),
        ports(),
        addr,
        proptest::option::of(1u16..=65535),
    )
        .prop_map(|(udp, daddr, iif, ports, to_addr, to_port)| {
            NatRule::Dnat(DnatMapping {
                proto: if udp { L4Proto::Udp } else { L4Proto::Tcp },
                daddr,
                iif,
                ports,
                to_addr,
                to_port,
                tag: 0,
            })
        })
        .boxed()
}

fn net(v6_: bool) -> BoxedStrategy<ipnet::IpNet> {
    if v6_ {
        (v6(), 8u8..=128)
            .prop_map(|(a, l)| ipnet::IpNet::new(a, l).expect("net"))
            .boxed()
    } else {
        (v4(), 1u8..=32)
            .prop_map(|(a, l)| ipnet::IpNet::new(a, l).expect("net"))
            .boxed()
    }
}

fn rule() -> impl Strategy<Value = NatRule> {
    any::<bool>().prop_flat_map(|v6_| {
        let to = if v6_ { v6().boxed() } else { v4().boxed() };
        prop_oneof![
            6 => mapping(v6_),
            1 => (net(v6_), proptest::option::of(ifname()))
                .prop_map(|(src, oif)| NatRule::Masquerade { src, oif, tag: 0 }),
            1 => (net(v6_), to, proptest::option::of(ifname()))
                .prop_map(|(src, to, oif)| NatRule::Snat { src, to, oif, tag: 0 }),
            1 => net(v6_).prop_map(|subnet| NatRule::Hairpin { subnet, tag: 0 }),
            1 => ifname().prop_map(|oif| NatRule::LocalhostMasquerade { oif, tag: 0 }),
        ]
    })
}

fn endpoint(v6_: bool) -> impl Strategy<Value = Option<Endpoint>> {
    proptest::option::of(prop_oneof![
        net(v6_).prop_map(Endpoint::Net),
        ifname().prop_map(Endpoint::Iface),
    ])
}

fn filter_rule() -> impl Strategy<Value = FilterRule> {
    (any::<bool>(), any::<bool>()).prop_flat_map(|(v6_, accept)| {
        let proto = prop_oneof![
            Just(None),
            Just(Some(FilterProto::Tcp)),
            Just(Some(FilterProto::Udp)),
            Just(Some(FilterProto::Icmp)),
        ];
        prop_oneof![
            8 => (endpoint(v6_), endpoint(v6_), proto, proptest::option::of(ports()))
                .prop_map(move |(from, to, proto, ports)| {
                    let ports = ports.filter(|_| {
                        matches!(proto, Some(FilterProto::Tcp | FilterProto::Udp))
                    });
                    let m = FilterMatch { from, to, proto, ports, tag: 0 };
                    if accept { FilterRule::Allow(m) } else { FilterRule::Deny(m) }
                }),
            1 => ifname().prop_map(|bridge| FilterRule::Isolate { bridge, tag: 0 }),
        ]
    })
}

/// Keeps each rule that does not clash with those kept before.
fn valid_table(rules: Vec<NatRule>) -> NatTable {
    let mut t = NatTable {
        name: "np".into(),
        userdata: b"netplumb:prop".to_vec(),
        ..Default::default()
    };
    for (i, mut r) in rules.into_iter().enumerate() {
        *r.tag_mut() = i;
        t.rules.push(r);
        if t.validate().is_err() {
            t.rules.pop();
        }
    }
    t
}

#[test]
fn any_valid_table_round_trips_through_the_kernel() {
    in_netns(|_| {
        let s = std::cell::RefCell::new(NftSocket::open().expect("open"));
        let mut runner = TestRunner::new(Config {
            cases: 150,
            ..Config::default()
        });
        runner
            .run(
                &(
                    proptest::collection::vec(rule(), 0..40),
                    proptest::collection::vec(filter_rule(), 0..30),
                    proptest::option::of(1u8..=100),
                ),
                |(rules, filter, loss)| {
                    let mut t = valid_table(rules);
                    t.filter = filter;
                    t.loss = loss
                        .map(|percent| RandomLoss {
                            iface: "lo".into(),
                            percent,
                            tag: 0,
                        })
                        .into_iter()
                        .collect();
                    let mut s = s.borrow_mut();
                    s.replace_table(&t).expect("replace");
                    let rb = s.read_table("np").expect("read").expect("exists");
                    prop_assert_eq!(&rb.unrecognized, &Vec::<String>::new());
                    prop_assert_eq!(rb.table, t.normalized());
                    Ok(())
                },
            )
            .expect("round trip");
    });
}

fn sh(ns: &Netns, script: &str) {
    let (ok, out, err) = ns.sh(script);
    assert!(ok, "`{script}` failed: {out}{err}");
}

#[test]
fn iptables_nft_nat_table_reads_as_nat_rules() {
    let (rb, tables) = in_netns(|ns| {
        sh(
            ns,
            "iptables-nft -t nat -A PREROUTING -p tcp --dport 10050 -j DNAT --to-destination 172.17.0.3:10050 && \
             iptables-nft -t nat -A POSTROUTING -s 172.18.0.0/16 ! -d 172.18.0.0/16 -j MASQUERADE && \
             iptables-nft -t nat -A PREROUTING -i eth1 -p udp --dport 5000:5010 -d 10.0.0.1 -j DNAT --to-destination 172.17.0.4 && \
             iptables-nft -t nat -A POSTROUTING -s 172.19.0.0/24 ! -d 172.19.0.0/24 -o eth0 -j SNAT --to-source 192.168.1.10 && \
             iptables-nft -t nat -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE && \
             iptables-nft -t nat -N DOCKER && \
             iptables-nft -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER && \
             iptables-nft -t nat -A DOCKER -i docker0 -j RETURN && \
             iptables-nft -t nat -A DOCKER ! -i docker0 -p tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80 && \
             ip6tables-nft -t nat -A PREROUTING -p tcp --dport 80 -j DNAT --to-destination [fd00::2]:8080",
        );
        let mut s = NftSocket::open().expect("open");
        let tables: Vec<_> = s
            .list_tables()
            .expect("list")
            .into_iter()
            .map(|t| (t.family, t.name.clone(), t.marker().is_some()))
            .collect();
        (
            s.read_table_in(Family::Ip, "nat")
                .expect("read")
                .expect("exists"),
            tables,
        )
    });
    assert_eq!(
        tables,
        [
            (Family::Ip, "nat".to_string(), false),
            (Family::Ip6, "nat".to_string(), false)
        ]
    );
    let m = |proto, daddr: Option<&str>, iif: Option<&str>, ports, to: &str, to_port| {
        NatRule::Dnat(DnatMapping {
            proto,
            daddr: daddr.map(|d| d.parse().expect("a")),
            iif: iif.map(Into::into),
            ports,
            to_addr: to.parse().expect("a"),
            to_port,
            tag: 0,
        })
    };
    let want = NatTable {
        name: "nat".into(),
        rules: vec![
            m(
                L4Proto::Tcp,
                None,
                None,
                (10050, 10050),
                "172.17.0.3",
                Some(10050),
            ),
            m(
                L4Proto::Udp,
                Some("10.0.0.1"),
                Some("eth1"),
                (5000, 5010),
                "172.17.0.4",
                None,
            ),
            NatRule::Masquerade {
                src: "172.18.0.0/16".parse().expect("net"),
                oif: None,
                tag: 0,
            },
            NatRule::Snat {
                src: "172.19.0.0/24".parse().expect("net"),
                to: "192.168.1.10".parse().expect("a"),
                oif: Some("eth0".into()),
                tag: 0,
            },
        ],
        ..Default::default()
    }
    .normalized();
    assert_eq!(rb.table, want);
    assert_eq!(
        rb.unrecognized,
        [
            "PREROUTING → DOCKER (reached by `fib daddr type local counter jump DOCKER`): iifname \"docker0\" counter return",
            "PREROUTING → DOCKER (reached by `fib daddr type local counter jump DOCKER`): iifname != \"docker0\" meta l4proto tcp tcp dport 8080 counter dnat to 172.17.0.2:80",
            "POSTROUTING: oifname != \"docker0\" ip saddr 172.17.0.0/16 counter masquerade",
        ]
    );
}

#[test]
fn plain_nft_nat_rules_read_as_nat_rules() {
    let rb = in_netns(|ns| {
        let (ok, _, err) = ns.nft(
            &["-f", "-"],
            Some(
                "table inet plain {
                   chain pre {
                     type nat hook prerouting priority dstnat;
                     tcp dport 2222 dnat ip to 10.0.0.5:22
                     ip daddr 10.1.1.1 udp dport 53 dnat ip to 10.0.0.53
                     tcp dport { 80, 443, 1000-1010 } dnat ip to 10.0.0.80
                     ip6 daddr fd00::1 tcp dport 8000-8100 dnat ip6 to [fd00::80]:80
                     iifname \"eth*\" tcp dport 9 dnat ip to 10.0.0.9:99
                     tcp dport 7 counter accept
                   }
                   chain out {
                     type nat hook output priority -100;
                     tcp dport 2222 dnat ip to 10.0.0.5:22
                     tcp dport 3333 dnat ip to 10.0.0.5:33
                   }
                   chain post {
                     type nat hook postrouting priority srcnat;
                     ip saddr 10.0.0.0/24 ip daddr != 10.0.0.0/24 masquerade
                     ip6 saddr fd00::/64 ip6 daddr != fd00::/64 oifname \"eth0\" snat ip6 to fd00::1
                     ip saddr 10.0.0.0/24 ip daddr != 10.0.0.0/24 masquerade random
                   }
                 }",
            ),
        );
        assert!(ok, "{err}");
        let mut s = NftSocket::open().expect("open");
        s.read_table("plain").expect("read").expect("exists")
    });
    let m = |proto, daddr: Option<&str>, ports, to: &str, to_port| {
        NatRule::Dnat(DnatMapping {
            proto,
            daddr: daddr.map(|d| d.parse().expect("a")),
            iif: None,
            ports,
            to_addr: to.parse().expect("a"),
            to_port,
            tag: 0,
        })
    };
    let want = NatTable {
        name: "plain".into(),
        rules: vec![
            m(L4Proto::Tcp, None, (2222, 2222), "10.0.0.5", Some(22)),
            m(L4Proto::Udp, Some("10.1.1.1"), (53, 53), "10.0.0.53", None),
            m(L4Proto::Tcp, None, (80, 80), "10.0.0.80", None),
            m(L4Proto::Tcp, None, (443, 443), "10.0.0.80", None),
            m(L4Proto::Tcp, None, (1000, 1010), "10.0.0.80", None),
            m(
                L4Proto::Tcp,
                Some("fd00::1"),
                (8000, 8100),
                "fd00::80",
                Some(80),
            ),
            NatRule::Masquerade {
                src: "10.0.0.0/24".parse().expect("net"),
                oif: None,
                tag: 0,
            },
            NatRule::Snat {
                src: "fd00::/64".parse().expect("net"),
                to: "fd00::1".parse().expect("a"),
                oif: Some("eth0".into()),
                tag: 0,
            },
        ],
        ..Default::default()
    }
    .normalized();
    assert_eq!(rb.table, want);
    assert_eq!(
        rb.unrecognized,
        [
            "pre: iifname \"eth*\" meta l4proto tcp tcp dport 9 dnat ip to 10.0.0.9:99",
            "pre: meta l4proto tcp tcp dport 7 counter accept",
            "post: meta nfproto ipv4 ip saddr 10.0.0.0/24 ip daddr != 10.0.0.0/24 masquerade random",
            "out: meta l4proto tcp tcp dport 3333 dnat ip to 10.0.0.5:33 (only for locally generated traffic)",
        ]
    );
}

#[test]
fn a_dnat_rule_an_earlier_rule_shadows_is_not_a_mapping() {
    let rb = in_netns(|ns| {
        sh(
            ns,
            "iptables-nft -t nat -A PREROUTING -p tcp --dport 10050 -j DNAT --to-destination 172.17.0.3:10050 && \
             iptables-nft -t nat -A PREROUTING -d 10.200.0.11 -p tcp --dport 10050 -j DNAT --to-destination 172.17.0.4:10050 && \
             iptables-nft -t nat -A PREROUTING -d 10.200.0.12 -p tcp --dport 10051 -j DNAT --to-destination 172.17.0.4:10050 && \
             iptables-nft -t nat -A PREROUTING -p tcp --dport 10051 -j DNAT --to-destination 172.17.0.5:10050",
        );
        let mut s = NftSocket::open().expect("open");
        s.read_table_in(Family::Ip, "nat")
            .expect("read")
            .expect("exists")
    });
    // the first rule wins: 10.200.0.11:10050 never reaches the second; a
    // specific rule before a general one is fine
    let daddrs: Vec<Option<IpAddr>> = rb
        .table
        .rules
        .iter()
        .filter_map(|r| match r {
            NatRule::Dnat(m) => Some(m.daddr),
            _ => None,
        })
        .collect();
    assert_eq!(daddrs.len(), 3, "{:?}", rb.table.rules);
    assert!(!daddrs.contains(&Some("10.200.0.11".parse().expect("a"))));
    assert_eq!(rb.unrecognized.len(), 1, "{:?}", rb.unrecognized);
    assert!(
        rb.unrecognized[0].contains("ip daddr 10.200.0.11")
            && rb.unrecognized[0].contains("an earlier rule takes the same port"),
        "{:?}",
        rb.unrecognized
    );
}
