//! Filter rules (issue 17): the forward chain in the topology's own table,
//! checked against `nft` as an independent reader and with real traffic
//! between namespaces.

mod common;

use common::lab::*;
use common::net::*;
use common::*;
use netplumb_nft::{FilterProto, FilterRule, NatTable, NftSocket, render};

fn full_table() -> NatTable {
    let mut t = kitchen_sink("lab");
    t.filter = filter_sink();
    t
}

#[test]
fn render_and_netlink_make_the_same_filter_chain() {
    let t = full_table();
    let t2 = t.clone();
    let (ours, text) = in_netns(move |ns| {
        let mut s = NftSocket::open().expect("open");
        s.replace_table(&t2).expect("replace_table");
        (ns.ruleset_json(), ns.ruleset_text())
    });
    let script = render(&t);
    let theirs = in_netns(move |ns| {
        let (ok, _, err) = ns.nft(&["-f", "-"], Some(&script));
        assert!(ok, "nft -f rejected the rendered script: {err}\n{script}");
        (ns.ruleset_json(), ns.ruleset_text())
    });
    assert_eq!(ours, theirs.0, "netlink:\n{text}\nrendered:\n{}", theirs.1);
    for want in [
        "type filter hook forward priority filter; policy accept;",
        "ct state established,related accept",
        "ip saddr . ip daddr . tcp dport @allow4_saddr_daddr_dport_tcp accept",
        "iifname . oifname @allow_iif_oif accept",
        "oifname . udp dport @allow_oif_dport_udp accept",
        "ip6 saddr . udp dport @deny6_saddr_dport_udp drop",
        "iifname @deny4_iif_icmp drop",
        "iifname @deny6_iif_icmp drop",
        "ip saddr @deny4_saddr drop",
        "ip saddr @deny4_saddr_2 drop",
        "meta l4proto tcp drop",
        "iifname . oifname @isolated_self accept",
        "oifname @isolated ct status ! dnat drop",
        "10.1.0.0/16 . 10.2.0.0/16 . 8000-8100",
        "elements = { 0.0.0.0/1, 255.255.255.0/24 }",
        "\"br0\" . \"br0\"",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
    // allows before denies before isolation, whatever the declared order
    let pos = |s: &str| text.find(s).unwrap_or_else(|| panic!("no {s}"));
    assert!(pos("@allow_iif_oif accept") < pos("@deny4_saddr drop"));
    assert!(pos("@deny4_saddr drop") < pos("@isolated_self accept"));
}

#[test]
fn filter_rules_read_back_as_the_same_rules() {
    let t = full_table();
    let t2 = t.clone();
    let rb = in_netns(move |_| {
        let mut s = NftSocket::open().expect("open");
        s.replace_table(&t2).expect("replace");
        s.read_table("lab").expect("read").expect("exists")
    });
    assert_eq!(rb.unrecognized, Vec::<String>::new());
    assert_eq!(rb.table, t.normalized());
}

#[test]
fn foreign_forward_rules_read_where_they_mean_a_filter_rule() {
    let rb = in_netns(|ns| {
        let (ok, _, err) = ns.nft(
            &["-f", "-"],
            Some(
                "table inet fw {
                   chain fwdc {
                     type filter hook forward priority filter;
                     ct state established,related accept
                     ip saddr 10.0.0.0/8 tcp dport 22 drop
                     iifname \"eth0\" oifname \"br0\" accept
                     meta nfproto ipv4 meta l4proto icmp drop
                     meta nfproto ipv4 tcp dport 80 drop
                     ip saddr 10.0.0.1 counter log drop
                   }
                 }",
            ),
        );
        assert!(ok, "{err}");
        let mut s = NftSocket::open().expect("open");
        s.read_table("fw").expect("read").expect("exists")
    });
    let want = [
        FilterRule::Deny(common_fm(
            net("10.0.0.0/8"),
            None,
            Some(FilterProto::Tcp),
            Some((22, 22)),
        )),
        FilterRule::Allow(common_fm(iface("eth0"), iface("br0"), None, None)),
    ];
    let mut want: Vec<_> = want.iter().map(FilterRule::normalized).collect();
    want.sort();
    assert_eq!(rb.table.filter, want);
    assert_eq!(
        rb.unrecognized,
        [
            "fwdc: meta nfproto ipv4 meta l4proto tcp tcp dport 80 drop",
            "fwdc: meta nfproto ipv4 ip saddr 10.0.0.1 counter log drop",
            "fwdc: meta nfproto ipv4 meta l4proto icmp drop",
        ]
    );
}

