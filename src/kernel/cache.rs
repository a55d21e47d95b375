//! A kernel that remembers what it read: a REPL session converges after
//! every statement, and re-reading every namespace declared so far made
//! each statement cost as much as the whole session (issue 14). Observed
//! state is kept per namespace and dropped when the session itself changes
//! that namespace (or may have: `exec()` runs anything), so a statement
//! reads back only what it touched.
//!
//! What it does not see are changes made behind the session's back (a
//! namespace deleted by hand, a link changed inside one the session does
//! not touch again) until the session runs a program (`exec()` forgets
//! everything) or the next `up` or `check`, which start afresh.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{ExecOutput, Kernel, KernelError, NotReady, NsState, SysctlScope, TableInfo};
use crate::model::{IfName, NsName, NsRef};
use crate::op::{Made, Op, Outcome};
use crate::proc::{Identity, Liveness};

pub struct Cached {
    inner: Box<dyn Kernel>,
    states: HashMap<NsRef, Arc<NsState>>,
    /// The identity each named namespace had when last asked.
    inos: HashMap<NsName, Option<u64>>,
}

impl Cached {
    pub fn new(inner: Box<dyn Kernel>) -> Self {
        Self {
            inner,
            states: HashMap::new(),
            inos: HashMap::new(),
        }
    }

    fn drop_all(&mut self) {
        self.states.clear();
        self.inos.clear();
    }

    /// Forget what `op` may have changed. Most ops change their own
    /// namespace only; a veth pair spans two; deleting or moving a device
    /// (a veth takes its peer with it, a namespace its veths' far ends, and
    /// asynchronously) may change any.
    fn invalidate(&mut self, op: &Op) {
        match op {
            Op::DelNetns { .. } | Op::DelLink { .. } | Op::MoveLink { .. } => self.drop_all(),
            Op::AddVeth { ns, peer_ns, .. } => {
                self.states.remove(ns);
                self.states.remove(peer_ns);
            }
            // A macvlan or vxlan born in another namespace than its parent's.
            Op::AddLink { ns, into, .. } => {
                self.states.remove(ns);
                if let Some(into) = into {
                    self.states.remove(into);
                }
            }
            other => {
                self.states.remove(&other.ns());
            }
        }
        if let Op::AddNetns { ns } | Op::DelNetns { ns, .. } = op {
            self.inos.remove(ns);
        }
    }
}

impl Kernel for Cached {
    fn netns_list(&mut self) -> Result<Vec<NsName>, KernelError> {
        self.inner.netns_list()
    }

    /// Remembered too (two syscalls a namespace a statement were most of
    /// a long session's cost); when asked again after the session made or
    /// deleted it, or ran a program, an identity that changed drops what
    /// was read of the namespace.
    fn netns_ino(&mut self, ns: &NsName) -> Result<Option<u64>, KernelError> {
        if let Some(ino) = self.inos.get(ns) {
            return Ok(*ino);
        }
        let ino = self.inner.netns_ino(ns)?;
        self.states.remove(&NsRef::Named(ns.clone()));
        self.inos.insert(ns.clone(), ino);
        Ok(ino)
    }

    fn observe(&mut self, ns: &NsRef) -> Result<NsState, KernelError> {
        if let Some(st) = self.states.get(ns) {
            return Ok(NsState::clone(st));
        }
        let st = self.inner.observe(ns)?;
        self.states.insert(ns.clone(), Arc::new(st.clone()));
        Ok(st)
    }

    fn observe_many(&mut self, nss: &[NsRef]) -> Vec<Result<NsState, KernelError>> {
        self.observe_shared(nss)
            .into_iter()
            .map(|r| r.map(|st| NsState::clone(&st)))
            .collect()
    }

    fn observe_shared(&mut self, nss: &[NsRef]) -> Vec<Result<Arc<NsState>, KernelError>> {
        let missing: Vec<NsRef> = nss
            .iter()
            .filter(|ns| !self.states.contains_key(ns))
            .cloned()
            .collect();
        let mut read = self.inner.observe_many(&missing).into_iter();
        let mut fresh = HashMap::new();
        for ns in &missing {
            let r = read
                .next()
                .unwrap_or_else(|| Err(KernelError::other("namespace read lost")))
                .map(Arc::new);
            if let Ok(st) = &r {
                self.states.insert(ns.clone(), st.clone());
            }
            fresh.insert(ns.clone(), r);
        }
        nss.iter()
            .map(|ns| match fresh.remove(ns) {
                Some(r) => r,
                None => match self.states.get(ns) {
                    Some(st) => Ok(st.clone()),
                    None => self.inner.observe(ns).map(Arc::new),
                },
            })
            .collect()
    }

    /// Never cached: teardown polls it to see links vanish.
    fn link_names(&mut self, ns: &NsRef) -> Result<Vec<String>, KernelError> {
        self.inner.link_names(ns)
    }

    fn wait_links_gone(
        &mut self,
        ns: &NsRef,
        names: &[String],
        patience: std::time::Duration,
    ) -> Result<Vec<String>, KernelError> {
        self.inner.wait_links_gone(ns, names, patience)
    }

