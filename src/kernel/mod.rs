//! The kernel as netplumb sees it: a small trait, so that plan and apply logic
//! run against a recording fake (for `plan` and unit tests) or the real thing.

mod fake;

use std::net::IpAddr;

pub use fake::Recorder;
use ipnet::IpNet;

use crate::model::{Cidr, NsName, NsRef};
use crate::plan::Op;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub index: u32,
    pub name: String,
    /// `IFLA_INFO_KIND`: "veth", "bridge", … (None for physical devices and lo).
    pub kind: Option<String>,
    pub up: bool,
    /// IFF_LOWER_UP: carrier seen and processed by the kernel's link watch.
    pub lower_up: bool,
    pub mtu: u32,
    pub master: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrState {
    pub index: u32,
    pub cidr: Cidr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteState {
    pub dest: IpNet,
    pub via: Option<IpAddr>,
}

/// One namespace's links, addresses and main-table routes, as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NsState {
    pub links: Vec<LinkState>,
    pub addrs: Vec<AddrState>,
    pub routes: Vec<RouteState>,
}

impl NsState {
    pub fn link(&self, name: &str) -> Option<&LinkState> {
        self.links.iter().find(|l| l.name == name)
    }
    pub fn link_by_index(&self, index: u32) -> Option<&LinkState> {
        self.links.iter().find(|l| l.index == index)
    }
    pub fn has_addr(&self, dev: &str, cidr: &Cidr) -> bool {
        self.link(dev).is_some_and(|l| {
            self.addrs
                .iter()
                .any(|a| a.index == l.index && &a.cidr == cidr)
        })
    }
    pub fn has_route(&self, dest: &IpNet, via: &IpAddr) -> bool {
        self.routes
            .iter()
            .any(|r| &r.dest == dest && r.via.as_ref() == Some(via))
    }
    /// Is `gw` on a subnet one of this namespace's addresses is on?
    pub fn reaches(&self, gw: &IpAddr) -> bool {
        self.addrs.iter().any(|a| a.cidr.trunc().contains(gw))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub status: i64,
    pub stdout: String,
    pub stderr: String,
}

/// A refusal or failure from the kernel, with its errno when there is one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{msg}")]
pub struct KernelError {
    pub errno: Option<i32>,
    pub msg: String,
    /// For NAT: the tag of the rule the kernel refused.
    pub tag: Option<usize>,
}

impl KernelError {
    pub fn errno(errno: i32, msg: impl Into<String>) -> Self {
        Self {
            errno: Some(errno),
            msg: msg.into(),
            tag: None,
        }
    }
    pub fn other(msg: impl Into<String>) -> Self {
        Self {
            errno: None,
            msg: msg.into(),
            tag: None,
        }
    }
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno,
            Some(libc::ENOENT | libc::ENODEV | libc::ESRCH | libc::EADDRNOTAVAIL)
        )
    }
}

impl From<std::io::Error> for KernelError {
    fn from(e: std::io::Error) -> Self {
        Self {
            errno: e.raw_os_error(),
            msg: e.to_string(),
            tag: None,
        }
    }
}

pub trait Kernel: Send {
    fn netns_exists(&mut self, ns: &NsName) -> Result<bool, KernelError>;
    fn observe(&mut self, ns: &NsRef) -> Result<NsState, KernelError>;
    fn sysctl_get(&mut self, ns: &NsRef, key: &str) -> Result<Option<String>, KernelError>;
    fn nat_userdata(&mut self, ns: &NsRef, table: &str) -> Result<Option<Vec<u8>>, KernelError>;
    fn apply(&mut self, op: &Op) -> Result<(), KernelError>;
    /// Apply in order, stopping at the first failure (its index is returned).
    /// Real kernels override this to pipeline requests.
    fn apply_all(&mut self, ops: &[Op]) -> Result<(), (usize, KernelError)> {
        for (i, op) in ops.iter().enumerate() {
            self.apply(op).map_err(|e| (i, e))?;
        }
        Ok(())
    }
    fn exec(
        &mut self,
        ns: &NsRef,
        cmd: &str,
        timeout: std::time::Duration,
    ) -> Result<ExecOutput, KernelError>;
    fn ping(&mut self, ns: &NsRef, addr: IpAddr) -> Result<bool, KernelError>;
    /// Time spent per phase so far (for `-v`).
    fn timings(&self) -> Vec<(String, usize, std::time::Duration)> {
        Vec::new()
    }
    /// False for the recording fake: `plan` says so where results are made up.
    fn is_real(&self) -> bool {
        true
    }
}

impl KernelError {
    /// Prefix the message with what was being done.
    pub fn context(mut self, what: &str) -> Self {
        self.msg = format!("{what}: {}", self.msg);
        self
    }
}
