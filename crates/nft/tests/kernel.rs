//! Kernel tests: each in a private network namespace, checked with `nft` as
//! an independent reader.

mod common;

use common::*;
use netplumb_nft::{DnatMapping, L4Proto, NatRule, NatTable, NftError, NftSocket, render};

#[test]
fn render_and_netlink_produce_the_same_ruleset() {
    let t = kitchen_sink("lab");
    let t2 = t.clone();
    let ours = in_netns(move |ns| {
        let mut s = NftSocket::open().expect("open");
        s.replace_table(&t2).expect("replace_table");
        (ns.ruleset_json(), ns.ruleset_text())
    });
    let script = render(&t);
    let theirs = in_netns(move |ns| {
        let (ok, _, err) = ns.nft(&["-f", "-"], Some(&script));
        assert!(ok, "nft -f rejected the rendered script: {err}\n{script}");
        ns.ruleset_json()
    });
    assert_eq!(
        ours.0,
        theirs,
        "netlink:\n{}\nrendered:\n{}",
        ours.1,
        render(&t)
    );
    let text = ours.1;
    for want in [
        "dnat ip to tcp dport map @dnat_tcp",
        "dnat ip to ip daddr . udp dport map @dnat_udp_daddr",
        "iifname \"eth1\"",
        "fib daddr type local",
        "ip saddr 172.18.0.0/16 ip daddr != 172.18.0.0/16 masquerade",
        "ip saddr 10.9.8.0/21 ip daddr != 10.9.8.0/21 oifname \"eth0\" masquerade",
        "snat ip to 192.168.1.10",
        "ip6 saddr fd00:18::/64 ip6 daddr != fd00:18::/64 masquerade",
        "dnat ip6 to tcp dport map @dnat_tcp6",
        "ip saddr 172.18.0.0/16 ip daddr 172.18.0.0/16 ct status dnat masquerade",
        "ip6 saddr fd00:18::/64 ip6 daddr fd00:18::/64 ct status dnat masquerade",
        "oifname \"br0\" ip saddr 127.0.0.0/8 ct status dnat masquerade",
        "30000-30100 : 172.17.0.9",
        "type nat hook prerouting priority dstnat; policy accept;",
        "type nat hook postrouting priority srcnat; policy accept;",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
}

/// A map of 1,000 elements or more declares its size (the kernel sizes its
/// hash once), and `nft -f` of the render makes the same ruleset, size and
/// all.
#[test]
fn ten_thousand_mappings_are_one_map_of_that_size() {
    let rules = (0..10_000usize)
        .map(|j| {
            dnat(
                j,
                20000 + j as u16,
                &format!("172.18.{}.{}", j / 250, j % 250 + 1),
                Some(80),
            )
        })
        .collect();
    let t = NatTable {
        name: "big".into(),
        rules,
        userdata: vec![],
        ..Default::default()
    };
    let script = render(&t);
    let (summary, json) = in_netns(move |ns| {
        let mut s = NftSocket::open().expect("open");
        s.replace_table(&t).expect("replace_table");
        (
            s.table_summary("big").expect("summary").expect("exists"),
            ns.ruleset_json(),
        )
    });
    assert_eq!(
        json_maps(&json),
        vec![("dnat_tcp".to_string(), Some(10_000))]
    );
    let theirs = in_netns(move |ns| {
        let (ok, _, err) = ns.nft(&["-f", "-"], Some(&script));
        assert!(ok, "nft -f rejected the rendered script: {err}");
        ns.ruleset_json()
    });
    assert_eq!(json, theirs);
    assert_eq!(summary.maps.len(), 1);
    assert_eq!(summary.maps[0].len(), 10_000);
    assert!(
        summary.maps[0]
            .elements
            .contains(&("29999".into(), "172.18.39.250 . 80".into()))
    );
    assert!(summary.rules().len() <= 3, "{:?}", summary.rules());
    let elems = json.to_string().matches("\"concat\"").count();
    assert_eq!(elems, 10_000);
}

#[test]
fn replace_twice_and_delete() {
    in_netns(|ns| {
        let mut s = NftSocket::open().expect("open");
        assert_eq!(s.table_userdata("np").expect("userdata"), None);
        assert!(!s.delete_table("np").expect("delete missing"));
        let mut t = kitchen_sink("np");
        s.replace_table(&t).expect("first");
        assert_eq!(
            s.table_userdata("np").expect("ud"),
            Some(t.userdata.clone())
        );
        t.rules = vec![dnat(1, 9999, "172.17.0.42", None)];
        t.userdata = b"second".to_vec();
        s.replace_table(&t).expect("second");
        assert_eq!(
            s.table_userdata("np").expect("ud"),
            Some(b"second".to_vec())
        );
        let text = ns.ruleset_text();
        assert!(text.contains("9999 : 172.17.0.42 . 9999"), "{text}");
        assert!(!text.contains("masquerade"), "old rules survived:\n{text}");
        // someone else's table is left alone
        let (ok, _, err) = ns.nft(&["add", "table", "ip", "theirs"], None);
        assert!(ok, "{err}");
        assert!(s.delete_table("np").expect("delete"));
        assert!(!s.delete_table("np").expect("delete again"));
        assert_eq!(s.table_userdata("np").expect("ud"), None);
        let text = ns.ruleset_text();
        assert!(
            text.contains("table ip theirs") && !text.contains("inet np"),
            "{text}"
        );
    });
}

#[test]
fn kernel_refusal_names_the_mapping_and_changes_nothing() {
    in_netns(|ns| {
        let mut s = NftSocket::open().expect("open");
        let good = NatTable {
            name: "np".into(),
            rules: vec![dnat(1, 80, "172.17.0.2", None)],
            userdata: b"v1".to_vec(),
            ..Default::default()
        };
        s.replace_table(&good).expect("good");
        let mut rules: Vec<NatRule> = (0..2500)
            .map(|j| dnat(100 + j, 1000 + j as u16, "172.17.0.3", None))
            .collect();
        // same key, another destination: validate() would refuse, here the kernel must
        rules.push(dnat(7777, 3100, "172.17.0.99", Some(1)));
        let bad = NatTable {
            name: "np".into(),
            rules,
            userdata: b"v2".to_vec(),
            ..Default::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(NftError::Invalid {
                tag: 7777,
                other_tag: Some(2200),
                ..
            })
        ));
        let err = s
            .replace_table_unvalidated(&bad)
            .expect_err("kernel must refuse");
        match &err {
            NftError::Kernel { errno, op, tag, .. } => {
                assert_eq!(*tag, Some(7777), "{err}");
                assert!(op.contains("add element inet np dnat_tcp"), "{op}");
                assert!(*errno == libc::EEXIST || *errno == libc::EBUSY, "{err}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("the kernel refused"), "{err}");
        // all or nothing: the old table is untouched
        assert_eq!(s.table_userdata("np").expect("ud"), Some(b"v1".to_vec()));
        let text = ns.ruleset_text();
        assert!(
            text.contains("80 : 172.17.0.2 . 80") && !text.contains("1000 :"),
            "{text}"
        );
    });
}

#[test]
fn summary_reads_back_rules_and_maps() {
    let t = kitchen_sink("sum");
    let sum = in_netns(move |_| {
        let mut s = NftSocket::open().expect("open");
        assert!(s.table_summary("sum").expect("none").is_none());
        s.replace_table(&t).expect("replace");
        s.table_summary("sum").expect("summary").expect("exists")
    });
    assert_eq!(sum.userdata, b"spec-hash-0123456789abcdef");
    let names: Vec<_> = sum.chains.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["prerouting", "output", "postrouting"]);
    let rules = sum.rules().join("\n");
    for want in [
        "prerouting: meta nfproto ipv4 meta l4proto udp dnat ip to ip daddr . udp dport map @dnat_udp_daddr",
        "prerouting: meta nfproto ipv4 iifname \"eth1\" meta l4proto tcp dnat ip to tcp dport map @dnat_tcp_iif_eth1",
        "output: meta nfproto ipv4 fib daddr type local meta l4proto tcp dnat ip to tcp dport map @dnat_tcp",
        "postrouting: meta nfproto ipv4 ip saddr 10.9.8.0/21 ip daddr != 10.9.8.0/21 oifname \"eth0\" masquerade",
        "postrouting: meta nfproto ipv4 ip saddr 172.19.0.0/24 ip daddr != 172.19.0.0/24 oifname \"br0\" snat ip to 192.168.1.10",
        "prerouting: meta nfproto ipv6 meta l4proto udp dnat ip6 to ip6 daddr . udp dport map @dnat_udp6_daddr",
    ] {
        assert!(rules.contains(want), "missing `{want}` in:\n{rules}");
    }
    let map = |n: &str| {
        sum.maps
            .iter()
            .find(|m| m.name == n)
            .unwrap_or_else(|| panic!("no map {n}: {:?}", sum.maps))
    };
    assert_eq!(
        map("dnat_tcp").elements,
        vec![
            ("10050".to_string(), "172.17.0.3 . 10050".to_string()),
            ("8080".into(), "172.17.0.3 . 80".into()),
            ("81".into(), "172.17.0.3 . 81".into()),
        ]
    );
    assert_eq!(
        map("dnat_tcp_ranges").elements,
        vec![("30000-30100".to_string(), "172.17.0.9".to_string())]
    );
    assert_eq!(
        map("dnat_tcp_ranges_to_port").elements,
        vec![("40000-40010".to_string(), "172.17.0.3 . 443".to_string())]
    );
    assert_eq!(
        map("dnat_tcp_daddr_ranges").elements,
        vec![(
            "10.18.103.3 . 5000-5100".to_string(),
            "172.17.0.3".to_string()
        )]
    );
    assert_eq!(
        map("dnat_tcp6_ranges").elements,
        vec![("60000-65535".to_string(), "fd00:17::5".to_string())]
    );
    assert_eq!(map("dnat_udp6_daddr").key_type, "ipv6_addr . inet_service");
}

#[test]
fn same_shape_v6_and_udp_get_their_own_maps() {
    let rules = vec![
        NatRule::Dnat(DnatMapping {
            proto: L4Proto::Udp,
            ..mapping(1)
        }),
        NatRule::Dnat(DnatMapping {
            to_addr: "fd00::3".parse().expect("a"),
            ..mapping(2)
        }),
        NatRule::Dnat(mapping(3)),
    ];
    let t = NatTable {
        name: "shapes".into(),
        rules,
        userdata: vec![],
        ..Default::default()
    };
    let sum = in_netns(move |_| {
        let mut s = NftSocket::open().expect("open");
        s.replace_table(&t).expect("replace");
        s.table_summary("shapes").expect("summary").expect("exists")
    });
    let mut names: Vec<_> = sum.maps.iter().map(|m| m.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["dnat_tcp", "dnat_tcp6", "dnat_udp"]);
}

#[test]
fn big_v6_range_elements_are_split_under_the_nest_limit() {
    // ~100 bytes per pipapo element: 1,000 of them would overflow a 64 KiB nest
    let rules = (0..3000u16)
        .map(|j| {
            NatRule::Dnat(DnatMapping {
                daddr: Some("fd00:1::1".parse().expect("a")),
                ports: (j * 20 + 1, j * 20 + 10),
                to_addr: format!("fd00:17::{:x}", j + 1).parse().expect("a"),
                ..mapping(j as usize)
            })
        })
        .collect();
    let t = NatTable {
        name: "v6".into(),
        rules,
        userdata: vec![],
        ..Default::default()
    };
    let sum = in_netns(move |_| {
        let mut s = NftSocket::open().expect("open");
        s.replace_table(&t).expect("replace");
        s.table_summary("v6").expect("summary").expect("exists")
    });
    assert_eq!(sum.maps.len(), 1);
    assert_eq!(sum.maps[0].name, "dnat_tcp6_daddr_ranges");
    assert_eq!(sum.maps[0].len(), 3000);
    assert!(
        sum.maps[0]
            .elements
            .contains(&("fd00:1::1 . 59981-59990".into(), "fd00:17::bb8".into()))
    );
}

#[test]
fn adjacent_port_ranges_stay_distinct() {
    let r = |tag, lo, hi, to: &str| {
        NatRule::Dnat(DnatMapping {
            ports: (lo, hi),
            to_addr: to.parse().expect("a"),
            ..mapping(tag)
        })
    };
    let t = NatTable {
        name: "adj".into(),
        rules: vec![
            r(1, 200, 299, "172.17.0.2"),
            r(2, 100, 199, "172.17.0.1"),
            r(3, 65000, 65535, "172.17.0.3"),
        ],
        userdata: vec![],
        ..Default::default()
    };
    let t2 = t.clone();
    let (sum, json) = in_netns(move |ns| {
        let mut s = NftSocket::open().expect("open");
        s.replace_table(&t2).expect("replace");
        (
            s.table_summary("adj").expect("summary").expect("exists"),
            ns.ruleset_json(),
        )
    });
    assert_eq!(
        sum.maps[0].elements,
        vec![
            ("100-199".to_string(), "172.17.0.1".to_string()),
            ("200-299".into(), "172.17.0.2".into()),
            ("65000-65535".into(), "172.17.0.3".into()),
        ]
    );
    let script = render(&t);
    let theirs = in_netns(move |ns| {
        let (ok, _, err) = ns.nft(&["-f", "-"], Some(&script));
        assert!(ok, "{err}");
        ns.ruleset_json()
    });
    assert_eq!(json, theirs);
}

/// Each map of an `nft -j` ruleset: its name and declared size.
fn json_maps(v: &serde_json::Value) -> Vec<(String, Option<u64>)> {
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o.get("map"))
        .map(|m| {
            (
                m["name"].as_str().unwrap_or_default().to_string(),
                m["size"].as_u64(),
            )
        })
        .collect()
}
