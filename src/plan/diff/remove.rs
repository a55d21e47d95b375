//! What the topology owns and the script no longer declares: removed (or
//! put back, for changes to adopted objects), innermost first — NAT,
//! sysctls, routes, addresses, links, then namespaces — each with the op
//! that rebuilds it, so a failure later in the run restores it exactly.
//! Objects another topology shares are released, not removed.

use std::collections::HashSet;

use super::links::{current_loc, is_first_end, owned_entry, recreate_link};
use super::{Cx, DiffError, Step};
use crate::kernel::Kernel;
use crate::ledger::{Entry, MadeKind};
use crate::model::{IfName, NsRef};
use crate::op::{LinkChange, Op, RouteSpec};
use crate::topo::{LinkId, LinkKind, Pos, Topology};

/// What the script declares, keyed the way the ledger names it: built once
/// per removal pass, so that each owned entry is one lookup instead of a
/// scan of the model (a thousand namespaces made every REPL statement scan
/// a thousand declarations per entry).
struct Declared<'a> {
    netns: HashSet<&'a crate::model::NsName>,
    /// The ledger entries of the created links the script declares.
    links: HashSet<&'a Entry>,
    /// Where the adopted devices were found.
    adopted: HashSet<&'a (NsRef, IfName)>,
    addrs: HashSet<(LinkId, crate::model::Cidr)>,
    routes: HashSet<(&'a NsRef, &'a crate::model::RouteDest)>,
    sysctls: HashSet<(&'a NsRef, &'a str)>,
    nat: HashSet<NsRef>,
}

impl<'a> Declared<'a> {
    fn new(topo: &'a Topology, cx: &'a Cx) -> Self {
        Declared {
            netns: topo.namespaces().iter().map(|n| &n.name).collect(),
            links: topo
                .links()
                .filter(|(id, l)| l.kind != LinkKind::Existing && is_first_end(topo, *id))
                .filter_map(|(id, _)| owned_entry(cx, topo, id))
                .collect(),
            adopted: topo
                .links()
                .filter(|(_, l)| l.kind == LinkKind::Existing)
                .map(|(_, l)| &l.origin)
                .collect(),
            addrs: topo.addrs().iter().map(|a| (a.link, a.cidr)).collect(),
            routes: topo
                .routes()
                .iter()
                .map(|r| (&r.ns, &r.route.dest))
                .collect(),
            sysctls: topo
                .sysctls()
                .iter()
                .map(|s| (&s.ns, s.key.as_str()))
                .collect(),
            nat: super::nat::nat_namespaces(topo).into_iter().collect(),
        }
    }
}

/// Is this owned entry still what the script declares?
fn declared(topo: &Topology, cx: &Cx, d: &Declared, e: &Entry) -> bool {
    match e {
        Entry::Netns { ns, .. } => d.netns.contains(ns),
        Entry::Link { .. } => d.links.contains(e),
        Entry::LinkPlace { home, .. } => d.adopted.contains(&(home.ns.clone(), home.name.clone())),
        Entry::Addr { ns, dev, cidr } => {
            link_now_at(topo, cx, ns, dev).is_some_and(|id| d.addrs.contains(&(id, *cidr)))
        }
        Entry::LinkAttr { ns, name, old } => link_now_at(topo, cx, ns, name).is_some_and(|id| {
            let l = topo.get(id);
            match old {
                LinkChange::Up(_) => l.up.is_some(),
                LinkChange::Mtu(_) => l.mtu.is_some(),
                LinkChange::Master(_) => l.master.is_some(),
                LinkChange::Stp(_) => l.stp.is_some(),
                LinkChange::McastSnooping(_) => l.mcast_snooping.is_some(),
                LinkChange::Hairpin(_) => cx
                    .hairpin
                    .get_or_init(|| topo.hairpin_ports())
                    .contains(&id),
            }
        }),
        Entry::Route { ns, dest, .. } => d.routes.contains(&(ns, dest)),
        Entry::RouteEx { ns, route } => topo
            .xroutes()
            .iter()
            .any(|r| &r.ns == ns && r.route.same_key(route)),
        Entry::Rule { ns, rule } => topo.rules().iter().any(|r| &r.ns == ns && &r.rule == rule),
        Entry::Qdisc { ns, name, .. } => {
            link_now_at(topo, cx, ns, name).is_some_and(|id| topo.get(id).shape.is_some())
        }
        Entry::Sysctl { ns, key, .. } => d.sysctls.contains(&(ns, key.as_str())),
        Entry::Nat { ns, .. } => d.nat.contains(ns),
        // Stopped (or kept) by `daemons::stops`, before anything else.
        Entry::Daemon { .. } => true,
        // Decided by `files::files`.
        Entry::File { .. } => true,
    }
}

