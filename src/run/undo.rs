//! Undoing a run: rollback of what changed since the last commit, and the
//! checkpoints the REPL takes around each statement.

use super::*;
use crate::ledger::Entry;

impl Runner {
    /// Undo what this run changed since the last commit, newest first:
    /// creations deleted by identity, removals built again, changes put
    /// back; the ledger back as it was.
    pub fn rollback(&mut self) -> Vec<TeardownError> {
        let mut errs = Vec::new();
        let from = self.journal_from.min(self.done.len());
        for a in self.done[from..].iter().rev() {
            let mut remade = Vec::new();
            for op in &a.undo {
                match self.kernel.apply(op) {
                    Ok(m) => remade.push(m),
                    Err(e) if e.is_not_found() && op.is_removal() => {}
                    Err(err) => errs.push(TeardownError::kernel(op.summary(), err)),
                }
            }
            if let Some(l) = self.ledger.as_mut() {
                let made: Vec<Entry> = a
                    .records
                    .iter()
                    .filter(|r| !a.retires.contains(r))
                    .cloned()
                    .collect();
                let mut back: Vec<Entry> = a
                    .retires
                    .iter()
                    .filter(|r| !a.records.contains(r))
                    .cloned()
                    .collect();
                identity::rebuilt(&mut back, &remade);
                let res = l.remove(&made).and_then(|_| l.add(&back));
                if let Err(e) = res {
                    errs.push(TeardownError::ledger(e));
                }
            }
        }
        if let Some(l) = self.ledger.as_mut() {
            let claimed: Vec<Entry> = self.claimed.drain(..).collect();
            let released: Vec<Entry> = self.released.drain(..).collect();
            let res = l
                .remove(&claimed)
                .and_then(|_| l.add(&released))
                .and_then(|_| l.compact());
            if let Err(e) = res {
                errs.push(TeardownError::ledger(e));
            }
        }
        // Undone: a later rollback must not undo these again.
        self.journal_from = self.done.len();
        self.flushed = None;
        self.unmark();
        errs
    }

    /// The desired model and how far it is converged, to go back to when a
    /// REPL statement fails or is interrupted (after `rollback`).
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            topo: match self.sites.any() {
                true => Kept::Whole(self.topo.clone()),
                false => Kept::Snapshot(self.topo.snapshot()),
            },
            done: self.done.len(),
        }
    }

    /// Return the model to `c`. Call after `rollback` (or `down`): the kernel
    /// side is undone there, this puts back what the model knew.
    pub fn restore(&mut self, c: Checkpoint) {
        self.topo = match c.topo {
            Kept::Whole(t) => t,
            // Sites declared since: the model taken is the part of no site.
            Kept::Snapshot(s) if self.sites.any() => {
                let ns = self
                    .sites
                    .part(&self.topo, None)
                    .map(|t| t.namespaces().to_vec())
                    .unwrap_or_default();
                Topology::from_snapshot(s, ns)
            }
            Kept::Snapshot(s) => {
                let ns = self.topo.take_namespaces();
                Topology::from_snapshot(s, ns)
            }
        };
        self.done.truncate(c.done);
        self.journal_from = self.journal_from.min(self.done.len());
        // The kernel may no longer match the model it last converged to.
        self.flushed = None;
        self.unmark();
    }

    /// An empty model (the REPL's `:down`): handles made before are stale.
    pub fn reset_model(&mut self) {
        self.topo.reset();
        self.done.clear();
        self.journal_from = 0;
        self.ready.clear();
        self.asserts.clear();
        self.flushed = None;
        self.unmark();
    }
}
