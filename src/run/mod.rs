//! A run of one topology: the desired model the script builds, the kernel,
//! the ledger, and what this run changed (for rollback).

use std::collections::HashSet;
use std::io::IsTerminal;
use std::time::Duration;

use crate::kernel::{Kernel, KernelError};
use crate::ledger::{Entry, Ledger, LedgerError, World, WorldLock};
use crate::model::{IfName, NsRef};
use crate::op::{LinkChange, Op};
use crate::plan::{self, DiffError, Intent, Step};
use crate::topo::{Mark, Pos, Topology};

mod asserts;
mod daemon;
mod identity;
mod ready;
mod teardown;
mod undo;

pub use asserts::{Assertion, Checked, Target};
pub use teardown::{TeardownError, describe as describe_teardown, teardown};

/// The kernel refused an op: what, where, and the script line it came from.
#[derive(Debug, thiserror::Error)]
#[error("{what} failed: {err}")]
pub struct ApplyError {
    pub what: String,
    pub ns: NsRef,
    pub err: KernelError,
    pub pos: Pos,
    pub help: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Diff(Box<DiffError>),
    #[error(transparent)]
    Apply(Box<ApplyError>),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{}", teardown::describe(.0))]
    Teardown(Vec<TeardownError>),
    #[error(transparent)]
    Site(#[from] crate::site::SiteError),
}

impl From<DiffError> for RunError {
    fn from(e: DiffError) -> Self {
        RunError::Diff(Box::new(e))
    }
}

/// A snapshot of a runner's model (see `Runner::checkpoint`).
#[derive(Debug, Clone)]
pub struct Checkpoint {
    topo: Kept,
    done: usize,
}

/// With sites the runner's model is swapped for each site's part: the
/// namespaces of the one taken cannot be found again, so it is kept whole.
#[derive(Debug, Clone)]
enum Kept {
    Whole(Topology),
    Snapshot(crate::topo::Snapshot),
}

/// How long `ping()`, `exec()` and the end of `up` wait for links to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How ops reach the world: applied, or only recorded (`plan`, `check`).
pub struct Runner {
    pub topo: Topology,
    pub name: String,
    /// The main script's file name, for positions other topologies see.
    pub script: String,
    kernel: Box<dyn Kernel>,
    ledger: Option<Ledger>,
    /// Where the steps applied since the last `commit` start in `done`:
    /// what a failure rolls back (an index, not a copy: at tens of
    /// thousands of steps a copy is megabytes).
    journal_from: usize,
    /// Ledger-only claims and releases since the last commit.
    claimed: Vec<Entry>,
    released: Vec<Entry>,
    /// Every step applied in this run, for `plan` output and the summary.
    pub done: Vec<Step>,
    /// What was left alone and why (shared objects), for the summary.
    pub notes: Vec<String>,
    /// Questions the kernel was not asked (the recording fake runs no
    /// programs and sends no packets): results the script got were made up.
    pub not_run: Vec<String>,
    pub verbose: bool,
    pub quiet: bool,
    /// Print each change as it is applied (the REPL's "+ netns foons").
    pub echo: bool,
    /// A convergence failure inside exec()/ping(), reported by the edge.
    pub failed: Option<RunError>,
    /// `check`: the ledger to diff against, read without the lock.
    assumed: Vec<Entry>,
    /// Without a ledger, still read the other topologies' records (for
    /// `check NAME` and `plan --diff`, which must plan what `up` would).
    pub read_world: bool,
    /// The model's revision at the last successful flush.
    flushed: Option<u64>,
    /// The model as the kernel was last converged to it, and as it was at
    /// the last commit (what `prev_intent` was made of): a model that only
    /// gained namespaces since is planned and flattened for those alone.
    /// Forgotten whenever the model is replaced or the kernel may differ.
    converged: Option<Mark>,
    committed: Option<Mark>,
    /// The NAT fingerprints of the last full diff, with the model's
    /// revision they were made of (see `Runner::intent`).
    nat_prints: Option<(u64, plan::NatPrints)>,
    /// What the script asked for when the topology was last committed.
    pub prev_intent: Intent,
    /// Links confirmed ready since they were brought up.
    ready: HashSet<(NsRef, IfName)>,
    /// Commit compacts the ledger only once it is half garbage (the REPL
    /// commits after every statement).
    pub lazy_compact: bool,
    /// `assert_reach` / `assert_no_reach`, run after the topology is up.
    pub asserts: Vec<Assertion>,
    /// The script's sites; `topo` is the selected one's part (issue 19).
    pub sites: crate::site::Sites,
}

fn help_for(op: &Op, e: &KernelError) -> Option<String> {
    match e.errno {
        Some(libc::EPERM) | Some(libc::EACCES) => Some("run as root or add --sandbox".into()),
        Some(libc::EEXIST) if matches!(op, Op::AddAddr { .. }) => Some(
            "that address is already on the device (lo has 127.0.0.1/8 and ::1/128 from the start)"
                .into(),
        ),
        Some(libc::EEXIST) if matches!(op, Op::AddRoute { .. }) => Some(
            "the namespace already has a route to that destination: remove it, or let netplumb replace its own"
                .into(),
        ),
        Some(libc::EEXIST)
            if matches!(
                op,
                Op::AddLink {
                    spec: crate::op::LinkSpec::Vxlan { .. },
                    ..
                }
            ) =>
        {
            Some(
                "a vxlan with this VNI and port already exists on this machine's UDP socket (it may be in another namespace): pick another #{ vni }, or remove it"
                    .into(),
            )
        }
        Some(libc::EEXIST) => Some(
            "the name was taken by someone else since the plan was made: pick another, or remove the existing object"
                .into(),
        ),
        Some(libc::ENODEV) => Some("no such device: check the link's name and namespace".into()),
        Some(libc::ERANGE) | Some(libc::EINVAL)
            if matches!(
                op,
                Op::SetLink {
                    change: LinkChange::Mtu(_),
                    ..
                }
            ) =>
        {
            Some("that MTU is outside what the device accepts (veth and bridges: 68–65535)".into())
        }
        Some(libc::ENETUNREACH) => {
            Some("the gateway must be on a subnet of one of the namespace's addresses".into())
        }
        Some(libc::EMFILE) | Some(libc::ENFILE) => {
            Some("too many open files: raise the limit (ulimit -n)".into())
        }
        _ => None,
    }
}

impl Runner {
    pub fn new(
        name: &str,
        kernel: Box<dyn Kernel>,
        ledger: Option<Ledger>,
    ) -> Result<Self, RunError> {
        crate::ledger::check_topology_name(name)?;
        Ok(Self {
            topo: Topology::default(),
            name: name.to_string(),
            script: String::new(),
            kernel,
            ledger,
            journal_from: 0,
            claimed: Vec::new(),
            released: Vec::new(),
            done: Vec::new(),
            notes: Vec::new(),
            not_run: Vec::new(),
            verbose: false,
            quiet: false,
            echo: false,
            failed: None,
            assumed: Vec::new(),
            read_world: false,
            flushed: None,
            converged: None,
            committed: None,
            nat_prints: None,
            prev_intent: Intent::new(),
            ready: HashSet::new(),
            lazy_compact: false,
            asserts: Vec::new(),
            sites: crate::site::Sites::default(),
        })
    }

