//! Link settings, addresses and routes, and the two passes that shape the
//! plan for the apply layer (grouping per namespace, folding into creates).
//!
//! A link the topology made gets exactly what the script says, and what the
//! script does not say goes back to what a new link has (down, no master,
//! MTU 1500, STP off): an edit that drops `.up()` gives what a fresh `up`
//! of the edited script gives. An adopted device only gets what the script
//! says, and the ledger keeps its old setting to put back.

use std::collections::HashMap;

use super::links::{end_text, link_key, owned_entry};
use super::{Cx, DiffError, Step};
use crate::kernel::Link;
use crate::ledger::Entry;
use crate::model::{Cidr, IfName, NsRef};
use crate::op::{LinkChange, Op, RouteSpec, VethWith};
use crate::topo::{LinkId, LinkKind, Pos, Topology};

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
/// this plan creates (nothing to restore), and a master only when it exists
/// before the pair is made.
pub(super) fn fuse_veths(steps: &mut Vec<Step>) {
    let made_at: HashMap<(NsRef, IfName), usize> = steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match &s.op {
            Op::AddBridge { ns, name } => Some(((ns.clone(), name.clone()), i)),
            _ => None,
        })
        .collect();
    let created: HashMap<(NsRef, IfName), usize> = steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match &s.op {
            Op::AddVeth { ns, name, .. } => Some(((ns.clone(), name.clone()), i)),
            _ => None,
        })
        .collect();
    let mut fused = vec![false; steps.len()];
    let mut with: HashMap<usize, VethWith> = HashMap::new();
    for (j, s) in steps.iter().enumerate() {
        let Op::SetLink { ns, name, change } = &s.op else {
            continue;
        };
        let Some(&i) = created.get(&(ns.clone(), name.clone())) else {
            continue;
        };
        if j < i || !s.records.is_empty() {
            continue;
        }
        let w = with.entry(i).or_default();
        match change {
            LinkChange::Up(true) => {
                w.up = true;
                fused[j] = true;
            }
            LinkChange::Master(Some(m))
                if made_at.get(&(ns.clone(), m.clone())).is_none_or(|&b| b < i) =>
            {
                w.master = Some(m.clone());
                fused[j] = true;
            }
            _ => {}
        }
    }
    // The peer's `up` stays a request of its own: the kernel refuses a
    // veth peer that is up at birth (ENOTCONN, kernel 6.18).
    for (i, w) in with {
        if let Op::AddVeth { with: v, .. } = &mut steps[i].op {
            *v = w;
        }
    }
    let mut k = 0;
    steps.retain(|_| {
        k += 1;
        !fused[k - 1]
    });
}

fn made_here(cx: &Cx, ns: &NsRef, name: &IfName) -> bool {
    cx.steps
        .iter()
        .any(|s| matches!(&s.op, Op::AddBridge { ns: n, name: b } if n == ns && b == name))
}

/// The links the plan's steps so far make, by (namespace, name).
type Made = std::collections::HashSet<(NsRef, IfName)>;

/// Gathered once: asking the steps for every link made a diff of
/// thousands of links quadratic. The settings below make no links.
fn made_links(cx: &Cx) -> Made {
    cx.steps
        .iter()
        .flat_map(|s| match &s.op {
            Op::AddVeth {
                ns,
                name,
                peer_ns,
                peer,
                ..
            } => vec![(ns.clone(), name.clone()), (peer_ns.clone(), peer.clone())],
            Op::AddBridge { ns, name } => vec![(ns.clone(), name.clone())],
            Op::AddLink { ns, name, into, .. } => {
                vec![(into.as_ref().unwrap_or(ns).clone(), name.clone())]
            }
            _ => Vec::new(),
        })
        .collect()
}

/// Did the topology make this link (in this plan or before)? Adopted and
/// shared links get only what the script says.
fn is_owned(topo: &Topology, cx: &Cx, made: &Made, id: LinkId) -> bool {
    let l = topo.get(id);
    if l.kind == LinkKind::Existing {
        return false;
    }
    made.contains(&(l.ns.clone(), l.name.clone()))
        || matches!(
            owned_entry(cx, topo, id),
            Some(Entry::Link { shared: false, .. })
        )
}

