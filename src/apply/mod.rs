//! The only code that touches the kernel: namespaces (mounts), rtnetlink,
//! /proc/sys, nf_tables, and processes run inside namespaces.

mod exec;
pub mod inspect;
pub use exec::command_in;
mod msg;
pub mod netns;
mod observe;
mod ping;
mod rtnl;

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
use std::os::fd::{AsRawFd, RawFd};

use netplumb_nft::{NftError, NftSocket};

use crate::kernel::{ExecOutput, Kernel, KernelError, NsState};
use crate::model::{NsName, NsRef};
use crate::plan::{LinkChange, Op, VethWith};
use netns::{NetnsDir, in_ns};
use rtnl::Rtnl;

pub struct LinuxKernel {
    nsdir: NetnsDir,
    host: File,
    files: HashMap<NsName, File>,
    rtnl: HashMap<NsRef, Rtnl>,
    nft: HashMap<NsRef, NftSocket>,
    index: HashMap<(NsRef, String), u32>,
    /// Time per phase, for `-v`: where an apply spends its time.
    timing: Vec<(&'static str, usize, std::time::Duration)>,
}

impl LinuxKernel {
    pub fn new() -> Result<Self, KernelError> {
        Ok(Self {
            nsdir: NetnsDir::default(),
            host: File::open("/proc/self/ns/net")
                .map_err(|e| KernelError::from(e).context("cannot open this process's netns"))?,
            files: HashMap::new(),
            rtnl: HashMap::new(),
            nft: HashMap::new(),
            index: HashMap::new(),
            timing: Vec::new(),
        })
    }

    fn file(&mut self, ns: &NsRef) -> Result<Option<&File>, KernelError> {
        match ns {
            NsRef::Host => Ok(None),
            NsRef::Named(n) => {
                if !self.files.contains_key(n) {
                    let f = self.nsdir.open(n)?;
                    self.files.insert(n.clone(), f);
                }
                Ok(self.files.get(n))
            }
        }
    }

    /// An fd naming `ns` for IFLA_NET_NS_FD.
    fn ns_fd(&mut self, ns: &NsRef) -> Result<RawFd, KernelError> {
        match ns {
            NsRef::Host => Ok(self.host.as_raw_fd()),
            NsRef::Named(_) => Ok(self.file(ns)?.map(|f| f.as_raw_fd()).unwrap_or(-1)),
        }
    }

    fn rt(&mut self, ns: &NsRef) -> Result<&mut Rtnl, KernelError> {
        if !self.rtnl.contains_key(ns) {
            let f = self.file(ns)?;
            let sock = in_ns(f, || Rtnl::open().map_err(KernelError::from))?;
            self.rtnl.insert(ns.clone(), sock);
        }
        self.rtnl
            .get_mut(ns)
            .ok_or_else(|| KernelError::other("socket vanished"))
    }

    fn nft(&mut self, ns: &NsRef) -> Result<&mut NftSocket, KernelError> {
        if !self.nft.contains_key(ns) {
            let f = self.file(ns)?;
            let sock = in_ns(f, || NftSocket::open().map_err(KernelError::from))?;
            self.nft.insert(ns.clone(), sock);
        }
        self.nft
            .get_mut(ns)
            .ok_or_else(|| KernelError::other("socket vanished"))
    }

    fn ifindex(&mut self, ns: &NsRef, name: &str) -> Result<u32, KernelError> {
        if let Some(i) = self.index.get(&(ns.clone(), name.to_string())) {
            return Ok(*i);
        }
        let st = observe::observe_links(self.rt(ns)?)?;
        for l in &st {
            self.index.insert((ns.clone(), l.name.clone()), l.index);
        }
        self.index
            .get(&(ns.clone(), name.to_string()))
            .copied()
            .ok_or_else(|| {
                KernelError::errno(libc::ENODEV, format!("no device {name} in netns {ns}"))
            })
    }

    fn forget(&mut self, ns: &NsRef) {
        self.index.retain(|(n, _), _| n != ns);
    }

