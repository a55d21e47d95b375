//! Links: veth pairs, bridges, adopted devices, their settings, bridge
//! ports, moves, renames and addresses.

use std::net::IpAddr;

use crate::model::{Cidr, IfName, NsRef};
use crate::topo::{AddrDecl, DeclError, LinkDecl, LinkId, LinkKind, Pos, Topology, fresh_uid};

impl Topology {
    pub(in crate::topo) fn push_link(
        &mut self,
        kind: LinkKind,
        ns: &NsRef,
        name: &IfName,
        pos: Pos,
    ) -> LinkId {
        let uid = fresh_uid();
        self.links.push(LinkDecl {
            uid,
            kind,
            ns: ns.clone(),
            name: name.clone(),
            origin: (ns.clone(), name.clone()),
            up: None,
            mtu: None,
            master: None,
            stp: None,
            mcast_snooping: None,
            shape: None,
            pos,
            set_pos: Default::default(),
        });
        self.changed();
        let index = (self.links.len() - 1) as u32;
        self.link_names
            .entry((ns.clone(), name.clone()))
            .or_insert(index);
        LinkId { index, uid }
    }

    /// The link `id` is now at `ns`/`name`: the index follows.
    fn relocate(&mut self, id: LinkId, ns: NsRef, name: IfName) {
        let l = &self.links[id.index()];
        let old = (l.ns.clone(), l.name.clone());
        if self.link_names.get(&old) == Some(&id.index) {
            self.link_names.remove(&old);
        }
        self.link_names.insert((ns.clone(), name.clone()), id.index);
        let l = &mut self.links[id.index()];
        l.ns = ns;
        l.name = name;
    }

    fn taken(&self, ns: &NsRef, name: &IfName) -> Result<(), DeclError> {
        match self.link_at(ns, name) {
            Some(other) => Err(DeclError::LinkTaken {
                ns: ns.clone(),
                name: name.clone(),
                first: self.get(other).pos.clone(),
            }),
            None => Ok(()),
        }
    }

    /// A veth pair; returns the first end (the other is its `peer`).
    pub fn add_veth(
        &mut self,
        ns: NsRef,
        name: IfName,
        peer_ns: NsRef,
        peer: IfName,
        pos: Pos,
    ) -> Result<LinkId, DeclError> {
        if ns == peer_ns && name == peer {
            return Err(DeclError::VethSameName { ns, name });
        }
        self.check_ns(&ns)?;
        self.check_ns(&peer_ns)?;
        self.taken(&ns, &name)?;
        self.taken(&peer_ns, &peer)?;
        self.check_room()?;
        // The first end's kind is fixed once the peer has an id.
        let a = self.push_link(LinkKind::Existing, &ns, &name, pos.clone());
        let b = self.push_link(LinkKind::Veth { peer: a }, &peer_ns, &peer, pos);
        self.links[a.index()].kind = LinkKind::Veth { peer: b };
        Ok(a)
    }

    /// A bridge; declaring the same bridge again gives the same handle.
    pub fn add_bridge(&mut self, ns: NsRef, name: IfName, pos: Pos) -> Result<LinkId, DeclError> {
        self.check_ns(&ns)?;
        if let Some(other) = self.link_at(&ns, &name) {
            let prev = self.get(other);
            if prev.kind == LinkKind::Bridge {
                return Ok(other);
            }
            return Err(DeclError::NotABridge {
                ns,
                name,
                first: prev.pos.clone(),
            });
        }
        self.check_room()?;
        Ok(self.push_link(LinkKind::Bridge, &ns, &name, pos))
    }

    /// A device that already exists (`ns.link(name)`): adopted, never
    /// created or deleted. Adopting it twice gives the same handle.
    pub fn adopt_link(&mut self, ns: NsRef, name: IfName, pos: Pos) -> Result<LinkId, DeclError> {
        self.check_ns(&ns)?;
        if let Some(other) = self.link_at(&ns, &name) {
            return Ok(other);
        }
        if let Some((id, _)) = self
            .links()
            .find(|(_, l)| l.kind == LinkKind::Existing && l.origin == (ns.clone(), name.clone()))
        {
            return Ok(id);
        }
        self.check_room()?;
        Ok(self.push_link(LinkKind::Existing, &ns, &name, pos))
    }

    pub fn peer(&self, id: LinkId) -> Result<LinkId, DeclError> {
        match self.link(id)?.kind {
            LinkKind::Veth { peer } => Ok(peer),
            _ => Err(DeclError::NoPeer),
        }
    }

    pub fn set_up(&mut self, id: LinkId, up: bool, pos: Pos) -> Result<(), DeclError> {
        let l = self.link_mut(id)?;
        l.up = Some(up);
        l.set_pos.up = Some(pos);
        self.changed();
        Ok(())
    }

    pub fn set_mtu(&mut self, id: LinkId, mtu: i64, pos: Pos) -> Result<(), DeclError> {
        let m = u32::try_from(mtu)
            .ok()
            .filter(|m| (68..=65535).contains(m))
            .ok_or(DeclError::Mtu { mtu })?;
        let l = self.link_mut(id)?;
        l.mtu = Some(m);
        l.set_pos.mtu = Some(pos);
        self.changed();
        Ok(())
    }

