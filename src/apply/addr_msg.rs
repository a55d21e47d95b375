//! Addresses with flags and a peer: `ip addr add ADDR/LEN [peer PEER/LEN]
//! dev DEV [nodad] [noprefixroute]`, and their read-back.
//!
//! IFA_LOCAL is the address itself, IFA_ADDRESS the peer (the address again
//! when there is none), as `ip` sends them for both families. The flags go
//! in IFA_FLAGS (32 bits: NOPREFIXROUTE does not fit the header's 8).

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage as M;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};

use super::link_msg::LinkError;
use super::msg::Req;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub index: u32,
    pub local: IpAddr,
    pub prefix_len: u8,
    /// Point-to-point peer: the prefix then applies to it (`peer 10.0.0.2/32`).
    pub peer: Option<IpAddr>,
    /// No duplicate address detection (IPv6): usable at once.
    pub nodad: bool,
    /// No prefix route for the subnet.
    pub noprefixroute: bool,
}

impl Addr {
    pub fn new(index: u32, local: IpAddr, prefix_len: u8) -> Self {
        Self {
            index,
            local,
            prefix_len,
            peer: None,
            nodad: false,
            noprefixroute: false,
        }
    }

    pub fn validate(&self) -> Result<(), LinkError> {
        let max = if self.local.is_ipv4() { 32 } else { 128 };
        if self.prefix_len > max {
            return Err(LinkError::Invalid(format!(
                "prefix length {} is more than {max}",
                self.prefix_len
            )));
        }
        if self
            .peer
            .is_some_and(|p| p.is_ipv4() != self.local.is_ipv4())
        {
            return Err(LinkError::Invalid(
                "an address and its peer must be of one family".into(),
            ));
        }
        if self.nodad && self.local.is_ipv4() {
            return Err(LinkError::Invalid(
                "nodad applies to IPv6 addresses only".into(),
            ));
        }
        Ok(())
    }

    fn flags(&self) -> AddressFlags {
        let mut f = AddressFlags::empty();
        if self.nodad {
            f |= AddressFlags::Nodad;
        }
        if self.noprefixroute {
            f |= AddressFlags::Noprefixroute;
        }
        f
    }

    fn msg(&self) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.index = self.index;
        m.header.prefix_len = self.prefix_len;
        m.header.scope = AddressScope::Universe;
        m.header.family = if self.local.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        let flags = self.flags();
        m.header.flags = AddressHeaderFlags::from_bits_truncate((flags.bits() & 0xff) as u8);
        m.attributes.push(AddressAttribute::Local(self.local));
        m.attributes
            .push(AddressAttribute::Address(self.peer.unwrap_or(self.local)));
        if !flags.is_empty() {
            m.attributes.push(AddressAttribute::Flags(flags));
        }
        m
    }

    /// Add, refused (EEXIST) when the address is there.
    pub fn add(&self) -> Result<Req, LinkError> {
        self.validate()?;
        Ok((M::NewAddress(self.msg()), NLM_F_CREATE | NLM_F_EXCL))
    }

    /// Add or change in place (`ip addr replace`): how flags are changed.
    pub fn replace(&self) -> Result<Req, LinkError> {
        self.validate()?;
        Ok((M::NewAddress(self.msg()), NLM_F_CREATE | NLM_F_REPLACE))
    }

    pub fn delete(&self) -> Result<Req, LinkError> {
        self.validate()?;
        Ok((M::DelAddress(self.msg()), 0))
    }
}

/// A dumped address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrState {
    pub index: u32,
    pub local: IpAddr,
    pub prefix_len: u8,
    pub peer: Option<IpAddr>,
    pub nodad: bool,
    pub noprefixroute: bool,
    /// Still in duplicate address detection.
    pub tentative: bool,
    /// "global", "link", "host" …
    pub scope: u8,
    pub label: Option<String>,
}

