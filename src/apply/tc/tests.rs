//! Our qdisc messages against iproute2's, byte for byte, and against the
//! kernel: read back through `tc -j`, counters, and a measured rate.

use std::time::Duration;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};

use super::netem::Netem;
use super::tbf::Tbf;
use super::*;
use crate::apply::features::{self, Feature};
use crate::apply::msg;
use crate::apply::testns::{TestNs, veth_between};

/// The bytes our client puts on the wire for a request.
fn wire(req: Req) -> Vec<u8> {
    let (payload, flags) = req;
    let mut hdr = NetlinkHeader::default();
    hdr.flags = flags | NLM_F_REQUEST | NLM_F_ACK;
    let mut m = NetlinkMessage::new(hdr, NetlinkPayload::from(payload));
    m.finalize();
    let mut out = vec![0u8; m.buffer_len()];
    m.serialize(&mut out);
    out
}

/// A strace `-e write=all` hex dump: ` | 00000  64 00 … 00  ascii |`.
fn parse_hex_dump(text: &str) -> Vec<u8> {
    text.lines()
        .filter(|l| l.starts_with(" | "))
        .flat_map(|l| {
            let hex = l.get(10..59).unwrap_or("");
            hex.split_whitespace()
                .map(|h| u8::from_str_radix(h, 16).expect("hex byte"))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/src/apply/testdata/{name}.hex",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    parse_hex_dump(&text)
}

/// Equal except the sequence number and port id (bytes 8..16).
fn assert_same_message(ours: &[u8], tcs: &[u8], what: &str) {
    assert_eq!(ours.len(), tcs.len(), "{what}: length differs");
    let mask = |b: &[u8]| {
        let mut v = b.to_vec();
        v[8..16].fill(0);
        v
    };
    let (a, b) = (mask(ours), mask(tcs));
    if a != b {
        let at = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(0);
        panic!(
            "{what}: first difference at byte {at:#x}\n ours {:02x?}\n  tc's {:02x?}",
            &a[at..(at + 16).min(a.len())],
            &b[at..(at + 16).min(b.len())]
        );
    }
}

fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}

fn netem_cases() -> Vec<(&'static str, Netem)> {
    let d = Netem::default;
    vec![
        (
            "netem-mix",
            Netem {
                delay: ms(20),
                jitter: ms(5),
                loss: Some(1.0),
                duplicate: Some(2.0),
                corrupt: Some(0.5),
                reorder: Some(25.0),
                ..d()
            },
        ),
        (
            "netem-delay",
            Netem {
                delay: ms(20),
                ..d()
            },
        ),
        (
            "netem-corr",
            Netem {
                delay: ms(10),
                jitter: ms(2),
                delay_corr: Some(25.0),
                ..d()
            },
        ),
        (
            "netem-loss",
            Netem {
                loss: Some(5.0),
                loss_corr: Some(10.0),
                ..d()
            },
        ),
        (
            "netem-full",
            Netem {
                limit: 5000,
                delay: ms(100),
                jitter: ms(10),
                delay_corr: Some(30.0),
                loss: Some(0.1),
                loss_corr: Some(5.0),
                duplicate: Some(1.0),
                dup_corr: Some(50.0),
                reorder: Some(10.0),
                reorder_corr: Some(20.0),
                gap: Some(5),
                corrupt: Some(0.01),
                corrupt_corr: Some(2.0),
                rate: None,
            },
        ),
        (
            "netem-rate",
            Netem {
                rate: Some(125_000),
                delay: ms(5),
                ..d()
            },
        ),
        (
            "netem-rate64",
            Netem {
                rate: Some(5_000_000_000),
                ..d()
            },
        ),
    ]
}

fn tbf_cases() -> Vec<(&'static str, Tbf)> {
    vec![
        (
            "tbf-10mbit",
            Tbf {
                rate: 1_250_000,
                burst: Some(12500),
                limit: None,
                latency: ms(50),
            },
        ),
        (
            "tbf-limit",
            Tbf {
                rate: 125_000,
                burst: Some(3028),
                limit: Some(10000),
                latency: None,
            },
        ),
        (
            "tbf-slow",
            Tbf {
                rate: 12_500,
                burst: Some(1600),
                limit: None,
                latency: ms(400),
            },
        ),
        (
            "tbf-rate64",
            Tbf {
                rate: 5_000_000_000,
                burst: Some(1_000_000),
                limit: None,
                latency: ms(10),
            },
        ),
    ]
}

/// The fixtures were captured on `lo` in a fresh namespace: ifindex 1.
#[test]
fn netem_bytes_equal_tcs() {
    for (name, n) in netem_cases() {
        let ours = wire(replace_root(1, &Qdisc::Netem(n)).expect("encode"));
        assert_same_message(&ours, &fixture(name), name);
    }
}

#[test]
fn tbf_bytes_equal_tcs() {
    for (name, t) in tbf_cases() {
        let p = t.resolve(65536).expect("resolve");
        let ours = wire(replace_root(1, &Qdisc::Tbf(p)).expect("encode"));
        assert_same_message(&ours, &fixture(name), name);
    }
}

/// The TCA_OPTIONS payload of a captured message (after the netlink header
/// and struct tcmsg).
fn options_of(msg: &[u8]) -> Vec<u8> {
    attrs(&msg[36..])
        .into_iter()
        .find(|(k, _)| *k == TCA_OPTIONS)
        .map(|(_, v)| v.to_vec())
        .expect("TCA_OPTIONS")
}

#[test]
fn fixtures_parse_back_to_their_options() {
    for (name, n) in netem_cases() {
        let st = netem::parse(&options_of(&fixture(name))).expect("netem options");
        assert_eq!(st.limit, n.limit, "{name}");
        assert_eq!(
            st.delay_ns,
            n.delay.map_or(0, |d| d.as_nanos() as u64),
            "{name}"
        );
        assert!((st.loss - n.loss.unwrap_or(0.0)).abs() < 1e-6, "{name}");
        assert_eq!(st.rate, n.rate.unwrap_or(0), "{name}");
    }
    let st = tbf::parse(&options_of(&fixture("tbf-10mbit"))).expect("tbf options");
    assert_eq!((st.rate, st.burst, st.limit), (1_250_000, 12500, 75000));
}

#[test]
fn psched_clock_is_the_one_we_assume() {
    let Ok(s) = std::fs::read_to_string("/proc/net/psched") else {
        return;
    };
    let f: Vec<&str> = s.split_whitespace().collect();
    assert_eq!(&f[..3], &["000003e8", "00000040", "000f4240"]);
}

fn strace_tc(ns: &TestNs, args: &str) -> Vec<u8> {
    let out = ns.output(&format!(
        "strace -e trace=sendmsg -e write=all -xx tc qdisc replace dev lo root {args}"
    ));
    parse_hex_dump(&String::from_utf8_lossy(&out.stderr))
}

/// `tc_args` (what `plan` prints) makes `tc` send exactly our bytes, for
/// more mixes than the fixtures hold.
#[test]
fn tc_given_our_args_sends_our_bytes() {
    if std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("note: skipped, no strace");
        return;
    }
    let Some(ns) = TestNs::new() else { return };
    let mut cases: Vec<Qdisc> = netem_cases()
        .into_iter()
        .map(|(_, n)| Qdisc::Netem(n))
        .collect();
    cases.push(Qdisc::Netem(Netem {
        delay: Some(Duration::from_micros(1234)),
        jitter: Some(Duration::from_micros(77)),
        loss: Some(33.333),
        corrupt: Some(0.0),
        rate: Some(3_000_000),
        ..Netem::default()
    }));
    cases.push(Qdisc::Netem(Netem::default()));
    for (_, t) in tbf_cases() {
        cases.push(Qdisc::Tbf(t.resolve(65536).expect("resolve")));
    }
    for rate in [1_000u64, 125_000, 3_333_333, 12_500_000, 125_000_000] {
        cases.push(Qdisc::Tbf(Tbf::new(rate).resolve(1500).expect("resolve")));
    }
    for q in cases {
        let args = q.tc_args();
        let ours = wire(replace_root(1, &q).expect("encode"));
        assert_same_message(&ours, &strace_tc(&ns, &args), &args);
    }
}

