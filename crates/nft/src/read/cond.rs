//! A rule's statements as typed conditions and one action — the vocabulary
//! the recognisers match against. A statement with no typed meaning becomes
//! `Cond::Unknown`, so a rule is only ever recognised whole.

use std::net::IpAddr;

use ipnet::IpNet;

use super::expr::{Field, NatStmt, Stmt, Val};
use super::text::{Ctx, ifname_from, ip_from};
use super::xt;
use crate::sys::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cond {
    Nfproto(u8),
    L4(u8),
    Iif(String),
    Oif(String),
    Saddr(IpNet),
    SaddrNot(IpNet),
    Daddr(IpNet),
    DaddrNot(IpNet),
    Dport(u16, u16),
    CtDnat,
    CtNotDnat,
    CtEstablished,
    FibLocal,
    /// `numgen random mod M < N`
    Random {
        modulus: u32,
        below: u32,
    },
    Lookup {
        keys: Vec<Key>,
        set: String,
    },
    Unknown,
}

/// A field a set lookup is keyed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Key {
    Iif,
    Oif,
    Saddr,
    Daddr,
    Dport,
}

/// Where a nat statement takes an address or port from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Src {
    Value(Vec<u8>),
    Map {
        set: String,
        keys: Vec<Key>,
        at: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    None,
    Nat {
        dnat: bool,
        v6: bool,
        addr: Option<Src>,
        port: Option<Src>,
    },
    Masq,
    Accept,
    Drop,
    Jump(String),
    Return,
    Unknown,
}

/// A rule as conditions and what it does.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub conds: Vec<Cond>,
    pub action: Action,
}

fn key_of(c: &Ctx, v: &Val) -> Option<Key> {
    if v.mask.is_some() || v.hton {
        return None;
    }
    let v6 = c.nfproto == Some(NFPROTO_IPV6);
    match (&v.field, v6) {
        (Field::Meta(NFT_META_IIFNAME), _) => Some(Key::Iif),
        (Field::Meta(NFT_META_OIFNAME), _) => Some(Key::Oif),
        (
            Field::Payload {
                base: NFT_PAYLOAD_NETWORK_HEADER,
                offset: 12,
                len: 4,
            },
            false,
        )
        | (
            Field::Payload {
                base: NFT_PAYLOAD_NETWORK_HEADER,
                offset: 8,
                len: 16,
            },
            true,
        ) => Some(Key::Saddr),
        (
            Field::Payload {
                base: NFT_PAYLOAD_NETWORK_HEADER,
                offset: 16,
                len: 4,
            },
            false,
        )
        | (
            Field::Payload {
                base: NFT_PAYLOAD_NETWORK_HEADER,
                offset: 24,
                len: 16,
            },
            true,
        ) => Some(Key::Daddr),
        (
            Field::Payload {
                base: NFT_PAYLOAD_TRANSPORT_HEADER,
                offset: 2,
                len: 2,
            },
            _,
        ) if matches!(c.l4proto, Some(6 | 17)) => Some(Key::Dport),
        _ => None,
    }
}

/// Lookup keys, walking the family forward as a v6 address pins it.
fn keys_of(c: &Ctx, vals: &[Val]) -> Option<Vec<Key>> {
    vals.iter().map(|v| key_of(c, v)).collect()
}

fn host_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(..4)?.try_into().ok()?))
}

/// `ip saddr 10.0.0.0/8` from the loaded bytes and the mask, if a prefix.
fn net(c: &Ctx, data: &[u8], mask: Option<&[u8]>) -> Option<IpNet> {
    let full = if c.nfproto == Some(NFPROTO_IPV6) {
        16
    } else {
        4
    };
    if data.len() > full {
        return None;
    }
    let bits = match mask {
        Some(m) => {
            let ones: u32 = m.iter().map(|b| b.count_ones()).sum();
            // only a contiguous prefix mask is a CIDR
            let contiguous = m
                .iter()
                .flat_map(|b| (0..8).rev().map(move |i| b >> i & 1))
                .skip_while(|b| *b == 1)
                .all(|b| b == 0);
            if !contiguous {
                return None;
            }
            ones as u8
        }
        None => (data.len() * 8) as u8,
    };
    let mut a = data.to_vec();
    a.resize(full, 0);
    IpNet::new(ip_from(&a)?, bits).ok()
}

