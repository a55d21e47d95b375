//! Reading a table back for `netplumb show`: just enough decoding for the
//! expressions and map shapes this crate writes; anything else is named, not
//! decoded.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::describe::describe_rule;
use crate::error::NftError;
use crate::parse::{self, attr, attr_be32, attr_str, attrs, data_value};
use crate::socket::{NftSocket, unwrap_userdata};
use crate::sys::*;

/// A table read back as text, for people (`netplumb show`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSummary {
    /// The table name.
    pub name: String,
    /// The caller's userdata as stored (unwrapped from this crate's TLV).
    pub userdata: Vec<u8>,
    /// Chains in kernel order, each with its rules.
    pub chains: Vec<ChainSummary>,
    /// Named sets and maps with their elements.
    pub maps: Vec<MapSummary>,
}

/// One chain and its rules as nft-like text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainSummary {
    /// The chain name.
    pub name: String,
    /// Each rule as nft would print it (e.g. `meta l4proto tcp dnat ip to tcp dport map @dnat_tcp`).
    pub rules: Vec<String>,
}

/// One named set or map and its elements as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapSummary {
    /// The set or map name.
    pub name: String,
    /// The key type as nft names it (`ipv4_addr . inet_service`).
    pub key_type: String,
    /// The data type (empty for a plain set).
    pub data_type: String,
    /// Whether elements are ranges (`flags interval`).
    pub interval: bool,
    /// key -> value, as nft would print them ("10.0.0.1 . 80" -> "172.17.0.3 . 8080")
    pub elements: Vec<(String, String)>,
}

impl MapSummary {
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// Whether the map has no elements.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }
}

impl TableSummary {
    /// Every rule as "chain: rule".
    pub fn rules(&self) -> Vec<String> {
        self.chains
            .iter()
            .flat_map(|c| c.rules.iter().map(move |r| format!("{}: {r}", c.name)))
            .collect()
    }
}

#[derive(Debug, Clone, Default)]
pub struct SetInfo {
    pub(crate) key_type: u32,
    pub(crate) data_type: u32,
    pub(crate) flags: u32,
}

pub(crate) fn type_fields(mut ty: u32) -> Vec<u32> {
    let mut v = Vec::new();
    while ty != 0 && v.len() < 8 {
        v.push(ty & ((1 << TYPE_BITS) - 1));
        ty >>= TYPE_BITS;
    }
    v.reverse();
    v
}

fn type_name(ty: u32) -> String {
    let names: Vec<&str> = type_fields(ty)
        .into_iter()
        .map(|t| match t {
            TYPE_IPADDR => "ipv4_addr",
            TYPE_IP6ADDR => "ipv6_addr",
            TYPE_INET_SERVICE => "inet_service",
            _ => "?",
        })
        .collect();
    names.join(" . ")
}

fn field_len(t: u32) -> usize {
    match t {
        TYPE_IPADDR => 4,
        TYPE_IP6ADDR => 16,
        TYPE_INET_SERVICE => 2,
        _ => 4,
    }
}

fn show_field(t: u32, b: &[u8]) -> String {
    match (t, b.len()) {
        (TYPE_IPADDR, 4..) => Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        (TYPE_IP6ADDR, 16..) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[..16]);
            Ipv6Addr::from(a).to_string()
        }
        (TYPE_INET_SERVICE, 2..) => u16::from_be_bytes([b[0], b[1]]).to_string(),
        _ => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

/// Concatenated fields are each padded to 4 bytes; a lone field is not.
fn show_value(ty: u32, b: &[u8]) -> Vec<String> {
    let fields = type_fields(ty);
    let concat = fields.len() > 1;
    let mut at = 0;
    let mut out = Vec::new();
    for t in fields {
        let len = field_len(t);
        out.push(show_field(t, b.get(at..).unwrap_or_default()));
        at += if concat { (len + 3) & !3 } else { len };
    }
    out
}

