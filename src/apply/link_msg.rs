//! More link kinds and link attributes as rtnetlink requests, and their
//! read-back: macvlan, MAC address, txqueuelen, alias, IPv6 off per device,
//! and `parse_link`, which reads every kind's data (vxlan from `vxlan_msg`,
//! tun/tap from `tun`, bridge and bridge port from `bridge_msg`).
//!
//! IPv6 off, measured on this kernel (test `ipv6_off_measured`, packets a
//! veth sends in its first 4 s up, seen from its peer: DAD neighbour
//! solicitations, MLD reports, router solicitations, all):
//!
//! | device setting                        | DAD | MLD | RS | all |
//! |---------------------------------------|-----|-----|----|-----|
//! | default                               |  1  |  4  |  1 |  6  |
//! | IFLA_INET6_ADDR_GEN_MODE none         |  0  |  0  |  0 |  0  |
//! |   … then `ip addr add fd00::1/64`     |  1  |  2  |  0 |  3  |
//! | `net.ipv6.conf.DEV.disable_ipv6=1`    |  0  |  0  |  0 |  0  |
//! |   … then `ip addr add fd00::1/64`     |  0  |  0  |  0 |  0  |
//!
//! Both silence a bare device; only `disable_ipv6` keeps it silent whatever
//! comes later (no IPv6 address can be added at all), so that is what
//! `ipv6(false)` should use. It is a sysctl: no netlink attribute sets it.
//! ADDR_GEN_MODE none suits a device that should keep IPv6 but get no
//! link-local address.

use std::os::fd::RawFd;

use netlink_packet_core::{DefaultNla, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage as M;
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoKind, InfoMacVlan, LinkAttribute,
    LinkInfo, LinkMessage, MacVlanMode,
};
use rtnetlink::{LinkMacVlan, LinkUnspec};

use super::bridge_msg::{self, BridgePortState, BridgeState};
use super::msg::Req;
use super::tun::{self, TunState};
use super::vxlan_msg::{self, VxlanState};
use crate::kernel::KernelError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("unknown macvlan mode {0:?} (bridge, private, vepa or passthru)")]
    MacvlanMode(String),
    #[error("vxlan id {0} is out of range (0 to 16777215)")]
    VxlanId(u32),
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacvlanMode {
    Bridge,
    Private,
    Vepa,
    Passthru,
}

impl MacvlanMode {
    pub fn parse(s: &str) -> Result<Self, LinkError> {
        Ok(match s {
            "bridge" => Self::Bridge,
            "private" => Self::Private,
            "vepa" => Self::Vepa,
            "passthru" => Self::Passthru,
            _ => return Err(LinkError::MacvlanMode(s.to_string())),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bridge => "bridge",
            Self::Private => "private",
            Self::Vepa => "vepa",
            Self::Passthru => "passthru",
        }
    }

    fn kernel(self) -> MacVlanMode {
        match self {
            Self::Bridge => MacVlanMode::Bridge,
            Self::Private => MacVlanMode::Private,
            Self::Vepa => MacVlanMode::Vepa,
            Self::Passthru => MacVlanMode::Passthrough,
        }
    }
}

/// `ip link add NAME link PARENT type macvlan mode MODE`. With `netns_fd`
/// the device is born in that namespace (its parent stays here), so no
/// create-then-move.
pub fn add_macvlan(name: &str, parent: u32, mode: MacvlanMode, netns_fd: Option<RawFd>) -> Req {
    let mut b = LinkMacVlan::new(name, parent, mode.kernel());
    if let Some(fd) = netns_fd {
        b = b.setns_by_fd(fd);
    }
    (M::NewLink(b.build()), NLM_F_CREATE | NLM_F_EXCL)
}

/// What a link's kind-specific data says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindInfo {
    Macvlan(MacvlanMode),
    Vxlan(VxlanState),
    Tun(TunState),
    Bridge(BridgeState),
}

/// Everything this layer reads from a dumped link, beyond what
/// `observe::link_state` already takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkExtra {
    pub mac: Option<[u8; 6]>,
    pub txqlen: Option<u32>,
    pub alias: Option<String>,
    /// IFLA_LINK: a macvlan's parent, a veth's peer.
    pub link: Option<u32>,
    pub kind: Option<KindInfo>,
    /// Set when the link is a bridge port.
    pub bridge_port: Option<BridgePortState>,
    /// IFLA_INET6_ADDR_GEN_MODE: 0 eui64, 1 none, 2 stable privacy, 3 random.
    pub addr_gen_mode: Option<u8>,
}

