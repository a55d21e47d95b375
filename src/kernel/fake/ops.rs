//! How each op changes the recording kernel's model, refusing what the
//! real kernel would refuse.

use super::{Recorder, enodev};
use crate::kernel::{Addr, KernelError, RT_TABLE_MAIN, Route};
use crate::model::NsRef;
use crate::op::{LinkChange, LinkSpec, Made, Op};

impl Recorder {
    pub(super) fn apply_one(&mut self, op: &Op) -> Result<Made, KernelError> {
        if self.fail_at == Some(self.log.len()) {
            self.fail_at = None;
            return Err(KernelError::errno(libc::EPERM, "Operation not permitted"));
        }
        let made = match op {
            Op::AddNetns { ns } => {
                if self.netns.contains_key(ns) {
                    return Err(KernelError::errno(libc::EEXIST, "File exists"));
                }
                let ino = self.next_ino;
                self.next_ino += 1;
                self.netns.insert(ns.clone(), ino);
                self.seed(
                    NsRef::Named(ns.clone()),
                    std::sync::Arc::new(Self::fresh_ns()),
                );
                Made::Netns { ino }
            }
            Op::DelNetns { ns, ino } => {
                match (self.netns.get(ns), ino) {
                    (None, _) => return Err(KernelError::errno(libc::ENOENT, "No such file")),
                    (Some(have), Some(want)) if have != want => {
                        return Err(KernelError::errno(libc::ESTALE, "another namespace"));
                    }
                    _ => {}
                }
                self.netns.remove(ns);
                let gone = NsRef::Named(ns.clone());
                self.state.remove(&gone);
                self.links_changed(&gone);
                let dead: Vec<(NsRef, String)> = self
                    .pairs
                    .iter()
                    .filter(|p| p[0].0 == gone || p[1].0 == gone)
                    .flat_map(|p| p.clone())
                    .collect();
                self.drop_ends(&dead);
                self.nsids.retain(|(a, b), _| a != &gone && b != &gone);
                self.nsid_next = None;
                Made::Nothing
            }
            Op::AddVeth {
                ns,
                name,
                peer_ns,
                peer,
                with,
            } => {
                let master = match &with.master {
                    Some(m) => Some(self.index_of(ns, m.as_str())?),
                    None => None,
                };
                let a = self.add_link(ns, name.as_str(), "veth")?;
                let b = match self.add_link(peer_ns, peer.as_str(), "veth") {
                    Ok(b) => b,
                    Err(e) => {
                        self.ns_mut(ns)?.links.retain(|l| l.name != name.as_str());
                        self.links_changed(ns);
                        return Err(e);
                    }
                };
                self.pairs.push([
                    (ns.clone(), name.to_string()),
                    (peer_ns.clone(), peer.to_string()),
                ]);
                let l = self.link_mut(ns, name.as_str())?;
                l.master = master;
                l.up = with.up;
                Made::Link {
                    index: a,
                    peer: Some(b),
                }
            }
            Op::AddBridge { ns, name } => Made::Link {
                index: self.add_link(ns, name.as_str(), "bridge")?,
                peer: None,
            },
            Op::AddLink {
                ns,
                name,
                into,
                spec,
            } => {
                let home = into.clone().unwrap_or_else(|| ns.clone());
                let (mtu, parent) = match spec {
                    LinkSpec::Macvlan { parent, .. } => {
                        (self.link_mut(ns, parent.as_str())?.mtu, Some(parent))
                    }
                    LinkSpec::Vxlan { spec, mtu } => {
                        let under = match &spec.dev {
                            Some(d) => self.link_mut(ns, d.as_str())?.mtu,
                            None => 1500,
                        };
                        (mtu.unwrap_or(under.saturating_sub(spec.overhead())), None)
                    }
                    LinkSpec::Tun(_) => (1500, None),
                };
                let index = self.add_link(&home, name.as_str(), spec.kind())?;
                let l = self.link_mut(&home, name.as_str())?;
                l.mtu = mtu;
                l.info = Some(spec.info());
                if let Some(p) = parent {
                    self.uppers.push([
                        (home.clone(), name.to_string()),
                        (ns.clone(), p.to_string()),
                    ]);
                }
                Made::Link { index, peer: None }
            }
            Op::DelLink { ns, name, index } => {
                let st = self.ns_mut(ns)?;
                let found = st
                    .links
                    .iter()
                    .find(|l| match index {
                        Some(i) => l.index == *i,
                        None => l.name == name.as_str(),
                    })
                    .map(|l| l.name.clone())
                    .ok_or_else(enodev)?;
                let me = (ns.clone(), found.clone());
                let mut dead: Vec<(NsRef, String)> = self
                    .pairs
                    .iter()
                    .filter(|p| p.contains(&me))
                    .flat_map(|p| p.clone())
                    .collect();
                dead.push(me);
                self.drop_ends(&dead);
                Made::Nothing
            }
            Op::MoveLink { ns, name, to } => {
                self.links_changed(ns);
                self.links_changed(to);
                let st = self.ns_mut(ns)?;
                let pos = st
                    .links
                    .iter()
                    .position(|l| l.name == name.as_str())
                    .ok_or_else(enodev)?;
                let mut link = st.links.remove(pos);
                let old = link.index;
                st.addrs.retain(|a| a.index != old);
                st.routes.retain(|r| r.oif != Some(old));
                // A moved device gets a fresh index there, and is down.
                link.index = self.next_index;
                self.next_index += 1;
                link.up = false;
                link.master = None;
                let dest = self.ns_mut(to)?;
                if dest.link(&link.name).is_some() {
                    return Err(KernelError::errno(libc::EEXIST, "File exists"));
                }
                dest.links.push(link);
                self.rename_end(ns, name.as_str(), to, name.as_str());
                Made::Nothing
            }
            Op::RenameLink { ns, name, to } => {
                if self.link_at(ns, to.as_str()).is_some() {
                    return Err(KernelError::errno(libc::EEXIST, "File exists"));
                }
                self.link_mut(ns, name.as_str())?.name = to.to_string();
                self.links_changed(ns);
                self.rename_end(ns, name.as_str(), ns, to.as_str());
                Made::Nothing
            }
            Op::SetLink { ns, name, change } => {
                let master_index = match change {
                    LinkChange::Master(Some(m)) => Some(self.index_of(ns, m.as_str())?),
                    _ => None,
                };
                let l = self.link_mut(ns, name.as_str())?;
                match change {
                    LinkChange::Up(up) => {
                        l.up = *up;
                        if l.kind.as_deref() != Some("veth") {
                            l.lower_up = *up;
                        }
                    }
                    LinkChange::Mtu(m) => l.mtu = *m,
                    LinkChange::Master(_) => l.master = master_index,
                    LinkChange::Stp(on) => l.stp = Some(*on),
                    LinkChange::McastSnooping(on) => l.mcast_snooping = Some(*on),
                    LinkChange::Hairpin(on) => l.hairpin = Some(*on),
                }
                Made::Nothing
            }
            Op::AddAddr { ns, dev, cidr } => {
                let index = self.index_of(ns, dev.as_str())?;
                let st = self.ns_mut(ns)?;
                if st.has_addr(dev.as_str(), cidr) {
                    return Err(KernelError::errno(libc::EEXIST, "File exists"));
                }
                st.addrs.push(Addr {
                    index,
                    cidr: *cidr,
                    scope: "global".into(),
                    tentative: false,
                    flags: crate::kernel::IFA_F_PERMANENT,
                });
                Made::Nothing
            }
            Op::DelAddr { ns, dev, cidr } => {
                let index = self.index_of(ns, dev.as_str())?;
                let st = self.ns_mut(ns)?;
                let before = st.addrs.len();
                st.addrs.retain(|a| !(a.index == index && &a.cidr == cidr));
                if st.addrs.len() == before {
                    return Err(KernelError::errno(
                        libc::EADDRNOTAVAIL,
                        "Cannot assign requested address",
                    ));
                }
                // The kernel drops the routes that went through it.
                let gone = cidr.trunc();
                st.routes
                    .retain(|r| r.via.is_none_or(|v| !gone.contains(&v)));
                Made::Nothing
            }
            Op::AddRoute { ns, route } | Op::ReplaceRoute { ns, route } => {
                let replace = matches!(op, Op::ReplaceRoute { .. });
                let st = self.ns_mut(ns)?;
                let dest = route.dest.as_net();
                let dev = st
                    .addrs
                    .iter()
                    .find(|a| a.cidr.trunc().contains(&route.via))
                    .map(|a| a.index);
                let Some(oif) = dev else {
                    return Err(KernelError::errno(
                        libc::ENETUNREACH,
                        "Network is unreachable",
                    ));
                };
                let exists = st.routes_to(&dest).next().is_some();
                if exists && !replace {
                    return Err(KernelError::errno(libc::EEXIST, "File exists"));
                }
                st.routes
                    .retain(|r| !(r.table == RT_TABLE_MAIN && r.dest == dest));
                st.routes.push(Route {
                    table: RT_TABLE_MAIN,
                    dest,
                    via: Some(route.via),
                    oif: Some(oif),
                    kind: "unicast".into(),
                    proto: "boot".into(),
                    scope: "global".into(),
                    src: None,
                    metric: route.dest.is_v6().then_some(1024),
                    ..Route::default()
                });
                Made::Nothing
            }
            Op::DelRoute { ns, route } => {
                let d = route.dest.as_net();
                let st = self.ns_mut(ns)?;
                let before = st.routes.len();
                st.routes
                    .retain(|r| !(r.dest == d && r.via == Some(route.via)));
                if st.routes.len() == before {
                    return Err(KernelError::errno(libc::ESRCH, "No such process"));
                }
                Made::Nothing
            }
            Op::PutRoute { ns, route, replace } => {
                crate::kernel::routes::put(self.ns_mut(ns)?, route, *replace)?;
                Made::Nothing
            }
            Op::DelRouteEx { ns, route } => {
                crate::kernel::routes::delete(self.ns_mut(ns)?, route)?;
                Made::Nothing
            }
            Op::AddRule { ns, rule } => {
                crate::kernel::routes::add_rule(self.ns_mut(ns)?, rule)?;
                Made::Nothing
            }
            Op::DelRule { ns, rule } => {
                crate::kernel::routes::del_rule(self.ns_mut(ns)?, rule)?;
                Made::Nothing
            }
            Op::AddFdb { ns, dev, dst } => {
                let l = self.link_mut(ns, dev.as_str())?;
                if l.flood.contains(dst) {
                    return Err(KernelError::errno(libc::EEXIST, "File exists"));
                }
                l.flood.push(*dst);
                Made::Nothing
            }
            Op::DelFdb { ns, dev, dst } => {
                let l = self.link_mut(ns, dev.as_str())?;
                let before = l.flood.len();
                l.flood.retain(|d| d != dst);
                if l.flood.len() == before {
                    return Err(KernelError::errno(
                        libc::ENOENT,
                        "No such file or directory",
                    ));
                }
                Made::Nothing
            }
            Op::SetQdisc {
                ns,
                dev,
                shape,
                mtu,
            } => {
                self.link_mut(ns, dev.as_str())?.qdisc = crate::kernel::shape::as_read(shape, *mtu);
                Made::Nothing
            }
            Op::DelQdisc { ns, dev } => {
                let l = self.link_mut(ns, dev.as_str())?;
                if l.qdisc.take().is_none() {
                    return Err(KernelError::errno(
                        libc::ENOENT,
                        "No such file or directory",
                    ));
                }
                Made::Nothing
            }
            Op::Sysctl { ns, key, value } => {
                self.ns_mut(ns)?;
                let old = self
                    .sysctls
                    .insert((ns.clone(), key.clone()), value.clone())
                    .unwrap_or_else(|| "0".into());
                Made::Sysctl { old }
            }
            Op::ReplaceNat {
                ns,
                table,
                replaces,
            } => {
                self.ns_mut(ns)?;
                let k = (ns.clone(), table.name.clone());
                match (self.nat.get(&k), replaces) {
                    (Some((h, _)), Some(r)) if h != r => {
                        return Err(KernelError::errno(libc::ENOENT, "No such file"));
                    }
                    (Some(_), None) => {
                        return Err(KernelError::errno(libc::EEXIST, "File exists"));
                    }
                    _ => {}
                }
                let handle = self.next_handle;
                self.next_handle += 1;
                self.nat.insert(k, (handle, (**table).clone()));
                Made::Table { handle }
            }
            Op::DelNat { ns, table, handle } => {
                let k = (ns.clone(), table.clone());
                match (self.nat.get(&k), handle) {
                    (None, _) => return Err(KernelError::errno(libc::ENOENT, "No such file")),
                    (Some((h, _)), Some(want)) if h != want => {
                        return Err(KernelError::errno(libc::ENOENT, "No such file"));
                    }
                    _ => {}
                }
                self.nat.remove(&k);
                Made::Nothing
            }
            // No processes here: a start is recorded, a stop too.
            Op::StartDaemon { .. } => Made::Daemon { identity: None },
            Op::StopDaemon { .. } => Made::Nothing,
            Op::WriteFile { ns, path, content } => {
                self.files
                    .insert((ns.clone(), path.clone()), content.clone().into_bytes());
                Made::Nothing
            }
            // The planner's simulation is not seeded with files: a removal
            // it plans was decided on what the real /etc/netns holds.
            Op::RemoveFile { ns, path } => {
                self.files.remove(&(ns.clone(), path.clone()));
                Made::Nothing
            }
        };
        self.settle_after(op);
        if !self.unlogged {
            self.log.push(op.clone());
        }
        Ok(made)
    }
}
