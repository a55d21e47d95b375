//! What publishing a port implies beyond the DNAT mapping, as Docker does
//! it: hairpin (a container reaches its own and its siblings' published
//! ports through the host's address) and, when asked, localhost (the port
//! answers on 127.0.0.1 too).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use netplumb_nft::NatRule;

use super::{DeclError, LinkId, LinkKind, Pos, SysctlDecl, Topology};
use crate::model::NsRef;

impl Topology {
    /// The link in `ns` one of whose declared subnets holds `ip`, with that
    /// subnet: where traffic to `ip` leaves `ns`.
    pub fn link_on_subnet(&self, ns: &NsRef, ip: IpAddr) -> Option<(LinkId, IpNet)> {
        on_subnet(&self.subnets_of(ns), ip)
    }

    /// The declared subnets of `ns`, in declaration order, with the link
    /// and the address that make each: `link_on_subnet` for many lookups.
    fn subnets_of(&self, ns: &NsRef) -> Vec<(LinkId, IpNet, IpAddr)> {
        self.addrs()
            .iter()
            .filter(|a| &self.get(a.link).ns == ns)
            .map(|a| (a.link, a.cidr.trunc(), a.cidr.addr()))
            .collect()
    }

    /// The bridge and subnet behind each DNAT backend of `ns` that keeps
    /// hairpin on, without duplicates. The subnets of `ns` are collected
    /// once: a namespace publishing ten thousand ports asked for them ten
    /// thousand times, each a walk of every address of the topology.
    fn hairpin_backends(&self, ns: &NsRef) -> HashSet<(LinkId, IpNet, IpAddr)> {
        let subnets = self.subnets_of(ns);
        let mut out = HashSet::new();
        for d in self.nat().iter().filter(|d| &d.ns == ns && d.hairpin) {
            let NatRule::Dnat(m) = &d.rule else { continue };
            let ip = m.to_addr;
            if let Some((l, net)) = on_subnet(&subnets, ip)
                && self.get(l).kind == LinkKind::Bridge
            {
                out.insert((l, net, ip));
            }
        }
        out
    }

    /// `ip saddr S ip daddr S ct status dnat masquerade` for each bridge
    /// subnet `S` holding a published backend of `ns`: a sibling's answer
    /// then comes back through the host, not straight from the backend.
    pub fn hairpin_rules(&self, ns: &NsRef) -> Vec<NatRule> {
        let mut nets: Vec<IpNet> = self
            .hairpin_backends(ns)
            .into_iter()
            .map(|(_, n, _)| n)
            .collect();
        nets.sort();
        nets.dedup();
        nets.into_iter()
            .map(|subnet| NatRule::Hairpin { subnet, tag: 0 })
            .collect()
    }

    /// The bridge ports that need hairpin mode: the host end of each veth
    /// whose other end holds a published backend. Without it the bridge
    /// never sends a frame back out of the port it came in by, so a
    /// container cannot reach its own published port. One pass over the
    /// links and one over the addresses (it was mappings × links × addresses).
    pub fn hairpin_ports(&self) -> HashSet<LinkId> {
        let nss: HashSet<&NsRef> = self.nat().iter().map(|d| &d.ns).collect();
        let backends: HashSet<(LinkId, IpAddr)> = nss
            .into_iter()
            .flat_map(|ns| self.hairpin_backends(ns))
            .map(|(bridge, _, ip)| (bridge, ip))
            .collect();
        if backends.is_empty() {
            return HashSet::new();
        }
        let mut addrs_of: HashMap<LinkId, Vec<IpAddr>> = HashMap::new();
        for a in self.addrs() {
            addrs_of.entry(a.link).or_default().push(a.cidr.addr());
        }
        let mut out = HashSet::new();
        for (id, l) in self.links() {
            let (LinkKind::Veth { .. }, Some(bridge)) = (&l.kind, l.master) else {
                continue;
            };
            let Ok(peer) = self.peer(id) else { continue };
            let holds = addrs_of
                .get(&peer)
                .is_some_and(|ips| ips.iter().any(|ip| backends.contains(&(bridge, *ip))));
            if holds {
                out.insert(id);
            }
        }
        out
    }

    /// `shape(#{ loss: N })` alone: random drop of what arrives on the
    /// link, in the topology's table of the link's namespace (nftables'
    /// `numgen random mod 100 < N drop`), which needs no netem.
    pub fn loss_rules(&self, ns: &NsRef) -> Vec<netplumb_nft::RandomLoss> {
        self.links()
            .filter(|(_, l)| &l.ns == ns)
            .filter_map(|(id, l)| {
                let m = l.shape.as_ref()?.loss_only()?;
                Some(netplumb_nft::RandomLoss {
                    iface: l.name.to_string(),
                    // Whole percent: nft draws from 0..100.
                    percent: (m.div_ceil(1000)).clamp(1, 100) as u8,
                    tag: id.index(),
                })
            })
            .collect()
    }

    /// Namespaces with a loss-only shape on one of their links.
    pub fn loss_namespaces(&self) -> Vec<NsRef> {
        let mut out: Vec<NsRef> = Vec::new();
        for (_, l) in self.links() {
            if l.shape.as_ref().and_then(|s| s.loss_only()).is_some() && !out.contains(&l.ns) {
                out.push(l.ns.clone());
            }
        }
        out
    }

    /// `localhost: true` on a mapping to `to` in `ns`: DNAT'd traffic from
    /// 127.0.0.1 leaves through the link on `to`'s subnet with a routable
    /// source, which the kernel allows only with route_localnet on that link.
    /// IPv4 only: the kernel never routes ::1 off the host.
    pub fn publish_localhost(&mut self, ns: &NsRef, to: IpAddr, pos: Pos) -> Result<(), DeclError> {
        if to.is_ipv6() {
            return Err(DeclError::LocalhostV6 { to });
        }
        let (link, _) = self
            .link_on_subnet(ns, to)
            .ok_or(DeclError::LocalhostNoLink { to, ns: ns.clone() })?;
        let oif = self.get(link).name.to_string();
        let have = self.nat().iter().any(|d| {
            &d.ns == ns
                && matches!(&d.rule, NatRule::LocalhostMasquerade { oif: o, .. } if o == &oif)
        });
        if !have {
            self.add_nat(
                ns.clone(),
                |tag| NatRule::LocalhostMasquerade {
                    oif: oif.clone(),
                    tag,
                },
                pos.clone(),
            )?;
        }
        let key = format!("net.ipv4.conf.{oif}.route_localnet");
        if !self.has_sysctl(ns, &key) {
            self.push_sysctl(SysctlDecl {
                ns: ns.clone(),
                key,
                value: "1".into(),
                pos,
            });
        }
        Ok(())
    }
}

/// The first of `subnets` (see `Topology::subnets_of`) that holds `ip`
/// as another host's address, with its link.
fn on_subnet(subnets: &[(LinkId, IpNet, IpAddr)], ip: IpAddr) -> Option<(LinkId, IpNet)> {
    subnets
        .iter()
        .find(|(_, net, own)| net.contains(&ip) && *own != ip)
        .map(|&(l, net, _)| (l, net))
}
