//! validate(): bad input is found before any kernel contact (no root needed).

mod common;

use common::*;
use netplumb_nft::{DnatMapping, L4Proto, NatRule, NatTable, NftError, render};

fn table(rules: Vec<NatRule>) -> NatTable {
    NatTable {
        name: "np".into(),
        rules,
        userdata: vec![],
        ..Default::default()
    }
}

fn invalid(t: &NatTable) -> (usize, Option<usize>, String) {
    match t.validate() {
        Err(NftError::Invalid {
            tag,
            other_tag,
            msg,
        }) => (tag, other_tag, msg),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn d(m: DnatMapping) -> NatRule {
    NatRule::Dnat(m)
}

#[test]
fn kitchen_sink_is_valid() {
    kitchen_sink("lab").validate().expect("valid");
}

#[test]
fn conflicting_destinations_name_both_tags() {
    let t = table(vec![
        d(mapping(1)),
        d(mapping(2)),
        d(DnatMapping {
            to_addr: "172.17.0.4".parse().expect("a"),
            ..mapping(3)
        }),
    ]);
    let (tag, other, msg) = invalid(&t);
    assert_eq!((tag, other), (3, Some(1)));
    assert!(
        msg.contains("tcp port 80 is already forwarded to 172.17.0.3:80"),
        "{msg}"
    );
}

#[test]
fn overlapping_ranges() {
    let t = table(vec![
        d(DnatMapping {
            ports: (1000, 2000),
            ..mapping(5)
        }),
        d(DnatMapping {
            ports: (1999, 1999),
            ..mapping(6)
        }),
    ]);
    let (tag, other, msg) = invalid(&t);
    assert_eq!((tag, other), (6, Some(5)));
    assert!(msg.contains("1000-2000"), "{msg}");
    // distinct daddr, iif, protocol or family: no conflict
    let t = table(vec![
        d(mapping(1)),
        d(DnatMapping {
            daddr: Some("10.0.0.1".parse().expect("a")),
            to_addr: "172.17.0.9".parse().expect("a"),
            ..mapping(2)
        }),
        d(DnatMapping {
            iif: Some("eth0".into()),
            to_addr: "172.17.0.9".parse().expect("a"),
            ..mapping(3)
        }),
        d(DnatMapping {
            proto: L4Proto::Udp,
            to_addr: "172.17.0.9".parse().expect("a"),
            ..mapping(4)
        }),
        d(DnatMapping {
            to_addr: "fd00::9".parse().expect("a"),
            ..mapping(5)
        }),
    ]);
    t.validate().expect("no conflict");
}

#[test]
fn exact_duplicates_are_merged_not_refused() {
    let t = table(vec![
        d(mapping(1)),
        d(DnatMapping {
            to_port: Some(80),
            ..mapping(2)
        }),
    ]);
    t.validate().expect("same mapping twice is fine");
    assert_eq!(render(&t).matches("80 : 172.17.0.3 . 80").count(), 1);
}

#[test]
fn bad_ports_families_and_names() {
    let cases: Vec<(DnatMapping, &str)> = vec![
        (
            DnatMapping {
                ports: (0, 0),
                ..mapping(1)
            },
            "port 0",
        ),
        (
            DnatMapping {
                ports: (90, 80),
                ..mapping(1)
            },
            "backwards",
        ),
        (
            DnatMapping {
                to_port: Some(0),
                ..mapping(1)
            },
            "port 0",
        ),
        (
            DnatMapping {
                daddr: Some("10.0.0.1".parse().expect("a")),
                to_addr: "fd00::1".parse().expect("a"),
                ..mapping(1)
            },
            "same IP version",
        ),
        (
            DnatMapping {
                iif: Some("a-very-long-ifname".into()),
                ..mapping(1)
            },
            "1 to 15 bytes",
        ),
        (
            DnatMapping {
                iif: Some("eth*".into()),
                ..mapping(1)
            },
            "not a valid interface name",
        ),
        (
            DnatMapping {
                to_addr: "0.0.0.0".parse().expect("a"),
                ..mapping(1)
            },
            "not a usable",
        ),
    ];
    for (m, want) in cases {
        let (tag, _, msg) = invalid(&table(vec![d(m)]));
        assert_eq!(tag, 1);
        assert!(msg.contains(want), "{msg} should mention {want}");
    }
    let masq = NatRule::Masquerade {
        src: "10.0.0.0/8".parse().expect("n"),
        oif: Some("sixteen-bytes-xx".into()),
        tag: 9,
    };
    assert!(invalid(&table(vec![masq])).2.contains("1 to 15 bytes"));
    let snat = NatRule::Snat {
        src: "10.0.0.0/8".parse().expect("n"),
        to: "fd00::1".parse().expect("a"),
        oif: None,
        tag: 4,
    };
    let (tag, _, msg) = invalid(&table(vec![snat]));
    assert_eq!(tag, 4);
    assert!(msg.contains("same IP version"), "{msg}");
    let all = NatRule::Masquerade {
        src: "0.0.0.0/0".parse().expect("n"),
        oif: None,
        tag: 2,
    };
    assert!(invalid(&table(vec![all])).2.contains("matches everything"));
}

#[test]
fn table_name_and_userdata() {
    for bad in ["", "1abc", "has space", "semi;colon", &"x".repeat(256)] {
        let t = NatTable {
            name: bad.into(),
            rules: vec![],
            userdata: vec![],
            ..Default::default()
        };
        assert!(
            matches!(t.validate(), Err(NftError::InvalidTable { .. })),
            "{bad:?} accepted"
        );
    }
    let ok = NatTable {
        name: "my-lab.v2_x".into(),
        rules: vec![],
        userdata: vec![0; 254],
        ..Default::default()
    };
    ok.validate().expect("valid");
    let big = NatTable {
        userdata: vec![0; 255],
        ..ok
    };
    assert!(matches!(big.validate(), Err(NftError::InvalidTable { .. })));
}

#[test]
fn errors_read_as_plain_words() {
    let e = NftError::Kernel {
        errno: libc::EPERM,
        op: "add table inet np".into(),
        tag: None,
        msg: None,
    };
    let s = e.to_string();
    assert!(
        s.contains("the kernel refused `add table inet np`") && s.contains("run as root"),
        "{s}"
    );
}

#[test]
fn fuzz_parser_entry_never_panics() {
    let mut x = 0x2545f4914f6cdd1du64;
    for n in 0..5000usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes: Vec<u8> = (0..n % 300).map(|i| (x >> (i % 56)) as u8).collect();
        netplumb_nft::fuzz_parse(&bytes);
    }
}

#[test]
fn hairpin_and_localhost_are_checked() {
    let (tag, _, msg) = invalid(&table(vec![NatRule::Hairpin {
        subnet: "0.0.0.0/0".parse().expect("net"),
        tag: 4,
    }]));
    assert_eq!(tag, 4);
    assert!(
        msg.contains("hairpin source 0.0.0.0/0 matches everything"),
        "{msg}"
    );
    let (tag, _, msg) = invalid(&table(vec![NatRule::LocalhostMasquerade {
        oif: "br*".into(),
        tag: 5,
    }]));
    assert_eq!(tag, 5);
    assert!(
        msg.contains("output interface 'br*' is not a valid interface name"),
        "{msg}"
    );
}

#[test]
fn loss_is_checked() {
    use netplumb_nft::RandomLoss;
    let with = |loss: Vec<RandomLoss>| NatTable {
        name: "np".into(),
        loss,
        ..Default::default()
    };
    let l = |iface: &str, percent, tag| RandomLoss {
        iface: iface.into(),
        percent,
        tag,
    };
    let (tag, _, msg) = invalid(&with(vec![l("veth0", 150, 3)]));
    assert_eq!(
        (tag, msg.as_str()),
        (3, "loss of 150 % on veth0: give 1 to 100")
    );
    let (_, _, msg) = invalid(&with(vec![l("veth0", 0, 3)]));
    assert!(msg.contains("give 1 to 100"), "{msg}");
    let (tag, other, msg) = invalid(&with(vec![l("veth0", 10, 1), l("veth0", 20, 2)]));
    assert_eq!((tag, other), (2, Some(1)));
    assert_eq!(msg, "loss on veth0 is already set to 10 %");
    let (_, _, msg) = invalid(&with(vec![l("a/b", 10, 1)]));
    assert!(msg.contains("'a/b' is not a valid interface name"), "{msg}");
    with(vec![l("veth0", 100, 1), l("veth1", 1, 2)])
        .validate()
        .expect("valid");
}

#[test]
fn filter_rules_are_checked() {
    use netplumb_nft::{Endpoint, FilterMatch, FilterProto, FilterRule};
    let with = |m: FilterMatch| NatTable {
        name: "np".into(),
        filter: vec![FilterRule::Deny(m)],
        ..Default::default()
    };
    let m = FilterMatch {
        from: Some(Endpoint::Net("10.0.0.0/8".parse().expect("net"))),
        to: None,
        proto: None,
        ports: Some((80, 80)),
        tag: 9,
    };
    let (tag, _, msg) = invalid(&with(m.clone()));
    assert_eq!((tag, msg.as_str()), (9, "port 80 needs proto tcp or udp"));
    let (_, _, msg) = invalid(&with(FilterMatch {
        proto: Some(FilterProto::Tcp),
        ports: Some((90, 80)),
        ..m.clone()
    }));
    assert!(msg.contains("backwards"), "{msg}");
    let (_, _, msg) = invalid(&with(FilterMatch {
        to: Some(Endpoint::Net("fd00::/64".parse().expect("net"))),
        ports: None,
        ..m.clone()
    }));
    assert!(msg.contains("same IP version"), "{msg}");
    let (_, _, msg) = invalid(&with(FilterMatch {
        to: Some(Endpoint::Iface("x*".into())),
        ports: None,
        ..m.clone()
    }));
    assert!(
        msg.contains("to interface 'x*' is not a valid interface name"),
        "{msg}"
    );
}