    fn nsid(&mut self, from: &NsRef, to: &NsRef) -> Result<Option<i32>, KernelError> {
        self.inner.nsid(from, to)
    }

    fn sysctl_get(&mut self, ns: &NsRef, key: &str) -> Result<Option<String>, KernelError> {
        self.inner.sysctl_get(ns, key)
    }

    fn sysctl_get_many(
        &mut self,
        keys: &[(NsRef, String)],
    ) -> Vec<Result<Option<String>, KernelError>> {
        self.inner.sysctl_get_many(keys)
    }

    fn nat_info(&mut self, ns: &NsRef, table: &str) -> Result<Option<TableInfo>, KernelError> {
        self.inner.nat_info(ns, table)
    }

    fn nat_table(
        &mut self,
        ns: &NsRef,
        table: &str,
    ) -> Result<Option<netplumb_nft::NatTable>, KernelError> {
        self.inner.nat_table(ns, table)
    }

    fn sysctl_scope(&mut self, key: &str) -> Result<SysctlScope, KernelError> {
        self.inner.sysctl_scope(key)
    }

    fn nat_summary(
        &mut self,
        ns: &NsRef,
        table: &str,
    ) -> Result<Option<netplumb_nft::TableSummary>, KernelError> {
        self.inner.nat_summary(ns, table)
    }

    fn apply_all(&mut self, ops: &[Op]) -> Outcome<KernelError> {
        // Before and whatever the outcome: an op refused half-way may
        // still have changed something.
        for op in ops {
            self.invalidate(op);
        }
        self.inner.apply_all(ops)
    }

    fn apply(&mut self, op: &Op) -> Result<Made, KernelError> {
        self.invalidate(op);
        self.inner.apply(op)
    }

    fn exec(
        &mut self,
        ns: &NsRef,
        cmd: &str,
        timeout: Duration,
    ) -> Result<ExecOutput, KernelError> {
        // A program may change anything, anywhere.
        self.drop_all();
        self.inner.exec(ns, cmd, timeout)
    }

    fn ping(&mut self, ns: &NsRef, addr: IpAddr) -> Result<bool, KernelError> {
        self.inner.ping(ns, addr)
    }

    fn wait_ready(&mut self, links: &[(NsRef, IfName)], timeout: Duration) -> Result<(), NotReady> {
        self.inner.wait_ready(links, timeout)
    }

    fn timings(&self) -> Vec<(String, usize, Duration)> {
        self.inner.timings()
    }

    // The rest reaches the kernel underneath unchanged: none of it is
    // remembered, and an op it applies forgets what it may change.

    fn listeners(&mut self, ns: &NsRef) -> Result<Vec<super::Listener>, KernelError> {
        self.inner.listeners(ns)
    }

    fn socket_holder(&mut self, inode: u64) -> Option<String> {
        self.inner.socket_holder(inode)
    }

    fn nft_tables(&mut self, ns: &NsRef) -> Result<Vec<netplumb_nft::ReadBack>, KernelError> {
        self.inner.nft_tables(ns)
    }

    fn sysctl_fresh(&mut self, key: &str) -> Result<Option<String>, KernelError> {
        self.inner.sysctl_fresh(key)
    }

    fn ping_many(&mut self, pings: &[(NsRef, IpAddr)]) -> Vec<Result<bool, KernelError>> {
        self.inner.ping_many(pings)
    }

    fn assume_device(&mut self, ns: &NsRef, name: &str) -> bool {
        self.states.remove(ns);
        self.inner.assume_device(ns, name)
    }

    fn start_daemon(
        &mut self,
        op: &Op,
        record: &mut dyn FnMut(&Identity) -> Result<(), String>,
    ) -> Result<Option<Identity>, KernelError> {
        self.invalidate(op);
        self.inner.start_daemon(op, record)
    }

    fn etc_read(&mut self, ns: &NsName, path: &str) -> Result<Option<Vec<u8>>, KernelError> {
        self.inner.etc_read(ns, path)
    }

    fn daemon_liveness(&mut self, id: &Identity) -> Liveness {
        self.inner.daemon_liveness(id)
    }

    fn daemons_gone(&mut self, topology: &str) {
        self.inner.daemons_gone(topology);
    }

