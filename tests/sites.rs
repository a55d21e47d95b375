//! Issue 19: one script across several machines. The machines are
//! simulated (tests/common/machines.rs): namespaces with their own /run,
//! joined by an underlay bridge, reached through a stand-in for ssh.

mod common;

use common::Sandbox;
use common::machines::{machines, ssh_script};

#[test]
fn simulated_machines_reach_each_other_and_keep_their_own_run() {
    let sb = Sandbox::new();
    let ms = machines(&sb, &["east", "west"]);
    ms[0].ok(&sb, "touch /run/netplumb/only-east");
    assert!(
        ms[1]
            .sh(&sb, "test -e /run/netplumb/only-east")
            .status
            .code()
            == Some(1)
    );
    let ssh = ssh_script(&sb, &ms);
    let o = sb.ok(&format!("{ssh} root@west ip -j addr show dev eth0"));
    assert!(o.contains("192.0.2.2"), "{o}");
    let o = sb.ok(&format!("{ssh} east netplumb --version"));
    assert!(o.contains("netplumb"), "{o}");
}

const PAIR: &str = r#"
let east = site("east", #{ underlay: "192.0.2.1" });
let west = site("west", #{ underlay: "192.0.2.2" });
let a = east.netns("a");
let b = west.netns("b");
let v = a.veth("eth0", b, "eth0");
v.addr("10.9.0.1/24").up();
v.peer.addr("10.9.0.2/24").up();
"#;

/// The device `dev` in netns `ns` ("": the machine's own) of machine `m`,
/// as `ip -j -d` shows it.
fn link(sb: &Sandbox, m: &common::machines::Machine, ns: &str, dev: &str) -> serde_json::Value {
    let n = if ns.is_empty() {
        String::new()
    } else {
        format!("-n {ns}")
    };
    let o = m.ok(sb, &format!("ip -j -d {n} link show dev {dev}"));
    let v: serde_json::Value = serde_json::from_str(&o).expect("ip -j");
    v[0].clone()
}

/// Acceptance 1: two machines, `up --site` on each; the cross-site veth
/// pings, a large DF ping crosses, a frame over the tunnel's MTU is
/// refused at the sender (no black hole), and TCP with full-size
/// segments carries a file across.
#[test]
fn a_cross_site_veth_is_a_vxlan_pair_that_carries_full_size_traffic() {
    let sb = Sandbox::new();
    let ms = machines(&sb, &["east", "west"]);
    let (east, west) = (&ms[0], &ms[1]);
    let p = sb.script("pair.rhai", PAIR);
    let out = east.np_ok(&sb, &["up", &p, "--site", "east"]);
    assert!(out.contains("+ vxlan a:eth0"), "{out}");
    west.np_ok(&sb, &["up", &p, "--site", "west"]);

    // A vxlan in the namespace, its UDP socket in the machine's own.
    let l = link(&sb, east, "a", "eth0");
    let d = &l["linkinfo"]["info_data"];
    assert_eq!(l["linkinfo"]["info_kind"], "vxlan");
    assert_eq!(
        (d["remote"].clone(), d["local"].clone(), d["port"].clone()),
        ("192.0.2.2".into(), "192.0.2.1".into(), 4789.into())
    );
    assert_eq!(l["mtu"], 1450, "underlay 1500 less 50");
    let vni = d["id"].as_u64().expect("vni");
    assert!((0x10000..=0xFF_FFFF).contains(&vni), "{vni}");
    assert_eq!(
        link(&sb, west, "b", "eth0")["linkinfo"]["info_data"]["id"],
        vni
    );
    let socks = east.ok(&sb, "ss -Hulnp");
    assert!(socks.contains(":4789"), "socket in the host: {socks}");
    let inside = east.ok(&sb, "ip netns exec a ss -Huln");
    assert!(!inside.contains(":4789"), "{inside}");

    east.ok(&sb, "ip netns exec a ping -c1 -W5 10.9.0.2 >/dev/null");
    east.ok(
        &sb,
        "ip netns exec a ping -c2 -W5 -M do -s 1400 10.9.0.2 >/dev/null",
    );
    // 1422 + 28 = the tunnel's 1450: crosses; one byte more is refused
    // at the sender, not dropped silently on the way.
    east.ok(
        &sb,
        "ip netns exec a ping -c1 -W5 -M do -s 1422 10.9.0.2 >/dev/null",
    );
    let o = east.sh(&sb, "ip netns exec a ping -c1 -W2 -M do -s 1423 10.9.0.2");
    assert!(!o.status.success());
    assert!(
        common::text(&o.stderr).contains("message too long")
            || common::text(&o.stdout).contains("mtu=1450"),
        "{}{}",
        common::text(&o.stdout),
        common::text(&o.stderr)
    );

    // TCP with full-size segments: 2 MB across, byte for byte.
    let dir = sb.script("payload", "");
    let _ = std::fs::remove_file(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    sb.ok(&format!("head -c 2000000 /dev/urandom > {dir}/in"));
    let mut srv = west
        .cmd(&sb, "sh")
        .args([
            "-c",
            &format!(
                "ip netns exec b socat -u TCP-LISTEN:7000,reuseaddr OPEN:{dir}/out,creat,trunc"
            ),
        ])
        .spawn()
        .expect("socat server");
    east.ok(
        &sb,
        &format!(
            "for i in 1 2 3 4 5 6 7 8 9 10; do ip netns exec a socat -u OPEN:{dir}/in TCP:10.9.0.2:7000 && exit 0; sleep 0.3; done; exit 1"
        ),
    );
    let st = srv.wait().expect("server");
    assert!(st.success());
    sb.ok(&format!("cmp {dir}/in {dir}/out"));
}

fn up_all(sb: &Sandbox, ms: &[common::machines::Machine], script: &str) {
    for m in ms {
        m.np_ok(sb, &["up", script, "--site", &m.name]);
    }
}

/// Acceptance 2 (scripts/sites.rhai): a bridge stretched over three
/// machines; every pair of namespaces reaches every other, full-size
/// frames included (the MTU rule gave every port the tunnel's 1450), and
/// the routed link between east and west pings too.
#[test]
fn a_bridge_stretched_over_three_machines_joins_every_pair() {
    let sb = Sandbox::new();
    let ms = machines(&sb, &["east", "west", "north"]);
    let script = common::script_path("scripts/sites.rhai");
    up_all(&sb, &ms, &script);
    for (i, m) in ms.iter().enumerate() {
        let me = i + 1;
        // Head-end replication: one all-zero-MAC entry per other site.
        let vx = m.ok(&sb, "ip -j -d link show type vxlan");
        let vx: serde_json::Value = serde_json::from_str(&vx).expect("ip -j");
        let dev = vx[0]["ifname"].as_str().expect("a vxlan port").to_string();
        assert_eq!(vx[0]["master"], "lan0");
        let fdb = m.ok(&sb, &format!("bridge fdb show dev {dev}"));
        for o in ms.iter().filter(|o| o.name != m.name) {
            assert!(
                fdb.contains(&format!(
                    "00:00:00:00:00:00 dst {} self permanent",
                    o.underlay
                )),
                "{}: {fdb}",
                m.name
            );
        }
        assert_eq!(link(&sb, m, &format!("h{me}"), "eth0")["mtu"], 1450);
        for other in 1..=3 {
            if other != me {
                m.ok(
                    &sb,
                    &format!(
                        "ip netns exec h{me} ping -c1 -W5 -M do -s 1422 10.8.0.{other} >/dev/null"
                    ),
                );
            }
        }
    }
    ms[0].ok(&sb, "ip netns exec r1 ping -c1 -W5 10.255.0.2 >/dev/null");
    // A second up on each changes nothing.
    for m in &ms {
        let o = m.np_ok(&sb, &["up", &script, "--site", &m.name]);
        assert!(o.contains("no changes"), "{}: {o}", m.name);
    }
}

/// `plan` shows every site's part under its header, the MTU rule in a
/// comment, and the head-end replication as `bridge fdb append` lines.
#[test]
fn plan_shows_each_site_and_says_why_the_mtu_is_what_it_is() {
    let sb = Sandbox::new();
    let script = common::script_path("scripts/sites.rhai");
    let out = sb.np_ok(&["plan", &script]);
    for h in [
        "# site east (underlay 192.0.2.1)",
        "# site west (underlay 192.0.2.2)",
        "# site north (underlay 192.0.2.3)",
    ] {
        assert!(out.contains(h), "{out}");
    }
    assert!(out.contains("underlay 1500 − 50 bytes of VXLAN"), "{out}");
    assert!(
        out.contains("bridge fdb append 00:00:00:00:00:00 dev vx"),
        "{out}"
    );
    let e = fails(&sb.netplumb(&["plan", "--json", &script]));
    assert!(
        e.contains("plan --json of a script with sites is one document per site: add --site NAME (east, west, north)"),
        "{e}"
    );
    let c = sb.np_ok(&["check", &script]);
    assert!(
        c.contains(
            "valid; 3 sites, on empty machines their parts make east 18, west 18, north 14 changes"
        ),
        "{c}"
    );
    // The underlay's family and MTU decide the tunnels' MTU.
    let v6 = sb.script(
        "v6.rhai",
        &PAIR
            .replace(r#"192.0.2.1" }"#, r#"2001:db8::1", mtu: 9000 }"#)
            .replace(r#"192.0.2.2" }"#, r#"2001:db8::2", mtu: 9000 }"#),
    );
    let out6 = sb.np_ok(&["plan", &v6, "--site", "east"]);
    assert!(out6.contains("underlay 9000 − 70 bytes of VXLAN"), "{out6}");
    assert!(
        out6.contains("mtu 8930 netns a type vxlan") && out6.contains("remote 2001:db8::2"),
        "{out6}"
    );
    let east = sb.np_ok(&["plan", &script, "--site", "east"]);
    assert!(!east.contains("# site"), "{east}");
    assert!(
        east.contains("netns r1 type vxlan") || east.contains("netns r1"),
        "{east}"
    );
    assert!(!east.contains("netns add r2"), "{east}");
}

/// The error of a run that must fail, its lines joined as one (miette
/// wraps long messages).
fn fails(o: &std::process::Output) -> String {
    assert!(!o.status.success(), "should have failed");
    common::text(&o.stderr)
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn sites_are_refused_clearly() {
    let sb = Sandbox::new();
    let ms = machines(&sb, &["east"]);
    let east = &ms[0];
    let p = sb.script("pair.rhai", PAIR);
    let e = fails(&east.np(&sb, &["up", &p]));
    assert!(
        e.contains("this script has sites (east, west): bring one up with --site NAME"),
        "{e}"
    );
    let e = fails(&east.np(&sb, &["up", &p, "--site", "south"]));
    assert!(
        e.contains("--site south: the script has no site south (its sites: east, west)"),
        "{e}"
    );
    let plain = sb.script("plain.rhai", "netns(\"x\");\n");
    let e = fails(&east.np(&sb, &["up", &plain, "--site", "east"]));
    assert!(
        e.contains("--site east: the script declares no sites"),
        "{e}"
    );
    let nosite = sb.script(
        "nosite.rhai",
        "let east = site(\"east\", #{ underlay: \"192.0.2.1\" });\nlet x = netns(\"x\");\n",
    );
    let e = fails(&east.np(&sb, &["up", &nosite, "--site", "east"]));
    assert!(
        e.contains("netns(\"x\") is on no site, but this script has sites (east, line 1)"),
        "{e}"
    );
    assert!(
        e.contains("east.netns(\"x\")") && e.contains("nosite.rhai:2"),
        "{e}"
    );
    let nat = sb.script(
        "nat.rhai",
        "let east = site(\"east\", #{ underlay: \"192.0.2.1\" });\nmasquerade(\"10.0.0.0/8\");\n",
    );
    let e = fails(&east.np(&sb, &["up", &nat, "--site", "east"]));
    assert!(
        e.contains("masquerade() is on no site, but this script has sites (east, line 1): declare it on one, as east.host().masquerade(…)"),
        "{e}"
    );
    // Nothing was made by any of them.
    assert_eq!(east.ok(&sb, "ip netns list"), "");
    let twice = sb.script(
        "twice.rhai",
        &format!("{PAIR}\nlet c = east.netns(\"c\");\nlet d = west.netns(\"d\");\nc.veth(\"e0\", d, \"e0\", #{{ vni: 7 }});\nc.veth(\"e1\", d, \"e1\", #{{ vni: 7 }});\n"),
    );
    let e = fails(&sb.netplumb(&["plan", &twice]));
    assert!(
        e.contains("VNI 7 (port 4789) is already used by c:e0 ↔ d:e0"),
        "{e}"
    );
}

/// What a user would compare on a machine: per namespace (the machine's
/// own first) its links (kind, MTU, up, master, VXLAN id/remote/local/
/// port), addresses (no link-local) and head-end replication entries;
/// ifindexes and MAC addresses left out.
fn snap(sb: &Sandbox, m: &common::machines::Machine) -> String {
    let nss = m.ok(sb, "ip netns list | cut -d' ' -f1");
    let mut out = Vec::new();
    for ns in std::iter::once("").chain(nss.lines()) {
        let n = if ns.is_empty() {
            String::new()
        } else {
            format!("-n {ns}")
        };
        let links: serde_json::Value =
            serde_json::from_str(&m.ok(sb, &format!("ip -j -d {n} link show"))).expect("links");
        for l in links.as_array().expect("array") {
            let d = &l["linkinfo"]["info_data"];
            let up = l["flags"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x == "UP"));
            out.push(format!(
                "{ns} link {} {} mtu {} up {up} master {} vx {} {} {} {}",
                l["ifname"],
                l["linkinfo"]["info_kind"],
                l["mtu"],
                l["master"],
                d["id"],
                d["remote"],
                d["local"],
                d["port"]
            ));
        }
        let addrs: serde_json::Value =
            serde_json::from_str(&m.ok(sb, &format!("ip -j {n} addr show"))).expect("addrs");
        for l in addrs.as_array().expect("array") {
            for a in l["addr_info"].as_array().cloned().unwrap_or_default() {
                let local = a["local"].as_str().unwrap_or("");
                if !local.starts_with("fe80") {
                    out.push(format!(
                        "{ns} addr {} {local}/{}",
                        l["ifname"], a["prefixlen"]
                    ));
                }
            }
        }
        for f in m
            .ok(
                sb,
                &format!("bridge {n} fdb show | grep '^00:00:00:00:00:00' || true"),
            )
            .lines()
        {
            out.push(format!("{ns} fdb {f}"));
        }
    }
    out.sort();
    out.join("\n")
}

const DAY1: &str = r#"
let east = site("east", #{ underlay: "192.0.2.1" });
let west = site("west", #{ underlay: "192.0.2.2" });
let a = east.netns("a");
let b = west.netns("b");
let v = a.veth("eth0", b, "eth0");
v.addr("10.9.0.1/24").up();
v.peer.addr("10.9.0.2/24").up();
let n = 0;
let lans = [];
for s in [east, west] {
    n += 1;
    let br = s.bridge("lan0");
    br.up();
    let h = s.netns(`h${n}`);
    let p = h.veth("eth0", s.host(), `p${n}`);
    p.addr(`10.8.0.${n}/24`).up();
    br.attach(p.peer);
    p.peer.up();
    lans.push(br);
}
stretch(lans, #{});
"#;

/// Day two: the VNI and MTU of the cross-site veth edited, a third site
/// added to the stretched bridge (so its VNI and replication lists
/// change), the second version brought up over the first = a fresh up of
/// it, on every machine; then `down` leaves every machine as before.
#[test]
fn day_two_edits_of_tunnels_converge_to_a_fresh_up_and_down_restores() {
    let sb = Sandbox::new();
    let ms = machines(&sb, &["east", "west", "north"]);
    let before: Vec<String> = ms.iter().map(|m| snap(&sb, m)).collect();
    let v1 = sb.script("lab.rhai", DAY1);
    up_all(&sb, &ms[..2], &v1);
    let vni1 = link(&sb, &ms[0], "a", "eth0")["linkinfo"]["info_data"]["id"].clone();
    let day2 = DAY1
        .replace(
            r#"site("west", #{ underlay: "192.0.2.2" });"#,
            "site(\"west\", #{ underlay: \"192.0.2.2\" });\nlet north = site(\"north\", #{ underlay: \"192.0.2.3\" });",
        )
        .replace(
            r#"a.veth("eth0", b, "eth0");"#,
            r#"a.veth("eth0", b, "eth0", #{ vni: 5000 }); v.mtu(1400); v.peer.mtu(1400);"#,
        )
        .replace("[east, west]", "[east, west, north]");
    assert_ne!(day2, DAY1);
    std::fs::write(&v1, &day2).expect("edit");
    up_all(&sb, &ms, &v1);
    let edited: Vec<String> = ms.iter().map(|m| snap(&sb, m)).collect();
    let l = link(&sb, &ms[0], "a", "eth0");
    assert_eq!(l["linkinfo"]["info_data"]["id"], 5000, "was {vni1}");
    assert_eq!(l["mtu"], 1400);
    ms[0].ok(
        &sb,
        "ip netns exec a ping -c1 -W5 -M do -s 1372 10.9.0.2 >/dev/null",
    );
    for (i, m) in ms.iter().enumerate() {
        for j in 1..=3 {
            if j != i + 1 {
                m.ok(
                    &sb,
                    &format!(
                        "ip netns exec h{} ping -c1 -W5 10.8.0.{j} >/dev/null",
                        i + 1
                    ),
                );
            }
        }
    }
    // The same as a fresh up of the second version.
    for m in &ms {
        m.np_ok(&sb, &["down", &v1, "--site", &m.name]);
    }
    for (m, b) in ms.iter().zip(&before) {
        assert_eq!(
            &snap(&sb, m),
            b,
            "{}: down leaves the machine as before",
            m.name
        );
    }
    up_all(&sb, &ms, &v1);
    for ((m, e), i) in ms.iter().zip(&edited).zip(0..) {
        assert_eq!(&snap(&sb, m), e, "{} (#{i}): day two = fresh up", m.name);
    }
    // And back to the first version: north's part goes with `down` there.
    std::fs::write(&v1, DAY1).expect("edit back");
    up_all(&sb, &ms[..2], &v1);
    ms[2].np_ok(&sb, &["down", "--name", "lab", "--site", "north"]);
    assert_eq!(snap(&sb, &ms[2]), before[2]);
    let fdb = ms[0].ok(&sb, "bridge fdb show | grep '^00:00:00:00:00:00'");
    assert!(
        !fdb.contains("192.0.2.3"),
        "north left the replication list: {fdb}"
    );
    for m in &ms[..2] {
        m.np_ok(&sb, &["down", &v1, "--site", &m.name]);
    }
    for (m, b) in ms.iter().zip(&before) {
        assert_eq!(&snap(&sb, m), b, "{}: as before", m.name);
    }
}

/// Drift of a tunnel end (deleted, its MTU changed) and of a replication
/// entry (deleted) is repaired by the next `up`, and traffic flows again.
#[test]
fn drift_of_tunnel_ends_and_replication_is_repaired() {
    let sb = Sandbox::new();
    let ms = machines(&sb, &["east", "west"]);
    let p = sb.script("lab.rhai", DAY1);
    up_all(&sb, &ms, &p);
    let east = &ms[0];
    let good = snap(&sb, east);
    east.ok(&sb, "ip -n a link del eth0");
    let dev = east.ok(
        &sb,
        "ip -j link show type vxlan | grep -o '\"ifname\":\"vx[0-9]*\"' | cut -d'\"' -f4",
    );
    let dev = dev.trim();
    east.ok(
        &sb,
        &format!("bridge fdb del 00:00:00:00:00:00 dev {dev} dst 192.0.2.2"),
    );
    let o = east.np(&sb, &["check", "lab"]);
    assert_eq!(o.status.code(), Some(1), "check sees the drift");
    let out = east.np_ok(&sb, &["up", &p, "--site", "east"]);
    assert!(
        out.contains("+ vxlan a:eth0") && out.contains("(repaired)"),
        "{out}"
    );
    assert!(out.contains(&format!("+ flood {dev} → 192.0.2.2")), "{out}");
    assert_eq!(snap(&sb, east), good);
    east.ok(&sb, "ip netns exec a ping -c1 -W5 10.9.0.2 >/dev/null");
    east.ok(&sb, "ip netns exec h1 ping -c1 -W5 10.8.0.2 >/dev/null");
    east.ok(&sb, "ip -n a link set eth0 mtu 1300");
    let out = east.np_ok(&sb, &["up", &p, "--site", "east"]);
    assert!(
        out.contains("mtu 1450") && out.contains("(repaired)"),
        "{out}"
    );
    assert_eq!(snap(&sb, east), good);
}

/// `down --site west` on west removes west's part only; east keeps its
/// part and its records. On east, `down --site west` is refused and
/// changes nothing.
#[test]
fn down_of_one_site_leaves_the_others() {
    let sb = Sandbox::new();
    let ms = machines(&sb, &["east", "west"]);
    let (east, west) = (&ms[0], &ms[1]);
    let wbefore = snap(&sb, west);
    let p = sb.script("pair.rhai", PAIR);
    up_all(&sb, &ms, &p);
    let egood = snap(&sb, east);
    let e = fails(&east.np(&sb, &["down", "--name", "pair", "--site", "west"]));
    assert!(
        e.contains(
            "topology 'pair' on this machine is site east's part, not west's: nothing removed"
        ),
        "{e}"
    );
    assert_eq!(snap(&sb, east), egood);
    west.np_ok(&sb, &["down", &p, "--site", "west"]);
    assert_eq!(snap(&sb, west), wbefore);
    assert_eq!(snap(&sb, east), egood);
    let shown = east.np_ok(&sb, &["show", "pair"]);
    assert!(shown.starts_with("topology pair (site east)"), "{shown}");
    let j: serde_json::Value =
        serde_json::from_str(&east.np_ok(&sb, &["show", "--json"])).expect("json");
    assert_eq!(j["topologies"][0]["site"], "east");
    assert!(east.ok(&sb, "ls /run/netplumb/*").contains("pair"));
}

/// A VNI another topology on this machine uses, or a foreign vxlan in the
/// host namespace holds, is refused before any change, naming both.
#[test]
fn a_vni_taken_on_the_machine_is_refused_before_any_change() {
    let sb = Sandbox::new();
    let ms = machines(&sb, &["east"]);
    let east = &ms[0];
    let one = PAIR.replace(r#"b, "eth0");"#, r#"b, "eth0", #{ vni: 4242 });"#);
    let p = sb.script("one.rhai", &one);
    east.np_ok(&sb, &["up", &p, "--site", "east"]);
    let before = snap(&sb, east);
    let two = one.replace("netns(\"a\")", "netns(\"c\")");
    let q = sb.script("two.rhai", &two);
    let e = fails(&east.np(&sb, &["up", &q, "--site", "east"]));
    assert!(
        e.contains("VNI 4242 (port 4789) of c:eth0 (line 6) is already used on this machine by topology 'one' (link a:eth0)"),
        "{e}"
    );
    assert_eq!(snap(&sb, east), before);
    east.np_ok(&sb, &["down", &p]);
    let before = snap(&sb, east);
    east.ok(
        &sb,
        "ip link add theirs type vxlan id 4242 local 192.0.2.1 dstport 4789",
    );
    let e = fails(&east.np(&sb, &["up", &q, "--site", "east"]));
    assert!(
        e.contains("is already used on this machine by vxlan theirs in the host namespace, not this topology's"),
        "{e}"
    );
    east.ok(&sb, "ip link del theirs");
    assert_eq!(snap(&sb, east), before);
    // One in a namespace, its socket on the machine's: the kernel refuses
    // ours half-way, the run rolls back and says why.
    east.ok(&sb, "ip netns add other && ip link add theirs netns other type vxlan id 4242 local 192.0.2.1 dstport 4789");
    let before = snap(&sb, east);
    let e = fails(&east.np(&sb, &["up", &q, "--site", "east"]));
    assert!(
        e.contains("a vxlan with this VNI and port already exists on this machine's UDP socket"),
        "{e}"
    );
    assert_eq!(snap(&sb, east), before);
    east.ok(&sb, "ip netns del other");
}

/// `graph FILE` of a script with sites: each site a cluster, tunnels
/// dashed edges labelled with their VNI (dot, which Graphviz renders, and
/// mermaid).
#[test]
fn graph_of_a_script_draws_sites_as_clusters_and_tunnels_dashed() {
    let sb = Sandbox::new();
    let script = common::script_path("scripts/sites.rhai");
    let plan = sb.np_ok(&["plan", &script, "--site", "east"]);
    let vni = |what: &str| -> String {
        let l = plan.lines().find(|l| l.contains(what)).expect(what);
        l.split("vni ")
            .nth(1)
            .expect("vni")
            .split(',')
            .next()
            .expect("n")
            .to_string()
    };
    let (wan, lan) = (vni("r1:wan0 ↔ r2:wan0"), vni("bridge lan0"));
    let dot = sb.np_ok(&["graph", &script]);
    for c in [
        "site east (192.0.2.1)",
        "site west (192.0.2.2)",
        "site north (192.0.2.3)",
    ] {
        assert!(
            dot.contains(&format!("label=\"{c}\"; style=bold;")),
            "{dot}"
        );
    }
    assert!(
        dot.contains(&format!(
            "\"east__ns_r1__wan0\" -- \"west__ns_r2__wan0\" [style=dashed, label=\"vni {wan}\"]"
        )),
        "{dot}"
    );
    // A stretched bridge: one tunnel edge per pair of sites.
    assert_eq!(
        dot.matches(&format!("label=\"vni {lan}\"")).count(),
        3,
        "{dot}"
    );
    if sb.sh("command -v dot").status.success() {
        let svg = sb.np_ok(&["graph", &script, "--format", "svg"]);
        assert!(svg.contains("<svg"), "{svg}");
    }
    let mm = sb.np_ok(&["graph", &script, "--format", "mermaid"]);
    assert!(
        mm.contains("subgraph site0[\"site east (192.0.2.1)\"]"),
        "{mm}"
    );
    assert!(
        mm.contains(&format!(
            "east__ns_r1__wan0 -. \"vni {wan}\" .- west__ns_r2__wan0"
        )),
        "{mm}"
    );
}

/// In a `--site` run, what the script asks of another site's namespaces
/// (`ping()`, `exec()`, `assert_reach`, a daemon) is not run on this
/// machine: that site's own run does it.
#[test]
fn another_sites_pings_execs_asserts_and_daemons_are_left_to_it() {
    let sb = Sandbox::new();
    let ms = machines(&sb, &["east", "west"]);
    let body = format!(
        "{PAIR}\nprint(`ping ${{b.ping(\"10.9.0.1\")}}`);\nprint(`exec ${{b.exec(\"echo hi\").stdout}}`);\nassert_reach(b, \"10.9.0.1\");\nb.daemon(\"sleep 300\", #{{ name: \"nap\" }});\n"
    );
    let p = sb.script("far.rhai", &body);
    let o = ms[0].np(&sb, &["up", &p, "--site", "east"]);
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    let err = common::text(&o.stderr);
    assert!(
        err.contains("ping 10.9.0.1 from netns b (on site west): left to that site, not run here"),
        "{err}"
    );
    assert!(
        err.contains("exec `echo hi` in netns b (on site west): left to that site"),
        "{err}"
    );
    let ps = ms[0].np_ok(&sb, &["ps"]);
    assert!(!ps.contains("nap"), "{ps}");
    // On west they run, and the assertion is checked there.
    let o = ms[1].np(&sb, &["up", &p, "--site", "west"]);
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    let said = common::text(&o.stdout) + &common::text(&o.stderr);
    assert!(
        said.contains("exec hi") && said.contains("ping true"),
        "{said}"
    );
    let ps = ms[1].np(&sb, &["ps"]);
    ms[1].np_ok(&sb, &["down", &p, "--site", "west"]);
    assert!(common::text(&ps.stdout).contains("nap"));
}

/// A stretched bridge with a fixed VNI keeps its vxlan port when a site
/// joins or leaves: only the head-end replication entries change, in
/// place (`+ flood` / `- flood`), and the result equals a fresh up.
#[test]
fn a_site_joining_a_fixed_vni_stretch_changes_only_the_replication_list() {
    let sb = Sandbox::new();
    let ms = machines(&sb, &["east", "west", "north"]);
    let two = DAY1.replace("stretch(lans, #{});", "stretch(lans, #{ vni: 7000 });");
    let three = two
        .replace(
            r#"site("west", #{ underlay: "192.0.2.2" });"#,
            "site(\"west\", #{ underlay: \"192.0.2.2\" });\nlet north = site(\"north\", #{ underlay: \"192.0.2.3\" });",
        )
        .replace("[east, west]", "[east, west, north]");
    let p = sb.script("lab.rhai", &two);
    up_all(&sb, &ms[..2], &p);
    let index = |m: &common::machines::Machine| link(&sb, m, "", "vx7000")["ifindex"].clone();
    let before = index(&ms[0]);
    std::fs::write(&p, &three).expect("edit");
    let out = ms[0].np_ok(&sb, &["up", &p, "--site", "east"]);
    assert!(out.contains("+ flood vx7000 → 192.0.2.3"), "{out}");
    assert!(!out.contains("vxlan vx7000"), "the port stays: {out}");
    assert_eq!(index(&ms[0]), before);
    ms[1].np_ok(&sb, &["up", &p, "--site", "west"]);
    ms[2].np_ok(&sb, &["up", &p, "--site", "north"]);
    ms[2].ok(&sb, "ip netns exec h3 ping -c1 -W5 10.8.0.1 >/dev/null");
    let edited = snap(&sb, &ms[0]);
    // North leaves again: its entry goes, in place.
    std::fs::write(&p, &two).expect("edit back");
    let out = ms[0].np_ok(&sb, &["up", &p, "--site", "east"]);
    assert!(out.contains("- flood vx7000 → 192.0.2.3"), "{out}");
    assert_eq!(index(&ms[0]), before);
    let fdb = ms[0].ok(
        &sb,
        "bridge fdb show dev vx7000 | grep '^00:00:00:00:00:00'",
    );
    assert_eq!(fdb.trim(), "00:00:00:00:00:00 dst 192.0.2.2 self permanent");
    // The three-site version over the two-site one = a fresh up of it.
    std::fs::write(&p, &three).expect("edit");
    ms[0].np_ok(&sb, &["up", &p, "--site", "east"]);
    assert_eq!(snap(&sb, &ms[0]), edited);
    ms[0].np_ok(&sb, &["down", &p, "--site", "east"]);
    ms[0].np_ok(&sb, &["up", &p, "--site", "east"]);
    assert_eq!(snap(&sb, &ms[0]), edited);
}
