//! A recording kernel: keeps a model of namespaces, links, addresses and
//! routes, records every op, and refuses what the real kernel would refuse
//! (EEXIST, ENODEV). `plan` runs on it; unit tests check apply logic with it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::{AddrState, ExecOutput, Kernel, KernelError, LinkState, NsState, RouteState};
use crate::model::{NsName, NsRef};
use crate::plan::{LinkChange, Op};

#[derive(Debug, Default, Clone)]
pub struct Recorder {
    pub log: Vec<Op>,
    pub netns: BTreeSet<NsName>,
    pub state: BTreeMap<NsRef, NsState>,
    pub sysctls: BTreeMap<(NsRef, String), String>,
    pub nat: BTreeMap<(NsRef, String), Vec<u8>>,
    next_index: u32,
    /// Fail the n-th op applied (0-based) with EPERM, once: for rollback tests.
    pub fail_at: Option<usize>,
    /// veth pairs: deleting one end, or the namespace of one end, deletes both.
    pairs: Vec<[(NsRef, String); 2]>,
}

impl Recorder {
    pub fn new() -> Self {
        let mut r = Self {
            next_index: 2,
            ..Self::default()
        };
        r.state.insert(NsRef::Host, Self::fresh_ns());
        r
    }

    /// A new namespace as the kernel makes it, with `lo` up.
    fn fresh_ns() -> NsState {
        NsState {
            links: vec![LinkState {
                index: 1,
                name: "lo".into(),
                kind: None,
                up: true,
                lower_up: true,
                mtu: 65536,
                master: None,
            }],
            // What the kernel gives `lo` once it is up.
            addrs: ["127.0.0.1/8", "::1/128"]
                .iter()
                .filter_map(|c| crate::model::Cidr::parse(c).ok())
                .map(|cidr| AddrState { index: 1, cidr })
                .collect(),
            ..NsState::default()
        }
    }

    fn ns_mut(&mut self, ns: &NsRef) -> Result<&mut NsState, KernelError> {
        self.state
            .get_mut(ns)
            .ok_or_else(|| KernelError::errno(libc::ENOENT, format!("netns {ns} does not exist")))
    }

    fn add_link(&mut self, ns: &NsRef, name: &str, kind: &str) -> Result<(), KernelError> {
        let index = self.next_index;
        self.next_index += 1;
        let st = self.ns_mut(ns)?;
        if st.link(name).is_some() {
            return Err(KernelError::errno(libc::EEXIST, "File exists"));
        }
        st.links.push(LinkState {
            index,
            name: name.into(),
            kind: Some(kind.into()),
            up: false,
            lower_up: false,
            mtu: 1500,
            master: None,
        });
        Ok(())
    }

    /// Remove these link ends (and forget their pairs).
    fn drop_ends(&mut self, ends: &[(NsRef, String)]) {
        for (ns, name) in ends {
            if let Some(st) = self.state.get_mut(ns) {
                st.links.retain(|l| &l.name != name);
            }
        }
        self.pairs
            .retain(|p| !ends.contains(&p[0]) && !ends.contains(&p[1]));
    }

    fn rename_end(&mut self, ns: &NsRef, name: &str, to_ns: &NsRef, to: &str) {
        for p in &mut self.pairs {
            for end in p.iter_mut() {
                if &end.0 == ns && end.1 == name {
                    *end = (to_ns.clone(), to.to_string());
                }
            }
        }
    }

    fn link_mut(&mut self, ns: &NsRef, name: &str) -> Result<&mut LinkState, KernelError> {
        self.ns_mut(ns)?
            .links
            .iter_mut()
            .find(|l| l.name == name)
            .ok_or_else(|| KernelError::errno(libc::ENODEV, "No such device"))
    }
}

impl Kernel for Recorder {
    fn netns_exists(&mut self, ns: &NsName) -> Result<bool, KernelError> {
        Ok(self.netns.contains(ns))
    }

    fn observe(&mut self, ns: &NsRef) -> Result<NsState, KernelError> {
        Ok(self.state.get(ns).cloned().unwrap_or_default())
    }

    fn sysctl_get(&mut self, ns: &NsRef, key: &str) -> Result<Option<String>, KernelError> {
        Ok(Some(
            self.sysctls
                .get(&(ns.clone(), key.to_string()))
                .cloned()
                .unwrap_or_else(|| "0".into()),
        ))
    }

    fn nat_userdata(&mut self, ns: &NsRef, table: &str) -> Result<Option<Vec<u8>>, KernelError> {
        Ok(self.nat.get(&(ns.clone(), table.to_string())).cloned())
    }