fn cmp(c: &Ctx, lhs: &Val, op: u32, data: &[u8]) -> Cond {
    let key = key_of(
        c,
        &Val {
            mask: None,
            ..lhs.clone()
        },
    );
    let eq = op == NFT_CMP_EQ;
    match (&lhs.field, key) {
        (Field::Meta(NFT_META_NFPROTO), _) if eq => {
            data.first().map_or(Cond::Unknown, |p| Cond::Nfproto(*p))
        }
        (Field::Meta(NFT_META_L4PROTO), _) if eq => {
            data.first().map_or(Cond::Unknown, |p| Cond::L4(*p))
        }
        (
            Field::Payload {
                base: NFT_PAYLOAD_NETWORK_HEADER,
                offset,
                len: 1,
            },
            _,
        ) if eq
            && ((*offset == 9 && c.nfproto == Some(NFPROTO_IPV4))
                || (*offset == 6 && c.nfproto == Some(NFPROTO_IPV6))) =>
        {
            data.first().map_or(Cond::Unknown, |p| Cond::L4(*p))
        }
        // a NUL-terminated name (nft pads to 16 bytes, iptables-nft sends
        // strlen + 1); without the NUL it is a prefix match (`eth*`, `eth+`)
        (Field::Meta(k @ (NFT_META_IIFNAME | NFT_META_OIFNAME)), _)
            if eq && data.len() <= IFNAMSIZ && data.contains(&0) && lhs.mask.is_none() =>
        {
            let n = ifname_from(data);
            if *k == NFT_META_IIFNAME {
                Cond::Iif(n)
            } else {
                Cond::Oif(n)
            }
        }
        (
            Field::Payload {
                base: NFT_PAYLOAD_NETWORK_HEADER,
                offset,
                ..
            },
            _,
        ) if !lhs.hton && (op == NFT_CMP_EQ || op == NFT_CMP_NEQ) => {
            let v6 = c.nfproto == Some(NFPROTO_IPV6);
            let (s, d) = if v6 { (8, 24) } else { (12, 16) };
            let Some(n) = net(c, data, lhs.mask.as_deref()) else {
                return Cond::Unknown;
            };
            match (*offset == s, *offset == d, eq) {
                (true, _, true) => Cond::Saddr(n),
                (true, _, false) => Cond::SaddrNot(n),
                (_, true, true) => Cond::Daddr(n),
                (_, true, false) => Cond::DaddrNot(n),
                _ => Cond::Unknown,
            }
        }
        (_, Some(Key::Dport)) if lhs.mask.is_none() => {
            let Some(p) = data.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
                return Cond::Unknown;
            };
            match op {
                NFT_CMP_EQ => Cond::Dport(p, p),
                NFT_CMP_GTE => Cond::Dport(p, u16::MAX),
                NFT_CMP_LTE => Cond::Dport(0, p),
                _ => Cond::Unknown,
            }
        }
        (Field::Ct { key }, _) if data.iter().all(|b| *b == 0) => {
            match (*key, lhs.mask.as_deref().and_then(host_u32), op) {
                (NFT_CT_STATUS, Some(IPS_DST_NAT), NFT_CMP_NEQ) => Cond::CtDnat,
                (NFT_CT_STATUS, Some(IPS_DST_NAT), NFT_CMP_EQ) => Cond::CtNotDnat,
                (NFT_CT_STATE, Some(m), NFT_CMP_NEQ)
                    if m == CT_STATE_ESTABLISHED | CT_STATE_RELATED =>
                {
                    Cond::CtEstablished
                }
                _ => Cond::Unknown,
            }
        }
        (
            Field::Fib {
                result: NFT_FIB_RESULT_ADDRTYPE,
                flags: NFTA_FIB_F_DADDR,
            },
            _,
        ) if eq && host_u32(data) == Some(RTN_LOCAL) => Cond::FibLocal,
        (
            Field::Numgen {
                ty: NFT_NG_RANDOM,
                modulus,
                offset: 0,
            },
            _,
        ) if op == NFT_CMP_LT && lhs.hton && lhs.mask.is_none() => match data.get(..4) {
            Some(b) => Cond::Random {
                modulus: *modulus,
                below: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            },
            None => Cond::Unknown,
        },
        _ => Cond::Unknown,
    }
}

fn src(c: &Ctx, v: &Val) -> Option<Src> {
    if v.mask.is_some() || v.hton {
        return None;
    }
    match &v.field {
        Field::Imm(b) => Some(Src::Value(b.clone())),
        Field::MapData { set, keys, at } => Some(Src::Map {
            set: set.clone(),
            keys: keys_of(c, keys)?,
            at: *at,
        }),
        _ => None,
    }
}

