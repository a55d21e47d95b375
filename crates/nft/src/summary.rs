//! A table read back for people (`netplumb show`): rules as nft would
//! print them and as typed NAT rules, map elements as `key : value` strings
//! and as typed fields ([`MapElem`]).

use serde::Serialize;

use crate::elem::{self, MapElem};
use crate::error::NftError;
use crate::model::{NatRule, NatTable};
use crate::plan::{self, nat_chains};
use crate::read::elems::{elem_text, type_fields, type_name};
use crate::read::{RawTable, text, walk};
use crate::render::{dnat_rule_text, map_data_type, map_key_type, src_rule_text};
use crate::socket::NftSocket;
use crate::table::Family;

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
    /// The NAT rules the table holds, typed and in normal form (a DNAT
    /// mapping is one map element; see [`NatTable::normalized`]).
    pub nat: Vec<NatRule>,
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
    /// The same elements in the same order, typed field by field.
    pub elems: Vec<MapElem>,
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

impl NftSocket {
    /// Reads table `name` (family inet) back as text; `None` when it does not exist.
    pub fn table_summary(&mut self, name: &str) -> Result<Option<TableSummary>, NftError> {
        let Some(raw) = self.raw_table(Family::Inet, name)? else {
            return Ok(None);
        };
        Ok(Some(summary(&raw)))
    }
}

pub(crate) fn summary(raw: &RawTable) -> TableSummary {
    let family = raw.info.family.nfproto();
    let chains = raw
        .chains
        .iter()
        .map(|c| ChainSummary {
            name: c.name.clone(),
            rules: c.rules.iter().map(|r| text::rule(family, r)).collect(),
        })
        .collect();
    let maps = raw
        .sets
        .iter()
        .map(|s| {
            let mut both: Vec<((String, String), MapElem)> = s
                .elems
                .iter()
                .map(|e| (elem_text(s, e), elem::typed(s, e)))
                .collect();
            // ranges read in key order; the rest as text, for a stable order
            if !(s.interval() && type_fields(s.key_type).len() == 1) {
                both.sort_by(|a, b| a.0.cmp(&b.0));
            }
            let (elements, elems) = both.into_iter().unzip();
            MapSummary {
                name: s.name.clone(),
                key_type: type_name(s.key_type),
                data_type: type_name(s.data_type),
                interval: s.interval(),
                elements,
                elems,
            }
        })
        .collect();
    let mut nat = walk::recognize(raw).nat;
    nat.iter_mut().for_each(|r| *r = r.normalized());
    nat.sort();
    nat.dedup();
    TableSummary {
        name: raw.info.name.clone(),
        userdata: raw.info.marker().unwrap_or(&raw.info.raw_userdata).to_vec(),
        chains,
        maps,
        nat,
    }
}

/// The summary [`NftSocket::table_summary`] would read back after
/// [`NftSocket::replace_table`] made `t`, computed without a kernel (for a
/// recording fake and for tests): NAT chains, rules and maps; the filter and
/// loss chains are left out.
pub fn summarize(t: &NatTable) -> TableSummary {
    let p = plan::plan(t);
    let [pre, out, post] = nat_chains();
    let dnat = |output: bool| p.maps.iter().map(|m| dnat_rule_text(m, output)).collect();
    let chains = vec![
        ChainSummary {
            name: pre.name,
            rules: dnat(false),
        },
        ChainSummary {
            name: out.name,
            rules: dnat(true),
        },
        ChainSummary {
            name: post.name,
            rules: p.src_rules.iter().map(src_rule_text).collect(),
        },
    ];
    let maps = p
        .maps
        .iter()
        .map(|m| {
            let mut both: Vec<((String, String), MapElem)> = m
                .elems
                .iter()
                .map(|e| {
                    let mut key = Vec::new();
                    if let Some(d) = e.daddr {
                        key.push(elem::one_addr(d));
                    }
                    key.push(elem::ports(e.lo, e.hi));
                    let mut value = vec![elem::one_addr(e.to)];
                    if let (true, Some(p)) = (m.data_port, e.to_port) {
                        value.push(elem::ports(p, p));
                    }
                    (crate::render::elem_text(m, e), MapElem { key, value })
                })
                .collect();
            if m.interval {
                both.sort_by(|a, b| a.1.key.cmp(&b.1.key));
            } else {
                both.sort_by(|a, b| a.0.cmp(&b.0));
            }
            let (elements, elems) = both.into_iter().unzip();
            MapSummary {
                name: m.name.clone(),
                key_type: map_key_type(m),
                data_type: map_data_type(m),
                interval: m.interval,
                elements,
                elems,
            }
        })
        .collect();
    TableSummary {
        name: t.name.clone(),
        userdata: t.userdata.clone(),
        chains,
        maps,
        nat: t.normalized().rules,
    }
}
