//! The declaration rules: every change to the desired topology goes through
//! one of these methods, which refuse what cannot be built (two links with
//! one name in a namespace, an attach across namespaces, a DNAT port
//! claimed twice …) before anything reaches the kernel.

use std::net::IpAddr;

use netplumb_nft::{DnatMapping, NatRule};

use super::{
    AddrDecl, DeclError, LinkDecl, LinkId, LinkKind, NatDecl, NsDecl, Pos, RouteDecl, SysctlDecl,
    Topology, fresh_uid,
};
use crate::model::{Cidr, IfName, NsName, NsRef, RouteDest};
use crate::op::RouteSpec;

impl Topology {
    pub(super) fn changed(&mut self) {
        self.revision += 1;
    }

    fn check_room(&self) -> Result<(), DeclError> {
        if self.limit > 0 && self.size() as u64 >= self.limit {
            return Err(DeclError::TooMany { limit: self.limit });
        }
        Ok(())
    }

    /// A named namespace must be declared before anything is put in it.
    fn check_ns(&self, ns: &NsRef) -> Result<(), DeclError> {
        match ns {
            NsRef::Named(n) if !self.has_ns(n) => Err(DeclError::UndeclaredNs { ns: n.clone() }),
            _ => Ok(()),
        }
    }

    pub(super) fn link_mut(&mut self, id: LinkId) -> Result<&mut LinkDecl, DeclError> {
        self.link(id)?;
        Ok(&mut self.links[id.index()])
    }

    /// Declare a namespace (again is fine: same namespace).
    pub fn add_netns(&mut self, name: NsName, pos: Pos) -> Result<NsRef, DeclError> {
        if !self.has_ns(&name) {
            self.check_room()?;
            self.namespaces.push(NsDecl {
                name: name.clone(),
                pos,
            });
            self.changed();
        }
        Ok(NsRef::Named(name))
    }

    pub(super) fn push_link(
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
            shape: None,
            pos,
            set_pos: Default::default(),
        });
        self.changed();
        LinkId {
            index: (self.links.len() - 1) as u32,
            uid,
        }
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
        if p.master != Some(bridge) && self.ports_of(bridge) >= super::kinds::BRIDGE_MAX_PORTS {
            return Err(DeclError::BridgeFull {
                bridge: b.name.clone(),
                limit: super::kinds::BRIDGE_MAX_PORTS,
            });
        }
        let l = self.link_mut(port)?;
        l.master = Some(bridge);
        l.set_pos.master = Some(pos);
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
        self.link_mut(id)?.ns = ns;
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
        self.link_mut(id)?.name = name;
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

    pub fn add_route(
        &mut self,
        ns: NsRef,
        dest: RouteDest,
        via: IpAddr,
        pos: Pos,
    ) -> Result<(), DeclError> {
        self.check_ns(&ns)?;
        if let Some(x) = self
            .routes
            .iter()
            .find(|x| x.ns == ns && x.route.dest == dest)
        {
            if x.route.via == via {
                return Ok(());
            }
            return Err(DeclError::RouteTaken {
                ns,
                dest,
                via: x.route.via,
                first: x.pos.clone(),
            });
        }
        self.check_room()?;
        self.routes.push(RouteDecl {
            ns,
            route: RouteSpec { dest, via },
            pos,
        });
        self.changed();
        Ok(())
    }

    /// A per-namespace sysctl. Keys are `net.*` only (anything else is the
    /// whole machine's), written with dots or slashes; the value is one
    /// line, not empty.
    pub fn add_sysctl(
        &mut self,
        ns: NsRef,
        key: &str,
        value: &str,
        pos: Pos,
    ) -> Result<(), DeclError> {
        let key = normalize_sysctl_key(key)?;
        let value = check_sysctl_value(&key, value)?;
        self.check_ns(&ns)?;
        self.check_room()?;
        self.sysctls.push(SysctlDecl {
            ns,
            key,
            value,
            pos,
        });
        self.changed();
        Ok(())
    }

    /// A NAT rule; `make` gets the rule's tag (its index, for errors). A
    /// DNAT mapping whose key another mapping already holds is refused
    /// naming both lines; the same mapping twice is one mapping. NAT needs
    /// forwarding where it happens: it is switched on there too.
    pub fn add_nat(
        &mut self,
        ns: NsRef,
        make: impl FnOnce(usize) -> NatRule,
        pos: Pos,
    ) -> Result<(), DeclError> {
        self.check_ns(&ns)?;
        self.check_room()?;
        let tag = self.nat.len();
        let rule = make(tag);
        let v6 = match &rule {
            NatRule::Masquerade { src, .. } | NatRule::Snat { src, .. } => src.addr().is_ipv6(),
            NatRule::Dnat(m) => m.to_addr.is_ipv6(),
            NatRule::Hairpin { subnet, .. } => subnet.addr().is_ipv6(),
            NatRule::LocalhostMasquerade { .. } => false,
        };
        if let NatRule::Dnat(m) = &rule
            && self.claim_dnat(&ns, m)?
        {
            return Ok(());
        }
        self.nat.push(NatDecl {
            ns: ns.clone(),
            rule,
            pos: pos.clone(),
        });
        let key = if v6 {
            "net.ipv6.conf.all.forwarding"
        } else {
            "net.ipv4.ip_forward"
        };
        if !self.sysctls.iter().any(|s| s.ns == ns && s.key == key) {
            self.sysctls.push(SysctlDecl {
                ns,
                key: key.into(),
                value: "1".into(),
                pos,
            });
        }
        self.changed();
        Ok(())
    }

    /// Enter `m` in the DNAT index. Ok(true): exactly this mapping is
    /// already there (nothing to add).
    fn claim_dnat(&mut self, ns: &NsRef, m: &DnatMapping) -> Result<bool, DeclError> {
        let key = (
            ns.clone(),
            m.to_addr.is_ipv6(),
            m.proto as u8,
            m.daddr,
            m.iif.clone(),
        );
        let (lo, hi) = m.ports;
        let index = self.dnat_index.entry(key).or_default();
        let clash = index
            .range(..=hi)
            .next_back()
            .filter(|(start, (end, _))| **start <= hi && *end >= lo)
            .map(|(_, (_, tag))| *tag);
        if let Some(tag) = clash {
            let first = &self.nat[tag];
            if let NatRule::Dnat(f) = &first.rule {
                if netplumb_nft::same_destination(f, m) {
                    return Ok(true);
                }
                return Err(DeclError::DnatClash {
                    msg: netplumb_nft::clash_message(f, m),
                    first: first.pos.clone(),
                });
            }
        }
        index.insert(lo, (hi, m.tag));
        Ok(false)
    }
}

fn normalize_sysctl_key(key: &str) -> Result<String, DeclError> {
    let ok = !key.is_empty()
        && !key.contains("..")
        && !key.starts_with(['.', '/'])
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
    if !ok {
        return Err(DeclError::SysctlName {
            key: key.to_string(),
        });
    }
    let key = key.replace('/', ".");
    if !key.starts_with("net.") {
        return Err(DeclError::SysctlGlobal { key });
    }
    Ok(key)
}

fn check_sysctl_value(key: &str, value: &str) -> Result<String, DeclError> {
    let v = value.trim();
    let why = if v.is_empty() {
        Some("empty")
    } else if v.chars().any(char::is_control) {
        Some("more than one line")
    } else if v.len() > 4096 {
        Some("longer than a sysctl takes")
    } else {
        None
    };
    match why {
        Some(why) => Err(DeclError::SysctlValue {
            key: key.to_string(),
            value: value.to_string(),
            why,
        }),
        None => Ok(v.to_string()),
    }
}
