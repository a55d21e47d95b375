//! Desired topology + observed kernel state → the ops still needed.
//!
//! Every op is first applied to a simulated kernel seeded with what the real
//! one holds, so a name that is taken, a missing device or an unreachable
//! gateway is found here, before anything is changed.

use std::collections::HashMap;

use crate::kernel::{Kernel, KernelError, NsState, Recorder};
use crate::ledger::Owned;
use crate::model::{IfName, NsRef};
use crate::plan::Op;
use crate::topo::{Pos, Topology};

mod links;
mod nat;
mod settings;

use links::links;
use nat::{nat, sysctls};
use settings::{attrs_addrs_routes, fuse_veths, group_by_ns};

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
    let touched = topo.touched_ns();
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
