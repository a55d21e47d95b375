//! Link settings, addresses and routes, and the two passes that shape the
//! plan for the apply layer (grouping per namespace, folding into creates).

use std::collections::HashMap;

use super::{Applied, Ctx, DiffError, Step};
use crate::ledger::Owned;
use crate::model::{IfName, NsRef};
use crate::plan::{LinkChange, Op, VethWith};
use crate::topo::Topology;

/// Link settings, addresses and routes never depend on another namespace's,
/// so they are grouped per namespace (order kept within each): the apply
/// layer then pipelines each namespace's requests on one socket.
pub(super) fn group_by_ns(steps: &mut [Step]) {
    let mut order: HashMap<NsRef, usize> = HashMap::new();
    for s in steps.iter() {
        let n = order.len();
        order.entry(s.op.ns()).or_insert(n);
    }
    steps.sort_by_key(|s| order.get(&s.op.ns()).copied().unwrap_or(usize::MAX));
}

/// Fold a new veth's `master` and `up` into the request that creates the
/// pair: one request instead of three, and the bridge sees a port that
/// arrives ready instead of one that changes twice. Only settings of links
/// this plan creates (nothing to restore on `down`), and a master only when
/// it exists before the pair is made.
pub(super) fn fuse_veths(steps: &mut Vec<Step>) {
    let made_at: HashMap<(NsRef, IfName), usize> = steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match &s.op {
            Op::AddBridge { ns, name } => Some(((ns.clone(), name.clone()), i)),
            _ => None,
        })
        .collect();
    let mut sets: HashMap<(NsRef, IfName), Vec<usize>> = HashMap::new();
    for (j, s) in steps.iter().enumerate() {
        if let Op::SetLink { ns, name, change } = &s.op
            && s.owns.is_empty()
            && matches!(change, LinkChange::Up(true) | LinkChange::Master(Some(_)))
        {
            sets.entry((ns.clone(), name.clone())).or_default().push(j);
        }
    }
    let mut fused = vec![false; steps.len()];
    for i in 0..steps.len() {
        let Op::AddVeth { ns, name, .. } = &steps[i].op else {
            continue;
        };
        let mut with = VethWith::default();
        for &j in sets.get(&(ns.clone(), name.clone())).into_iter().flatten() {
            match &steps[j].op {
                Op::SetLink {
                    change: LinkChange::Up(true),
                    ..
                } => {
                    with.up = true;
                    fused[j] = true;
                }
                Op::SetLink {
                    change: LinkChange::Master(Some(m)),
                    ..
                } if made_at.get(&(ns.clone(), m.clone())).is_none_or(|&b| b < i) => {
                    with.master = Some(m.clone());
                    fused[j] = true;
                }
                _ => {}
            }
        }
        // The peer's `up` stays a request of its own: the kernel refuses a
        // veth peer that is up at birth (ENOTCONN, kernel 6.18).
        if let Op::AddVeth { with: w, .. } = &mut steps[i].op {
            *w = with;
        }
    }
    let mut k = 0;
    steps.retain(|_| {
        k += 1;
        !fused[k - 1]
    });
}

pub(super) fn attrs_addrs_routes(
    topo: &Topology,
    applied: &mut Applied,
    cx: &mut Ctx,
) -> Result<(), DiffError> {
    // Remember each link's state before this diff, for restoring adopted ones.
    let adopted = |cx: &Ctx, applied: &Applied, id: usize| {
        let l = &topo.links[id];
        !applied.created[id] && !cx.owns_link(&l.ns, &l.name)
    };
    let set = |cx: &mut Ctx, applied: &Applied, id: usize, change: LinkChange, old: LinkChange| {
        let l = &topo.links[id];
        let p = match change {
            LinkChange::Up(_) => l.set_pos.up.as_ref(),
            LinkChange::Mtu(_) => l.set_pos.mtu.as_ref(),
            LinkChange::Master(_) => l.set_pos.master.as_ref(),
            LinkChange::Stp(_) => l.set_pos.stp.as_ref(),
        }
        .unwrap_or(&l.pos);
        let owns = if adopted(cx, applied, id) {
            vec![Owned::LinkAttr {
                ns: l.ns.clone(),
                name: l.name.clone(),
                old,
            }]
        } else {
            vec![]
        };
        cx.push(
            Op::SetLink {
                ns: l.ns.clone(),
                name: l.name.clone(),
                change,
            },
            p,
            owns,
        )
    };
    for (id, l) in topo.links.iter().enumerate() {
        let Some(cur) = cx.state(&l.ns).link(l.name.as_str()).cloned() else {
            continue;
        };
        if let Some(m) = l.mtu
            && m != cur.mtu
        {
            set(
                cx,
                applied,
                id,
                LinkChange::Mtu(m),
                LinkChange::Mtu(cur.mtu),
            )?;
        }
        if let Some(mid) = l.master {
            let want = &topo.links[mid].name;
            let cur_master = cur
                .master
                .and_then(|i| cx.state(&l.ns).link_by_index(i))
                .map(|m| m.name.clone());
            if cur_master.as_deref() != Some(want.as_str()) {
                let old = LinkChange::Master(cur_master.and_then(|n| IfName::new(&n).ok()));
                set(cx, applied, id, LinkChange::Master(Some(want.clone())), old)?;
            }
        }
        if let Some(on) = l.stp {
            let known = applied.stp.get(&id).copied();
            let fresh = cx.steps.iter().any(
                |s| matches!(&s.op, Op::AddBridge { ns, name } if ns == &l.ns && name == &l.name),
            );
            if known != Some(on) && (fresh || known.is_some() || on) {
                set(cx, applied, id, LinkChange::Stp(on), LinkChange::Stp(!on))?;
            }
            applied.stp.insert(id, on);
        }
    }
    for a in &topo.addrs {
        let l = &topo.links[a.link];
        if !cx.state(&l.ns).has_addr(l.name.as_str(), &a.cidr) {
            let owns = vec![Owned::Addr {
                ns: l.ns.clone(),
                dev: l.name.clone(),
                cidr: a.cidr,
            }];
            cx.push(
                Op::AddAddr {
                    ns: l.ns.clone(),
                    dev: l.name.clone(),
                    cidr: a.cidr,
                },
                &a.pos,
                owns,
            )?;
        }
    }
    for (id, l) in topo.links.iter().enumerate() {
        let Some(up) = l.up else { continue };
        let Some(cur) = cx.state(&l.ns).link(l.name.as_str()).cloned() else {
            continue;
        };
        if cur.up != up {
            set(cx, applied, id, LinkChange::Up(up), LinkChange::Up(cur.up))?;
        }
    }
    for r in &topo.routes {
        let st = cx.state(&r.ns);
        if !st.has_route(&r.dest.as_net(), &r.via) {
            let owns = vec![Owned::Route {
                ns: r.ns.clone(),
                dest: r.dest,
                via: r.via,
            }];
            cx.push(
                Op::AddRoute {
                    ns: r.ns.clone(),
                    dest: r.dest,
                    via: r.via,
                },
                &r.pos,
                owns,
            )?;
        }
    }
    Ok(())
}