/// The declared link that is at (ns, name) now.
/// The first declared link that is now at `ns`/`name`. Asked once per
/// owned address and setting: the places are worked out once per diff.
fn link_now_at(topo: &Topology, cx: &Cx, ns: &NsRef, name: &IfName) -> Option<LinkId> {
    let locs = cx.locs.get_or_init(|| {
        let mut m = std::collections::HashMap::new();
        for (id, _) in topo.links() {
            if let Some(at) = current_loc(cx, topo, id) {
                m.entry(at).or_insert(id);
            }
        }
        m
    });
    locs.get(&(ns.clone(), name.clone())).copied()
}

/// Removal order: innermost objects first.
fn rank(e: &Entry) -> u8 {
    match e {
        Entry::Daemon { .. } | Entry::File { .. } | Entry::Nat { .. } => 0,
        Entry::Sysctl { .. } => 1,
        Entry::Route { .. } | Entry::RouteEx { .. } | Entry::Rule { .. } => 2,
        Entry::Addr { .. } => 3,
        Entry::LinkAttr { .. } | Entry::Qdisc { .. } => 4,
        Entry::LinkPlace { .. } => 5,
        Entry::Link {
            kind: MadeKind::Veth | MadeKind::Macvlan | MadeKind::Vxlan | MadeKind::Tun,
            ..
        } => 6,
        Entry::Link { .. } => 7,
        Entry::Netns { .. } => 8,
    }
}

pub(super) fn removals(
    topo: &Topology,
    kernel: &mut dyn Kernel,
    cx: &mut Cx,
) -> Result<(), DiffError> {
    let d = Declared::new(topo, cx);
    let mut gone: Vec<Entry> = cx
        .owned
        .iter()
        .filter(|e| !declared(topo, cx, &d, e))
        .cloned()
        .collect();
    drop(d);
    // Newest first within a rank, like a teardown.
    gone.reverse();
    gone.sort_by_key(rank);
    let doomed: HashSet<NsRef> = gone
        .iter()
        .filter_map(|e| match e {
            Entry::Netns { ns, .. } if cx.world.claimant_of(e).is_none() => {
                Some(NsRef::Named(ns.clone()))
            }
            _ => None,
        })
        .collect();
    for e in gone {
        remove(kernel, cx, &doomed, e)?;
    }
    Ok(())
}

fn retire_only(cx: &mut Cx, e: Entry) {
    cx.diff.releases.push(e);
}

