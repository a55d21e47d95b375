//! The other link kinds as requests (macvlan, vxlan), from the plain data
//! of `op::LinkSpec` to the encoders of `link_msg` / `vxlan_msg`, and their
//! read-back in the same words (`kernel::Link::info`).

use std::os::fd::RawFd;

use netlink_packet_core::NLM_F_ECHO;
use netlink_packet_route::RouteNetlinkMessage as M;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};

use super::LinuxKernel;
use super::link_msg::{self, KindInfo};
use super::msg::Req;
use super::vxlan_msg::Vxlan;
use crate::kernel::KernelError;
use crate::model::NsRef;
use crate::op::{LinkSpec, MacvlanMode, TunSpec, VxlanSpec};

fn mode_out(m: MacvlanMode) -> link_msg::MacvlanMode {
    match m {
        MacvlanMode::Bridge => link_msg::MacvlanMode::Bridge,
        MacvlanMode::Private => link_msg::MacvlanMode::Private,
        MacvlanMode::Vepa => link_msg::MacvlanMode::Vepa,
        MacvlanMode::Passthru => link_msg::MacvlanMode::Passthru,
    }
}

fn mode_in(m: link_msg::MacvlanMode) -> MacvlanMode {
    match m {
        link_msg::MacvlanMode::Bridge => MacvlanMode::Bridge,
        link_msg::MacvlanMode::Private => MacvlanMode::Private,
        link_msg::MacvlanMode::Vepa => MacvlanMode::Vepa,
        link_msg::MacvlanMode::Passthru => MacvlanMode::Passthru,
    }
}

/// `ip link add NAME …` for a macvlan or vxlan, sent in `ns`; `into`: the
/// namespace the link is born in, by fd, when that is another one.
pub(super) fn add_link(
    k: &mut LinuxKernel,
    ns: &NsRef,
    name: &str,
    into: Option<RawFd>,
    spec: &LinkSpec,
) -> Result<Req, KernelError> {
    let (m, flags) = match spec {
        LinkSpec::Macvlan { parent, mode } => {
            let p = k.ifindex(ns, parent.as_str())?;
            link_msg::add_macvlan(name, p, mode_out(*mode), into)
        }
        LinkSpec::Vxlan { spec, mtu } => {
            let mut v = Vxlan::new(name, spec.id);
            v.remote = spec.remote;
            v.group = spec.group;
            v.local = spec.local;
            v.port = spec.port;
            v.learning = spec.learning;
            v.dev = match &spec.dev {
                Some(d) => Some(k.ifindex(ns, d.as_str())?),
                None => None,
            };
            let (mut m, fl) = v.add().map_err(|e| KernelError::other(e.to_string()))?;
            if let (M::NewLink(l), Some(mtu)) = (&mut m, mtu) {
                l.attributes.push(LinkAttribute::Mtu(*mtu));
            }
            // Born in another namespace, its UDP socket stays in this one
            // (the host's, on the underlay: issue 19).
            if let (M::NewLink(l), Some(fd)) = (&mut m, into) {
                l.attributes.push(LinkAttribute::NetNsFd(fd));
            }
            (m, fl)
        }
        LinkSpec::Tun(_) => {
            return Err(KernelError::other(
                "a tun/tap device is made through /dev/net/tun, not rtnetlink",
            ));
        }
    };
    if into.is_some() {
        // Born elsewhere: its index is asked for there.
        return Ok((m, flags));
    }
    Ok((m, flags | NLM_F_ECHO))
}

/// A dumped macvlan's or vxlan's data in the words of `LinkSpec::info`.
pub(super) fn info(l: &LinkMessage) -> Option<String> {
    match link_msg::parse_link(l).kind? {
        KindInfo::Macvlan(m) => Some(format!("mode {}", mode_in(m).as_str())),
        KindInfo::Vxlan(v) => Some(
            VxlanSpec {
                id: v.id,
                remote: v.remote,
                group: v.group,
                local: v.local,
                dev: None,
                port: v.port,
                learning: v.learning,
            }
            .words(),
        ),
        KindInfo::Tun(t) => Some(
            TunSpec {
                tap: t.mode == Some(super::tun::TunMode::Tap),
                owner: t.owner,
                group: t.group,
                multi_queue: t.multi_queue,
            }
            .words(),
        ),
        _ => None,
    }
}
