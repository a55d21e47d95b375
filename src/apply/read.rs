//! Read kernel state back into the one set of state types (kernel/state.rs):
//! links with their operational and bridge-port state, addresses in the
//! kernel's order with their DAD state, routes of every table.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage as M;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoBridge, InfoBridgePort, InfoData, InfoPortData, LinkAttribute, LinkExtentMask, LinkFlags,
    LinkInfo, LinkMessage, State,
};
use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteType, RouteVia,
};

use super::netns::NetnsDir;
use super::rtnl::Rtnl;
use super::rule_msg::{self, RuleAction};
use crate::kernel::{Addr, KernelError, Link, NsState, Qdisc, Route, RouteHop, Rule};
use crate::model::{Cidr, NsRef};

/// Links and addresses, and whether any link has a root qdisc other than
/// what a device comes with (IFLA_QDISC names the kind the qdisc dump
/// would show as the root).
fn read_links_addrs(rt: &mut Rtnl) -> Result<(NsState, bool), KernelError> {
    let (links, shaped) = read_links_shaped(rt)?;
    let mut st = NsState {
        links,
        ..NsState::default()
    };
    let request = |family| {
        let mut req = AddressMessage::default();
        req.header.family = family;
        M::GetAddress(req)
    };
    dump_per_family(rt, request, |m| {
        if let M::NewAddress(a) = m
            && let Some(s) = addr(&a)
        {
            st.addrs.push(s);
        }
    })?;
    Ok((st, shaped))
}

pub fn read_ns(rt: &mut Rtnl) -> Result<NsState, KernelError> {
    let (mut st, shaped) = read_links_addrs(rt)?;
    // Head-end replication lists, only where there is a vxlan to have one.
    if st.links.iter().any(|l| l.kind.as_deref() == Some("vxlan")) {
        for (i, dst) in super::fdb_msg::flood_entries(&rt.dump(super::fdb_msg::dump_request())?) {
            if let Some(l) = st.links.iter_mut().find(|l| l.index == i) {
                l.flood.push(dst);
            }
        }
    }
    // The AF_UNSPEC route dump also held the multicast forwarding caches
    // (RTNL_FAMILY_IPMR, IP6MR), which only a multicast routing daemon
    // fills and nothing declares.
    let request = |family| {
        let mut req = RouteMessage::default();
        req.header.address_family = family;
        M::GetRoute(req)
    };
    dump_per_family(rt, request, |m| {
        if let M::NewRoute(r) = m
            && let Some(s) = route(&r)
        {
            st.routes.push(s);
        }
    })?;
    // The qdisc dump takes rtnl_mutex too; where every root is a device's
    // default its answer is nothing we keep.
    let qdiscs = if shaped {
        super::tc::parse_dump(&rt.dump(super::tc::dump_request())?)
    } else {
        Vec::new()
    };
    for q in qdiscs {
        if !q.is_root() {
            continue;
        }
        let seen = match &q.options {
            super::tc::QdiscOptions::Tbf(t) => Qdisc {
                kind: q.kind.clone(),
                rate: t.rate,
                burst: t.burst,
                limit: t.limit,
            },
            super::tc::QdiscOptions::Netem(n) => Qdisc {
                kind: q.kind.clone(),
                rate: n.rate,
                burst: 0,
                limit: n.limit,
            },
            _ if is_default_qdisc(&q.kind) => continue,
            _ => Qdisc {
                kind: q.kind.clone(),
                ..Qdisc::default()
            },
        };
        if let Some(l) = st.links.iter_mut().find(|l| l.index == q.ifindex) {
            l.qdisc = Some(seen);
        }
    }
    // Both families in one dump (the multicast routing families it also
    // holds are dropped by the parser), IPv4's first as two dumps had them.
    let msgs = rt.dump(rule_msg::dump_request(AddressFamily::Unspec))?;
    let mut rules = rule_msg::parse_dump(&msgs);
    rules.sort_by_key(|r| r.v6);
    st.rules.extend(rules.into_iter().map(rule));
    Ok(st)
}

/// Read many namespaces on a few threads of our own, each entering one
/// namespace after another (a socket opened there stays bound to it):
/// nothing of this is left in the namespace handle cache.
pub fn read_many(dir: &NetnsDir, nss: &[NsRef]) -> Vec<Result<NsState, KernelError>> {
    let workers = super::pool::workers();
    fn itself(ns: &NsRef) -> Result<&NsRef, KernelError> {
        Ok(ns)
    }
    super::pool::in_each_ns(dir, nss, workers, itself, |_| {
        read_ns(&mut Rtnl::open()?.keep_buffer())
    })
}

