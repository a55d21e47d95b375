//! One rule's expressions decoded into statements, by following what each
//! register holds: `payload load 4b @ network header + 12 => reg 1; cmp eq
//! reg 1 0x0a000000` becomes "ip saddr == 10.0.0.0". Works for any rule, ours
//! or not; what it does not know it names. Takes untrusted bytes: never panics.

use std::collections::HashMap;

use crate::parse::{attr, attr_be32, attr_str, attrs, be32, data_value};
use crate::sys::*;

/// What a register (or a span of them) holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    Meta(u32),
    Payload {
        base: u32,
        offset: u32,
        len: u32,
    },
    Ct {
        key: u32,
    },
    Fib {
        result: u32,
        flags: u32,
    },
    Numgen {
        ty: u32,
        modulus: u32,
        offset: u32,
    },
    /// immediate data
    Imm(Vec<u8>),
    /// bytes `at..` of the data a map lookup found
    MapData {
        set: String,
        keys: Vec<Val>,
        at: u32,
    },
    Other(String),
}

/// A register's value: a field, perhaps masked or byte-swapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Val {
    pub field: Field,
    pub len: u32,
    pub mask: Option<Vec<u8>>,
    pub hton: bool,
}

impl Val {
    fn new(field: Field, len: u32) -> Self {
        Val {
            field,
            len,
            mask: None,
            hton: false,
        }
    }

    /// 32-bit registers this value spans.
    fn units(&self) -> u32 {
        self.len.div_ceil(4).max(1)
    }
}

/// One statement of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stmt {
    Cmp {
        lhs: Val,
        op: u32,
        data: Vec<u8>,
    },
    Range {
        lhs: Val,
        neq: bool,
        from: Vec<u8>,
        to: Vec<u8>,
    },
    Lookup {
        keys: Vec<Val>,
        set: String,
        inv: bool,
    },
    Nat(Box<NatStmt>),
    Masq {
        flags: u32,
        proto: Option<Val>,
    },
    Verdict {
        code: i32,
        chain: Option<String>,
    },
    Counter,
    Xt {
        target: bool,
        name: String,
        rev: u32,
        info: Vec<u8>,
    },
    Unknown(String),
}

/// `nat`: where the new address and port come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NatStmt {
    pub dnat: bool,
    pub family: u8,
    pub addr: Option<Val>,
    pub addr_max: Option<Val>,
    pub proto: Option<Val>,
    pub proto_max: Option<Val>,
    pub flags: u32,
}

/// Key and data lengths of the sets a rule may look up, by name.
pub(crate) type SetLens = HashMap<String, (u32, u32)>;

fn unit(reg: u32) -> u32 {
    if (NFT_REG32_00..NFT_REG32_00 + 16).contains(&reg) {
        reg - NFT_REG32_00
    } else {
        reg.saturating_sub(1) * 4
    }
}

/// Registers of the rule being walked, in 32-bit units.
#[derive(Default)]
struct Regs(HashMap<u32, Val>);

impl Regs {
    fn set(&mut self, reg: u32, v: Val) {
        let u = unit(reg);
        for k in u..u + v.units() {
            self.0.remove(&k);
        }
        self.0.insert(u, v);
    }

    fn get(&self, reg: u32) -> Val {
        self.0
            .get(&unit(reg))
            .cloned()
            .unwrap_or_else(|| Val::new(Field::Other("?".into()), 4))
    }

    /// The values that make up a `len`-byte key starting at `reg`.
    fn key(&self, reg: u32, len: u32) -> Vec<Val> {
        let mut u = unit(reg);
        let mut out = Vec::new();
        let mut got = 0;
        while got < len.max(1) && out.len() < 8 {
            let Some(v) = self.0.get(&u) else {
                out.push(Val::new(Field::Other("?".into()), len - got));
                break;
            };
            got += v.units() * 4;
            u += v.units();
            out.push(v.clone());
        }
        // a lone key field is not padded: a 2-byte port is the whole key
        if out.len() == 1 && len < 4 {
            return out;
        }
        out
    }
}

fn reg_attr(d: &[u8], ty: u16) -> Option<u32> {
    attr_be32(d, ty)
}

