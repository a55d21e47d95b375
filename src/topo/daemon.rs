//! Declared processes: `ns.daemon(cmd, #{ … })`. One name per topology
//! (its cgroup, its log and `netplumb logs` key on it).

use std::path::PathBuf;

use super::{DeclError, Pos, Topology};
use crate::model::NsRef;
use crate::proc::Argv;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonDecl {
    pub ns: NsRef,
    pub name: String,
    pub argv: Argv,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    /// None: the topology's log directory under the state dir.
    pub log: Option<PathBuf>,
    /// Checked text of a `crate::proc::Ready`.
    pub ready: Option<String>,
    pub pos: Pos,
}

impl Topology {
    pub fn daemons(&self) -> &[DaemonDecl] {
        &self.daemons
    }

    /// Declare a process. Its namespace must be declared (or the host);
    /// its name must be free in the topology.
    pub fn add_daemon(&mut self, d: DaemonDecl) -> Result<(), DeclError> {
        if let NsRef::Named(n) = &d.ns
            && !self.has_ns(n)
        {
            return Err(DeclError::UndeclaredNs { ns: n.clone() });
        }
        if let Some(first) = self.daemons.iter().find(|o| o.name == d.name) {
            return Err(DeclError::DaemonTaken {
                name: d.name,
                first: first.pos.clone(),
            });
        }
        if self.limit > 0 && self.size() as u64 >= self.limit {
            return Err(DeclError::TooMany { limit: self.limit });
        }
        self.daemons.push(d);
        self.revision += 1;
        Ok(())
    }
}
