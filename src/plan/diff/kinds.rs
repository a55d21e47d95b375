//! macvlan and vxlan links: made where missing (a macvlan on its parent's
//! namespace socket, born where the script wants it), moved or renamed in
//! place like a bridge, and made again when the script changes what they
//! are (mode, VNI, remote, port …), which the kernel cannot change in place.

use super::links::{current_loc, key_end, link_key, owned_entry, relocate_owned};
use super::{Cx, DiffError, Step, err};
use crate::kernel::{Kernel, Link};
use crate::ledger::{Entry, MadeKind};
use crate::model::NsRef;
use crate::op::{LinkSpec, Op, Shape};
use crate::topo::{LinkDecl, LinkId, LinkKind, Topology};

pub(super) fn made_kind(k: &LinkKind) -> Option<MadeKind> {
    match k {
        LinkKind::Macvlan { .. } => Some(MadeKind::Macvlan),
        LinkKind::Vxlan { .. } => Some(MadeKind::Vxlan),
        LinkKind::Tun(_) => Some(MadeKind::Tun),
        _ => None,
    }
}

/// The request that makes `l`: the namespace it is sent in, the namespace
/// the link is born in (when another), and what it is.
fn request(topo: &Topology, cx: &Cx, l: &LinkDecl) -> Option<(NsRef, Option<NsRef>, LinkSpec)> {
    match &l.kind {
        LinkKind::Macvlan { parent, mode } => {
            let p = topo.get(*parent);
            let into = (p.ns != l.ns).then(|| l.ns.clone());
            let spec = LinkSpec::Macvlan {
                parent: p.name.clone(),
                mode: *mode,
            };
            Some((p.ns.clone(), into, spec))
        }
        LinkKind::Vxlan { spec, dev, cross } => {
            let mut spec = spec.clone();
            let mut under = 1500;
            if let Some(d) = dev {
                let d = topo.get(*d);
                spec.dev = Some(d.name.clone());
                under = d
                    .mtu
                    .or_else(|| cx.state(&d.ns).link(d.name.as_str()).map(|x| x.mtu))
                    .unwrap_or(1500);
            }
            let mtu = Some(under.saturating_sub(spec.overhead()));
            if cross.is_some() {
                // A site crossing is born from the host namespace, so its
                // UDP socket is on the underlay, straight into its own.
                let into = (l.ns != NsRef::Host).then(|| l.ns.clone());
                let mtu = l.mtu.or(mtu);
                return Some((NsRef::Host, into, LinkSpec::Vxlan { spec, mtu }));
            }
            Some((l.origin.0.clone(), None, LinkSpec::Vxlan { spec, mtu }))
        }
        LinkKind::Tun(t) => Some((l.ns.clone(), None, LinkSpec::Tun(t.clone()))),
        _ => None,
    }
}

/// Is the device `x` what `spec` makes?
fn is_as_declared(x: &Link, spec: &LinkSpec) -> bool {
    x.kind.as_deref() == Some(spec.kind()) && x.info.as_deref() == Some(spec.info().as_str())
}