struct Setter<'t> {
    topo: &'t Topology,
    id: LinkId,
    owned: bool,
}

impl Setter<'_> {
    fn set(&self, cx: &mut Cx, change: LinkChange, now: LinkChange) -> Result<(), DiffError> {
        let l = self.topo.get(self.id);
        let (p, what) = match change {
            LinkChange::Up(_) => (l.set_pos.up.as_ref(), "up"),
            LinkChange::Mtu(_) => (l.set_pos.mtu.as_ref(), "mtu"),
            LinkChange::Master(_) => (l.set_pos.master.as_ref(), "master"),
            LinkChange::Stp(_) => (l.set_pos.stp.as_ref(), "stp"),
            LinkChange::McastSnooping(_) => (l.set_pos.mcast_snooping.as_ref(), "mcast_snooping"),
            LinkChange::Hairpin(_) => (l.set_pos.master.as_ref(), "hairpin"),
        };
        let pos = p.unwrap_or(&l.pos).clone();
        let mut records = Vec::new();
        if !self.owned {
            let recorded = cx
                .owns_in(&l.ns, |e| {
                    matches!(e, Entry::LinkAttr { ns, name, old }
                    if ns == &l.ns && name == &l.name
                        && std::mem::discriminant(old) == std::mem::discriminant(&now))
                })
                .is_some();
            if !recorded {
                records.push(Entry::LinkAttr {
                    ns: l.ns.clone(),
                    name: l.name.clone(),
                    old: now.clone(),
                });
            }
        }
        cx.push_step(Step {
            op: Op::SetLink {
                ns: l.ns.clone(),
                name: l.name.clone(),
                change,
            },
            pos,
            records,
            retires: Vec::new(),
            undo: vec![Op::SetLink {
                ns: l.ns.clone(),
                name: l.name.clone(),
                change: now,
            }],
            key: Some(format!("{} {what}", link_key(l))),
        })
    }
}

fn master_name(cx: &Cx, ns: &NsRef, cur: &Link) -> Option<IfName> {
    cur.master
        .and_then(|i| cx.state(ns).link_by_index(i))
        .and_then(|m| IfName::new(&m.name).ok())
}