    fn forget_netns(&mut self, ns: &NsName) {
        let r = NsRef::Named(ns.clone());
        self.rtnl.remove(&r);
        self.nft.remove(&r);
        self.files.remove(ns);
        self.forget(&r);
    }

    fn sysctl_path(key: &str) -> String {
        format!("/proc/sys/{}", key.replace('.', "/"))
    }

    fn nft_err(e: NftError) -> KernelError {
        let tag = match &e {
            NftError::Kernel { tag, .. } => *tag,
            NftError::Invalid { tag, .. } => Some(*tag),
            _ => None,
        };
        let errno = match &e {
            NftError::Kernel { errno, .. } => Some(*errno),
            NftError::Io(io) => io.raw_os_error(),
            _ => None,
        };
        KernelError {
            errno,
            msg: e.to_string(),
            tag,
        }
    }
}

impl Kernel for LinuxKernel {
    fn netns_exists(&mut self, ns: &NsName) -> Result<bool, KernelError> {
        Ok(self.nsdir.exists(ns))
    }

    fn observe(&mut self, ns: &NsRef) -> Result<NsState, KernelError> {
        let st = observe::observe(self.rt(ns)?)?;
        self.forget(ns);
        for l in &st.links {
            self.index.insert((ns.clone(), l.name.clone()), l.index);
        }
        Ok(st)
    }

    fn sysctl_get(&mut self, ns: &NsRef, key: &str) -> Result<Option<String>, KernelError> {
        let path = Self::sysctl_path(key);
        let f = self.file(ns)?;
        in_ns(f, || match std::fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(KernelError::from(e)),
        })
    }

    fn nat_userdata(&mut self, ns: &NsRef, table: &str) -> Result<Option<Vec<u8>>, KernelError> {
        self.nft(ns)?.table_userdata(table).map_err(Self::nft_err)
    }

    fn apply(&mut self, op: &Op) -> Result<(), KernelError> {
        self.apply_all(std::slice::from_ref(op)).map_err(|(_, e)| e)
    }

    fn apply_all(&mut self, ops: &[Op]) -> Result<(), (usize, KernelError)> {
        // Consecutive rtnetlink requests in one namespace are pipelined; the
        // pipeline is drained whenever an op needs an ifindex we do not know
        // yet (the device may be created by a request still in it).
        let mut pending: Vec<msg::Req> = Vec::new();
        let mut first = 0;
        let mut ns = NsRef::Host;
        let mut skip_until = 0;
        for (i, op) in ops.iter().enumerate() {
            if i < skip_until {
                continue;
            }
            if let Op::AddNetns { .. } = op {
                let names: Vec<NsName> = ops[i..]
                    .iter()
                    .map_while(|o| match o {
                        Op::AddNetns { ns } => Some(ns.clone()),
                        _ => None,
                    })
                    .collect();
                if names.len() > 1 {
                    if !pending.is_empty() {
                        self.send(&ns, std::mem::take(&mut pending), first)?;
                    }
                    self.timed("netns create (parallel)", names.len(), |k| {
                        k.add_netns_many(&names, i)
                    })?;
                    skip_until = i + names.len();
                    continue;
                }
            }
            let op_ns = op.ns();
            let needs_drain = !pending.is_empty()
                && (op_ns != ns || !self.indexes_known(op) || !Self::is_rtnetlink(op));
            if needs_drain {
                self.send(&ns, std::mem::take(&mut pending), first)?;
            }
            if !Self::is_rtnetlink(op) {
                let what = match op {
                    Op::AddNetns { .. } => "netns create",
                    Op::DelNetns { .. } => "netns delete",
                    Op::Sysctl { .. } => "sysctl",
                    _ => "nf_tables",
                };
                self.timed(what, 1, |k| k.apply_special(op))
                    .map_err(|e| (i, e))?;
                continue;
            }
            if pending.is_empty() {
                first = i;
                ns = op_ns;
            }
            let req = self.request_for(op).map_err(|e| (i, e))?;
            pending.push(req);
            match op {
                Op::DelLink { ns, name }
                | Op::MoveLink { ns, name, .. }
                | Op::RenameLink { ns, name, .. } => {
                    self.index.remove(&(ns.clone(), name.to_string()));
                }
                _ => {}
            }
        }
        if !pending.is_empty() {
            self.send(&ns, pending, first)?;
        }
        Ok(())
    }

