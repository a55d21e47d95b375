//! vxlan links: a VNI over UDP between two endpoints, the building block
//! for labs across machines. `ip link add NAME type vxlan id ID remote|group
//! ADDR local ADDR dev DEV dstport PORT [no]learning ttl TTL`.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage as M;
use netlink_packet_route::link::InfoVxlan;
use rtnetlink::LinkVxlan;

use super::link_msg::LinkError;
use super::msg::Req;

/// The VXLAN UDP port IANA assigned; the kernel's own default is 8472.
pub const VXLAN_PORT: u16 = 4789;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vxlan {
    pub name: String,
    /// The VNI, 24 bits.
    pub id: u32,
    /// Unicast peer for unknown destinations.
    pub remote: Option<IpAddr>,
    /// Multicast group for unknown destinations.
    pub group: Option<IpAddr>,
    pub local: Option<IpAddr>,
    /// Underlay device ifindex.
    pub dev: Option<u32>,
    pub port: u16,
    pub learning: bool,
    pub ttl: Option<u8>,
}

impl Vxlan {
    pub fn new(name: &str, id: u32) -> Self {
        Self {
            name: name.to_string(),
            id,
            remote: None,
            group: None,
            local: None,
            dev: None,
            port: VXLAN_PORT,
            learning: true,
            ttl: None,
        }
    }

    pub fn validate(&self) -> Result<(), LinkError> {
        if self.id > 0x00ff_ffff {
            return Err(LinkError::VxlanId(self.id));
        }
        if self.remote.is_some() && self.group.is_some() {
            return Err(LinkError::Invalid(
                "a vxlan takes a remote or a group, not both".into(),
            ));
        }
        if self.remote.is_some_and(|r| r.is_multicast()) {
            return Err(LinkError::Invalid(
                "a vxlan remote must be unicast (a multicast address is a group)".into(),
            ));
        }
        if self.group.is_some_and(|g| !g.is_multicast()) {
            return Err(LinkError::Invalid(
                "a vxlan group must be a multicast address".into(),
            ));
        }
        if self.port == 0 {
            return Err(LinkError::Invalid("a vxlan port must be above zero".into()));
        }
        let peer = self.remote.or(self.group);
        if let (Some(p), Some(l)) = (peer, self.local)
            && p.is_ipv4() != l.is_ipv4()
        {
            return Err(LinkError::Invalid(
                "a vxlan's local and remote addresses must be of one family".into(),
            ));
        }
        Ok(())
    }

    /// The MTU the kernel gives a vxlan over an underlay of `mtu`: 50 bytes
    /// of outer headers over IPv4, 70 over IPv6.
    pub fn default_mtu(&self, underlay_mtu: u32) -> u32 {
        let v6 = self
            .remote
            .or(self.group)
            .or(self.local)
            .is_some_and(|a| a.is_ipv6());
        underlay_mtu.saturating_sub(if v6 { 70 } else { 50 })
    }

    /// `ip link add NAME type vxlan id ID remote|group … local … dev …
    /// dstport PORT [no]learning ttl …`.
    pub fn add(&self) -> Result<Req, LinkError> {
        self.validate()?;
        let mut b = LinkVxlan::new(&self.name, self.id);
        match self.remote.or(self.group) {
            Some(IpAddr::V4(a)) => b = b.group(a),
            Some(IpAddr::V6(a)) => b = b.group6(a),
            None => {}
        }
        match self.local {
            Some(IpAddr::V4(a)) => b = b.local(a),
            Some(IpAddr::V6(a)) => b = b.local6(a),
            None => {}
        }
        if let Some(d) = self.dev {
            b = b.dev(d);
        }
        if let Some(t) = self.ttl {
            b = b.ttl(t);
        }
        b = b.port(self.port).learning(self.learning);
        Ok((M::NewLink(b.build()), NLM_F_CREATE | NLM_F_EXCL))
    }
}

/// A vxlan as dumped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VxlanState {
    pub id: u32,
    pub remote: Option<IpAddr>,
    pub group: Option<IpAddr>,
    pub local: Option<IpAddr>,
    pub dev: Option<u32>,
    pub port: u16,
    pub learning: bool,
    pub ttl: u8,
}

