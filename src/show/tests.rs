//! show, graph and ping-all on the recording fake: no root, no kernel. The
//! fake is driven with the same ops the runner applies and read back through
//! the same `Kernel` trait the real kernel answers.

use std::collections::BTreeSet;
use std::net::IpAddr;

use netplumb_nft::{DnatMapping, L4Proto, NatRule, NatTable};

use super::{gather, graph, json, pingall, table};
use crate::kernel::{Kernel, Recorder};
use crate::ledger::{Entry, MadeKind, TableName};
use crate::model::{Cidr, IfName, NsName, NsRef, RouteDest};
use crate::op::{LinkChange, Op, RouteSpec, VethWith};

fn name(s: &str) -> IfName {
    IfName::new(s).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn foo() -> NsRef {
    NsRef::Named(NsName::new("foons").unwrap())
}

fn dnat(lo: u16, hi: u16, to: &str, to_port: Option<u16>) -> NatRule {
    NatRule::Dnat(DnatMapping {
        proto: L4Proto::Tcp,
        daddr: None,
        iif: None,
        ports: (lo, hi),
        to_addr: ip(to),
        to_port,
        tag: 0,
    })
}

/// The seed topology (a bridge on the host, a veth into foons, a default
/// route, NAT) made on the fake, and the ledger netplumb would keep of it.
fn seed() -> (Recorder, Vec<Entry>) {
    let mut k = Recorder::new();
    let table = NatTable {
        name: "netplumb-seed".into(),
        rules: vec![
            NatRule::Masquerade {
                src: "172.18.0.0/16".parse().unwrap(),
                oif: None,
                tag: 0,
            },
            dnat(20000, 20000, "172.18.0.20", None),
            dnat(20001, 20001, "172.18.0.20", None),
            dnat(20002, 20002, "172.18.0.20", None),
            dnat(8080, 8080, "172.18.0.21", Some(80)),
        ],
        userdata: b"netplumb:seed".to_vec(),
        ..Default::default()
    };
    let gw = ip("172.18.0.1");
    let default = RouteDest::parse("default", &gw).unwrap();
    let ops = vec![
        Op::AddNetns {
            ns: NsName::new("foons").unwrap(),
        },
        Op::AddBridge {
            ns: NsRef::Host,
            name: name("foobr0"),
        },
        Op::SetLink {
            ns: NsRef::Host,
            name: name("foobr0"),
            change: LinkChange::Up(true),
        },
        Op::AddAddr {
            ns: NsRef::Host,
            dev: name("foobr0"),
            cidr: Cidr::parse("172.18.0.1/16").unwrap(),
        },
        Op::AddVeth {
            ns: NsRef::Host,
            name: name("veth0"),
            peer_ns: foo(),
            peer: name("eth0"),
            with: VethWith {
                master: Some(name("foobr0")),
                up: true,
            },
        },
        Op::SetLink {
            ns: foo(),
            name: name("eth0"),
            change: LinkChange::Up(true),
        },
        Op::AddAddr {
            ns: foo(),
            dev: name("eth0"),
            cidr: Cidr::parse("172.18.0.20/16").unwrap(),
        },
        Op::AddRoute {
            ns: foo(),
            route: RouteSpec {
                dest: default,
                via: gw,
            },
        },
        Op::ReplaceNat {
            ns: NsRef::Host,
            table: Box::new(table),
            replaces: None,
        },
    ];
    let out = k.apply_all(&ops);
    assert!(out.failed.is_none(), "{:?}", out.failed);
    let link = |n: &str, kind| Entry::Link {
        ns: NsRef::Host,
        name: name(n),
        kind,
        peer: None,
        index: None,
        key: None,
        shared: false,
    };
    let ledger = vec![
        Entry::Netns {
            ns: NsName::new("foons").unwrap(),
            ino: None,
        },
        link("foobr0", MadeKind::Bridge),
        link("veth0", MadeKind::Veth),
        Entry::Addr {
            ns: NsRef::Host,
            dev: name("foobr0"),
            cidr: Cidr::parse("172.18.0.1/16").unwrap(),
        },
        Entry::Route {
            ns: foo(),
            dest: default,
            via: gw,
        },
        Entry::Nat {
            ns: NsRef::Host,
            table: TableName::for_topology("seed"),
            handle: None,
            ports: vec![],
        },
    ];
    (k, ledger)
}

fn views(k: &mut Recorder, ledger: Vec<Entry>) -> Vec<super::view::TopologyView> {
    gather::gather(k, &[("seed".into(), ledger)]).unwrap()
}

#[test]
fn gather_resolves_peers_masters_and_routes_on_the_fake() {
    let (mut k, ledger) = seed();
    let v = views(&mut k, ledger);
    let t = &v[0];
    let host = t.namespace(&NsRef::Host).unwrap();
    assert!(!host.owned);
    // Only what the topology made in the host: not the host's lo.
    let names: Vec<&str> = host.links.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["foobr0", "veth0"]);
    let veth = host.link("veth0").unwrap();
    assert_eq!(veth.master.as_deref(), Some("foobr0"));
    let peer = veth.peer.as_ref().unwrap();
    assert_eq!(peer.name.as_deref(), Some("eth0"));
    assert_eq!(peer.ns, Some(foo()));
    assert_eq!(peer.netnsid, Some(0));
    let ns = t.namespace(&foo()).unwrap();
    assert!(ns.owned && ns.exists);
    assert_eq!(ns.links.len(), 2, "lo and eth0: {:?}", ns.links);
    let eth0 = ns.link("eth0").unwrap();
    assert_eq!(eth0.peer.as_ref().unwrap().ns, Some(NsRef::Host));
    assert_eq!(eth0.state(), "up");
    assert_eq!(ns.routes[0].text(), "default via 172.18.0.1 dev eth0");
    assert!(ns.missing.is_empty() && host.missing.is_empty());
    let nat = &host.nat[0];
    assert_eq!(nat.dnat_count(), 4);
    assert_eq!(nat.dnat_targets()[0], (ip("172.18.0.20"), 3));
    assert_eq!(nat.source_rules().count(), 1);
}

