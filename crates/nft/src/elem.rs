//! Set and map elements read back as typed values: each field of a key or
//! a value is an address range, a port range or an interface name, so a
//! reader never parses nft's text of them again.

use std::net::IpAddr;

use serde::Serialize;

use crate::read::elems::{Elem, RawSet, split};
use crate::read::text::{ifname_from, ip_from};
use crate::sys::*;

/// One field of an element's key or value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum ElemField {
    /// Every address from `first` to `last` (equal for one address; a
    /// prefix such as `10.0.0.0/8` is the range it covers).
    Addr {
        /// The lowest address.
        first: IpAddr,
        /// The highest address.
        last: IpAddr,
    },
    /// Every port from `first` to `last` (equal for one port).
    Port {
        /// The lowest port.
        first: u16,
        /// The highest port.
        last: u16,
    },
    /// An interface name.
    Ifname(String),
    /// A field of a datatype this crate does not know, as its bytes.
    Other(Vec<u8>),
}

impl ElemField {
    /// nft's name of the field's type: `ipv4_addr`, `ipv6_addr`,
    /// `inet_service`, `ifname` (or `?`).
    pub fn type_name(&self) -> &'static str {
        match self {
            ElemField::Addr { first, .. } if first.is_ipv6() => "ipv6_addr",
            ElemField::Addr { .. } => "ipv4_addr",
            ElemField::Port { .. } => "inet_service",
            ElemField::Ifname(_) => "ifname",
            ElemField::Other(_) => "?",
        }
    }

    /// The address of a single-address field.
    pub fn addr(&self) -> Option<IpAddr> {
        match self {
            ElemField::Addr { first, last } if first == last => Some(*first),
            _ => None,
        }
    }

    /// The port range of a port field.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self {
            ElemField::Port { first, last } => Some((*first, *last)),
            _ => None,
        }
    }
}

/// One element of a named set or map: its key and (for a map) its value,
/// field by field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct MapElem {
    /// The key's fields in order (`ipv4_addr . inet_service` has two).
    pub key: Vec<ElemField>,
    /// The value's fields in order; empty for a plain set.
    pub value: Vec<ElemField>,
}

impl MapElem {
    /// The value's address, for a DNAT map (`addr` or `addr . port`).
    pub fn to_addr(&self) -> Option<IpAddr> {
        self.value.first().and_then(ElemField::addr)
    }

    /// The value's port, for a DNAT map that translates ports.
    pub fn to_port(&self) -> Option<u16> {
        self.value.get(1).and_then(ElemField::ports).map(|(p, _)| p)
    }
}

fn field(t: u32, lo: &[u8], hi: &[u8]) -> ElemField {
    match t {
        TYPE_IPADDR | TYPE_IP6ADDR => match (ip_from(lo), ip_from(hi)) {
            (Some(first), Some(last)) => ElemField::Addr { first, last },
            _ => ElemField::Other(lo.to_vec()),
        },
        TYPE_INET_SERVICE if lo.len() >= 2 && hi.len() >= 2 => ElemField::Port {
            first: u16::from_be_bytes([lo[0], lo[1]]),
            last: u16::from_be_bytes([hi[0], hi[1]]),
        },
        TYPE_IFNAME => ElemField::Ifname(ifname_from(lo)),
        _ => ElemField::Other(lo.to_vec()),
    }
}

/// An element as read back, typed field by field.
pub(crate) fn typed(s: &RawSet, e: &Elem) -> MapElem {
    let lo = split(s.key_type, &e.lo);
    let hi = split(s.key_type, &e.hi);
    let key = lo
        .iter()
        .zip(&hi)
        .map(|((t, l), (_, h))| field(*t, l, h))
        .collect();
    let value = e.data.as_ref().map_or_else(Vec::new, |d| {
        split(s.data_type, d)
            .iter()
            .map(|(t, v)| field(*t, v, v))
            .collect()
    });
    MapElem { key, value }
}

/// One address or port as a single-value field.
pub(crate) fn one_addr(a: IpAddr) -> ElemField {
    ElemField::Addr { first: a, last: a }
}

/// A port range as a field.
pub(crate) fn ports(first: u16, last: u16) -> ElemField {
    ElemField::Port { first, last }
}

/// The prefix length when `first..=last` is exactly one CIDR block.
fn prefix_of(first: IpAddr, last: IpAddr) -> Option<u8> {
    let (lo, hi, bits) = match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return None,
    };
    let host = lo ^ hi;
    let host_bits = 128 - host.leading_zeros();
    let mask = if host_bits == 0 {
        0
    } else {
        u128::MAX >> (128 - host_bits)
    };
    (host == mask && lo & mask == 0 && host_bits <= bits).then(|| (bits - host_bits) as u8)
}

/// As nft writes the field: `80`, `80-90`, `10.0.0.0/8`, `"eth0"`.
impl std::fmt::Display for ElemField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ElemField::Addr { first, last } if first == last => write!(f, "{first}"),
            ElemField::Addr { first, last } => match prefix_of(*first, *last) {
                Some(p) => write!(f, "{first}/{p}"),
                None => write!(f, "{first}-{last}"),
            },
            ElemField::Port { first, last } if first == last => write!(f, "{first}"),
            ElemField::Port { first, last } => write!(f, "{first}-{last}"),
            ElemField::Ifname(n) => write!(f, "\"{n}\""),
            ElemField::Other(b) => b.iter().try_for_each(|x| write!(f, "{x:02x}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_print_as_nft_does() {
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        let net = ElemField::Addr {
            first: a("10.0.0.0"),
            last: a("10.255.255.255"),
        };
        assert_eq!(net.to_string(), "10.0.0.0/8");
        let range = ElemField::Addr {
            first: a("10.0.0.1"),
            last: a("10.0.0.2"),
        };
        assert_eq!(range.to_string(), "10.0.0.1-10.0.0.2");
        assert_eq!(one_addr(a("fd00::1")).to_string(), "fd00::1");
        assert_eq!(ports(80, 90).to_string(), "80-90");
        assert_eq!(ports(80, 80).to_string(), "80");
        let all = ElemField::Addr {
            first: a("0.0.0.0"),
            last: a("255.255.255.255"),
        };
        assert_eq!(all.to_string(), "0.0.0.0/0");
    }
}
