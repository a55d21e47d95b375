//! Routes against the kernel: every kind read back exactly as
//! `ip -j -d route show table all` prints it, and traffic that follows them.

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::{Value, json};

use super::*;
use crate::apply::addr_msg::Addr;
use crate::apply::testns::{TestNs, pings, veth_between};

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

pub(crate) fn net(s: &str) -> IpNet {
    s.parse().expect("prefix")
}

fn via(dest: &str, gw: &str, dev: u32) -> Route {
    let mut r = Route::new(net(dest));
    r.via = Some(ip(gw));
    r.dev = Some(dev);
    r
}

/// The ifindex → name map of a namespace, as `ip -j link` has it.
pub(crate) fn names(ns: &TestNs) -> HashMap<u32, String> {
    ns.json("ip -j link")
        .as_array()
        .expect("links")
        .iter()
        .map(|l| {
            (
                l["ifindex"].as_u64().expect("ifindex") as u32,
                l["ifname"].as_str().expect("ifname").to_string(),
            )
        })
        .collect()
}

fn table_name(t: u32) -> String {
    match t {
        253 => "default".into(),
        254 => "main".into(),
        255 => "local".into(),
        n => n.to_string(),
    }
}

fn proto_name(p: u8) -> String {
    match p {
        2 => "kernel".into(),
        3 => "boot".into(),
        4 => "static".into(),
        9 => "ra".into(),
        n => n.to_string(),
    }
}

fn scope_name(s: u8) -> &'static str {
    match s {
        0 => "global",
        200 => "site",
        253 => "link",
        254 => "host",
        _ => "nowhere",
    }
}

/// `dst` as `ip` prints it: "default", a bare host address, or a prefix.
fn dst_text(d: &IpNet) -> String {
    if d.prefix_len() == 0 {
        "default".into()
    } else if d.prefix_len() == d.max_prefix_len() {
        d.addr().to_string()
    } else {
        d.to_string()
    }
}

/// What `ip -j -d route` would print for this parsed route (the keys it
/// prints; anything else in its output is compared by the caller).
pub(crate) fn as_ip_json(r: &RouteState, names: &HashMap<u32, String>) -> Value {
    let mut o = json!({
        "type": r.type_name(),
        "dst": dst_text(&r.dest),
        "table": table_name(r.table),
        "protocol": proto_name(r.protocol),
        "scope": scope_name(r.scope),
    });
    let dev = |i: u32| names.get(&i).cloned().unwrap_or_else(|| format!("if{i}"));
    if let Some(g) = r.via {
        o["gateway"] = json!(g.to_string());
    }
    if let Some(d) = r.dev {
        o["dev"] = json!(dev(d));
    }
    if let Some(m) = r.metric {
        o["metric"] = json!(m);
    }
    if let Some(s) = r.src {
        o["prefsrc"] = json!(s.to_string());
    }
    if let Some(m) = r.mtu {
        o["metrics"] = json!([{ "mtu": m }]);
    }
    o["flags"] = if r.onlink {
        json!(["onlink"])
    } else {
        json!([])
    };
    if !r.nexthops.is_empty() {
        o["nexthops"] = Value::Array(
            r.nexthops
                .iter()
                .map(|h| {
                    let mut n = json!({ "weight": h.weight });
                    if let Some(g) = h.via {
                        n["gateway"] = json!(g.to_string());
                    }
                    if let Some(d) = h.dev {
                        n["dev"] = json!(dev(d));
                    }
                    n["flags"] = if h.onlink {
                        json!(["onlink"])
                    } else {
                        json!([])
                    };
                    n
                })
                .collect(),
        );
    }
    o
}