fn nat(c: &Ctx, s: &Stmt) -> Action {
    let Stmt::Nat(n) = s else {
        return Action::Unknown;
    };
    let NatStmt {
        dnat,
        family,
        addr,
        addr_max,
        proto,
        proto_max,
        flags,
    } = &**n;
    if flags & !NF_NAT_RANGE_IMPLIED != 0
        || addr_max.as_ref().is_some_and(|m| Some(m) != addr.as_ref())
        || proto_max
            .as_ref()
            .is_some_and(|m| Some(m) != proto.as_ref())
    {
        return Action::Unknown;
    }
    let addr = match addr.as_ref().map(|a| src(c, a)) {
        Some(None) => return Action::Unknown,
        a => a.flatten(),
    };
    let port = match proto.as_ref().map(|p| src(c, p)) {
        Some(None) => return Action::Unknown,
        p => p.flatten(),
    };
    Action::Nat {
        dnat: *dnat,
        v6: *family == NFPROTO_IPV6,
        addr,
        port,
    }
}

fn xt_target(c: &Ctx, name: &str, rev: u32, info: &[u8]) -> Action {
    let v6 = c.nfproto == Some(NFPROTO_IPV6);
    let Some(r) = xt::nat(name, rev, info, v6) else {
        return Action::Unknown;
    };
    if r.extra_flags != 0 || r.min != r.max || r.ports.is_some_and(|(lo, hi)| lo != hi) {
        return Action::Unknown;
    }
    let bytes = |a: IpAddr| match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    match name {
        "MASQUERADE" if r.min.is_none() && r.ports.is_none() => Action::Masq,
        "SNAT" | "DNAT" => Action::Nat {
            dnat: name == "DNAT",
            v6,
            addr: r.min.map(|a| Src::Value(bytes(a))),
            port: r.ports.map(|(p, _)| Src::Value(p.to_be_bytes().to_vec())),
        },
        _ => Action::Unknown,
    }
}

/// Conditions and action of one rule of a table of family `table_family`.
pub(crate) fn parse(table_family: u8, stmts: &[Stmt]) -> Parsed {
    let mut c = Ctx::new(table_family);
    let mut conds = Vec::new();
    let mut action = Action::None;
    for s in stmts {
        c.learn(s);
        if action != Action::None && *s != Stmt::Counter {
            // something after the verdict: not a shape we know
            action = Action::Unknown;
            continue;
        }
        match s {
            Stmt::Counter => {}
            Stmt::Cmp { lhs, op, data } => conds.push(cmp(&c, lhs, *op, data)),
            Stmt::Range {
                lhs,
                neq: false,
                from,
                to,
            } if key_of(&c, lhs) == Some(Key::Dport) => {
                let p = |b: &[u8]| b.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
                conds.push(match (p(from), p(to)) {
                    (Some(lo), Some(hi)) => Cond::Dport(lo, hi),
                    _ => Cond::Unknown,
                });
            }
            Stmt::Lookup {
                keys,
                set,
                inv: false,
            } => conds.push(match keys_of(&c, keys) {
                Some(keys) => Cond::Lookup {
                    keys,
                    set: set.clone(),
                },
                None => Cond::Unknown,
            }),
            Stmt::Nat(_) => action = nat(&c, s),
            Stmt::Masq {
                flags: 0,
                proto: None,
            } => action = Action::Masq,
            Stmt::Verdict { code, chain } => {
                action = match (*code, chain) {
                    (v, _) if v == NF_ACCEPT as i32 => Action::Accept,
                    (v, _) if v == NF_DROP as i32 => Action::Drop,
                    (NFT_JUMP | NFT_GOTO, Some(ch)) => Action::Jump(ch.clone()),
                    (NFT_RETURN, _) => Action::Return,
                    _ => Action::Unknown,
                }
            }
            Stmt::Xt {
                target: true,
                name,
                rev,
                info,
            } => action = xt_target(&c, name, *rev, info),
            Stmt::Xt {
                target: false,
                name,
                rev,
                info,
            } => conds.push(
                if name == "addrtype" && xt::addrtype_dst_local(*rev, info) {
                    Cond::FibLocal
                } else {
                    Cond::Unknown
                },
            ),
            _ => conds.push(Cond::Unknown),
        }
    }
    merge_port_bounds(&mut conds);
    Parsed { conds, action }
}

/// `dport >= a` and `dport <= b` (nft's encoding of `dport a-b`) as one range.
fn merge_port_bounds(conds: &mut Vec<Cond>) {
    let ports: Vec<(u16, u16)> = conds
        .iter()
        .filter_map(|c| match c {
            Cond::Dport(lo, hi) => Some((*lo, *hi)),
            _ => None,
        })
        .collect();
    if ports.len() < 2 {
        return;
    }
    let lo = ports.iter().map(|p| p.0).max().unwrap_or(0);
    let hi = ports.iter().map(|p| p.1).min().unwrap_or(0);
    conds.retain(|c| !matches!(c, Cond::Dport(..)));
    conds.push(if lo <= hi {
        Cond::Dport(lo, hi)
    } else {
        Cond::Unknown
    });
}
