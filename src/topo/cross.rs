//! What crosses sites (issue 19), in the model: a cross-site veth's end is
//! a vxlan in the namespace, born from the host namespace so its UDP
//! socket is on the underlay; a stretched bridge gets a vxlan port that
//! floods to every other site (head-end replication). The MTU rule keeps
//! full-size frames from being dropped at the tunnel: every port of a
//! stretched bridge (and a veth port's peer) whose MTU the script did not
//! set gets the tunnel's.

use std::net::IpAddr;

use super::{DeclError, LinkId, LinkKind, Pos, Topology};
use crate::model::{IfName, NsRef};
use crate::op::VxlanSpec;

/// A vxlan of a site crossing: made from the host namespace wherever it
/// is, with an all-zero-MAC fdb entry per address in `flood`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Crossing {
    pub flood: Vec<IpAddr>,
}

impl Topology {
    /// One end of a cross-site veth: vxlan `name` in `ns`, MTU `mtu`
    /// unless the script sets another.
    pub fn add_tunnel_end(
        &mut self,
        ns: NsRef,
        name: IfName,
        spec: VxlanSpec,
        mtu: u32,
        pos: Pos,
    ) -> Result<LinkId, DeclError> {
        self.new_link_checks(&ns, &name)?;
        super::kinds::check_vxlan(&spec)?;
        let kind = LinkKind::Vxlan {
            spec,
            dev: None,
            cross: Some(Crossing::default()),
        };
        let id = self.push_link(kind, &ns, &name, pos);
        self.links[id.index()].mtu = Some(mtu);
        Ok(id)
    }

    /// The vxlan port `name` of stretched bridge `bridge`: up, on the
    /// bridge, flooding to `flood`; the bridge's ports get `mtu`.
    pub fn add_stretch_port(
        &mut self,
        bridge: LinkId,
        name: IfName,
        spec: VxlanSpec,
        flood: Vec<IpAddr>,
        mtu: u32,
        pos: Pos,
    ) -> Result<LinkId, DeclError> {
        let b = self.link(bridge)?;
        if b.kind != LinkKind::Bridge {
            return Err(DeclError::NotBridgeFor {
                name: b.name.clone(),
                what: "stretch()",
            });
        }
        let ns = b.ns.clone();
        self.new_link_checks(&ns, &name)?;
        super::kinds::check_vxlan(&spec)?;
        let kind = LinkKind::Vxlan {
            spec,
            dev: None,
            cross: Some(Crossing { flood }),
        };
        let id = self.push_link(kind, &ns, &name, pos.clone());
        self.set_master(id, bridge);
        let l = &mut self.links[id.index()];
        l.mtu = Some(mtu);
        l.up = Some(true);
        l.set_pos.master = Some(pos);
        self.stretched.push((bridge, mtu));
        Ok(id)
    }

    /// The MTU rule, applied before each diff: a port of a stretched bridge
    /// (and the peer of a veth port) without an MTU from the script gets
    /// the tunnel's. Changes nothing the second time.
    pub fn settle_stretch_mtu(&mut self) {
        let mut set: Vec<(usize, u32)> = Vec::new();
        for &(b, mtu) in &self.stretched {
            for (id, l) in self.links() {
                if l.master != Some(b) || l.set_pos.mtu.is_some() {
                    continue;
                }
                set.push((id.index(), mtu));
                if let LinkKind::Veth { peer } = l.kind
                    && self.get(peer).set_pos.mtu.is_none()
                {
                    set.push((peer.index(), mtu));
                }
            }
        }
        let mut changed = false;
        for (i, mtu) in set {
            if self.links[i].mtu != Some(mtu) {
                self.links[i].mtu = Some(mtu);
                changed = true;
            }
        }
        if changed {
            self.changed();
        }
    }
}
