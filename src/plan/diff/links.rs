//! Namespaces and links: created where missing, shared with the topology
//! that made them, adopted when someone else's; links the topology owns
//! moved or renamed in place when the script moves them; adopted devices
//! moved and renamed with a record of where they came from.

use super::{Cx, DiffError, Step, err};
use crate::kernel::Link;
use crate::ledger::{End, Entry, MadeKind};
use crate::model::{IfName, NsRef};
use crate::op::{LinkChange, Op, VethWith};
use crate::topo::{LinkDecl, LinkId, LinkKind, Topology};

pub(super) fn end_text(ns: &NsRef, name: &IfName) -> String {
    match ns {
        NsRef::Host => name.to_string(),
        NsRef::Named(n) => format!("{n}:{name}"),
    }
}

/// The intent key of a declared link: where the script declared it.
pub fn link_key(l: &LinkDecl) -> String {
    format!("link {}", end_text(&l.origin.0, &l.origin.1))
}

fn key_end(l: &LinkDecl) -> End {
    End {
        ns: l.origin.0.clone(),
        name: l.origin.1.clone(),
    }
}

/// Is `l` the first end of a veth pair (the one the pair is recorded by)?
pub(super) fn is_first_end(topo: &Topology, id: LinkId) -> bool {
    match topo.get(id).kind {
        LinkKind::Veth { peer } => id.index() < peer.index(),
        _ => true,
    }
}

/// The ledger entry of a created link (by the key of its first end).
pub(super) fn owned_entry<'a>(cx: &'a Cx, topo: &Topology, id: LinkId) -> Option<&'a Entry> {
    let l = topo.get(id);
    let (first, kind) = match l.kind {
        LinkKind::Veth { peer } if !is_first_end(topo, id) => (topo.get(peer), MadeKind::Veth),
        LinkKind::Veth { .. } => (l, MadeKind::Veth),
        LinkKind::Bridge => (l, MadeKind::Bridge),
        LinkKind::Macvlan { .. } => (l, MadeKind::Macvlan),
        LinkKind::Vxlan { .. } => (l, MadeKind::Vxlan),
        LinkKind::Tun(_) => (l, MadeKind::Tun),
        LinkKind::Existing => return None,
    };
    let want = key_end(first);
    cx.owns(|e| match e {
        Entry::Link {
            ns,
            name,
            kind: k,
            key,
            ..
        } => {
            *k == kind
                && key.clone().unwrap_or_else(|| End {
                    ns: ns.clone(),
                    name: name.clone(),
                }) == want
        }
        _ => false,
    })
}

fn place_entry<'a>(cx: &'a Cx, l: &LinkDecl) -> Option<&'a Entry> {
    let home = key_end(l);
    cx.owns(|e| matches!(e, Entry::LinkPlace { home: h, .. } if *h == home))
}

/// Where a declared link is now: per the ledger for links the topology
/// made or moved, where it was declared for the rest. None: not made yet.
pub(super) fn current_loc(cx: &Cx, topo: &Topology, id: LinkId) -> Option<(NsRef, IfName)> {
    let l = topo.get(id);
    match l.kind {
        LinkKind::Existing => match place_entry(cx, l) {
            Some(Entry::LinkPlace { ns, name, .. }) => Some((ns.clone(), name.clone())),
            _ => Some(l.origin.clone()),
        },
        _ => match owned_entry(cx, topo, id)? {
            Entry::Link { ns, name, peer, .. } => {
                if is_first_end(topo, id) {
                    Some((ns.clone(), name.clone()))
                } else {
                    peer.as_ref().map(|p| (p.ns.clone(), p.name.clone()))
                }
            }
            _ => None,
        },
    }
}

pub(super) fn namespaces(topo: &Topology, cx: &mut Cx) -> Result<(), DiffError> {
    for d in topo.namespaces() {
        let n = &d.name;
        let key = Some(format!("netns {n}"));
        match cx.sim.netns.get(n).copied() {
            Some(ino) => {
                let mine = cx
                    .owns(|e| matches!(e, Entry::Netns { ns, .. } if ns == n))
                    .cloned();
                match mine {
                    Some(Entry::Netns { ino: Some(had), .. }) if had != ino => {
                        // Ours was deleted and someone made another under
                        // its name: that one is theirs.
                        cx.diff.notes.push(format!(
                            "netns {n} is not the one this topology made (someone replaced it): adopted, never deleted"
                        ));
                        cx.diff.releases.extend(mine);
                    }
                    Some(_) => {}
                    None => {
                        let e = Entry::Netns {
                            ns: n.clone(),
                            ino: Some(ino),
                        };
                        if let Some(other) = cx.world.claimant_of(&e) {
                            cx.diff
                                .notes
                                .push(format!("netns {n}: shared with topology '{other}'"));
                            cx.diff.claims.push(e);
                        }
                    }
                }
            }
            None => {
                cx.push_step(Step {
                    op: Op::AddNetns { ns: n.clone() },
                    pos: d.pos.clone(),
                    records: vec![Entry::Netns {
                        ns: n.clone(),
                        ino: None,
                    }],
                    retires: Vec::new(),
                    undo: vec![Op::DelNetns {
                        ns: n.clone(),
                        ino: None,
                    }],
                    key,
                })?;
            }
        }
    }
    for ns in topo.touched_ns() {
        if let NsRef::Named(n) = &ns
            && !cx.sim.netns.contains_key(n)
        {
            let pos = topo
                .links()
                .find(|(_, l)| l.ns == ns)
                .map(|(_, l)| l.pos.clone())
                .unwrap_or_default();
            return Err(err(
                &pos,
                format!("netns {n} does not exist"),
                Some("create it with netns(\"…\") first"),
            ));
        }
    }
    Ok(())
}

