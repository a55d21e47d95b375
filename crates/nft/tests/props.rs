//! Property tests (bounded, run in CI): the encoder and the reply parsers
//! never panic, whatever the table or the bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netplumb_nft::{
    DnatMapping, Endpoint, FilterMatch, FilterProto, FilterRule, L4Proto, NatRule, NatTable,
    RandomLoss, fuzz_encode, fuzz_parse,
};
use proptest::prelude::*;

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|x| IpAddr::V4(Ipv4Addr::from(x))),
        any::<u128>().prop_map(|x| IpAddr::V6(Ipv6Addr::from(x))),
    ]
}

fn ifname() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-z0-9*]{0,20}")
}

fn rule() -> impl Strategy<Value = NatRule> {
    prop_oneof![
        (ip(), 0u8..=128, ifname()).prop_map(|(a, l, oif)| NatRule::Masquerade {
            src: ipnet::IpNet::new(a, l.min(if a.is_ipv4() { 32 } else { 128 })).unwrap(),
            oif,
            tag: 0
        }),
        (ip(), 0u8..=128).prop_map(|(a, l)| NatRule::Hairpin {
            subnet: ipnet::IpNet::new(a, l.min(if a.is_ipv4() { 32 } else { 128 })).unwrap(),
            tag: 0
        }),
        "[a-z0-9*]{0,20}".prop_map(|oif| NatRule::LocalhostMasquerade { oif, tag: 0 }),
        (ip(), 0u8..=128, ip(), ifname()).prop_map(|(a, l, to, oif)| NatRule::Snat {
            src: ipnet::IpNet::new(a, l.min(if a.is_ipv4() { 32 } else { 128 })).unwrap(),
            to,
            oif,
            tag: 0
        }),
        (
            any::<bool>(),
            proptest::option::of(ip()),
            ifname(),
            any::<u16>(),
            any::<u16>(),
            ip(),
            proptest::option::of(any::<u16>())
        )
            .prop_map(|(udp, daddr, iif, a, b, to_addr, to_port)| NatRule::Dnat(
                DnatMapping {
                    proto: if udp { L4Proto::Udp } else { L4Proto::Tcp },
                    daddr,
                    iif,
                    ports: (a, b),
                    to_addr,
                    to_port,
                    tag: 0,
                }
            )),
    ]
}

fn endpoint() -> impl Strategy<Value = Option<Endpoint>> {
    proptest::option::of(prop_oneof![
        (ip(), 0u8..=128).prop_map(|(a, l)| Endpoint::Net(
            ipnet::IpNet::new(a, l.min(if a.is_ipv4() { 32 } else { 128 })).unwrap()
        )),
        "[a-z0-9*]{0,20}".prop_map(Endpoint::Iface),
    ])
}

fn filter_rule() -> impl Strategy<Value = FilterRule> {
    let proto = prop_oneof![
        Just(None),
        Just(Some(FilterProto::Tcp)),
        Just(Some(FilterProto::Udp)),
        Just(Some(FilterProto::Icmp)),
    ];
    prop_oneof![
        (
            any::<bool>(),
            endpoint(),
            endpoint(),
            proto,
            proptest::option::of((any::<u16>(), any::<u16>()))
        )
            .prop_map(|(allow, from, to, proto, ports)| {
                let m = FilterMatch {
                    from,
                    to,
                    proto,
                    ports,
                    tag: 0,
                };
                if allow {
                    FilterRule::Allow(m)
                } else {
                    FilterRule::Deny(m)
                }
            }),
        "[a-z0-9*]{0,20}".prop_map(|bridge| FilterRule::Isolate { bridge, tag: 0 }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn encoder_never_panics(
        rules in proptest::collection::vec(rule(), 0..40),
        filter in proptest::collection::vec(filter_rule(), 0..30),
        loss in proptest::collection::vec(("[a-z0-9*]{0,20}", any::<u8>()), 0..3),
        name in "[a-z][a-z0-9-]{0,30}",
        ud in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let rules: Vec<NatRule> = rules.into_iter().enumerate().map(|(i, mut r)| {
            *r.tag_mut() = i;
            r
        }).collect();
        let loss = loss
            .into_iter()
            .map(|(iface, percent)| RandomLoss { iface, percent, tag: 0 })
            .collect();
        let t = NatTable { name, rules, userdata: ud, filter, loss, ..Default::default() };
        let _ = t.validate();
        let _ = netplumb_nft::render(&t);
        prop_assert!(fuzz_encode(&t) > 0);
    }

    /// What a second `up` compares instead of the elements: equal exactly
    /// when the `nft -f` scripts are, after one rule of a table is replaced.
    #[test]
    fn fingerprints_differ_exactly_when_the_rendered_scripts_do(
        rules in proptest::collection::vec(rule(), 1..30),
        pick in any::<proptest::sample::Index>(),
        field in 0u8..8,
        port in any::<u16>(),
        addr in ip(),
        edit in rule(),
    ) {
        let table = |rules: Vec<NatRule>| NatTable {
            name: "t".into(),
            rules: rules.into_iter().enumerate().map(|(i, mut r)| {
                *r.tag_mut() = i;
                r
            }).collect(),
            ..Default::default()
        };
        // One value of a mapping changed (any rule else replaced whole): a
        // value the fingerprint left out would show here.
        let mut edited = rules.clone();
        let i = pick.index(edited.len());
        match &mut edited[i] {
            NatRule::Dnat(m) => match field {
                0 => m.ports.0 = port,
                1 => m.ports.1 = port,
                2 => m.to_addr = addr,
                3 => m.to_port = Some(port),
                4 => m.to_port = None,
                5 => m.daddr = Some(addr),
                6 => m.daddr = None,
                _ => m.proto = if m.proto == L4Proto::Tcp { L4Proto::Udp } else { L4Proto::Tcp },
            },
            other => *other = edit,
        }
        let (a, b) = (table(rules), table(edited));
        prop_assert_eq!(
            netplumb_nft::render(&a) == netplumb_nft::render(&b),
            netplumb_nft::fingerprint(&a) == netplumb_nft::fingerprint(&b)
        );
        prop_assert_eq!(netplumb_nft::fingerprint(&a), netplumb_nft::fingerprint(&a.clone()));
    }

    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = fuzz_parse(&bytes);
    }

    #[test]
    fn parsers_never_panic_on_netlink_shaped_input(len in 0u32..4096, ty in any::<u16>(), rest in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut b = Vec::new();
        b.extend_from_slice(&len.to_ne_bytes());
        b.extend_from_slice(&ty.to_ne_bytes());
        b.extend_from_slice(&rest);
        let _ = fuzz_parse(&b);
    }
}