/// `ip -j -d route show table all`, both families, with the keys we do not
/// model dropped (`pref` of IPv6 routes, `linkdown` flags while links settle).
pub(crate) fn ip_routes(ns: &TestNs) -> Vec<Value> {
    let mut out = Vec::new();
    for fam in ["-4", "-6"] {
        for mut r in ns
            .json(&format!("ip -j -d {fam} route show table all"))
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let o = r.as_object_mut().expect("route object");
            o.remove("pref");
            for f in std::iter::once(&mut *o).chain(std::iter::empty()) {
                if let Some(Value::Array(fl)) = f.get_mut("flags") {
                    fl.retain(|x| x != "linkdown");
                }
            }
            if let Some(Value::Array(hops)) = o.get_mut("nexthops") {
                for h in hops {
                    if let Some(Value::Array(fl)) = h.get_mut("flags") {
                        fl.retain(|x| x != "linkdown");
                    }
                }
            }
            out.push(r);
        }
    }
    out
}

fn sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|x| x.to_string());
    v
}

pub(crate) fn dump_routes(ns: &TestNs) -> Vec<RouteState> {
    ns.rtnl(|rt| parse_dump(&rt.dump(dump_request(AddressFamily::Unspec)).expect("dump")))
}

#[test]
fn refusals_before_the_kernel() {
    let mut r = Route::new(net("10.0.0.0/8"));
    assert!(r.add().is_err(), "no via, dev or nexthops");
    r.via = Some(ip("fd00::1"));
    assert!(r.add().is_err(), "family");
    r.via = Some(ip("10.1.0.1"));
    r.kind = RouteKind::Blackhole;
    assert!(r.add().is_err(), "blackhole with via");
    r.kind = RouteKind::Unicast;
    r.onlink = true;
    assert!(r.add().is_err(), "onlink without dev");
    r.onlink = false;
    r.nexthops = vec![NextHop::new(Some(ip("10.1.0.1")), None)];
    assert!(r.add().is_err(), "via and nexthops");
    r.via = None;
    r.nexthops[0].weight = 0;
    assert!(r.add().is_err(), "weight 0");
    r.nexthops[0].weight = 256;
    assert!(r.add().is_ok());
    assert_eq!(
        RouteKind::parse("drop").unwrap_err().to_string(),
        "unknown route type \"drop\" (unicast, blackhole, unreachable or prohibit)"
    );
}

