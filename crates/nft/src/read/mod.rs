//! Reading a table back: one fetch of its chains, sets (with elements) and
//! rules (as statements), which both the text summary and the typed
//! read-back are made from.

pub(crate) mod cond;
pub(crate) mod elems;
pub(crate) mod expr;
pub(crate) mod filter;
pub(crate) mod nat;
pub(crate) mod text;
pub(crate) mod walk;
pub(crate) mod xt;

use crate::error::NftError;
use crate::parse::{attr, attr_be32, attr_str};
use crate::socket::NftSocket;
use crate::sys::*;
use crate::table::{Family, TableInfo};
use elems::RawSet;
use expr::{SetLens, Stmt};

/// A base chain's hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hook {
    pub num: u32,
    pub prio: i32,
    pub dev: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct RawChain {
    pub name: String,
    pub hook: Option<Hook>,
    /// "nat", "filter", "route"
    pub ty: Option<String>,
    pub policy: Option<u32>,
    pub rules: Vec<Vec<Stmt>>,
}

#[derive(Debug, Clone)]
pub(crate) struct RawTable {
    pub info: TableInfo,
    pub chains: Vec<RawChain>,
    pub sets: Vec<RawSet>,
}

impl RawTable {
    pub fn chain(&self, name: &str) -> Option<&RawChain> {
        self.chains.iter().find(|c| c.name == name)
    }

    pub fn set(&self, name: &str) -> Option<&RawSet> {
        self.sets.iter().find(|s| s.name == name)
    }
}

fn hook(c: &[u8]) -> Option<Hook> {
    let h = attr(c, NFTA_CHAIN_HOOK)?;
    Some(Hook {
        num: attr_be32(h, NFTA_HOOK_HOOKNUM)?,
        prio: attr_be32(h, NFTA_HOOK_PRIORITY).map_or(0, |p| p as i32),
        dev: attr_str(h, NFTA_HOOK_DEV),
    })
}

impl NftSocket {
    /// Everything in table `family name`; `None` when it does not exist.
    pub(crate) fn raw_table(
        &mut self,
        family: Family,
        name: &str,
    ) -> Result<Option<RawTable>, NftError> {
        let Some(info) = self.table_info_in(family, name)? else {
            return Ok(None);
        };
        let f = family.nfproto();
        let mut chains: Vec<RawChain> = self
            .dump(
                NFT_MSG_GETCHAIN,
                f,
                &[],
                &format!("list chains {family} {name}"),
            )?
            .iter()
            .filter(|m| m.family == f)
            .map(|m| &m.attrs)
            .filter(|c| attr_str(c, NFTA_CHAIN_TABLE).as_deref() == Some(name))
            .filter_map(|c| {
                Some(RawChain {
                    name: attr_str(c, NFTA_CHAIN_NAME)?,
                    hook: hook(c),
                    ty: attr_str(c, NFTA_CHAIN_TYPE),
                    policy: attr_be32(c, NFTA_CHAIN_POLICY),
                    rules: Vec::new(),
                })
            })
            .collect();
        let mut sets = Vec::new();
        for m in self.dump(
            NFT_MSG_GETSET,
            f,
            &[(NFTA_SET_TABLE, name)],
            &format!("list sets {family} {name}"),
        )? {
            let s = &m.attrs;
            let Some(sname) = attr_str(s, NFTA_SET_NAME) else {
                continue;
            };
            let flags = attr_be32(s, NFTA_SET_FLAGS).unwrap_or(0);
            let filters = [
                (NFTA_SET_ELEM_LIST_TABLE, name),
                (NFTA_SET_ELEM_LIST_SET, sname.as_str()),
            ];
            let msgs: Vec<Vec<u8>> = self
                .dump(
                    NFT_MSG_GETSETELEM,
                    f,
                    &filters,
                    &format!("list set {family} {name} {sname}"),
                )?
                .into_iter()
                .map(|m| m.attrs)
                .collect();
            sets.push(RawSet {
                elems: elems::decode(flags, &msgs),
                name: sname,
                flags,
                key_type: attr_be32(s, NFTA_SET_KEY_TYPE).unwrap_or(0),
                key_len: attr_be32(s, NFTA_SET_KEY_LEN).unwrap_or(0),
                data_type: attr_be32(s, NFTA_SET_DATA_TYPE).unwrap_or(0),
                data_len: attr_be32(s, NFTA_SET_DATA_LEN).unwrap_or(0),
            });
        }
        let lens: SetLens = sets
            .iter()
            .map(|s| (s.name.clone(), (s.key_len, s.data_len)))
            .collect();
        for m in self.dump(
            NFT_MSG_GETRULE,
            f,
            &[(NFTA_RULE_TABLE, name)],
            &format!("list table {family} {name}"),
        )? {
            let chain = attr_str(&m.attrs, NFTA_RULE_CHAIN).unwrap_or_default();
            let stmts = expr::decode(
                attr(&m.attrs, NFTA_RULE_EXPRESSIONS).unwrap_or_default(),
                &lens,
            );
            match chains.iter_mut().find(|c| c.name == chain) {
                Some(c) => c.rules.push(stmts),
                None => chains.push(RawChain {
                    name: chain,
                    hook: None,
                    ty: None,
                    policy: None,
                    rules: vec![stmts],
                }),
            }
        }
        Ok(Some(RawTable { info, chains, sets }))
    }
}
