//! The real kernel, read but never changed: `check NAME` and `plan --diff`
//! plan against what is there and only record the ops they would apply;
//! `show` and `graph` read through it. It sends no packets (`ping` and
//! `exec` answer "not run").

use std::net::IpAddr;
use std::time::Duration;

use super::LinuxKernel;
use crate::kernel::{ExecOutput, Kernel, KernelError, NotReady, NsState, TableInfo};
use crate::model::{IfName, NsName, NsRef};
use crate::op::{Made, Op, Outcome};

pub struct ReadOnly {
    real: LinuxKernel,
    pub ops: Vec<Op>,
}

impl ReadOnly {
    pub fn new() -> Result<Self, KernelError> {
        Ok(Self {
            real: LinuxKernel::new()?,
            ops: Vec::new(),
        })
    }
}

impl Kernel for ReadOnly {
    fn netns_list(&mut self) -> Result<Vec<NsName>, KernelError> {
        self.real.netns_list()
    }
    fn netns_ino(&mut self, ns: &NsName) -> Result<Option<u64>, KernelError> {
        self.real.netns_ino(ns)
    }
    fn observe(&mut self, ns: &NsRef) -> Result<NsState, KernelError> {
        self.real.observe(ns)
    }
    fn observe_many(&mut self, nss: &[NsRef]) -> Vec<Result<NsState, KernelError>> {
        self.real.observe_many(nss)
    }
    fn nsid(&mut self, from: &NsRef, to: &NsRef) -> Result<Option<i32>, KernelError> {
        self.real.nsid(from, to)
    }
    fn sysctl_get(&mut self, ns: &NsRef, key: &str) -> Result<Option<String>, KernelError> {
        self.real.sysctl_get(ns, key)
    }
    fn sysctl_get_many(
        &mut self,
        keys: &[(NsRef, String)],
    ) -> Vec<Result<Option<String>, KernelError>> {
        self.real.sysctl_get_many(keys)
    }
    fn sysctl_scope(&mut self, key: &str) -> Result<crate::kernel::SysctlScope, KernelError> {
        self.real.sysctl_scope(key)
    }
    fn socket_holder(&mut self, inode: u64) -> Option<String> {
        self.real.socket_holder(inode)
    }
    fn listeners(&mut self, ns: &NsRef) -> Result<Vec<crate::kernel::Listener>, KernelError> {
        self.real.listeners(ns)
    }
    fn nat_info(&mut self, ns: &NsRef, table: &str) -> Result<Option<TableInfo>, KernelError> {
        self.real.nat_info(ns, table)
    }
    fn nat_table(
        &mut self,
        ns: &NsRef,
        table: &str,
    ) -> Result<Option<netplumb_nft::NatTable>, KernelError> {
        self.real.nat_table(ns, table)
    }
    fn etc_read(&mut self, ns: &NsName, path: &str) -> Result<Option<Vec<u8>>, KernelError> {
        self.real.etc_read(ns, path)
    }
    fn nat_summary(
        &mut self,
        ns: &NsRef,
        table: &str,
    ) -> Result<Option<netplumb_nft::TableSummary>, KernelError> {
        self.real.nat_summary(ns, table)
    }
    fn nft_tables(&mut self, ns: &NsRef) -> Result<Vec<netplumb_nft::ReadBack>, KernelError> {
        self.real.nft_tables(ns)
    }
    fn sysctl_fresh(&mut self, key: &str) -> Result<Option<String>, KernelError> {
        self.real.sysctl_fresh(key)
    }
    fn apply_all(&mut self, ops: &[Op]) -> Outcome<KernelError> {
        self.ops.extend(ops.iter().cloned());
        Outcome::ok(ops.iter().map(|_| Made::Nothing).collect())
    }
    fn exec(&mut self, ns: &NsRef, cmd: &str, _t: Duration) -> Result<ExecOutput, KernelError> {
        Err(KernelError::not_run(format!("exec `{cmd}` in netns {ns}")))
    }
    fn ping(&mut self, ns: &NsRef, addr: IpAddr) -> Result<bool, KernelError> {
        Err(KernelError::not_run(format!("ping {addr} from netns {ns}")))
    }
    fn lacks(&mut self, what: &str) -> Option<String> {
        self.real.lacks(what)
    }
    fn wait_ready(&mut self, _links: &[(NsRef, IfName)], _t: Duration) -> Result<(), NotReady> {
        Ok(())
    }
}
