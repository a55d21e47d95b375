//! NAT rules recognised from parsed rules: this crate's own layout (maps
//! looked up by port or daddr . port) and the plain one-rule-per-mapping
//! shape iptables-nft and hand-written nft use. Only a rule whose every
//! condition has a place in a [`NatRule`] is recognised.

use std::net::IpAddr;

use ipnet::IpNet;

use super::cond::{Action, Cond, Key, Parsed, Src};
use super::elems::{RawSet, field_len, split, type_fields};
use super::text::ip_from;
use crate::model::{DnatMapping, L4Proto, NatRule};
use crate::plan::LOCALNET;
use crate::sys::*;

fn l4(p: u8) -> Option<L4Proto> {
    match p {
        6 => Some(L4Proto::Tcp),
        17 => Some(L4Proto::Udp),
        _ => None,
    }
}

fn full_host(n: &IpNet) -> Option<IpAddr> {
    (n.prefix_len() == n.max_prefix_len()).then_some(n.addr())
}

fn port_of(b: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// What the conditions of a DNAT rule pinned down.
#[derive(Default)]
struct DnatConds {
    nfproto: Option<u8>,
    l4: Option<u8>,
    iif: Option<String>,
    daddr: Option<IpAddr>,
    ports: Option<(u16, u16)>,
    /// `tcp dport { 80, 443 }` or `ip daddr . tcp dport @s`
    set: Option<(Vec<Key>, String)>,
}

fn dnat_conds(conds: &[Cond], output: bool) -> Option<DnatConds> {
    let mut d = DnatConds::default();
    for c in conds {
        match c {
            Cond::Nfproto(p) if d.nfproto.is_none_or(|q| q == *p) => d.nfproto = Some(*p),
            Cond::L4(p) if d.l4.is_none_or(|q| q == *p) => d.l4 = Some(*p),
            Cond::Iif(i) if !output && d.iif.is_none() => d.iif = Some(i.clone()),
            Cond::Daddr(n) if d.daddr.is_none() => d.daddr = Some(full_host(n)?),
            Cond::Dport(lo, hi) if d.ports.is_none() && *lo >= 1 => d.ports = Some((*lo, *hi)),
            // this crate's output rules only DNAT traffic for local addresses
            Cond::FibLocal if output => {}
            Cond::Lookup { keys, set } if d.set.is_none() => {
                d.set = Some((keys.clone(), set.clone()))
            }
            _ => return None,
        }
    }
    Some(d)
}

fn family_ok(d: &DnatConds, to: &IpAddr) -> bool {
    let nf = if to.is_ipv6() {
        NFPROTO_IPV6
    } else {
        NFPROTO_IPV4
    };
    d.nfproto.is_none_or(|p| p == nf) && d.daddr.is_none_or(|a| a.is_ipv6() == to.is_ipv6())
}

/// `… tcp dport { 80, 443 } dnat to …`: the rule once per element.
fn dnat_each(
    d: DnatConds,
    addr: &[u8],
    port: Option<&[u8]>,
    set: impl Fn(&str) -> Option<RawSet>,
) -> Option<Vec<NatRule>> {
    let Some((keys, name)) = d.set.clone() else {
        return dnat_one(d, addr, port);
    };
    let s = set(&name)?;
    if s.flags & NFT_SET_MAP != 0 || d.ports.is_some() || d.daddr.is_some() {
        return None;
    }
    let mut out = Vec::new();
    for e in &s.elems {
        let lo = split(s.key_type, &e.lo);
        let hi = split(s.key_type, &e.hi);
        let (daddr, ports) = match (keys.as_slice(), lo.as_slice(), hi.as_slice()) {
            ([Key::Dport], [(_, p)], [(_, q)]) => (None, (port_of(p)?, port_of(q)?)),
            ([Key::Daddr, Key::Dport], [(_, a), (_, p)], [(_, b), (_, q)]) if a == b => {
                (Some(ip_from(a)?), (port_of(p)?, port_of(q)?))
            }
            _ => return None,
        };
        let one = DnatConds {
            daddr,
            ports: Some(ports).filter(|p| p.0 >= 1),
            set: None,
            iif: d.iif.clone(),
            ..d
        };
        out.extend(dnat_one(one, addr, port)?);
    }
    Some(out)
}

/// `… tcp dport 80 dnat to 172.17.0.3:8080`: one mapping.
fn dnat_one(d: DnatConds, addr: &[u8], port: Option<&[u8]>) -> Option<Vec<NatRule>> {
    let to_addr = ip_from(addr)?;
    if !family_ok(&d, &to_addr) {
        return None;
    }
    let to_port = match port {
        Some(p) => Some(port_of(p)?).filter(|p| *p != 0),
        None => None,
    };
    if port.is_some() && to_port.is_none() {
        return None;
    }
    Some(vec![NatRule::Dnat(DnatMapping {
        proto: l4(d.l4?)?,
        daddr: d.daddr,
        iif: d.iif,
        ports: d.ports?,
        to_addr,
        to_port,
        tag: 0,
    })])
}

/// `dnat ip to [ip daddr .] tcp dport map @m`: one mapping per element.
fn dnat_map(
    d: DnatConds,
    set: &RawSet,
    keys: &[Key],
    port_at: Option<u32>,
) -> Option<Vec<NatRule>> {
    if d.daddr.is_some() || d.ports.is_some() || d.set.is_some() || set.flags & NFT_SET_MAP == 0 {
        return None;
    }
    let with_daddr = match keys {
        [Key::Dport] => false,
        [Key::Daddr, Key::Dport] => true,
        _ => return None,
    };
    let data_fields = type_fields(set.data_type);
    // the port the nat reads must be the data's second field
    match (port_at, data_fields.as_slice()) {
        (None, [_]) => {}
        (Some(at), [a, _]) if at as usize == field_len(*a).div_ceil(4) * 4 => {}
        _ => return None,
    }
    let proto = l4(d.l4?)?;
    let mut out = Vec::with_capacity(set.elems.len());
    for e in &set.elems {
        let lo = split(set.key_type, &e.lo);
        let hi = split(set.key_type, &e.hi);
        let data = split(set.data_type, e.data.as_deref()?);
        let (daddr, plo, phi) = match (with_daddr, lo.as_slice(), hi.as_slice()) {
            (false, [(_, p)], [(_, q)]) => (None, port_of(p)?, port_of(q)?),
            (true, [(_, a), (_, p)], [(_, b), (_, q)]) if a == b => {
                (Some(ip_from(a)?), port_of(p)?, port_of(q)?)
            }
            _ => return None,
        };
        let to_addr = ip_from(&data.first()?.1)?;
        let to_port = match data.get(1) {
            Some((_, p)) => Some(port_of(p)?),
            None => None,
        };
        let nf = if to_addr.is_ipv6() {
            NFPROTO_IPV6
        } else {
            NFPROTO_IPV4
        };
        let family_ok = d.nfproto.is_none_or(|p| p == nf)
            && daddr.is_none_or(|a: IpAddr| a.is_ipv6() == to_addr.is_ipv6());
        if !family_ok || plo == 0 {
            return None;
        }
        out.push(NatRule::Dnat(DnatMapping {
            proto,
            daddr,
            iif: d.iif.clone(),
            ports: (plo, phi),
            to_addr,
            to_port,
            tag: 0,
        }));
    }
    Some(out)
}

/// A DNAT rule in a prerouting (or, with `output`, output) nat chain.
pub(crate) fn dnat(
    p: &Parsed,
    output: bool,
    set: impl Fn(&str) -> Option<RawSet>,
) -> Option<Vec<NatRule>> {
    let Action::Nat {
        dnat: true,
        addr: Some(addr),
        port,
        ..
    } = &p.action
    else {
        return None;
    };
    let d = dnat_conds(&p.conds, output)?;
    match (addr, port) {
        (Src::Value(a), None) => dnat_each(d, a, None, set),
        (Src::Value(a), Some(Src::Value(pt))) => dnat_each(d, a, Some(pt), set),
        (
            Src::Map {
                set: s,
                keys,
                at: 0,
            },
            None,
        ) => dnat_map(d, &set(s)?, keys, None),
        (
            Src::Map {
                set: s,
                keys,
                at: 0,
            },
            Some(Src::Map {
                set: s2,
                keys: k2,
                at,
            }),
        ) if s == s2 && keys == k2 => dnat_map(d, &set(s)?, keys, Some(*at)),
        _ => None,
    }
}

/// A rule in a postrouting nat chain: masquerade, snat, hairpin or localhost.
pub(crate) fn src_nat(p: &Parsed) -> Option<NatRule> {
    let mut nfproto = None;
    let (mut saddr, mut daddr, mut daddr_not, mut oif, mut ct_dnat) =
        (None, None, None, None, false);
    for c in &p.conds {
        match c {
            Cond::Nfproto(x) if nfproto.is_none() => nfproto = Some(*x),
            Cond::Saddr(n) if saddr.is_none() => saddr = Some(*n),
            Cond::Daddr(n) if daddr.is_none() => daddr = Some(*n),
            Cond::DaddrNot(n) if daddr_not.is_none() => daddr_not = Some(*n),
            Cond::Oif(o) if oif.is_none() => oif = Some(o.clone()),
            Cond::CtDnat if !ct_dnat => ct_dnat = true,
            _ => return None,
        }
    }
    let src = saddr?;
    let nf = if src.addr().is_ipv6() {
        NFPROTO_IPV6
    } else {
        NFPROTO_IPV4
    };
    if nfproto.is_some_and(|p| p != nf) {
        return None;
    }
    let masq = p.action == Action::Masq;
    match (daddr, daddr_not, ct_dnat) {
        (None, Some(d), false) if d == src => match &p.action {
            Action::Masq => Some(NatRule::Masquerade { src, oif, tag: 0 }),
            Action::Nat {
                dnat: false,
                addr: Some(Src::Value(a)),
                port: None,
                ..
            } => {
                let to = ip_from(a)?;
                (to.is_ipv6() == src.addr().is_ipv6()).then_some(NatRule::Snat {
                    src,
                    to,
                    oif,
                    tag: 0,
                })
            }
            _ => None,
        },
        (Some(d), None, true) if d == src && oif.is_none() && masq => Some(NatRule::Hairpin {
            subnet: src,
            tag: 0,
        }),
        (None, None, true) if src == LOCALNET && masq => {
            Some(NatRule::LocalhostMasquerade { oif: oif?, tag: 0 })
        }
        _ => None,
    }
}
