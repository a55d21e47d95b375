//! Detailed read-back for `show`, `graph` and `ping-all`: everything the
//! kernel says about a namespace's links (peer ifindex and the peer's netnsid,
//! operational state, MAC), addresses (scope) and main-table routes (device,
//! protocol, scope, type). Unlike `LinuxKernel`, nothing here is cached: a
//! topology may have a thousand namespaces and we must not hold a socket or
//! a namespace fd per namespace (the default limit is 1024 descriptors).

use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use ipnet::IpNet;
use netlink_packet_route::RouteNetlinkMessage as M;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage, State};
use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteType, RouteVia,
};
use netplumb_nft::{NftSocket, TableSummary};

use super::netns::{NetnsDir, in_ns};
use super::ping::ping_once;
use super::rtnl::Rtnl;
use crate::kernel::KernelError;
use crate::model::{NsName, NsRef};

const RT_TABLE_MAIN: u32 = 254;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkDetail {
    pub index: u32,
    pub name: String,
    /// `IFLA_INFO_KIND`: "veth", "bridge", … (None for physical devices and lo).
    pub kind: Option<String>,
    /// IFF_UP: the administrative state `ip link set … up` sets.
    pub admin_up: bool,
    /// IFF_LOWER_UP: carrier (for a veth: the peer is up too).
    pub lower_up: bool,
    /// `IFLA_OPERSTATE` as `ip` prints it: UP, DOWN, LOWERLAYERDOWN, UNKNOWN, …
    pub oper: String,
    pub mtu: u32,
    pub mac: Option<String>,
    pub master: Option<u32>,
    /// `IFLA_LINK`: for a veth, the peer's ifindex in the peer's namespace.
    pub link: Option<u32>,
    /// `IFLA_LINK_NETNSID`: the peer's namespace as this namespace numbers it;
    /// None when the peer is in this same namespace.
    pub link_netnsid: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrDetail {
    pub index: u32,
    /// The address with its prefix, host bits kept (`172.18.0.20/16`).
    pub net: IpNet,
    /// "global", "link", "host", … as `ip` prints it.
    pub scope: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDetail {
    pub dest: IpNet,
    pub via: Option<IpAddr>,
    pub oif: Option<u32>,
    /// "unicast", "unreachable", "blackhole", …
    pub kind: String,
    /// "kernel", "boot", "static", …
    pub proto: String,
    /// "global", "link", "host", …
    pub scope: String,
    pub src: Option<IpAddr>,
    pub metric: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NsDetail {
    pub links: Vec<LinkDetail>,
    pub addrs: Vec<AddrDetail>,
    pub routes: Vec<RouteDetail>,
}

/// Reads namespaces without changing anything.
pub struct Inspector {
    nsdir: NetnsDir,
    host: File,
}

/// An rtnetlink socket opened inside one namespace, for several questions.
pub struct NsConn {
    rt: Rtnl,
}

impl Inspector {
    pub fn new() -> Result<Self, KernelError> {
        Ok(Self {
            nsdir: NetnsDir::default(),
            host: File::open("/proc/self/ns/net")
                .map_err(|e| KernelError::from(e).context("cannot open this process's netns"))?,
        })
    }

    /// Every named namespace under /run/netns (peers may live outside a topology).
    pub fn named_namespaces(&self) -> Vec<NsName> {
        self.nsdir.list()
    }

    pub fn exists(&self, ns: &NsRef) -> bool {
        match ns {
            NsRef::Host => true,
            NsRef::Named(n) => self.nsdir.exists(n),
        }
    }

    /// A fresh handle on `ns` (None: the namespace netplumb runs in, which
    /// needs no setns).
    fn open_file(&self, ns: &NsRef) -> Result<Option<File>, KernelError> {
        match ns {
            NsRef::Host => Ok(None),
            NsRef::Named(n) => self.nsdir.open(n).map(Some),
        }
    }

    pub fn connect(&self, ns: &NsRef) -> Result<NsConn, KernelError> {
        let f = self.open_file(ns)?;
        let rt = in_ns(f.as_ref(), || Rtnl::open().map_err(KernelError::from))?;
        Ok(NsConn { rt })
    }

    /// The id `from` (via its connection) gives namespace `to`; None when it
    /// has none (then no link in `from` can have its peer in `to`).
    pub fn nsid_of(&self, from: &mut NsConn, to: &NsRef) -> Result<Option<i32>, KernelError> {
        let file = self.open_file(to)?;
        let fd = match &file {
            Some(f) => f.as_raw_fd(),
            None => self.host.as_raw_fd(),
        };
        nsid_query(&mut from.rt, fd)
    }

    /// The NAT table `table` in `ns`, read back; None when it does not exist.
    pub fn nat_summary(
        &self,
        ns: &NsRef,
        table: &str,
    ) -> Result<Option<TableSummary>, KernelError> {
        let f = self.open_file(ns)?;
        let mut sock = in_ns(f.as_ref(), || NftSocket::open().map_err(KernelError::from))?;
        sock.table_summary(table)
            .map_err(|e| KernelError::other(e.to_string()))
    }

    /// Several sysctls of `ns`, read on one thread inside it (None: no such key).
    pub fn sysctls(&self, ns: &NsRef, keys: &[&str]) -> Result<Vec<Option<String>>, KernelError> {
        let paths: Vec<String> = keys
            .iter()
            .map(|k| format!("/proc/sys/{}", k.replace('.', "/")))
            .collect();
        let f = self.open_file(ns)?;
        in_ns(f.as_ref(), || {
            paths
                .iter()
                .map(|p| match std::fs::read_to_string(p) {
                    Ok(s) => Ok(Some(s.trim().to_string())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(KernelError::from(e)),
                })
                .collect()
        })
    }

    /// One ICMP echo from inside `ns` (safe to call from many threads at once).
    pub fn ping(&self, ns: &NsRef, addr: IpAddr) -> Result<bool, KernelError> {
        let f = self.open_file(ns)?;
        in_ns(f.as_ref(), || ping_once(addr))
    }
}

/// The id the namespace of `rt` gives the namespace `fd` names.
pub fn nsid_query(rt: &mut Rtnl, fd: std::os::fd::RawFd) -> Result<Option<i32>, KernelError> {
    let mut msg = NsidMessage::default();
    msg.attributes.push(NsidAttribute::Fd(fd as u32));
    let replies = rt.query(M::GetNsId(msg))?;
    for r in replies {
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

impl NsConn {
    pub fn read(&mut self) -> Result<NsDetail, KernelError> {
        let mut st = NsDetail::default();
        for m in self.rt.dump(M::GetLink(LinkMessage::default()))? {
            if let M::NewLink(l) = m {
                st.links.push(link_detail(&l));
            }
        }
        for m in self.rt.dump(M::GetAddress(AddressMessage::default()))? {
            if let M::NewAddress(a) = m
                && let Some(s) = addr_detail(&a)
            {
                st.addrs.push(s);
            }
        }
        for m in self.rt.dump(M::GetRoute(RouteMessage::default()))? {
            if let M::NewRoute(r) = m
                && let Some(s) = route_detail(&r)
            {
                st.routes.push(s);
            }
        }
        Ok(st)
    }
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

fn link_detail(l: &LinkMessage) -> LinkDetail {
    let mut s = LinkDetail {
        index: l.header.index,
        name: String::new(),
        kind: None,
        admin_up: l.header.flags.contains(LinkFlags::Up),
        lower_up: l.header.flags.contains(LinkFlags::LowerUp),
        oper: "UNKNOWN".into(),
        mtu: 0,
        mac: None,
        master: None,
        link: None,
        link_netnsid: None,
    };
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => s.name = n.clone(),
            LinkAttribute::Mtu(m) => s.mtu = *m,
            LinkAttribute::Controller(c) => s.master = Some(*c),
            LinkAttribute::Link(i) => s.link = Some(*i),
            LinkAttribute::LinkNetNsId(id) => s.link_netnsid = Some(*id),
            LinkAttribute::OperState(st) => s.oper = oper_name(st),
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

fn scope_name(s: u8) -> String {
    match s {
        0 => "global".into(),
        200 => "site".into(),
        253 => "link".into(),
        254 => "host".into(),
        255 => "nowhere".into(),
        n => n.to_string(),
    }
}

pub(super) fn addr_detail(a: &AddressMessage) -> Option<AddrDetail> {
    let mut local = None;
    let mut address = None;
    for at in &a.attributes {
        match at {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    // On point-to-point links IFA_ADDRESS is the far end; IFA_LOCAL is ours.
    let ip = local.or(address)?;
    Some(AddrDetail {
        index: a.header.index,
        net: IpNet::new(ip, a.header.prefix_len).ok()?,
        scope: scope_name(u8::from(a.header.scope)),
    })
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn proto_name(p: RouteProtocol) -> String {
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

fn type_name(t: RouteType) -> String {
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

pub(super) fn route_detail(r: &RouteMessage) -> Option<RouteDetail> {
    let mut table = u32::from(r.header.table);
    let mut dest = None;
    let mut out = RouteDetail {
        dest: IpNet::default(),
        via: None,
        oif: None,
        kind: type_name(r.header.kind),
        proto: proto_name(r.header.protocol),
        scope: scope_name(u8::from(r.header.scope)),
        src: None,
        metric: None,
    };
    for at in &r.attributes {
        match at {
            RouteAttribute::Table(t) => table = *t,
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
    // `ip route` shows the main table; local/broadcast routes live elsewhere.
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