fn rule(r: rule_msg::RuleState) -> Rule {
    Rule {
        v6: r.v6,
        priority: r.priority,
        from: r.from,
        to: r.to,
        iif: r.iif,
        oif: r.oif,
        fwmark: r.fwmark,
        action: match r.action {
            RuleAction::Table(t) => format!("table {t}"),
            RuleAction::Blackhole => "blackhole".into(),
            RuleAction::Unreachable => "unreachable".into(),
            RuleAction::Prohibit => "prohibit".into(),
            RuleAction::Goto(g) => format!("goto {g}"),
            RuleAction::Nop => "nop".into(),
        },
    }
}

/// Every link of the namespace, without their counters: nothing reads
/// them, and the kernel folds per-CPU counters for each link (and IPv6's
/// for each device) to fill them in.
pub fn read_links(rt: &mut Rtnl) -> Result<Vec<Link>, KernelError> {
    Ok(read_links_shaped(rt)?.0)
}

fn read_links_shaped(rt: &mut Rtnl) -> Result<(Vec<Link>, bool), KernelError> {
    let mut req = LinkMessage::default();
    req.attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    let mut out = Vec::new();
    let mut shaped = false;
    rt.dump_each(M::GetLink(req), |m| {
        if let M::NewLink(l) = m {
            shaped |= l
                .attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::Qdisc(k) if !is_default_qdisc(k)));
            out.push(link(&l));
        }
    })?;
    Ok((out, shaped))
}

/// One dump per family, IPv4's first as the AF_UNSPEC dump had them: that
/// one (rtnl_dump_all) holds rtnl_mutex, which the threads of `read_many`
/// then queue on; the per-family dumps run under RCU.
fn dump_per_family(
    rt: &mut Rtnl,
    request: impl Fn(AddressFamily) -> M,
    mut each: impl FnMut(M),
) -> Result<(), KernelError> {
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        rt.dump_each(request(family), &mut each)?;
    }
    Ok(())
}

/// What a device comes with: not a shape.
fn is_default_qdisc(kind: &str) -> bool {
    matches!(
        kind,
        "noqueue" | "noop" | "pfifo_fast" | "fq_codel" | "mq" | "fq" | "pfifo"
    )
}

/// The id the namespace of `rt` gives the namespace `fd` names; None when
/// it has none (then no link there can have its peer in that namespace).
pub fn nsid_query(rt: &mut Rtnl, fd: std::os::fd::RawFd) -> Result<Option<i32>, KernelError> {
    let mut msg = NsidMessage::default();
    msg.attributes.push(NsidAttribute::Fd(fd as u32));
    for r in rt.query(M::GetNsId(msg))? {
        if let M::NewNsId(m) = r {
            for a in m.attributes {
                if let NsidAttribute::Id(id) = a {
                    // -1 is NETNSA_NSID_NOT_ASSIGNED.
                    return Ok((id >= 0).then_some(id));
                }
            }
        }
    }
    Ok(None)
}

fn oper_name(s: &State) -> String {
    match s {
        State::Unknown => "UNKNOWN".into(),
        State::NotPresent => "NOTPRESENT".into(),
        State::Down => "DOWN".into(),
        State::LowerLayerDown => "LOWERLAYERDOWN".into(),
        State::Testing => "TESTING".into(),
        State::Dormant => "DORMANT".into(),
        State::Up => "UP".into(),
        State::Other(n) => format!("{n}"),
        _ => "UNKNOWN".into(),
    }
}

