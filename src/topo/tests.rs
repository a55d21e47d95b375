use super::*;

fn ifname(n: &str) -> IfName {
    IfName::new(n).unwrap()
}

fn netns(t: &mut Topology, n: &str) -> NsRef {
    t.add_netns(NsName::new(n).unwrap(), Pos::default())
        .unwrap()
}

#[test]
fn a_moved_or_renamed_link_is_found_at_its_new_place_only_and_frees_the_old() {
    let mut t = Topology::default();
    let a = netns(&mut t, "a");
    let v = t
        .add_veth(
            NsRef::Host,
            ifname("v0"),
            NsRef::Host,
            ifname("v0p"),
            Pos::default(),
        )
        .unwrap();
    let p = t.peer(v).unwrap();
    t.move_to(p, a.clone(), Pos::default()).unwrap();
    assert_eq!(t.link_at(&NsRef::Host, &ifname("v0p")), None);
    assert_eq!(t.link_at(&a, &ifname("v0p")), Some(p));
    t.rename(p, ifname("eth0"), Pos::default()).unwrap();
    assert_eq!(t.link_at(&a, &ifname("v0p")), None);
    assert_eq!(t.link_at(&a, &ifname("eth0")), Some(p));
    assert_eq!(t.link_at(&NsRef::Host, &ifname("v0")), Some(v));
    // The old places are free again; the new one is taken.
    let b = t
        .add_bridge(NsRef::Host, ifname("v0p"), Pos::default())
        .unwrap();
    assert_eq!(t.link_at(&NsRef::Host, &ifname("v0p")), Some(b));
    let clash = t.add_veth(
        a.clone(),
        ifname("eth0"),
        NsRef::Host,
        ifname("v1"),
        Pos::default(),
    );
    assert!(
        matches!(clash, Err(DeclError::LinkTaken { .. })),
        "{clash:?}"
    );
}

#[test]
fn a_model_restored_from_a_snapshot_knows_its_namespaces_and_links_as_they_were() {
    let mut t = Topology::default();
    let a = netns(&mut t, "a");
    t.add_bridge(a.clone(), ifname("br0"), Pos::default())
        .unwrap();
    let snap = t.snapshot();
    netns(&mut t, "b");
    t.add_bridge(a.clone(), ifname("br1"), Pos::default())
        .unwrap();
    let later = t.take_namespaces();
    assert!(!t.has_ns(&NsName::new("a").unwrap()));
    let r = Topology::from_snapshot(snap, later);
    assert!(r.has_ns(&NsName::new("a").unwrap()));
    assert!(!r.has_ns(&NsName::new("b").unwrap()));
    assert!(r.link_at(&a, &ifname("br0")).is_some());
    assert_eq!(r.link_at(&a, &ifname("br1")), None);
    let only = r.of_namespaces(r.namespaces());
    assert!(only.has_ns(&NsName::new("a").unwrap()));
    assert_eq!(only.link_at(&a, &ifname("br0")), None);
}

#[test]
fn a_bridge_takes_1023_ports_and_a_port_moved_to_another_bridge_frees_its_place() {
    let mut t = Topology::default();
    let br = |t: &mut Topology, n: &str| {
        t.add_bridge(NsRef::Host, ifname(n), Pos::default())
            .unwrap()
    };
    let (b0, b1) = (br(&mut t, "b0"), br(&mut t, "b1"));
    let mut ports = Vec::new();
    for i in 0..=kinds::BRIDGE_MAX_PORTS {
        let v = t
            .add_veth(
                NsRef::Host,
                ifname(&format!("p{i}")),
                NsRef::Host,
                ifname(&format!("q{i}")),
                Pos::default(),
            )
            .unwrap();
        ports.push(v);
    }
    let (last, rest) = ports.split_last().unwrap();
    for &p in rest {
        t.attach(b0, p, Pos::default()).unwrap();
    }
    // Attaching a port again to its own bridge is no new port.
    t.attach(b0, rest[0], Pos::default()).unwrap();
    let full = t.attach(b0, *last, Pos::default()).unwrap_err();
    assert!(
        matches!(full, DeclError::BridgeFull { limit: 1023, .. }),
        "{full:?}"
    );
    t.attach(b1, rest[0], Pos::default()).unwrap();
    t.attach(b0, *last, Pos::default()).unwrap();
    assert!(t.attach(b0, rest[0], Pos::default()).is_err());
}

