//! The kernel as netplumb sees it: a small trait, so that the planner, the
//! runner and the read-back commands (`show`, `graph`, `ping-all`, `check`)
//! run against a recording fake (for `plan` and unit tests) or the real thing.

mod cache;
mod fake;
pub mod routes;
pub mod shape;
mod state;

use std::net::IpAddr;
use std::time::Duration;

pub use cache::Cached;
pub use fake::Recorder;
pub use state::{
    Addr, ExecOutput, IFA_F_PERMANENT, Link, NsState, Qdisc, RT_TABLE_MAIN, Route, RouteHop, Rule,
    TableInfo,
};

use crate::model::{IfName, NsName, NsRef};
use crate::op::{Made, Op, Outcome};
use crate::proc::{Identity, Liveness};

/// A refusal or failure from the kernel, with its errno when there is one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{msg}")]
pub struct KernelError {
    pub errno: Option<i32>,
    pub msg: String,
    /// For NAT: the tag of the rule the kernel refused.
    pub tag: Option<usize>,
    /// The question was not put to a kernel at all (the recording fake has
    /// no packets and runs no programs): a result would be made up.
    pub not_run: bool,
}

impl KernelError {
    pub fn errno(errno: i32, msg: impl Into<String>) -> Self {
        Self {
            errno: Some(errno),
            msg: msg.into(),
            tag: None,
            not_run: false,
        }
    }
    pub fn other(msg: impl Into<String>) -> Self {
        Self {
            errno: None,
            msg: msg.into(),
            tag: None,
            not_run: false,
        }
    }
    pub fn not_run(msg: impl Into<String>) -> Self {
        Self {
            not_run: true,
            ..Self::other(msg)
        }
    }
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno,
            Some(libc::ENOENT | libc::ENODEV | libc::ESRCH | libc::EADDRNOTAVAIL)
        )
    }
    /// Prefix the message with what was being done.
    pub fn context(mut self, what: &str) -> Self {
        self.msg = format!("{what}: {}", self.msg);
        self
    }
}

impl From<std::io::Error> for KernelError {
    fn from(e: std::io::Error) -> Self {
        Self {
            errno: e.raw_os_error(),
            msg: e.to_string(),
            tag: None,
            not_run: false,
        }
    }
}

/// Links that did not become ready in time, and why (for the report).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotReady {
    pub waited: Duration,
    /// "foons:eth0: operstate LOWERLAYERDOWN", "host:br0: fd00::1 tentative"
    pub pending: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysctlScope {
    PerNetns,
    Global,
    Missing,
}

/// The alias netplumb gives the `lo` of every namespace it makes: the
/// namespace's mark of origin, when the record holds no identity for it.
pub const NETNS_MARK: &str = "netplumb";

pub fn is_netns_marker(alias: &str) -> bool {
    alias == NETNS_MARK
}

