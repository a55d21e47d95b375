//! `netplumb import` against topologies built by hand with `ip` and
//! `iptables` (iptables-nft) in a Sandbox: the imported script, `up` after
//! removing everything by hand, gives the same `ip -j` state and the same
//! port mappings carrying real TCP; 50 namespaces on a bridge import as one
//! loop; the text for three topologies is kept as goldens.

mod common;

use common::{Sandbox, root, text};
use serde_json::Value;

/// The seed's walkthrough, typed the way it was first done by hand (with
/// `ip link … type bridge` for brctl, and lo brought up as one does).
const SEED: &str = "
ip netns add foons
ip -n foons link set lo up
ip link add veth0 type veth peer name foo-veth0
ip link set foo-veth0 netns foons
ip -n foons link set foo-veth0 name eth0
ip -n foons addr add 172.18.0.20/16 dev eth0
ip -n foons link set eth0 up
ip link add foobr0 type bridge stp_state 0
ip addr add 172.18.0.1/16 dev foobr0
ip link set foobr0 up
ip link set veth0 master foobr0
ip link set veth0 up
ip -n foons route add default via 172.18.0.1
";

/// The seed plus its zabbix port mappings, with iptables -t nat lines (the
/// last one never matches: the general 10051 rule before it takes its port).
const ZABBIX: &str = "
ip link add zbr0 type bridge
ip addr add 172.17.0.1/16 dev zbr0
ip link set zbr0 up
for i in 3 4 5; do
  ip netns add zc$i
  ip -n zc$i link set lo up
  ip link add zv$i type veth peer name eth0 netns zc$i
  ip -n zc$i addr add 172.17.0.$i/16 dev eth0
  ip -n zc$i link set eth0 up
  ip link set zv$i master zbr0
  ip link set zv$i up
  ip -n zc$i route add default via 172.17.0.1
done
ip netns add zclient
ip -n zclient link set lo up
ip link add zup0 type veth peer name eth0 netns zclient
ip addr add 10.200.0.1/24 dev zup0
ip addr add 10.200.0.10/24 dev zup0
ip addr add 10.200.0.11/24 dev zup0
ip link set zup0 up
ip -n zclient addr add 10.200.0.2/24 dev eth0
ip -n zclient link set eth0 up
ip -n zclient route add default via 10.200.0.1
sysctl -qw net.ipv4.ip_forward=1
iptables -t nat -A POSTROUTING -s 172.17.0.0/16 ! -d 172.17.0.0/16 -j MASQUERADE
iptables -t nat -A PREROUTING -d 10.200.0.10 -p tcp --dport 10050 -j DNAT --to-destination 172.17.0.3:10050
iptables -t nat -A PREROUTING -d 10.200.0.11 -p tcp --dport 10050 -j DNAT --to-destination 172.17.0.4:10050
iptables -t nat -A PREROUTING -p tcp --dport 10050 -j DNAT --to-destination 172.17.0.3:10050
iptables -t nat -A PREROUTING -p tcp --dport 10051 -j DNAT --to-destination 172.17.0.4:10050
iptables -t nat -A PREROUTING -p tcp --dport 10052 -j DNAT --to-destination 172.17.0.5:10050
iptables -t nat -A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 172.17.0.3:80
iptables -t nat -A PREROUTING -d 10.200.0.11 -p tcp --dport 10051 -j DNAT --to-destination 172.17.0.5:10050
";

/// Two hosts behind a router namespace, with what the DSL cannot say: a
/// vxlan device, a route without a gateway, a rule iptables-nft wrote
/// that is no netplumb rule.
const ROUTER: &str = "
for n in r1 a b; do ip netns add $n; ip -n $n link set lo up; done
ip -n r1 link add ra type veth peer name eth0 netns a
ip -n r1 link add rb type veth peer name eth0 netns b
ip -n r1 addr add 10.1.0.1/24 dev ra
ip -n r1 addr add 10.2.0.1/24 dev rb
ip -n r1 link set ra up
ip -n r1 link set rb up
ip -n a addr add 10.1.0.2/24 dev eth0
ip -n a link set eth0 up
ip -n b addr add 10.2.0.2/24 dev eth0
ip -n b link set eth0 up
ip -n a route add default via 10.1.0.1
ip -n b route add default via 10.2.0.1
ip -n a route add 192.168.7.0/24 dev eth0
ip -n r1 link add vx0 type vxlan id 5 dstport 4789
ip netns exec b sysctl -qw net.ipv4.conf.all.proxy_arp=1
ip netns exec r1 sysctl -qw net.ipv4.ip_forward=1
ip netns exec r1 iptables -t nat -A POSTROUTING -s 10.1.0.0/24 ! -d 10.1.0.0/24 -o rb -j MASQUERADE
ip netns exec r1 iptables -t nat -A POSTROUTING -o rb -p udp -j MASQUERADE --random
";

