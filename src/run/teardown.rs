//! Undoing what a topology owns, for `down`: newest first, in an order the
//! kernel does quickly — settings, addresses and devices put back home,
//! then whole namespaces (which take their links, and the far ends of their
//! veths, with them), then the remaining links. Objects another topology
//! still uses are left to it; objects whose identity does not match the
//! record are someone else's and left alone. What is already gone counts
//! as removed; every failure is collected and none stops the rest.

use std::collections::HashSet;
use std::time::Duration;

use crate::kernel::{Kernel, KernelError, NsState};
use crate::ledger::{Entry, Ledger, LedgerError, MadeKind, World};
use crate::model::NsRef;
use crate::op::Op;

#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    #[error("cannot undo `{what}`: {err}")]
    Kernel { what: String, err: KernelError },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl TeardownError {
    pub fn kernel(what: String, err: KernelError) -> Self {
        TeardownError::Kernel { what, err }
    }
    pub fn ledger(e: LedgerError) -> Self {
        TeardownError::Ledger(e)
    }
}

/// Each error on a line of its own.
pub fn describe(errs: &[TeardownError]) -> String {
    errs.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Debug, Default)]
pub struct TeardownReport {
    pub removed: usize,
    pub notes: Vec<String>,
    pub errors: Vec<TeardownError>,
}

struct Run<'a> {
    kernel: &'a mut dyn Kernel,
    gone: Vec<Entry>,
    /// The links of `gone` that were forgotten without being deleted.
    left: Vec<Entry>,
    report: TeardownReport,
}

impl Run<'_> {
    fn undo(&mut self, e: &Entry) {
        for op in e.undo_ops() {
            match self.kernel.apply(&op) {
                Ok(_) => {}
                Err(err) if err.is_not_found() => {}
                Err(err) => {
                    self.report.errors.push(TeardownError::Kernel {
                        what: op.summary(),
                        err,
                    });
                    return;
                }
            }
        }
        self.done(e);
    }
    /// Entries of one op each, in one batch (the kernel side deletes a run
    /// of namespaces on several threads); what the batch did not get to is
    /// undone one by one.
    fn undo_many(&mut self, es: &[&Entry]) {
        let ops: Vec<Op> = es.iter().flat_map(|e| e.undo_ops()).collect();
        if ops.len() != es.len() {
            for e in es {
                self.undo(e);
            }
            return;
        }
        let out = self.kernel.apply_all(&ops);
        let failed = out.failed.as_ref().map(|(i, _)| *i);
        let mut err = out.failed.map(|(_, e)| e);
        for (i, e) in es.iter().enumerate() {
            if out.applied.get(i).is_some_and(Option::is_some) {
                self.done(e);
            } else if Some(i) == failed {
                match err.take() {
                    Some(k) if !k.is_not_found() => {
                        self.report.errors.push(TeardownError::Kernel {
                            what: ops[i].summary(),
                            err: k,
                        })
                    }
                    _ => self.done(e),
                }
            } else {
                self.undo(e);
            }
        }
    }
    fn done(&mut self, e: &Entry) {
        if matches!(e, Entry::Netns { .. } | Entry::Link { .. }) {
            self.report.removed += 1;
        }
        self.gone.push(e.clone());
    }
    /// Forget without touching: another topology's, or not ours after all.
    fn leave(&mut self, e: &Entry, note: String) {
        self.report.notes.push(note);
        if matches!(e, Entry::Link { .. }) {
            self.left.push(e.clone());
        }
        self.gone.push(e.clone());
    }
}

/// Is this namespace still the one the record describes? A name recorded
/// but never made (a run killed right after its write-ahead record) may
/// belong to someone else by now.
fn netns_is_ours(kernel: &mut dyn Kernel, e: &Entry) -> Result<bool, KernelError> {
    let Entry::Netns { ns, ino } = e else {
        return Ok(false);
    };
    match (ino, kernel.netns_ino(ns)?) {
        (_, None) => Ok(true),
        (Some(want), Some(have)) => Ok(*want == have),
        (None, Some(_)) => {
            // No identity recorded: netplumb marks the namespaces it makes
            // (an alias on their lo); trust only that.
            let st = kernel.observe(&NsRef::Named(ns.clone()))?;
            Ok(st
                .link("lo")
                .and_then(|l| l.alias.as_deref())
                .is_some_and(crate::kernel::is_netns_marker))
        }
    }
}

