//! Every kind of route as one request, IPv4 and IPv6 alike: destination,
//! gateway, device, metric, preferred source, table (numbered; the caller
//! resolves names), onlink, type (unicast, blackhole, unreachable,
//! prohibit), the mtu metric and multipath next hops. Added
//! (NLM_F_CREATE|NLM_F_EXCL), replaced (NLM_F_CREATE|NLM_F_REPLACE) or
//! deleted; and dumps of every table parsed back into `RouteState`, the
//! same facts `ip -j route show table all` prints.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage as M;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteMetric, RouteNextHop,
    RouteNextHopFlags, RouteProtocol, RouteScope, RouteType, RouteVia,
};

use super::link_msg::LinkError;
use super::msg::Req;

pub const RT_TABLE_MAIN: u32 = 254;
pub const RT_TABLE_LOCAL: u32 = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
}

impl RouteKind {
    pub fn parse(s: &str) -> Result<Self, LinkError> {
        Ok(match s {
            "unicast" => Self::Unicast,
            "blackhole" => Self::Blackhole,
            "unreachable" => Self::Unreachable,
            "prohibit" => Self::Prohibit,
            _ => {
                return Err(LinkError::Invalid(format!(
                    "unknown route type {s:?} (unicast, blackhole, unreachable or prohibit)"
                )));
            }
        })
    }

    fn kernel(self) -> RouteType {
        match self {
            Self::Unicast => RouteType::Unicast,
            Self::Blackhole => RouteType::BlackHole,
            Self::Unreachable => RouteType::Unreachable,
            Self::Prohibit => RouteType::Prohibit,
        }
    }
}

/// One path of a multipath route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    pub via: Option<IpAddr>,
    pub dev: Option<u32>,
    /// 1 to 256, as `ip` counts (the kernel stores weight - 1).
    pub weight: u16,
    pub onlink: bool,
}

