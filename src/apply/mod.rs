//! The only code that touches the kernel: namespaces (mounts), rtnetlink,
//! /proc/sys, nf_tables, and processes run inside namespaces.

mod batch;
mod conn;
mod daemon;
mod exec;
mod fdb_msg;
mod kinds;
mod linkindex;
mod linkwait;
mod listen;
mod msg;
pub mod netns;
mod ping;
mod pool;
mod read;
mod readonly;
mod ready;
mod request;
mod routes;
mod rtnl;
mod special;
mod sysctl;

// The kernel-facing layer of issue 16 (link kinds and attributes, routes and
// rules, shaping, kernel features): self-contained until the lead wires it
// into the object kinds, hence dead code for now.
#[allow(dead_code)]
pub mod addr_msg;
#[allow(dead_code)]
pub mod bridge_msg;
#[allow(dead_code)]
pub mod features;
#[allow(dead_code)]
pub mod link_msg;
#[allow(dead_code)]
pub mod route_msg;
#[allow(dead_code)]
pub mod rule_msg;
#[allow(dead_code)]
pub mod tc;
#[cfg(test)]
mod testns;
#[allow(dead_code)]
pub mod tun;
#[allow(dead_code)]
pub mod vxlan_msg;

use std::collections::HashMap;
use std::fs::File;
use std::net::IpAddr;
use std::time::Duration;

pub use exec::command_in;
pub use readonly::ReadOnly;

use crate::kernel::{
    ExecOutput, Kernel, KernelError, Listener, NotReady, NsState, SysctlScope, TableInfo,
};
use crate::model::{IfName, NsName, NsRef};
use crate::op::{Op, Outcome};
use conn::Conns;
use linkindex::LinkIndex;
use netns::{NetnsDir, in_ns};

pub struct LinuxKernel {
    nsdir: NetnsDir,
    conns: Conns,
    index: LinkIndex,
    ready_seen: ready::SeenReady,
    /// Where each sysctl key lives (asked once each).
    per_netns: HashMap<String, SysctlScope>,
    /// Sysctl values of a fresh namespace (asked once each).
    fresh: HashMap<String, Option<String>>,
    /// Time per phase, for `-v`: where an apply spends its time.
    timing: Vec<(&'static str, usize, Duration)>,
}

impl LinuxKernel {
    pub fn new() -> Result<Self, KernelError> {
        let host = File::open("/proc/self/ns/net")
            .map_err(|e| KernelError::from(e).context("cannot open this process's netns"))?;
        Ok(Self {
            nsdir: NetnsDir::default(),
            conns: Conns::new(host),
            index: LinkIndex::default(),
            ready_seen: ready::SeenReady::default(),
            per_netns: HashMap::new(),
            fresh: HashMap::new(),
            timing: Vec::new(),
        })
    }

    fn forget(&mut self, ns: &NsRef) {
        self.index.forget(ns);
    }

    fn sysctl_path(key: &str) -> String {
        format!("/proc/sys/{}", key.replace('.', "/"))
    }

    fn timed<T>(&mut self, what: &'static str, n: usize, f: impl FnOnce(&mut Self) -> T) -> T {
        let t = std::time::Instant::now();
        let r = f(self);
        let d = t.elapsed();
        match self.timing.iter_mut().find(|(w, _, _)| *w == what) {
            Some((_, c, total)) => {
                *c += n;
                *total += d;
            }
            None => self.timing.push((what, n, d)),
        }
        r
    }
}

/// The same key in a namespace that has none of this machine's devices:
/// per-device keys are asked about through the "default" entry.
fn generic_key(key: &str) -> String {
    let parts: Vec<&str> = key.split('.').collect();
    match parts.as_slice() {
        [
            "net",
            fam @ ("ipv4" | "ipv6"),
            kind @ ("conf" | "neigh"),
            _dev,
            rest @ ..,
        ] => {
            let mut v = vec!["net", fam, kind, "default"];
            v.extend(rest);
            v.join(".")
        }
        _ => key.to_string(),
    }
}

impl Kernel for LinuxKernel {
    fn netns_list(&mut self) -> Result<Vec<NsName>, KernelError> {
        Ok(self.nsdir.list())
    }

    fn netns_ino(&mut self, ns: &NsName) -> Result<Option<u64>, KernelError> {
        Ok(self.nsdir.ino(ns))
    }

    fn observe(&mut self, ns: &NsRef) -> Result<NsState, KernelError> {
        let st = read::read_ns(self.conns.rtnl(&self.nsdir, ns)?)?;
        self.index.relearn(ns, &st.links);
        Ok(st)
    }

