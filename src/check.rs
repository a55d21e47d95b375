//! `netplumb check FILE` validates a script without root and without the
//! kernel; `netplumb check NAME` re-runs the topology's recorded script
//! against what the kernel has now, changing nothing, and reports drift.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use miette::Report;
use serde::{Deserialize, Serialize};

use crate::apply::LinuxKernel;
use crate::cmd::{Opts, require_root, script_dir};
use crate::diag;
use crate::kernel::{ExecOutput, Kernel, KernelError, NsState, Recorder};
use crate::ledger::{self, Owned};
use crate::model::{NsName, NsRef};
use crate::plan::Op;
use crate::run::Runner;
use crate::script::Session;

/// How a topology was brought up: enough to run its script again.
#[derive(Debug, Serialize, Deserialize)]
pub struct UpRecord {
    pub script: PathBuf,
    pub set: Vec<(String, String)>,
}

fn record_path(name: &str) -> PathBuf {
    ledger::state_dir().join(format!("{name}.up.json"))
}

pub fn save_up_record(name: &str, script: &Path, set: &[(String, String)]) {
    let rec = UpRecord {
        script: script
            .canonicalize()
            .unwrap_or_else(|_| script.to_path_buf()),
        set: set.to_vec(),
    };
    if let Ok(text) = serde_json::to_string(&rec) {
        // Best effort: without it, `check NAME` says it cannot tell.
        let _ = std::fs::write(record_path(name), text);
    }
}

pub fn forget_up_record(name: &str) {
    let _ = std::fs::remove_file(record_path(name));
}

/// Reads the real kernel, changes nothing: every op is only recorded.
struct ReadOnly {
    real: LinuxKernel,
    ops: Vec<Op>,
}

impl Kernel for ReadOnly {
    fn netns_exists(&mut self, ns: &NsName) -> Result<bool, KernelError> {
        self.real.netns_exists(ns)
    }
    fn observe(&mut self, ns: &NsRef) -> Result<NsState, KernelError> {
        self.real.observe(ns)
    }
    fn sysctl_get(&mut self, ns: &NsRef, key: &str) -> Result<Option<String>, KernelError> {
        self.real.sysctl_get(ns, key)
    }
    fn nat_userdata(&mut self, ns: &NsRef, table: &str) -> Result<Option<Vec<u8>>, KernelError> {
        self.real.nat_userdata(ns, table)
    }
    fn apply(&mut self, op: &Op) -> Result<(), KernelError> {
        self.ops.push(op.clone());
        Ok(())
    }
    fn exec(
        &mut self,
        _ns: &NsRef,
        _cmd: &str,
        _timeout: std::time::Duration,
    ) -> Result<ExecOutput, KernelError> {
        Ok(ExecOutput::default())
    }
    fn ping(&mut self, _ns: &NsRef, _addr: IpAddr) -> Result<bool, KernelError> {
        Ok(true)
    }
    fn is_real(&self) -> bool {
        false
    }
}

/// Run `file` into a session over `kernel`; the session, or the rendered error.
fn run_into(
    kernel: Box<dyn Kernel>,
    name: &str,
    file: &Path,
    set: &[(String, String)],
    owned: Vec<Owned>,
) -> Result<Session, Report> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| diag::plain(format!("cannot read script {}: {e}", file.display()), None))?;
    let mut runner =
        Runner::new(name, kernel, None).map_err(|e| diag::plain(e.to_string(), None))?;
    runner.quiet = true;
    runner.assume_owned(owned);
    let mut session = Session::new(runner, script_dir(file), set, 50_000_000);
    if let Err(e) = session.run_file(file, &text) {
        return Err(diag::script_error(&session, &e));
    }
    let flushed = session.runner().flush();
    if let Err(e) = flushed {
        return Err(diag::run_error(&session, &e));
    }
    Ok(session)
}

pub fn run(o: &Opts, target: &str, set: &[(String, String)]) -> Result<i32, Report> {
    let path = Path::new(target);
    if target.ends_with(".rhai") || path.is_file() {
        let name = crate::cmd::topology_name(path, None)?;
        let session = run_into(Box::new(Recorder::new()), &name, path, set, Vec::new())?;
        let n = session.runner().done.len();
        if !o.quiet {
            println!("{target}: valid; on an empty machine it makes {n} changes");
        }
        return Ok(0);
    }
    require_root(o)?;
    ledger::check_topology_name(target).map_err(|e| diag::plain(e.to_string(), None))?;
    let rec: UpRecord = std::fs::read_to_string(record_path(target))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| {
            diag::plain(
                format!("no record of how topology '{target}' was brought up"),
                Some("check FILE.rhai validates a script; check NAME needs a topology made by `netplumb up`"),
            )
        })?;
    let owned = ledger::read_entries(target).map_err(|e| diag::plain(e.to_string(), None))?;
    let real = LinuxKernel::new().map_err(|e| diag::plain(e.to_string(), None))?;
    let session = run_into(
        Box::new(ReadOnly {
            real,
            ops: Vec::new(),
        }),
        target,
        &rec.script,
        &rec.set,
        owned,
    )?;
    let done = &session.runner().done;
    if done.is_empty() {
        if !o.quiet {
            println!(
                "topology '{target}': no drift, the kernel matches {}",
                rec.script.display()
            );
        }
        return Ok(0);
    }
    println!(
        "topology '{target}': drifted; `netplumb up {}` would repair:",
        rec.script.display()
    );
    for s in done {
        println!("  {}", s.op.summary());
    }
    Ok(1)
}