pub(super) fn link(topo: &Topology, cx: &mut Cx, id: LinkId) -> Result<(), DiffError> {
    let l = topo.get(id);
    let (Some(kind), Some((req_ns, into, spec))) = (made_kind(&l.kind), request(topo, cx, l))
    else {
        return Ok(());
    };
    if let Some(cur) = current_loc(cx, topo, id) {
        let entry = owned_entry(cx, topo, id).cloned();
        let here = cx.state(&cur.0).link(cur.1.as_str()).cloned();
        let ours = here.as_ref().filter(|x| match &entry {
            Some(Entry::Link { index: Some(i), .. }) => x.index == *i,
            _ => true,
        });
        match ours {
            Some(x) if is_as_declared(x, &spec) => {
                let have = x.flood.clone();
                relocate_owned(cx, l, &cur, entry)?;
                return flood(cx, l, &have);
            }
            Some(x) if x.kind.as_deref() == Some(spec.kind()) => {
                // Changed in the script: remove it (by identity) and make
                // it as it is now declared.
                cx.push_step(Step {
                    op: Op::DelLink {
                        ns: cur.0.clone(),
                        name: cur.1.clone(),
                        index: Some(x.index),
                    },
                    pos: l.pos.clone(),
                    records: Vec::new(),
                    retires: entry.into_iter().collect(),
                    undo: Vec::new(),
                    key: Some(link_key(l)),
                })?;
            }
            _ => cx.diff.releases.extend(entry),
        }
    }
    if let Some(x) = cx.state(&l.ns).link(l.name.as_str()) {
        return Err(err(
            &l.pos,
            format!(
                "netns {} already has {}{}, not made by this topology",
                l.ns,
                l.name,
                x.kind
                    .as_deref()
                    .map(|k| format!(" (a {k})"))
                    .unwrap_or_default()
            ),
            Some("pick another name, or remove the existing device"),
        ));
    }
    cx.push_step(Step {
        op: Op::AddLink {
            ns: req_ns,
            name: l.name.clone(),
            into,
            spec,
        },
        pos: l.pos.clone(),
        records: vec![Entry::Link {
            ns: l.ns.clone(),
            name: l.name.clone(),
            kind,
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
    })?;
    flood(cx, l, &[])
}

/// Head-end replication of a site crossing: the all-zero-MAC fdb entries
/// the script declares and `have` (the device's now) lacks are appended,
/// those it no longer declares deleted. The device's entries are all its
/// own: they go with it, so the ledger keeps none.
fn flood(cx: &mut Cx, l: &LinkDecl, have: &[std::net::IpAddr]) -> Result<(), DiffError> {
    let LinkKind::Vxlan {
        cross: Some(c),
        spec,
        ..
    } = &l.kind
    else {
        return Ok(());
    };
    // A vxlan with a remote has the kernel's own entry for it.
    let have: Vec<std::net::IpAddr> = have
        .iter()
        .copied()
        .filter(|d| Some(*d) != spec.remote)
        .collect();
    let key = Some(format!("{} flood", link_key(l)));
    let (ns, dev) = (l.ns.clone(), l.name.clone());
    let entry = |add: bool, dst| {
        let (ns, dev) = (ns.clone(), dev.clone());
        if add {
            Op::AddFdb { ns, dev, dst }
        } else {
            Op::DelFdb { ns, dev, dst }
        }
    };
    let added = c
        .flood
        .iter()
        .filter(|d| !have.contains(d))
        .map(|&d| (true, d));
    let removed = have
        .iter()
        .filter(|d| !c.flood.contains(d))
        .map(|&d| (false, d));
    for (add, dst) in added.chain(removed) {
        cx.push_step(Step {
            op: entry(add, dst),
            pos: l.pos.clone(),
            records: Vec::new(),
            retires: Vec::new(),
            undo: vec![entry(!add, dst)],
            key: key.clone(),
        })?;
    }
    Ok(())
}

/// Every kind the script declares that this kernel lacks, refused at its
/// line before anything is planned.
pub(super) fn check_features(topo: &Topology, kernel: &mut dyn Kernel) -> Result<(), DiffError> {
    let mut asked: Vec<&str> = Vec::new();
    for (_, l) in topo.links() {
        if let Some(s) = l
            .shape
            .as_ref()
            .map(Shape::qdisc_part)
            .filter(|s| !s.is_empty())
        {
            let what = s.kind();
            if !asked.contains(&what) {
                asked.push(what);
                if let Some(msg) = kernel.lacks(what) {
                    let pos = l.set_pos.shape.as_ref().unwrap_or(&l.pos);
                    let why = if what == "netem" {
                        format!(
                            "{msg}: shape() with delay, jitter, loss, duplicate, corrupt or reorder needs it"
                        )
                    } else {
                        msg
                    };
                    return Err(err(pos, why, None));
                }
            }
        }
        let what = match l.kind {
            LinkKind::Macvlan { .. } => "macvlan",
            LinkKind::Vxlan { .. } => "vxlan",
            LinkKind::Tun(_) => "tun",
            _ => continue,
        };
        if asked.contains(&what) {
            continue;
        }
        asked.push(what);
        if let Some(msg) = kernel.lacks(what) {
            return Err(err(&l.pos, msg, None));
        }
    }
    Ok(())
}

/// The MTU a declared link will have, when the script decides it (a veth
/// the topology makes is 1500 unless told otherwise).
fn declared_mtu(l: &LinkDecl) -> Option<u32> {
    l.mtu
        .or(matches!(l.kind, LinkKind::Veth { .. }).then_some(1500))
}

/// Warnings, not refusals: the two ends of a veth, or a bridge's ports,
/// with different MTUs drop what is larger than the smallest.
pub(super) fn mtu_notes(topo: &Topology, cx: &mut Cx) {
    for (id, l) in topo.links() {
        if let LinkKind::Veth { peer } = l.kind
            && id.index() < peer.index()
        {
            let p = topo.get(peer);
            if let (Some(a), Some(b)) = (declared_mtu(l), declared_mtu(p))
                && a != b
            {
                cx.diff.notes.push(format!(
                    "veth {} ↔ {} ({}): MTU {a} on one end, {b} on the other; packets over {} are dropped",
                    l.name,
                    p.name,
                    l.pos,
                    a.min(b)
                ));
            }
        }
        if l.kind == LinkKind::Bridge {
            let mut seen: Vec<(u32, &str)> = Vec::new();
            for (_, port) in topo.links().filter(|(_, p)| p.master == Some(id)) {
                if let Some(m) = declared_mtu(port)
                    && !seen.iter().any(|(x, _)| *x == m)
                {
                    seen.push((m, port.name.as_str()));
                }
            }
            if seen.len() > 1 {
                let list: Vec<String> = seen.iter().map(|(m, n)| format!("{n} {m}")).collect();
                cx.diff.notes.push(format!(
                    "bridge {} ({}): its ports disagree on the MTU ({}); frames over the smallest are dropped",
                    l.name,
                    l.pos,
                    list.join(", ")
                ));
            }
        }
    }
}
