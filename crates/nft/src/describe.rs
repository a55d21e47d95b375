//! One rule's expressions back to nft-like text, by tracking what each
//! register holds. Covers the expressions this crate writes; others are named.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::dump::{SetInfo, port_of, type_fields};
use crate::parse::{attr, attr_be32, attr_str, attrs, be32, data_value};
use crate::sys::*;

/// Register contents while walking a rule, in 32-bit register units.
#[derive(Default)]
struct Regs {
    what: HashMap<u32, String>,
    nfproto: Option<u8>,
    l4proto: Option<u8>,
}

fn unit(reg: u32) -> u32 {
    if (NFT_REG32_00..NFT_REG32_00 + 16).contains(&reg) {
        reg - NFT_REG32_00
    } else {
        reg.saturating_sub(1) * 4
    }
}

fn fam(r: &Regs) -> &'static str {
    if r.nfproto == Some(NFPROTO_IPV6) {
        "ip6"
    } else {
        "ip"
    }
}

fn l4(r: &Regs) -> String {
    match r.l4proto {
        Some(6) => "tcp".into(),
        Some(17) => "udp".into(),
        _ => "th".into(),
    }
}

fn payload_name(r: &Regs, base: u32, off: u32) -> String {
    match (base, off, fam(r)) {
        (NFT_PAYLOAD_NETWORK_HEADER, 12, "ip") | (NFT_PAYLOAD_NETWORK_HEADER, 8, "ip6") => {
            format!("{} saddr", fam(r))
        }
        (NFT_PAYLOAD_NETWORK_HEADER, 16, "ip") | (NFT_PAYLOAD_NETWORK_HEADER, 24, "ip6") => {
            format!("{} daddr", fam(r))
        }
        (NFT_PAYLOAD_TRANSPORT_HEADER, 0, _) => format!("{} sport", l4(r)),
        (NFT_PAYLOAD_TRANSPORT_HEADER, 2, _) => format!("{} dport", l4(r)),
        _ => format!("@{base},{off}"),
    }
}

fn addr_prefix(r: &Regs, data: &[u8], prefix: Option<u32>) -> String {
    let full = if fam(r) == "ip6" { 16 } else { 4 };
    let mut a = data.to_vec();
    a.resize(full, 0);
    let ip: IpAddr = if full == 16 {
        let mut b = [0u8; 16];
        b.copy_from_slice(&a);
        Ipv6Addr::from(b).into()
    } else {
        Ipv4Addr::new(a[0], a[1], a[2], a[3]).into()
    };
    let bits = prefix.unwrap_or(data.len() as u32 * 8);
    if bits as usize == full * 8 {
        ip.to_string()
    } else {
        format!("{ip}/{bits}")
    }
}

