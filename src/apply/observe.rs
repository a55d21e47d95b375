//! Read back links, addresses and main-table routes of one namespace.

use netlink_packet_route::RouteNetlinkMessage as M;
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::RouteMessage;

use super::rtnl::Rtnl;
use crate::kernel::{AddrState, KernelError, LinkState, NsState, RouteState};
use crate::model::Cidr;

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
    let d = super::inspect::addr_detail(a)?;
    Some(AddrState {
        index: d.index,
        cidr: Cidr::parse(&d.net.to_string()).ok()?,
    })
}

/// The main-table part of a route, as the diff compares it.
fn route_state(r: &RouteMessage) -> Option<RouteState> {
    super::inspect::route_detail(r).map(|d| RouteState {
        dest: d.dest,
        via: d.via,
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