pub fn teardown(
    kernel: &mut dyn Kernel,
    ledger: Option<&mut Ledger>,
    owns: &[Entry],
    world: &World,
) -> TeardownReport {
    let mut run = Run {
        kernel,
        gone: Vec::new(),
        left: Vec::new(),
        report: TeardownReport::default(),
    };
    // Processes first, their whole trees, by identity: before the
    // namespaces and links they use go away.
    for e in owns.iter().rev() {
        if let Entry::Daemon { .. } = e {
            run.undo(e);
        }
    }
    // Sets, not lists: each owned entry asks whether its namespace goes.
    let mut doomed: HashSet<NsRef> = HashSet::new();
    for e in owns {
        let Entry::Netns { ns, .. } = e else { continue };
        if let Some(other) = world.claimant_of(e) {
            run.leave(
                e,
                format!("netns {ns}: still used by topology '{other}', left to it"),
            );
            continue;
        }
        match netns_is_ours(run.kernel, e) {
            Ok(true) => {
                doomed.insert(NsRef::Named(ns.clone()));
            }
            Ok(false) => run.leave(
                e,
                format!("netns {ns} is not the one this topology made: left alone"),
            ),
            Err(err) => run.report.errors.push(TeardownError::Kernel {
                what: format!("- netns {ns}"),
                err,
            }),
        }
    }
    let mut links = Vec::new();
    let mut vanishing = Vec::new();
    let mut far_ends: Vec<(NsRef, String)> = Vec::new();
    // An address on a link this teardown deletes goes with the link: its
    // own removal would cost a read of the links and a request, before the
    // namespaces' deletion can start.
    let going: HashSet<(&NsRef, &str)> = owns
        .iter()
        .filter_map(|o| match o {
            Entry::Link { ns, name, .. }
                if !doomed.contains(ns) && world.claimant_of(o).is_none() =>
            {
                Some((ns, name.as_str()))
            }
            _ => None,
        })
        .collect();
    let mut with_link = Vec::new();
    for o in owns.iter().rev() {
        let inside_doomed = o.ns().is_some_and(|n| doomed.contains(n));
        match o {
            Entry::Netns { .. } | Entry::Daemon { .. } => {}
            // Outside the namespace (/etc/netns): removed, or put back.
            Entry::File { .. } => run.undo(o),
            // Home before its namespace goes: a virtual device would die
            // with it, a physical one would land in the wrong place.
            Entry::LinkPlace { .. } => run.undo(o),
            _ if inside_doomed => {
                // A veth made from inside the namespace: its other end,
                // outside, goes when the kernel destroys the namespace, later.
                if let Entry::Link { peer: Some(p), .. } = o
                    && !doomed.contains(&p.ns)
                {
                    far_ends.push((p.ns.clone(), p.name.to_string()));
                }
                run.done(o)
            }
            Entry::Link { ns, name, .. } if world.claimant_of(o).is_some() => {
                let other = world.claimant_of(o).unwrap_or_default().to_string();
                run.leave(
                    o,
                    format!(
                        "link {name} in netns {ns}: still used by topology '{other}', left to it"
                    ),
                );
            }
            Entry::Addr { ns, dev, cidr } if world.claimant_of(o).is_some() => {
                let other = world.claimant_of(o).unwrap_or_default().to_string();
                run.leave(
                    o,
                    format!("addr {cidr} on {dev} in netns {ns}: still used by topology '{other}', left to it"),
                );
            }
            Entry::Addr { ns, dev, .. } if going.contains(&(ns, dev.as_str())) => with_link.push(o),
            Entry::Link { peer: Some(p), .. } if doomed.contains(&p.ns) => {
                vanishing.push(o.clone())
            }
            Entry::Link { .. } => links.push(o.clone()),
            Entry::Sysctl { ns, key, .. } if world.sysctl_claims(o).next().is_some() => {
                let other = world
                    .sysctl_claims(o)
                    .next()
                    .map(|(n, _)| n.to_string())
                    .unwrap_or_default();
                run.leave(
                    o,
                    format!(
                        "sysctl {} in netns {ns}: still needed by topology '{other}', left as it is",
                        key.as_str()
                    ),
                );
            }
            _ => run.undo(o),
        }
    }
    let netns: Vec<&Entry> = owns
        .iter()
        .rev()
        .filter(
            |o| matches!(o, Entry::Netns { ns, .. } if doomed.contains(&NsRef::Named(ns.clone()))),
        )
        .collect();
    run.undo_many(&netns);
    wait_vanished(&mut run, &mut vanishing, &far_ends, &mut links);
    let links = by_identity(&mut run, links);
    for o in &links {
        run.undo(o);
    }
    // Those whose link was left (another device at its index now) are
    // removed as they would have been.
    let deleted: HashSet<(&NsRef, &str)> = run
        .gone
        .iter()
        .filter(|o| !run.left.contains(o))
        .filter_map(|o| match o {
            Entry::Link { ns, name, .. } => Some((ns, name.as_str())),
            _ => None,
        })
        .collect();
    let (went, left): (Vec<&Entry>, Vec<&Entry>) = with_link.into_iter().partition(
        |o| matches!(o, Entry::Addr { ns, dev, .. } if deleted.contains(&(ns, dev.as_str()))),
    );
    for o in went {
        run.done(o);
    }
    for o in left {
        run.undo(o);
    }
    if let Some(l) = ledger
        && let Err(e) = l.remove(&run.gone)
    {
        run.report.errors.push(TeardownError::Ledger(e));
    }
    run.report
}

