//! The x_tables compat expressions iptables-nft writes (`target name DNAT
//! rev 2`, `match name addrtype rev 1`): their info structs, decoded for the
//! few netplumb can express. Layouts from linux/netfilter/nf_nat.h and
//! xt_addrtype.h; the numbers are host order, addresses and ports network order.

use std::net::IpAddr;

use super::text::{Ctx, ip_from};
use crate::sys::*;

/// A SNAT/DNAT/MASQUERADE target's range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XtNat {
    pub min: Option<IpAddr>,
    pub max: Option<IpAddr>,
    pub ports: Option<(u16, u16)>,
    /// flags beyond "map addresses" and "ports given" (random, persistent …)
    pub extra_flags: u32,
}

const NF_NAT_RANGE_MAP_IPS: u32 = 1;
const NF_NAT_RANGE_PROTO_SPECIFIED: u32 = 2;
const XT_ADDRTYPE_LOCAL: u16 = 1 << 2;

fn u32_host(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u16_host(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// (flags, min addr, max addr, min port, max port) at the given offsets.
fn range(b: &[u8], flags_at: usize, addr_len: usize, addr_at: usize) -> Option<XtNat> {
    let flags = u32_host(b, flags_at)?;
    let min = ip_from(b.get(addr_at..addr_at + addr_len)?);
    let max_at = addr_at + if addr_len == 4 { 4 } else { 16 };
    let max = ip_from(b.get(max_at..max_at + addr_len)?);
    let port_at = max_at + if addr_len == 4 { 4 } else { 16 };
    let ports = (flags & NF_NAT_RANGE_PROTO_SPECIFIED != 0)
        .then(|| Some((be16(b, port_at)?, be16(b, port_at + 2)?)))
        .flatten();
    let maps = flags & NF_NAT_RANGE_MAP_IPS != 0;
    Some(XtNat {
        min: if maps { min } else { None },
        max: if maps { max } else { None },
        ports,
        extra_flags: flags & !(NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED),
    })
}

/// The range of an xt SNAT, DNAT or MASQUERADE target.
pub(crate) fn nat(name: &str, rev: u32, info: &[u8], v6: bool) -> Option<XtNat> {
    if !matches!(name, "SNAT" | "DNAT" | "MASQUERADE") {
        return None;
    }
    match (v6, rev) {
        // struct nf_nat_ipv4_multi_range_compat: rangesize, then one range
        (false, 0) => {
            if u32_host(info, 0)? != 1 {
                return None;
            }
            range(info, 4, 4, 8)
        }
        // struct nf_nat_range / nf_nat_range2 (union nf_inet_addr is 16 bytes)
        (_, 1 | 2) | (true, 0) => {
            let mut r = range(info, 0, 16, 4)?;
            if !v6 {
                // an IPv4 address sits in the union's first 4 bytes
                let v4 = |a: Option<IpAddr>| match a {
                    Some(IpAddr::V6(x)) => Some(IpAddr::V4(std::net::Ipv4Addr::from(
                        <[u8; 4]>::try_from(&x.octets()[..4]).ok()?,
                    ))),
                    o => o,
                };
                r.min = v4(r.min);
                r.max = v4(r.max);
            }
            Some(r)
        }
        _ => None,
    }
}

/// `-m addrtype --dst-type LOCAL` (and nothing else): nft's `fib daddr type local`.
pub(crate) fn addrtype_dst_local(rev: u32, info: &[u8]) -> bool {
    // struct xt_addrtype_info_v1 { u16 source; u16 dest; u32 flags; }
    rev == 1
        && u16_host(info, 0) == Some(0)
        && u16_host(info, 2) == Some(XT_ADDRTYPE_LOCAL)
        && u32_host(info, 4) == Some(0)
}

pub(crate) fn describe(c: &Ctx, target: bool, name: &str, rev: u32, info: &[u8]) -> String {
    let v6 = c.nfproto == Some(NFPROTO_IPV6);
    if target && let Some(r) = nat(name, rev, info, v6) {
        let verb = match name {
            "SNAT" => "snat to ",
            "DNAT" => "dnat to ",
            _ => "masquerade",
        };
        let mut s = verb.to_string();
        if let Some(a) = r.min {
            s.push_str(&a.to_string());
            if let Some(m) = r.max.filter(|m| *m != a) {
                s.push_str(&format!("-{m}"));
            }
        }
        if let Some((lo, hi)) = r.ports {
            if r.min.is_none() && name != "MASQUERADE" {
                s.push(':');
            } else if name == "MASQUERADE" {
                s.push_str(" to :");
            } else {
                s.push(':');
            }
            s.push_str(&if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            });
        }
        if r.extra_flags != 0 {
            s.push_str(&format!(" (flags {:#x})", r.extra_flags));
        }
        return s;
    }
    if !target && name == "addrtype" && addrtype_dst_local(rev, info) {
        return "fib daddr type local".into();
    }
    format!(
        "xt {} {name} (rev {rev})",
        if target { "target" } else { "match" }
    )
}
