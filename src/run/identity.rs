//! The identity the kernel gave an object (a namespace's inode, a link's
//! ifindex, a table's handle), filled into the ledger entries written
//! ahead without it and into the ops that would undo the object, so they
//! delete exactly it and never a namesake.

use crate::ledger::{Entry, SysctlValue};
use crate::op::{Made, Op};
use crate::plan::Step;

/// Fill `made` into step `s`; push (written, confirmed) entry pairs.
pub fn confirm(s: &mut Step, made: &Made, confirms: &mut Vec<(Entry, Entry)>) {
    for r in &mut s.records {
        let new = match (r.clone(), made) {
            (Entry::Netns { ns, ino: None }, Made::Netns { ino }) => Entry::Netns {
                ns,
                ino: Some(*ino),
            },
            (
                Entry::Link {
                    ns,
                    name,
                    kind,
                    peer,
                    index,
                    key,
                    shared,
                },
                Made::Link { index: i, .. },
            ) if index.is_none() || matches!(s.op, Op::MoveLink { .. }) => {
                // A move gives the moved device its index in the new place;
                // that is the entry's own end only when it moved.
                let own_end_moved = match &s.op {
                    Op::MoveLink { to, name: n, .. } => *to == ns && *n == name,
                    _ => true,
                };
                if !own_end_moved {
                    continue;
                }
                Entry::Link {
                    ns,
                    name,
                    kind,
                    peer,
                    index: Some(*i),
                    key,
                    shared,
                }
            }
            (
                Entry::Nat {
                    ns,
                    table,
                    handle: None,
                    ports,
                },
                Made::Table { handle },
            ) => Entry::Nat {
                ns,
                table,
                handle: Some(*handle),
                ports,
            },
            (
                Entry::Sysctl {
                    ns,
                    key,
                    value,
                    old: None,
                },
                Made::Sysctl { old },
            ) => match SysctlValue::new(old.trim()) {
                Ok(old) => Entry::Sysctl {
                    ns,
                    key,
                    value,
                    old: Some(old),
                },
                Err(_) => continue,
            },
            _ => continue,
        };
        confirms.push((r.clone(), new.clone()));
        *r = new;
    }
    for u in &mut s.undo {
        match (u, made) {
            (Op::DelNetns { ino, .. }, Made::Netns { ino: i }) if ino.is_none() => *ino = Some(*i),
            (Op::DelLink { index, .. }, Made::Link { index: i, .. }) if index.is_none() => {
                *index = Some(*i)
            }
            (Op::DelNat { handle, .. }, Made::Table { handle: h }) if handle.is_none() => {
                *handle = Some(*h)
            }
            (Op::ReplaceNat { replaces, .. }, Made::Table { handle: h }) if replaces.is_none() => {
                *replaces = Some(*h)
            }
            (Op::Sysctl { value, .. }, Made::Sysctl { old }) if value.is_empty() => {
                *value = old.trim().to_string()
            }
            _ => {}
        }
    }
}

/// Entries of objects a rollback built again get the new identities.
pub fn rebuilt(back: &mut [Entry], remade: &[Made]) {
    let mut links = remade.iter().filter_map(|m| match m {
        Made::Link { index, .. } => Some(*index),
        _ => None,
    });
    let mut inos = remade.iter().filter_map(|m| match m {
        Made::Netns { ino } => Some(*ino),
        _ => None,
    });
    let mut handles = remade.iter().filter_map(|m| match m {
        Made::Table { handle } => Some(*handle),
        _ => None,
    });
    for e in back {
        match e {
            Entry::Link { index, .. } => {
                if let Some(i) = links.next() {
                    *index = Some(i);
                }
            }
            Entry::Netns { ino, .. } => {
                if let Some(i) = inos.next() {
                    *ino = Some(i);
                }
            }
            Entry::Nat { handle, .. } => {
                if let Some(h) = handles.next() {
                    *handle = Some(h);
                }
            }
            _ => {}
        }
    }
}
