//! Ops as rtnetlink messages (built with rtnetlink's builders).

use std::net::IpAddr;
use std::os::fd::RawFd;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage as M;
use netlink_packet_route::address::{
    AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{BridgeStpState, InfoData, InfoKind, InfoVeth};
use netlink_packet_route::route::{RouteMessage, RouteProtocol};
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};

use crate::kernel::KernelError;
use crate::model::Cidr;
use crate::op::RouteSpec;

pub type Req = (M, u16);

/// A veth pair, born as it will be used: the peer inside its namespace (no
/// create-then-move), this end on its bridge and up, in one request.
pub fn add_veth(
    name: &str,
    peer: &str,
    peer_ns_fd: Option<RawFd>,
    master: Option<u32>,
    up: bool,
) -> Req {
    // The peer cannot be up at birth (the kernel answers ENOTCONN).
    let mut p = LinkUnspec::new_with_name(peer);
    if let Some(fd) = peer_ns_fd {
        p = p.setns_by_fd(fd);
    }
    let mut b = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
        .name(name.to_string())
        .set_info_data(InfoData::Veth(InfoVeth::Peer(p.build())));
    if let Some(m) = master {
        b = b.controller(m);
    }
    if up {
        b = b.up();
    }
    let msg = b.build();
    // The echo of the new link carries its ifindex and its peer's: the
    // identity the ledger records, without a dump.
    (M::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO)
}

/// A bridge as `ip link add … type bridge` makes it: down. (rtnetlink's
/// `LinkBridge::new` would bring it up at birth, behind the plan's back.)
pub fn add_bridge(name: &str) -> Req {
    (
        M::NewLink(LinkMessageBuilder::<LinkBridge>::new(name).build()),
        NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
    )
}

/// A new namespace's `lo`: up (it starts down), and marked as netplumb's.
pub fn init_lo(mark: &str) -> Req {
    set_link(by_index(1).up().alias(mark.to_string()))
}

pub fn set_stp(name: &str, on: bool) -> Req {
    let state = if on {
        BridgeStpState::KernelStp
    } else {
        BridgeStpState::Disabled
    };
    (
        M::NewLink(
            LinkMessageBuilder::<LinkBridge>::new(name)
                .stp_state(state)
                .build(),
        ),
        0,
    )
}

pub fn del_link(name: &str) -> Req {
    (M::DelLink(LinkUnspec::new_with_name(name).build()), 0)
}

/// Delete by identity: whatever its name is now, and never a namesake.
pub fn del_link_index(index: u32) -> Req {
    (M::DelLink(LinkUnspec::new_with_index(index).build()), 0)
}

pub fn set_link(b: LinkMessageBuilder<LinkUnspec>) -> Req {
    (M::SetLink(b.build()), 0)
}

pub fn by_name(name: &str) -> LinkMessageBuilder<LinkUnspec> {
    LinkUnspec::new_with_name(name)
}

pub fn by_index(index: u32) -> LinkMessageBuilder<LinkUnspec> {
    LinkUnspec::new_with_index(index)
}

fn addr_msg(index: u32, cidr: &Cidr) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.index = index;
    m.header.prefix_len = cidr.prefix_len();
    m.header.scope = AddressScope::Universe;
    match cidr.addr() {
        IpAddr::V4(a) => {
            m.header.family = AddressFamily::Inet;
            m.attributes.push(AddressAttribute::Local(IpAddr::V4(a)));
            m.attributes.push(AddressAttribute::Address(IpAddr::V4(a)));
        }
        IpAddr::V6(a) => {
            m.header.family = AddressFamily::Inet6;
            // Lab links need no duplicate address detection, and without it
            // the address is usable at once instead of seconds later.
            m.header.flags = AddressHeaderFlags::Nodad;
            m.attributes.push(AddressAttribute::Address(IpAddr::V6(a)));
        }
    }
    m
}

pub fn add_addr(index: u32, cidr: &Cidr) -> Req {
    (
        M::NewAddress(addr_msg(index, cidr)),
        NLM_F_CREATE | NLM_F_EXCL,
    )
}

pub fn del_addr(index: u32, cidr: &Cidr) -> Req {
    (M::DelAddress(addr_msg(index, cidr)), 0)
}

fn route_msg(r: &RouteSpec) -> Result<RouteMessage, KernelError> {
    let (dest, via) = (&r.dest, &r.via);
    let net = dest.as_net();
    RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(net.addr(), net.prefix_len())
        .and_then(|b| b.gateway(*via))
        .map(|b| b.build())
        .map_err(|e| KernelError::other(e.to_string()))
}

/// A route as `ip route add` makes it (proto boot), so that `up` and the
/// `plan` lines run by hand give the same table.
fn new_route_msg(r: &RouteSpec) -> Result<RouteMessage, KernelError> {
    let mut m = route_msg(r)?;
    m.header.protocol = RouteProtocol::Boot;
    Ok(m)
}

pub fn add_route(r: &RouteSpec) -> Result<Req, KernelError> {
    Ok((M::NewRoute(new_route_msg(r)?), NLM_F_CREATE | NLM_F_EXCL))
}

/// The route to the same destination, changed in place.
pub fn replace_route(r: &RouteSpec) -> Result<Req, KernelError> {
    Ok((M::NewRoute(new_route_msg(r)?), NLM_F_CREATE | NLM_F_REPLACE))
}

pub fn del_route(r: &RouteSpec) -> Result<Req, KernelError> {
    // any protocol: routes made before (proto static) or by hand too
    let mut m = route_msg(r)?;
    m.header.protocol = RouteProtocol::Unspec;
    Ok((M::DelRoute(m), 0))
}