    fn apply(&mut self, op: &Op) -> Result<(), KernelError> {
        if self.fail_at == Some(self.log.len()) {
            self.fail_at = None;
            return Err(KernelError::errno(libc::EPERM, "Operation not permitted"));
        }
        match op {
            Op::AddNetns { ns } => {
                if !self.netns.insert(ns.clone()) {
                    return Err(KernelError::errno(libc::EEXIST, "File exists"));
                }
                self.state
                    .insert(NsRef::Named(ns.clone()), Self::fresh_ns());
            }
            Op::DelNetns { ns } => {
                self.netns.remove(ns);
                let gone = NsRef::Named(ns.clone());
                self.state.remove(&gone);
                let dead: Vec<(NsRef, String)> = self
                    .pairs
                    .iter()
                    .filter(|p| p[0].0 == gone || p[1].0 == gone)
                    .flat_map(|p| p.clone())
                    .collect();
                self.drop_ends(&dead);
            }
            Op::AddVeth {
                ns,
                name,
                peer_ns,
                peer,
                with,
            } => {
                self.add_link(ns, name.as_str(), "veth")?;
                if let Err(e) = self.add_link(peer_ns, peer.as_str(), "veth") {
                    self.ns_mut(ns)?.links.retain(|l| l.name != name.as_str());
                    return Err(e);
                }
                self.pairs.push([
                    (ns.clone(), name.to_string()),
                    (peer_ns.clone(), peer.to_string()),
                ]);
                let master = match &with.master {
                    Some(m) => Some(
                        self.ns_mut(ns)?
                            .link(m.as_str())
                            .ok_or_else(|| KernelError::errno(libc::ENODEV, "No such device"))?
                            .index,
                    ),
                    None => None,
                };
                let l = self.link_mut(ns, name.as_str())?;
                l.master = master;
                l.up = with.up;
                // Carrier needs both ends up; the peer is born down.
                l.lower_up = false;
            }
            Op::AddBridge { ns, name } => self.add_link(ns, name.as_str(), "bridge")?,
            Op::DelLink { ns, name } => {
                let st = self.ns_mut(ns)?;
                let before = st.links.len();
                st.links.retain(|l| l.name != name.as_str());
                if st.links.len() == before {
                    return Err(KernelError::errno(libc::ENODEV, "No such device"));
                }
                let me = (ns.clone(), name.to_string());
                let dead: Vec<(NsRef, String)> = self
                    .pairs
                    .iter()
                    .filter(|p| p.contains(&me))
                    .flat_map(|p| p.clone())
                    .collect();
                self.drop_ends(&dead);
            }
            Op::MoveLink { ns, name, to } => {
                let st = self.ns_mut(ns)?;
                let pos = st
                    .links
                    .iter()
                    .position(|l| l.name == name.as_str())
                    .ok_or_else(|| KernelError::errno(libc::ENODEV, "No such device"))?;
                let link = st.links.remove(pos);
                self.ns_mut(to)?.links.push(link);
                self.rename_end(ns, name.as_str(), to, name.as_str());
            }
            Op::RenameLink { ns, name, to } => {
                self.link_mut(ns, name.as_str())?.name = to.to_string();
                self.rename_end(ns, name.as_str(), ns, to.as_str());
            }
            Op::SetLink { ns, name, change } => {
                let master_index = match change {
                    LinkChange::Master(Some(m)) => Some(
                        self.ns_mut(ns)?
                            .link(m.as_str())
                            .ok_or_else(|| KernelError::errno(libc::ENODEV, "No such device"))?
                            .index,
                    ),
                    _ => None,
                };
                let l = self.link_mut(ns, name.as_str())?;
                match change {
                    LinkChange::Up(up) => {
                        l.up = *up;
                        l.lower_up = *up;
                    }
                    LinkChange::Mtu(m) => l.mtu = *m,
                    LinkChange::Master(_) => l.master = master_index,
                    LinkChange::Stp(_) => {}
                }
            }
            Op::AddAddr { ns, dev, cidr } => {
                let index = self.link_mut(ns, dev.as_str())?.index;
                let st = self.ns_mut(ns)?;
                if st.has_addr(dev.as_str(), cidr) {
                    return Err(KernelError::errno(libc::EEXIST, "File exists"));
                }
                st.addrs.push(AddrState { index, cidr: *cidr });
            }
            Op::DelAddr { ns, dev, cidr } => {
                let index = self.link_mut(ns, dev.as_str())?.index;
                self.ns_mut(ns)?
                    .addrs
                    .retain(|a| !(a.index == index && &a.cidr == cidr));
            }
            Op::AddRoute { ns, dest, via } => {
                let st = self.ns_mut(ns)?;
                if !st.reaches(via) {
                    return Err(KernelError::errno(
                        libc::ENETUNREACH,
                        "Network is unreachable",
                    ));
                }
                st.routes.push(RouteState {
                    dest: dest.as_net(),
                    via: Some(*via),
                });
            }
            Op::DelRoute { ns, dest, via } => {
                let d = dest.as_net();
                self.ns_mut(ns)?
                    .routes
                    .retain(|r| !(r.dest == d && r.via.as_ref() == Some(via)));
            }
            Op::Sysctl { ns, key, value } => {
                self.sysctls
                    .insert((ns.clone(), key.clone()), value.clone());
            }
            Op::ReplaceNat { ns, table } => {
                self.nat
                    .insert((ns.clone(), table.name.clone()), table.userdata.clone());
            }
            Op::DelNat { ns, table } => {
                self.nat.remove(&(ns.clone(), table.clone()));
            }
        }
        self.log.push(op.clone());
        Ok(())
    }

    fn exec(
        &mut self,
        _ns: &NsRef,
        _cmd: &str,
        _timeout: std::time::Duration,
    ) -> Result<ExecOutput, KernelError> {
        Ok(ExecOutput::default())
    }

    fn ping(&mut self, _ns: &NsRef, _addr: IpAddr) -> Result<bool, KernelError> {
        Ok(true)
    }

    fn is_real(&self) -> bool {
        false
    }
}
