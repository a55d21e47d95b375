//! Where a declared link is and which ledger entry is its: intent keys,
//! the first end of a pair, the current place of a link that was moved.

use super::super::Cx;
use crate::ledger::{End, Entry, MadeKind};
use crate::model::{IfName, NsRef};
use crate::topo::{LinkDecl, LinkId, LinkKind, Topology};

pub(in crate::plan::diff) fn end_text(ns: &NsRef, name: &IfName) -> String {
    match ns {
        NsRef::Host => name.to_string(),
        NsRef::Named(n) => format!("{n}:{name}"),
    }
}

/// The intent key of a declared link: where the script declared it.
pub fn link_key(l: &LinkDecl) -> String {
    format!("link {}", end_text(&l.origin.0, &l.origin.1))
}

pub(in crate::plan::diff) fn key_end(l: &LinkDecl) -> End {
    End {
        ns: l.origin.0.clone(),
        name: l.origin.1.clone(),
    }
}

/// Is `l` the first end of a veth pair (the one the pair is recorded by)?
pub(in crate::plan::diff) fn is_first_end(topo: &Topology, id: LinkId) -> bool {
    match topo.get(id).kind {
        LinkKind::Veth { peer } => id.index() < peer.index(),
        _ => true,
    }
}

/// The ledger entry of a created link (by the key of its first end).
pub(in crate::plan::diff) fn owned_entry<'a>(
    cx: &'a Cx,
    topo: &Topology,
    id: LinkId,
) -> Option<&'a Entry> {
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
    cx.owned_link(kind, &key_end(first))
}

pub(in crate::plan::diff) fn place_entry<'a>(cx: &'a Cx, l: &LinkDecl) -> Option<&'a Entry> {
    let home = key_end(l);
    cx.owns(|e| matches!(e, Entry::LinkPlace { home: h, .. } if *h == home))
}

/// Where a declared link is now: per the ledger for links the topology
/// made or moved, where it was declared for the rest. None: not made yet.
pub(in crate::plan::diff) fn current_loc(
    cx: &Cx,
    topo: &Topology,
    id: LinkId,
) -> Option<(NsRef, IfName)> {
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
