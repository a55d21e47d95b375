//! Runs of sysctl writes on a few threads: `netns(name, #{ ipv6: false })`
//! over a thousand fresh namespaces is two writes in each, and a write is
//! a thread entering the namespace. Each worker thread is our own and
//! enters one namespace after another; nothing of it is shared.

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::sched::{CloneFlags, setns};

use super::LinuxKernel;
use super::netns::NetnsDir;
use crate::kernel::KernelError;
use crate::model::NsRef;
use crate::op::{Made, Op};

/// Write each `Op::Sysctl` of `ops` (anything else is refused), results
/// in input order, each with the value it replaced.
pub(super) fn write_many(dir: &NetnsDir, ops: &[Op]) -> Vec<Result<Made, KernelError>> {
    let workers = 4.min(ops.len().max(1));
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<Made, KernelError>>>> =
        ops.iter().map(|_| Mutex::new(None)).collect();
    let host = File::open("/proc/self/ns/net").map_err(KernelError::from);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(op) = ops.get(i) else { break };
                    let r = write_one(dir, op, host.as_ref().ok());
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(KernelError::other("sysctl worker lost its result")))
        })
        .collect()
}

fn write_one(dir: &NetnsDir, op: &Op, host: Option<&File>) -> Result<Made, KernelError> {
    let Op::Sysctl { ns, key, value } = op else {
        return Err(KernelError::other("not a sysctl"));
    };
    let f = match ns {
        NsRef::Named(n) => dir.open(n)?,
        NsRef::Host => host
            .ok_or_else(|| KernelError::other("cannot open this process's netns"))?
            .try_clone()?,
    };
    setns(f.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(|e| KernelError::errno(e as i32, format!("setns: {}", e.desc())))?;
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