    fn connect(
        &mut self,
        ns: &NsRef,
        to: std::net::SocketAddr,
        timeout: Duration,
    ) -> Result<Option<String>, KernelError> {
        self.inner.connect(ns, to, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Recorder;

    /// Counts observes that reach the kernel underneath.
    struct Counting {
        inner: Recorder,
        observed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        /// Added to every identity: a namespace made again behind our back.
        shift: std::sync::Arc<std::sync::atomic::AtomicU64>,
    }

    impl Kernel for Counting {
        fn netns_list(&mut self) -> Result<Vec<NsName>, KernelError> {
            self.inner.netns_list()
        }
        fn netns_ino(&mut self, ns: &NsName) -> Result<Option<u64>, KernelError> {
            let shift = self.shift.load(std::sync::atomic::Ordering::Relaxed);
            Ok(self.inner.netns_ino(ns)?.map(|i| i + shift))
        }
        fn observe(&mut self, ns: &NsRef) -> Result<NsState, KernelError> {
            self.observed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.inner.observe(ns)
        }
        fn nsid(&mut self, from: &NsRef, to: &NsRef) -> Result<Option<i32>, KernelError> {
            self.inner.nsid(from, to)
        }
        fn sysctl_get(&mut self, ns: &NsRef, key: &str) -> Result<Option<String>, KernelError> {
            self.inner.sysctl_get(ns, key)
        }
        fn nat_info(&mut self, ns: &NsRef, t: &str) -> Result<Option<TableInfo>, KernelError> {
            self.inner.nat_info(ns, t)
        }
        fn nat_table(
            &mut self,
            ns: &NsRef,
            t: &str,
        ) -> Result<Option<netplumb_nft::NatTable>, KernelError> {
            self.inner.nat_table(ns, t)
        }
        fn sysctl_scope(&mut self, key: &str) -> Result<SysctlScope, KernelError> {
            self.inner.sysctl_scope(key)
        }
        fn nat_summary(
            &mut self,
            ns: &NsRef,
            t: &str,
        ) -> Result<Option<netplumb_nft::TableSummary>, KernelError> {
            self.inner.nat_summary(ns, t)
        }
        fn apply_all(&mut self, ops: &[Op]) -> Outcome<KernelError> {
            self.inner.apply_all(ops)
        }
        fn exec(&mut self, ns: &NsRef, c: &str, t: Duration) -> Result<ExecOutput, KernelError> {
            self.inner.exec(ns, c, t)
        }
        fn ping(&mut self, ns: &NsRef, a: IpAddr) -> Result<bool, KernelError> {
            self.inner.ping(ns, a)
        }
        fn wait_ready(&mut self, l: &[(NsRef, IfName)], t: Duration) -> Result<(), NotReady> {
            self.inner.wait_ready(l, t)
        }
    }

    fn ns(n: &str) -> NsName {
        NsName::new(n).unwrap()
    }

    #[test]
    fn reads_again_only_what_the_session_changed() {
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut k = Cached::new(Box::new(Counting {
            inner: Recorder::new(),
            observed: count.clone(),
            shift: Default::default(),
        }));
        let n = |c: &std::sync::Arc<std::sync::atomic::AtomicUsize>| {
            c.load(std::sync::atomic::Ordering::Relaxed)
        };
        k.apply(&Op::AddNetns { ns: ns("a") }).unwrap();
        k.apply(&Op::AddNetns { ns: ns("b") }).unwrap();
        let (a, b) = (NsRef::Named(ns("a")), NsRef::Named(ns("b")));
        let first = k.observe(&a).unwrap();
        k.observe(&b).unwrap();
        assert_eq!(n(&count), 2);
        assert_eq!(k.observe(&a).unwrap(), first);
        assert_eq!(n(&count), 2, "a second read is remembered");
        k.apply(&Op::AddBridge {
            ns: a.clone(),
            name: IfName::new("br0").unwrap(),
        })
        .unwrap();
        let after = k.observe(&a).unwrap();
        assert!(after.link("br0").is_some(), "the change is read back");
        k.observe(&b).unwrap();
        assert_eq!(
            n(&count),
            3,
            "only the namespace the op changed is read again"
        );
        k.exec(&b, "true", Duration::from_secs(1)).ok();
        k.observe(&b).unwrap();
        assert_eq!(n(&count), 4, "exec() may change anything");
    }

    #[test]
    fn identities_are_asked_again_after_a_program_ran() {
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let shift = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut inner = Recorder::new();
        inner.apply(&Op::AddNetns { ns: ns("a") }).unwrap();
        let mut k = Cached::new(Box::new(Counting {
            inner,
            observed: count.clone(),
            shift: shift.clone(),
        }));
        let a = NsRef::Named(ns("a"));
        let n = || count.load(std::sync::atomic::Ordering::Relaxed);
        let first = k.netns_ino(&ns("a")).unwrap().unwrap();
        k.observe(&a).unwrap();
        k.netns_ino(&ns("a")).unwrap();
        k.observe(&a).unwrap();
        assert_eq!(n(), 1, "same identity: remembered");
        shift.store(7, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(k.netns_ino(&ns("a")).unwrap(), Some(first), "remembered");
        k.exec(&a, "true", Duration::from_secs(1)).ok();
        assert_eq!(
            k.netns_ino(&ns("a")).unwrap(),
            Some(first + 7),
            "asked again"
        );
        k.observe(&a).unwrap();
        assert_eq!(n(), 2, "another identity: read again");
        k.apply(&Op::DelNetns {
            ns: ns("a"),
            ino: None,
        })
        .unwrap();
        assert_eq!(
            k.netns_ino(&ns("a")).unwrap(),
            None,
            "deleted by the session"
        );
    }
}