/// What a veth end or bridge looks like, to build it again on rollback.
pub(super) fn recreate_link(cx: &Cx, e: &Entry) -> Vec<Op> {
    let Entry::Link {
        ns,
        name,
        kind,
        peer,
        ..
    } = e
    else {
        return Vec::new();
    };
    let st = cx.seen(ns);
    let Some(l) = st.link(name.as_str()) else {
        return Vec::new();
    };
    let master = l
        .master
        .and_then(|m| st.link_by_index(m))
        .and_then(|m| IfName::new(&m.name).ok());
    let mut ops = match (kind, peer) {
        (MadeKind::Veth, Some(p)) => vec![Op::AddVeth {
            ns: ns.clone(),
            name: name.clone(),
            peer_ns: p.ns.clone(),
            peer: p.name.clone(),
            with: VethWith { master, up: l.up },
        }],
        (MadeKind::Bridge, _) => {
            let mut v = vec![Op::AddBridge {
                ns: ns.clone(),
                name: name.clone(),
            }];
            if l.stp == Some(true) {
                v.push(set(ns, name, LinkChange::Stp(true)));
            }
            if l.up {
                v.push(set(ns, name, LinkChange::Up(true)));
            }
            v
        }
        _ => return Vec::new(),
    };
    if l.mtu != 1500 {
        ops.push(set(ns, name, LinkChange::Mtu(l.mtu)));
    }
    if let (MadeKind::Veth, Some(p)) = (kind, peer)
        && let Some(pl) = cx.seen(&p.ns).link(p.name.as_str())
    {
        if pl.mtu != 1500 {
            ops.push(set(&p.ns, &p.name, LinkChange::Mtu(pl.mtu)));
        }
        if pl.up {
            ops.push(set(&p.ns, &p.name, LinkChange::Up(true)));
        }
    }
    for a in st.addrs_of(name.as_str()) {
        if a.scope != "link" {
            ops.push(Op::AddAddr {
                ns: ns.clone(),
                dev: name.clone(),
                cidr: a.cidr,
            });
        }
    }
    ops
}

fn set(ns: &NsRef, name: &IfName, change: LinkChange) -> Op {
    Op::SetLink {
        ns: ns.clone(),
        name: name.clone(),
        change,
    }
}

/// Move and/or rename a link from `cur` to where `l` wants it; returns
/// the steps' inverses in the order to run them.
fn relocate(
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
fn addr_entries_moved(
    cx: &Cx,
    at: &(NsRef, IfName),
    to: Option<&(NsRef, IfName)>,
) -> (Vec<Entry>, Vec<Entry>) {
    let old: Vec<Entry> = cx
        .owned
        .iter()
        .filter(|e| matches!(e, Entry::Addr { ns, dev, .. } if *ns == at.0 && *dev == at.1))
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
    let here = cx.state(&cur.0).link(cur.1.as_str()).cloned();
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

/// An owned link other than a veth that exists at `cur`: moved or renamed
/// where the script now wants it, its ledger entry and addresses following.
pub(super) fn relocate_owned(
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
    match cx.state(&l.ns).link(l.name.as_str()).cloned() {
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
        None => cx.push_step(Step {
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
        let a = cx.state(&cur.0).link(cur.1.as_str()).cloned();
        let b = pcur
            .as_ref()
            .and_then(|pc| cx.state(&pc.0).link(pc.1.as_str()).cloned());
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
    let a = cx.state(&l.ns).link(l.name.as_str()).cloned();
    let b = cx.state(&p.ns).link(p.name.as_str()).cloned();
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

/// An owned veth pair that exists: move or rename either end where the
/// script now wants it, keeping the ledger entry in step.
fn relocate_pair(
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