    pub fn kernel(&mut self) -> &mut dyn Kernel {
        self.kernel.as_mut()
    }

    pub fn has_ledger(&self) -> bool {
        self.ledger.is_some()
    }

    pub fn owned(&self) -> &[Entry] {
        self.ledger
            .as_ref()
            .map(|l| l.entries())
            .unwrap_or(&self.assumed)
    }

    /// Diff as if `owned` were this topology's ledger (for `check` and
    /// `plan --diff`, which read the ledger without taking the lock).
    pub fn assume_owned(&mut self, owned: Vec<Entry>) {
        self.assumed = owned;
    }

    /// Does this step put back something the script did not change (drift
    /// behind the topology's back: a namespace deleted, a link downed, NAT
    /// flushed)? Everything else is an edit of the script.
    pub fn is_repair(&self, s: &Step, now: &Intent) -> bool {
        match &s.key {
            Some(k) => self
                .prev_intent
                .get(k)
                .is_some_and(|v| now.get(k) == Some(v)),
            None => false,
        }
    }

    pub fn note_not_run(&mut self, what: String) {
        self.not_run.push(what);
    }

    /// `-v`: where the kernel time went, per phase.
    fn print_timings(&self) {
        for (what, count, d) in self.kernel.timings() {
            eprintln!("netplumb:   {what:<26} {count:>6} ops {d:>12.2?}");
        }
    }

