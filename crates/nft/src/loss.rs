//! Random loss on one interface: `numgen random mod 100 < N drop` in a
//! base chain hooked at that device's ingress, in the topology's own inet
//! table (inet ingress needs Linux ≥ 5.10). A stand-in for netem's `loss`
//! on kernels without sch_netem.

use serde::{Deserialize, Serialize};

use crate::encode::Buf;
use crate::error::NftError;
use crate::expr::{self, expr};
use crate::filter::verdict;
use crate::plan::{BaseChain, ingress_chain};
use crate::sys::*;
use crate::validate::check_ifname;

/// Drop `percent` % of the packets arriving on `iface`, at random.
///
/// ```
/// use netplumb_nft::{NatTable, RandomLoss};
/// let t = NatTable {
///     name: "netplumb-lab".into(),
///     loss: vec![RandomLoss { iface: "veth0".into(), percent: 20, tag: 0 }],
///     ..Default::default()
/// };
/// assert!(netplumb_nft::render(&t).contains("numgen random mod 100 < 20 drop"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RandomLoss {
    /// The interface (in the table's namespace) whose incoming packets are dropped.
    pub iface: String,
    /// How many in a hundred, 1 to 100.
    pub percent: u8,
    /// The caller's identifier, returned in errors about this rule.
    pub tag: usize,
}

pub(crate) fn check_loss(loss: &[RandomLoss]) -> Result<(), NftError> {
    for (i, l) in loss.iter().enumerate() {
        check_ifname(l.tag, "loss interface", &Some(l.iface.clone()))?;
        if l.percent == 0 || l.percent > 100 {
            return Err(NftError::invalid(
                l.tag,
                format!("loss of {} % on {}: give 1 to 100", l.percent, l.iface),
            ));
        }
        if let Some(first) = loss[..i].iter().find(|o| o.iface == l.iface) {
            return Err(NftError::Invalid {
                tag: l.tag,
                other_tag: Some(first.tag),
                msg: format!("loss on {} is already set to {} %", l.iface, first.percent),
            });
        }
    }
    Ok(())
}

/// One loss chain: its base chain and percentage.
#[derive(Debug, Clone)]
pub(crate) struct LossPlan {
    pub chain: BaseChain,
    pub percent: u8,
    pub tag: usize,
}

pub(crate) fn plan(loss: &[RandomLoss]) -> Vec<LossPlan> {
    let mut used: Vec<String> = Vec::new();
    loss.iter()
        .map(|l| {
            let base: String = std::iter::once("loss_".to_string())
                .chain(
                    l.iface
                        .chars()
                        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }.to_string()),
                )
                .collect();
            let mut name = base.clone();
            let mut k = 2;
            while used.contains(&name) {
                name = format!("{base}_{k}");
                k += 1;
            }
            used.push(name.clone());
            LossPlan {
                chain: ingress_chain(&name, &l.iface),
                percent: l.percent,
                tag: l.tag,
            }
        })
        .collect()
}

impl LossPlan {
    pub fn text(&self) -> String {
        format!("numgen random mod 100 < {} drop", self.percent)
    }

    /// nft's encoding: numgen's host-order value turned to network order
    /// for the (memcmp) less-than.
    pub fn encode(&self, b: &mut Buf) {
        expr(b, "numgen", |b| {
            b.u32be(NFTA_NG_DREG, NFT_REG_1);
            b.u32be(NFTA_NG_MODULUS, 100);
            b.u32be(NFTA_NG_TYPE, NFT_NG_RANDOM);
            b.u32be(NFTA_NG_OFFSET, 0);
        });
        expr(b, "byteorder", |b| {
            b.u32be(NFTA_BYTEORDER_SREG, NFT_REG_1);
            b.u32be(NFTA_BYTEORDER_DREG, NFT_REG_1);
            b.u32be(NFTA_BYTEORDER_OP, NFT_BYTEORDER_HTON);
            b.u32be(NFTA_BYTEORDER_LEN, 4);
            b.u32be(NFTA_BYTEORDER_SIZE, 4);
        });
        expr::cmp(b, NFT_CMP_LT, &u32::from(self.percent).to_be_bytes());
        verdict(b, NF_DROP);
    }
}
