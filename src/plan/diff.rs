//! Desired topology + observed kernel state → the ops still needed.
//!
//! Every op is first applied to a simulated kernel seeded with what the real
//! one holds, so a name that is taken, a missing device or an unreachable
//! gateway is found here, before anything is changed.

use std::collections::{BTreeMap, HashMap};

use netplumb_nft::NatTable;

use crate::kernel::{Kernel, KernelError, NsState, Recorder};
use crate::ledger::Owned;
use crate::model::{IfName, NsRef};
use crate::plan::{LinkChange, Op, VethWith};
use crate::topo::{LinkKind, Pos, Topology};

/// One op, the script position it comes from, and what it makes us own.
#[derive(Debug, Clone)]
pub struct Step {
    pub op: Op,
    pub pos: Pos,
    pub owns: Vec<Owned>,
    /// Ledger entries this op retires (a moved or renamed link's old place).
    pub retires: Vec<Owned>,
}

/// What earlier flushes of this run already converged: where each declared
/// link is now, so a later `move_to`/`rename` becomes a move, not a create.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub link_loc: Vec<Option<(NsRef, IfName)>>,
    pub stp: HashMap<usize, bool>,
    /// Links this topology created (as opposed to adopted), by id.
    pub created: Vec<bool>,
}

#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct DiffError {
    pub msg: String,
    pub help: Option<String>,
    pub pos: Pos,
}

fn err(pos: &Pos, msg: impl Into<String>, help: Option<&str>) -> DiffError {
    DiffError {
        msg: msg.into(),
        help: help.map(str::to_string),
        pos: pos.clone(),
    }
}

pub fn nat_table_name(topology: &str) -> String {
    format!("netplumb-{topology}")
}

struct Ctx<'a> {
    sim: Recorder,
    steps: Vec<Step>,
    topo_name: &'a str,
    owned: &'a [Owned],
    foreign: &'a HashMap<(NsRef, String), String>,
}

impl Ctx<'_> {
    fn push(&mut self, op: Op, pos: &Pos, owns: Vec<Owned>) -> Result<(), DiffError> {
        self.sim.apply(&op).map_err(|e| explain(&op, &e, pos))?;
        self.steps.push(Step {
            op,
            pos: pos.clone(),
            owns,
            retires: Vec::new(),
        });
        Ok(())
    }
    /// Made by this diff: nothing in it can be read from the kernel yet.
    fn is_fresh(&self, ns: &NsRef) -> bool {
        match ns {
            NsRef::Host => false,
            NsRef::Named(n) => self
                .steps
                .iter()
                .any(|st| matches!(&st.op, Op::AddNetns { ns } if ns == n)),
        }
    }

    fn state(&self, ns: &NsRef) -> &NsState {
        static EMPTY: std::sync::LazyLock<NsState> = std::sync::LazyLock::new(NsState::default);
        self.sim.state.get(ns).unwrap_or(&EMPTY)
    }
    fn owns_link(&self, ns: &NsRef, name: &IfName) -> bool {
        self.owned
            .iter()
            .any(|o| matches!(o, Owned::Link { ns: n, name: l, .. } if n == ns && l == name))
    }
}

/// Turn a kernel-style refusal from the simulation into words about the object.
fn explain(op: &Op, e: &KernelError, pos: &Pos) -> DiffError {
    let what = op.action();
    match (op, e.errno) {
        (Op::AddRoute { ns, via, .. }, Some(libc::ENETUNREACH)) => err(
            pos,
            format!("cannot {what}: gateway {via} is not on any subnet of netns {ns}"),
            Some("give a link in that namespace an address on the gateway's subnet first"),
        ),
        (_, Some(libc::EEXIST)) => err(
            pos,
            format!("cannot {what}: it already exists"),
            Some("pick another name, or remove the existing one"),
        ),
        (_, Some(libc::ENODEV)) => err(
            pos,
            format!("cannot {what}: no such device in netns {}", op.ns()),
            None,
        ),
        _ => err(pos, format!("cannot {what}: {e}"), None),
    }
}

