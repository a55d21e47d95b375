//! Statements back to nft-like text, for `netplumb show` and for naming the
//! rules an import cannot express. Close to what `nft list` prints, not a
//! promise of byte equality.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::expr::{Field, NatStmt, Stmt, Val};
use super::xt;
use crate::sys::*;

/// What earlier statements of the rule established.
#[derive(Clone, Copy)]
pub(crate) struct Ctx {
    /// NFPROTO_IPV4/IPV6 when known (from the table family or `meta nfproto`)
    pub nfproto: Option<u8>,
    pub l4proto: Option<u8>,
    /// the table's family is inet: nat statements name their family
    pub inet: bool,
}

impl Ctx {
    pub fn new(table_family: u8) -> Self {
        Ctx {
            nfproto: match table_family {
                NFPROTO_IPV4 | NFPROTO_IPV6 => Some(table_family),
                _ => None,
            },
            l4proto: None,
            inet: table_family == NFPROTO_INET,
        }
    }

    fn ip(&self) -> &'static str {
        if self.nfproto == Some(NFPROTO_IPV6) {
            "ip6"
        } else {
            "ip"
        }
    }

    /// Learns the protocols a comparison pins down.
    pub fn learn(&mut self, s: &Stmt) {
        if let Stmt::Cmp {
            lhs,
            op: NFT_CMP_EQ,
            data,
        } = s
            && lhs.mask.is_none()
        {
            match &lhs.field {
                Field::Meta(NFT_META_NFPROTO) => self.nfproto = data.first().copied(),
                Field::Meta(NFT_META_L4PROTO) => self.l4proto = data.first().copied(),
                Field::Payload {
                    base: NFT_PAYLOAD_NETWORK_HEADER,
                    offset,
                    len: 1,
                } if (*offset == 9 && self.nfproto == Some(NFPROTO_IPV4))
                    || (*offset == 6 && self.nfproto == Some(NFPROTO_IPV6)) =>
                {
                    self.l4proto = data.first().copied()
                }
                _ => {}
            }
        }
    }
}

pub(crate) fn l4_name(p: Option<u8>) -> String {
    match p {
        Some(6) => "tcp".into(),
        Some(17) => "udp".into(),
        Some(1) => "icmp".into(),
        Some(58) => "ipv6-icmp".into(),
        Some(n) => n.to_string(),
        None => "th".into(),
    }
}

/// The name of a field as nft writes it on the left of a match.
pub(crate) fn field_name(c: &Ctx, v: &Val) -> String {
    match &v.field {
        Field::Meta(k) => match *k {
            NFT_META_NFPROTO => "meta nfproto".into(),
            NFT_META_L4PROTO => "meta l4proto".into(),
            NFT_META_IIFNAME => "iifname".into(),
            NFT_META_OIFNAME => "oifname".into(),
            NFT_META_MARK => "meta mark".into(),
            NFT_META_IIF => "iif".into(),
            NFT_META_OIF => "oif".into(),
            k => format!("meta {k}"),
        },
        Field::Payload { base, offset, .. } => {
            let v6 = c.nfproto == Some(NFPROTO_IPV6);
            match (*base, *offset, v6) {
                (NFT_PAYLOAD_NETWORK_HEADER, 12, false) | (NFT_PAYLOAD_NETWORK_HEADER, 8, true) => {
                    format!("{} saddr", c.ip())
                }
                (NFT_PAYLOAD_NETWORK_HEADER, 16, false)
                | (NFT_PAYLOAD_NETWORK_HEADER, 24, true) => format!("{} daddr", c.ip()),
                (NFT_PAYLOAD_NETWORK_HEADER, 9, false) => "ip protocol".into(),
                (NFT_PAYLOAD_NETWORK_HEADER, 6, true) => "ip6 nexthdr".into(),
                (NFT_PAYLOAD_TRANSPORT_HEADER, 0, _) => format!("{} sport", l4_name(c.l4proto)),
                (NFT_PAYLOAD_TRANSPORT_HEADER, 2, _) => format!("{} dport", l4_name(c.l4proto)),
                (b, o, _) => format!("@{b},{o}"),
            }
        }
        Field::Ct { key } => match *key {
            NFT_CT_STATE => "ct state".into(),
            NFT_CT_STATUS => "ct status".into(),
            k => format!("ct {k}"),
        },
        Field::Fib { .. } => "fib daddr type".into(),
        Field::Numgen {
            ty,
            modulus,
            offset,
        } => {
            let kind = if *ty == NFT_NG_RANDOM {
                "random"
            } else {
                "inc"
            };
            let off = if *offset != 0 {
                format!(" offset {offset}")
            } else {
                String::new()
            };
            format!("numgen {kind} mod {modulus}{off}")
        }
        Field::Imm(b) => hex(b),
        Field::MapData { set, keys, .. } => format!("{} map @{set}", key_names(c, keys)),
        Field::Other(s) => s.clone(),
    }
}

