//! Namespaces and links: created where missing, shared with the topology
//! that made them, adopted when someone else's; links the topology owns
//! moved or renamed in place when the script moves them; adopted devices
//! moved and renamed with a record of where they came from.

use super::{Cx, DiffError, Step, err};
use crate::kernel::Link;
use crate::ledger::{End, Entry, MadeKind};
use crate::model::NsRef;
use crate::op::{LinkChange, Op, VethWith};
use crate::topo::{LinkDecl, LinkId, LinkKind, Topology};

mod netns;
mod place;
mod recreate;
mod relocate;

pub(super) use netns::namespaces;
pub use place::link_key;
use place::*;
pub(super) use place::{current_loc, end_text, is_first_end, key_end, owned_entry};
pub(super) use recreate::recreate_link;
use recreate::set;
pub(super) use relocate::relocate_owned;
use relocate::*;

fn foreign_link_err(l: &LinkDecl, other: &str) -> DiffError {
    err(
        &l.pos,
        format!(
            "netns '{}' already has {} — from topology '{other}'",
            l.ns, l.name
        ),
        Some("pick another name, or take that topology down first"),
    )
}

pub(super) fn links(topo: &Topology, cx: &mut Cx) -> Result<(), DiffError> {
    let ids: Vec<LinkId> = topo.links().map(|(id, _)| id).collect();
    for &id in &ids {
        let l = topo.get(id);
        match &l.kind {
            LinkKind::Existing => existing(topo, cx, id)?,
            LinkKind::Bridge => bridge(topo, cx, id)?,
            LinkKind::Veth { peer } if is_first_end(topo, id) => veth(topo, cx, id, *peer)?,
            LinkKind::Veth { .. } => {}
            LinkKind::Macvlan { .. } | LinkKind::Vxlan { .. } | LinkKind::Tun(_) => {
                super::kinds::link(topo, cx, id)?
            }
        }
    }
    Ok(())
}

fn existing(topo: &Topology, cx: &mut Cx, id: LinkId) -> Result<(), DiffError> {
    let l = topo.get(id);
    let Some(cur) = current_loc(cx, topo, id) else {
        return Ok(());
    };
    let here = cx.link_now(&cur.0, cur.1.as_str());
    let Some(here) = here else {
        return Err(err(
            &l.pos,
            format!("no link '{}' in netns {}", cur.1, cur.0),
            Some(
                "ns.link(name) finds a device that already exists; create it with veth() or bridge()",
            ),
        ));
    };
    let probe = Entry::Link {
        ns: cur.0.clone(),
        name: cur.1.clone(),
        kind: MadeKind::Veth,
        peer: None,
        index: None,
        key: None,
        shared: false,
    };
    if let Some(other) = cx
        .world
        .others
        .iter()
        .find(|(_, es)| {
            es.iter()
                .any(|e| matches!(e, Entry::Link { .. }) && e.same_object(&probe))
        })
        .map(|(n, _)| n.clone())
    {
        return Err(foreign_link_err(l, &other));
    }
    let old_place = place_entry(cx, l).cloned();
    let home = key_end(l);
    let at_home = l.ns == home.ns && l.name == home.name;
    let was_up = match &old_place {
        Some(Entry::LinkPlace { up, .. }) => *up,
        _ => here.up,
    };
    let (old_addrs, _) = addr_entries_moved(cx, &cur, None);
    let moved_ns = cur.0 != l.ns;
    relocate(cx, l, &cur, |step| {
        step.retires.extend(old_place.clone());
        if !at_home {
            step.records.push(Entry::LinkPlace {
                ns: l.ns.clone(),
                name: l.name.clone(),
                home: home.clone(),
                up: was_up,
            });
        }
        if moved_ns {
            step.retires.extend(old_addrs.clone());
        }
    })?;
    Ok(())
}

fn bridge(topo: &Topology, cx: &mut Cx, id: LinkId) -> Result<(), DiffError> {
    let l = topo.get(id);
    if let Some(cur) = current_loc(cx, topo, id) {
        let entry = owned_entry(cx, topo, id).cloned();
        let alive = cx.state(&cur.0).link(cur.1.as_str()).is_some_and(|x| {
            x.is_bridge()
                && match &entry {
                    Some(Entry::Link { index: Some(i), .. }) => x.index == *i,
                    _ => true,
                }
        });
        if alive {
            return relocate_owned(cx, l, &cur, entry);
        }
        // Ours, but gone (or replaced by someone else's): make it again.
        cx.diff.releases.extend(entry);
    }
    match cx.link_now(&l.ns, l.name.as_str()) {
        Some(e) if e.is_bridge() => {
            let claim = Entry::Link {
                ns: l.ns.clone(),
                name: l.name.clone(),
                kind: MadeKind::Bridge,
                peer: None,
                index: Some(e.index),
                key: Some(key_end(l)),
                shared: true,
            };
            if let Some(other) = cx.world.claimant_of(&claim) {
                cx.diff.notes.push(format!(
                    "bridge {}: shared with topology '{other}'",
                    end_text(&l.ns, &l.name)
                ));
                cx.diff.claims.push(claim);
            }
            Ok(())
        }
        Some(e) => Err(err(
            &l.pos,
            format!(
                "netns {} already has {}, and it is a {}, not a bridge",
                l.ns,
                l.name,
                e.kind.as_deref().unwrap_or("device")
            ),
            Some("pick another name"),
        )),
        None => cx
            .push_step(Step {
                op: Op::AddBridge {
                    ns: l.ns.clone(),
                    name: l.name.clone(),
                },
                pos: l.pos.clone(),
                records: vec![Entry::Link {
                    ns: l.ns.clone(),
                    name: l.name.clone(),
                    kind: MadeKind::Bridge,
                    peer: None,
                    index: None,
                    key: Some(key_end(l)),
                    shared: false,
                }],
                retires: Vec::new(),
                undo: vec![Op::DelLink {
                    ns: l.ns.clone(),
                    name: l.name.clone(),
                    index: None,
                }],
                key: Some(link_key(l)),
            })
            .and_then(|()| {
                // Before any port joins: a bridge that never snoops has none of
                // the per-port multicast work to do (issue 14: -18 % up).
                if l.mcast_snooping != Some(false) {
                    return Ok(());
                }
                cx.push_step(Step {
                    op: set(&l.ns, &l.name, LinkChange::McastSnooping(false)),
                    pos: l
                        .set_pos
                        .mcast_snooping
                        .clone()
                        .unwrap_or_else(|| l.pos.clone()),
                    records: Vec::new(),
                    retires: Vec::new(),
                    undo: Vec::new(),
                    key: Some(format!("{} mcast_snooping", link_key(l))),
                })
            }),
    }
}