/// Compute the steps that converge the kernel to `topo`.
///
/// `owned` is this topology's ledger; `foreign` maps (ns, link name) to the
/// other topology that owns it.
pub fn diff(
    topo: &Topology,
    applied: &mut Applied,
    kernel: &mut dyn Kernel,
    topo_name: &str,
    owned: &[Owned],
    foreign: &HashMap<(NsRef, String), String>,
) -> Result<Vec<Step>, DiffError> {
    let mut sim = Recorder::new();
    sim.state.clear();
    // Observe what exists. A namespace that does not exist yet is empty.
    let mut touched = topo.touched_ns();
    for (n, _) in &topo.namespaces {
        let r = NsRef::Named(n.clone());
        if !touched.contains(&r) {
            touched.push(r);
        }
    }
    let kerr = |e: KernelError, pos: &Pos, what: String| err(pos, format!("{what}: {e}"), None);
    for ns in &touched {
        let exists = match ns {
            NsRef::Host => true,
            NsRef::Named(n) => kernel
                .netns_exists(n)
                .map_err(|e| kerr(e, &Pos::default(), format!("cannot look for netns {n}")))?,
        };
        if exists {
            if let NsRef::Named(n) = ns {
                sim.netns.insert(n.clone());
            }
            let st = kernel
                .observe(ns)
                .map_err(|e| kerr(e, &Pos::default(), format!("cannot read netns {ns}")))?;
            sim.state.insert(ns.clone(), st);
        }
    }
    let mut cx = Ctx {
        sim,
        steps: Vec::new(),
        topo_name,
        owned,
        foreign,
    };

    // 1. namespaces
    for (n, pos) in &topo.namespaces {
        if !cx.sim.netns.contains(n) {
            cx.push(
                Op::AddNetns { ns: n.clone() },
                pos,
                vec![Owned::Netns { ns: n.clone() }],
            )?;
        }
    }
    for ns in &touched {
        if let NsRef::Named(n) = ns
            && !cx.sim.netns.contains(n)
        {
            let pos = topo
                .links
                .iter()
                .find(|l| &l.ns == ns)
                .map(|l| l.pos.clone())
                .unwrap_or_default();
            return Err(err(
                &pos,
                format!("netns {n} does not exist"),
                Some("create it with netns(\"…\") first"),
            ));
        }
    }

    links(topo, applied, &mut cx)?;
    let mid = cx.steps.len();
    attrs_addrs_routes(topo, applied, &mut cx)?;
    group_by_ns(&mut cx.steps[mid..]);
    fuse_veths(&mut cx.steps);
    sysctls(topo, kernel, &mut cx)?;
    nat(topo, kernel, &mut cx)?;
    Ok(cx.steps)
}

/// Link settings, addresses and routes never depend on another namespace's,
/// so they are grouped per namespace (order kept within each): the apply
/// layer then pipelines each namespace's requests on one socket.
fn group_by_ns(steps: &mut [Step]) {
    let mut order: HashMap<NsRef, usize> = HashMap::new();
    for s in steps.iter() {
        let n = order.len();
        order.entry(s.op.ns()).or_insert(n);
    }
    steps.sort_by_key(|s| order.get(&s.op.ns()).copied().unwrap_or(usize::MAX));
}