pub(crate) fn key_names(c: &Ctx, keys: &[Val]) -> String {
    let mut c = *c;
    keys.iter()
        .map(|k| {
            // a v6 address key pins the family for the fields after it
            let n = field_name(&c, k);
            if n.starts_with("ip6") {
                c.nfproto = Some(NFPROTO_IPV6);
            }
            n
        })
        .collect::<Vec<_>>()
        .join(" . ")
}

fn hex(b: &[u8]) -> String {
    let s: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("0x{s}")
}

pub(crate) fn ip_from(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]).into()),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Some(Ipv6Addr::from(a).into())
        }
        _ => None,
    }
}

pub(crate) fn ifname_from(b: &[u8]) -> String {
    let s = b.split(|&c| c == 0).next().unwrap_or_default();
    String::from_utf8_lossy(s).into_owned()
}

fn ct_bits(key: u32, v: u32) -> String {
    let names: &[(u32, &str)] = if key == NFT_CT_STATE {
        &[
            (CT_STATE_INVALID, "invalid"),
            (CT_STATE_ESTABLISHED, "established"),
            (CT_STATE_RELATED, "related"),
            (CT_STATE_NEW, "new"),
            (64, "untracked"),
        ]
    } else {
        &[
            (1, "expected"),
            (2, "seen-reply"),
            (4, "assured"),
            (8, "confirmed"),
            (0x10, "snat"),
            (IPS_DST_NAT, "dnat"),
            (0x200, "dying"),
        ]
    };
    let mut out: Vec<String> = names
        .iter()
        .filter(|(b, _)| v & b != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    let known: u32 = names.iter().map(|(b, _)| b).sum();
    if v & !known != 0 {
        out.push(format!("{:#x}", v & !known));
    }
    out.join(",")
}

fn host_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(..4)?.try_into().ok()?))
}

/// A value compared against `lhs`, as nft would print it.
pub(crate) fn value(c: &Ctx, lhs: &Val, data: &[u8]) -> String {
    let name = field_name(c, lhs);
    match &lhs.field {
        Field::Meta(NFT_META_NFPROTO) => match data.first() {
            Some(&NFPROTO_IPV4) => "ipv4".into(),
            Some(&NFPROTO_IPV6) => "ipv6".into(),
            _ => hex(data),
        },
        Field::Meta(NFT_META_L4PROTO) => l4_name(data.first().copied()),
        Field::Meta(NFT_META_IIFNAME | NFT_META_OIFNAME) => {
            let n = ifname_from(data);
            // a shorter comparison is a prefix match: `eth*`
            if data.len() < IFNAMSIZ && !data.contains(&0) {
                format!("\"{n}*\"")
            } else {
                format!("\"{n}\"")
            }
        }
        Field::Fib { .. } => match host_u32(data) {
            Some(RTN_LOCAL) => "local".into(),
            Some(n) => n.to_string(),
            None => hex(data),
        },
        Field::Ct { key } => host_u32(data).map_or_else(|| hex(data), |v| ct_bits(*key, v)),
        Field::Numgen { .. } => {
            let v = if lhs.hton {
                data.get(..4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            } else {
                host_u32(data)
            };
            v.map_or_else(|| hex(data), |v| v.to_string())
        }
        Field::Payload { .. } if name.ends_with("addr") => addr_text(c, data, lhs.mask.as_deref()),
        Field::Payload { .. } if name.ends_with("port") => port(data),
        Field::Payload { .. } if name == "ip protocol" || name == "ip6 nexthdr" => {
            l4_name(data.first().copied())
        }
        _ => hex(data),
    }
}

fn port(b: &[u8]) -> String {
    match b {
        [a, b, ..] => u16::from_be_bytes([*a, *b]).to_string(),
        _ => hex(b),
    }
}

/// An address or prefix compared with a payload field of `data.len()`
/// bytes (nft loads only the whole bytes of a byte-aligned prefix).
pub(crate) fn addr_text(c: &Ctx, data: &[u8], mask: Option<&[u8]>) -> String {
    let full = if c.nfproto == Some(NFPROTO_IPV6) {
        16
    } else {
        4
    };
    let mut a = data.to_vec();
    a.resize(full, 0);
    let bits: u32 = match mask {
        Some(m) => m.iter().map(|b| b.count_ones()).sum(),
        None => (data.len().min(full) * 8) as u32,
    };
    let ip = ip_from(&a).map_or_else(|| hex(data), |i| i.to_string());
    if bits as usize == full * 8 {
        ip
    } else {
        format!("{ip}/{bits}")
    }
}

fn op_text(op: u32) -> &'static str {
    match op {
        NFT_CMP_NEQ => "!= ",
        NFT_CMP_LT => "< ",
        NFT_CMP_LTE => "<= ",
        NFT_CMP_GT => "> ",
        NFT_CMP_GTE => ">= ",
        _ => "",
    }
}

