//! Issue 16: macvlan and vxlan links, real in private namespaces: read back
//! with `ip -j -d`, traffic between namespaces, idempotent, edited in place
//! (a second script version converges to what a fresh `up` of it makes),
//! drift found and repaired, `down` exact; a bridge's port limit refused
//! before anything is made.

mod common;

use std::time::{Duration, Instant};

use common::{Sandbox, text};

fn link(sb: &Sandbox, ns: &str, dev: &str) -> serde_json::Value {
    let p = if ns.is_empty() {
        String::new()
    } else {
        format!("-n {ns} ")
    };
    sb.json(&format!("ip {p}-j -d link show {dev}"))[0].clone()
}

fn ping(sb: &Sandbox, ns: &str, addr: &str) -> bool {
    sb.sh(&format!("ip netns exec {ns} ping -c1 -W2 {addr}"))
        .status
        .success()
}

/// `ip -j -d link show p0` until it equals `want` (a namespace's devices
/// go away asynchronously after the namespace is deleted).
fn settles_to(sb: &Sandbox, dev: &str, want: &serde_json::Value) -> serde_json::Value {
    let t0 = Instant::now();
    loop {
        let now = link(sb, "", dev);
        if &now == want || t0.elapsed() > Duration::from_secs(10) {
            return now;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

const MACVLANS: &str = r#"
let a = netns("mva");
let b = netns("mvb");
let m1 = host().macvlan("mv1", "p0", #{ mode: "bridge" });
m1.move_to(a);
m1.addr("10.5.0.1/24").up();
let m2 = host().macvlan("mv2", "p0");
m2.move_to(b);
m2.addr("10.5.0.2/24").up();
"#;

fn parent(sb: &Sandbox) -> serde_json::Value {
    sb.ok("ip link add p0 type veth peer p1 && ip link set p0 up && ip link set p1 up");
    link(sb, "", "p0")
}

#[test]
fn macvlans_of_one_parent_ping_and_down_leaves_the_parent_as_it_was() {
    let sb = Sandbox::new();
    let before = parent(&sb);
    let s = sb.script("mv.rhai", MACVLANS);
    let out = sb.np_ok(&["up", &s]);
    assert!(out.contains("+ macvlan mva:mv1 on p0 (bridge)"), "{out}");
    let m1 = link(&sb, "mva", "mv1");
    assert_eq!(m1["linkinfo"]["info_kind"], "macvlan");
    assert_eq!(m1["linkinfo"]["info_data"]["mode"], "bridge");
    assert_eq!(m1["mtu"], 1500);
    assert_eq!(
        link(&sb, "mvb", "mv2")["linkinfo"]["info_data"]["mode"],
        "bridge"
    );
    assert!(ping(&sb, "mva", "10.5.0.2"), "mv1 must reach mv2");
    assert!(ping(&sb, "mvb", "10.5.0.1"), "mv2 must reach mv1");
    let again = sb.np_ok(&["up", &s]);
    assert!(again.contains("no changes"), "{again}");
    assert_eq!(sb.netplumb(&["check", "mv"]).status.code(), Some(0));
    sb.np_ok(&["down", "mv"]);
    assert_eq!(sb.ok("ip netns list"), "");
    assert_eq!(
        settles_to(&sb, "p0", &before),
        before,
        "p0 must be as it was"
    );
}

const VXLANS: &str = r#"
let b = netns("vxb");
let u = veth("u0", b, "u1");
u.addr("10.6.0.1/24").up();
u.peer.addr("10.6.0.2/24").up();
b.vxlan("vx0", #{ id: 42, remote: "10.6.0.1", dev: "u1" }).addr("10.7.0.2/24").up();
host().vxlan("vx0", #{ id: 42, remote: "10.6.0.2", dev: u }).addr("10.7.0.1/24").up();
"#;

#[test]
fn vxlan_over_an_underlay_veth_pings_and_plan_shows_the_mtu() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let s = sb.script("vx.rhai", VXLANS);
    let plan = sb.np_ok(&["plan", &s]);
    assert!(
        plan.contains(
            "ip -n vxb link add vx0 mtu 1450 type vxlan id 42 remote 10.6.0.1 dev u1 dstport 4789"
        ),
        "{plan}"
    );
    sb.np_ok(&["up", &s]);
    let v = link(&sb, "vxb", "vx0");
    assert_eq!(v["mtu"], 1450);
    let d = &v["linkinfo"]["info_data"];
    assert_eq!(d["id"], 42);
    assert_eq!(d["remote"], "10.6.0.1");
    assert_eq!(d["link"], "u1");
    assert_eq!(d["port"], 4789);
    assert_eq!(d["learning"], true);
    assert!(ping(&sb, "vxb", "10.7.0.1"), "over the vxlan");
    let again = sb.np_ok(&["up", &s]);
    assert!(again.contains("no changes"), "{again}");
    sb.np_ok(&["down", "vx"]);
    assert_eq!(sb.snapshot(), before);
}

/// What a kind test compares: per namespace, each device's kind, kind
/// data, MTU, state and addresses.
fn state(sb: &Sandbox) -> String {
    let mut out = String::new();
    let nss = sb.ok("ip netns list | cut -d' ' -f1 | sort");
    for ns in std::iter::once("").chain(nss.lines()) {
        let p = if ns.is_empty() {
            String::new()
        } else {
            format!("-n {ns} ")
        };
        let links = sb.json(&format!("ip {p}-j -d addr show"));
        let mut lines: Vec<String> = links
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                let d = &l["linkinfo"]["info_data"];
                let addrs: Vec<String> = l["addr_info"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|a| a["scope"] != "link")
                    .map(|a| format!("{}/{}", a["local"], a["prefixlen"]))
                    .collect();
                format!(
                    "{ns}:{} {} mode={} id={} remote={} group={} port={} learning={} mtu={} {} {:?}",
                    l["ifname"],
                    l["linkinfo"]["info_kind"],
                    d["mode"],
                    d["id"],
                    d["remote"],
                    d["group"],
                    d["port"],
                    d["learning"],
                    l["mtu"],
                    l["operstate"],
                    addrs
                )
            })
            .collect();
        lines.sort();
        out.extend(lines.into_iter().map(|l| l + "\n"));
    }
    out
}

const DAY1: &str = r#"
let a = netns("da");
let b = netns("db");
host().macvlan("dm1", "p0", #{ mode: "bridge" }).move_to(a);
a.link("dm1").addr("10.8.0.1/24").up();
host().macvlan("dm2", "p0", #{ mode: "vepa" }).move_to(b);
let u = veth("du0", b, "du1");
u.addr("10.6.0.1/24").up();
u.peer.addr("10.6.0.2/24").up();
b.vxlan("dvx", #{ id: 42, remote: "10.6.0.1", dev: "du1" }).addr("10.7.0.2/24").up();
host().vxlan("dvy", #{ id: 7, remote: "10.6.0.2", dev: u });
"#;

const DAY2: &str = r#"
let a = netns("da");
let b = netns("db");
host().macvlan("dm1", "p0", #{ mode: "private" }).move_to(a);
a.link("dm1").addr("10.8.0.1/24").up();
host().macvlan("dm3", "p0").move_to(b);
let u = veth("du0", b, "du1");
u.addr("10.6.0.1/24").up();
u.peer.addr("10.6.0.2/24").up();
b.vxlan("dvx", #{ id: 43, remote: "10.6.0.1", dev: "du1", port: 8472, learning: false }).addr("10.7.0.2/24").up();
"#;

#[test]
fn day_two_macvlan_and_vxlan_edits_equal_a_fresh_up() {
    let fresh = Sandbox::new();
    parent(&fresh);
    let s2 = fresh.script("d.rhai", DAY2);
    fresh.np_ok(&["up", &s2]);
    let want = state(&fresh);

    let sb = Sandbox::new();
    parent(&sb);
    let s1 = sb.script("d.rhai", DAY1);
    sb.np_ok(&["up", &s1]);
    assert_eq!(
        link(&sb, "db", "dm2")["linkinfo"]["info_data"]["mode"],
        "vepa"
    );
    let s2 = sb.script("d.rhai", DAY2);
    let out = sb.np_ok(&["up", &s2]);
    assert!(out.contains("- link"), "removals: {out}");
    assert_eq!(state(&sb), want, "edited:\n{out}");
    let again = sb.np_ok(&["up", &s2]);
    assert!(again.contains("no changes"), "{again}");
    assert_eq!(
        link(&sb, "da", "dm1")["linkinfo"]["info_data"]["mode"],
        "private"
    );
    assert_eq!(link(&sb, "db", "dvx")["linkinfo"]["info_data"]["id"], 43);
    assert!(
        sb.sh("ip link show dvy").status.code() != Some(0),
        "dvy removed"
    );
}

#[test]
fn a_vxlan_deleted_behind_our_back_is_drift_and_repaired() {
    let sb = Sandbox::new();
    let s = sb.script("vx.rhai", VXLANS);
    sb.np_ok(&["up", &s]);
    sb.ok("ip -n vxb link del vx0");
    let c = sb.netplumb(&["check", "vx"]);
    assert_eq!(c.status.code(), Some(1), "{}", text(&c.stdout));
    assert!(
        text(&c.stdout).contains("+ vxlan vxb:vx0 id 42"),
        "{}",
        text(&c.stdout)
    );
    sb.np_ok(&["up", &s]);
    assert_eq!(sb.netplumb(&["check", "vx"]).status.code(), Some(0));
    assert!(ping(&sb, "vxb", "10.7.0.1"));
}

#[test]
fn bad_kinds_are_refused_with_the_line_before_any_change() {
    let sb = Sandbox::new();
    parent(&sb);
    for (body, want) in [
        (
            "netns(\"x\");\nhost().macvlan(\"m\", \"p0\", #{ mode: \"fast\" });",
            "unknown macvlan mode \"fast\"",
        ),
        (
            "netns(\"x\");\nhost().vxlan(\"v\", #{ id: 16777216 });",
            "vxlan id 16777216 is out of range",
        ),
        (
            "netns(\"x\");\nhost().vxlan(\"v\", #{ id: 1, remote: \"10.0.0.1\", group: \"239.1.1.1\" });",
            "a remote or a group, not both",
        ),
        (
            "netns(\"x\");\nhost().vxlan(\"v\", #{ vni: 1 });",
            "unknown vxlan option 'vni'",
        ),
    ] {
        let s = sb.script("bad.rhai", body);
        let o = sb.netplumb(&["up", &s]);
        let err = text(&o.stderr);
        assert!(!o.status.success());
        assert!(err.contains(want), "want {want}: {err}");
        assert!(err.contains("bad.rhai:2"), "names the line: {err}");
        assert_eq!(sb.ok("ip netns list"), "", "nothing made");
    }
}

#[test]
fn a_bridge_takes_1023_ports_the_1024th_is_refused_before_anything_is_made() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let s = sb.script(
        "big.rhai",
        r#"
let br = bridge("bigbr");
for i in 0..1024 {
    let ns = netns(`n${i}`);
    br.attach(veth(`v${i}`, ns, "eth0"));
}
"#,
    );
    let o = sb.netplumb(&["up", &s]);
    let err = text(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("bridge bigbr already has 1023 ports"), "{err}");
    assert!(err.contains("big.rhai:5"), "names the line: {err}");
    assert_eq!(sb.snapshot(), before, "nothing was made");
}

const TAP: &str = r#"
let v = netns("vm");
v.tap("tap0", #{ owner: 1000, group: 100, multi_queue: true }).addr("10.3.0.1/24").up();
v.tun("tun0").up();
"#;

/// A program opening the tap as a VM would: carrier comes up while it holds
/// it open.
const OPEN_TAP: &str = "import fcntl,struct,time,os; \
f=os.open('/dev/net/tun',os.O_RDWR); \
fcntl.ioctl(f,0x400454ca,struct.pack('16sH','tap0'.encode(),0x0002|0x1000|0x0100)); \
time.sleep(2)";

#[test]
fn a_tap_is_made_persistent_opened_by_a_program_and_removed() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let s = sb.script("tap.rhai", TAP);
    let plan = sb.np_ok(&["plan", &s]);
    assert!(
        plan.contains("ip -n vm tuntap add dev tap0 mode tap user 1000 group 100 multi_queue"),
        "{plan}"
    );
    sb.np_ok(&["up", &s]);
    let t = link(&sb, "vm", "tap0");
    assert_eq!(t["linkinfo"]["info_kind"], "tun");
    let d = &t["linkinfo"]["info_data"];
    assert_eq!(d["type"], "tap");
    assert_eq!(d["persist"], true);
    assert_eq!(d["multi_queue"], true);
    assert_eq!(
        link(&sb, "vm", "tun0")["linkinfo"]["info_data"]["type"],
        "tun"
    );
    assert!(
        t["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "NO-CARRIER"),
        "no carrier while nobody holds it: {t}"
    );
    let held = sb.ok(&format!(
        "ip netns exec vm python3 -c \"{OPEN_TAP}\" & sleep 1; ip -n vm -j link show tap0; wait"
    ));
    let held: serde_json::Value = serde_json::from_str(&held).expect("ip -j");
    assert_eq!(held[0]["operstate"], "UP", "opened: {held}");
    let again = sb.np_ok(&["up", &s]);
    assert!(again.contains("no changes"), "{again}");
    // Day two: another owner makes it again, as a fresh up would.
    let s2 = sb.script("tap.rhai", &TAP.replace("owner: 1000", "owner: 1001"));
    sb.np_ok(&["up", &s2]);
    assert_eq!(
        link(&sb, "vm", "tap0")["linkinfo"]["info_data"]["user"],
        1001
    );
    sb.np_ok(&["down", "tap"]);
    assert_eq!(sb.snapshot(), before);
}

#[test]
fn veth_ends_and_bridge_ports_that_disagree_on_the_mtu_are_warned_about() {
    let sb = Sandbox::new();
    let s = sb.script(
        "mtu.rhai",
        r#"
let a = netns("ma");
let v = veth("mv0", a, "eth0");
v.mtu(9000).up();
v.peer.up();
let br = bridge("mbr");
let w = veth("mw0", a, "eth1");
br.attach(w);
br.attach(v);
br.up();
"#,
    );
    let o = sb.netplumb(&["up", &s]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("note: veth mv0 ↔ eth0 (line 3): MTU 9000 on one end, 1500 on the other"),
        "{err}"
    );
    assert!(err.contains("bridge mbr"), "{err}");
    assert!(
        err.contains("mw0 1500, mv0 9000") || err.contains("mv0 9000, mw0 1500"),
        "{err}"
    );
}