/// A switch namespace (its bridge inside) with four hosts on IPv4 and
/// IPv6, an extra loopback address, and a veth pair both ends in the host.
const SWITCH: &str = "
ip netns add sw; ip -n sw link set lo up
ip -n sw link add br0 type bridge
ip -n sw link set br0 up
for i in 1 2 3 4; do
  ip netns add h$i; ip -n h$i link set lo up
  ip -n sw link add p$i type veth peer name eth0 netns h$i
  ip -n sw link set p$i master br0 up
  ip -n h$i addr add 10.9.0.$i/24 dev eth0
  ip -n h$i addr add fd00:9::$i/64 dev eth0 nodad
  ip -n h$i link set eth0 up
  ip -n h$i route add default via 10.9.0.254
  ip -n h$i -6 route add default via fd00:9::fe
done
ip -n sw addr add 10.9.0.254/24 dev br0
ip -n sw addr add fd00:9::fe/64 dev br0 nodad
ip -n sw addr add 10.255.0.1/32 dev lo
ip link add hh0 mtu 1400 type veth peer name hh1 mtu 1400
ip addr add 192.168.99.1/30 dev hh0
ip addr add 192.168.99.2/30 dev hh1
ip link set hh0 up
ip link set hh1 up
";

fn fifty() -> String {
    "ip link add br0 type bridge
ip addr add 10.50.0.1/16 dev br0
ip link set br0 up
for i in $(seq 1 50); do
  ip netns add n$i
  ip -n n$i link set lo up
  ip link add h$i type veth peer name eth0 netns n$i
  ip -n n$i addr add 10.50.0.$((i + 1))/16 dev eth0
  ip -n n$i link set eth0 up
  ip link set h$i master br0
  ip link set h$i up
  ip -n n$i route add default via 10.50.0.1
  ip netns exec n$i sysctl -qw net.ipv4.conf.all.proxy_arp=1
done"
        .into()
}

/// Everything removed by hand: the namespaces (and the veths into them),
/// the host's bridges and veths, the ruleset, forwarding.
const CLEAN: &str = "
for n in $(ip netns list | cut -d' ' -f1); do ip netns del $n; done
for d in $(ip -o link show type bridge | cut -d: -f2 | cut -d@ -f1); do ip link del $d; done
for d in $(ip -o link show type veth | cut -d: -f2 | cut -d@ -f1); do ip link del $d 2>/dev/null || true; done
nft flush ruleset
sysctl -qw net.ipv4.ip_forward=0
";

fn arr(sb: &Sandbox, cmd: &str) -> Vec<Value> {
    match sb.json(cmd) {
        Value::Array(a) => a,
        v => panic!("`{cmd}` is not an array: {v}"),
    }
}