#[test]
fn show_table_lists_links_routes_and_compressed_mappings() {
    let (mut k, ledger) = seed();
    let text = table::render(&views(&mut k, ledger));
    for want in [
        "topology seed",
        "netns foons (made by seed)",
        "veth0",
        "foobr0",
        "172.18.0.20/16",
        "default via 172.18.0.1 dev eth0",
        "nat (nft table inet netplumb-seed):",
        "masquerade",
        "20000-20002 → 172.18.0.20 (same ports)",
        "8080 → 172.18.0.21:80",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn show_json_gives_map_elements_as_typed_values() {
    let (mut k, ledger) = seed();
    let doc: serde_json::Value =
        serde_json::from_str(&json::render(&views(&mut k, ledger))).unwrap();
    assert_eq!(doc["schema"], json::SCHEMA);
    let nss = doc["topologies"][0]["namespaces"].as_array().unwrap();
    let host = nss.iter().find(|n| n["host"] == true).unwrap();
    let veth = host["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "veth0")
        .unwrap();
    assert_eq!(veth["peer"]["netns"], "foons");
    assert_eq!(veth["peer"]["name"], "eth0");
    let nat = &host["nat"][0];
    assert_eq!(nat["dnat_mappings"], 4);
    assert_eq!(nat["rules"][0]["kind"], "masquerade");
    assert_eq!(nat["rules"][0]["subnet"], "172.18.0.0/16");
    let elems: Vec<&serde_json::Value> = nat["maps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["elements"].as_array().unwrap())
        .collect();
    let to_80 = elems
        .iter()
        .find(|e| e["key"][0]["first"] == 8080)
        .unwrap_or_else(|| panic!("no element for port 8080 in {elems:#?}"));
    assert_eq!(to_80["key"][0]["type"], "inet_service");
    assert_eq!(to_80["key"][0]["last"], 8080);
    assert_eq!(to_80["value"][0]["type"], "ipv4_addr");
    assert_eq!(to_80["value"][0]["first"], "172.18.0.21");
    assert_eq!(to_80["value"][1]["first"], 80);
    assert_eq!(to_80["value"][1]["text"], "80");
}

#[test]
fn graph_draws_clusters_veths_and_nat_on_the_fake() {
    let (mut k, ledger) = seed();
    let v = views(&mut k, ledger);
    let dot = graph::dot(&v);
    assert!(
        dot.starts_with("digraph") || dot.starts_with("graph"),
        "{dot}"
    );
    for want in [
        "foons",
        "foobr0",
        "veth0",
        "eth0",
        "172.18.0.20/16",
        "masquerade 172.18.0.0/16",
        "4 DNAT mappings",
    ] {
        assert!(dot.contains(want), "missing {want:?} in:\n{dot}");
    }
    assert_eq!(dot.matches('{').count(), dot.matches('}').count(), "{dot}");
    let mm = graph::mermaid(&v);
    assert!(mm.contains("foons") && mm.contains("veth0"), "{mm}");
}

#[test]
fn ping_all_on_the_fake_marks_what_should_reach_and_does_not() {
    let (mut k, ledger) = seed();
    let v = views(&mut k, ledger);
    // foons reaches the bridge, everyone their own address; the host's ping
    // to foons goes unanswered.
    k.answers = Some(BTreeSet::from([
        (NsRef::Host, ip("172.18.0.1")),
        (foo(), ip("172.18.0.1")),
        (foo(), ip("172.18.0.20")),
    ]));
    let m = pingall::run(&mut k, &v[0]);
    assert!(!m.not_run);
    assert!(!m.ok());
    let fails: Vec<String> = m
        .failures()
        .iter()
        .map(|(s, t)| format!("{s} -> {}", t.addr))
        .collect();
    assert_eq!(fails, ["host -> 172.18.0.20"]);
    let text = m.render();
    assert!(
        text.contains("2 namespaces × 2 addresses (4 pings)"),
        "{text}"
    );
    assert!(text.contains("host → 172.18.0.20 (foons eth0)"), "{text}");
    assert!(text.contains("3/4 answered"), "{text}");
}

#[test]
fn ping_all_on_the_fake_without_answers_says_not_run() {
    let (mut k, ledger) = seed();
    let v = views(&mut k, ledger);
    let m = pingall::run(&mut k, &v[0]);
    assert!(m.not_run);
    assert!(
        m.cells
            .iter()
            .flatten()
            .all(|c| !c.reached && c.error.is_some())
    );
}

#[test]
fn what_the_record_names_and_the_kernel_lacks_is_missing() {
    let (mut k, ledger) = seed();
    let del = Op::DelLink {
        ns: NsRef::Host,
        name: name("veth0"),
        index: None,
    };
    assert!(k.apply_all(&[del]).failed.is_none());
    let v = views(&mut k, ledger);
    let host = v[0].namespace(&NsRef::Host).unwrap();
    assert_eq!(host.missing, ["link veth0"]);
    let text = table::render(&v);
    assert!(
        text.contains("missing") && text.contains("link veth0"),
        "{text}"
    );
}
