//! A table read back as typed rules: the same [`NatTable`] that made it (in
//! normal form), or for a foreign table the rules netplumb can express plus
//! a description of each one it cannot.

use serde::Serialize;

use crate::error::NftError;
use crate::filter::FilterRule;
use crate::loss::RandomLoss;
use crate::model::{DnatMapping, NatRule, NatTable};
use crate::read::walk;
use crate::socket::NftSocket;
use crate::table::{Family, TableInfo};

/// A table read back from the kernel.
///
/// ```no_run
/// use netplumb_nft::{Family, NftSocket};
/// let mut s = NftSocket::open()?;
/// // iptables-nft's NAT table, for an import
/// if let Some(rb) = s.read_table_in(Family::Ip, "nat")? {
///     for r in &rb.table.rules {
///         println!("can import: {r:?}");
///     }
///     for u in &rb.unrecognized {
///         println!("cannot express: {u}");
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadBack {
    /// Handle, flags and raw userdata of the table.
    pub info: TableInfo,
    /// What the table does, as typed rules (tags 0, in normal form; see
    /// [`NatTable::normalized`]); `userdata` is the marker of a table written
    /// by this crate, empty otherwise.
    pub table: NatTable,
    /// Each rule (or chain property) with no typed equivalent, as text:
    /// `"chain: rule"`, e.g.
    /// `PREROUTING: iifname != "docker0" tcp dport 8080 counter dnat to 172.17.0.2:80`.
    pub unrecognized: Vec<String>,
}

impl NftSocket {
    /// Reads table `inet name` back as typed rules; `None` when it does not
    /// exist. For a table written by [`NftSocket::replace_table`] from `t`,
    /// `table == t.normalized()`.
    pub fn read_table(&mut self, name: &str) -> Result<Option<ReadBack>, NftError> {
        self.read_table_in(Family::Inet, name)
    }

    /// [`NftSocket::read_table`] for a table of any family, e.g. `ip nat`.
    pub fn read_table_in(
        &mut self,
        family: Family,
        name: &str,
    ) -> Result<Option<ReadBack>, NftError> {
        let Some(raw) = self.raw_table(family, name)? else {
            return Ok(None);
        };
        let rec = walk::recognize(&raw);
        let table = NatTable {
            name: raw.info.name.clone(),
            rules: rec.nat,
            filter: rec.filter,
            loss: rec.loss,
            userdata: raw.info.marker().map(<[u8]>::to_vec).unwrap_or_default(),
            flags: raw.info.flags,
        }
        .normalized();
        Ok(Some(ReadBack {
            info: raw.info,
            table,
            unrecognized: rec.unrecognized,
        }))
    }
}

impl NatRule {
    /// The rule with tag 0 and its implicit parts spelled out: subnets
    /// truncated to their network, a single-port mapping's destination port
    /// explicit (`None` means "the same port").
    pub fn normalized(&self) -> NatRule {
        match self {
            NatRule::Masquerade { src, oif, .. } => NatRule::Masquerade {
                src: src.trunc(),
                oif: oif.clone(),
                tag: 0,
            },
            NatRule::Snat { src, to, oif, .. } => NatRule::Snat {
                src: src.trunc(),
                to: *to,
                oif: oif.clone(),
                tag: 0,
            },
            NatRule::Hairpin { subnet, .. } => NatRule::Hairpin {
                subnet: subnet.trunc(),
                tag: 0,
            },
            NatRule::LocalhostMasquerade { oif, .. } => NatRule::LocalhostMasquerade {
                oif: oif.clone(),
                tag: 0,
            },
            NatRule::Dnat(m) => NatRule::Dnat(DnatMapping {
                to_port: m.dest_port(),
                tag: 0,
                ..m.clone()
            }),
        }
    }
}

impl NatTable {
    /// The table in normal form: every rule [`NatRule::normalized`], sorted,
    /// duplicates dropped. Two tables that make the same kernel state have
    /// the same normal form.
    pub fn normalized(&self) -> NatTable {
        let mut rules: Vec<NatRule> = self.rules.iter().map(NatRule::normalized).collect();
        rules.sort();
        rules.dedup();
        let mut filter: Vec<FilterRule> = self.filter.iter().map(FilterRule::normalized).collect();
        filter.sort();
        filter.dedup();
        let mut loss: Vec<RandomLoss> = self
            .loss
            .iter()
            .map(|l| RandomLoss {
                tag: 0,
                ..l.clone()
            })
            .collect();
        loss.sort();
        NatTable {
            rules,
            filter,
            loss,
            ..self.clone()
        }
    }
}