fn dump(ns: &TestNs) -> Vec<QdiscState> {
    ns.rtnl(|rt| parse_dump(&rt.dump(dump_request()).expect("dump")))
}

fn root_of(ns: &TestNs, dev: &str) -> Option<QdiscState> {
    let idx = ns.index(dev);
    dump(ns)
        .into_iter()
        .find(|q| q.ifindex == idx && q.is_root())
}

#[test]
fn tbf_replaced_reads_back_like_tc_shows_it() {
    let Some(ns) = TestNs::new() else { return };
    ns.apply(vec![msg::add_veth("v0", "v1", None, None, true)]);
    let idx = ns.index("v0");
    let p = Tbf::new(1_250_000).resolve(1500).expect("resolve");
    ns.apply(vec![replace_root(idx, &Qdisc::Tbf(p)).expect("encode")]);
    let j = ns.json("tc -j -s qdisc show dev v0");
    let q = root_of(&ns, "v0").expect("root qdisc");
    assert_eq!(j[0]["kind"], "tbf");
    assert_eq!(q.kind, "tbf");
    assert_eq!(
        format!("{:x}:", q.handle >> 16),
        j[0]["handle"].as_str().unwrap_or("")
    );
    let QdiscOptions::Tbf(st) = q.options else {
        panic!("tbf options: {:?}", q.options)
    };
    assert_eq!(j[0]["options"]["rate"], st.rate);
    assert_eq!(j[0]["options"]["burst"], st.burst);
    assert_eq!(j[0]["options"]["lat"], p.latency().as_micros() as u64);
    assert_eq!((st.rate, st.burst, st.limit), (1_250_000, 12500, 75000));

    // Replaced in place by a slower one: same handle, new rate.
    let slow = Tbf::new(125_000).resolve(1500).expect("resolve");
    ns.apply(vec![replace_root(idx, &Qdisc::Tbf(slow)).expect("encode")]);
    let q2 = root_of(&ns, "v0").expect("root qdisc");
    assert_eq!(q2.handle, q.handle);
    assert!(matches!(q2.options, QdiscOptions::Tbf(s) if s.rate == 125_000));

    // Deleted: the veth is back to its default (no queue), and a second
    // delete is refused.
    ns.apply(vec![delete_root(idx)]);
    assert!(root_of(&ns, "v0").is_none_or(|q| q.kind == "noqueue"));
    assert_eq!(ns.json("tc -j qdisc show dev v0")[0]["kind"], "noqueue");
    assert!(ns.try_apply(delete_root(idx)).is_err());
}

