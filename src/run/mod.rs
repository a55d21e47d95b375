//! A run of one topology: the desired model the script builds, the kernel,
//! the ledger, and what this run changed (for rollback).

use std::collections::HashMap;
use std::io::IsTerminal;

use crate::kernel::{Kernel, KernelError};
use crate::ledger::{self, Ledger, LedgerError, Owned};
use crate::model::NsRef;
use crate::plan::{self, Applied, DiffError, LinkChange, Op, Step};
use crate::topo::{Pos, Topology};

mod teardown;

pub use teardown::{teardown, undo_op};

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
    #[error("{0}")]
    Teardown(String),
}

/// A snapshot of a runner's model (see `Runner::checkpoint`); the default is
/// the empty model, as at the start of a run.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    topo: Topology,
    applied: Applied,
    done: usize,
}

/// How ops reach the world: applied, or only rendered (`plan`).
pub struct Runner {
    pub topo: Topology,
    pub name: String,
    applied: Applied,
    kernel: Box<dyn Kernel>,
    ledger: Option<Ledger>,
    foreign: HashMap<(NsRef, String), String>,
    /// Steps applied since the last `commit`: what a failure rolls back.
    journal: Vec<Step>,
    /// Every step applied in this run, for `plan` output and the summary.
    pub done: Vec<Step>,
    pub verbose: bool,
    pub quiet: bool,
    /// Print each change as it is applied (the REPL's "+ netns foons").
    pub echo: bool,
    /// A convergence failure inside exec()/ping(), reported by the edge.
    pub failed: Option<RunError>,
    assumed: Vec<Owned>,
    /// Fingerprint of the model at the last successful flush.
    flushed: Option<u64>,
    /// The ledger as it was when the run began.
    initial: Vec<Owned>,
}

fn help_for(op: &Op, e: &KernelError) -> Option<String> {
    match e.errno {
        Some(libc::EPERM) | Some(libc::EACCES) => Some("run as root or add --sandbox".into()),
        Some(libc::EEXIST) if matches!(op, Op::AddAddr { .. }) => Some(
            "that address is already on the device (lo has 127.0.0.1/8 and ::1/128 from the start)"
                .into(),
        ),
        Some(libc::EEXIST) => {
            Some("the name is taken: pick another, or remove the existing object".into())
        }
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
        _ => None,
    }
}

impl From<DiffError> for RunError {
    fn from(e: DiffError) -> Self {
        RunError::Diff(Box::new(e))
    }
}

impl Runner {
    pub fn new(
        name: &str,
        kernel: Box<dyn Kernel>,
        ledger: Option<Ledger>,
    ) -> Result<Self, RunError> {
        ledger::check_topology_name(name)?;
        let mut foreign = HashMap::new();
        if ledger.is_some() {
            for other in ledger::list_topologies()? {
                if other == name {
                    continue;
                }
                for o in ledger::read_entries(&other)? {
                    if let Owned::Link { ns, name: l, .. } = o {
                        foreign.insert((ns, l.to_string()), other.clone());
                    }
                }
            }
        }
        let initial = ledger
            .as_ref()
            .map(|l| l.entries().to_vec())
            .unwrap_or_default();
        Ok(Self {
            topo: Topology::default(),
            name: name.to_string(),
            applied: Applied::default(),
            kernel,
            ledger,
            foreign,
            journal: Vec::new(),
            done: Vec::new(),
            verbose: false,
            quiet: false,
            echo: false,
            failed: None,
            assumed: Vec::new(),
            flushed: None,
            initial,
        })
    }

    pub fn kernel(&mut self) -> &mut dyn Kernel {
        self.kernel.as_mut()
    }

    pub fn is_real(&self) -> bool {
        self.kernel.is_real()
    }

    pub fn owned(&self) -> &[Owned] {
        self.ledger
            .as_ref()
            .map(|l| l.entries())
            .unwrap_or(&self.assumed)
    }