    /// Converge the kernel to the model as declared so far. When nothing was
    /// declared since the last successful flush, the kernel is not re-read:
    /// a script pinging in a loop must not re-dump every namespace each time.
    pub fn flush(&mut self) -> Result<usize, RunError> {
        // Only the selected site's part is ever diffed.
        self.sites.check_selected(self.ledger.is_some())?;
        self.sites.restore(&mut self.topo);
        self.topo.settle_stretch_mtu();
        let rev = self.topo.revision();
        if self.flushed == Some(rev) {
            return Ok(0);
        }
        let n = match self.flush_now() {
            Ok(n) => n,
            Err(e) => {
                self.converged = None;
                return Err(e);
            }
        };
        self.flushed = Some(rev);
        self.converged = Some(self.topo.mark());
        Ok(n)
    }

    /// The model to plan when only namespaces were declared since the
    /// kernel was last converged, in a model of nothing else: just those
    /// namespaces. The rest is as it was planned then, and a plan of it
    /// now would change nothing (the session's cached kernel reads back
    /// only what the session itself changed). The owned entries are then
    /// all namespaces, and those of other names are not this plan's.
    fn added_only(&self) -> Option<(Topology, Vec<Entry>)> {
        if self.sites.any() || !self.topo.only_namespaces() {
            return None;
        }
        let new = self.topo.ns_added_since(self.converged.as_ref()?)?;
        let owned = self.owned();
        if !owned.iter().all(|e| matches!(e, Entry::Netns { .. })) {
            return None;
        }
        let names: HashSet<&crate::model::NsName> = new.iter().map(|n| &n.name).collect();
        let mine = owned
            .iter()
            .filter(|e| matches!(e, Entry::Netns { ns, .. } if names.contains(ns)))
            .cloned()
            .collect();
        Some((self.topo.of_namespaces(new), mine))
    }

    fn flush_now(&mut self) -> Result<usize, RunError> {
        // Other topologies' records only mean something while they cannot
        // change: decide and act under the world lock.
        let _world_lock = match &self.ledger {
            Some(_) => Some(WorldLock::acquire()?),
            None => None,
        };
        let world = if self.ledger.is_some() || self.read_world {
            World::load(&self.name)?
        } else {
            World::default()
        };
        if self.verbose {
            for d in &world.damaged {
                eprintln!("netplumb: note: {d} (that topology's objects are not considered)");
            }
        }
        if self.sites.any() && (self.ledger.is_some() || self.read_world) {
            let host = self.kernel.observe(&NsRef::Host).ok();
            let others = crate::site::collide::others(&world);
            crate::site::collide::check(&self.topo, &others, host.as_ref())?;
        }
        let t0 = std::time::Instant::now();
        self.nat_prints = None;
        let d = match self.added_only() {
            Some((topo, owned)) => plan::diff(
                &topo,
                self.kernel.as_mut(),
                &self.name,
                &self.script,
                &owned,
                &world,
            )?,
            None => {
                // Borrowed field by field: a copy of the ledger per flush
                // was a REPL statement's cost in a long session.
                let owned = match &self.ledger {
                    Some(l) => l.entries(),
                    None => &self.assumed,
                };
                let mut d = plan::diff(
                    &self.topo,
                    self.kernel.as_mut(),
                    &self.name,
                    &self.script,
                    owned,
                    &world,
                )?;
                // With sites the model diffed is one site's part.
                if !self.sites.any() {
                    let prints = std::mem::take(&mut d.nat_prints);
                    self.nat_prints = Some((self.topo.revision(), prints));
                }
                d
            }
        };
        if self.verbose {
            eprintln!("netplumb: diff {} ops in {:?}", d.steps.len(), t0.elapsed());
        }
        let n = d.steps.len();
        self.notes.extend(d.notes);
        if let Some(l) = self.ledger.as_mut() {
            l.add(&d.claims)?;
        }
        self.claimed.extend(d.claims);
        self.apply_steps(d.steps)?;
        if let Some(l) = self.ledger.as_mut() {
            l.remove(&d.releases)?;
        }
        self.released.extend(d.releases);
        if self.verbose {
            eprintln!("netplumb: applied {n} ops in {:?}", t0.elapsed());
            self.print_timings();
        }
        Ok(n)
    }