    fn exec(
        &mut self,
        ns: &NsRef,
        cmd: &str,
        timeout: std::time::Duration,
    ) -> Result<ExecOutput, KernelError> {
        let f = self.file(ns)?;
        exec::run(f, cmd, timeout)
    }

    fn timings(&self) -> Vec<(String, usize, std::time::Duration)> {
        self.timing
            .iter()
            .map(|(w, n, d)| (w.to_string(), *n, *d))
            .collect()
    }

    fn ping(&mut self, ns: &NsRef, addr: IpAddr) -> Result<bool, KernelError> {
        let f = self.file(ns)?;
        in_ns(f, || ping::ping_once(addr))
    }
}

/// Runs inside a namespace just made: its rtnetlink socket, and `lo` up
/// (it starts down).
fn new_ns_init() -> Result<Rtnl, KernelError> {
    let mut rt = Rtnl::open()?;
    let (m, fl) = msg::set_link(msg::by_index(1).up());
    rt.request(m, fl)?;
    Ok(rt)
}

impl LinuxKernel {
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

    fn adopt_netns(&mut self, ns: &NsName, f: File, rt: Rtnl) {
        let r = NsRef::Named(ns.clone());
        self.forget(&r);
        self.files.insert(ns.clone(), f);
        self.rtnl.insert(r, rt);
    }