pub(super) fn attrs_addrs_routes(topo: &Topology, cx: &mut Cx) -> Result<(), DiffError> {
    let ids: Vec<LinkId> = topo.links().map(|(id, _)| id).collect();
    let hairpin = topo.hairpin_ports();
    let made = made_links(cx);
    for &id in &ids {
        let l = topo.get(id);
        let Some(cur) = cx.link_now(&l.ns, l.name.as_str()) else {
            continue;
        };
        let owned = is_owned(topo, cx, &made, id);
        let s = Setter { topo, id, owned };
        // After the master: hairpin is a property of the bridge port.
        let want_hairpin = if hairpin.contains(&id) {
            Some(true)
        } else {
            (owned && cur.hairpin == Some(true)).then_some(false)
        };
        let bridge = l.kind == LinkKind::Bridge || cur.is_bridge();
        // What a link the topology made has when the script says nothing.
        // (A macvlan takes its parent's, a vxlan its underlay's less the
        // outer headers: set when it is made.)
        let veth = matches!(l.kind, LinkKind::Veth { .. });
        let mtu = l.mtu.or((owned && !bridge && veth).then_some(1500));
        if let Some(m) = mtu
            && m != cur.mtu
        {
            s.set(cx, LinkChange::Mtu(m), LinkChange::Mtu(cur.mtu))?;
        }
        let want_master = match l.master {
            Some(m) => Some(Some(topo.get(m).name.clone())),
            None if owned => Some(None),
            None => None,
        };
        if let Some(want) = want_master {
            let now = master_name(cx, &l.ns, &cur);
            if now != want {
                s.set(cx, LinkChange::Master(want), LinkChange::Master(now))?;
            }
        }
        if bridge {
            let stp = l.stp.or(owned.then_some(false));
            // A bridge made by this plan gets the script's stp() said out
            // loud, as `brctl stp br off` would, though it is the default.
            let said = l.stp.is_some() && made_here(cx, &l.ns, &l.name);
            if let Some(on) = stp
                && (cur.stp != Some(on) || said)
            {
                s.set(
                    cx,
                    LinkChange::Stp(on),
                    LinkChange::Stp(cur.stp.unwrap_or(false)),
                )?;
            }
            // The kernel's default (on) when the script says nothing: an
            // option dropped between two ups turns snooping back on.
            let snoop = l.mcast_snooping.or(owned.then_some(true));
            if let Some(on) = snoop
                && let Some(now) = cur.mcast_snooping
                && now != on
            {
                s.set(
                    cx,
                    LinkChange::McastSnooping(on),
                    LinkChange::McastSnooping(now),
                )?;
            }
        }
        if let Some(on) = want_hairpin
            && cur.hairpin.unwrap_or(false) != on
        {
            s.set(
                cx,
                LinkChange::Hairpin(on),
                LinkChange::Hairpin(cur.hairpin.unwrap_or(false)),
            )?;
        }
    }
    for &id in &ids {
        addrs(topo, cx, id)?;
    }
    for &id in &ids {
        let l = topo.get(id);
        let Some(cur) = cx.link_now(&l.ns, l.name.as_str()) else {
            continue;
        };
        let owned = is_owned(topo, cx, &made, id);
        let up = l.up.or(owned.then_some(false));
        if let Some(up) = up
            && cur.up != up
        {
            Setter { topo, id, owned }.set(cx, LinkChange::Up(up), LinkChange::Up(cur.up))?;
        }
    }
    routes(topo, cx)
}

/// A link's addresses in the script's order: the first of each family is
/// the primary, the source of the namespace's traffic. Addresses the ledger
/// owns that sit out of order are taken off and put back in order.
fn addrs(topo: &Topology, cx: &mut Cx, id: LinkId) -> Result<(), DiffError> {
    let l = topo.get(id);
    let want: Vec<(Cidr, Pos)> = topo
        .addrs()
        .iter()
        .filter(|a| a.link == id)
        .map(|a| (a.cidr, a.pos.clone()))
        .collect();
    if want.is_empty() {
        return Ok(());
    }
    let owns = |cx: &Cx, c: &Cidr| {
        cx.owns_in(&l.ns, |e| {
            matches!(e, Entry::Addr { ns, dev, cidr } if ns == &l.ns && dev == &l.name && cidr == c)
        })
        .is_some()
    };
    // An address another topology made on a device both declare (the
    // shared bridge's gateway address): claimed, so neither one's `down`
    // takes it from the other.
    for (c, _) in &want {
        let rec = Entry::Addr {
            ns: l.ns.clone(),
            dev: l.name.clone(),
            cidr: *c,
        };
        if !owns(cx, c)
            && cx.state(&l.ns).has_addr(l.name.as_str(), c)
            && cx.world.claimant_of(&rec).is_some()
        {
            cx.diff.claims.push(rec);
        }
    }
    for v6 in [false, true] {
        let want_f: Vec<&(Cidr, Pos)> = want.iter().filter(|(c, _)| c.is_v6() == v6).collect();
        let have: Vec<Cidr> = cx
            .state(&l.ns)
            .addrs_of(l.name.as_str())
            .iter()
            .map(|a| a.cidr)
            .filter(|c| c.is_v6() == v6 && want_f.iter().any(|(w, _)| w == c))
            .collect();
        let prefix = have
            .iter()
            .zip(want_f.iter())
            .take_while(|(h, (w, _))| *h == w)
            .count();
        for c in &have[prefix..] {
            if owns(cx, c) {
                let pos = want_f
                    .iter()
                    .find(|(w, _)| w == c)
                    .map(|(_, p)| p.clone())
                    .unwrap_or_default();
                cx.push_step(Step {
                    op: Op::DelAddr {
                        ns: l.ns.clone(),
                        dev: l.name.clone(),
                        cidr: *c,
                    },
                    pos,
                    records: Vec::new(),
                    retires: Vec::new(),
                    undo: vec![Op::AddAddr {
                        ns: l.ns.clone(),
                        dev: l.name.clone(),
                        cidr: *c,
                    }],
                    key: Some(format!(
                        "addr {} {c} order",
                        end_text(&l.origin.0, &l.origin.1)
                    )),
                })?;
            }
        }
        for (c, pos) in &want_f[prefix..] {
            if cx.state(&l.ns).has_addr(l.name.as_str(), c) {
                continue;
            }
            let rec = Entry::Addr {
                ns: l.ns.clone(),
                dev: l.name.clone(),
                cidr: *c,
            };
            cx.push_step(Step {
                op: Op::AddAddr {
                    ns: l.ns.clone(),
                    dev: l.name.clone(),
                    cidr: *c,
                },
                pos: pos.clone(),
                records: vec![rec],
                retires: Vec::new(),
                undo: vec![Op::DelAddr {
                    ns: l.ns.clone(),
                    dev: l.name.clone(),
                    cidr: *c,
                }],
                key: Some(format!("addr {} {c}", end_text(&l.origin.0, &l.origin.1))),
            })?;
        }
    }
    Ok(())
}