impl NextHop {
    pub fn new(via: Option<IpAddr>, dev: Option<u32>) -> Self {
        Self {
            via,
            dev,
            weight: 1,
            onlink: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `0.0.0.0/0` or `::/0` for the default route.
    pub dest: IpNet,
    pub via: Option<IpAddr>,
    pub dev: Option<u32>,
    pub metric: Option<u32>,
    pub src: Option<IpAddr>,
    pub table: u32,
    pub onlink: bool,
    pub kind: RouteKind,
    pub mtu: Option<u32>,
    /// ECMP: when not empty, `via`, `dev` and `onlink` are per hop instead.
    pub nexthops: Vec<NextHop>,
}

impl Route {
    pub fn new(dest: IpNet) -> Self {
        Self {
            dest: dest.trunc(),
            via: None,
            dev: None,
            metric: None,
            src: None,
            table: RT_TABLE_MAIN,
            onlink: false,
            kind: RouteKind::Unicast,
            mtu: None,
            nexthops: Vec::new(),
        }
    }

    fn v6(&self) -> bool {
        self.dest.addr().is_ipv6()
    }

    pub fn validate(&self) -> Result<(), LinkError> {
        let bad = |m: &str| Err(LinkError::Invalid(m.to_string()));
        let same = |a: &IpAddr| a.is_ipv6() == self.v6();
        if self.table == 0 {
            return bad("route table 0 is not a table");
        }
        if self.src.is_some_and(|s| !same(&s)) {
            return bad("a route's src must be of its destination's family");
        }
        if self.kind != RouteKind::Unicast {
            if self.via.is_some() || self.dev.is_some() || !self.nexthops.is_empty() {
                return bad(
                    "a blackhole, unreachable or prohibit route takes no via, dev or nexthops",
                );
            }
            return Ok(());
        }
        if self.nexthops.is_empty() {
            if self.via.is_none() && self.dev.is_none() {
                return bad("a route needs a via, a dev or nexthops");
            }
            if self.via.is_some_and(|v| !same(&v)) {
                return bad("a route's via must be of its destination's family");
            }
            if self.onlink && (self.via.is_none() || self.dev.is_none()) {
                return bad("onlink needs both a via and a dev");
            }
            return Ok(());
        }
        if self.via.is_some() || self.dev.is_some() {
            return bad("with nexthops, via and dev go in each next hop");
        }
        for h in &self.nexthops {
            if h.via.is_none() && h.dev.is_none() {
                return bad("each next hop needs a via or a dev");
            }
            if h.via.is_some_and(|v| !same(&v)) {
                return bad("a next hop's via must be of the destination's family");
            }
            if !(1..=256).contains(&h.weight) {
                return bad("a next hop weight is 1 to 256");
            }
            if h.onlink && (h.via.is_none() || h.dev.is_none()) {
                return bad("onlink needs both a via and a dev");
            }
        }
        Ok(())
    }

    fn msg(&self, delete: bool) -> RouteMessage {
        let mut m = RouteMessage::default();
        let h = &mut m.header;
        h.address_family = if self.v6() {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        h.destination_prefix_length = self.dest.prefix_len();
        h.kind = self.kind.kernel();
        if delete {
            // Match any protocol and scope: what we add, we can remove.
            h.protocol = RouteProtocol::Unspec;
            h.scope = RouteScope::NoWhere;
        } else {
            // proto boot, as `ip route add` makes it: `up` and the plan's
            // lines run by hand give the same table.
            h.protocol = RouteProtocol::Boot;
            // A device route without a gateway is on the link, as `ip` has it.
            let on_link =
                self.kind == RouteKind::Unicast && self.via.is_none() && self.nexthops.is_empty();
            h.scope = if on_link {
                RouteScope::Link
            } else {
                RouteScope::Universe
            };
        }
        if self.table < 256 {
            h.table = self.table as u8;
        } else {
            h.table = RouteHeader::RT_TABLE_UNSPEC;
        }
        if self.onlink {
            h.flags.insert(RouteFlags::Onlink);
        }
        let a = &mut m.attributes;
        if self.table >= 256 {
            a.push(RouteAttribute::Table(self.table));
        }
        if self.dest.prefix_len() > 0 {
            a.push(RouteAttribute::Destination(self.dest.addr().into()));
        }
        if let Some(s) = self.src {
            a.push(RouteAttribute::PrefSource(s.into()));
        }
        if let Some(v) = self.via {
            a.push(RouteAttribute::Gateway(v.into()));
        }
        if let Some(d) = self.dev {
            a.push(RouteAttribute::Oif(d));
        }
        if let Some(p) = self.metric {
            a.push(RouteAttribute::Priority(p));
        }
        if let Some(mtu) = self.mtu {
            a.push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(mtu)]));
        }
        if !self.nexthops.is_empty() {
            let hops = self
                .nexthops
                .iter()
                .map(|n| {
                    let mut h = RouteNextHop::default();
                    h.interface_index = n.dev.unwrap_or(0);
                    h.hops = (n.weight.clamp(1, 256) - 1) as u8;
                    if n.onlink {
                        h.flags.insert(RouteNextHopFlags::Onlink);
                    }
                    if let Some(v) = n.via {
                        h.attributes.push(RouteAttribute::Gateway(v.into()));
                    }
                    h
                })
                .collect();
            a.push(RouteAttribute::MultiPath(hops));
        }
        m
    }

    /// `ip route add …`: EEXIST when the route is there.
    pub fn add(&self) -> Result<Req, LinkError> {
        self.validate()?;
        Ok((M::NewRoute(self.msg(false)), NLM_F_CREATE | NLM_F_EXCL))
    }

    /// `ip route replace …`: the route with this destination, table and
    /// metric (and TOS) is changed in place, or made.
    pub fn replace(&self) -> Result<Req, LinkError> {
        self.validate()?;
        Ok((M::NewRoute(self.msg(false)), NLM_F_CREATE | NLM_F_REPLACE))
    }

    /// `ip route del …` of this route (ESRCH when it is not there).
    pub fn delete(&self) -> Result<Req, LinkError> {
        self.validate()?;
        Ok((M::DelRoute(self.msg(true)), 0))
    }
}

