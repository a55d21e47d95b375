//! Starting a daemon step: the one apply whose ledger entry can only be
//! written in the middle of it — after the fork (its pid and start time
//! exist) and before the exec (it has run nothing yet).

use super::{ApplyError, RunError, Runner};
use crate::ledger::{DaemonName, Entry, ReadyText};
use crate::op::Op;
use crate::plan::Step;

impl Runner {
    /// Start one daemon: its ledger entry (pid, start time, cgroup) is
    /// written after the fork and before the exec, so a `kill -9` of this
    /// run at any point leaves no process `down` cannot find.
    pub(super) fn start_daemon(&mut self, mut s: Step) -> Result<(), RunError> {
        // After the links are ready: a server binding an address that is
        // still tentative would fail.
        let _ = self.settle();
        let Op::StartDaemon { ns, daemon } = &s.op else {
            return Ok(());
        };
        let (ns, name) = (ns.clone(), daemon.spec.name.clone());
        let entry_for = |id: &crate::proc::Identity| -> Result<Entry, String> {
            Ok(Entry::Daemon {
                ns: ns.clone(),
                name: DaemonName::new(&daemon.spec.name)?,
                spec: Box::new(daemon.spec.clone()),
                ready: daemon.ready.as_deref().map(ReadyText::new).transpose()?,
                identity: id.clone(),
            })
        };
        let mut written: Option<Entry> = None;
        let res = {
            let ledger = &mut self.ledger;
            let mut record = |id: &crate::proc::Identity| -> Result<(), String> {
                let e = entry_for(id)?;
                if let Some(l) = ledger.as_mut() {
                    l.add(std::slice::from_ref(&e)).map_err(|e| e.to_string())?;
                }
                written = Some(e);
                Ok(())
            };
            self.kernel.start_daemon(&s.op, &mut record)
        };
        match res {
            Ok(id) => {
                if self.echo {
                    println!("{}", s.op.summary());
                }
                if let Some(identity) = id {
                    s.records = written.into_iter().collect();
                    s.undo = vec![Op::StopDaemon { ns, name, identity }];
                }
                self.done.push(s);
                Ok(())
            }
            Err(err) => {
                // The kernel side stopped what it started.
                if let (Some(l), Some(e)) = (self.ledger.as_mut(), written) {
                    l.remove(&[e])?;
                }
                Err(RunError::Apply(Box::new(ApplyError {
                    what: s.op.action(),
                    ns: s.op.ns(),
                    help: None,
                    pos: s.pos.clone(),
                    err,
                })))
            }
        }
    }
}
