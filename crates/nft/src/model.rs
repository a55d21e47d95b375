//! The NAT table as the rest of netplumb describes it, and its validation.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::filter::FilterRule;
use crate::loss::RandomLoss;
use crate::table::TableFlags;

/// The transport protocol a port mapping forwards.
#[derive(Copy, Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum L4Proto {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
}

impl L4Proto {
    /// The name nft uses: `"tcp"` or `"udp"`.
    pub fn name(self) -> &'static str {
        match self {
            L4Proto::Tcp => "tcp",
            L4Proto::Udp => "udp",
        }
    }

    pub(crate) fn number(self) -> u8 {
        match self {
            L4Proto::Tcp => 6,
            L4Proto::Udp => 17,
        }
    }
}

/// One port mapping (DNAT): traffic for `ports` goes to `to_addr[:to_port]`.
///
/// Mappings of the same shape (family, protocol, with or without `daddr`,
/// `iif`, single port or range, with or without a destination port) share
/// one nftables map and one rule, so 10,000 mappings cost one lookup.
///
/// ```
/// use netplumb_nft::{DnatMapping, L4Proto};
/// // host port 8080 -> 172.17.0.3:80
/// let m = DnatMapping {
///     proto: L4Proto::Tcp,
///     daddr: None,
///     iif: None,
///     ports: (8080, 8080),
///     to_addr: "172.17.0.3".parse().unwrap(),
///     to_port: Some(80),
///     tag: 7,
/// };
/// assert_eq!(m.to_port, Some(80));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DnatMapping {
    /// The transport protocol forwarded.
    pub proto: L4Proto,
    /// Only traffic for this destination address (else any local address).
    pub daddr: Option<IpAddr>,
    /// Only traffic arriving on this interface (prerouting only).
    pub iif: Option<String>,
    /// The destination port range matched, inclusive; `(p, p)` for one port.
    pub ports: (u16, u16),
    /// The backend address; its family decides the mapping's family.
    pub to_addr: IpAddr,
    /// The backend port; `None` keeps the original destination port.
    pub to_port: Option<u16>,
    /// The caller's identifier, returned in errors about this mapping.
    pub tag: usize,
}

impl DnatMapping {
    pub(crate) fn is_range(&self) -> bool {
        self.ports.0 != self.ports.1
    }

    /// A single port mapped "to the same port" is stored as that port, so it
    /// shares a map with explicit `port -> addr:port` mappings.
    pub(crate) fn dest_port(&self) -> Option<u16> {
        match self.to_port {
            None if !self.is_range() => Some(self.ports.0),
            p => p,
        }
    }

    pub(crate) fn is_v6(&self) -> bool {
        self.to_addr.is_ipv6()
    }
}

/// One NAT rule of a table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NatRule {
    /// `ip saddr SRC ip daddr != SRC [oifname OIF] masquerade`: traffic from
    /// the subnet leaving it takes the outgoing interface's address.
    Masquerade {
        /// The subnet whose traffic is rewritten.
        src: IpNet,
        /// Only traffic leaving through this interface.
        oif: Option<String>,
        /// The caller's identifier, returned in errors about this rule.
        tag: usize,
    },
    /// `ip saddr SRC ip daddr != SRC [oifname OIF] snat to TO`.
    Snat {
        /// The subnet whose traffic is rewritten.
        src: IpNet,
        /// The source address it takes.
        to: IpAddr,
        /// Only traffic leaving through this interface.
        oif: Option<String>,
        /// The caller's identifier, returned in errors about this rule.
        tag: usize,
    },
    /// A port mapping.
    Dnat(DnatMapping),
    /// `ip saddr S ip daddr S ct status dnat masquerade`: a host on subnet
    /// `S` reaching a published port whose backend is on `S` too (itself or a
    /// sibling) has its source rewritten, so the answer comes back through
    /// the host instead of straight from the backend (which the client would
    /// drop). The backend's bridge port also needs hairpin mode to reach itself.
    Hairpin {
        /// The subnet whose traffic to its own published ports is rewritten.
        subnet: IpNet,
        /// The caller's identifier, returned in errors about this rule.
        tag: usize,
    },
    /// `oifname OIF ip saddr 127.0.0.0/8 ct status dnat masquerade`: DNAT of
    /// traffic to 127.0.0.1 leaves through `oif` with a routable source. It
    /// needs `net.ipv4.conf.OIF.route_localnet=1`; IPv6 has no equivalent
    /// (the kernel never routes ::1).
    LocalhostMasquerade {
        /// The interface the DNAT'd traffic leaves through (the backend's bridge).
        oif: String,
        /// The caller's identifier, returned in errors about this rule.
        tag: usize,
    },
}

impl NatRule {
    /// The caller's identifier, to set it.
    pub fn tag_mut(&mut self) -> &mut usize {
        match self {
            NatRule::Masquerade { tag, .. }
            | NatRule::Snat { tag, .. }
            | NatRule::Hairpin { tag, .. }
            | NatRule::LocalhostMasquerade { tag, .. } => tag,
            NatRule::Dnat(m) => &mut m.tag,
        }
    }

    /// The caller's identifier of this rule.
    pub fn tag(&self) -> usize {
        match self {
            NatRule::Masquerade { tag, .. }
            | NatRule::Snat { tag, .. }
            | NatRule::Hairpin { tag, .. }
            | NatRule::LocalhostMasquerade { tag, .. } => *tag,
            NatRule::Dnat(m) => m.tag,
        }
    }
}

/// One nftables table (family `inet`) as netplumb declares it: replaced as a
/// whole, in one transaction.
///
/// ```
/// use netplumb_nft::{NatRule, NatTable};
/// let t = NatTable {
///     name: "netplumb-lab".into(),
///     rules: vec![NatRule::Masquerade {
///         src: "172.18.0.0/16".parse().unwrap(),
///         oif: None,
///         tag: 0,
///     }],
///     userdata: b"netplumb:lab".to_vec(),
///     ..Default::default()
/// };
/// t.validate().unwrap();
/// assert!(netplumb_nft::render(&t).contains("masquerade"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NatTable {
    /// The table name (family inet); at most 255 bytes, an nft identifier.
    pub name: String,
    /// The NAT rules, in any order: the table's layout does not depend on it.
    pub rules: Vec<NatRule>,
    /// Opaque bytes stored with the table (at most [`MAX_USERDATA`]), e.g. a
    /// fingerprint of the desired state and the marker that says who owns it.
    pub userdata: Vec<u8>,
    /// Filter rules of the table's forward chain (none: no forward chain).
    #[serde(default)]
    pub filter: Vec<FilterRule>,
    /// Random loss on interfaces, one ingress chain each.
    #[serde(default)]
    pub loss: Vec<RandomLoss>,
    /// The table's flags (owner, persist); none by default.
    #[serde(default)]
    pub flags: TableFlags,
}

/// The most userdata bytes a table can carry: the kernel keeps 256, and this
/// crate wraps them in one nftnl TLV (2 header bytes) so `nft list` still reads.
pub const MAX_USERDATA: usize = 254;