    fn observe_many(&mut self, nss: &[NsRef]) -> Vec<Result<NsState, KernelError>> {
        // A few namespaces: the cached sockets are quicker than threads.
        if nss.len() < 8 {
            return nss.iter().map(|ns| self.observe(ns)).collect();
        }
        let out = self.timed("read (parallel)", nss.len(), |k| {
            read::read_many(&k.nsdir, nss)
        });
        for (ns, r) in nss.iter().zip(&out) {
            if let Ok(st) = r {
                self.index.relearn(ns, &st.links);
            }
        }
        out
    }

    fn link_names(&mut self, ns: &NsRef) -> Result<Vec<String>, KernelError> {
        let links = read::read_links(self.conns.rtnl(&self.nsdir, ns)?)?;
        Ok(links.into_iter().map(|l| l.name).collect())
    }

    fn wait_links_gone(
        &mut self,
        ns: &NsRef,
        names: &[String],
        patience: std::time::Duration,
    ) -> Result<Vec<String>, KernelError> {
        self.wait_gone(ns, names, patience)
    }

    fn nsid(&mut self, from: &NsRef, to: &NsRef) -> Result<Option<i32>, KernelError> {
        let f = self.conns.ns_file(&self.nsdir, to)?;
        read::nsid_query(
            self.conns.rtnl(&self.nsdir, from)?,
            std::os::fd::AsRawFd::as_raw_fd(&f),
        )
    }

    fn socket_holder(&mut self, inode: u64) -> Option<String> {
        listen::holder(inode)
    }

    fn listeners(&mut self, ns: &NsRef) -> Result<Vec<Listener>, KernelError> {
        let f = self.conns.file(&self.nsdir, ns)?;
        in_ns(f, || listen::listeners().map_err(KernelError::from))
    }

    fn sysctl_get(&mut self, ns: &NsRef, key: &str) -> Result<Option<String>, KernelError> {
        let path = Self::sysctl_path(key);
        let f = self.conns.file(&self.nsdir, ns)?;
        in_ns(f, || sysctl::read_one(&path))
    }

    fn sysctl_get_many(
        &mut self,
        keys: &[(NsRef, String)],
    ) -> Vec<Result<Option<String>, KernelError>> {
        sysctl::read_many(&self.nsdir, keys)
    }