fn keep(v: &Value, keys: &[&str]) -> String {
    keys.iter()
        .filter_map(|k| v.get(*k).map(|x| format!("{k}={x}")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What `ip -j` says of every namespace, without what differs between two
/// builds of the same thing: ifindexes, MACs, fe80 addresses and routes,
/// address lifetimes, DAD state, netplumb's mark on lo, creation order.
fn ip_state(sb: &Sandbox) -> String {
    let mut spaces = vec![String::new()];
    let list = sb.ok("ip netns list | cut -d' ' -f1 | sort");
    spaces.extend(list.lines().map(str::to_string));
    let mut out = String::new();
    for ns in spaces {
        let p = if ns.is_empty() {
            String::new()
        } else {
            format!("-n {ns} ")
        };
        out.push_str(&format!("== {ns}\n"));
        let mut links: Vec<String> = arr(sb, &format!("ip {p}-j link"))
            .iter()
            .map(|l| {
                let mut s = keep(
                    l,
                    &["ifname", "flags", "mtu", "link", "master", "link_type"],
                );
                if let Some(a) = l.get("ifalias").filter(|a| *a != "netplumb") {
                    s.push_str(&format!(" alias={a}"));
                }
                s
            })
            .collect();
        links.sort();
        let mut addrs: Vec<String> = arr(sb, &format!("ip {p}-j addr"))
            .iter()
            .map(|l| {
                let ours: Vec<String> = l["addr_info"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|a| !a["local"].as_str().unwrap_or("").starts_with("fe80"))
                    .map(|a| keep(a, &["family", "local", "prefixlen", "scope"]))
                    .collect();
                format!("{} {}", l["ifname"], ours.join(", "))
            })
            .collect();
        addrs.sort();
        let mut routes: Vec<String> = Vec::new();
        for fam in ["-4", "-6"] {
            for r in arr(sb, &format!("ip {p}{fam} -j route show table all")) {
                let dst = r["dst"].as_str().unwrap_or("");
                if dst.starts_with("fe80") || dst.starts_with("ff00") || r["type"] == "multicast" {
                    continue;
                }
                routes.push(keep(
                    &r,
                    &[
                        "type", "dst", "gateway", "dev", "table", "protocol", "scope", "prefsrc",
                        "metric",
                    ],
                ));
            }
        }
        routes.sort();
        let keys = "net.ipv4.ip_forward net.ipv4.conf.all.proxy_arp";
        let fwd = if ns.is_empty() {
            sb.ok(&format!("sysctl {keys}"))
        } else {
            sb.ok(&format!("ip netns exec {ns} sysctl {keys}"))
        };
        for part in [links, addrs, routes] {
            out.push_str(&part.join("\n"));
            out.push('\n');
        }
        out.push_str(&fwd);
    }
    out
}

/// `ip_state` once it holds still: carrier and DAD settle a moment after
/// the commands return (a bridge's LOWER_UP comes from the link watch).
fn settled(sb: &Sandbox) -> String {
    let mut last = ip_state(sb);
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let now = ip_state(sb);
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// Build `hand` in a fresh sandbox, import it, clean by hand, `up` the
/// import; the sandbox (still holding the rebuilt topology), the script and
/// the state before.
fn round_trip(hand: &str) -> (Sandbox, String, String) {
    let sb = Sandbox::new();
    sb.ok(&format!("set -e\n{hand}"));
    let before = settled(&sb);
    let file = sb.dir.path().join("x.rhai").display().to_string();
    sb.np_ok(&["import", "-o", &file]);
    let script = std::fs::read_to_string(&file).expect("import wrote the file");
    sb.ok(CLEAN);
    let empty = ip_state(&sb);
    assert_ne!(empty, before, "cleaning by hand removed nothing");
    assert_eq!(sb.ok("ip netns list"), "", "namespaces left after cleaning");
    sb.np_ok(&["up", &file]);
    let after = settled(&sb);
    if after != before {
        let b: Vec<&str> = before.lines().collect();
        let a: Vec<&str> = after.lines().collect();
        let gone: Vec<&&str> = b.iter().filter(|l| !a.contains(l)).collect();
        let new: Vec<&&str> = a.iter().filter(|l| !b.contains(l)).collect();
        panic!(
            "up of the import differs:\nonly before: {gone:#?}\nonly after: {new:#?}\nscript:\n{script}"
        );
    }
    (sb, script, before)
}

#[test]
fn seed_walkthrough_round_trips() {
    let (sb, script, _) = round_trip(SEED);
    assert!(
        script.contains("veth(\"veth0\", foons, \"eth0\")"),
        "{script}"
    );
    let ping = sb.sh("ip netns exec foons ping -c1 -W2 172.18.0.1");
    assert!(ping.status.success(), "{}", text(&ping.stdout));
}

#[test]
fn zabbix_mappings_round_trip_and_carry_tcp() {
    let sb = Sandbox::new();
    sb.ok(ZABBIX);
    let want = [
        ("10.200.0.1", 10050, "zc3"),
        ("10.200.0.1", 10051, "zc4"),
        ("10.200.0.1", 10052, "zc5"),
        ("10.200.0.10", 10050, "zc3"),
        ("10.200.0.11", 10050, "zc4"),
        ("10.200.0.1", 8080, "zc3"),
        ("10.200.0.11", 10051, "zc4"),
    ];
    let check = |sb: &Sandbox, when: &str| {
        let _s: Vec<_> = ["zc3", "zc4", "zc5"]
            .iter()
            .map(|c| sb.server(c, "0.0.0.0", &[10050, 80], c, false))
            .collect();
        for (addr, port, who) in want {
            let got = sb.fetch("zclient", addr, port, false);
            assert!(
                got.as_deref()
                    .is_some_and(|g| g.starts_with(&format!("{who} from"))),
                "{when}: {addr}:{port} gave {got:?}, want {who}"
            );
        }
    };
    check(&sb, "built by hand");
    drop(sb);
    let (sb, script, _) = round_trip(ZABBIX);
    for line in [
        "dnat(8080, \"172.17.0.3:80\");",
        "dnat(#{ daddr: \"10.200.0.10\", port: 10050, to: \"172.17.0.3:10050\" });",
        "masquerade(\"172.17.0.0/16\");",
        "for i in 3..6 {",
        "ip daddr 10.200.0.11 tcp dport 10051 counter dnat to 172.17.0.5:10050 (never used",
    ] {
        assert!(script.contains(line), "no `{line}` in\n{script}");
    }
    check(&sb, "after up of the import");
    // netplumb's own table reads back as the same mappings
    let again = sb.np_ok(&["import"]);
    assert_eq!(
        again.matches("dnat(").count(),
        script.matches("dnat(").count()
    );
}

#[test]
fn fifty_namespaces_import_as_one_loop() {
    let (sb, script, _) = round_trip(&fifty());
    assert!(script.contains("for i in 1..51 {"), "{script}");
    assert!(script.contains("`10.50.0.${i + 1}/16`"), "{script}");
    assert!(
        script.contains("    n.sysctl(\"net.ipv4.conf.all.proxy_arp\", \"1\");"),
        "{script}"
    );
    assert!(
        !script.contains("\"n17\""),
        "a namespace written out: {script}"
    );
    assert!(script.lines().count() < 30, "long script:\n{script}");
    let ping = sb.sh("ip netns exec n50 ping -c1 -W2 10.50.0.2");
    assert!(ping.status.success(), "n50 cannot reach n1");
}

#[test]
fn switch_namespace_ipv6_and_a_host_pair_round_trip() {
    let (sb, script, _) = round_trip(SWITCH);
    for line in [
        "let br0 = sw.bridge(\"br0\");",
        "    let v = sw.veth(`p${i}`, n, \"eth0\");",
        "    v.peer.addr(`10.9.0.${i}/24`).addr(`fd00:9::${i}/64`).up();",
        "    n.route(\"default\", \"fd00:9::fe\");",
        "sw.link(\"lo\").addr(\"10.255.0.1/32\");",
        "let hh0 = veth(\"hh0\", \"hh1\");",
    ] {
        assert!(script.contains(line), "no `{line}` in\n{script}");
    }
    let ping =
        sb.sh("ip netns exec h1 ping -c1 -W2 fd00:9::4 && ip netns exec h4 ping -c1 -W2 10.9.0.1");
    assert!(ping.status.success(), "{}", text(&ping.stdout));
}

#[test]
fn only_the_chosen_namespaces() {
    let sb = Sandbox::new();
    sb.ok(ROUTER);
    let out = sb.np_ok(&["import", "--netns", "a"]);
    assert!(out.contains("netns(\"a\")"), "{out}");
    assert!(!out.contains("netns(\"b\")"), "{out}");
    assert!(out.contains("not imported: netns a: veth eth0"), "{out}");
    let bad = sb.netplumb(&["import", "--netns", "nope"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("no namespace named 'nope'"));
}

fn golden(name: &str, got: &str) {
    let path = root()
        .join("tests/golden/import")
        .join(format!("{name}.rhai"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, got).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("no {}: run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(
        got, want,
        "import of {name} changed (UPDATE_GOLDEN=1 to accept)"
    );
}

#[test]
fn golden_imports() {
    for (name, hand) in [("seed", SEED), ("zabbix", ZABBIX), ("router", ROUTER)] {
        let sb = Sandbox::new();
        sb.ok(&format!("set -e\n{hand}"));
        let got = sb.np_ok(&["import"]);
        // every script import writes runs (plan needs no kernel)
        let file = sb.script(&format!("{name}.rhai"), &got);
        sb.np_ok(&["plan", &file]);
        golden(name, &got);
    }
}