pub(super) fn vxlan_state(infos: &[InfoVxlan]) -> VxlanState {
    let mut st = VxlanState::default();
    let mut peer = None;
    for i in infos {
        match i {
            InfoVxlan::Id(v) => st.id = *v,
            InfoVxlan::Group(a) => peer = Some(IpAddr::V4(*a)),
            InfoVxlan::Group6(a) => peer = Some(IpAddr::V6(*a)),
            InfoVxlan::Local(a) => st.local = Some(IpAddr::V4(*a)),
            InfoVxlan::Local6(a) => st.local = Some(IpAddr::V6(*a)),
            InfoVxlan::Link(d) => st.dev = Some(*d),
            InfoVxlan::Port(p) => st.port = *p,
            InfoVxlan::Learning(l) => st.learning = *l,
            InfoVxlan::Ttl(t) => st.ttl = *t,
            _ => {}
        }
    }
    // One attribute carries both: a multicast one is a group.
    match peer {
        Some(p) if p.is_multicast() => st.group = Some(p),
        Some(p) if !p.is_unspecified() => st.remote = Some(p),
        _ => {}
    }
    st
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::apply::link_msg::{KindInfo, parse_link};
    use crate::apply::msg;
    use crate::apply::testns::{TestNs, dump_link, link_json, pings, veth_between};

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn vxlan_refusals_name_the_problem() {
        let mut v = Vxlan::new("vx0", 1 << 24);
        assert_eq!(
            v.add().unwrap_err().to_string(),
            "vxlan id 16777216 is out of range (0 to 16777215)"
        );
        v.id = 7;
        v.remote = Some(ip("10.0.0.1"));
        v.group = Some(ip("239.1.1.1"));
        assert!(v.add().is_err());
        v.group = None;
        v.local = Some(ip("fd00::1"));
        assert!(v.add().is_err(), "mixed families");
        v.local = None;
        v.remote = Some(ip("239.1.1.1"));
        assert!(v.add().is_err(), "multicast remote");
        v.remote = None;
        v.group = Some(ip("10.0.0.1"));
        assert!(v.add().is_err(), "unicast group");
    }

    /// Two namespaces joined by a vxlan over an underlay veth ping each other,
    /// and the vxlan's MTU is the underlay's minus 50.
    #[test]
    fn vxlan_over_an_underlay_carries_traffic() {
        let Some(a) = TestNs::new() else { return };
        let b = TestNs::new().expect("ns b");
        veth_between(&a, "u0", &b, "u1");
        a.ok("ip addr add 192.168.77.1/24 dev u0");
        b.ok("ip addr add 192.168.77.2/24 dev u1");
        let mut va = Vxlan::new("vx100", 100);
        va.remote = Some(ip("192.168.77.2"));
        va.local = Some(ip("192.168.77.1"));
        va.dev = Some(a.index("u0"));
        va.learning = false;
        va.ttl = Some(8);
        let mut vb = Vxlan::new("vx100", 100);
        vb.remote = Some(ip("192.168.77.1"));
        vb.local = Some(ip("192.168.77.2"));
        vb.dev = Some(b.index("u1"));
        a.apply(vec![va.add().expect("vxlan a")]);
        b.apply(vec![vb.add().expect("vxlan b")]);
        a.ok("ip addr add 10.100.0.1/24 dev vx100");
        b.ok("ip addr add 10.100.0.2/24 dev vx100");
        a.ok("ip link set vx100 up");
        b.ok("ip link set vx100 up");
        assert!(pings(&a, "10.100.0.2"), "vxlan a -> b");

        let j = link_json(&a, "vx100");
        assert_eq!(j["mtu"], va.default_mtu(1500));
        assert_eq!(va.default_mtu(1500), 1450);
        let d = &j["linkinfo"]["info_data"];
        assert_eq!(
            (d["id"].clone(), d["remote"].clone(), d["local"].clone()),
            (100.into(), "192.168.77.2".into(), "192.168.77.1".into())
        );
        assert_eq!(
            (
                d["port"].clone(),
                d["learning"].clone(),
                d["ttl"].clone(),
                d["link"].clone()
            ),
            (4789.into(), false.into(), 8.into(), "u0".into())
        );
        let KindInfo::Vxlan(st) = parse_link(&dump_link(&a, "vx100")).kind.expect("kind") else {
            panic!("not a vxlan")
        };
        assert_eq!(
            st,
            VxlanState {
                id: 100,
                remote: va.remote,
                group: None,
                local: va.local,
                dev: va.dev,
                port: 4789,
                learning: false,
                ttl: 8,
            }
        );
        let KindInfo::Vxlan(sb) = parse_link(&dump_link(&b, "vx100")).kind.expect("kind") else {
            panic!("not a vxlan")
        };
        assert!(sb.learning, "learning defaults on");
    }

    #[test]
    fn vxlan_group_reads_back_as_a_group() {
        let Some(ns) = TestNs::new() else { return };
        ns.apply(vec![msg::add_veth("u0", "u1", None, None, true)]);
        let mut v = Vxlan::new("vx5", 5);
        v.group = Some(ip("239.1.1.1"));
        v.dev = Some(ns.index("u0"));
        v.port = 8472;
        ns.apply(vec![v.add().expect("vxlan")]);
        let d = link_json(&ns, "vx5")["linkinfo"]["info_data"].clone();
        assert_eq!(
            (d["group"].clone(), d["port"].clone()),
            ("239.1.1.1".into(), 8472.into())
        );
        let Some(KindInfo::Vxlan(st)) = parse_link(&dump_link(&ns, "vx5")).kind else {
            panic!("not a vxlan")
        };
        assert_eq!((st.group, st.remote, st.port), (v.group, None, 8472));
    }
}
