//! A few threads of our own that each enter one namespace after another:
//! what reading and writing many namespaces at once share. A socket or a
//! /proc/sys file opened after `setns` stays bound to that namespace, and
//! nothing of this touches the namespace handle cache.

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::sched::{CloneFlags, setns};

use super::netns::NetnsDir;
use crate::kernel::KernelError;
use crate::model::NsRef;

/// Threads that enter namespaces at once: twice the cores (each mostly
/// waits for the kernel), between 2 and 8.
pub(super) fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(2)
        .clamp(2, 8)
}

/// For each item, on up to `workers` threads: enter the namespace `ns_of`
/// names (the host through a handle on this process's own), then `work`.
/// Results in input order.
pub(super) fn in_each_ns<T: Sync, R: Send>(
    dir: &NetnsDir,
    items: &[T],
    workers: usize,
    ns_of: impl Fn(&T) -> Result<&NsRef, KernelError> + Sync,
    work: impl Fn(&T) -> Result<R, KernelError> + Sync,
) -> Vec<Result<R, KernelError>> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<R, KernelError>>>> =
        items.iter().map(|_| Mutex::new(None)).collect();
    let host = File::open("/proc/self/ns/net").map_err(KernelError::from);
    let one = |item: &T| -> Result<R, KernelError> {
        let f = match ns_of(item)? {
            NsRef::Named(n) => dir.open(n)?,
            NsRef::Host => host
                .as_ref()
                .map_err(|_| KernelError::other("cannot open this process's netns"))?
                .try_clone()?,
        };
        setns(f.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| KernelError::errno(e as i32, format!("setns: {}", e.desc())))?;
        work(item)
    };
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = one(item);
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
                .unwrap_or_else(|| Err(KernelError::other("namespace worker lost its result")))
        })
        .collect()
}