    fn sysctl_scope(&mut self, key: &str) -> Result<SysctlScope, KernelError> {
        if let Some(v) = self.per_netns.get(key) {
            return Ok(*v);
        }
        // A knob of the whole machine exists only in the first namespace:
        // look for it in a throwaway one.
        let path = Self::sysctl_path(&generic_key(key));
        let found = std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| KernelError::errno(e as i32, "unshare(CLONE_NEWNET)"))?;
                Ok::<bool, KernelError>(std::path::Path::new(&path).exists())
            })
            .join()
            .unwrap_or_else(|_| Err(KernelError::other("namespace thread panicked")))
        })?;
        let scope = if found {
            SysctlScope::PerNetns
        } else if std::path::Path::new(&Self::sysctl_path(key)).exists() {
            SysctlScope::Global
        } else {
            SysctlScope::Missing
        };
        self.per_netns.insert(key.to_string(), scope);
        Ok(scope)
    }

    fn nat_info(&mut self, ns: &NsRef, table: &str) -> Result<Option<TableInfo>, KernelError> {
        let info = self
            .conns
            .nft(&self.nsdir, ns)?
            .table_info(table)
            .map_err(batch::nft_err)?;
        // A table without the crate's marker (made by nft, say) reads back
        // with empty userdata: never netplumb's.
        Ok(info.map(|i| TableInfo {
            handle: i.handle,
            userdata: i.marker().map(<[u8]>::to_vec).unwrap_or_default(),
        }))
    }

    fn nat_table(
        &mut self,
        ns: &NsRef,
        table: &str,
    ) -> Result<Option<netplumb_nft::NatTable>, KernelError> {
        let rb = self
            .conns
            .nft(&self.nsdir, ns)?
            .read_table(table)
            .map_err(batch::nft_err)?;
        Ok(rb.map(|r| {
            let mut t = r.table;
            t.name = table.to_string();
            t
        }))
    }

    fn nat_summary(
        &mut self,
        ns: &NsRef,
        table: &str,
    ) -> Result<Option<netplumb_nft::TableSummary>, KernelError> {
        self.conns
            .nft(&self.nsdir, ns)?
            .table_summary(table)
            .map_err(batch::nft_err)
    }

    fn nft_tables(&mut self, ns: &NsRef) -> Result<Vec<netplumb_nft::ReadBack>, KernelError> {
        let s = self.conns.nft(&self.nsdir, ns)?;
        let mut out = Vec::new();
        for t in s.list_tables().map_err(batch::nft_err)? {
            if let Some(rb) = s.read_table_in(t.family, &t.name).map_err(batch::nft_err)? {
                out.push(rb);
            }
        }
        Ok(out)
    }

    fn sysctl_fresh(&mut self, key: &str) -> Result<Option<String>, KernelError> {
        if let Some(v) = self.fresh.get(key) {
            return Ok(v.clone());
        }
        // What a namespace made now starts with: read in a throwaway one,
        // from a thread so that this process stays where it is.
        let path = Self::sysctl_path(key);
        let v = std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| KernelError::errno(e as i32, "unshare(CLONE_NEWNET)"))?;
                match std::fs::read_to_string(&path) {
                    Ok(s) => Ok(Some(s.trim().to_string())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(KernelError::from(e)),
                }
            })
            .join()
            .unwrap_or_else(|_| Err(KernelError::other("namespace thread panicked")))
        })?;
        self.fresh.insert(key.to_string(), v.clone());
        Ok(v)
    }

    fn apply_all(&mut self, ops: &[Op]) -> Outcome<KernelError> {
        batch::apply_all(self, ops)
    }

    fn exec(
        &mut self,
        ns: &NsRef,
        cmd: &str,
        timeout: Duration,
    ) -> Result<ExecOutput, KernelError> {
        let name = match ns {
            NsRef::Named(n) => Some(n.as_str().to_string()),
            NsRef::Host => None,
        };
        let f = self.conns.file(&self.nsdir, ns)?;
        let target = f.map(|file| crate::proc::NsTarget {
            file,
            name: name.as_deref(),
        });
        exec::run_in(target, cmd, timeout)
    }

    fn ping(&mut self, ns: &NsRef, addr: IpAddr) -> Result<bool, KernelError> {
        let f = self.conns.file(&self.nsdir, ns)?;
        in_ns(f, || ping::ping_once(addr))
    }

    fn ping_many(&mut self, pings: &[(NsRef, IpAddr)]) -> Vec<Result<bool, KernelError>> {
        ping::ping_parallel(&self.nsdir, pings)
    }

    fn wait_ready(&mut self, links: &[(NsRef, IfName)], timeout: Duration) -> Result<(), NotReady> {
        ready::wait(self, links, timeout)
    }

    fn lacks(&mut self, what: &str) -> Option<String> {
        let f = features::Feature::from_link_kind(what).or(features::Feature::from_qdisc(what))?;
        features::require(f).err().map(|e| e.to_string())
    }

    fn start_daemon(
        &mut self,
        op: &Op,
        record: &mut dyn FnMut(&crate::proc::Identity) -> Result<(), String>,
    ) -> Result<Option<crate::proc::Identity>, KernelError> {
        match op {
            Op::StartDaemon { ns, daemon: d } => daemon::start(self, ns, d, record).map(Some),
            _ => self.apply(op).map(|_| None),
        }
    }

    fn etc_read(&mut self, ns: &NsName, path: &str) -> Result<Option<Vec<u8>>, KernelError> {
        daemon::etc_file(ns, path)?
            .read()
            .map_err(|e| KernelError::other(e.to_string()))
    }

    fn daemons_gone(&mut self, topology: &str) {
        daemon::forget_cgroup(topology);
    }

    fn connect(
        &mut self,
        ns: &NsRef,
        to: std::net::SocketAddr,
        timeout: Duration,
    ) -> Result<Option<String>, KernelError> {
        daemon::connect(self, ns, to, timeout)
    }

    fn timings(&self) -> Vec<(String, usize, Duration)> {
        self.timing
            .iter()
            .map(|(w, n, d)| (w.to_string(), *n, *d))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::generic_key;

    #[test]
    fn device_keys_are_asked_through_default() {
        assert_eq!(
            generic_key("net.ipv6.conf.eth0.disable_ipv6"),
            "net.ipv6.conf.default.disable_ipv6"
        );
        assert_eq!(generic_key("net.ipv4.ip_forward"), "net.ipv4.ip_forward");
        assert_eq!(
            generic_key("net.ipv4.neigh.br0.gc_stale_time"),
            "net.ipv4.neigh.default.gc_stale_time"
        );
    }
}
