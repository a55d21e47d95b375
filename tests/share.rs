//! Issue 11 acceptance, topologies side by side: a namespace, a bridge (and
//! its gateway address) and ip_forward shared by two and three topologies,
//! brought down in every order with the survivors still carrying real TCP
//! through their DNAT; a published port refused naming both; an adopted
//! veth end moved, renamed and put back.

mod common;

use common::kstate::{assert_same, state};
use common::{Sandbox, text};

/// Topology p{i}: its own veth into the shared namespace on the shared
/// bridge, its own client, its own published port 808{i}.
fn shared_script(i: u8) -> String {
    format!(
        r#"
let sh = netns("shared");
let br = bridge("shbr0");
br.addr("10.80.0.1/24").addr("10.80.{i}.1/24").up();
let v = veth("p{i}0", sh, "p{i}-eth");
br.attach(v);
v.up();
v.peer.addr("10.80.{i}.2/24").up();
sh.route("10.81.{i}.0/24", "10.80.{i}.1");
let cl = netns("p{i}cl");
let c = veth("p{i}c", cl, "eth0");
c.addr("10.81.{i}.1/24").up();
c.peer.addr("10.81.{i}.2/24").up();
cl.route("default", "10.81.{i}.1");
dnat(808{i}, "10.80.{i}.2:80");
"#
    )
}

/// Survivor p{i} works: real TCP from its client through its DNAT into the
/// shared namespace, no drift, forwarding still on.
fn works(sb: &Sandbox, i: u8) {
    assert_eq!(
        sb.fetch(
            &format!("p{i}cl"),
            &format!("10.81.{i}.1"),
            8080 + u16::from(i),
            false
        )
        .as_deref(),
        Some(format!("p{i} from 10.81.{i}.2").as_str()),
        "p{i} through its DNAT"
    );
    let out = sb.np_ok(&["check", &format!("p{i}")]);
    assert!(out.contains("no drift"), "check p{i}: {out}");
    assert_eq!(sb.ok("sysctl -n net.ipv4.ip_forward").trim(), "1");
    let a = sb.json("ip -j addr show shbr0");
    assert_eq!(a[0]["addr_info"][0]["local"], "10.80.0.1", "{a}");
}

fn round(sb: &Sandbox, order: &[u8], before: &str) {
    for &i in order {
        let s = sb.script(&format!("p{i}.rhai"), &shared_script(i));
        sb.np_ok(&["-q", "up", &s]);
    }
    for (k, &gone) in order.iter().enumerate() {
        let left: Vec<u8> = order[k..].to_vec();
        {
            let _servers: Vec<common::Server> = left
                .iter()
                .map(|i| {
                    sb.server(
                        "shared",
                        &format!("10.80.{i}.2"),
                        &[80],
                        &format!("p{i}"),
                        false,
                    )
                })
                .collect();
            for &i in &left {
                works(sb, i);
            }
        }
        sb.np_ok(&["-q", "down", "--name", &format!("p{gone}")]);
        let links = sb.ok("ip -br link");
        assert!(!links.contains(&format!("p{gone}0")), "{links}");
        for &i in &left[1..] {
            assert!(
                links.contains(&format!("p{i}0")),
                "p{i} lost its veth: {links}"
            );
        }
    }
    assert_eq!(sb.snapshot(), before, "after down in order {order:?}");
    assert_eq!(sb.ok("sysctl -n net.ipv4.ip_forward").trim(), "0");
}

#[test]
fn two_topologies_share_netns_bridge_and_forwarding_down_in_either_order() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    round(&sb, &[1, 2], &before);
    round(&sb, &[2, 1], &before);
}

#[test]
fn three_topologies_share_down_in_every_order() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    for order in [
        [1, 2, 3],
        [1, 3, 2],
        [2, 1, 3],
        [2, 3, 1],
        [3, 1, 2],
        [3, 2, 1],
    ] {
        round(&sb, &order, &before);
    }
}

#[test]
fn a_port_published_by_another_topology_is_refused_naming_both() {
    let sb = Sandbox::new();
    let pa = sb.script(
        "pa.rhai",
        "let n = netns(\"pan\");\nn.veth(\"eth0\", \"x0\").addr(\"10.82.0.1/24\").up();\ndnat(8080, \"10.82.0.1:80\");\n",
    );
    let pb = sb.script(
        "pb.rhai",
        "let n = netns(\"pbn\");\nn.veth(\"eth0\", \"x0\").addr(\"10.83.0.1/24\").up();\ndnat(8080, \"10.83.0.1:80\");\n",
    );
    sb.np_ok(&["-q", "up", &pa]);
    let before = state(&sb);
    let o = sb.netplumb(&["up", &pb]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(
        err.contains("tcp port 8080 in host is already published by topology 'pa' (pa.rhai:3)"),
        "{err}"
    );
    assert!(err.contains("pb.rhai:3"), "the refused line of pb: {err}");
    assert_eq!(
        text(&o.stdout),
        "",
        "nothing was changed, nothing is listed"
    );
    assert_same(&state(&sb), &before, "refused up vs before it");
    // pa is untouched and pb has no record to take down.
    let out = sb.np_ok(&["check", "pa"]);
    assert!(out.contains("no drift"), "{out}");
    let d = sb.np_ok(&["down", &pb]);
    assert!(d.contains("nothing to remove"), "{d}");
}

#[test]
fn adopted_veth_end_moved_renamed_and_put_back() {
    let sb = Sandbox::new();
    // No IPv6 on the test's own end: its link-local address would come
    // with the carrier and stay, a kernel effect the snapshot would show.
    sb.ok("ip link add vx1 mtu 1400 type veth peer name vx1p && \
           sysctl -qw net.ipv6.conf.vx1p.disable_ipv6=1 && \
           ip addr add 10.66.0.1/24 dev vx1p && ip link set vx1p up");
    let before = sb.snapshot();
    let s = sb.script(
        "mv.rhai",
        r#"
let t = netns("tgt");
host().link("vx1").move_to(t).rename("eth9").addr("10.66.0.2/24").up();
"#,
    );
    let plan = sb.np_ok(&["plan", &s]);
    assert!(plan.contains("ip link set vx1 name eth9"), "{plan}");
    let diff = sb.np_ok(&["plan", "--diff", &s]);
    for line in [
        "ip link set vx1 name eth9",
        "ip link set eth9 netns tgt",
        "ip -n tgt addr add 10.66.0.2/24 dev eth9",
    ] {
        assert!(diff.lines().any(|l| l == line), "no `{line}` in:\n{diff}");
    }
    sb.np_ok(&["up", &s]);
    let l = sb.json("ip -j -d -n tgt link show eth9");
    assert_eq!(l[0]["linkinfo"]["info_kind"], "veth");
    assert_eq!(l[0]["mtu"], 1400);
    assert!(
        sb.json("ip -j link show")
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["ifname"] != "vx1")
    );
    sb.ok("ip netns exec tgt ping -c1 -W2 10.66.0.1");
    let out = sb.np_ok(&["check", "mv"]);
    assert!(out.contains("no drift"), "{out}");
    sb.np_ok(&["down", &s]);
    assert_eq!(sb.snapshot(), before, "vx1 back in the host, as it was");
    let l = sb.json("ip -j -d link show vx1");
    assert_eq!(l[0]["linkinfo"]["info_kind"], "veth");
    assert_eq!(sb.ok("ip netns list"), "");
}
