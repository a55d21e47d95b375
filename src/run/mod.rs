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
use crate::topo::{Pos, Topology};

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
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    topo: Topology,
    done: usize,
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
    /// Steps applied since the last `commit`: what a failure rolls back.
    journal: Vec<Step>,
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
            journal: Vec::new(),
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
        let n = self.flush_now()?;
        self.flushed = Some(rev);
        Ok(n)
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
        let owned: Vec<Entry> = self.owned().to_vec();
        let t0 = std::time::Instant::now();
        let d = plan::diff(
            &self.topo,
            self.kernel.as_mut(),
            &self.name,
            &self.script,
            &owned,
            &world,
        )?;
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
    fn apply_steps(&mut self, steps: Vec<Step>) -> Result<(), RunError> {
        // Sized once: these lists hold every step (megabytes at thousands
        // of namespaces), and growing them by doubling briefly holds two.
        let mut batch = Vec::with_capacity(steps.len());
        self.journal.reserve(steps.len());
        self.done.reserve(steps.len());
        for s in steps {
            if matches!(s.op, Op::StartDaemon { .. }) {
                self.apply_batch(std::mem::take(&mut batch))?;
                self.start_daemon(s)?;
            } else {
                batch.push(s);
            }
        }
        self.apply_batch(batch)
    }

    fn apply_batch(&mut self, steps: Vec<Step>) -> Result<(), RunError> {
        if steps.is_empty() {
            return Ok(());
        }
        // Write ahead: every object is in the ledger before the kernel
        // sees the request that creates it.
        if let Some(l) = self.ledger.as_mut() {
            let recs: Vec<Entry> = steps.iter().flat_map(|s| s.records.clone()).collect();
            l.add(&recs)?;
        }
        let bar = progress(steps.len(), self.quiet);
        const CHUNK: usize = 512;
        // Each step is moved into the journal and `done`, not copied: at
        // tens of thousands of steps every copy is megabytes.
        let mut rest = steps.into_iter();
        loop {
            let chunk: Vec<Step> = rest.by_ref().take(CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len();
            let ops: Vec<Op> = chunk.iter().map(|s| s.op.clone()).collect();
            let out = self.kernel.apply_all(&ops);
            drop(ops);
            let failure = out.failed.map(|(i, err)| {
                let failed = &chunk[i];
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
            for (mut s, made) in chunk.into_iter().zip(out.applied.iter()) {
                match made {
                    Some(m) => {
                        if self.echo {
                            println!("{}", s.op.summary());
                        }
                        identity::confirm(&mut s, m, &mut confirms);
                        retired
                            .extend(s.retires.iter().filter(|r| !s.records.contains(r)).cloned());
                        self.journal.push(s.clone());
                        self.done.push(s);
                    }
                    // Refused or never sent: nothing of it exists, and its
                    // record must not make anyone delete a namesake.
                    None => never.extend(s.records),
                }
            }
            if let Some(l) = self.ledger.as_mut() {
                l.replace(&confirms)?;
                l.remove(&retired)?;
            }
            if let Some(b) = &bar {
                b.inc(n as u64);
            }
            if let Some(e) = failure {
                // Steps after this chunk were recorded ahead too.
                never.extend(rest.flat_map(|s| s.records));
                if let Some(l) = self.ledger.as_mut() {
                    l.remove(&never)?;
                }
                if let Some(b) = &bar {
                    b.abandon();
                }
                return Err(RunError::Apply(Box::new(e)));
            }
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

    /// The changes since the last commit are final.
    pub fn commit(&mut self) -> Result<(), RunError> {
        let now = plan::intent(&self.topo, &self.name);
        self.commit_with(now)
    }

    /// `commit`, given the intent of the topology as it is now (`up` has
    /// just computed it for its report; computing it twice showed in the
    /// profile of a no-change `up` of a thousand namespaces).
    pub fn commit_with(&mut self, now: Intent) -> Result<(), RunError> {
        self.journal.clear();
        self.claimed.clear();
        self.released.clear();
        if let Some(l) = self.ledger.as_mut() {
            if self.lazy_compact {
                l.compact_amortized()?;
            } else {
                l.compact()?;
            }
        }
        self.prev_intent = now;
        Ok(())
    }

    /// Remove everything the topology owns (`down`), leaving what other
    /// topologies still use. Returns how many objects were removed.
    pub fn down(&mut self) -> Result<usize, RunError> {
        self.flushed = None;
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
