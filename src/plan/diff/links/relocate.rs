//! Moves and renames: a link from where it is to where the script wants
//! it, the ledger's addresses following it, an owned pair kept in step.

use super::recreate::set;
use super::*;
use crate::kernel::Link;
use crate::ledger::{End, Entry};
use crate::model::{IfName, NsRef};
use crate::op::{LinkChange, Op};
use crate::plan::diff::{Cx, DiffError, Step};
use crate::topo::{LinkDecl, LinkId, Topology};

/// Move and/or rename a link from `cur` to where `l` wants it; returns
/// the steps' inverses in the order to run them.
pub(in crate::plan::diff) fn relocate(
    cx: &mut Cx,
    l: &LinkDecl,
    cur: &(NsRef, IfName),
    mut on_last: impl FnMut(&mut Step),
) -> Result<bool, DiffError> {
    let (to_ns, to_name) = (&l.ns, &l.name);
    if &cur.0 == to_ns && &cur.1 == to_name {
        return Ok(false);
    }
    let mut ops = Vec::new();
    let mut undo = Vec::new();
    let rename_first =
        &cur.0 != to_ns && &cur.1 != to_name && cx.state(&cur.0).link(to_name.as_str()).is_none();
    let (mut ns, mut name) = cur.clone();
    let rename = |ns: &NsRef, name: &mut IfName, ops: &mut Vec<Op>, undo: &mut Vec<Op>| {
        if name != to_name {
            ops.push(Op::RenameLink {
                ns: ns.clone(),
                name: name.clone(),
                to: to_name.clone(),
            });
            undo.insert(
                0,
                Op::RenameLink {
                    ns: ns.clone(),
                    name: to_name.clone(),
                    to: name.clone(),
                },
            );
            *name = to_name.clone();
        }
    };
    if rename_first {
        rename(&ns, &mut name, &mut ops, &mut undo);
    }
    if &ns != to_ns {
        let seen = cx.seen(&ns).link(name.as_str()).cloned();
        ops.push(Op::MoveLink {
            ns: ns.clone(),
            name: name.clone(),
            to: to_ns.clone(),
        });
        // Moved back on rollback, the device comes home down and bare:
        // put its state and addresses back too.
        let mut back = vec![Op::MoveLink {
            ns: to_ns.clone(),
            name: name.clone(),
            to: ns.clone(),
        }];
        if let Some(Link { up: true, .. }) = &seen {
            back.push(set(&ns, &name, LinkChange::Up(true)));
        }
        for a in cx.seen(&ns).addrs_of(name.as_str()) {
            if a.scope != "link" {
                back.push(Op::AddAddr {
                    ns: ns.clone(),
                    dev: name.clone(),
                    cidr: a.cidr,
                });
            }
        }
        back.append(&mut undo);
        undo = back;
        ns = to_ns.clone();
    }
    rename(&ns, &mut name, &mut ops, &mut undo);
    let n = ops.len();
    for (i, op) in ops.into_iter().enumerate() {
        let mut step = Step {
            op,
            pos: l.pos.clone(),
            records: Vec::new(),
            retires: Vec::new(),
            undo: if i + 1 == n {
                std::mem::take(&mut undo)
            } else {
                Vec::new()
            },
            key: Some(link_key(l)),
        };
        if i + 1 == n {
            on_last(&mut step);
        }
        cx.push_step(step)?;
    }
    Ok(true)
}

/// The addresses the ledger records on a link at `at`, now at `to`.
pub(in crate::plan::diff) fn addr_entries_moved(
    cx: &Cx,
    at: &(NsRef, IfName),
    to: Option<&(NsRef, IfName)>,
) -> (Vec<Entry>, Vec<Entry>) {
    // Through the ledger's index by namespace: asked once per link of a
    // thousand namespaces, a scan of the whole ledger each was quadratic.
    let old: Vec<Entry> = cx
        .owned_in(&at.0)
        .filter(|e| matches!(e, Entry::Addr { dev, .. } if *dev == at.1))
        .cloned()
        .collect();
    let new = match to {
        Some(to) => old
            .iter()
            .filter_map(|e| match e {
                Entry::Addr { cidr, .. } => Some(Entry::Addr {
                    ns: to.0.clone(),
                    dev: to.1.clone(),
                    cidr: *cidr,
                }),
                _ => None,
            })
            .collect(),
        None => Vec::new(),
    };
    (old, new)
}

/// An owned veth pair that exists: move or rename either end where the
/// script now wants it, keeping the ledger entry in step.
pub(in crate::plan::diff) fn relocate_pair(
    topo: &Topology,
    cx: &mut Cx,
    id: LinkId,
    peer: LinkId,
    entry: Option<Entry>,
    cur: (NsRef, IfName),
    pcur: (NsRef, IfName),
) -> Result<(), DiffError> {
    let l = topo.get(id);
    let p = topo.get(peer);
    let Some(Entry::Link {
        kind,
        index,
        key,
        shared,
        ..
    }) = entry.clone()
    else {
        return Ok(());
    };
    let updated = |a: (&NsRef, &IfName), b: (&NsRef, &IfName)| Entry::Link {
        ns: a.0.clone(),
        name: a.1.clone(),
        kind,
        peer: Some(End {
            ns: b.0.clone(),
            name: b.1.clone(),
        }),
        index,
        key: key.clone(),
        shared,
    };
    // First end, then peer: the entry follows each move.
    let mid = updated((&l.ns, &l.name), (&pcur.0, &pcur.1));
    let (old_a, new_a) = addr_entries_moved(cx, &cur, Some(&(l.ns.clone(), l.name.clone())));
    let moved_a = cur.0 != l.ns;
    let e0 = entry.clone();
    let mid0 = mid.clone();
    let first_moved = relocate(cx, l, &cur, |step| {
        step.retires.extend(e0.clone());
        step.records.push(mid0.clone());
        step.retires.extend(old_a.clone());
        if !moved_a {
            step.records.extend(new_a.clone());
        }
    })?;
    let before = if first_moved { Some(mid) } else { entry };
    let last = updated((&l.ns, &l.name), (&p.ns, &p.name));
    let (old_b, new_b) = addr_entries_moved(cx, &pcur, Some(&(p.ns.clone(), p.name.clone())));
    let moved_b = pcur.0 != p.ns;
    relocate(cx, p, &pcur, |step| {
        step.retires.extend(before.clone());
        step.records.push(last.clone());
        step.retires.extend(old_b.clone());
        if !moved_b {
            step.records.extend(new_b.clone());
        }
    })?;
    Ok(())
}

/// An owned link other than a veth that exists at `cur`: moved or renamed
/// where the script now wants it, its ledger entry and addresses following.
pub(in crate::plan::diff) fn relocate_owned(
    cx: &mut Cx,
    l: &LinkDecl,
    cur: &(NsRef, IfName),
    entry: Option<Entry>,
) -> Result<(), DiffError> {
    let (old_addrs, new_addrs) = addr_entries_moved(cx, cur, Some(&(l.ns.clone(), l.name.clone())));
    let moved_ns = cur.0 != l.ns;
    relocate(cx, l, cur, |step| {
        if let Some(Entry::Link {
            kind,
            index,
            key,
            shared,
            ..
        }) = entry.clone()
        {
            step.retires.extend(entry.clone());
            step.records.push(Entry::Link {
                ns: l.ns.clone(),
                name: l.name.clone(),
                kind,
                peer: None,
                index,
                key,
                shared,
            });
        }
        step.retires.extend(old_addrs.clone());
        if !moved_ns {
            step.records.extend(new_addrs.clone());
        }
    })?;
    Ok(())
}
