//! Link kinds and attributes against the kernel: `ip -j -d link` and our
//! parser read the same thing back; macvlan and vxlan carry traffic.

use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::apply::msg;
use crate::apply::testns::{TestNs, dump_link, link_json, pings};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

#[test]
fn macvlan_modes_parse_and_refuse_unknown() {
    for m in ["bridge", "private", "vepa", "passthru"] {
        assert_eq!(MacvlanMode::parse(m).map(MacvlanMode::as_str), Ok(m));
    }
    assert_eq!(
        MacvlanMode::parse("bridged").unwrap_err().to_string(),
        "unknown macvlan mode \"bridged\" (bridge, private, vepa or passthru)"
    );
}

/// Two namespaces on macvlans of one parent ping each other; deleting them
/// leaves the parent as it was.
#[test]
fn macvlans_of_one_parent_carry_traffic() {
    let Some(host) = TestNs::new() else { return };
    let b = TestNs::new().expect("ns b");
    let c = TestNs::new().expect("ns c");
    host.apply(vec![msg::add_veth("p0", "p1", None, None, true)]);
    host.ok("ip link set p1 up");
    let before = link_json(&host, "p0");
    let parent = host.index("p0");
    host.apply(vec![
        add_macvlan("mv1", parent, MacvlanMode::Bridge, Some(b.fd())),
        add_macvlan("mv2", parent, MacvlanMode::Bridge, Some(c.fd())),
    ]);
    b.ok("ip addr add 10.7.0.1/24 dev mv1");
    b.ok("ip link set mv1 up");
    c.ok("ip addr add 10.7.0.2/24 dev mv2");
    c.ok("ip link set mv2 up");
    assert!(pings(&b, "10.7.0.2"), "macvlan b -> c");

    let j = link_json(&b, "mv1");
    assert_eq!(j["linkinfo"]["info_kind"], "macvlan");
    assert_eq!(j["linkinfo"]["info_data"]["mode"], "bridge");
    let x = parse_link(&dump_link(&b, "mv1"));
    assert_eq!(x.kind, Some(KindInfo::Macvlan(MacvlanMode::Bridge)));
    assert_eq!(
        x.link,
        Some(parent),
        "IFLA_LINK names the parent in its namespace"
    );

    b.apply(vec![msg::del_link("mv1")]);
    c.apply(vec![msg::del_link("mv2")]);
    let after = link_json(&host, "p0");
    for k in ["ifindex", "ifname", "mtu", "address", "flags", "operstate"] {
        assert_eq!(after[k], before[k], "{k}");
    }
}

#[test]
fn every_macvlan_mode_reads_back() {
    let Some(ns) = TestNs::new() else { return };
    for (i, m) in ["bridge", "private", "vepa", "passthru"]
        .into_iter()
        .enumerate()
    {
        let p = format!("q{i}");
        ns.apply(vec![msg::add_veth(&p, &format!("r{i}"), None, None, false)]);
        let name = format!("mv{i}");
        let mode = MacvlanMode::parse(m).expect("mode");
        ns.apply(vec![add_macvlan(&name, ns.index(&p), mode, None)]);
        assert_eq!(link_json(&ns, &name)["linkinfo"]["info_data"]["mode"], m);
        assert_eq!(
            parse_link(&dump_link(&ns, &name)).kind,
            Some(KindInfo::Macvlan(mode))
        );
    }
}

#[test]
fn mac_addresses_parse_strictly() {
    assert_eq!(parse_mac("02:00:0a:ff:00:01"), Ok([2, 0, 0x0a, 0xff, 0, 1]));
    assert_eq!(format_mac(&[2, 0, 0x0a, 0xff, 0, 1]), "02:00:0a:ff:00:01");
    for bad in [
        "02:00:00:00:00",
        "02:00:00:00:00:001",
        "zz:00:00:00:00:01",
        "02-00-00-00-00-01",
    ] {
        assert!(parse_mac(bad).is_err(), "{bad}");
    }
    assert!(
        parse_mac("01:00:5e:00:00:01")
            .unwrap_err()
            .to_string()
            .contains("multicast")
    );
    assert!(parse_mac("00:00:00:00:00:00").is_err());
}

