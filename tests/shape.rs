//! Issue 16: link shaping, real in private namespaces: a tbf that holds TCP
//! to its rate (iperf3), `shape(#{})` restoring full speed, an adopted
//! device's qdisc put back by `down`, drift repaired, day two equal to a
//! fresh up; netem asked for on a kernel without it refused, naming netem,
//! before any change. (The netem encoding is compared byte for byte with
//! `tc`'s own message in src/apply/tc/tests.rs: `netem_bytes_equal_tcs`,
//! `tc_given_our_args_sends_our_bytes`.)

mod common;

use common::{Sandbox, text};

fn has_netem() -> bool {
    let cfg = std::process::Command::new("sh")
        .args([
            "-c",
            "zcat /proc/config.gz 2>/dev/null | grep '^CONFIG_NET_SCH_NETEM='",
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    cfg || std::path::Path::new("/sys/module/sch_netem").exists()
}

fn script(shape: &str) -> String {
    format!(
        r#"
let a = netns("sa");
let b = netns("sb");
let v = a.veth("v0", b, "v1");
v.addr("10.9.0.1/24").up().shape({shape});
v.peer.addr("10.9.0.2/24").up();
host().link("p0").shape({shape});
"#
    )
}

fn qdiscs(sb: &Sandbox) -> String {
    sb.ok("tc qdisc show; for n in $(ip netns list | cut -d' ' -f1 | sort); do echo \"== $n\"; tc -n $n qdisc show; done")
}

/// TCP from sa to sb over v0, in bit/s.
fn measure(sb: &Sandbox, secs: u32) -> f64 {
    let j = sb.json(&format!(
        "ip netns exec sb iperf3 -s -1 -D -B 10.9.0.2 >/dev/null && sleep 0.3 && \
         ip netns exec sa iperf3 -c 10.9.0.2 -t {secs} -O 2 -J"
    ));
    j["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("bits_per_second")
}

fn parent(sb: &Sandbox) {
    sb.ok("ip link add p0 type veth peer p1 && ip link set p0 up && ip link set p1 up");
}

#[test]
fn tbf_holds_tcp_to_10mbit_and_shape_nothing_restores_full_speed() {
    if std::process::Command::new("iperf3")
        .arg("-v")
        .output()
        .is_err()
    {
        eprintln!("note: skipped, no iperf3");
        return;
    }
    let sb = Sandbox::new();
    parent(&sb);
    let before = qdiscs(&sb);
    let s = sb.script("sh.rhai", &script("#{ rate: \"10mbit\" }"));
    let plan = sb.np_ok(&["plan", "--diff", &s]);
    assert!(
        plan.contains("tc qdisc replace dev p0 root tbf rate 10mbit burst 12500 limit 75000"),
        "{plan}"
    );
    sb.np_ok(&["up", &s]);
    let q = sb.json("tc -n sa -j qdisc show dev v0");
    assert_eq!(q[0]["kind"], "tbf");
    assert_eq!(q[0]["options"]["rate"], 1_250_000);
    assert_eq!(sb.json("tc -j qdisc show dev p0")[0]["kind"], "tbf");
    // TCP goodput under a 10 Mbit/s wire rate (headers count against the
    // rate: 9.56 at best). A machine busy with other work can starve the
    // sender for a moment: up to three runs, each printed, one must land
    // within 8.5–10.5; an unshaped or wrongly shaped link misses all three.
    let within = 8.5e6..=10.5e6;
    let mut runs = Vec::new();
    for _ in 0..3 {
        let bps = measure(&sb, 5);
        eprintln!("tbf 10mbit: {:.2} Mbit/s", bps / 1e6);
        runs.push(bps);
        if within.contains(&bps) {
            break;
        }
    }
    assert!(runs.iter().any(|b| within.contains(b)), "{runs:?} bit/s");
    let again = sb.np_ok(&["up", &s]);
    assert!(again.contains("no changes"), "{again}");

    // Drift: the qdisc removed behind its back.
    sb.ok("tc -n sa qdisc del dev v0 root");
    let c = sb.netplumb(&["check", "sh"]);
    assert_eq!(c.status.code(), Some(1), "{}", text(&c.stdout));
    assert!(
        text(&c.stdout).contains("~ link sa:v0 shape tbf rate 10mbit"),
        "{}",
        text(&c.stdout)
    );
    sb.np_ok(&["up", &s]);
    assert_eq!(sb.json("tc -n sa -j qdisc show dev v0")[0]["kind"], "tbf");

    // shape(#{}): no shaping, full speed; a fresh up of that script is the same.
    let s = sb.script("sh.rhai", &script("#{}"));
    sb.np_ok(&["up", &s]);
    let edited = qdiscs(&sb);
    let free = measure(&sb, 1);
    eprintln!("no shaping: {:.0} Mbit/s", free / 1e6);
    assert!(free > 100e6, "{free} bit/s");
    let fresh = Sandbox::new();
    parent(&fresh);
    let f = fresh.script("sh.rhai", &script("#{}"));
    fresh.np_ok(&["up", &f]);
    assert_eq!(
        qdiscs(&fresh).replace(char::is_numeric, ""),
        edited.replace(char::is_numeric, "")
    );

    // Shaped again, then down: tc qdisc show as before.
    let s = sb.script("sh.rhai", &script("#{ rate: \"1mbit\" }"));
    sb.np_ok(&["up", &s]);
    assert_eq!(sb.json("tc -j qdisc show dev p0")[0]["kind"], "tbf");
    sb.np_ok(&["down", "sh"]);
    assert_eq!(qdiscs(&sb), before);
}

#[test]
fn netem_on_a_kernel_without_it_is_refused_naming_netem_before_any_change() {
    if has_netem() {
        eprintln!("note: this kernel has netem; nothing to refuse");
        return;
    }
    let sb = Sandbox::new();
    parent(&sb);
    let before = sb.snapshot();
    let q = qdiscs(&sb);
    for shape in [
        "#{ delay: \"20ms\" }",
        // (a loss alone is nftables' random drop: it needs no netem)
        "#{ loss: 20, delay: \"1ms\" }",
        "#{ rate: \"10mbit\", jitter: \"1ms\", delay: \"5ms\" }",
    ] {
        let s = sb.script("sh.rhai", &script(shape));
        let o = sb.netplumb(&["up", &s]);
        let err = text(&o.stderr);
        assert!(!o.status.success());
        assert!(
            err.contains("this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM)"),
            "{err}"
        );
        assert!(err.contains("sh.rhai:5"), "names the line: {err}");
        assert_eq!(sb.snapshot(), before, "nothing changed");
        assert_eq!(qdiscs(&sb), q);
    }
}

#[test]
fn loss_20_percent_drops_a_fifth_of_500_pings() {
    // A loss alone is random drop in the topology's nftables table, so it
    // needs no netem: measured on every kernel.
    let sb = Sandbox::new();
    parent(&sb);
    let s = sb.script("sh.rhai", &script("#{ loss: 20 }"));
    sb.np_ok(&["up", &s]);
    let rs = sb.ok("ip netns exec sa nft list ruleset");
    assert!(rs.contains("numgen random mod 100 < 20 drop"), "{rs}");
    let out = sb.ok("ip netns exec sa ping -q -c500 -i0.002 -W1 10.9.0.2 || true");
    let lost: f64 = out
        .split(',')
        .find_map(|p| p.trim().strip_suffix("% packet loss"))
        .and_then(|p| p.parse().ok())
        .expect("ping summary");
    assert!((15.0..=25.0).contains(&lost), "{lost} % lost:\n{out}");
    // Day two: shape(#{}) takes the drop away again.
    let s2 = sb.script("sh.rhai", &script("#{}"));
    sb.np_ok(&["up", &s2]);
    let rs = sb.ok("ip netns exec sa nft list ruleset; nft list ruleset");
    assert!(!rs.contains("numgen"), "{rs}");
    sb.np_ok(&["down", "sh"]);
}

#[test]
fn bad_shapes_are_refused_with_the_line() {
    let sb = Sandbox::new();
    for (shape, want) in [
        ("#{ rate: \"fast\" }", "shape rate \"fast\" is not a rate"),
        ("#{ loss: 150 }", "shape loss 150 % is out of range"),
        ("#{ jitter: \"1ms\" }", "a jitter needs a delay"),
        ("#{ speed: 1 }", "unknown shape option 'speed'"),
    ] {
        let s = sb.script(
            "bad.rhai",
            &format!("let a = netns(\"x\");\nveth(\"v0\", a, \"v1\").shape({shape});"),
        );
        let o = sb.netplumb(&["up", &s]);
        let err = text(&o.stderr);
        assert!(!o.status.success());
        assert!(err.contains(want), "want {want}: {err}");
        assert!(err.contains("bad.rhai:2"), "names the line: {err}");
        assert_eq!(sb.ok("ip netns list"), "", "nothing made");
    }
}