#[test]
fn a_second_route_to_a_destination_is_refused_naming_the_first_and_its_line() {
    let mut t = Topology::default();
    let a = netns(&mut t, "a");
    let b = netns(&mut t, "b");
    let via: IpAddr = "10.0.0.1".parse().unwrap();
    let other: IpAddr = "10.0.0.2".parse().unwrap();
    let dest = crate::model::RouteDest::parse("10.9.0.0/16", &via).unwrap();
    let at = |line| Pos {
        line,
        ..Pos::default()
    };
    t.add_route(a.clone(), dest, via, at(3)).unwrap();
    // The same route again is the same route; another namespace is free.
    t.add_route(a.clone(), dest, via, at(4)).unwrap();
    t.add_route(b.clone(), dest, other, at(5)).unwrap();
    // A model restored from a snapshot knows its routes too.
    let snap = t.snapshot();
    let mut t = Topology::from_snapshot(snap, t.take_namespaces());
    match t.add_route(a.clone(), dest, other, at(6)).unwrap_err() {
        DeclError::RouteTaken {
            ns, via: v, first, ..
        } => {
            assert_eq!((ns, v, first.line), (a, via, 3));
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(t.routes().len(), 2);
}

#[test]
fn nat_switches_forwarding_on_once_per_namespace_and_family_and_not_over_a_declared_value() {
    use netplumb_nft::{DnatMapping, L4Proto, NatRule};
    let mut t = Topology::default();
    let a = netns(&mut t, "a");
    let dnat = |port: u16, to: &str| {
        let to_addr: IpAddr = to.parse().unwrap();
        move |tag| {
            NatRule::Dnat(DnatMapping {
                proto: L4Proto::Tcp,
                daddr: None,
                iif: None,
                ports: (port, port),
                to_addr,
                to_port: None,
                tag,
            })
        }
    };
    let keys = |t: &Topology| -> Vec<(String, String, String)> {
        t.sysctls()
            .iter()
            .map(|s| (s.ns.to_string(), s.key.clone(), s.value.clone()))
            .collect()
    };
    // The script's own value for a's IPv4 forwarding stays the only one.
    t.add_sysctl(a.clone(), "net.ipv4.ip_forward", "0", Pos::default())
        .unwrap();
    t.add_nat(a.clone(), dnat(80, "10.0.0.2"), Pos::default())
        .unwrap();
    t.add_nat(NsRef::Host, dnat(81, "10.0.0.3"), Pos::default())
        .unwrap();
    t.add_nat(NsRef::Host, dnat(82, "10.0.0.4"), Pos::default())
        .unwrap();
    t.add_nat(NsRef::Host, dnat(83, "fd00::2"), Pos::default())
        .unwrap();
    let want = vec![
        (
            "a".to_string(),
            "net.ipv4.ip_forward".to_string(),
            "0".to_string(),
        ),
        (
            "host".to_string(),
            "net.ipv4.ip_forward".to_string(),
            "1".to_string(),
        ),
        (
            "host".to_string(),
            "net.ipv6.conf.all.forwarding".to_string(),
            "1".to_string(),
        ),
    ];
    assert_eq!(keys(&t), want);
    // A model restored from a snapshot knows its sysctls too.
    let snap = t.snapshot();
    let mut t = Topology::from_snapshot(snap, t.take_namespaces());
    t.add_nat(NsRef::Host, dnat(84, "10.0.0.5"), Pos::default())
        .unwrap();
    t.add_nat(a.clone(), dnat(85, "10.0.0.6"), Pos::default())
        .unwrap();
    assert_eq!(keys(&t), want);
}