/// Fold a new veth's `master` and `up` into the request that creates the
/// pair: one request instead of three, and the bridge sees a port that
/// arrives ready instead of one that changes twice. Only settings of links this plan creates (nothing to restore on
/// `down`), and a master only when it exists before the pair is made.
fn fuse_veths(steps: &mut Vec<Step>) {
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

fn links(topo: &Topology, applied: &mut Applied, cx: &mut Ctx) -> Result<(), DiffError> {
    applied.link_loc.resize(topo.links.len(), None);
    applied.created.resize(topo.links.len(), false);
    // Moves and renames of links that earlier flushes already made.
    for (id, l) in topo.links.iter().enumerate() {
        let Some((ons, oname)) = applied.link_loc[id].clone() else {
            continue;
        };
        let mut cur_ns = ons.clone();
        let mut cur_name = oname.clone();
        let was_owned = cx.owns_link(&ons, &oname);
        let kind = l.kind.kernel_kind().unwrap_or("").to_string();
        let mut moved = false;
        if cur_ns != l.ns {
            cx.push(
                Op::MoveLink {
                    ns: cur_ns.clone(),
                    name: cur_name.clone(),
                    to: l.ns.clone(),
                },
                &l.pos,
                vec![],
            )?;
            cur_ns = l.ns.clone();
            moved = true;
        }
        if cur_name != l.name {
            cx.push(
                Op::RenameLink {
                    ns: cur_ns.clone(),
                    name: cur_name.clone(),
                    to: l.name.clone(),
                },
                &l.pos,
                vec![],
            )?;
            cur_name = l.name.clone();
            moved = true;
        }
        if moved
            && was_owned
            && let Some(last) = cx.steps.last_mut()
        {
            let peer_ns = match l.kind {
                LinkKind::Veth { peer } => Some(topo.links[peer].ns.clone()),
                _ => None,
            };
            last.owns = vec![Owned::Link {
                ns: cur_ns.clone(),
                name: cur_name.clone(),
                kind: kind.clone(),
                peer_ns: peer_ns.clone(),
            }];
            last.retires = vec![Owned::Link {
                ns: ons,
                name: oname,
                kind,
                peer_ns,
            }];
        }
        applied.link_loc[id] = Some((cur_ns, cur_name));
    }
    // New links.
    for (id, l) in topo.links.iter().enumerate() {
        if applied.link_loc[id].is_some() {
            continue;
        }
        let existing = cx.state(&l.ns).link(l.name.as_str()).cloned();
        // Another topology's record only matters for a device that is there.
        if let Some(other) = cx.foreign.get(&(l.ns.clone(), l.name.to_string()))
            && existing.is_some()
        {
            return Err(err(
                &l.pos,
                format!(
                    "netns '{}' already has {} — from topology '{other}'",
                    l.ns, l.name
                ),
                Some("pick another name, or take that topology down first"),
            ));
        }
        match &l.kind {
            LinkKind::Existing => {
                if existing.is_none() {
                    return Err(err(
                        &l.pos,
                        format!("no link '{}' in netns {}", l.name, l.ns),
                        Some(
                            "ns.link(name) finds a device that already exists; create it with veth() or bridge()",
                        ),
                    ));
                }
            }
            LinkKind::Bridge => match existing {
                Some(e) if e.kind.as_deref() == Some("bridge") => {}
                Some(e) => {
                    return Err(err(
                        &l.pos,
                        format!(
                            "netns {} already has {}, and it is a {}, not a bridge",
                            l.ns,
                            l.name,
                            e.kind.as_deref().unwrap_or("device")
                        ),
                        Some("pick another name"),
                    ));
                }
                None => {
                    let owns = vec![Owned::Link {
                        ns: l.ns.clone(),
                        name: l.name.clone(),
                        kind: "bridge".into(),
                        peer_ns: None,
                    }];
                    cx.push(
                        Op::AddBridge {
                            ns: l.ns.clone(),
                            name: l.name.clone(),
                        },
                        &l.pos,
                        owns,
                    )?;
                    applied.created[id] = true;
                }
            },
            LinkKind::Veth { peer } => {
                let p = &topo.links[*peer];
                if applied.link_loc[*peer].is_some() {
                    // The pair was handled from the other end.
                    applied.link_loc[id] = Some((l.ns.clone(), l.name.clone()));
                    continue;
                }
                let pexisting = cx.state(&p.ns).link(p.name.as_str()).cloned();
                match (existing, pexisting) {
                    (Some(a), Some(b))
                        if a.kind.as_deref() == Some("veth")
                            && b.kind.as_deref() == Some("veth") => {}
                    (None, None) => {
                        let owns = vec![Owned::Link {
                            ns: l.ns.clone(),
                            name: l.name.clone(),
                            kind: "veth".into(),
                            peer_ns: Some(p.ns.clone()),
                        }];
                        cx.push(
                            Op::AddVeth {
                                ns: l.ns.clone(),
                                name: l.name.clone(),
                                peer_ns: p.ns.clone(),
                                peer: p.name.clone(),
                                with: VethWith::default(),
                            },
                            &l.pos,
                            owns,
                        )?;
                        applied.created[id] = true;
                        applied.created[*peer] = true;
                    }
                    (Some(_), None) | (Some(_), Some(_)) => {
                        return Err(err(
                            &l.pos,
                            format!(
                                "netns {} already has {}, and it is not this veth pair",
                                l.ns, l.name
                            ),
                            Some("pick another name, or remove the existing device"),
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(err(
                            &l.pos,
                            format!("netns {} already has {} (the peer's name)", p.ns, p.name),
                            Some("pick another peer name, or remove the existing device"),
                        ));
                    }
                }
                applied.link_loc[*peer] = Some((p.ns.clone(), p.name.clone()));
            }
        }
        applied.link_loc[id] = Some((l.ns.clone(), l.name.clone()));
    }
    Ok(())
}

fn attrs_addrs_routes(
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

fn sysctls(topo: &Topology, kernel: &mut dyn Kernel, cx: &mut Ctx) -> Result<(), DiffError> {
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

fn nat(topo: &Topology, kernel: &mut dyn Kernel, cx: &mut Ctx) -> Result<(), DiffError> {
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
