//! The one rtnetlink request each pipelined op becomes.

use netlink_packet_route::RouteNetlinkMessage as M;
use netlink_packet_route::link::LinkAttribute;

use std::os::fd::AsRawFd;

use super::{LinuxKernel, msg};
use crate::kernel::KernelError;
use crate::op::{LinkChange, Op};

/// The rtnetlink request for an op (callers check `is_rtnetlink` first).
/// A namespace named by fd gets a handle of its own in `fds`, kept until
/// the request is sent.
pub(super) fn request_for(
    k: &mut LinuxKernel,
    op: &Op,
    fds: &mut Vec<std::fs::File>,
) -> Result<msg::Req, KernelError> {
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
                let f = k.conns.ns_file(&k.nsdir, peer_ns)?;
                let fd = f.as_raw_fd();
                fds.push(f);
                Some(fd)
            };
            let master = match &with.master {
                Some(m) => Some(k.ifindex(ns, m.as_str())?),
                None => None,
            };
            msg::add_veth(name.as_str(), peer.as_str(), fd, master, with.up)
        }
        Op::AddBridge { name, .. } => msg::add_bridge(name.as_str()),
        Op::AddLink {
            ns,
            name,
            into,
            spec,
        } => {
            let fd = match into {
                Some(to) if to != ns => {
                    let f = k.conns.ns_file(&k.nsdir, to)?;
                    let fd = f.as_raw_fd();
                    fds.push(f);
                    Some(fd)
                }
                _ => None,
            };
            super::kinds::add_link(k, ns, name.as_str(), fd, spec)?
        }
        Op::DelLink { name, index, .. } => match index {
            Some(i) => msg::del_link_index(*i),
            None => msg::del_link(name.as_str()),
        },
        Op::RenameLink { ns, name, to } => {
            let idx = k.ifindex(ns, name.as_str())?;
            msg::set_link(msg::by_index(idx).name(to.to_string()))
        }
        Op::SetLink { ns, name, change } => match change {
            LinkChange::Up(true) => msg::set_link(msg::by_name(name.as_str()).up()),
            LinkChange::Up(false) => msg::set_link(msg::by_name(name.as_str()).down()),
            LinkChange::Mtu(m) => msg::set_link(msg::by_name(name.as_str()).mtu(*m)),
            LinkChange::Master(Some(m)) => {
                let idx = k.ifindex(ns, m.as_str())?;
                msg::set_link(msg::by_name(name.as_str()).controller(idx))
            }
            LinkChange::Master(None) => msg::set_link(msg::by_name(name.as_str()).nocontroller()),
            LinkChange::Stp(on) => msg::set_stp(name.as_str(), *on),
            LinkChange::McastSnooping(on) => msg::set_mcast_snooping(name.as_str(), *on),
            LinkChange::Hairpin(on) => {
                let opts = super::bridge_msg::PortOpts {
                    hairpin: Some(*on),
                    ..Default::default()
                };
                // By name: the port may be made earlier in this same pipelined
                // batch, before its index is known.
                let (mut m, fl) = super::bridge_msg::set_port(0, &opts)
                    .map_err(|e| KernelError::other(e.to_string()))?;
                if let M::NewLink(l) = &mut m {
                    l.attributes.push(LinkAttribute::IfName(name.to_string()));
                }
                (m, fl)
            }
        },
        Op::AddAddr { ns, dev, cidr } => msg::add_addr(k.ifindex(ns, dev.as_str())?, cidr),
        Op::DelAddr { ns, dev, cidr } => msg::del_addr(k.ifindex(ns, dev.as_str())?, cidr),
        Op::AddRoute { route, .. } => msg::add_route(route)?,
        Op::ReplaceRoute { route, .. } => msg::replace_route(route)?,
        Op::DelRoute { route, .. } => msg::del_route(route)?,
        Op::PutRoute { ns, route, replace } => super::routes::put_route(k, ns, route, *replace)?,
        Op::DelRouteEx { ns, route } => super::routes::del_route(k, ns, route)?,
        Op::AddRule { rule, .. } => super::routes::add_rule(rule)?,
        Op::SetQdisc {
            ns,
            dev,
            shape,
            mtu,
        } => super::routes::set_qdisc(k.ifindex(ns, dev.as_str())?, shape, *mtu)?,
        Op::DelQdisc { ns, dev } => super::tc::delete_root(k.ifindex(ns, dev.as_str())?),
        Op::DelRule { rule, .. } => super::routes::del_rule(rule)?,
        Op::AddFdb { ns, dev, dst } => super::fdb_msg::add(k.ifindex(ns, dev.as_str())?, *dst),
        Op::DelFdb { ns, dev, dst } => super::fdb_msg::del(k.ifindex(ns, dev.as_str())?, *dst),
        other => {
            return Err(KernelError::other(format!(
                "not an rtnetlink op: {}",
                other.summary()
            )));
        }
    })
}