fn remove(
    kernel: &mut dyn Kernel,
    cx: &mut Cx,
    doomed: &HashSet<NsRef>,
    e: Entry,
) -> Result<(), DiffError> {
    let pos = Pos::default();
    let step = |op: Op, undo: Vec<Op>, e: &Entry| Step {
        op,
        pos: pos.clone(),
        records: Vec::new(),
        retires: vec![e.clone()],
        undo,
        key: None,
    };
    if let Some(ns) = e.ns()
        && let NsRef::Named(n) = ns
        && !cx.sim.netns.contains_key(n)
    {
        // Its namespace is gone already: so is the object.
        retire_only(cx, e);
        return Ok(());
    }
    match &e {
        // Never here: `daemons::stops` decides on every recorded process.
        Entry::Daemon { .. } | Entry::File { .. } => Ok(()),
        Entry::Nat {
            ns, table, handle, ..
        } => {
            // Asked of the kernel: the simulation is seeded with links,
            // addresses and routes only, and holds no table it did not make.
            let Some(info) = kernel.nat_info(ns, table.as_str()).ok().flatten() else {
                retire_only(cx, e.clone());
                return Ok(());
            };
            if handle.is_some_and(|h| h != info.handle) {
                cx.diff.notes.push(format!(
                    "nat table {} in netns {ns} is not the one this topology made: left alone",
                    table.as_str()
                ));
                retire_only(cx, e.clone());
                return Ok(());
            }
            let prev = kernel.nat_table(ns, table.as_str()).ok().flatten();
            cx.sim.nat.insert(
                (ns.clone(), table.as_str().to_string()),
                (info.handle, prev.clone().unwrap_or_default()),
            );
            let undo = prev
                .map(|t| Op::ReplaceNat {
                    ns: ns.clone(),
                    table: Box::new(t),
                    replaces: None,
                })
                .into_iter()
                .collect();
            let op = Op::DelNat {
                ns: ns.clone(),
                table: table.as_str().to_string(),
                handle: *handle,
            };
            cx.push_step(step(op, undo, &e))
        }
        Entry::Sysctl {
            ns,
            key,
            old,
            value,
            ..
        } => {
            let shared = cx.world.sysctl_claims(&e).next().is_some();
            match old {
                Some(old) if !shared && !doomed.contains(ns) => {
                    let op = Op::Sysctl {
                        ns: ns.clone(),
                        key: key.as_str().to_string(),
                        value: old.as_str().to_string(),
                    };
                    let undo = vec![Op::Sysctl {
                        ns: ns.clone(),
                        key: key.as_str().to_string(),
                        value: value.as_str().to_string(),
                    }];
                    cx.push_step(step(op, undo, &e))
                }
                _ => {
                    retire_only(cx, e);
                    Ok(())
                }
            }
        }
        Entry::Route { ns, dest, via } => {
            let route = RouteSpec {
                dest: *dest,
                via: *via,
            };
            if !cx.state(ns).has_route(&dest.as_net(), via) {
                retire_only(cx, e);
                return Ok(());
            }
            let op = Op::DelRoute {
                ns: ns.clone(),
                route: route.clone(),
            };
            let undo = vec![Op::AddRoute {
                ns: ns.clone(),
                route,
            }];
            cx.push_step(step(op, undo, &e))
        }
        Entry::RouteEx { ns, route } => {
            if crate::kernel::routes::find_key(cx.state(ns), route).is_none() {
                retire_only(cx, e);
                return Ok(());
            }
            let op = Op::DelRouteEx {
                ns: ns.clone(),
                route: route.clone(),
            };
            let undo = vec![Op::PutRoute {
                ns: ns.clone(),
                route: route.clone(),
                replace: false,
            }];
            cx.push_step(step(op, undo, &e))
        }
        Entry::Qdisc { ns, name, old } => match super::shape::restore_op(cx, ns, name, old) {
            Some((op, undo)) => cx.push_step(step(op, vec![undo], &e)),
            None => {
                retire_only(cx, e);
                Ok(())
            }
        },
        Entry::Rule { ns, rule } => {
            if !crate::kernel::routes::has_rule(cx.state(ns), rule) {
                retire_only(cx, e);
                return Ok(());
            }
            let op = Op::DelRule {
                ns: ns.clone(),
                rule: rule.clone(),
            };
            let undo = vec![Op::AddRule {
                ns: ns.clone(),
                rule: rule.clone(),
            }];
            cx.push_step(step(op, undo, &e))
        }
        Entry::Addr { ns, dev, cidr } => {
            if !cx.state(ns).has_addr(dev.as_str(), cidr) || cx.world.claimant_of(&e).is_some() {
                retire_only(cx, e);
                return Ok(());
            }
            let op = Op::DelAddr {
                ns: ns.clone(),
                dev: dev.clone(),
                cidr: *cidr,
            };
            let undo = vec![Op::AddAddr {
                ns: ns.clone(),
                dev: dev.clone(),
                cidr: *cidr,
            }];
            cx.push_step(step(op, undo, &e))
        }
        Entry::LinkAttr { ns, name, old } => {
            let Some(l) = cx.state(ns).link(name.as_str()).cloned() else {
                retire_only(cx, e);
                return Ok(());
            };
            let st = cx.state(ns);
            let now = match old {
                LinkChange::Up(_) => LinkChange::Up(l.up),
                LinkChange::Mtu(_) => LinkChange::Mtu(l.mtu),
                LinkChange::Master(_) => LinkChange::Master(
                    l.master
                        .and_then(|m| st.link_by_index(m))
                        .and_then(|m| IfName::new(&m.name).ok()),
                ),
                LinkChange::Stp(_) => LinkChange::Stp(l.stp.unwrap_or(false)),
                LinkChange::McastSnooping(_) => {
                    LinkChange::McastSnooping(l.mcast_snooping.unwrap_or(true))
                }
                LinkChange::Hairpin(_) => LinkChange::Hairpin(l.hairpin.unwrap_or(false)),
            };
            let op = Op::SetLink {
                ns: ns.clone(),
                name: name.clone(),
                change: old.clone(),
            };
            let undo = vec![Op::SetLink {
                ns: ns.clone(),
                name: name.clone(),
                change: now,
            }];
            cx.push_step(step(op, undo, &e))
        }
        Entry::LinkPlace { ns, name, home, .. } => {
            if cx.state(ns).link(name.as_str()).is_none() {
                retire_only(cx, e);
                return Ok(());
            }
            let ops = e.undo_ops();
            let mut undo: Vec<Op> = Vec::new();
            // Moved away again on rollback, in the opposite order.
            for op in ops.iter().rev() {
                match op {
                    Op::RenameLink { ns, name, to } => undo.push(Op::RenameLink {
                        ns: ns.clone(),
                        name: to.clone(),
                        to: name.clone(),
                    }),
                    Op::MoveLink { ns, name, to } => undo.push(Op::MoveLink {
                        ns: to.clone(),
                        name: name.clone(),
                        to: ns.clone(),
                    }),
                    _ => {}
                }
            }
            let _ = home;
            let n = ops.len();
            for (i, op) in ops.into_iter().enumerate() {
                let last = i + 1 == n;
                cx.push_step(Step {
                    op,
                    pos: pos.clone(),
                    records: Vec::new(),
                    retires: if last { vec![e.clone()] } else { Vec::new() },
                    undo: if last {
                        std::mem::take(&mut undo)
                    } else {
                        Vec::new()
                    },
                    key: None,
                })?;
            }
            Ok(())
        }
        Entry::Link {
            ns, name, index, ..
        } => {
            let present = cx
                .state(ns)
                .links
                .iter()
                .find(|l| match index {
                    Some(i) => l.index == *i,
                    None => l.name == name.as_str(),
                })
                .cloned();
            let Some(present) = present else {
                retire_only(cx, e);
                return Ok(());
            };
            if let Some(other) = cx.world.claimant_of(&e) {
                cx.diff.notes.push(format!(
                    "link {name} in netns {ns}: still used by topology '{other}', left to it"
                ));
                retire_only(cx, e);
                return Ok(());
            }
            let undo = recreate_link(cx, &e);
            let op = Op::DelLink {
                ns: ns.clone(),
                name: IfName::new(&present.name).unwrap_or_else(|_| name.clone()),
                index: Some(present.index),
            };
            cx.push_step(step(op, undo, &e))
        }
        Entry::Netns { ns, ino } => {
            if !doomed.contains(&NsRef::Named(ns.clone())) {
                if let Some(other) = cx.world.claimant_of(&e) {
                    cx.diff.notes.push(format!(
                        "netns {ns}: still used by topology '{other}', left to it"
                    ));
                }
                retire_only(cx, e);
                return Ok(());
            }
            if let (Some(want), Some(have)) = (ino, cx.sim.netns.get(ns))
                && want != have
            {
                cx.diff.notes.push(format!(
                    "netns {ns} is not the one this topology made: left alone"
                ));
                retire_only(cx, e);
                return Ok(());
            }
            let op = Op::DelNetns {
                ns: ns.clone(),
                ino: *ino,
            };
            let undo = vec![Op::AddNetns { ns: ns.clone() }];
            cx.push_step(step(op, undo, &e))
        }
    }
}
