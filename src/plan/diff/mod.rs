//! Desired topology + what the topology owns (its ledger) + what the kernel
//! has → the ops that converge the kernel to the script: creations,
//! changes in place, and removals of what the script no longer declares.
//!
//! Every op is first applied to a simulated kernel seeded with what the real
//! one holds, so a name that is taken, a missing device or an unreachable
//! gateway is found here, before anything is changed. Every op also gets its
//! inverse, computed from the state it was planned against, so a failure
//! half-way rolls removals back as exactly as creations.

use std::collections::{HashMap, HashSet};

use crate::kernel::{Kernel, KernelError, Link, NsState, Recorder};
use crate::ledger::{End, Entry, MadeKind, World};
use crate::model::{NsName, NsRef, RouteDest};
use crate::op::{Op, RouteSpec};
use crate::topo::{Pos, Topology};

mod daemons;
mod files;
mod kinds;
mod links;
mod nat;
mod remove;
mod routes;
mod settings;
mod shape;
mod sysctl;
#[cfg(test)]
mod tests;

pub use daemons::{daemon_key, daemon_value};
pub use files::file_key;
pub use links::link_key;
pub use nat::{declared_table, fingerprint, nat_namespaces};

/// One op, the script position it comes from, and its ledger effects.
#[derive(Debug, Clone)]
pub struct Step {
    pub op: Op,
    pub pos: Pos,
    /// Entries written ahead of the op: what it makes the topology own.
    pub records: Vec<Entry>,
    /// Entries the op retires once it is done (what it removed, a moved
    /// link's old place).
    pub retires: Vec<Entry>,
    /// The ops that undo it, in order, computed from the state it was
    /// planned against.
    pub undo: Vec<Op>,
    /// The intent key it serves (see `plan::intent`): tells an edit of the
    /// script from a repair of drift.
    pub key: Option<String>,
}

/// The plan of one flush: kernel steps, plus ledger-only claims and
/// releases of objects shared with other topologies.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    pub steps: Vec<Step>,
    /// Objects another topology made that this one now shares.
    pub claims: Vec<Entry>,
    /// Shared objects this one no longer declares (left to the others).
    pub releases: Vec<Entry>,
    /// What was left alone and why ("netns x: shared with topology 'b'").
    pub notes: Vec<String>,
    /// The fingerprint of each declared NAT table (see `fingerprint`): the
    /// intent of the same model takes them instead of building every table
    /// again (100,000 rules copied and rendered a second time).
    pub nat_prints: NatPrints,
}

/// Each namespace's NAT table fingerprint.
pub type NatPrints = Vec<(NsRef, Vec<u8>)>;

#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct DiffError {
    pub msg: String,
    pub help: Option<String>,
    pub pos: Pos,
    /// A second position the error is about (the other topology's line is
    /// in another file and named in the message instead).
    pub other: Option<Box<Pos>>,
}

pub(crate) fn err(pos: &Pos, msg: impl Into<String>, help: Option<&str>) -> DiffError {
    DiffError {
        msg: msg.into(),
        help: help.map(str::to_string),
        pos: pos.clone(),
        other: None,
    }
}

pub fn nat_table_name(topology: &str) -> String {
    format!("netplumb-{topology}")
}

pub(crate) struct Cx<'a> {
    /// The kernel as it will be after the steps so far.
    sim: Recorder,
    /// The kernel as it was read, for computing inverses.
    seen: HashMap<NsRef, std::sync::Arc<NsState>>,
    steps: Vec<Step>,
    diff: Diff,
    topo_name: &'a str,
    /// The main script's file name, for positions other topologies see.
    script: &'a str,
    owned: &'a [Entry],
    /// The owned entries by where they are, so that a question about one
    /// object does not scan the whole ledger (a diff of a thousand
    /// namespaces asked it a thousand times).
    index: OwnedIndex,
    /// Where each declared link is now (see `remove::link_now_at`), made
    /// on first use: it depends only on the model and the ledger.
    locs: std::cell::OnceCell<HashMap<(NsRef, crate::model::IfName), crate::topo::LinkId>>,
    /// `Topology::hairpin_ports`, made on first use: the removal check asks
    /// it once per recorded hairpin port.
    hairpin: std::cell::OnceCell<std::collections::HashSet<crate::topo::LinkId>>,
    world: &'a World,
    /// Daemons whose recorded process stays as it is (see `daemons`).
    keep_daemons: Vec<String>,
    /// `Topology::touched_ns`, asked once per diff.
    touched: Vec<NsRef>,
    /// The namespaces this diff makes (its `AddNetns` steps, which only
    /// `push_step` adds and nothing removes): `is_fresh` is asked for
    /// every sysctl and NAT table, and a scan of the steps for each was
    /// 7 % of a `plan` of S(3000,30000) with `lean=true`.
    fresh: HashSet<NsName>,
}

#[derive(Default)]
struct OwnedIndex {
    netns: HashMap<crate::model::NsName, usize>,
    links: HashMap<(MadeKind, End), usize>,
    by_ns: HashMap<NsRef, Vec<usize>>,
}