/// The kernel destroys a dead namespace's devices asynchronously; wait for
/// the veth ends outside it, so `down` returns on the final state. A
/// namespace kept alive by a process inside never lets go: when the count
/// stops falling for a while, delete those ends ourselves. `far_ends`: ends
/// whose record went with their namespace's (the veth was made from
/// inside it), waited for alike but, recorded nowhere, never deleted here.
fn wait_vanished(
    run: &mut Run,
    vanishing: &mut Vec<Entry>,
    far_ends: &[(NsRef, String)],
    links: &mut Vec<Entry>,
) {
    let mut by_ns: Vec<NsRef> = vanishing
        .iter()
        .filter_map(|o| o.ns().cloned())
        .chain(far_ends.iter().map(|(ns, _)| ns.clone()))
        .collect();
    by_ns.sort();
    by_ns.dedup();
    let mut stuck: HashSet<(NsRef, String)> = HashSet::new();
    for ns in by_ns {
        let names: Vec<String> = vanishing
            .iter()
            .filter_map(|o| match o {
                Entry::Link { ns: n, name, .. } if n == &ns => Some(name.to_string()),
                _ => None,
            })
            .chain(
                far_ends
                    .iter()
                    .filter(|(n, _)| n == &ns)
                    .map(|(_, name)| name.clone()),
            )
            .collect();
        // A namespace that cannot be read has nothing left to wait for.
        if let Ok(left) = run
            .kernel
            .wait_links_gone(&ns, &names, Duration::from_millis(400))
        {
            stuck.extend(left.into_iter().map(|n| (ns.clone(), n)));
        }
    }
    let mut held_back = Vec::new();
    for o in std::mem::take(vanishing) {
        let held = match &o {
            Entry::Link { ns, name, .. } => stuck.contains(&(ns.clone(), name.to_string())),
            _ => false,
        };
        if held {
            held_back.push(o);
        } else {
            run.done(&o);
        }
    }
    links.splice(0..0, held_back);
}

/// Links are deleted by the ifindex the kernel gave them, whatever their
/// name now. One renamed since (by someone else: a namesake may have taken
/// its old name) is said so; a device of another kind at that index is not
/// the one this topology made and is left alone.
fn by_identity(run: &mut Run, links: Vec<Entry>) -> Vec<Entry> {
    let mut seen: Vec<(NsRef, Option<NsState>)> = Vec::new();
    let mut keep = Vec::with_capacity(links.len());
    for o in links {
        let Entry::Link {
            ns,
            name,
            kind,
            index: Some(i),
            ..
        } = &o
        else {
            keep.push(o);
            continue;
        };
        if !seen.iter().any(|(n, _)| n == ns) {
            let st = run.kernel.observe(ns).ok();
            seen.push((ns.clone(), st));
        }
        let now = seen
            .iter()
            .find(|(n, _)| n == ns)
            .and_then(|(_, st)| st.as_ref())
            .and_then(|st| st.link_by_index(*i));
        let Some(now) = now else {
            keep.push(o);
            continue;
        };
        let made = match kind {
            MadeKind::Bridge => "bridge",
            MadeKind::Veth => "veth",
            MadeKind::Macvlan => "macvlan",
            MadeKind::Vxlan => "vxlan",
            // tap devices read back as kind tun too
            MadeKind::Tun => "tun",
        };
        let same_kind = now.kind.as_deref() == Some(made);
        if !same_kind {
            let note = format!(
                "link {name} in netns {ns}: ifindex {i} is now {}, not the {} this topology made: left alone",
                now.name, made
            );
            run.leave(&o, note);
        } else {
            if now.name != name.as_str() {
                run.report.notes.push(format!(
                    "link {name} in netns {ns} was renamed to {} since (ifindex {i}): removed by its identity, the name {name} left to whoever has it",
                    now.name
                ));
            }
            keep.push(o);
        }
    }
    keep
}
