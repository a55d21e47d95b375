//! Ops as the `ip` / `nft` shell commands a person would have typed.

use super::op::{LinkChange, Op};
use crate::model::{NsRef, RouteDest};

fn sysctl_cmd(ns: &NsRef, key: &str, value: &str) -> String {
    match ns {
        NsRef::Host => format!("sysctl -w {key}={value}"),
        NsRef::Named(n) => format!("ip netns exec {n} sysctl -w {key}={value}"),
    }
}

fn family_flag(v6: bool) -> &'static str {
    if v6 { " -6" } else { "" }
}

fn ip_in(ns: &NsRef, v6: bool) -> String {
    match ns {
        NsRef::Host => format!("ip{}", family_flag(v6)),
        NsRef::Named(n) => format!("ip{} -n {n}", family_flag(v6)),
    }
}

/// The shell lines for one op; a NAT table is one `nft -f -` here-document.
pub fn render(op: &Op) -> Vec<String> {
    match op {
        Op::AddNetns { ns } => vec![
            format!("ip netns add {ns}"),
            format!("ip -n {ns} link set lo up"),
        ],
        Op::DelNetns { ns } => vec![format!("ip netns del {ns}")],
        Op::AddVeth {
            ns,
            name,
            peer_ns,
            peer,
        } => {
            let target = if peer_ns == ns {
                String::new()
            } else {
                match peer_ns {
                    NsRef::Host => " netns 1".to_string(),
                    NsRef::Named(p) => format!(" netns {p}"),
                }
            };
            vec![format!(
                "{} link add {name} type veth peer name {peer}{target}",
                ns.ip_prefix()
            )]
        }
        Op::AddBridge { ns, name } => {
            vec![format!("{} link add {name} type bridge", ns.ip_prefix())]
        }
        Op::DelLink { ns, name } => vec![format!("{} link del {name}", ns.ip_prefix())],
        Op::MoveLink { ns, name, to } => {
            let to = match to {
                NsRef::Host => "1".to_string(),
                NsRef::Named(n) => n.to_string(),
            };
            vec![format!("{} link set {name} netns {to}", ns.ip_prefix())]
        }
        Op::RenameLink { ns, name, to } => {
            vec![format!("{} link set {name} name {to}", ns.ip_prefix())]
        }
        Op::SetLink { ns, name, change } => {
            let p = ns.ip_prefix();
            vec![match change {
                LinkChange::Up(true) => format!("{p} link set {name} up"),
                LinkChange::Up(false) => format!("{p} link set {name} down"),
                LinkChange::Mtu(m) => format!("{p} link set {name} mtu {m}"),
                LinkChange::Master(Some(m)) => format!("{p} link set {name} master {m}"),
                LinkChange::Master(None) => format!("{p} link set {name} nomaster"),
                LinkChange::Stp(on) => {
                    format!(
                        "{p} link set {name} type bridge stp_state {}",
                        u8::from(*on)
                    )
                }
            }]
        }
        Op::AddAddr { ns, dev, cidr } => {
            let nodad = if cidr.is_v6() { " nodad" } else { "" };
            vec![format!(
                "{} addr add {cidr} dev {dev}{nodad}",
                ip_in(ns, cidr.is_v6())
            )]
        }
        Op::DelAddr { ns, dev, cidr } => {
            vec![format!(
                "{} addr del {cidr} dev {dev}",
                ip_in(ns, cidr.is_v6())
            )]
        }
        Op::AddRoute { ns, dest, via } => vec![format!(
            "{} route add {} via {via}",
            ip_in(ns, dest.is_v6()),
            route_dest(dest)
        )],
        Op::DelRoute { ns, dest, via } => vec![format!(
            "{} route del {} via {via}",
            ip_in(ns, dest.is_v6()),
            route_dest(dest)
        )],
        Op::Sysctl { ns, key, value } => vec![sysctl_cmd(ns, key, value)],
        Op::ReplaceNat { ns, table } => {
            let head = match ns {
                NsRef::Host => "nft -f - <<'NFT'".to_string(),
                NsRef::Named(n) => format!("ip netns exec {n} nft -f - <<'NFT'"),
            };
            let mut out = vec![head];
            out.extend(netplumb_nft::render(table).lines().map(str::to_string));
            out.push("NFT".to_string());
            out
        }
        Op::DelNat { ns, table } => vec![match ns {
            NsRef::Host => format!("nft delete table inet {table}"),
            NsRef::Named(n) => format!("ip netns exec {n} nft delete table inet {table}"),
        }],
    }
}

fn route_dest(d: &RouteDest) -> String {
    d.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cidr, IfName, NsName};

    fn ns(n: &str) -> NsRef {
        NsRef::Named(NsName::new(n).unwrap())
    }
    fn ifn(n: &str) -> IfName {
        IfName::new(n).unwrap()
    }

    #[test]
    fn renders_like_iproute2() {
        let cases = [
            (
                Op::AddVeth {
                    ns: NsRef::Host,
                    name: ifn("veth0"),
                    peer_ns: ns("foons"),
                    peer: ifn("eth0"),
                },
                "ip link add veth0 type veth peer name eth0 netns foons",
            ),
            (
                Op::AddAddr {
                    ns: ns("foons"),
                    dev: ifn("eth0"),
                    cidr: Cidr::parse("172.18.0.20/16").unwrap(),
                },
                "ip -n foons addr add 172.18.0.20/16 dev eth0",
            ),
            (
                Op::AddAddr {
                    ns: ns("a"),
                    dev: ifn("eth0"),
                    cidr: Cidr::parse("fd00::2/64").unwrap(),
                },
                "ip -6 -n a addr add fd00::2/64 dev eth0 nodad",
            ),
            (
                Op::SetLink {
                    ns: NsRef::Host,
                    name: ifn("veth0"),
                    change: LinkChange::Master(Some(ifn("foobr0"))),
                },
                "ip link set veth0 master foobr0",
            ),
            (
                Op::AddRoute {
                    ns: ns("foons"),
                    dest: RouteDest::Default { v6: false },
                    via: "172.18.0.1".parse().unwrap(),
                },
                "ip -n foons route add default via 172.18.0.1",
            ),
        ];
        for (op, want) in cases {
            assert_eq!(render(&op), vec![want.to_string()]);
        }
    }
}