#[test]
fn mac_txqlen_alias_set_and_read_back() {
    let Some(ns) = TestNs::new() else { return };
    ns.apply(vec![msg::add_veth("v0", "v1", None, None, true)]);
    let idx = ns.index("v0");
    let a = LinkAttrs {
        mac: Some(parse_mac("02:11:22:33:44:55").expect("mac")),
        txqlen: Some(321),
        alias: Some("uplink to the lab".into()),
    };
    ns.apply(vec![set_attrs(idx, &a).expect("attrs")]);
    let j = link_json(&ns, "v0");
    assert_eq!(j["address"], "02:11:22:33:44:55");
    assert_eq!(j["txqlen"], 321);
    assert_eq!(j["ifalias"], "uplink to the lab");
    let x = parse_link(&dump_link(&ns, "v0"));
    assert_eq!(
        (x.mac, x.txqlen, x.alias.as_deref()),
        (a.mac, Some(321), Some("uplink to the lab"))
    );

    let long = "x".repeat(ALIAS_MAX);
    // The same limit as `ip`'s.
    ns.ok(&format!("ip link set v1 alias {long}"));
    assert!(
        !ns.output(&format!("ip link set v1 alias {long}x"))
            .status
            .success()
    );
    ns.apply(vec![
        set_attrs(
            idx,
            &LinkAttrs {
                alias: Some(long.clone()),
                ..LinkAttrs::default()
            },
        )
        .expect("long alias"),
    ]);
    assert_eq!(link_json(&ns, "v0")["ifalias"], long.as_str());
    assert!(
        set_attrs(
            idx,
            &LinkAttrs {
                alias: Some("x".repeat(ALIAS_MAX + 1)),
                ..LinkAttrs::default()
            }
        )
        .is_err()
    );

    ns.apply(vec![
        set_attrs(
            idx,
            &LinkAttrs {
                alias: Some(String::new()),
                ..LinkAttrs::default()
            },
        )
        .expect("clear"),
    ]);
    assert!(link_json(&ns, "v0").get("ifalias").is_none());
    assert_eq!(parse_link(&dump_link(&ns, "v0")).alias, None);
}

#[test]
fn addr_gen_mode_none_reads_back() {
    let Some(ns) = TestNs::new() else { return };
    ns.apply(vec![msg::add_veth("v0", "v1", None, None, false)]);
    ns.apply(vec![set_addr_gen_mode(ns.index("v0"), true)]);
    assert_eq!(link_json(&ns, "v0")["inet6_addr_gen_mode"], "none");
    assert_eq!(parse_link(&dump_link(&ns, "v0")).addr_gen_mode, Some(1));
    ns.ok("ip link set v0 up");
    ns.ok("ip link set v1 up");
    let a = ns.json("ip -j -6 addr show dev v0");
    assert!(
        a[0]["addr_info"].as_array().is_none_or(|v| v.is_empty()),
        "no link-local: {a}"
    );
}