    pub fn set_stp(&mut self, id: LinkId, on: bool, pos: Pos) -> Result<(), DeclError> {
        let l = self.link_mut(id)?;
        if matches!(
            l.kind,
            LinkKind::Macvlan { .. } | LinkKind::Vxlan { .. } | LinkKind::Tun(_)
        ) {
            return Err(DeclError::Kind {
                msg: format!("{} is not a bridge: stp() is for bridges", l.name),
            });
        }
        if matches!(l.kind, LinkKind::Veth { .. }) {
            return Err(DeclError::StpNotBridge {
                name: l.name.clone(),
            });
        }
        l.stp = Some(on);
        l.set_pos.stp = Some(pos);
        self.changed();
        Ok(())
    }

    /// `bridge(name, #{ mcast_snooping: … })`; declaring it again with
    /// another value is the last word, as with stp().
    pub fn set_mcast_snooping(&mut self, id: LinkId, on: bool, pos: Pos) -> Result<(), DeclError> {
        let l = self.link_mut(id)?;
        if matches!(l.kind, LinkKind::Veth { .. }) {
            return Err(DeclError::StpNotBridge {
                name: l.name.clone(),
            });
        }
        if l.mcast_snooping != Some(on) {
            l.mcast_snooping = Some(on);
            l.set_pos.mcast_snooping = Some(pos);
            self.changed();
        }
        Ok(())
    }

    pub fn attach(&mut self, bridge: LinkId, port: LinkId, pos: Pos) -> Result<(), DeclError> {
        let b = self.link(bridge)?;
        let p = self.link(port)?;
        if matches!(b.kind, LinkKind::Veth { .. }) {
            return Err(DeclError::AttachToVeth {
                bridge: b.name.clone(),
            });
        }
        if matches!(
            b.kind,
            LinkKind::Macvlan { .. } | LinkKind::Vxlan { .. } | LinkKind::Tun(_)
        ) {
            return Err(DeclError::Kind {
                msg: format!("{} is not a bridge: attach() is called on a bridge", b.name),
            });
        }
        if p.ns != b.ns {
            return Err(DeclError::AttachAcross {
                port: p.name.clone(),
                port_ns: p.ns.clone(),
                bridge: b.name.clone(),
                bridge_ns: b.ns.clone(),
            });
        }
        if port == bridge {
            return Err(DeclError::AttachToSelf {
                bridge: b.name.clone(),
            });
        }
        if p.master != Some(bridge) && self.ports_of(bridge) >= crate::topo::kinds::BRIDGE_MAX_PORTS
        {
            return Err(DeclError::BridgeFull {
                bridge: b.name.clone(),
                limit: crate::topo::kinds::BRIDGE_MAX_PORTS,
            });
        }
        self.set_master(port, bridge);
        self.link_mut(port)?.set_pos.master = Some(pos);
        self.changed();
        Ok(())
    }

    pub fn move_to(&mut self, id: LinkId, ns: NsRef, _pos: Pos) -> Result<(), DeclError> {
        self.check_ns(&ns)?;
        let l = self.link(id)?;
        if l.ns == ns {
            return Ok(());
        }
        let name = l.name.clone();
        if let Some(other) = self.link_at(&ns, &name) {
            return Err(DeclError::MoveClash {
                ns,
                name,
                first: self.get(other).pos.clone(),
            });
        }
        if l.master.is_some() {
            return Err(DeclError::MoveAttached { name });
        }
        self.relocate(id, ns, name);
        self.changed();
        Ok(())
    }

    pub fn rename(&mut self, id: LinkId, name: IfName, _pos: Pos) -> Result<(), DeclError> {
        let ns = self.link(id)?.ns.clone();
        if let Some(other) = self.link_at(&ns, &name)
            && other != id
        {
            return Err(DeclError::RenameClash {
                ns,
                name,
                first: self.get(other).pos.clone(),
            });
        }
        self.relocate(id, ns, name);
        self.changed();
        Ok(())
    }

    pub fn add_addr(&mut self, id: LinkId, cidr: Cidr, pos: Pos) -> Result<(), DeclError> {
        let ip = cidr.addr();
        let unusable = ip.is_unspecified()
            || ip.is_multicast()
            || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
        if unusable {
            return Err(DeclError::AddrUnusable {
                addr: cidr.to_string(),
            });
        }
        let ns = self.link(id)?.ns.clone();
        if let Some(a) = self
            .addrs
            .iter()
            .find(|a| a.cidr.addr() == ip && self.get(a.link).ns == ns)
        {
            if a.link == id && a.cidr == cidr {
                return Ok(());
            }
            return Err(DeclError::AddrTaken {
                addr: ip,
                dev: self.get(a.link).name.clone(),
                ns,
                first: a.pos.clone(),
            });
        }
        self.check_room()?;
        self.addrs.push(AddrDecl {
            link: id,
            cidr,
            pos,
        });
        self.changed();
        Ok(())
    }
}