fn cmp_value(r: &Regs, lhs: &str, data: &[u8], prefix: Option<u32>) -> String {
    match lhs {
        "meta nfproto" => match data.first() {
            Some(&NFPROTO_IPV4) => "ipv4".into(),
            Some(&NFPROTO_IPV6) => "ipv6".into(),
            _ => format!("{data:?}"),
        },
        "meta l4proto" => match data.first() {
            Some(6) => "tcp".into(),
            Some(17) => "udp".into(),
            Some(n) => n.to_string(),
            None => String::new(),
        },
        "iifname" | "oifname" => {
            let s = data.split(|&c| c == 0).next().unwrap_or_default();
            format!("\"{}\"", String::from_utf8_lossy(s))
        }
        "fib daddr type" => match data
            .get(..4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        {
            Some(RTN_LOCAL) => "local".into(),
            other => format!("{other:?}"),
        },
        l if l.ends_with("addr") => addr_prefix(r, data, prefix),
        l if l.ends_with("port") => port_of(data).map(|p| p.to_string()).unwrap_or_default(),
        _ => data.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

/// One rule's NFTA_RULE_EXPRESSIONS as nft-like text.
pub fn describe_rule(exprs: &[u8], sets: &HashMap<String, SetInfo>) -> String {
    let mut r = Regs::default();
    let mut prefix: HashMap<u32, u32> = HashMap::new();
    let mut out: Vec<String> = Vec::new();
    for (_, e) in attrs(exprs) {
        let name = attr_str(e, NFTA_EXPR_NAME).unwrap_or_default();
        let d = attr(e, NFTA_EXPR_DATA).unwrap_or_default();
        let reg = |t| unit(attr_be32(d, t).unwrap_or(0));
        match name.as_str() {
            "meta" => {
                let key = match attr_be32(d, NFTA_META_KEY).unwrap_or(0) {
                    NFT_META_NFPROTO => "meta nfproto".to_string(),
                    NFT_META_L4PROTO => "meta l4proto".into(),
                    NFT_META_IIFNAME => "iifname".into(),
                    NFT_META_OIFNAME => "oifname".into(),
                    k => format!("meta {k}"),
                };
                r.what.insert(reg(NFTA_META_DREG), key);
            }
            "payload" => {
                let n = payload_name(
                    &r,
                    attr_be32(d, NFTA_PAYLOAD_BASE).unwrap_or(0),
                    attr_be32(d, NFTA_PAYLOAD_OFFSET).unwrap_or(0),
                );
                let dr = reg(NFTA_PAYLOAD_DREG);
                prefix.remove(&dr);
                r.what.insert(dr, n);
            }
            "fib" => {
                r.what.insert(reg(NFTA_FIB_DREG), "fib daddr type".into());
            }
            "bitwise" => {
                let mask = data_value(d, NFTA_BITWISE_MASK).unwrap_or_default();
                prefix.insert(
                    reg(NFTA_BITWISE_DREG),
                    mask.iter().map(|b| b.count_ones()).sum(),
                );
            }
            "cmp" => {
                let sr = reg(NFTA_CMP_SREG);
                let lhs = r.what.get(&sr).cloned().unwrap_or_else(|| "?".into());
                let data = data_value(d, NFTA_CMP_DATA).unwrap_or_default();
                let op = if attr_be32(d, NFTA_CMP_OP) == Some(NFT_CMP_NEQ) {
                    "!= "
                } else {
                    ""
                };
                match lhs.as_str() {
                    "meta nfproto" => r.nfproto = data.first().copied(),
                    "meta l4proto" => r.l4proto = data.first().copied(),
                    _ => {}
                }
                out.push(format!(
                    "{lhs} {op}{}",
                    cmp_value(&r, &lhs, data, prefix.get(&sr).copied())
                ));
            }
            "lookup" => {
                let set = attr_str(d, NFTA_LOOKUP_SET).unwrap_or_default();
                let sr = reg(NFTA_LOOKUP_SREG);
                let nfields = sets
                    .get(&set)
                    .map_or(1, |s| type_fields(s.key_type).len().max(1));
                let mut key = Vec::new();
                let mut u = sr;
                for _ in 0..nfields {
                    key.push(r.what.get(&u).cloned().unwrap_or_else(|| "?".into()));
                    u += if key.last().is_some_and(|k| k.starts_with("ip6")) {
                        4
                    } else {
                        1
                    };
                }
                let text = format!("{} map @{set}", key.join(" . "));
                match attr(d, NFTA_LOOKUP_DREG) {
                    Some(_) => {
                        r.what.insert(reg(NFTA_LOOKUP_DREG), text);
                    }
                    None => out.push(format!("{} @{set}", key.join(" . "))),
                }
            }
            "immediate" => {
                let v = data_value(d, NFTA_IMMEDIATE_DATA).unwrap_or_default();
                let s = match v.len() {
                    4 | 16 => addr_prefix(
                        &Regs {
                            nfproto: (v.len() == 16).then_some(NFPROTO_IPV6),
                            ..Default::default()
                        },
                        v,
                        None,
                    ),
                    _ => format!("{v:02x?}"),
                };
                r.what.insert(reg(NFTA_IMMEDIATE_DREG), s);
            }
            "nat" => {
                let ty = if attr_be32(d, NFTA_NAT_TYPE) == Some(NFT_NAT_DNAT) {
                    "dnat"
                } else {
                    "snat"
                };
                let f = if attr_be32(d, NFTA_NAT_FAMILY) == Some(NFPROTO_IPV6 as u32) {
                    "ip6"
                } else {
                    "ip"
                };
                let a = attr(d, NFTA_NAT_REG_ADDR_MIN).and_then(be32).map(unit);
                let addr = a.and_then(|u| r.what.get(&u)).cloned().unwrap_or_default();
                out.push(format!("{ty} {f} to {addr}"));
            }
            "masq" => out.push("masquerade".into()),
            other => out.push(other.to_string()),
        }
    }
    out.join(" ")
}