fn verdict(v: &[u8]) -> Stmt {
    let code = attr_be32(v, NFTA_VERDICT_CODE).map_or(0, |c| c as i32);
    Stmt::Verdict {
        code,
        chain: attr_str(v, NFTA_VERDICT_CHAIN),
    }
}

/// A rule's NFTA_RULE_EXPRESSIONS as statements.
pub(crate) fn decode(exprs: &[u8], sets: &SetLens) -> Vec<Stmt> {
    let mut r = Regs::default();
    let mut out = Vec::new();
    for (_, e) in attrs(exprs) {
        let name = attr_str(e, NFTA_EXPR_NAME).unwrap_or_default();
        let d = attr(e, NFTA_EXPR_DATA).unwrap_or_default();
        let dreg = |t| reg_attr(d, t).unwrap_or(NFT_REG_1);
        match name.as_str() {
            "meta" => {
                let key = attr_be32(d, NFTA_META_KEY).unwrap_or(0);
                let len = match key {
                    NFT_META_IIFNAME | NFT_META_OIFNAME => IFNAMSIZ as u32,
                    NFT_META_NFPROTO | NFT_META_L4PROTO => 1,
                    _ => 4,
                };
                match reg_attr(d, NFTA_META_DREG) {
                    Some(reg) => r.set(reg, Val::new(Field::Meta(key), len)),
                    None => out.push(Stmt::Unknown(format!("meta set {key}"))),
                }
            }
            "payload" => {
                let f = Field::Payload {
                    base: attr_be32(d, NFTA_PAYLOAD_BASE).unwrap_or(0),
                    offset: attr_be32(d, NFTA_PAYLOAD_OFFSET).unwrap_or(0),
                    len: attr_be32(d, NFTA_PAYLOAD_LEN).unwrap_or(0),
                };
                let len = attr_be32(d, NFTA_PAYLOAD_LEN).unwrap_or(0);
                match reg_attr(d, NFTA_PAYLOAD_DREG) {
                    Some(reg) => r.set(reg, Val::new(f, len)),
                    None => out.push(Stmt::Unknown("payload write".into())),
                }
            }
            "ct" => {
                let key = attr_be32(d, NFTA_CT_KEY).unwrap_or(u32::MAX);
                match reg_attr(d, NFTA_CT_DREG) {
                    Some(reg) if attr(d, NFTA_CT_DIRECTION).is_none() => {
                        r.set(reg, Val::new(Field::Ct { key }, 4))
                    }
                    Some(reg) => r.set(reg, Val::new(Field::Other(format!("ct {key}")), 4)),
                    None => out.push(Stmt::Unknown(format!("ct set {key}"))),
                }
            }
            "fib" => r.set(
                dreg(NFTA_FIB_DREG),
                Val::new(
                    Field::Fib {
                        result: attr_be32(d, NFTA_FIB_RESULT).unwrap_or(0),
                        flags: attr_be32(d, NFTA_FIB_FLAGS).unwrap_or(0),
                    },
                    4,
                ),
            ),
            "numgen" => r.set(
                dreg(NFTA_NG_DREG),
                Val::new(
                    Field::Numgen {
                        ty: attr_be32(d, NFTA_NG_TYPE).unwrap_or(0),
                        modulus: attr_be32(d, NFTA_NG_MODULUS).unwrap_or(0),
                        offset: attr_be32(d, NFTA_NG_OFFSET).unwrap_or(0),
                    },
                    4,
                ),
            ),
            "bitwise" => {
                let mut v = r.get(dreg(NFTA_BITWISE_SREG));
                let mask = data_value(d, NFTA_BITWISE_MASK);
                let xor = data_value(d, NFTA_BITWISE_XOR).unwrap_or_default();
                match mask {
                    Some(m) if xor.iter().all(|b| *b == 0) && v.mask.is_none() => {
                        v.mask = Some(m.to_vec())
                    }
                    _ => v.field = Field::Other("bitwise".into()),
                }
                r.set(dreg(NFTA_BITWISE_DREG), v);
            }
            "byteorder" => {
                let mut v = r.get(dreg(NFTA_BYTEORDER_SREG));
                if attr_be32(d, NFTA_BYTEORDER_OP) == Some(NFT_BYTEORDER_HTON) && !v.hton {
                    v.hton = true;
                } else {
                    v.field = Field::Other("byteorder".into());
                }
                r.set(dreg(NFTA_BYTEORDER_DREG), v);
            }
            "immediate" => {
                let Some(data) = attr(d, NFTA_IMMEDIATE_DATA) else {
                    continue;
                };
                let reg = dreg(NFTA_IMMEDIATE_DREG);
                if reg == NFT_REG_VERDICT {
                    out.push(verdict(attr(data, NFTA_DATA_VERDICT).unwrap_or_default()));
                } else {
                    let v = attr(data, NFTA_DATA_VALUE).unwrap_or_default();
                    r.set(reg, Val::new(Field::Imm(v.to_vec()), v.len() as u32));
                }
            }
            "cmp" => out.push(Stmt::Cmp {
                lhs: r.get(dreg(NFTA_CMP_SREG)),
                op: attr_be32(d, NFTA_CMP_OP).unwrap_or(0),
                data: data_value(d, NFTA_CMP_DATA).unwrap_or_default().to_vec(),
            }),
            "range" => out.push(Stmt::Range {
                lhs: r.get(dreg(NFTA_RANGE_SREG)),
                neq: attr_be32(d, NFTA_RANGE_OP) == Some(1),
                from: data_value(d, NFTA_RANGE_FROM_DATA)
                    .unwrap_or_default()
                    .to_vec(),
                to: data_value(d, NFTA_RANGE_TO_DATA)
                    .unwrap_or_default()
                    .to_vec(),
            }),
            "lookup" => {
                let set = attr_str(d, NFTA_LOOKUP_SET).unwrap_or_default();
                let (klen, dlen) = sets.get(&set).copied().unwrap_or((4, 4));
                let keys = r.key(dreg(NFTA_LOOKUP_SREG), klen);
                match reg_attr(d, NFTA_LOOKUP_DREG) {
                    Some(NFT_REG_VERDICT) => out.push(Stmt::Unknown(format!("vmap @{set}"))),
                    Some(reg) => {
                        // every 32-bit unit of the map's data, so a nat can name any part
                        let base = unit(reg);
                        for i in 0..dlen.div_ceil(4).max(1) {
                            let v = Val::new(
                                Field::MapData {
                                    set: set.clone(),
                                    keys: keys.clone(),
                                    at: i * 4,
                                },
                                4,
                            );
                            r.0.insert(base + i, v);
                        }
                    }
                    None => out.push(Stmt::Lookup {
                        keys,
                        set,
                        inv: attr_be32(d, NFTA_LOOKUP_FLAGS).unwrap_or(0) & NFT_LOOKUP_F_INV != 0,
                    }),
                }
            }
            "nat" => {
                let at = |t| attr(d, t).and_then(be32).map(|reg| r.get(reg));
                out.push(Stmt::Nat(Box::new(NatStmt {
                    dnat: attr_be32(d, NFTA_NAT_TYPE) == Some(NFT_NAT_DNAT),
                    family: attr_be32(d, NFTA_NAT_FAMILY).unwrap_or(0) as u8,
                    addr: at(NFTA_NAT_REG_ADDR_MIN),
                    addr_max: at(NFTA_NAT_REG_ADDR_MAX),
                    proto: at(NFTA_NAT_REG_PROTO_MIN),
                    proto_max: at(NFTA_NAT_REG_PROTO_MAX),
                    flags: attr_be32(d, NFTA_NAT_FLAGS).unwrap_or(0),
                })));
            }
            "masq" => out.push(Stmt::Masq {
                flags: attr_be32(d, NFTA_MASQ_FLAGS).unwrap_or(0),
                proto: attr(d, NFTA_MASQ_REG_PROTO_MIN)
                    .and_then(be32)
                    .map(|reg| r.get(reg)),
            }),
            "counter" => out.push(Stmt::Counter),
            "match" | "target" => out.push(Stmt::Xt {
                target: name == "target",
                name: attr_str(d, NFTA_XT_NAME).unwrap_or_default(),
                rev: attr_be32(d, NFTA_XT_REV).unwrap_or(0),
                info: attr(d, NFTA_XT_INFO).unwrap_or_default().to_vec(),
            }),
            other => out.push(Stmt::Unknown(other.to_string())),
        }
    }
    out
}