/// Every kind of route this layer makes, v4 and v6, and the kernel's own:
/// our parse of the dump of all tables equals `ip -j -d route show table
/// all`, entry for entry.
#[test]
fn every_route_reads_back_like_ip_shows_it() {
    let Some(ns) = TestNs::new() else { return };
    let peer = TestNs::new().expect("peer");
    veth_between(&ns, "v0", &peer, "p0");
    veth_between(&ns, "w0", &peer, "q0");
    let (v0, w0) = (ns.index("v0"), ns.index("w0"));
    let mut six = Addr::new(v0, ip("fd00:1::1"), 64);
    six.nodad = true;
    let mut six2 = Addr::new(w0, ip("fd00:2::1"), 64);
    six2.nodad = true;
    ns.apply(vec![
        Addr::new(v0, ip("10.1.0.1"), 24).add().expect("a"),
        Addr::new(w0, ip("10.2.0.1"), 24).add().expect("a"),
        six.add().expect("a"),
        six2.add().expect("a"),
    ]);

    let mut dev_only = Route::new(net("10.20.0.0/16"));
    dev_only.dev = Some(v0);
    let mut full = via("10.21.0.0/16", "10.1.0.2", v0);
    full.metric = Some(50);
    full.src = Some(ip("10.1.0.1"));
    let mut t100 = via("0.0.0.0/0", "10.1.0.2", v0);
    t100.table = 100;
    let mut t1000 = via("10.22.0.0/16", "10.2.0.2", w0);
    t1000.table = 1000;
    let mut onlink = via("10.23.0.0/16", "192.0.2.1", v0);
    onlink.onlink = true;
    let mut mtu = via("10.24.0.0/16", "10.1.0.2", v0);
    mtu.mtu = Some(1400);
    let mut ecmp = Route::new(net("10.40.0.0/16"));
    ecmp.nexthops = vec![
        NextHop::new(Some(ip("10.1.0.2")), Some(v0)),
        NextHop {
            weight: 3,
            ..NextHop::new(Some(ip("10.2.0.2")), Some(w0))
        },
    ];
    let mut dev6 = Route::new(net("fd00:20::/64"));
    dev6.dev = Some(v0);
    let mut via6 = via("fd00:21::/64", "fd00:1::2", v0);
    via6.metric = Some(10);
    let mut ecmp6 = Route::new(net("fd00:40::/64"));
    ecmp6.nexthops = vec![
        NextHop::new(Some(ip("fd00:1::2")), Some(v0)),
        NextHop::new(Some(ip("fd00:2::2")), Some(w0)),
    ];
    let mut reqs = vec![];
    for r in [
        &dev_only, &full, &t100, &t1000, &onlink, &mtu, &ecmp, &dev6, &via6, &ecmp6,
    ] {
        reqs.push(r.add().expect("route"));
    }
    for (d, k) in [
        ("10.30.0.0/16", RouteKind::Blackhole),
        ("10.31.0.0/16", RouteKind::Unreachable),
        ("10.32.0.0/16", RouteKind::Prohibit),
        ("fd00:30::/64", RouteKind::Blackhole),
        ("fd00:31::/64", RouteKind::Unreachable),
    ] {
        let mut r = Route::new(net(d));
        r.kind = k;
        reqs.push(r.add().expect("route"));
    }
    ns.apply(reqs);

    let names = names(&ns);
    let ours_now = || -> Vec<Value> {
        sorted(
            dump_routes(&ns)
                .iter()
                .map(|r| as_ip_json(r, &names))
                .collect(),
        )
    };
    // The kernel adds routes of its own while the links settle (the local
    // route of a link-local address once its DAD ends): compare a table that
    // did not change while `ip` read it, or the last one after 5 s.
    let (mut ours, mut theirs) = (ours_now(), sorted(ip_routes(&ns)));
    for _ in 0..50 {
        let again = ours_now();
        if again == ours && ours.len() == theirs.len() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        ours = ours_now();
        theirs = sorted(ip_routes(&ns));
    }
    assert_eq!(
        ours.len(),
        theirs.len(),
        "ours {ours:#?}\ntheirs {theirs:#?}"
    );
    eprintln!(
        "{} routes compared, e.g. {}",
        ours.len(),
        ours.iter()
            .find(|r| r.get("nexthops").is_some())
            .map(Value::to_string)
            .unwrap_or_default()
    );
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(o, t);
    }
    // And the ones we made are there as we made them.
    let st = dump_routes(&ns);
    let find = |d: &str, t: u32| {
        st.iter()
            .find(|r| r.dest == net(d) && r.table == t)
            .unwrap_or_else(|| panic!("{d} table {t}"))
    };
    assert_eq!(
        find("10.20.0.0/16", 254).scope,
        253,
        "device route: scope link"
    );
    assert_eq!(find("10.22.0.0/16", 1000).via, Some(ip("10.2.0.2")));
    assert_eq!(find("10.40.0.0/16", 254).nexthops[1].weight, 3);
    assert_eq!(find("fd00:40::/64", 254).nexthops.len(), 2);
    assert_eq!(
        find("10.31.0.0/16", 254).route_kind(),
        Some(RouteKind::Unreachable)
    );
}

#[test]
fn replace_changes_in_place_and_delete_removes() {
    let Some(ns) = TestNs::new() else { return };
    let peer = TestNs::new().expect("peer");
    veth_between(&ns, "v0", &peer, "p0");
    let v0 = ns.index("v0");
    ns.apply(vec![Addr::new(v0, ip("10.1.0.1"), 24).add().expect("a")]);
    let mut r = via("10.50.0.0/16", "10.1.0.2", v0);
    r.metric = Some(7);
    ns.apply(vec![r.add().expect("add")]);
    assert_eq!(
        ns.try_apply(r.add().expect("add")).unwrap_err().errno,
        Some(libc::EEXIST)
    );
    let mut r2 = via("10.50.0.0/16", "10.1.0.3", v0);
    r2.metric = Some(7);
    ns.apply(vec![r2.replace().expect("replace")]);
    let mine: Vec<RouteState> = dump_routes(&ns)
        .into_iter()
        .filter(|x| x.dest == r.dest)
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0].via, Some(ip("10.1.0.3")));
    // Delete by its own description; it is gone; a second delete is ESRCH.
    ns.apply(vec![r2.delete().expect("del")]);
    assert!(!dump_routes(&ns).iter().any(|x| x.dest == r.dest));
    assert_eq!(
        ns.try_apply(r2.delete().expect("del")).unwrap_err().errno,
        Some(libc::ESRCH)
    );
    // A replace of a route that is not there makes it.
    ns.apply(vec![r.replace().expect("replace")]);
    assert!(dump_routes(&ns).iter().any(|x| x.dest == r.dest));
}