/// The address and port a nat statement writes.
fn nat_target(c: &Ctx, addr: &Option<Val>, proto: &Option<Val>) -> String {
    match (addr, proto) {
        (
            Some(
                a @ Val {
                    field: Field::MapData { .. },
                    ..
                },
            ),
            _,
        ) => field_name(c, a),
        (
            Some(Val {
                field: Field::Imm(a),
                ..
            }),
            p,
        ) => {
            let ip = ip_from(a).map_or_else(|| hex(a), |i| i.to_string());
            match p {
                Some(Val {
                    field: Field::Imm(p),
                    ..
                }) if a.len() == 16 => format!("[{ip}]:{}", port(p)),
                Some(Val {
                    field: Field::Imm(p),
                    ..
                }) => format!("{ip}:{}", port(p)),
                _ => ip,
            }
        }
        (Some(a), _) => field_name(c, a),
        (
            None,
            Some(Val {
                field: Field::Imm(p),
                ..
            }),
        ) => format!(":{}", port(p)),
        (None, _) => String::new(),
    }
}

/// ` random`, ` persistent` …: the nat flags beyond the implied ones.
fn nat_flags(f: u32) -> String {
    let mut out = String::new();
    for (bit, name) in [
        (4, "random"),
        (8, "persistent"),
        (16, "fully-random"),
        (64, "netmap"),
    ] {
        if f & bit != 0 {
            out.push(' ');
            out.push_str(name);
        }
    }
    out
}

/// One statement as text; `c` is updated as the rule pins protocols down.
pub(crate) fn stmt(c: &mut Ctx, s: &Stmt) -> String {
    c.learn(s);
    match s {
        Stmt::Cmp { lhs, op, data } => {
            let name = field_name(c, lhs);
            match (&lhs.field, &lhs.mask) {
                // flag tests: `ct state established,related`, `ct status ! dnat`
                (Field::Ct { key }, Some(m)) if data.iter().all(|b| *b == 0) => {
                    let bits = host_u32(m).map_or_else(|| hex(m), |v| ct_bits(*key, v));
                    if *op == NFT_CMP_NEQ {
                        format!("{name} {bits}")
                    } else {
                        format!("{name} ! {bits}")
                    }
                }
                (Field::Payload { .. }, _) if name.ends_with("addr") => {
                    format!(
                        "{name} {}{}",
                        op_text(*op),
                        addr_text(c, data, lhs.mask.as_deref())
                    )
                }
                (_, Some(m)) => format!("{name} & {} {}{}", hex(m), op_text(*op), hex(data)),
                _ => format!("{name} {}{}", op_text(*op), value(c, lhs, data)),
            }
        }
        Stmt::Range { lhs, neq, from, to } => format!(
            "{} {}{}-{}",
            field_name(c, lhs),
            if *neq { "!= " } else { "" },
            value(c, lhs, from),
            value(c, lhs, to)
        ),
        Stmt::Lookup { keys, set, inv } => format!(
            "{} {}@{set}",
            key_names(c, keys),
            if *inv { "!= " } else { "" }
        ),
        Stmt::Nat(n) => {
            let NatStmt {
                dnat,
                family,
                addr,
                proto,
                flags,
                ..
            } = &**n;
            let ty = if *dnat { "dnat" } else { "snat" };
            let f = if *family == NFPROTO_IPV6 { "ip6" } else { "ip" };
            let to = nat_target(c, addr, proto);
            let flags = nat_flags(*flags);
            if c.inet {
                format!("{ty} {f} to {to}{flags}")
            } else {
                format!("{ty} to {to}{flags}")
            }
        }
        Stmt::Masq { flags, .. } => format!("masquerade{}", nat_flags(*flags)),
        Stmt::Verdict { code, chain } => match (*code, chain) {
            (c, _) if c == NF_ACCEPT as i32 => "accept".into(),
            (c, _) if c == NF_DROP as i32 => "drop".into(),
            (NFT_JUMP, Some(ch)) => format!("jump {ch}"),
            (NFT_GOTO, Some(ch)) => format!("goto {ch}"),
            (NFT_RETURN, _) => "return".into(),
            (NFT_CONTINUE, _) => "continue".into(),
            (c, _) => format!("verdict {c}"),
        },
        Stmt::Counter => "counter".into(),
        Stmt::Xt {
            target,
            name,
            rev,
            info,
        } => xt::describe(c, *target, name, *rev, info),
        Stmt::Unknown(s) => s.clone(),
    }
}

/// A whole rule as text.
pub(crate) fn rule(table_family: u8, stmts: &[Stmt]) -> String {
    let mut c = Ctx::new(table_family);
    stmts
        .iter()
        .map(|s| stmt(&mut c, s))
        .collect::<Vec<_>>()
        .join(" ")
}