    /// Kernel steps go in batches; a daemon is started on its own, between
    /// them, because its record can only be written once it exists.
    fn apply_steps(&mut self, mut steps: Vec<Step>) -> Result<(), RunError> {
        // The plan's own list becomes `done` (or is moved onto its end), and
        // the steps are applied where they are: one list of every step
        // (megabytes at thousands of namespaces), not two.
        let mut kept = self.done.len();
        if kept == 0 {
            // It grew by doubling: up to half of its room is empty.
            steps.shrink_to_fit();
            self.done = steps;
        } else {
            self.done.append(&mut steps);
        }
        let res = self.apply_pending(&mut kept);
        // Whatever failed or was never sent is not done.
        self.done.truncate(kept);
        res
    }

    /// Apply `done[*kept..]`; `done[..*kept]` is what was applied.
    fn apply_pending(&mut self, kept: &mut usize) -> Result<(), RunError> {
        loop {
            let len = self.done[*kept..]
                .iter()
                .take_while(|s| !matches!(s.op, Op::StartDaemon { .. }))
                .count();
            self.apply_batch(kept, len)?;
            if *kept == self.done.len() {
                return Ok(());
            }
            // settle() before the daemon reads `done`: the steps after it
            // are not applied yet.
            let mut after = self.done.split_off(*kept + 1);
            if let Some(s) = self.done.pop() {
                self.start_daemon(s)?;
            }
            *kept = self.done.len();
            self.done.append(&mut after);
        }
    }