pub fn link(l: &LinkMessage) -> Link {
    let mut s = Link {
        index: l.header.index,
        up: l.header.flags.contains(LinkFlags::Up),
        lower_up: l.header.flags.contains(LinkFlags::LowerUp),
        oper: "UNKNOWN".into(),
        info: super::kinds::info(l),
        ..Link::default()
    };
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => s.name = n.clone(),
            LinkAttribute::Mtu(m) => s.mtu = *m,
            LinkAttribute::Controller(c) => s.master = Some(*c),
            LinkAttribute::Link(i) => s.peer = Some(*i),
            LinkAttribute::LinkNetNsId(id) => s.peer_netnsid = Some(*id),
            LinkAttribute::OperState(st) => s.oper = oper_name(st),
            LinkAttribute::IfAlias(a) if !a.is_empty() => s.alias = Some(a.clone()),
            LinkAttribute::Address(mac) if !mac.is_empty() => {
                s.mac = Some(
                    mac.iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(":"),
                );
            }
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    match i {
                        LinkInfo::Kind(k) => s.kind = Some(k.to_string()),
                        LinkInfo::Data(InfoData::Bridge(opts)) => {
                            for o in opts {
                                match o {
                                    InfoBridge::StpState(st) => s.stp = Some(u32::from(*st) != 0),
                                    InfoBridge::MulticastSnooping(on) => {
                                        s.mcast_snooping = Some(*on)
                                    }
                                    _ => {}
                                }
                            }
                        }
                        LinkInfo::PortData(InfoPortData::BridgePort(opts)) => {
                            for o in opts {
                                match o {
                                    InfoBridgePort::State(st) => s.port_state = Some(u8::from(*st)),
                                    InfoBridgePort::HairpinMode(h) => s.hairpin = Some(*h),
                                    _ => {}
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    s
}

pub fn scope_name(s: u8) -> String {
    match s {
        0 => "global".into(),
        200 => "site".into(),
        253 => "link".into(),
        254 => "host".into(),
        255 => "nowhere".into(),
        n => n.to_string(),
    }
}

pub fn addr(a: &AddressMessage) -> Option<Addr> {
    let mut local = None;
    let mut address = None;
    let mut flags = u32::from(a.header.flags.bits());
    for at in &a.attributes {
        match at {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Flags(f) => flags = f.bits(),
            _ => {}
        }
    }
    // On point-to-point links IFA_ADDRESS is the far end; IFA_LOCAL is ours.
    let ip = local.or(address)?;
    let net = IpNet::new(ip, a.header.prefix_len).ok()?;
    Some(Addr {
        index: a.header.index,
        cidr: Cidr::parse(&net.to_string()).ok()?,
        scope: scope_name(u8::from(a.header.scope)),
        tentative: flags & AddressFlags::Tentative.bits() != 0,
        flags,
    })
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

pub fn proto_name(p: RouteProtocol) -> String {
    match p {
        RouteProtocol::Unspec => "unspec".into(),
        RouteProtocol::IcmpRedirect => "redirect".into(),
        RouteProtocol::Kernel => "kernel".into(),
        RouteProtocol::Boot => "boot".into(),
        RouteProtocol::Static => "static".into(),
        RouteProtocol::Ra => "ra".into(),
        RouteProtocol::Dhcp => "dhcp".into(),
        RouteProtocol::Bird => "bird".into(),
        RouteProtocol::Zebra => "zebra".into(),
        RouteProtocol::Bgp => "bgp".into(),
        RouteProtocol::Ospf => "ospf".into(),
        other => u8::from(other).to_string(),
    }
}

pub fn type_name(t: RouteType) -> String {
    match t {
        RouteType::Unicast => "unicast".into(),
        RouteType::Local => "local".into(),
        RouteType::Broadcast => "broadcast".into(),
        RouteType::Anycast => "anycast".into(),
        RouteType::Multicast => "multicast".into(),
        RouteType::BlackHole => "blackhole".into(),
        RouteType::Unreachable => "unreachable".into(),
        RouteType::Prohibit => "prohibit".into(),
        RouteType::Throw => "throw".into(),
        RouteType::Nat => "nat".into(),
        other => u8::from(other).to_string(),
    }
}

pub fn route(r: &RouteMessage) -> Option<Route> {
    let mut out = Route {
        table: u32::from(r.header.table),
        dest: IpNet::default(),
        via: None,
        oif: None,
        kind: type_name(r.header.kind),
        proto: proto_name(r.header.protocol),
        scope: scope_name(u8::from(r.header.scope)),
        src: None,
        metric: None,
        onlink: false,
        mtu: None,
        nexthops: Vec::new(),
    };
    if let Some(x) = super::route_msg::parse_route(r) {
        out.onlink = x.onlink;
        out.mtu = x.mtu;
        out.nexthops = x
            .nexthops
            .into_iter()
            .map(|h| RouteHop {
                via: h.via,
                oif: h.dev,
                weight: h.weight,
            })
            .collect();
    }
    let mut dest = None;
    for at in &r.attributes {
        match at {
            RouteAttribute::Table(t) => out.table = *t,
            RouteAttribute::Destination(d) => dest = ip_of(d),
            RouteAttribute::Gateway(g) => out.via = ip_of(g),
            RouteAttribute::Via(RouteVia::Inet(v4)) => out.via = Some(IpAddr::V4(*v4)),
            RouteAttribute::Via(RouteVia::Inet6(v6)) => out.via = Some(IpAddr::V6(*v6)),
            RouteAttribute::Oif(i) => out.oif = Some(*i),
            RouteAttribute::PrefSource(s) => out.src = ip_of(s),
            RouteAttribute::Priority(p) => out.metric = Some(*p),
            _ => {}
        }
    }
    let v6 = matches!(
        r.header.address_family,
        netlink_packet_route::AddressFamily::Inet6
    );
    let dest = dest.unwrap_or(if v6 {
        IpAddr::from([0u8; 16])
    } else {
        IpAddr::from([0u8; 4])
    });
    out.dest = IpNet::new(dest, r.header.destination_prefix_length).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_iproute2() {
        assert_eq!(scope_name(0), "global");
        assert_eq!(scope_name(253), "link");
        assert_eq!(type_name(RouteType::Unreachable), "unreachable");
        assert_eq!(proto_name(RouteProtocol::Kernel), "kernel");
        assert_eq!(oper_name(&State::LowerLayerDown), "LOWERLAYERDOWN");
    }
}