fn routes(topo: &Topology, cx: &mut Cx) -> Result<(), DiffError> {
    for r in topo.routes() {
        let dest = r.route.dest.as_net();
        let now: Vec<Option<std::net::IpAddr>> =
            cx.state(&r.ns).routes_to(&dest).map(|x| x.via).collect();
        let mine = cx
            .owned
            .iter()
            .find(|e| matches!(e, Entry::Route { ns, dest: d, .. } if ns == &r.ns && d == &r.route.dest))
            .cloned();
        let rec = Entry::Route {
            ns: r.ns.clone(),
            dest: r.route.dest,
            via: r.route.via,
        };
        // A route the kernel had until this run's own removals took it
        // (its gateway's address went) is put back as part of the edit,
        // not a repair of drift: no intent key.
        let collateral = cx.seen(&r.ns).has_route(&dest, &r.route.via);
        let key = (!collateral).then(|| format!("route {} {}", r.ns, r.route.dest));
        if now.contains(&Some(r.route.via)) {
            if let Some(old) = mine
                && old != rec
            {
                cx.diff.releases.push(old);
                cx.diff.claims.push(rec);
            }
            continue;
        }
        match (now.first().copied().flatten(), &mine) {
            (None, _) if now.is_empty() => cx.push_step(Step {
                op: Op::AddRoute {
                    ns: r.ns.clone(),
                    route: r.route.clone(),
                },
                pos: r.pos.clone(),
                records: vec![rec],
                retires: mine.into_iter().collect(),
                undo: vec![Op::DelRoute {
                    ns: r.ns.clone(),
                    route: r.route.clone(),
                }],
                key,
            })?,
            (Some(old_via), Some(_)) => cx.push_step(Step {
                op: Op::ReplaceRoute {
                    ns: r.ns.clone(),
                    route: r.route.clone(),
                },
                pos: r.pos.clone(),
                records: vec![rec],
                retires: mine.into_iter().collect(),
                undo: vec![Op::ReplaceRoute {
                    ns: r.ns.clone(),
                    route: RouteSpec {
                        dest: r.route.dest,
                        via: old_via,
                    },
                }],
                key,
            })?,
            _ => {
                let via = now
                    .first()
                    .copied()
                    .flatten()
                    .map(|v| format!(" via {v}"))
                    .unwrap_or_default();
                return Err(super::err(
                    &r.pos,
                    format!(
                        "netns {} already has a route to {}{via}, not made by this topology",
                        r.ns, r.route.dest
                    ),
                    Some("remove that route first, or route another destination"),
                ));
            }
        }
    }
    Ok(())
}