/// A dump of every route of one family (or both: `AddressFamily::Unspec`)
/// in every table.
pub fn dump_request(family: AddressFamily) -> M {
    let mut m = RouteMessage::default();
    m.header.address_family = family;
    M::GetRoute(m)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHopState {
    pub via: Option<IpAddr>,
    pub dev: Option<u32>,
    pub weight: u16,
    pub onlink: bool,
}

/// One dumped route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteState {
    pub table: u32,
    pub dest: IpNet,
    /// RTN_*: 1 unicast, 2 local, 3 broadcast, 6 blackhole, 7 unreachable,
    /// 8 prohibit … (`type_name` spells it as `ip` does).
    pub kind: u8,
    pub via: Option<IpAddr>,
    pub dev: Option<u32>,
    pub metric: Option<u32>,
    pub src: Option<IpAddr>,
    /// RT_SCOPE_*: 0 universe, 253 link, 254 host.
    pub scope: u8,
    /// RTPROT_*: 2 kernel, 3 boot, 4 static …
    pub protocol: u8,
    pub onlink: bool,
    pub mtu: Option<u32>,
    pub nexthops: Vec<NextHopState>,
}

impl RouteState {
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            1 => "unicast",
            2 => "local",
            3 => "broadcast",
            4 => "anycast",
            5 => "multicast",
            6 => "blackhole",
            7 => "unreachable",
            8 => "prohibit",
            9 => "throw",
            10 => "nat",
            _ => "unknown",
        }
    }

    pub fn route_kind(&self) -> Option<RouteKind> {
        match self.kind {
            1 => Some(RouteKind::Unicast),
            6 => Some(RouteKind::Blackhole),
            7 => Some(RouteKind::Unreachable),
            8 => Some(RouteKind::Prohibit),
            _ => None,
        }
    }
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn gateway(attrs: &[RouteAttribute]) -> Option<IpAddr> {
    attrs.iter().find_map(|a| match a {
        RouteAttribute::Gateway(g) => ip_of(g),
        RouteAttribute::Via(RouteVia::Inet(v4)) => Some(IpAddr::V4(*v4)),
        RouteAttribute::Via(RouteVia::Inet6(v6)) => Some(IpAddr::V6(*v6)),
        _ => None,
    })
}

/// Read one dumped route (None for families other than IPv4/IPv6).
pub fn parse_route(r: &RouteMessage) -> Option<RouteState> {
    let v6 = match r.header.address_family {
        AddressFamily::Inet => false,
        AddressFamily::Inet6 => true,
        _ => return None,
    };
    let mut st = RouteState {
        table: u32::from(r.header.table),
        dest: IpNet::default(),
        kind: u8::from(r.header.kind),
        via: gateway(&r.attributes),
        dev: None,
        metric: None,
        src: None,
        scope: u8::from(r.header.scope),
        protocol: u8::from(r.header.protocol),
        onlink: r.header.flags.contains(RouteFlags::Onlink),
        mtu: None,
        nexthops: Vec::new(),
    };
    let mut dest = None;
    for a in &r.attributes {
        match a {
            RouteAttribute::Table(t) => st.table = *t,
            RouteAttribute::Destination(d) => dest = ip_of(d),
            RouteAttribute::Oif(i) => st.dev = Some(*i),
            RouteAttribute::PrefSource(s) => st.src = ip_of(s),
            RouteAttribute::Priority(p) => st.metric = Some(*p),
            RouteAttribute::Metrics(ms) => {
                for m in ms {
                    if let RouteMetric::Mtu(v) = m {
                        st.mtu = Some(*v);
                    }
                }
            }
            RouteAttribute::MultiPath(hops) => {
                st.nexthops = hops
                    .iter()
                    .map(|h| NextHopState {
                        via: gateway(&h.attributes),
                        dev: (h.interface_index != 0).then_some(h.interface_index),
                        weight: u16::from(h.hops) + 1,
                        onlink: h.flags.contains(RouteNextHopFlags::Onlink),
                    })
                    .collect()
            }
            _ => {}
        }
    }
    let zero = if v6 {
        IpAddr::from([0u8; 16])
    } else {
        IpAddr::from([0u8; 4])
    };
    st.dest = IpNet::new(dest.unwrap_or(zero), r.header.destination_prefix_length).ok()?;
    Some(st)
}

/// Every route in a dump.
pub fn parse_dump(msgs: &[M]) -> Vec<RouteState> {
    msgs.iter()
        .filter_map(|m| match m {
            M::NewRoute(r) => parse_route(r),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests;
