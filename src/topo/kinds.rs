//! Declaring the other link kinds (macvlan, vxlan) and the bridge port
//! limit: refused here, with the script line, before anything is planned.

use super::{DeclError, LinkId, LinkKind, Pos, Topology};
use crate::model::{IfName, NsRef};
use crate::op::{MacvlanMode, Shape, TunSpec, VxlanSpec};

/// The most ports a Linux bridge takes (BR_MAX_PORTS is 1024, and port
/// number 0 is never used): the 1024th gets EXFULL.
pub const BRIDGE_MAX_PORTS: usize = 1023;

fn kind_err(msg: impl Into<String>) -> DeclError {
    DeclError::Kind { msg: msg.into() }
}

impl Topology {
    pub(super) fn new_link_checks(&self, ns: &NsRef, name: &IfName) -> Result<(), DeclError> {
        match ns {
            NsRef::Named(n) if !self.has_ns(n) => {
                return Err(DeclError::UndeclaredNs { ns: n.clone() });
            }
            _ => {}
        }
        if let Some(other) = self.link_at(ns, name) {
            return Err(DeclError::LinkTaken {
                ns: ns.clone(),
                name: name.clone(),
                first: self.get(other).pos.clone(),
            });
        }
        if self.limit > 0 && self.size() as u64 >= self.limit {
            return Err(DeclError::TooMany { limit: self.limit });
        }
        Ok(())
    }

    /// `ns.macvlan(name, parent, #{ mode })`: `parent` is in `ns`.
    pub fn add_macvlan(
        &mut self,
        ns: NsRef,
        name: IfName,
        parent: LinkId,
        mode: MacvlanMode,
        pos: Pos,
    ) -> Result<LinkId, DeclError> {
        let p = self.link(parent)?;
        if p.ns != ns {
            return Err(kind_err(format!(
                "the parent of macvlan {name} must be in netns {ns}, where the macvlan is made; {} is in netns {}",
                p.name, p.ns
            )));
        }
        if matches!(
            p.kind,
            LinkKind::Macvlan { .. } | LinkKind::Vxlan { .. } | LinkKind::Tun(_)
        ) {
            return Err(kind_err(format!(
                "{} cannot be a macvlan's parent: it is itself a {}",
                p.name,
                match p.kind {
                    LinkKind::Macvlan { .. } => "macvlan",
                    LinkKind::Tun(_) => "tun/tap device",
                    _ => "vxlan",
                }
            )));
        }
        self.new_link_checks(&ns, &name)?;
        Ok(self.push_link(LinkKind::Macvlan { parent, mode }, &ns, &name, pos))
    }

    /// `ns.vxlan(name, #{ id, remote | group, local, dev, port, learning })`.
    pub fn add_vxlan(
        &mut self,
        ns: NsRef,
        name: IfName,
        spec: VxlanSpec,
        dev: Option<LinkId>,
        pos: Pos,
    ) -> Result<LinkId, DeclError> {
        check_vxlan(&spec)?;
        if let Some(d) = dev {
            let d = self.link(d)?;
            if d.ns != ns {
                return Err(kind_err(format!(
                    "the underlay of vxlan {name} must be in netns {ns}; {} is in netns {}",
                    d.name, d.ns
                )));
            }
        }
        self.new_link_checks(&ns, &name)?;
        Ok(self.push_link(
            LinkKind::Vxlan {
                spec,
                dev,
                cross: None,
            },
            &ns,
            &name,
            pos,
        ))
    }

    /// `link.shape(#{ … })`: netem's rules checked here (a jitter or a
    /// reordering needs a delay), percentages already within 0–100.
    pub fn set_shape(&mut self, id: LinkId, shape: Shape, pos: Pos) -> Result<(), DeclError> {
        if shape.jitter.is_some() && shape.delay.is_none() {
            return Err(kind_err("a jitter needs a delay"));
        }
        if shape.reorder.is_some() && shape.delay.is_none() {
            return Err(kind_err("reordering needs a delay"));
        }
        if shape.burst.is_some() && shape.needs_netem() {
            return Err(kind_err(
                "burst is tbf's (a rate alone); with delay, loss … the shape is netem's",
            ));
        }
        if (shape.burst.is_some() || shape.limit.is_some())
            && shape.rate.is_none()
            && !shape.needs_netem()
        {
            return Err(kind_err("burst and limit need a rate"));
        }
        let l = self.link_mut(id)?;
        l.shape = Some(shape);
        l.set_pos.shape = Some(pos);
        self.changed();
        Ok(())
    }

    /// `ns.tap(name, #{ owner, group, multi_queue })` / `ns.tun(…)`.
    pub fn add_tun(
        &mut self,
        ns: NsRef,
        name: IfName,
        spec: TunSpec,
        pos: Pos,
    ) -> Result<LinkId, DeclError> {
        self.new_link_checks(&ns, &name)?;
        Ok(self.push_link(LinkKind::Tun(spec), &ns, &name, pos))
    }

    /// How many links are attached to `bridge`.
    pub(super) fn ports_of(&self, bridge: LinkId) -> usize {
        self.port_counts.get(&bridge.index).copied().unwrap_or(0)
    }

    /// `port` is now a port of `bridge`; the counts follow.
    pub(super) fn set_master(&mut self, port: LinkId, bridge: LinkId) {
        let l = &mut self.links[port.index()];
        if l.master == Some(bridge) {
            return;
        }
        if let Some(old) = l.master.replace(bridge)
            && let Some(n) = self.port_counts.get_mut(&old.index)
        {
            *n = n.saturating_sub(1);
        }
        *self.port_counts.entry(bridge.index).or_insert(0) += 1;
    }
}

pub(super) fn check_vxlan(v: &VxlanSpec) -> Result<(), DeclError> {
    if v.id > 0x00ff_ffff {
        return Err(kind_err(format!(
            "vxlan id {} is out of range (0 to 16777215)",
            v.id
        )));
    }
    if v.remote.is_some() && v.group.is_some() {
        return Err(kind_err("a vxlan takes a remote or a group, not both"));
    }
    if v.remote
        .is_some_and(|r| r.is_multicast() || r.is_unspecified())
    {
        return Err(kind_err(
            "a vxlan remote must be a unicast address (a multicast one is a group)",
        ));
    }
    if v.group.is_some_and(|g| !g.is_multicast()) {
        return Err(kind_err("a vxlan group must be a multicast address"));
    }
    if v.port == 0 {
        return Err(kind_err("a vxlan port must be 1 to 65535"));
    }
    let peer = v.remote.or(v.group);
    if let (Some(p), Some(l)) = (peer, v.local)
        && p.is_ipv4() != l.is_ipv4()
    {
        return Err(kind_err(
            "a vxlan's local and remote addresses must be of one family",
        ));
    }
    Ok(())
}
