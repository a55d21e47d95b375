//! Read back links, addresses and main-table routes of one namespace.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_route::RouteNetlinkMessage as M;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteVia};

use super::rtnl::Rtnl;
use crate::kernel::{AddrState, KernelError, LinkState, NsState, RouteState};
use crate::model::Cidr;

const RT_TABLE_MAIN: u32 = 254;

pub fn observe(rt: &mut Rtnl) -> Result<NsState, KernelError> {
    let mut st = NsState::default();
    for m in rt.dump(M::GetLink(LinkMessage::default()))? {
        if let M::NewLink(l) = m {
            st.links.push(link_state(&l));
        }
    }
    for m in rt.dump(M::GetAddress(AddressMessage::default()))? {
        if let M::NewAddress(a) = m
            && let Some(s) = addr_state(&a)
        {
            st.addrs.push(s);
        }
    }
    for m in rt.dump(M::GetRoute(RouteMessage::default()))? {
        if let M::NewRoute(r) = m
            && let Some(s) = route_state(&r)
        {
            st.routes.push(s);
        }
    }
    Ok(st)
}

pub fn link_state(l: &LinkMessage) -> LinkState {
    let mut s = LinkState {
        index: l.header.index,
        name: String::new(),
        kind: None,
        up: l.header.flags.contains(LinkFlags::Up),
        lower_up: l.header.flags.contains(LinkFlags::LowerUp),
        mtu: 0,
        master: None,
    };
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => s.name = n.clone(),
            LinkAttribute::Mtu(m) => s.mtu = *m,
            LinkAttribute::Controller(c) => s.master = Some(*c),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        s.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    s
}

fn addr_state(a: &AddressMessage) -> Option<AddrState> {
    let mut local = None;
    let mut address = None;
    for at in &a.attributes {
        match at {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    let ip = local.or(address)?;
    let net = IpNet::new(ip, a.header.prefix_len).ok()?;
    Some(AddrState {
        index: a.header.index,
        cidr: Cidr::parse(&net.to_string()).ok()?,
    })
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn route_state(r: &RouteMessage) -> Option<RouteState> {
    let mut table = u32::from(r.header.table);
    let mut dest = None;
    let mut via = None;
    for at in &r.attributes {
        match at {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(d) => dest = ip_of(d),
            RouteAttribute::Gateway(g) => via = ip_of(g),
            RouteAttribute::Via(RouteVia::Inet(v4)) => via = Some(IpAddr::V4(*v4)),
            RouteAttribute::Via(RouteVia::Inet6(v6)) => via = Some(IpAddr::V6(*v6)),
            _ => {}
        }
    }
    if table != RT_TABLE_MAIN {
        return None;
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
    Some(RouteState {
        dest: IpNet::new(dest, r.header.destination_prefix_length).ok()?,
        via,
    })
}

pub fn observe_links(rt: &mut Rtnl) -> Result<Vec<LinkState>, KernelError> {
    Ok(rt
        .dump(M::GetLink(LinkMessage::default()))?
        .into_iter()
        .filter_map(|m| match m {
            M::NewLink(l) => Some(link_state(&l)),
            _ => None,
        })
        .collect())
}