pub fn parse_link(l: &LinkMessage) -> LinkExtra {
    let mut x = LinkExtra::default();
    for a in &l.attributes {
        match a {
            LinkAttribute::Address(b) if b.len() == 6 => {
                x.mac = Some([b[0], b[1], b[2], b[3], b[4], b[5]]);
            }
            LinkAttribute::TxQueueLen(q) => x.txqlen = Some(*q),
            LinkAttribute::IfAlias(s) => x.alias = Some(s.clone()),
            LinkAttribute::Link(i) => x.link = Some(*i),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    match i {
                        LinkInfo::Data(InfoData::MacVlan(m)) => {
                            x.kind = m.iter().find_map(|v| match v {
                                InfoMacVlan::Mode(MacVlanMode::Bridge) => {
                                    Some(KindInfo::Macvlan(MacvlanMode::Bridge))
                                }
                                InfoMacVlan::Mode(MacVlanMode::Private) => {
                                    Some(KindInfo::Macvlan(MacvlanMode::Private))
                                }
                                InfoMacVlan::Mode(MacVlanMode::Vepa) => {
                                    Some(KindInfo::Macvlan(MacvlanMode::Vepa))
                                }
                                InfoMacVlan::Mode(MacVlanMode::Passthrough) => {
                                    Some(KindInfo::Macvlan(MacvlanMode::Passthru))
                                }
                                _ => None,
                            })
                        }
                        LinkInfo::Data(InfoData::Vxlan(v)) => {
                            x.kind = Some(KindInfo::Vxlan(vxlan_msg::vxlan_state(v)))
                        }
                        LinkInfo::Data(InfoData::Bridge(b)) => {
                            x.kind = Some(KindInfo::Bridge(bridge_msg::bridge_state(b)))
                        }
                        LinkInfo::Kind(InfoKind::Tun) => {
                            x.kind = tun::parse_tun(l).map(KindInfo::Tun)
                        }
                        _ => {}
                    }
                }
                x.bridge_port = bridge_msg::port_state(infos);
            }
            LinkAttribute::AfSpecUnspec(specs) => {
                for s in specs {
                    if let AfSpecUnspec::Inet6(v6) = s {
                        for a in v6 {
                            if let AfSpecInet6::AddrGenMode(m) = a {
                                x.addr_gen_mode = Some(u8::from(m));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    x
}

/// `02:00:00:00:00:01` as bytes; a multicast or all-zero address is refused
/// here, as the kernel would refuse it (EADDRNOTAVAIL).
pub fn parse_mac(s: &str) -> Result<[u8; 6], LinkError> {
    let bad = || {
        LinkError::Invalid(format!(
            "{s:?} is not a MAC address (like 02:00:00:00:00:01)"
        ))
    };
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        if p.is_empty() || p.len() > 2 {
            return Err(bad());
        }
        *m = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 != 0 {
        return Err(LinkError::Invalid(format!(
            "{s} is a multicast address; a device needs a unicast one"
        )));
    }
    if mac == [0; 6] {
        return Err(LinkError::Invalid(
            "the all-zero MAC address is not usable".into(),
        ));
    }
    Ok(mac)
}

pub fn format_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Longest alias the kernel keeps (IFALIASZ 256, with its NUL).
pub const ALIAS_MAX: usize = 255;

/// Attributes of an existing link, set together in one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkAttrs {
    pub mac: Option<[u8; 6]>,
    pub txqlen: Option<u32>,
    /// `Some("")` removes the alias.
    pub alias: Option<String>,
}

/// `ip link set dev INDEX address … txqueuelen … alias …`.
pub fn set_attrs(index: u32, a: &LinkAttrs) -> Result<Req, LinkError> {
    let mut b = LinkUnspec::new_with_index(index);
    if let Some(m) = a.mac {
        b = b.address(m.to_vec());
    }
    if let Some(q) = a.txqlen {
        b = b.txqueuelen(q);
    }
    if let Some(s) = &a.alias {
        if s.len() > ALIAS_MAX || s.contains('\0') {
            return Err(LinkError::Invalid(format!(
                "an alias is at most {ALIAS_MAX} bytes, without NUL"
            )));
        }
        // Without the NUL the crate would add, as `ip` sends it: the kernel
        // counts the NUL against its 255 bytes. Empty removes the alias.
        const IFLA_IFALIAS: u16 = 20;
        b = b.append_extra_attribute(LinkAttribute::Other(DefaultNla::new(
            IFLA_IFALIAS,
            s.as_bytes().to_vec(),
        )));
    }
    Ok((M::SetLink(b.build()), 0))
}

/// IFLA_INET6_ADDR_GEN_MODE: `none` stops link-local address generation
/// (set it before the link goes up; an address made already stays).
pub fn set_addr_gen_mode(index: u32, none: bool) -> Req {
    let mode = if none {
        In6AddrGenMode::None
    } else {
        In6AddrGenMode::Eui64
    };
    let b = LinkUnspec::new_with_index(index).append_extra_attribute(LinkAttribute::AfSpecUnspec(
        vec![AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(mode)])],
    ));
    (M::SetLink(b.build()), 0)
}

/// The sysctl file turning IPv6 off on one device. Written from a thread
/// inside the device's namespace (/proc/sys/net follows the opener's).
/// Device names may hold dots, which the `a.b.c` sysctl spelling cannot.
pub fn ipv6_disable_path(dev: &str) -> String {
    format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6")
}

/// `netns(name, #{ ipv6: false })`: these sysctls, set before the
/// namespace's devices are made, keep IPv6 off on every device made later
/// (`default`) and on those already there, lo included (`all`).
pub const NETNS_IPV6_OFF: [(&str, &str); 2] = [
    ("net.ipv6.conf.all.disable_ipv6", "1"),
    ("net.ipv6.conf.default.disable_ipv6", "1"),
];

/// Turn IPv6 off (or on) on `dev` in the calling thread's namespace.
pub fn set_ipv6_disabled_here(dev: &str, off: bool) -> Result<(), KernelError> {
    std::fs::write(ipv6_disable_path(dev), if off { "1" } else { "0" })
        .map_err(|e| KernelError::from(e).context(&format!("cannot turn IPv6 off on {dev}")))
}

/// Read it back (None: the device has no IPv6 configuration at all).
pub fn ipv6_disabled_here(dev: &str) -> Option<bool> {
    std::fs::read_to_string(ipv6_disable_path(dev))
        .ok()
        .map(|s| s.trim() == "1")
}

#[cfg(test)]
mod tests;
