//! Runs of sysctl reads and writes on a few threads: `netns(name, #{ ipv6:
//! false })` over a thousand namespaces is two knobs in each, and a thread
//! entering the namespace for each was most of a first `up` (writes) and of
//! a no-change one (reads). Each worker thread is our own and enters one
//! namespace after another; nothing of it is shared.

use super::LinuxKernel;
use super::netns::NetnsDir;
use crate::kernel::KernelError;
use crate::model::NsRef;
use crate::op::{Made, Op};

/// Write each `Op::Sysctl` of `ops` (anything else is refused), results
/// in input order, each with the value it replaced.
pub(super) fn write_many(dir: &NetnsDir, ops: &[Op]) -> Vec<Result<Made, KernelError>> {
    super::pool::in_each_ns(dir, ops, 4, ns_of, write_one)
}

fn ns_of(op: &Op) -> Result<&NsRef, KernelError> {
    match op {
        Op::Sysctl { ns, .. } => Ok(ns),
        _ => Err(KernelError::other("not a sysctl")),
    }
}

/// On a worker already in the op's namespace.
fn write_one(op: &Op) -> Result<Made, KernelError> {
    let Op::Sysctl { key, value, .. } = op else {
        return Err(KernelError::other("not a sysctl"));
    };
    // /proc/sys/net is the namespace of the thread that opens it.
    let path = LinuxKernel::sysctl_path(key);
    let old = std::fs::read_to_string(&path)
        .map_err(|e| KernelError::from(e).context(&format!("cannot read {key}")))?;
    std::fs::write(&path, value.as_bytes())
        .map_err(|e| KernelError::from(e).context(&format!("cannot set {key}")))?;
    Ok(Made::Sysctl {
        old: old.trim().to_string(),
    })
}

/// The value of each (namespace, key), in input order.
pub(super) fn read_many(
    dir: &NetnsDir,
    keys: &[(NsRef, String)],
) -> Vec<Result<Option<String>, KernelError>> {
    let workers = super::pool::workers();
    super::pool::in_each_ns(
        dir,
        keys,
        workers,
        |(ns, _)| Ok(ns),
        |(_, key)| read_one(&LinuxKernel::sysctl_path(key)),
    )
}

/// A sysctl of the calling thread's namespace; None when there is no such
/// knob.
pub(super) fn read_one(path: &str) -> Result<Option<String>, KernelError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(KernelError::from(e)),
    }
}