    /// Does this step put back something the topology already had (drift
    /// behind its back: a namespace deleted, a link downed, NAT flushed)?
    pub fn is_repair(&self, s: &Step) -> bool {
        if !s.owns.is_empty() {
            return s.owns.iter().all(|o| self.initial.contains(o));
        }
        match &s.op {
            Op::SetLink { ns, name, .. } => self
                .initial
                .iter()
                .any(|o| matches!(o, Owned::Link { ns: n, name: l, .. } if n == ns && l == name)),
            Op::Sysctl { ns, key, .. } => self
                .initial
                .iter()
                .any(|o| matches!(o, Owned::Sysctl { ns: n, key: k, .. } if n == ns && k == key)),
            _ => false,
        }
    }

    /// `-v`: where the kernel time went, per phase.
    fn print_timings(&self) {
        for (what, count, d) in self.kernel.timings() {
            eprintln!("netplumb:   {what:<26} {count:>6} ops {d:>12.2?}");
        }
    }

    /// Diff as if `owned` were this topology's ledger (for `check`, which
    /// reads the ledger without taking the lock).
    pub fn assume_owned(&mut self, owned: Vec<Owned>) {
        self.assumed = owned;
    }

    /// Converge the kernel to the model as declared so far. When nothing was
    /// declared since the last successful flush, the kernel is not re-read:
    /// a script pinging in a loop must not re-dump every namespace each time.
    pub fn flush(&mut self) -> Result<usize, RunError> {
        let fp = fingerprint(&self.topo);
        if self.flushed == Some(fp) {
            return Ok(0);
        }
        let n = self.flush_now()?;
        self.flushed = Some(fp);
        Ok(n)
    }

    fn flush_now(&mut self) -> Result<usize, RunError> {
        let owned: Vec<Owned> = self.owned().to_vec();
        let t0 = std::time::Instant::now();
        let steps = plan::diff(
            &self.topo,
            &mut self.applied,
            self.kernel.as_mut(),
            &self.name,
            &owned,
            &self.foreign,
        )?;
        if self.verbose {
            eprintln!("netplumb: diff {} ops in {:?}", steps.len(), t0.elapsed());
        }
        let n = steps.len();
        self.apply_steps(steps)?;
        if self.verbose {
            eprintln!("netplumb: applied {n} ops in {:?}", t0.elapsed());
            self.print_timings();
        }
        Ok(n)
    }