    /// The `len` steps of `done` from `*kept`, applied where they are: each
    /// one applied is moved down to `*kept`, which then counts it.
    fn apply_batch(&mut self, kept: &mut usize, len: usize) -> Result<(), RunError> {
        if len == 0 {
            return Ok(());
        }
        let (from, end) = (*kept, *kept + len);
        // Write ahead: every object is in the ledger before the kernel
        // sees the request that creates it.
        if let Some(l) = self.ledger.as_mut() {
            l.add(self.done[from..end].iter().flat_map(|s| &s.records))?;
        }
        let bar = progress(len, self.quiet);
        const CHUNK: usize = 512;
        for at in (from..end).step_by(CHUNK) {
            let to = (at + CHUNK).min(end);
            let ops: Vec<Op> = self.done[at..to]
                .iter_mut()
                .map(|s| {
                    let stand_in = stand_in(&s.op);
                    std::mem::replace(&mut s.op, stand_in)
                })
                .collect();
            let out = self.kernel.apply_all(&ops);
            for (s, op) in self.done[at..to].iter_mut().zip(ops) {
                s.op = op;
            }
            let failure = out.failed.map(|(i, err)| {
                let failed = &self.done[at + i];
                ApplyError {
                    help: help_for(&failed.op, &err),
                    what: failed.op.action(),
                    ns: failed.op.ns(),
                    pos: self.nat_pos(&err).unwrap_or_else(|| failed.pos.clone()),
                    err,
                }
            });
            let mut confirms = Vec::new();
            let mut retired = Vec::new();
            let mut never = Vec::new();
            for (k, made) in (at..to).zip(out.applied.iter()) {
                let s = &mut self.done[k];
                match made {
                    Some(m) => {
                        if self.echo {
                            println!("{}", s.op.summary());
                        }
                        identity::confirm(s, m, &mut confirms);
                        retired
                            .extend(s.retires.iter().filter(|r| !s.records.contains(r)).cloned());
                        self.done.swap(*kept, k);
                        *kept += 1;
                    }
                    // Refused or never sent: nothing of it exists, and its
                    // record must not make anyone delete a namesake.
                    None => never.append(&mut s.records),
                }
            }
            if let Some(l) = self.ledger.as_mut() {
                l.replace(&confirms)?;
                l.remove(&retired)?;
            }
            if let Some(b) = &bar {
                b.inc((to - at) as u64);
            }
            if let Some(e) = failure {
                // Steps after this chunk were recorded ahead too.
                for s in &mut self.done[to..end] {
                    never.append(&mut s.records);
                }
                if let Some(l) = self.ledger.as_mut() {
                    l.remove(&never)?;
                }
                if let Some(b) = &bar {
                    b.abandon();
                }
                return Err(RunError::Apply(Box::new(e)));
            }
        }
        // Steps that were not applied, with no failure reported: gone.
        self.done.drain(*kept..end);
        if let Some(l) = self.ledger.as_mut() {
            l.forget_positions();
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        Ok(())
    }

    fn nat_pos(&self, err: &KernelError) -> Option<Pos> {
        err.tag
            .and_then(|t| self.topo.nat().get(t))
            .map(|d| d.pos.clone())
    }

    /// What the script asks for now (`plan::intent`), taking the NAT
    /// fingerprints of the last diff when the model has not changed since:
    /// the revision moves with every declaration, as `flush` relies on too.
    pub fn intent(&self) -> Intent {
        match &self.nat_prints {
            Some((rev, prints)) if *rev == self.topo.revision() && !self.sites.any() => {
                plan::intent_given(&self.topo, &self.name, prints)
            }
            _ => plan::intent(&self.topo, &self.name),
        }
    }

    /// The changes since the last commit are final.
    pub fn commit(&mut self) -> Result<(), RunError> {
        let mark = self.committed.take();
        self.commit_last()?;
        let added = match &mark {
            Some(m) if !self.sites.any() => self.topo.ns_added_since(m),
            _ => None,
        };
        match added {
            Some(new) => plan::add_namespaces(&mut self.prev_intent, new),
            None => self.prev_intent = self.intent(),
        }
        self.committed = Some(self.topo.mark());
        Ok(())
    }

    /// Close the ledger, releasing the topology's lock.
    pub fn close_ledger(&mut self) {
        self.ledger = None;
    }

    /// `commit` at the end of a run: `prev_intent` is left as it was (the
    /// run is over; working it out again is megabytes at thousands of
    /// namespaces).
    pub fn commit_last(&mut self) -> Result<(), RunError> {
        self.journal_from = self.done.len();
        self.claimed.clear();
        self.released.clear();
        if let Some(l) = self.ledger.as_mut() {
            if self.lazy_compact {
                l.compact_amortized()?;
            } else {
                l.compact()?;
            }
        }
        // prev_intent is now behind the model: a later commit works it out whole.
        self.committed = None;
        Ok(())
    }

    /// Forget the marks: the model was replaced, or the kernel may no
    /// longer be what it was converged to.
    fn unmark(&mut self) {
        self.converged = None;
        self.committed = None;
    }

    /// Remove everything the topology owns (`down`), leaving what other
    /// topologies still use. Returns how many objects were removed.
    pub fn down(&mut self) -> Result<usize, RunError> {
        self.flushed = None;
        self.unmark();
        let _world_lock = match &self.ledger {
            Some(_) => Some(WorldLock::acquire()?),
            None => None,
        };
        let world = match &self.ledger {
            Some(_) => World::load(&self.name)?,
            None => World::default(),
        };
        let owns: Vec<Entry> = self.owned().to_vec();
        let t0 = std::time::Instant::now();
        let report = teardown(self.kernel.as_mut(), self.ledger.as_mut(), &owns, &world);
        let had_daemons = owns.iter().any(|e| matches!(e, Entry::Daemon { .. }));
        if had_daemons && report.errors.is_empty() {
            self.kernel.daemons_gone(&self.name);
        }
        if self.verbose {
            eprintln!(
                "netplumb: teardown of {} objects in {:?}",
                owns.len(),
                t0.elapsed()
            );
            self.print_timings();
        }
        self.notes.extend(report.notes);
        if let Some(l) = self.ledger.as_mut() {
            l.compact()?;
        }
        self.prev_intent.clear();
        if report.errors.is_empty() {
            Ok(report.removed)
        } else {
            Err(RunError::Teardown(report.errors))
        }
    }
}

/// What stays in a step while its op is lent to the kernel: a copy, except
/// that a NAT table is left behind empty (copying 100,000 mappings to send
/// them is most of what sending them costs).
fn stand_in(op: &Op) -> Op {
    match op {
        Op::ReplaceNat {
            ns,
            table: _,
            replaces,
        } => Op::ReplaceNat {
            ns: ns.clone(),
            table: Box::default(),
            replaces: *replaces,
        },
        other => other.clone(),
    }
}

fn progress(n: usize, quiet: bool) -> Option<indicatif::ProgressBar> {
    if quiet || n < 200 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(n as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} ops {elapsed}")
    {
        bar.set_style(style);
    }
    Some(bar)
}

#[cfg(test)]
mod tests;
