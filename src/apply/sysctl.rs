//! Runs of sysctl writes on a few threads: `netns(name, #{ ipv6: false })`
//! over a thousand fresh namespaces is two writes in each, and a write is
//! a thread entering the namespace. Each worker thread is our own and
//! enters one namespace after another; nothing of it is shared.

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