pub fn parse_addr(m: &AddressMessage) -> Option<AddrState> {
    let mut local = None;
    let mut address = None;
    let mut flags = AddressFlags::from_bits_truncate(u32::from(m.header.flags.bits()));
    let mut label = None;
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(l) => local = Some(*l),
            AddressAttribute::Address(l) => address = Some(*l),
            AddressAttribute::Flags(f) => flags = *f,
            AddressAttribute::Label(l) => label = Some(l.clone()),
            _ => {}
        }
    }
    // IPv6 without a peer carries only IFA_ADDRESS.
    let me = local.or(address)?;
    let peer = match (local, address) {
        (Some(l), Some(a)) if l != a => Some(a),
        _ => None,
    };
    Some(AddrState {
        index: m.header.index,
        local: me,
        prefix_len: m.header.prefix_len,
        peer,
        nodad: flags.contains(AddressFlags::Nodad),
        noprefixroute: flags.contains(AddressFlags::Noprefixroute),
        tentative: flags.contains(AddressFlags::Tentative),
        scope: u8::from(m.header.scope),
        label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::msg;
    use crate::apply::testns::{TestNs, pings, veth_between};

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    fn dump(ns: &TestNs, index: u32) -> Vec<AddrState> {
        ns.rtnl(|rt| {
            rt.dump(M::GetAddress(AddressMessage::default()))
                .expect("dump")
        })
        .iter()
        .filter_map(|m| match m {
            M::NewAddress(a) => parse_addr(a),
            _ => None,
        })
        .filter(|a| a.index == index)
        .collect()
    }

    fn addr_info(ns: &TestNs, dev: &str, local: &str) -> serde_json::Value {
        let j = ns.json(&format!("ip -j addr show dev {dev}"));
        j[0]["addr_info"]
            .as_array()
            .and_then(|v| v.iter().find(|a| a["local"] == local).cloned())
            .unwrap_or_else(|| panic!("{local} not on {dev}: {j}"))
    }

    #[test]
    fn refusals_before_the_kernel() {
        let mut a = Addr::new(2, ip("10.0.0.1"), 33);
        assert!(a.add().is_err());
        a.prefix_len = 24;
        a.nodad = true;
        assert!(a.add().is_err());
        a.nodad = false;
        a.peer = Some(ip("fd00::2"));
        assert!(a.add().is_err());
    }

    #[test]
    fn nodad_noprefixroute_and_peer_read_back() {
        let Some(ns) = TestNs::new() else { return };
        ns.apply(vec![msg::add_veth("v0", "v1", None, None, true)]);
        ns.ok("ip link set v1 up");
        let idx = ns.index("v0");
        let mut six = Addr::new(idx, ip("fd00:1::1"), 64);
        six.nodad = true;
        six.noprefixroute = true;
        let mut ptp = Addr::new(idx, ip("10.1.0.1"), 32);
        ptp.peer = Some(ip("10.1.0.2"));
        let plain = Addr::new(idx, ip("10.2.0.1"), 24);
        ns.apply(vec![
            six.add().expect("v6"),
            ptp.add().expect("ptp"),
            plain.add().expect("plain"),
        ]);

        let j = addr_info(&ns, "v0", "fd00:1::1");
        assert_eq!(
            (j["nodad"].clone(), j["noprefixroute"].clone()),
            (true.into(), true.into())
        );
        assert!(j.get("tentative").is_none(), "nodad: usable at once");
        let j = addr_info(&ns, "v0", "10.1.0.1");
        assert_eq!(
            (j["address"].clone(), j["prefixlen"].clone()),
            ("10.1.0.2".into(), 32.into())
        );

        let st = dump(&ns, idx);
        let find = |l: &str| st.iter().find(|a| a.local == ip(l)).cloned().expect("addr");
        let s6 = find("fd00:1::1");
        assert!(s6.nodad && s6.noprefixroute && !s6.tentative && s6.peer.is_none());
        assert_eq!(find("10.1.0.1").peer, Some(ip("10.1.0.2")));
        let p = find("10.2.0.1");
        assert!(p.peer.is_none() && !p.noprefixroute);

        // noprefixroute: no route for fd00:1::/64; the plain v4 one has its /24.
        let r6 = ns.ok("ip -6 route show dev v0");
        assert!(!r6.contains("fd00:1::/64"), "{r6}");
        assert!(ns.ok("ip route show dev v0").contains("10.2.0.0/24"));
        // The peer address is the route of a point-to-point address.
        assert!(
            ns.ok("ip route show dev v0")
                .contains("10.1.0.2 proto kernel")
        );

        // Replace changes flags in place; delete removes.
        let mut again = six.clone();
        again.noprefixroute = false;
        ns.apply(vec![again.replace().expect("replace")]);
        assert!(
            !dump(&ns, idx)
                .iter()
                .any(|a| a.local == six.local && a.noprefixroute)
        );
        assert!(ns.ok("ip -6 route show dev v0").contains("fd00:1::/64"));
        ns.apply(vec![ptp.delete().expect("delete")]);
        assert!(!dump(&ns, idx).iter().any(|a| a.local == ptp.local));
        assert!(ns.try_apply(plain.add().expect("again")).is_err(), "EEXIST");
    }

    /// A point-to-point pair: each end knows only its peer, and they talk.
    #[test]
    fn peer_addresses_carry_traffic() {
        let Some(a) = TestNs::new() else { return };
        let b = TestNs::new().expect("b");
        veth_between(&a, "p0", &b, "p1");
        let mut x = Addr::new(a.index("p0"), ip("10.3.0.1"), 32);
        x.peer = Some(ip("10.3.9.9"));
        let mut y = Addr::new(b.index("p1"), ip("10.3.9.9"), 32);
        y.peer = Some(ip("10.3.0.1"));
        a.apply(vec![x.add().expect("a")]);
        b.apply(vec![y.add().expect("b")]);
        assert!(pings(&a, "10.3.9.9"));
    }
}
