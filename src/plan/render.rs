//! Ops as the `ip` / `nft` shell commands a person would have typed. Every
//! word that could mean something to a shell is quoted: `plan | sh` runs
//! exactly the commands shown, whatever a script put in a value.

use crate::model::{NsRef, RouteDest};

#[path = "render_lab.rs"]
mod lab;
use crate::op::{LinkChange, Op};

/// A word as a POSIX shell reads it back unchanged.
pub fn shell_quote(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

fn sysctl_cmd(ns: &NsRef, key: &str, value: &str) -> String {
    let kv = shell_quote(&format!("{key}={value}"));
    match ns {
        NsRef::Host => format!("sysctl -w {kv}"),
        NsRef::Named(n) => format!("ip netns exec {n} sysctl -w {kv}"),
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

fn tc_in(ns: &NsRef) -> String {
    match ns {
        NsRef::Host => "tc".to_string(),
        NsRef::Named(n) => format!("tc -n {n}"),
    }
}

fn bridge_in(ns: &NsRef) -> String {
    match ns {
        NsRef::Host => "bridge".to_string(),
        NsRef::Named(n) => format!("bridge -n {n}"),
    }
}

/// The shell lines for one op; a NAT table is one `nft -f -` here-document.
pub fn render(op: &Op) -> Vec<String> {
    match op {
        Op::AddNetns { ns } => vec![
            format!("ip netns add {ns}"),
            format!("ip -n {ns} link set lo up"),
        ],
        Op::DelNetns { ns, .. } => vec![format!("ip netns del {ns}")],
        Op::AddVeth {
            ns,
            name,
            peer_ns,
            peer,
            with,
        } => {
            let target = if peer_ns == ns {
                String::new()
            } else {
                match peer_ns {
                    // `$$`: the shell running the plan is in the host namespace.
                    NsRef::Host => " netns $$".to_string(),
                    NsRef::Named(p) => format!(" netns {p}"),
                }
            };
            let mut out = vec![format!(
                "{} link add {name} type veth peer name {peer}{target}",
                ns.ip_prefix()
            )];
            if let Some(m) = &with.master {
                out.push(format!("{} link set {name} master {m}", ns.ip_prefix()));
            }
            if with.up {
                out.push(format!("{} link set {name} up", ns.ip_prefix()));
            }
            out
        }
        Op::AddBridge { ns, name } => {
            vec![format!("{} link add {name} type bridge", ns.ip_prefix())]
        }
        Op::AddLink {
            ns,
            name,
            spec: crate::op::LinkSpec::Tun(t),
            ..
        } => vec![format!(
            "{} tuntap add dev {name} {}",
            ns.ip_prefix(),
            t.words()
        )],
        Op::AddLink {
            ns,
            name,
            into,
            spec,
        } => vec![format!(
            "{} link add {name} {}",
            ns.ip_prefix(),
            spec.words(into.as_ref())
        )],
        Op::DelLink { ns, name, .. } => vec![format!("{} link del {name}", ns.ip_prefix())],
        Op::MoveLink { ns, name, to } => {
            let to = match to {
                NsRef::Host => "$$".to_string(),
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
                LinkChange::McastSnooping(on) => format!(
                    "{p} link set {name} type bridge mcast_snooping {}",
                    u8::from(*on)
                ),
                LinkChange::Hairpin(on) => format!(
                    "{p} link set {name} type bridge_slave hairpin {}",
                    if *on { "on" } else { "off" }
                ),
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
        Op::AddRoute { ns, route } => vec![format!(
            "{} route add {} via {}",
            ip_in(ns, route.dest.is_v6()),
            route_dest(&route.dest),
            route.via
        )],
        Op::ReplaceRoute { ns, route } => vec![format!(
            "{} route replace {} via {}",
            ip_in(ns, route.dest.is_v6()),
            route_dest(&route.dest),
            route.via
        )],
        Op::DelRoute { ns, route } => vec![format!(
            "{} route del {} via {}",
            ip_in(ns, route.dest.is_v6()),
            route_dest(&route.dest),
            route.via
        )],
        Op::PutRoute { ns, route, replace } => vec![format!(
            "{} route {} {}",
            ip_in(ns, route.v6()),
            if *replace { "replace" } else { "add" },
            route.words()
        )],
        Op::DelRouteEx { ns, route } => vec![format!(
            "{} route del {}",
            ip_in(ns, route.v6()),
            route.words()
        )],
        Op::AddRule { ns, rule } => {
            vec![format!("{} rule add {}", ip_in(ns, rule.v6), rule.words())]
        }
        Op::DelRule { ns, rule } => {
            vec![format!("{} rule del {}", ip_in(ns, rule.v6), rule.words())]
        }
        Op::SetQdisc {
            ns,
            dev,
            shape,
            mtu,
        } => vec![format!(
            "{} qdisc replace dev {dev} root {}",
            tc_in(ns),
            shape.tc_args(*mtu)
        )],
        Op::DelQdisc { ns, dev } => vec![format!("{} qdisc del dev {dev} root", tc_in(ns))],
        Op::AddFdb { ns, dev, dst } => vec![format!(
            "{} fdb append 00:00:00:00:00:00 dev {dev} dst {dst}",
            bridge_in(ns)
        )],
        Op::DelFdb { ns, dev, dst } => vec![format!(
            "{} fdb del 00:00:00:00:00:00 dev {dev} dst {dst}",
            bridge_in(ns)
        )],
        Op::Sysctl { ns, key, value } => vec![sysctl_cmd(ns, key, value)],
        Op::ReplaceNat { ns, table, .. } => {
            let head = match ns {
                NsRef::Host => "nft -f - <<'NFT'".to_string(),
                NsRef::Named(n) => format!("ip netns exec {n} nft -f - <<'NFT'"),
            };
            let mut out = vec![head];
            out.extend(netplumb_nft::render(table).lines().map(str::to_string));
            out.push("NFT".to_string());
            out
        }
        Op::DelNat { ns, table, .. } => vec![match ns {
            NsRef::Host => format!("nft delete table inet {table}"),
            NsRef::Named(n) => format!("ip netns exec {n} nft delete table inet {table}"),
        }],
        Op::WriteFile { ns, path, content } => lab::file_lines(ns, path, content),
        Op::RemoveFile { ns, path } => lab::remove_file_line(ns, path),
        Op::StartDaemon { ns, daemon } => lab::daemon_lines(ns, daemon),
        // Its own session: the process group is the whole tree it started
        // (a cgroup holds what left it).
        Op::StopDaemon { name, identity, .. } => {
            vec![format!("kill -TERM -- -{}  # daemon {name}", identity.pid)]
        }
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
                    with: Default::default(),
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
                    route: crate::op::RouteSpec {
                        dest: RouteDest::Default { v6: false },
                        via: "172.18.0.1".parse().unwrap(),
                    },
                },
                "ip -n foons route add default via 172.18.0.1",
            ),
        ];
        for (op, want) in cases {
            assert_eq!(render(&op), vec![want.to_string()]);
        }
    }
}

/// Properties: every valid op renders to an `ip` line that parses back to the
/// same op (the plan is a faithful transcript), and the validators agree with
/// the kernel's rules on every generated name.
#[cfg(test)]
mod props {
    use std::net::IpAddr;

    use proptest::prelude::*;

    use super::render;
    use crate::model::{Cidr, IfName, NsName, NsRef, RouteDest};
    use crate::op::{LinkChange, Op, RouteSpec};

    fn ifname() -> impl Strategy<Value = IfName> {
        "[a-z][a-z0-9_.-]{0,14}".prop_map(|s| IfName::new(&s).unwrap())
    }
    fn nsref() -> impl Strategy<Value = NsRef> {
        prop_oneof![
            Just(NsRef::Host),
            "[a-z][a-z0-9_.-]{0,30}".prop_map(|s| NsRef::Named(NsName::new(&s).unwrap())),
        ]
    }
    fn ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
        ]
    }
    fn cidr() -> impl Strategy<Value = Cidr> {
        (ip(), any::<u8>()).prop_map(|(a, l)| {
            let l = l % if a.is_ipv4() { 33 } else { 129 };
            Cidr::parse(&format!("{a}/{l}")).unwrap()
        })
    }
    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            nsref().prop_filter_map("named", |n| n
                .clone()
                .name_of()
                .map(|ns| Op::AddNetns { ns })),
            (nsref(), ifname(), nsref(), ifname()).prop_map(|(ns, name, peer_ns, peer)| {
                Op::AddVeth {
                    ns,
                    name,
                    peer_ns,
                    peer,
                    with: Default::default(),
                }
            }),
            (nsref(), ifname()).prop_map(|(ns, name)| Op::AddBridge { ns, name }),
            (nsref(), ifname()).prop_map(|(ns, name)| Op::DelLink {
                ns,
                name,
                index: None
            }),
            (nsref(), ifname(), nsref()).prop_map(|(ns, name, to)| Op::MoveLink { ns, name, to }),
            (nsref(), ifname(), ifname()).prop_map(|(ns, name, to)| Op::RenameLink {
                ns,
                name,
                to
            }),
            (nsref(), ifname(), any::<bool>()).prop_map(|(ns, name, up)| Op::SetLink {
                ns,
                name,
                change: LinkChange::Up(up)
            }),
            (nsref(), ifname(), 68u32..65536).prop_map(|(ns, name, m)| Op::SetLink {
                ns,
                name,
                change: LinkChange::Mtu(m)
            }),
            (nsref(), ifname(), ifname()).prop_map(|(ns, name, m)| Op::SetLink {
                ns,
                name,
                change: LinkChange::Master(Some(m))
            }),
            (nsref(), ifname(), cidr()).prop_map(|(ns, dev, cidr)| Op::AddAddr { ns, dev, cidr }),
            (nsref(), cidr(), any::<bool>(), ip()).prop_map(|(ns, c, default, via)| {
                let dest = if default || c.is_v6() != via.is_ipv6() {
                    RouteDest::Default { v6: via.is_ipv6() }
                } else {
                    RouteDest::Prefix(c.trunc())
                };
                Op::AddRoute {
                    ns,
                    route: RouteSpec { dest, via },
                }
            }),
        ]
    }

    impl NsRef {
        fn name_of(self) -> Option<NsName> {
            match self {
                NsRef::Host => None,
                NsRef::Named(n) => Some(n),
            }
        }
    }

    /// The inverse of `render` for the `ip` lines it writes.
    fn parse(line: &str) -> Option<Op> {
        let w: Vec<&str> = line.split_whitespace().collect();
        let mut i = 1;
        let mut v6 = false;
        let mut ns = NsRef::Host;
        if w.first() != Some(&"ip") {
            return None;
        }
        loop {
            match w.get(i) {
                Some(&"-6") => v6 = true,
                Some(&"-n") => {
                    ns = NsRef::Named(NsName::new(w.get(i + 1)?).ok()?);
                    i += 1;
                }
                _ => break,
            }
            i += 1;
        }
        let r = &w[i..];
        let ifn = |s: &str| IfName::new(s).ok();
        let target = |s: &str| {
            if s == "$$" {
                Some(NsRef::Host)
            } else {
                NsName::new(s).ok().map(NsRef::Named)
            }
        };
        Some(match r {
            ["netns", "add", n] => Op::AddNetns {
                ns: NsName::new(n).ok()?,
            },
            ["link", "add", name, "type", "veth", "peer", "name", peer] => Op::AddVeth {
                ns: ns.clone(),
                name: ifn(name)?,
                peer_ns: ns,
                peer: ifn(peer)?,
                with: Default::default(),
            },
            [
                "link",
                "add",
                name,
                "type",
                "veth",
                "peer",
                "name",
                peer,
                "netns",
                t,
            ] => Op::AddVeth {
                ns,
                name: ifn(name)?,
                peer_ns: target(t)?,
                peer: ifn(peer)?,
                with: Default::default(),
            },
            ["link", "add", name, "type", "bridge"] => Op::AddBridge {
                ns,
                name: ifn(name)?,
            },
            ["link", "del", name] => Op::DelLink {
                ns,
                name: ifn(name)?,
                index: None,
            },
            ["link", "set", name, "netns", t] => Op::MoveLink {
                ns,
                name: ifn(name)?,
                to: target(t)?,
            },
            ["link", "set", name, "name", to] => Op::RenameLink {
                ns,
                name: ifn(name)?,
                to: ifn(to)?,
            },
            ["link", "set", name, "up"] => Op::SetLink {
                ns,
                name: ifn(name)?,
                change: LinkChange::Up(true),
            },
            ["link", "set", name, "down"] => Op::SetLink {
                ns,
                name: ifn(name)?,
                change: LinkChange::Up(false),
            },
            ["link", "set", name, "mtu", m] => Op::SetLink {
                ns,
                name: ifn(name)?,
                change: LinkChange::Mtu(m.parse().ok()?),
            },
            ["link", "set", name, "master", m] => Op::SetLink {
                ns,
                name: ifn(name)?,
                change: LinkChange::Master(Some(ifn(m)?)),
            },
            ["addr", "add", c, "dev", dev, rest @ ..] => {
                let cidr = Cidr::parse(c).ok()?;
                if cidr.is_v6() != v6 || rest != (if v6 { &["nodad"][..] } else { &[][..] }) {
                    return None;
                }
                Op::AddAddr {
                    ns,
                    dev: ifn(dev)?,
                    cidr,
                }
            }
            ["route", "add", d, "via", via] => {
                let via: IpAddr = via.parse().ok()?;
                if via.is_ipv6() != v6 {
                    return None;
                }
                Op::AddRoute {
                    ns,
                    route: RouteSpec {
                        dest: RouteDest::parse(d, &via).ok()?,
                        via,
                    },
                }
            }
            _ => return None,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn render_parses_back(op in op()) {
            let lines = render(&op);
            let parsed = parse(&lines[0]);
            prop_assert!(parsed.is_some(), "unparsable: {:?}", lines);
            prop_assert_eq!(format!("{:?}", parsed.unwrap()), format!("{op:?}"));
        }

        #[test]
        fn ifname_is_the_kernels_rule_without_shell_words(s in "\\PC{0,20}") {
            let kernel_ok = !s.is_empty() && s.len() < 16 && s != "." && s != ".."
                && !s.contains(['/', ':']) && !s.chars().any(|c| c.is_whitespace() || c.is_control());
            let shell_safe = s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            prop_assert_eq!(IfName::new(&s).is_ok(), kernel_ok && shell_safe, "{:?}", s);
        }

        #[test]
        fn cidr_parse_display_round_trip(c in cidr()) {
            prop_assert_eq!(Cidr::parse(&c.to_string()).unwrap(), c);
        }

        #[test]
        fn cidr_never_panics(s in "\\PC{0,50}") {
            let _ = Cidr::parse(&s);
            let _ = crate::model::parse_ip(&s);
        }
    }
}