pub trait Kernel: Send {
    /// Every named namespace (under /run/netns), sorted.
    fn netns_list(&mut self) -> Result<Vec<NsName>, KernelError>;
    /// The namespace's identity (its nsfs inode) when it exists.
    fn netns_ino(&mut self, ns: &NsName) -> Result<Option<u64>, KernelError>;
    /// Links, addresses and routes of one namespace.
    fn observe(&mut self, ns: &NsRef) -> Result<NsState, KernelError>;
    /// `observe` of many namespaces, results in input order. Real kernels
    /// read them on several threads.
    fn observe_many(&mut self, nss: &[NsRef]) -> Vec<Result<NsState, KernelError>> {
        nss.iter().map(|ns| self.observe(ns)).collect()
    }
    /// `observe_many`, shared: a kernel that keeps what it read hands out
    /// the same copy instead of a deep one (the diff only reads it).
    fn observe_shared(
        &mut self,
        nss: &[NsRef],
    ) -> Vec<Result<std::sync::Arc<NsState>, KernelError>> {
        self.observe_many(nss)
            .into_iter()
            .map(|r| r.map(std::sync::Arc::new))
            .collect()
    }
    /// The names of a namespace's links (cheaper than a full observe).
    fn link_names(&mut self, ns: &NsRef) -> Result<Vec<String>, KernelError> {
        Ok(self
            .observe(ns)?
            .links
            .into_iter()
            .map(|l| l.name)
            .collect())
    }
    /// Wait until none of `names` is a link of `ns`, or until `patience`
    /// passes with none of them going; returns those still there. Polls
    /// `link_names` here; the real kernel waits on link events.
    fn wait_links_gone(
        &mut self,
        ns: &NsRef,
        names: &[String],
        patience: std::time::Duration,
    ) -> Result<Vec<String>, KernelError> {
        let mut progress = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(2);
        let mut left: Vec<String> = names.to_vec();
        loop {
            let now: std::collections::HashSet<String> = self.link_names(ns)?.into_iter().collect();
            let before = left.len();
            left.retain(|n| now.contains(n));
            if left.len() < before {
                progress = std::time::Instant::now();
            }
            if left.is_empty() || progress.elapsed() > patience {
                return Ok(left);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(50));
        }
    }
    /// The id namespace `from` gives namespace `to` (how a veth in `from`
    /// names its peer's namespace); None when it has none.
    fn nsid(&mut self, from: &NsRef, to: &NsRef) -> Result<Option<i32>, KernelError>;
    fn sysctl_get(&mut self, ns: &NsRef, key: &str) -> Result<Option<String>, KernelError>;
    /// `sysctl_get` of each (namespace, key), in order: the real kernel
    /// reads them on a few threads instead of one thread per read.
    fn sysctl_get_many(
        &mut self,
        keys: &[(NsRef, String)],
    ) -> Vec<Result<Option<String>, KernelError>> {
        keys.iter().map(|(ns, k)| self.sysctl_get(ns, k)).collect()
    }
    fn nat_info(&mut self, ns: &NsRef, table: &str) -> Result<Option<TableInfo>, KernelError>;
    /// The sockets listening (TCP) or bound (UDP) in `ns`: a DNAT mapping on
    /// one of their ports would take their traffic. None on the fake.
    fn listeners(&mut self, _ns: &NsRef) -> Result<Vec<Listener>, KernelError> {
        Ok(Vec::new())
    }
    /// "nginx (pid 123)": the process holding socket `inode`, if found.
    fn socket_holder(&mut self, _inode: u64) -> Option<String> {
        None
    }
    /// A table netplumb made, read back as the rules it holds (to restore
    /// it on rollback); None when it is not there or cannot be read back.
    fn nat_table(
        &mut self,
        ns: &NsRef,
        table: &str,
    ) -> Result<Option<netplumb_nft::NatTable>, KernelError>;
    /// Is this sysctl one each network namespace keeps for itself, a knob
    /// of the whole machine that only shows up in the first namespace, or
    /// no sysctl at all?
    fn sysctl_scope(&mut self, key: &str) -> Result<SysctlScope, KernelError>;
    /// The topology's NAT table for people (`show`, `graph`): chains with
    /// their rules as nft-like text, the typed NAT rules, and every map with
    /// its elements typed.
    fn nat_summary(
        &mut self,
        ns: &NsRef,
        table: &str,
    ) -> Result<Option<netplumb_nft::TableSummary>, KernelError>;
    /// Every nf_tables table of the namespace (any family, anyone's), read
    /// back as typed rules plus what they cannot express: for `import`.
    fn nft_tables(&mut self, _ns: &NsRef) -> Result<Vec<netplumb_nft::ReadBack>, KernelError> {
        Ok(Vec::new())
    }
    /// The value a sysctl has in a freshly made namespace (what `import`
    /// compares with); None when a fresh namespace has no such key.
    fn sysctl_fresh(&mut self, _key: &str) -> Result<Option<String>, KernelError> {
        Ok(None)
    }
    /// Apply in order, stopping at the first refusal. Real kernels pipeline.
    fn apply_all(&mut self, ops: &[Op]) -> Outcome<KernelError>;
    fn apply(&mut self, op: &Op) -> Result<Made, KernelError> {
        let out = self.apply_all(std::slice::from_ref(op));
        match out.failed {
            Some((_, e)) => Err(e),
            None => Ok(out
                .applied
                .into_iter()
                .next()
                .flatten()
                .unwrap_or(Made::Nothing)),
        }
    }
    fn exec(&mut self, ns: &NsRef, cmd: &str, timeout: Duration)
    -> Result<ExecOutput, KernelError>;
    fn ping(&mut self, ns: &NsRef, addr: IpAddr) -> Result<bool, KernelError>;
    /// One ICMP echo per (namespace, address), answers in the same order.
    /// Real kernels send them in parallel: each unanswered ping waits its
    /// full second.
    fn ping_many(&mut self, pings: &[(NsRef, IpAddr)]) -> Vec<Result<bool, KernelError>> {
        pings.iter().map(|(ns, a)| self.ping(ns, *a)).collect()
    }
    /// Wait until these links are operationally up (a bridge port
    /// forwarding) and their IPv6 addresses are past duplicate address
    /// detection, for at most `timeout`. Err(NotReady) names what is not.
    fn wait_ready(&mut self, links: &[(NsRef, IfName)], timeout: Duration) -> Result<(), NotReady>;
    /// Why this kernel cannot make link kind or qdisc `what` ("vxlan",
    /// "netem"): "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM)".
    /// None: it can, or nobody can tell here (the recording fake).
    fn lacks(&mut self, what: &str) -> Option<String> {
        let _ = what;
        None
    }
    /// A from-scratch plan (no kernel was asked) takes an adopted device
    /// the script names as there: make it up in the host, or in a
    /// namespace that exists. True when it did. A real kernel never does.
    fn assume_device(&mut self, _ns: &NsRef, _name: &str) -> bool {
        false
    }
    /// Time spent per phase so far (for `-v`).
    fn timings(&self) -> Vec<(String, usize, Duration)> {
        Vec::new()
    }
    /// Start the process of an `Op::StartDaemon`: fork it into its
    /// namespace, hand its identity to `record` (the write-ahead ledger
    /// entry) and only then let it exec; wait until it is ready. A process
    /// that fails later is stopped again before the error is returned.
    /// None: nothing was started (a kernel that only records).
    fn start_daemon(
        &mut self,
        op: &Op,
        record: &mut dyn FnMut(&Identity) -> Result<(), String>,
    ) -> Result<Option<Identity>, KernelError> {
        let _ = record;
        self.apply(op).map(|_| None)
    }
    /// The content of namespace `ns`'s file `path` (/etc/NAME, kept as
    /// /etc/netns/NS/NAME); None when there is none.
    fn etc_read(&mut self, ns: &NsName, path: &str) -> Result<Option<Vec<u8>>, KernelError> {
        let _ = (ns, path);
        Ok(None)
    }
    /// Is a recorded process still the one that was started?
    fn daemon_liveness(&mut self, id: &Identity) -> Liveness {
        id.liveness()
    }
    /// A topology's processes are all stopped: drop what held them (its
    /// cgroup).
    fn daemons_gone(&mut self, topology: &str) {
        let _ = topology;
    }
    /// A TCP connection from `ns` to `to` within `timeout`: None when it
    /// was accepted, else why not ("Connection refused", a timeout).
    fn connect(
        &mut self,
        ns: &NsRef,
        to: std::net::SocketAddr,
        timeout: Duration,
    ) -> Result<Option<String>, KernelError> {
        let _ = timeout;
        Err(KernelError::not_run(format!(
            "connect to {to} from netns {ns}"
        )))
    }
}

/// A socket waiting for traffic in a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub proto: netplumb_nft::L4Proto,
    /// The address it is bound to (unspecified: every address).
    pub addr: std::net::IpAddr,
    pub port: u16,
    /// Its socket inode, to find the process holding it.
    pub inode: u64,
}