fn common_fm(
    from: Option<netplumb_nft::Endpoint>,
    to: Option<netplumb_nft::Endpoint>,
    proto: Option<FilterProto>,
    ports: Option<(u16, u16)>,
) -> netplumb_nft::FilterMatch {
    netplumb_nft::FilterMatch {
        from,
        to,
        proto,
        ports,
        tag: 0,
    }
}

#[test]
fn isolate_drops_what_comes_from_outside_except_published_ports() {
    let l = lab();
    apply(&l, vec![]);
    assert!(
        tcp_connects(&l.x, "10.1.0.2", 81, 1.0),
        "open before isolation"
    );
    apply(
        &l,
        vec![FilterRule::Isolate {
            bridge: "br0".into(),
            tag: 1,
        }],
    );
    assert!(
        !tcp_connects(&l.x, "10.1.0.2", 81, 1.0),
        "an unpublished port answered"
    );
    assert!(
        !tcp_connects(&l.x, "10.1.0.2", 80, 1.0),
        "the backend port answered directly"
    );
    assert!(
        tcp_connects(&l.x, "10.2.0.1", 8080, 2.0),
        "the published port did not answer"
    );
    assert!(
        tcp_connects(&l.c2, "10.1.0.2", 81, 2.0),
        "within the bridge was blocked"
    );
    assert!(
        tcp_connects(&l.c1, "10.2.0.2", 90, 2.0),
        "out of the bridge was blocked"
    );
    assert!(
        !l.x.sh("ping -c1 -W1 10.1.0.2").0,
        "ping from outside passed"
    );
}

#[test]
fn deny_blocks_exactly_one_port_between_two_namespaces() {
    let l = lab();
    apply(
        &l,
        vec![FilterRule::Deny(common_fm(
            net("10.2.0.2/32"),
            net("10.1.0.2/32"),
            Some(FilterProto::Tcp),
            Some((81, 81)),
        ))],
    );
    assert!(
        !tcp_connects(&l.x, "10.1.0.2", 81, 1.0),
        "denied port answered"
    );
    assert!(
        tcp_connects(&l.x, "10.1.0.2", 80, 2.0),
        "another port was blocked"
    );
    assert!(
        tcp_connects(&l.c1, "10.2.0.2", 90, 2.0),
        "the other direction was blocked"
    );
    assert!(l.x.sh("ping -c1 -W1 10.1.0.2").0, "ping was blocked");
}

#[test]
fn allow_wins_over_isolation_and_deny_by_interface() {
    let l = lab();
    apply(
        &l,
        vec![
            FilterRule::Isolate {
                bridge: "br0".into(),
                tag: 1,
            },
            FilterRule::Allow(common_fm(
                net("10.2.0.0/24"),
                iface("br0"),
                Some(FilterProto::Tcp),
                Some((81, 81)),
            )),
            FilterRule::Deny(common_fm(
                iface("br0"),
                iface("rx"),
                Some(FilterProto::Icmp),
                None,
            )),
        ],
    );
    assert!(
        tcp_connects(&l.x, "10.1.0.2", 81, 2.0),
        "allowed port was blocked"
    );
    assert!(
        !tcp_connects(&l.x, "10.1.0.2", 80, 1.0),
        "isolation let port 80 in"
    );
    assert!(
        !l.c1.sh("ping -c1 -W1 10.2.0.2").0,
        "icmp out of br0 to rx passed"
    );
    assert!(
        tcp_connects(&l.c1, "10.2.0.2", 90, 2.0),
        "tcp out of br0 was blocked"
    );
}
