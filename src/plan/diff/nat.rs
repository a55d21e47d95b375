//! Sysctls and NAT: compared with the kernel's current values, and the
//! NAT table by the fingerprint kept in its userdata.

use std::collections::BTreeMap;

use netplumb_nft::NatTable;

use super::{Ctx, DiffError, err, nat_table_name};
use crate::kernel::Kernel;
use crate::ledger::Owned;
use crate::model::NsRef;
use crate::plan::Op;
use crate::topo::{Pos, Topology};

pub(super) fn sysctls(
    topo: &Topology,
    kernel: &mut dyn Kernel,
    cx: &mut Ctx,
) -> Result<(), DiffError> {
    // Last write per (ns, key) wins, in first-seen order.
    let mut last: BTreeMap<(NsRef, String), usize> = BTreeMap::new();
    let mut order = Vec::new();
    for (i, s) in topo.sysctls.iter().enumerate() {
        let k = (s.ns.clone(), s.key.clone());
        if last.insert(k.clone(), i).is_none() {
            order.push(k);
        }
    }
    for k in order {
        let s = &topo.sysctls[last[&k]];
        let fresh_ns = cx.is_fresh(&s.ns);
        let cur = if cx.sim.sysctls.contains_key(&k) {
            cx.sim.sysctl_get(&s.ns, &s.key).ok().flatten()
        } else if fresh_ns {
            // A namespace made by this diff cannot be read yet; it goes away
            // whole on `down`, so the value to restore does not matter.
            Some(String::new())
        } else {
            kernel.sysctl_get(&s.ns, &s.key).map_err(|e| {
                err(
                    &s.pos,
                    format!("cannot read sysctl {} in netns {}: {e}", s.key, s.ns),
                    None,
                )
            })?
        };
        let Some(cur) = cur else {
            return Err(err(
                &s.pos,
                format!("netns {} has no sysctl {}", s.ns, s.key),
                Some("check the name, e.g. net.ipv4.ip_forward"),
            ));
        };
        if cur.trim() != s.value {
            let already = cx.owned.iter().any(
                |o| matches!(o, Owned::Sysctl { ns, key, .. } if ns == &s.ns && key == &s.key),
            );
            let owns = if already {
                vec![]
            } else {
                vec![Owned::Sysctl {
                    ns: s.ns.clone(),
                    key: s.key.clone(),
                    old: cur.trim().to_string(),
                }]
            };
            cx.push(
                Op::Sysctl {
                    ns: s.ns.clone(),
                    key: s.key.clone(),
                    value: s.value.clone(),
                },
                &s.pos,
                owns,
            )?;
        }
    }
    Ok(())
}

/// A stable fingerprint of a NAT table's content, stored as the table's
/// userdata: a second `up` compares it instead of re-reading every element.
fn fingerprint(table: &NatTable) -> Vec<u8> {
    // FNV-1a over the rendered ruleset: stable across runs and builds.
    let text = netplumb_nft::render(table);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("netplumb:{h:016x}").into_bytes()
}

pub(super) fn nat(topo: &Topology, kernel: &mut dyn Kernel, cx: &mut Ctx) -> Result<(), DiffError> {
    let mut by_ns: Vec<(NsRef, Vec<usize>)> = Vec::new();
    for (i, d) in topo.nat.iter().enumerate() {
        match by_ns.iter_mut().find(|(n, _)| n == &d.ns) {
            Some((_, v)) => v.push(i),
            None => by_ns.push((d.ns.clone(), vec![i])),
        }
    }
    let name = nat_table_name(cx.topo_name);
    for (ns, idx) in by_ns {
        let mut table = NatTable {
            name: name.clone(),
            rules: idx.iter().map(|i| topo.nat[*i].rule.clone()).collect(),
            userdata: Vec::new(),
            ..Default::default()
        };
        let first = &topo.nat[idx[0]].pos;
        table.validate().map_err(|e| {
            let pos = nat_error_pos(topo, &e).unwrap_or(first);
            err(pos, e.to_string(), None)
        })?;
        table.userdata = fingerprint(&table);
        let cur = if cx.is_fresh(&ns) {
            None
        } else {
            kernel.nat_userdata(&ns, &name).map_err(|e| {
                err(
                    first,
                    format!("cannot read NAT table {name} in netns {ns}: {e}"),
                    None,
                )
            })?
        };
        if cur.as_deref() != Some(table.userdata.as_slice()) {
            let owns = vec![Owned::Nat {
                ns: ns.clone(),
                table: name.clone(),
            }];
            cx.push(
                Op::ReplaceNat {
                    ns,
                    table: Box::new(table),
                },
                first,
                owns,
            )?;
        }
    }
    Ok(())
}

/// The script position of the rule an nft error names by tag.
pub fn nat_error_pos<'a>(topo: &'a Topology, e: &netplumb_nft::NftError) -> Option<&'a Pos> {
    let tag = match e {
        netplumb_nft::NftError::Invalid { tag, .. } => Some(*tag),
        netplumb_nft::NftError::Kernel { tag, .. } => *tag,
        _ => None,
    }?;
    topo.nat.get(tag).map(|d| &d.pos)
}
