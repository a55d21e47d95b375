//! Processes on the wires: starting a declared daemon in its namespace
//! through `crate::proc` (recorded before it execs, in the topology's
//! cgroup where one can be made), stopping one by identity, and the TCP
//! connect `assert_reach` uses.

use std::os::unix::fs::DirBuilderExt;
use std::time::Duration;

use super::LinuxKernel;
use super::netns::in_ns;
use crate::kernel::KernelError;
use crate::model::NsRef;
use crate::op::{DaemonStart, Made};
use crate::proc::{self, CgroupRoot, EtcFile, Identity, NsTarget, Pending, ProcError, Ready};

/// How long a process may take to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// SIGTERM to SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

fn pe(e: ProcError) -> KernelError {
    KernelError::other(e.to_string())
}

/// A topology's cgroup key: its name and the world (network namespace)
/// netplumb runs in — two sandboxes may both have a topology "lab".
fn cgroup_key(topology: &str) -> String {
    format!("{topology}@{}", crate::ledger::netns_id())
}

fn ns_name(ns: &NsRef) -> Option<String> {
    match ns {
        NsRef::Named(n) => Some(n.as_str().to_string()),
        NsRef::Host => None,
    }
}

pub(super) fn start(
    k: &mut LinuxKernel,
    ns: &NsRef,
    d: &DaemonStart,
    record: &mut dyn FnMut(&Identity) -> Result<(), String>,
) -> Result<Identity, KernelError> {
    let ready = d
        .ready
        .as_deref()
        .map(str::parse::<Ready>)
        .transpose()
        .map_err(pe)?;
    if let Some(dir) = d.spec.log.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                KernelError::from(e)
                    .context(&format!("cannot make log directory {}", dir.display()))
            })?;
    }
    // No writable cgroup v2 (an unprivileged user, v1 only): the process
    // group, session and start time are what identify the tree then.
    let cg = CgroupRoot::find().and_then(|r| r.topology(&cgroup_key(&d.topology)).ok());
    let name = ns_name(ns);
    let file = k.conns.file(&k.nsdir, ns)?;
    let target = file.map(|file| NsTarget {
        file,
        name: name.as_deref(),
    });
    let pending = Pending::spawn(&d.spec, target, cg.as_ref()).map_err(pe)?;
    let id = pending.identity().clone();
    // Dropping the pending process kills it before it ran anything.
    record(&id).map_err(KernelError::other)?;
    let mut daemon = pending.release().map_err(pe)?;
    if let Some(ready) = ready
        && let Err(e) = proc::wait_ready(&mut daemon, &ready, file, READY_TIMEOUT)
    {
        let _ = proc::stop(&id, GRACE);
        return Err(pe(e));
    }
    Ok(id)
}

pub(super) fn etc_file(ns: &crate::model::NsName, path: &str) -> Result<EtcFile, KernelError> {
    EtcFile::new(ns.as_str(), path).map_err(|e| KernelError::other(e.to_string()))
}

/// Write (or remove) a per-namespace file: /etc/netns/NS/NAME.
pub(super) fn write_file(
    ns: &crate::model::NsName,
    path: &str,
    content: Option<&str>,
) -> Result<Made, KernelError> {
    let f = etc_file(ns, path)?;
    let err = |e: crate::proc::EtcError| KernelError::other(e.to_string());
    match content {
        Some(c) => {
            f.write(c.as_bytes()).map_err(err)?;
        }
        None => {
            if !f.remove().map_err(err)? {
                return Err(KernelError::errno(
                    libc::ENOENT,
                    format!("no file {}", f.path().display()),
                ));
            }
        }
    }
    Ok(Made::Nothing)
}

pub(super) fn stop(id: &Identity) -> Result<Made, KernelError> {
    proc::stop(id, GRACE).map_err(pe)?;
    Ok(Made::Nothing)
}

/// The topology's cgroup, once its processes are gone.
pub(super) fn forget_cgroup(topology: &str) {
    if let Some(cg) = CgroupRoot::find().and_then(|r| r.topology(&cgroup_key(topology)).ok()) {
        let _ = cg.remove();
    }
}

pub(super) fn connect(
    k: &mut LinuxKernel,
    ns: &NsRef,
    to: std::net::SocketAddr,
    timeout: Duration,
) -> Result<Option<String>, KernelError> {
    let f = k.conns.file(&k.nsdir, ns)?;
    in_ns(f, || {
        Ok(match std::net::TcpStream::connect_timeout(&to, timeout) {
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Some(format!(
                "no TCP connection within {}s",
                timeout.as_secs_f64()
            )),
            Err(e) => Some(format!("TCP connect: {e}")),
        })
    })
}