#[test]
fn counters_match_tc_s() {
    let Some(ns) = TestNs::new() else { return };
    let other = TestNs::new().expect("second namespace");
    veth_between(&ns, "v0", &other, "v1");
    ns.ok("ip addr add 10.9.0.1/24 dev v0");
    other.ok("ip addr add 10.9.0.2/24 dev v1");
    let idx = ns.index("v0");
    let p = Tbf::new(1_250_000).resolve(1500).expect("resolve");
    ns.apply(vec![replace_root(idx, &Qdisc::Tbf(p)).expect("encode")]);
    ns.ok("ping -c 5 -i 0.05 -W 2 10.9.0.2");
    let q = root_of(&ns, "v0").expect("root");
    let j = ns.json("tc -j -s qdisc show dev v0");
    assert!(q.stats.packets >= 5, "{:?}", q.stats);
    assert_eq!(j[0]["packets"], q.stats.packets);
    assert_eq!(j[0]["bytes"], q.stats.bytes);
    assert_eq!(j[0]["drops"], q.stats.drops);
    assert_eq!(j[0]["overlimits"], q.stats.overlimits);
}

#[test]
fn htb_options_read_back() {
    let Some(ns) = TestNs::new() else { return };
    ns.apply(vec![msg::add_veth("v0", "v1", None, None, true)]);
    ns.ok("tc qdisc replace dev v0 root handle 1: htb default 10 r2q 7");
    let q = root_of(&ns, "v0").expect("root");
    assert_eq!((q.kind.as_str(), q.handle), ("htb", 0x0001_0000));
    let QdiscOptions::Htb(h) = q.options else {
        panic!("htb: {:?}", q.options)
    };
    let j = ns.json("tc -j qdisc show dev v0");
    assert_eq!(j[0]["options"]["r2q"], h.r2q);
    assert_eq!(
        j[0]["options"]["default"],
        format!("{:#x}", h.default_class)
    );
    assert_eq!(j[0]["options"]["direct_qlen"], h.direct_qlen.unwrap_or(0));
    assert_eq!((h.r2q, h.default_class), (7, 0x10));
}