/// IPv6 packets a device sends in its first seconds up, by type (DAD
/// neighbour solicitations, MLD reports, router solicitations, all), as seen
/// from the other end of its veth. `setup` runs while it is down, `then`
/// one second after it came up.
fn ipv6_chatter(setup: impl Fn(&TestNs), then: impl Fn(&TestNs)) -> [usize; 4] {
    let a = TestNs::new().expect("ns a");
    let b = TestNs::new().expect("ns b");
    // a0 is born down, in a, with b0 in b.
    a.apply(vec![msg::add_veth("a0", "b0", Some(b.fd()), None, false)]);
    // b0 itself must say nothing: IPv6 off there.
    b.run(|| set_ipv6_disabled_here("b0", true))
        .expect("b0 quiet");
    b.ok("ip link set b0 up");
    setup(&a);
    // Not "icmp6": MLD reports carry a hop-by-hop header first.
    let mut dump = b.spawn("tcpdump -i b0 -nn -l -Q in ip6");
    // Start only once tcpdump listens.
    let mut err = std::io::BufReader::new(dump.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.contains("listening on") {
        line.clear();
        if std::io::BufRead::read_line(&mut err, &mut line).unwrap_or(0) == 0 {
            panic!("tcpdump did not start");
        }
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    a.ok("ip link set a0 up");
    // Carrier is not readiness: wait for the link watch to say UP.
    let t0 = std::time::Instant::now();
    while link_json(&a, "a0")["operstate"] != "UP" && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    then(&a);
    std::thread::sleep(Duration::from_millis(4000));
    // SAFETY: plain kill(2) of the tcpdump child we started.
    unsafe { libc::kill(dump.id() as i32, libc::SIGINT) };
    let out = dump.wait_with_output().expect("tcpdump");
    let text = String::from_utf8_lossy(&out.stdout);
    let count = |pat: &str| text.lines().filter(|l| l.contains(pat)).count();
    [
        count("neighbor solicitation"),
        count("multicast listener report"),
        count("router solicitation"),
        count("IP6"),
    ]
}

/// Which way of turning IPv6 off stops DAD, MLD and RS: measured. The
/// figures are printed (`--nocapture`) for the report.
#[test]
fn ipv6_off_measured() {
    if TestNs::new().is_none() {
        return;
    }
    if std::process::Command::new("tcpdump")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("note: skipped, no tcpdump");
        return;
    }
    let gen_none = |a: &TestNs| a.apply(vec![set_addr_gen_mode(a.index("a0"), true)]);
    let disable = |a: &TestNs| {
        a.run(|| set_ipv6_disabled_here("a0", true))
            .expect("disable")
    };
    let add_global = |a: &TestNs| {
        let _ = a.output("ip addr add fd00::1/64 dev a0");
    };
    let nothing = |_: &TestNs| {};
    let on = ipv6_chatter(nothing, nothing);
    let none = ipv6_chatter(gen_none, nothing);
    let none_addr = ipv6_chatter(gen_none, add_global);
    let off = ipv6_chatter(disable, nothing);
    let off_addr = ipv6_chatter(disable, add_global);
    eprintln!("IPv6 packets in 4.5 s from a device coming up [DAD NS, MLD reports, RS, all]:");
    eprintln!("  default                          {on:?}");
    eprintln!("  addr_gen_mode none               {none:?}");
    eprintln!("  addr_gen_mode none + fd00::1/64  {none_addr:?}");
    eprintln!("  disable_ipv6=1                   {off:?}");
    eprintln!("  disable_ipv6=1 + fd00::1/64      {off_addr:?}");
    assert!(
        on[0] >= 1 && on[1] >= 1 && on[2] >= 1,
        "the control must chatter: {on:?}"
    );
    assert_eq!(none, [0; 4], "no link-local: nothing at bring-up");
    assert!(
        none_addr[0] >= 1 && none_addr[1] >= 1,
        "an address brings DAD and MLD back"
    );
    assert_eq!(off, [0; 4]);
    assert_eq!(off_addr, [0; 4], "and no address can be added");
}

#[test]
fn netns_ipv6_off_covers_new_devices() {
    let Some(ns) = TestNs::new() else { return };
    ns.run(|| {
        for (k, v) in NETNS_IPV6_OFF {
            std::fs::write(format!("/proc/sys/{}", k.replace('.', "/")), v).expect("sysctl");
        }
    });
    ns.apply(vec![msg::add_veth("v0", "v1", None, None, true)]);
    assert_eq!(ns.run(|| ipv6_disabled_here("v0")), Some(true));
    assert_eq!(ns.run(|| ipv6_disabled_here("lo")), Some(true));
    let a = ns.json("ip -j -6 addr");
    assert!(
        a.as_array().is_none_or(|v| v
            .iter()
            .all(|l| l["addr_info"].as_array().is_none_or(|x| x.is_empty()))),
        "{a}"
    );
}