impl OwnedIndex {
    fn new(owned: &[Entry]) -> Self {
        let mut ix = OwnedIndex::default();
        for (i, e) in owned.iter().enumerate() {
            match e {
                Entry::Netns { ns, .. } => {
                    ix.netns.entry(ns.clone()).or_insert(i);
                }
                Entry::Link {
                    ns,
                    name,
                    kind,
                    key,
                    ..
                } => {
                    let end = key.clone().unwrap_or_else(|| End {
                        ns: ns.clone(),
                        name: name.clone(),
                    });
                    ix.links.entry((*kind, end)).or_insert(i);
                }
                _ => {}
            }
            if let Some(ns) = e.ns() {
                ix.by_ns.entry(ns.clone()).or_default().push(i);
            }
        }
        ix
    }
}

impl Cx<'_> {
    fn push_step(&mut self, mut step: Step) -> Result<(), DiffError> {
        let before = match &step.op {
            Op::DelAddr { ns, .. } => self.state(ns).routes.clone(),
            _ => Vec::new(),
        };
        self.sim
            .apply(&step.op)
            .map_err(|e| explain(&step.op, &e, &step.pos))?;
        // The kernel drops the routes whose gateway an address removal made
        // unreachable: its undo puts them back too.
        if let Op::DelAddr { ns, .. } = &step.op {
            let after = &self.state(ns).routes;
            for r in before.iter().filter(|r| !after.contains(r)) {
                if let (Some(via), true) = (r.via, r.table == crate::kernel::RT_TABLE_MAIN) {
                    let dest = match r.dest.prefix_len() {
                        0 => RouteDest::Default { v6: via.is_ipv6() },
                        _ => RouteDest::Prefix(r.dest),
                    };
                    step.undo.push(Op::AddRoute {
                        ns: ns.clone(),
                        route: RouteSpec { dest, via },
                    });
                }
            }
        }
        if let Op::AddNetns { ns } = &step.op {
            self.fresh.insert(ns.clone());
        }
        self.steps.push(step);
        Ok(())
    }

    /// Made by this diff: nothing in it can be read from the kernel yet.
    fn is_fresh(&self, ns: &NsRef) -> bool {
        match ns {
            NsRef::Host => false,
            NsRef::Named(n) => self.fresh.contains(n),
        }
    }

    fn state(&self, ns: &NsRef) -> &NsState {
        static EMPTY: std::sync::LazyLock<NsState> = std::sync::LazyLock::new(NsState::default);
        self.sim.state.get(ns).map(|s| &**s).unwrap_or(&EMPTY)
    }

    /// The link `name` of `ns` in the simulation now, through its index
    /// (`state(ns).link(name)` is a pass over the host's thousands).
    fn link_now(&mut self, ns: &NsRef, name: &str) -> Option<Link> {
        self.sim.find_link(ns, name).cloned()
    }

    fn seen(&self, ns: &NsRef) -> &NsState {
        static EMPTY: std::sync::LazyLock<NsState> = std::sync::LazyLock::new(NsState::default);
        self.seen.get(ns).map(|s| &**s).unwrap_or(&EMPTY)
    }

    fn owns(&self, f: impl Fn(&Entry) -> bool) -> Option<&Entry> {
        self.owned.iter().find(|e| f(e))
    }

    /// The first owned entry in `ns` (a namespace's own entry is not in
    /// it) for which `f` holds.
    fn owns_in(&self, ns: &NsRef, f: impl Fn(&Entry) -> bool) -> Option<&Entry> {
        self.owned_in(ns).find(|e| f(e))
    }

    /// The owned entries in `ns`, in ledger order (a namespace's own entry
    /// is not among them).
    fn owned_in(&self, ns: &NsRef) -> impl Iterator<Item = &Entry> {
        self.index
            .by_ns
            .get(ns)
            .into_iter()
            .flatten()
            .map(|&i| &self.owned[i])
    }

    fn owned_netns(&self, ns: &crate::model::NsName) -> Option<&Entry> {
        self.index.netns.get(ns).map(|&i| &self.owned[i])
    }

    fn owned_link(&self, kind: MadeKind, key: &End) -> Option<&Entry> {
        self.index
            .links
            .get(&(kind, key.clone()))
            .map(|&i| &self.owned[i])
    }
}

