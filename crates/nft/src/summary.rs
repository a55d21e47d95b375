//! A table read back as text, for people (`netplumb show`): rules as nft
//! would print them, map elements as `key : value` strings.

use serde::Serialize;

use crate::error::NftError;
use crate::read::elems::{elem_text, type_fields, type_name};
use crate::read::{RawTable, text};
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
            let mut elements: Vec<(String, String)> =
                s.elems.iter().map(|e| elem_text(s, e)).collect();
            // ranges read in key order; the rest as text, for a stable order
            if !(s.interval() && type_fields(s.key_type).len() == 1) {
                elements.sort();
            }
            MapSummary {
                name: s.name.clone(),
                key_type: type_name(s.key_type),
                data_type: type_name(s.data_type),
                interval: s.interval(),
                elements,
            }
        })
        .collect();
    TableSummary {
        name: raw.info.name.clone(),
        userdata: raw.info.marker().unwrap_or(&raw.info.raw_userdata).to_vec(),
        chains,
        maps,
    }
}