    /// A run of namespace creations, in parallel.
    fn add_netns_many(
        &mut self,
        names: &[NsName],
        first: usize,
    ) -> Result<(), (usize, KernelError)> {
        let results = self.nsdir.create_many(names, new_ns_init);
        let mut failure = None;
        for (k, (ns, r)) in names.iter().zip(results).enumerate() {
            match r {
                Ok((f, rt)) => self.adopt_netns(ns, f, rt),
                Err(e) => {
                    if failure.is_none() {
                        failure = Some((first + k, e));
                    }
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    fn send(
        &mut self,
        ns: &NsRef,
        reqs: Vec<msg::Req>,
        first: usize,
    ) -> Result<(), (usize, KernelError)> {
        let what = if *ns == NsRef::Host {
            "rtnetlink host"
        } else {
            "rtnetlink in namespaces"
        };
        let n = reqs.len();
        self.timed(what, n, |k| {
            let rt = k.rt(ns).map_err(|e| (first, e))?;
            rt.request_many(reqs).map_err(|(j, e)| (first + j, e))
        })
    }

    /// Is the op one rtnetlink request (the rest are mounts, /proc/sys, nf_tables)?
    fn is_rtnetlink(op: &Op) -> bool {
        !matches!(
            op,
            Op::AddNetns { .. }
                | Op::DelNetns { .. }
                | Op::Sysctl { .. }
                | Op::ReplaceNat { .. }
                | Op::DelNat { .. }
        )
    }

    /// Whether every ifindex the op needs is already known.
    fn indexes_known(&self, op: &Op) -> bool {
        let known = |ns: &NsRef, n: &str| self.index.contains_key(&(ns.clone(), n.to_string()));
        match op {
            Op::RenameLink { ns, name, .. } => known(ns, name.as_str()),
            Op::AddVeth {
                ns,
                with: VethWith {
                    master: Some(m), ..
                },
                ..
            } => known(ns, m.as_str()),
            Op::SetLink {
                ns,
                change: LinkChange::Master(Some(m)),
                ..
            } => known(ns, m.as_str()),
            Op::AddAddr { ns, dev, .. } | Op::DelAddr { ns, dev, .. } => known(ns, dev.as_str()),
            _ => true,
        }
    }

    /// The rtnetlink request for an op (callers check `is_rtnetlink` first).
    fn request_for(&mut self, op: &Op) -> Result<msg::Req, KernelError> {
        Ok(match op {
            Op::AddVeth {
                ns,
                name,
                peer_ns,
                peer,
                with,
            } => {
                let fd = if peer_ns == ns {
                    None
                } else {
                    Some(self.ns_fd(peer_ns)?)
                };
                let master = match &with.master {
                    Some(m) => Some(self.ifindex(ns, m.as_str())?),
                    None => None,
                };
                msg::add_veth(name.as_str(), peer.as_str(), fd, master, with.up)
            }
            Op::AddBridge { name, .. } => msg::add_bridge(name.as_str()),
            Op::DelLink { name, .. } => msg::del_link(name.as_str()),
            Op::MoveLink { ns: _, name, to } => {
                let fd = self.ns_fd(to)?;
                msg::set_link(msg::by_name(name.as_str()).setns_by_fd(fd))
            }
            Op::RenameLink { ns, name, to } => {
                let idx = self.ifindex(ns, name.as_str())?;
                msg::set_link(msg::by_index(idx).name(to.to_string()))
            }
            Op::SetLink { ns, name, change } => match change {
                LinkChange::Up(true) => msg::set_link(msg::by_name(name.as_str()).up()),
                LinkChange::Up(false) => msg::set_link(msg::by_name(name.as_str()).down()),
                LinkChange::Mtu(m) => msg::set_link(msg::by_name(name.as_str()).mtu(*m)),
                LinkChange::Master(Some(m)) => {
                    let idx = self.ifindex(ns, m.as_str())?;
                    msg::set_link(msg::by_name(name.as_str()).controller(idx))
                }
                LinkChange::Master(None) => {
                    msg::set_link(msg::by_name(name.as_str()).nocontroller())
                }
                LinkChange::Stp(on) => msg::set_stp(name.as_str(), *on),
            },
            Op::AddAddr { ns, dev, cidr } => msg::add_addr(self.ifindex(ns, dev.as_str())?, cidr),
            Op::DelAddr { ns, dev, cidr } => msg::del_addr(self.ifindex(ns, dev.as_str())?, cidr),
            Op::AddRoute { dest, via, .. } => msg::add_route(dest, via)?,
            Op::DelRoute { dest, via, .. } => msg::del_route(dest, via)?,
            Op::AddNetns { .. }
            | Op::DelNetns { .. }
            | Op::Sysctl { .. }
            | Op::ReplaceNat { .. }
            | Op::DelNat { .. } => {
                return Err(KernelError::other(format!(
                    "not an rtnetlink op: {}",
                    op.summary()
                )));
            }
        })
    }

    fn apply_special(&mut self, op: &Op) -> Result<(), KernelError> {
        match op {
            Op::AddNetns { ns } => {
                let (f, rt) = self.nsdir.create(ns, new_ns_init)?;
                self.adopt_netns(ns, f, rt);
                Ok(())
            }
            Op::DelNetns { ns } => {
                self.forget_netns(ns);
                self.nsdir.delete(ns)
            }
            Op::Sysctl { ns, key, value } => {
                let path = Self::sysctl_path(key);
                let f = self.file(ns)?;
                in_ns(f, || {
                    std::fs::write(&path, value.as_bytes())
                        .map_err(|e| KernelError::from(e).context(&format!("cannot set {key}")))
                })
            }
            Op::ReplaceNat { ns, table } => {
                self.nft(ns)?.replace_table(table).map_err(Self::nft_err)
            }
            Op::DelNat { ns, table } => {
                let existed = self.nft(ns)?.delete_table(table).map_err(Self::nft_err)?;
                if existed {
                    Ok(())
                } else {
                    Err(KernelError::errno(
                        libc::ENOENT,
                        format!("no NAT table {table}"),
                    ))
                }
            }
            other => Err(KernelError::other(format!(
                "not a special op: {}",
                other.summary()
            ))),
        }
    }
}