pub(crate) fn port_of(b: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

fn decode_elements(info: &SetInfo, msgs: &[Vec<u8>]) -> Vec<(String, String)> {
    // (key, key_end, flags, data)
    type Raw = (Vec<u8>, Option<Vec<u8>>, u32, Option<Vec<u8>>);
    let mut raw: Vec<Raw> = Vec::new();
    for m in msgs {
        let Some(list) = attr(m, NFTA_SET_ELEM_LIST_ELEMENTS) else {
            continue;
        };
        for (_, e) in attrs(list) {
            let Some(key) = data_value(e, NFTA_SET_ELEM_KEY) else {
                continue;
            };
            let key_end = data_value(e, NFTA_SET_ELEM_KEY_END).map(<[u8]>::to_vec);
            let flags = attr_be32(e, NFTA_SET_ELEM_FLAGS).unwrap_or(0);
            let data = data_value(e, NFTA_SET_ELEM_DATA).map(<[u8]>::to_vec);
            raw.push((key.to_vec(), key_end, flags, data));
        }
    }
    let data_str = |d: &Option<Vec<u8>>| {
        d.as_ref()
            .map(|d| show_value(info.data_type, d).join(" . "))
            .unwrap_or_default()
    };
    let interval = info.flags & NFT_SET_INTERVAL != 0;
    if !interval || info.flags & NFT_SET_CONCAT != 0 {
        let mut out: Vec<_> = raw
            .iter()
            .map(|(k, ke, _, d)| {
                let mut ks = show_value(info.key_type, k);
                if let (Some(ke), Some(last)) = (ke, ks.last_mut()) {
                    let hi = show_value(info.key_type, ke).pop().unwrap_or_default();
                    if *last != hi {
                        *last = format!("{last}-{hi}");
                    }
                }
                (ks.join(" . "), data_str(d))
            })
            .collect();
        out.sort();
        return out;
    }
    // rbtree: start elements carry data, "interval end" elements sit at hi+1
    // an end and a start may share a key (adjacent ranges): end first
    raw.sort_by_key(|(k, _, f, _)| (port_of(k), f & NFT_SET_ELEM_INTERVAL_END == 0));
    let mut out = Vec::new();
    for (i, (k, _, flags, d)) in raw.iter().enumerate() {
        if flags & NFT_SET_ELEM_INTERVAL_END != 0 {
            continue;
        }
        let Some(lo) = port_of(k) else { continue };
        let hi = raw
            .get(i + 1)
            .and_then(|n| port_of(&n.0))
            .map_or(u16::MAX, |p| p.saturating_sub(1));
        let key = if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        };
        out.push((key, data_str(d)));
    }
    out
}

impl NftSocket {
    /// Reads table `name` (family inet) back as text; `None` when it does not exist.
    pub fn table_summary(&mut self, name: &str) -> Result<Option<TableSummary>, NftError> {
        let Some(t) = self.get_table(NFPROTO_INET, name)? else {
            return Ok(None);
        };
        let raw = parse::attr(&t.attrs, NFTA_TABLE_USERDATA).unwrap_or_default();
        let userdata = unwrap_userdata(raw).unwrap_or(raw).to_vec();
        let mut chains: Vec<ChainSummary> = self
            .dump(
                NFT_MSG_GETCHAIN,
                NFPROTO_INET,
                &[],
                &format!("list chains inet {name}"),
            )?
            .iter()
            .map(|m| &m.attrs)
            .filter(|c| attr_str(c, NFTA_CHAIN_TABLE).as_deref() == Some(name))
            .filter_map(|c| attr_str(c, NFTA_CHAIN_NAME))
            .map(|n| ChainSummary {
                name: n,
                rules: Vec::new(),
            })
            .collect();
        let mut sets = HashMap::new();
        let mut maps = Vec::new();
        for s in self
            .dump(
                NFT_MSG_GETSET,
                NFPROTO_INET,
                &[(NFTA_SET_TABLE, name)],
                &format!("list sets inet {name}"),
            )?
            .into_iter()
            .map(|m| m.attrs)
        {
            let Some(sname) = attr_str(&s, NFTA_SET_NAME) else {
                continue;
            };
            let info = SetInfo {
                key_type: attr_be32(&s, NFTA_SET_KEY_TYPE).unwrap_or(0),
                data_type: attr_be32(&s, NFTA_SET_DATA_TYPE).unwrap_or(0),
                flags: attr_be32(&s, NFTA_SET_FLAGS).unwrap_or(0),
            };
            let filters = [
                (NFTA_SET_ELEM_LIST_TABLE, name),
                (NFTA_SET_ELEM_LIST_SET, sname.as_str()),
            ];
            let elems = self
                .dump(
                    NFT_MSG_GETSETELEM,
                    NFPROTO_INET,
                    &filters,
                    &format!("list map inet {name} {sname}"),
                )?
                .into_iter()
                .map(|m| m.attrs)
                .collect::<Vec<_>>();
            maps.push(MapSummary {
                name: sname.clone(),
                key_type: type_name(info.key_type),
                data_type: type_name(info.data_type),
                interval: info.flags & NFT_SET_INTERVAL != 0,
                elements: decode_elements(&info, &elems),
            });
            sets.insert(sname, info);
        }
        for rule in self
            .dump(
                NFT_MSG_GETRULE,
                NFPROTO_INET,
                &[(NFTA_RULE_TABLE, name)],
                &format!("list table inet {name}"),
            )?
            .into_iter()
            .map(|m| m.attrs)
        {
            let chain = attr_str(&rule, NFTA_RULE_CHAIN).unwrap_or_default();
            let text = describe_rule(
                attr(&rule, NFTA_RULE_EXPRESSIONS).unwrap_or_default(),
                &sets,
            );
            match chains.iter_mut().find(|c| c.name == chain) {
                Some(c) => c.rules.push(text),
                None => chains.push(ChainSummary {
                    name: chain,
                    rules: vec![text],
                }),
            }
        }
        Ok(Some(TableSummary {
            name: name.to_string(),
            userdata,
            chains,
            maps,
        }))
    }
}