    fn apply_steps(&mut self, steps: Vec<Step>) -> Result<(), RunError> {
        if steps.is_empty() {
            return Ok(());
        }
        // Write ahead: every object is in the ledger before the kernel
        // sees the request that creates it.
        if let Some(l) = self.ledger.as_mut() {
            let owns: Vec<Owned> = steps.iter().flat_map(|s| s.owns.clone()).collect();
            l.add(&owns)?;
        }
        let bar = progress(steps.len(), self.quiet);
        let mut start = 0;
        const CHUNK: usize = 512;
        while start < steps.len() {
            let end = (start + CHUNK).min(steps.len());
            let ops: Vec<Op> = steps[start..end].iter().map(|s| s.op.clone()).collect();
            let res = self.kernel.apply_all(&ops);
            let ok_upto = match &res {
                Ok(()) => end,
                Err((i, _)) => start + i,
            };
            for s in &steps[start..ok_upto] {
                if self.echo {
                    println!("{}", s.op.summary());
                }
                if let Some(l) = self.ledger.as_mut()
                    && !s.retires.is_empty()
                {
                    l.remove(&s.retires)?;
                }
            }
            if let Some(b) = &bar {
                b.inc((ok_upto - start) as u64);
            }
            if let Err((i, err)) = res {
                let failed = &steps[start + i];
                // The failed step and those after it were recorded but
                // (mostly) never happened: they roll back with the rest.
                self.journal.extend(steps[..start + i].iter().cloned());
                self.done.extend(steps[..start + i].iter().cloned());
                let unapplied: Vec<Owned> = steps[start + i..]
                    .iter()
                    .flat_map(|s| s.owns.clone())
                    .collect();
                self.journal.push(Step {
                    op: failed.op.clone(),
                    pos: failed.pos.clone(),
                    owns: unapplied,
                    retires: vec![],
                });
                if let Some(b) = &bar {
                    b.abandon();
                }
                let what = failed.op.action();
                return Err(RunError::Apply(Box::new(ApplyError {
                    help: help_for(&failed.op, &err),
                    what,
                    ns: failed.op.ns(),
                    pos: self.nat_pos(&err).unwrap_or_else(|| failed.pos.clone()),
                    err,
                })));
            }
            start = end;
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        self.journal.extend(steps.iter().cloned());
        self.done.extend(steps);
        Ok(())
    }

    fn nat_pos(&self, err: &KernelError) -> Option<Pos> {
        err.tag
            .and_then(|t| self.topo.nat.get(t))
            .map(|d| d.pos.clone())
    }

    /// Wait (up to 3 s) until every link this run brought up has carrier as
    /// the kernel sees it: carrier changes reach bridges through the link
    /// watch, up to a second later, and a ping sent before that is lost.
    pub fn settle(&mut self) {
        let mut want: Vec<(NsRef, String)> = self
            .done
            .iter()
            .filter_map(|s| match &s.op {
                Op::SetLink {
                    ns,
                    name,
                    change: LinkChange::Up(true),
                } => Some((ns.clone(), name.to_string())),
                Op::AddVeth { ns, name, with, .. } if with.up => {
                    Some((ns.clone(), name.to_string()))
                }
                _ => None,
            })
            .collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while !want.is_empty() && std::time::Instant::now() < deadline {
            let mut nss: Vec<NsRef> = want.iter().map(|(n, _)| n.clone()).collect();
            nss.sort();
            nss.dedup();
            for ns in nss {
                if let Ok(st) = self.kernel.observe(&ns) {
                    want.retain(|(n, l)| n != &ns || !st.link(l).is_some_and(|x| x.lower_up));
                }
            }
            if !want.is_empty() {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }

    /// The changes since the last commit are final.
    pub fn commit(&mut self) -> Result<(), RunError> {
        self.journal.clear();
        if let Some(l) = self.ledger.as_mut() {
            l.compact()?;
        }
        Ok(())
    }

    /// Undo what this run changed since the last commit, newest first.
    pub fn rollback(&mut self) -> Vec<String> {
        let owns: Vec<Owned> = self.journal.drain(..).flat_map(|s| s.owns).collect();
        let mut errs = teardown(self.kernel.as_mut(), self.ledger.as_mut(), &owns);
        self.applied = Applied::default();
        self.flushed = None;
        if let Some(l) = self.ledger.as_mut()
            && let Err(e) = l.compact()
        {
            errs.push(e.to_string());
        }
        errs
    }

    /// The desired model and how far it is converged, to go back to when a
    /// REPL statement fails or is interrupted (after `rollback`).
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            topo: self.topo.clone(),
            applied: self.applied.clone(),
            done: self.done.len(),
        }
    }

    /// Return the model to `c`. Call after `rollback` (or `down`): the kernel
    /// side is undone there, this puts back what the model and the diff knew.
    pub fn restore(&mut self, c: Checkpoint) {
        self.topo = c.topo;
        self.applied = c.applied;
        self.done.truncate(c.done);
        // The kernel may no longer match the model it last converged to.
        self.flushed = None;
    }

    /// Remove everything the topology owns (`down`).
    pub fn down(&mut self) -> Result<usize, RunError> {
        self.flushed = None;
        let owns: Vec<Owned> = self.owned().to_vec();
        let n = owns.len();
        let t0 = std::time::Instant::now();
        let errs = teardown(self.kernel.as_mut(), self.ledger.as_mut(), &owns);
        if self.verbose {
            eprintln!("netplumb: teardown of {n} objects in {:?}", t0.elapsed());
            self.print_timings();
        }
        if let Some(l) = self.ledger.as_mut() {
            l.compact()?;
        }
        if errs.is_empty() {
            Ok(n)
        } else {
            Err(RunError::Teardown(errs.join("\n")))
        }
    }
}

/// A cheap fingerprint of the declared model (its debug form, hashed).
fn fingerprint(t: &Topology) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{t:?}").hash(&mut h);
    h.finish()
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
