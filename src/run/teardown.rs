//! Undoing what a topology owns: for `down` and for rolling back a run.

use crate::kernel::Kernel;
use crate::ledger::{Ledger, Owned};
use crate::model::NsRef;
use crate::plan::Op;

/// The op that undoes an owned object or change.
pub fn undo_op(o: &Owned) -> Op {
    match o.clone() {
        Owned::Netns { ns } => Op::DelNetns { ns },
        Owned::Link { ns, name, .. } => Op::DelLink { ns, name },
        Owned::Addr { ns, dev, cidr } => Op::DelAddr { ns, dev, cidr },
        Owned::Route { ns, dest, via } => Op::DelRoute { ns, dest, via },
        Owned::Sysctl { ns, key, old } => Op::Sysctl {
            ns,
            key,
            value: old,
        },
        Owned::LinkAttr { ns, name, old } => Op::SetLink {
            ns,
            name,
            change: old,
        },
        Owned::Nat { ns, table } => Op::DelNat { ns, table },
    }
}

/// Undo `owns`, newest first, in an order the kernel does quickly:
/// settings and addresses, then whole namespaces (which take their links,
/// and the far ends of their veths, with them), then the remaining links.
/// What is already gone counts as removed; every failure is collected and
/// none stops the rest.
pub fn teardown(
    kernel: &mut dyn Kernel,
    mut ledger: Option<&mut Ledger>,
    owns: &[Owned],
) -> Vec<String> {
    let doomed: Vec<NsRef> = owns
        .iter()
        .filter_map(|o| match o {
            Owned::Netns { ns } => Some(NsRef::Named(ns.clone())),
            _ => None,
        })
        .collect();
    let mut errs = Vec::new();
    let mut gone = Vec::new();
    let mut undo = |kernel: &mut dyn Kernel, o: &Owned, gone: &mut Vec<Owned>| {
        let op = undo_op(o);
        match kernel.apply(&op) {
            Ok(()) => gone.push(o.clone()),
            Err(e) if e.is_not_found() => gone.push(o.clone()),
            Err(e) => errs.push(format!("cannot undo `{}`: {e}", op.summary())),
        }
    };
    let mut links = Vec::new();
    let mut vanishing = Vec::new();
    for o in owns.iter().rev() {
        match o {
            Owned::Netns { .. } => {}
            _ if o.ns().is_some_and(|n| doomed.contains(n)) => gone.push(o.clone()),
            Owned::Link {
                peer_ns: Some(p), ..
            } if doomed.contains(p) => vanishing.push(o.clone()),
            Owned::Link { .. } => links.push(o.clone()),
            _ => undo(kernel, o, &mut gone),
        }
    }
    for o in owns.iter().rev() {
        if let Owned::Netns { .. } = o {
            undo(kernel, o, &mut gone);
        }
    }
    // The kernel destroys a dead namespace's devices asynchronously; wait
    // for the veth ends outside it, so `down` returns on the final state.
    // A namespace kept alive by a process inside never lets go: when the
    // count stops falling for a while, delete those ends ourselves.
    let mut last_progress = std::time::Instant::now();
    let mut left = vanishing.len();
    while !vanishing.is_empty() {
        let mut by_ns: Vec<NsRef> = vanishing.iter().filter_map(|o| o.ns().cloned()).collect();
        by_ns.sort();
        by_ns.dedup();
        let mut still = Vec::new();
        for ns in by_ns {
            let Ok(st) = kernel.observe(&ns) else {
                continue;
            };
            for o in &vanishing {
                if let Owned::Link { ns: n, name, .. } = o
                    && n == &ns
                    && st.link(name.as_str()).is_some()
                {
                    still.push(o.clone());
                }
            }
        }
        gone.extend(vanishing.iter().filter(|o| !still.contains(o)).cloned());
        vanishing = still;
        if vanishing.len() < left {
            left = vanishing.len();
            last_progress = std::time::Instant::now();
        }
        if vanishing.is_empty() {
            break;
        }
        if last_progress.elapsed() > std::time::Duration::from_millis(400) {
            links.splice(0..0, vanishing.drain(..));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for o in &links {
        undo(kernel, o, &mut gone);
    }
    if let Some(l) = ledger.as_mut()
        && let Err(e) = l.remove(&gone)
    {
        errs.push(e.to_string());
    }
    errs
}
