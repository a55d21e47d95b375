//! The kernel as netplumb sees it: a small trait, so that the planner, the
//! runner and the read-back commands (`show`, `graph`, `ping-all`, `check`)
//! run against a recording fake (for `plan` and unit tests) or the real thing.

mod fake;
pub mod routes;
pub mod shape;
mod state;

use std::net::IpAddr;
use std::time::Duration;

pub use fake::Recorder;
pub use state::{
    Addr, ExecOutput, Link, NsState, Qdisc, RT_TABLE_MAIN, Route, RouteHop, Rule, TableInfo,
};

use crate::model::{IfName, NsName, NsRef};
use crate::op::{Made, Op, Outcome};

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

// `netns_list`, `nsid` and `nat_summary` serve the read-back commands
// (show, graph, ping-all), which move onto this trait next.
#[allow(dead_code)]
pub trait Kernel: Send {
    /// Every named namespace (under /run/netns), sorted.
    fn netns_list(&mut self) -> Result<Vec<NsName>, KernelError>;
    /// The namespace's identity (its nsfs inode) when it exists.
    fn netns_ino(&mut self, ns: &NsName) -> Result<Option<u64>, KernelError>;
    /// Links, addresses and routes of one namespace.
    fn observe(&mut self, ns: &NsRef) -> Result<NsState, KernelError>;
    /// The names of a namespace's links (cheaper than a full observe).
    fn link_names(&mut self, ns: &NsRef) -> Result<Vec<String>, KernelError> {
        Ok(self
            .observe(ns)?
            .links
            .into_iter()
            .map(|l| l.name)
            .collect())
    }
    /// The id namespace `from` gives namespace `to` (how a veth in `from`
    /// names its peer's namespace); None when it has none.
    fn nsid(&mut self, from: &NsRef, to: &NsRef) -> Result<Option<i32>, KernelError>;
    fn sysctl_get(&mut self, ns: &NsRef, key: &str) -> Result<Option<String>, KernelError>;
    fn nat_info(&mut self, ns: &NsRef, table: &str) -> Result<Option<TableInfo>, KernelError>;
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
    /// The topology's NAT table as nft-like text, for `show` and `graph`.
    fn nat_summary(
        &mut self,
        ns: &NsRef,
        table: &str,
    ) -> Result<Option<netplumb_nft::TableSummary>, KernelError>;
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
    /// Time spent per phase so far (for `-v`).
    fn timings(&self) -> Vec<(String, usize, Duration)> {
        Vec::new()
    }
}