/// Are `a` (in `a_ns`) and `b` (in `b_ns`) the two ends of one veth pair?
fn are_peers(a: &Link, a_ns: &NsRef, b: &Link, b_ns: &NsRef) -> bool {
    a.is_veth()
        && b.is_veth()
        && a.peer == Some(b.index)
        && b.peer == Some(a.index)
        && a.peer_netnsid.is_some() == (a_ns != b_ns)
        && b.peer_netnsid.is_some() == (a_ns != b_ns)
}

fn veth(topo: &Topology, cx: &mut Cx, id: LinkId, peer: LinkId) -> Result<(), DiffError> {
    let l = topo.get(id);
    let p = topo.get(peer);
    if let Some(cur) = current_loc(cx, topo, id) {
        let entry = owned_entry(cx, topo, id).cloned();
        let pcur = current_loc(cx, topo, peer);
        let a = cx.link_now(&cur.0, cur.1.as_str());
        let b = match &pcur {
            Some(pc) => cx.link_now(&pc.0, pc.1.as_str()),
            None => None,
        };
        let index_ok = match (&entry, &a) {
            (Some(Entry::Link { index: Some(i), .. }), Some(a)) => a.index == *i,
            _ => true,
        };
        match (a, b, pcur) {
            (Some(a), Some(b), Some(pcur)) if index_ok && are_peers(&a, &cur.0, &b, &pcur.0) => {
                return relocate_pair(topo, cx, id, peer, entry, cur, pcur);
            }
            (a, _, _) => {
                // Ours but broken (an end gone, or its peer lost with a
                // namespace someone deleted while a process kept it):
                // remove what is left of it by identity and make it anew.
                if let (Some(a), Some(Entry::Link { index, .. })) = (a, &entry)
                    && index.is_none_or(|i| i == a.index)
                {
                    let e = entry.clone().into_iter().collect();
                    cx.push_step(Step {
                        op: Op::DelLink {
                            ns: cur.0.clone(),
                            name: cur.1.clone(),
                            index: Some(a.index),
                        },
                        pos: l.pos.clone(),
                        records: Vec::new(),
                        retires: e,
                        undo: Vec::new(),
                        key: Some(link_key(l)),
                    })?;
                } else {
                    cx.diff.releases.extend(entry);
                }
            }
        }
    }
    let a = cx.link_now(&l.ns, l.name.as_str());
    let b = cx.link_now(&p.ns, p.name.as_str());
    let probe = Entry::Link {
        ns: l.ns.clone(),
        name: l.name.clone(),
        kind: MadeKind::Veth,
        peer: None,
        index: None,
        key: None,
        shared: false,
    };
    if a.is_some()
        && let Some(other) = cx
            .world
            .others
            .iter()
            .find(|(_, es)| es.iter().any(|e| e.same_object(&probe)))
            .map(|(n, _)| n.clone())
    {
        return Err(foreign_link_err(l, &other));
    }
    match (a, b) {
        (Some(a), Some(b)) if are_peers(&a, &l.ns, &b, &p.ns) => Ok(()),
        (None, None) => cx.push_step(Step {
            op: Op::AddVeth {
                ns: l.ns.clone(),
                name: l.name.clone(),
                peer_ns: p.ns.clone(),
                peer: p.name.clone(),
                with: VethWith::default(),
            },
            pos: l.pos.clone(),
            records: vec![Entry::Link {
                ns: l.ns.clone(),
                name: l.name.clone(),
                kind: MadeKind::Veth,
                peer: Some(End {
                    ns: p.ns.clone(),
                    name: p.name.clone(),
                }),
                index: None,
                key: Some(key_end(l)),
                shared: false,
            }],
            retires: Vec::new(),
            undo: vec![Op::DelLink {
                ns: l.ns.clone(),
                name: l.name.clone(),
                index: None,
            }],
            key: Some(link_key(l)),
        }),
        (Some(_), _) => Err(err(
            &l.pos,
            format!(
                "netns {} already has {}, and it is not this veth pair",
                l.ns, l.name
            ),
            Some("pick another name, or remove the existing device"),
        )),
        (None, Some(_)) => Err(err(
            &l.pos,
            format!("netns {} already has {} (the peer's name)", p.ns, p.name),
            Some("pick another peer name, or remove the existing device"),
        )),
    }
}