/// This kernel has no netem: the feature check says so in words, and the
/// kernel's own refusal (had we gone ahead) is ENOENT, "kind unknown".
#[test]
fn netem_is_refused_before_and_by_the_kernel() {
    let Some(ns) = TestNs::new() else { return };
    let Some(cfg) = features::kernel_config() else {
        return;
    };
    if cfg.value("CONFIG_NET_SCH_NETEM").is_some() {
        eprintln!("note: this kernel has netem; nothing to refuse");
        return;
    }
    assert_eq!(
        features::require(Feature::Netem).unwrap_err().to_string(),
        "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM)"
    );
    let n = Netem {
        delay: ms(20),
        ..Netem::default()
    };
    let e = ns
        .try_apply(replace_root(1, &Qdisc::Netem(n)).expect("encode"))
        .unwrap_err();
    assert_eq!(e.errno, Some(libc::ENOENT));
    assert_eq!(ns.json("tc -j qdisc show dev lo")[0]["kind"], "noqueue");
}

/// A tbf of 10mbit holds TCP to its rate, and its removal restores full
/// speed. The rate counts frames, so goodput is at most 1448/1514 of it
/// (9.56 Mbit/s). A loaded machine starves the sender now and then (a CI
/// run measured 8.98): up to three runs, one must land within bounds that
/// still catch a rate off by a unit (1.25 or 80 Mbit/s).
#[test]
fn tbf_holds_tcp_to_its_rate() {
    if std::process::Command::new("iperf3")
        .arg("-v")
        .output()
        .is_err()
    {
        eprintln!("note: skipped, no iperf3");
        return;
    }
    let Some(a) = TestNs::new() else { return };
    let b = TestNs::new().expect("second namespace");
    veth_between(&a, "v0", &b, "v1");
    a.ok("ip addr add 10.9.0.1/24 dev v0");
    b.ok("ip addr add 10.9.0.2/24 dev v1");
    let idx = a.index("v0");
    let p = Tbf::new(1_250_000).resolve(1500).expect("resolve");
    a.apply(vec![replace_root(idx, &Qdisc::Tbf(p)).expect("encode")]);
    let measure = |secs: u32| -> f64 {
        let mut server = b.spawn("iperf3 -s -1 -B 10.9.0.2");
        std::thread::sleep(Duration::from_millis(300));
        let j = a.json(&format!("iperf3 -c 10.9.0.2 -t {secs} -O 1 -J"));
        let _ = server.kill();
        let _ = server.wait();
        j["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .expect("bits_per_second")
    };
    let within = 8.5e6..=10.5e6;
    let mut runs = Vec::new();
    for _ in 0..3 {
        let bps = measure(4);
        eprintln!("tbf 10mbit: measured {:.2} Mbit/s", bps / 1e6);
        runs.push(bps);
        if within.contains(&bps) {
            break;
        }
    }
    assert!(runs.iter().any(|b| within.contains(b)), "{runs:?} bit/s");
    a.apply(vec![delete_root(idx)]);
    let free = measure(1);
    eprintln!("no tbf: measured {:.0} Mbit/s", free / 1e6);
    assert!(free > 100e6, "{free} bit/s");
}
