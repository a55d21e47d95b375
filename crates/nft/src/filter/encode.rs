//! The forward chain's rules as text (for `nft -f` and error messages) and
//! as expressions, encoded the way nft encodes the same text.

use super::plan::{FRule, FRuleKind, Key, field, l4_name};
use crate::encode::Buf;
use crate::expr::{self, expr};
use crate::sys::*;

fn key_text(k: Key, v6: Option<bool>, l4: Option<u8>) -> String {
    let ip = if v6 == Some(true) { "ip6" } else { "ip" };
    match k {
        Key::Iif => "iifname".into(),
        Key::Oif => "oifname".into(),
        Key::Saddr => format!("{ip} saddr"),
        Key::Daddr => format!("{ip} daddr"),
        Key::Dport => format!("{} dport", l4.map_or("th", l4_name)),
    }
}

impl FRule {
    /// The rule as `nft -f` reads it.
    pub fn text(&self) -> String {
        match &self.kind {
            FRuleKind::Established => "ct state established,related accept".into(),
            FRuleKind::Shape {
                v6,
                l4,
                keys,
                set,
                accept,
            } => {
                let mut parts = Vec::new();
                if let Some(v6) = v6 {
                    parts.push(format!(
                        "meta nfproto {}",
                        if *v6 { "ipv6" } else { "ipv4" }
                    ));
                }
                if let Some(p) = l4 {
                    parts.push(format!("meta l4proto {}", l4_name(*p)));
                }
                if let Some((name, _)) = set {
                    let k: Vec<String> = keys.iter().map(|k| key_text(*k, *v6, *l4)).collect();
                    parts.push(format!("{} @{name}", k.join(" . ")));
                }
                parts.push(if *accept { "accept" } else { "drop" }.into());
                parts.join(" ")
            }
            FRuleKind::IsolatedSelf { set } => format!("iifname . oifname @{} accept", set.0),
            FRuleKind::IsolatedDrop { set } => {
                format!("oifname @{} ct status & dnat == 0 drop", set.0)
            }
        }
    }

    /// The rule's expressions.
    pub fn encode(&self, b: &mut Buf) {
        match &self.kind {
            FRuleKind::Established => {
                ct(b, NFT_CT_STATE);
                expr::bitwise_mask(b, &(CT_STATE_ESTABLISHED | CT_STATE_RELATED).to_ne_bytes());
                expr::cmp(b, NFT_CMP_NEQ, &[0; 4]);
                verdict(b, NF_ACCEPT);
            }
            FRuleKind::Shape {
                v6,
                l4,
                keys,
                set,
                accept,
            } => {
                if let Some(v6) = v6 {
                    expr::nfproto(b, *v6);
                }
                if let Some(p) = l4 {
                    expr::meta(b, NFT_META_L4PROTO);
                    expr::cmp(b, NFT_CMP_EQ, &[*p]);
                }
                if let Some((name, id)) = set {
                    let mut unit = 0;
                    for k in keys {
                        let f = field(*k, *v6);
                        load(b, *k, *v6, NFT_REG32_00 + unit);
                        unit += f.len().div_ceil(4) as u32;
                    }
                    lookup(b, name, *id);
                }
                verdict(b, if *accept { NF_ACCEPT } else { NF_DROP });
            }
            FRuleKind::IsolatedSelf { set } => {
                meta_to(b, NFT_META_IIFNAME, NFT_REG32_00);
                meta_to(b, NFT_META_OIFNAME, NFT_REG32_00 + 4);
                lookup(b, &set.0, set.1);
                verdict(b, NF_ACCEPT);
            }
            FRuleKind::IsolatedDrop { set } => {
                meta_to(b, NFT_META_OIFNAME, NFT_REG32_00);
                lookup(b, &set.0, set.1);
                ct(b, NFT_CT_STATUS);
                expr::bitwise_mask(b, &IPS_DST_NAT.to_ne_bytes());
                expr::cmp(b, NFT_CMP_EQ, &[0; 4]);
                verdict(b, NF_DROP);
            }
        }
    }
}

fn meta_to(b: &mut Buf, key: u32, reg: u32) {
    expr(b, "meta", |b| {
        b.u32be(NFTA_META_KEY, key);
        b.u32be(NFTA_META_DREG, reg);
    });
}

fn ct(b: &mut Buf, key: u32) {
    expr(b, "ct", |b| {
        b.u32be(NFTA_CT_DREG, NFT_REG_1);
        b.u32be(NFTA_CT_KEY, key);
    });
}

fn load(b: &mut Buf, k: Key, v6: Option<bool>, reg: u32) {
    let v6 = v6 == Some(true);
    match k {
        Key::Iif => meta_to(b, NFT_META_IIFNAME, reg),
        Key::Oif => meta_to(b, NFT_META_OIFNAME, reg),
        Key::Saddr if v6 => expr::payload(b, NFT_PAYLOAD_NETWORK_HEADER, 8, 16, reg),
        Key::Saddr => expr::payload(b, NFT_PAYLOAD_NETWORK_HEADER, 12, 4, reg),
        Key::Daddr if v6 => expr::payload(b, NFT_PAYLOAD_NETWORK_HEADER, 24, 16, reg),
        Key::Daddr => expr::payload(b, NFT_PAYLOAD_NETWORK_HEADER, 16, 4, reg),
        Key::Dport => expr::payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, reg),
    }
}

fn lookup(b: &mut Buf, set: &str, id: u32) {
    expr(b, "lookup", |b| {
        b.str(NFTA_LOOKUP_SET, set);
        b.u32be(NFTA_LOOKUP_SREG, NFT_REG_1);
        b.u32be(NFTA_LOOKUP_SET_ID, id);
    });
}

pub(crate) fn verdict(b: &mut Buf, code: u32) {
    expr(b, "immediate", |b| {
        b.u32be(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
        let d = b.nest(NFTA_IMMEDIATE_DATA);
        let v = b.nest(NFTA_DATA_VERDICT);
        b.u32be(NFTA_VERDICT_CODE, code);
        b.end_nest(v);
        b.end_nest(d);
    });
}