/// A blackhole drops what a connected route would carry; removing it lets
/// traffic through again.
#[test]
fn blackhole_drops() {
    let Some(a) = TestNs::new() else { return };
    let b = TestNs::new().expect("b");
    veth_between(&a, "v0", &b, "v1");
    a.ok("ip addr add 10.6.0.1/24 dev v0");
    b.ok("ip addr add 10.6.0.2/24 dev v1");
    assert!(pings(&a, "10.6.0.2"));
    let mut bh = Route::new(net("10.6.0.2/32"));
    bh.kind = RouteKind::Blackhole;
    a.apply(vec![bh.add().expect("blackhole")]);
    assert!(!pings(&a, "10.6.0.2"), "the blackhole must drop");
    a.apply(vec![bh.delete().expect("del")]);
    assert!(pings(&a, "10.6.0.2"));
}

/// UDP datagrams to `dst`, one per destination port, sent from inside `ns`.
pub(crate) fn send_udp_flows(ns: &TestNs, dst: &str, ports: std::ops::Range<u16>) {
    let dst: IpAddr = ip(dst);
    ns.run(move || {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp socket");
        for p in ports {
            s.send_to(b"netplumb", (dst, p)).expect("send");
        }
    });
}

pub(crate) fn tx_packets(ns: &TestNs, dev: &str) -> u64 {
    ns.json(&format!("ip -j -s link show dev {dev}"))[0]["stats64"]["tx"]["packets"]
        .as_u64()
        .expect("tx packets")
}

/// An ECMP route spreads flows over both paths (layer-4 hashing).
#[test]
fn ecmp_spreads_flows_over_both_paths() {
    let Some(a) = TestNs::new() else { return };
    let b = TestNs::new().expect("b");
    veth_between(&a, "x0", &b, "x1");
    veth_between(&a, "y0", &b, "y1");
    a.ok("ip addr add 10.1.0.1/24 dev x0");
    a.ok("ip addr add 10.2.0.1/24 dev y0");
    b.ok("ip addr add 10.1.0.2/24 dev x1");
    b.ok("ip addr add 10.2.0.2/24 dev y1");
    b.ok("ip addr add 10.99.0.1/32 dev lo");
    a.run(|| std::fs::write("/proc/sys/net/ipv4/fib_multipath_hash_policy", "1"))
        .expect("hash policy");
    let mut r = Route::new(net("10.99.0.1/32"));
    r.nexthops = vec![
        NextHop::new(Some(ip("10.1.0.2")), Some(a.index("x0"))),
        NextHop::new(Some(ip("10.2.0.2")), Some(a.index("y0"))),
    ];
    a.apply(vec![r.add().expect("ecmp")]);
    // Resolve both gateways first so no datagram waits on ARP.
    assert!(pings(&a, "10.1.0.2") && pings(&a, "10.2.0.2"));
    let (x, y) = (tx_packets(&a, "x0"), tx_packets(&a, "y0"));
    send_udp_flows(&a, "10.99.0.1", 40000..40200);
    let (dx, dy) = (tx_packets(&a, "x0") - x, tx_packets(&a, "y0") - y);
    eprintln!("ECMP: 200 flows, {dx} via x0, {dy} via y0");
    assert!(dx + dy >= 200, "{dx} + {dy}");
    assert!(
        dx >= 40 && dy >= 40,
        "both paths must carry flows: {dx} / {dy}"
    );
}