/// Turn a kernel-style refusal from the simulation into words about the object.
fn explain(op: &Op, e: &KernelError, pos: &Pos) -> DiffError {
    let what = op.action();
    match (op, e.errno) {
        (Op::AddRoute { ns, route } | Op::ReplaceRoute { ns, route }, Some(libc::ENETUNREACH)) => {
            err(
                pos,
                format!(
                    "cannot {what}: gateway {} is not on any subnet of netns {ns}",
                    route.via
                ),
                Some("give a link in that namespace an address on the gateway's subnet first"),
            )
        }
        (Op::AddRoute { ns, route }, Some(libc::EEXIST)) => err(
            pos,
            format!(
                "cannot {what}: netns {ns} already has a route to {}, not made by this topology",
                route.dest
            ),
            Some("remove that route, or route another destination"),
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

/// Compute what converges the kernel to `topo` for topology `topo_name`
/// (declared by `script`), which owns `owned`; `world` holds every other
/// topology's records.
pub fn diff(
    topo: &Topology,
    kernel: &mut dyn Kernel,
    topo_name: &str,
    script: &str,
    owned: &[Entry],
    world: &World,
) -> Result<Diff, DiffError> {
    let mut sim = Recorder::new();
    sim.unlogged = true;
    sim.clear_state();
    let mut seen = HashMap::new();
    // Read what exists: the namespaces the script touches and those the
    // topology owns things in. A namespace that does not exist is empty.
    let declared_ns = topo.touched_ns();
    let mut touched = declared_ns.clone();
    {
        // Looked up by reference: a clone per owned entry per diff was a
        // REPL statement's cost at a thousand namespaces.
        let mut host = declared_ns.contains(&NsRef::Host);
        let mut named: std::collections::HashSet<&crate::model::NsName> = declared_ns
            .iter()
            .filter_map(|ns| match ns {
                NsRef::Named(n) => Some(n),
                NsRef::Host => None,
            })
            .collect();
        for e in owned {
            let ns = match e {
                Entry::Netns { ns, .. } => Some(ns),
                other => match other.ns() {
                    Some(NsRef::Named(n)) => Some(n),
                    Some(NsRef::Host) => None,
                    None => continue,
                },
            };
            match ns {
                Some(n) if named.insert(n) => touched.push(NsRef::Named(n.clone())),
                None if !host => {
                    host = true;
                    touched.push(NsRef::Host);
                }
                _ => {}
            }
        }
    }
    for (_, l) in topo.links() {
        if l.kind == crate::topo::LinkKind::Existing {
            kernel.assume_device(&l.origin.0, l.origin.1.as_str());
        }
    }
    let kerr = |e: KernelError, what: String| err(&Pos::default(), format!("{what}: {e}"), None);
    let mut present = Vec::with_capacity(touched.len());
    for ns in touched {
        let ino = match &ns {
            NsRef::Host => Some(0),
            NsRef::Named(n) => kernel
                .netns_ino(n)
                .map_err(|e| kerr(e, format!("cannot look for netns {n}")))?,
        };
        if let Some(ino) = ino {
            present.push((ns, ino));
        }
    }
    // One read per namespace, on several threads: a no-change `up` of a
    // thousand namespaces is mostly this.
    let nss: Vec<NsRef> = present.iter().map(|(ns, _)| ns.clone()).collect();
    for ((ns, ino), res) in present.into_iter().zip(kernel.observe_shared(&nss)) {
        let st = match res {
            Ok(st) => st,
            // Deleted between the two questions: as good as absent.
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(kerr(e, format!("cannot read netns {ns}"))),
        };
        if let NsRef::Named(n) = &ns {
            sim.netns.insert(n.clone(), ino);
        }
        sim.seed(ns.clone(), st.clone());
        seen.insert(ns, st);
    }
    // The tables the topology owns, as the kernel has them: a removal or a
    // replace is simulated against them (their content is not needed).
    for e in owned {
        if let Entry::Nat { ns, table, .. } = e
            && sim.state.contains_key(ns)
            && let Ok(Some(info)) = kernel.nat_info(ns, table.as_str())
        {
            let t = netplumb_nft::NatTable {
                name: table.as_str().to_string(),
                userdata: info.userdata,
                ..Default::default()
            };
            sim.nat
                .insert((ns.clone(), table.as_str().to_string()), (info.handle, t));
        }
    }
    let mut cx = Cx {
        sim,
        seen,
        steps: Vec::new(),
        diff: Diff::default(),
        topo_name,
        script,
        owned,
        index: OwnedIndex::new(owned),
        locs: std::cell::OnceCell::new(),
        hairpin: std::cell::OnceCell::new(),
        world,
        keep_daemons: Vec::new(),
        touched: declared_ns,
        fresh: HashSet::new(),
    };

    kinds::check_features(topo, kernel)?;
    nat::check_ports(topo, &mut cx)?;
    daemons::stops(topo, kernel, &mut cx)?;
    remove::removals(topo, kernel, &mut cx)?;
    links::namespaces(topo, &mut cx)?;
    links::links(topo, &mut cx)?;
    kinds::mtu_notes(topo, &mut cx);
    let mid = cx.steps.len();
    settings::attrs_addrs_routes(topo, &mut cx)?;
    settings::group_by_ns(&mut cx.steps[mid..]);
    routes::routes_and_rules(topo, &mut cx)?;
    shape::shapes(topo, &mut cx)?;
    settings::fuse_veths(&mut cx.steps);
    sysctl::sysctls(topo, kernel, &mut cx)?;
    sysctl::hoist_fresh(&mut cx.steps);
    nat::nat(topo, kernel, &mut cx)?;
    files::files(topo, kernel, &mut cx)?;
    daemons::starts(topo, &mut cx)?;
    let mut d = cx.diff;
    d.steps = cx.steps;
    Ok(d)
}
