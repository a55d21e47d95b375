//! Filter rules (allow / deny / isolate) in the topology's own nftables
//! table. Endpoints are kept as the script named them — a namespace, a
//! link, a subnet — and resolved when the table is built, because a
//! namespace's addresses and a link's name and place may still change after
//! the rule is declared.

use ipnet::IpNet;
use netplumb_nft::{Endpoint, FilterMatch, FilterProto, FilterRule};

use super::{DeclError, LinkId, LinkKind, Pos, Topology};
use crate::model::{NsName, NsRef};

/// Filter tags start here so an nft error's tag says which list it indexes
/// (NAT rules are tagged by their index from 0).
pub const FILTER_TAG_BASE: usize = 1 << 24;

/// One side of an allow / deny rule, as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterEnd {
    /// A subnet or an address.
    Net(IpNet),
    /// Every address the namespace's links have.
    Ns(NsName),
    /// Traffic arriving on / leaving through this link.
    Link(LinkId),
}

/// What an allow / deny rule matches; a field left out matches all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilterSpec {
    pub from: Option<FilterEnd>,
    pub to: Option<FilterEnd>,
    pub proto: Option<FilterProto>,
    pub ports: Option<(u16, u16)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterKind {
    Allow(FilterSpec),
    Deny(FilterSpec),
    /// Nothing from outside reaches the bridge's namespaces except
    /// published ports; the rule lives where the bridge is.
    Isolate(LinkId),
}

#[derive(Debug, Clone)]
pub struct FilterDecl {
    /// Where the rule lives (for isolate: where the bridge was declared; the
    /// bridge's current namespace is used).
    pub ns: NsRef,
    pub kind: FilterKind,
    pub pos: Pos,
}

impl Topology {
    pub fn filters(&self) -> &[FilterDecl] {
        &self.filters
    }

    /// An allow / deny / isolate rule in `ns`'s table.
    pub fn add_filter(&mut self, ns: NsRef, kind: FilterKind, pos: Pos) -> Result<(), DeclError> {
        self.check_ns(&ns)?;
        self.check_room()?;
        let ns = match &kind {
            FilterKind::Isolate(b) => {
                let l = self.link(*b)?;
                if l.kind != LinkKind::Bridge {
                    return Err(DeclError::NotBridgeFor {
                        name: l.name.clone(),
                        what: "isolate()",
                    });
                }
                l.ns.clone()
            }
            FilterKind::Allow(s) | FilterKind::Deny(s) => {
                for e in [&s.from, &s.to].into_iter().flatten() {
                    match e {
                        FilterEnd::Link(id) => {
                            self.link(*id)?;
                        }
                        FilterEnd::Ns(n) => self.check_ns(&NsRef::Named(n.clone()))?,
                        FilterEnd::Net(_) => {}
                    }
                }
                ns
            }
        };
        self.filters.push(FilterDecl { ns, kind, pos });
        self.changed();
        Ok(())
    }

    /// The namespace a filter rule's table is in.
    pub fn filter_ns(&self, d: &FilterDecl) -> NsRef {
        match &d.kind {
            FilterKind::Isolate(b) => self.get(*b).ns.clone(),
            _ => d.ns.clone(),
        }
    }

    /// The rules of `ns`'s forward chain, endpoints resolved. Errors carry
    /// the rule's position.
    pub fn filter_rules(&self, ns: &NsRef) -> Result<Vec<FilterRule>, (Pos, String)> {
        let mut out = Vec::new();
        for (i, d) in self.filters.iter().enumerate() {
            if &self.filter_ns(d) != ns {
                continue;
            }
            let tag = FILTER_TAG_BASE + i;
            match &d.kind {
                FilterKind::Isolate(b) => out.push(FilterRule::Isolate {
                    bridge: self.get(*b).name.to_string(),
                    tag,
                }),
                FilterKind::Allow(s) | FilterKind::Deny(s) => {
                    let allow = matches!(d.kind, FilterKind::Allow(_));
                    let from = self.resolve(ns, &s.from).map_err(|e| (d.pos.clone(), e))?;
                    let to = self.resolve(ns, &s.to).map_err(|e| (d.pos.clone(), e))?;
                    for f in &from {
                        for t in &to {
                            // A namespace with v4 and v6 addresses meets a
                            // subnet of one family: only same-family pairs.
                            if let (Some(Endpoint::Net(a)), Some(Endpoint::Net(b))) = (f, t)
                                && a.addr().is_ipv4() != b.addr().is_ipv4()
                            {
                                continue;
                            }
                            let m = FilterMatch {
                                from: f.clone(),
                                to: t.clone(),
                                proto: s.proto,
                                ports: s.ports,
                                tag,
                            };
                            out.push(if allow {
                                FilterRule::Allow(m)
                            } else {
                                FilterRule::Deny(m)
                            });
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    fn resolve(&self, ns: &NsRef, e: &Option<FilterEnd>) -> Result<Vec<Option<Endpoint>>, String> {
        let Some(e) = e else { return Ok(vec![None]) };
        match e {
            FilterEnd::Net(n) => Ok(vec![Some(Endpoint::Net(*n))]),
            FilterEnd::Link(id) => {
                let l = self.get(*id);
                if &l.ns != ns {
                    return Err(format!(
                        "link {} is in netns {}, not in {ns} where the rule is: name the namespace or a subnet instead",
                        l.name, l.ns
                    ));
                }
                Ok(vec![Some(Endpoint::Iface(l.name.to_string()))])
            }
            FilterEnd::Ns(n) => {
                let r = NsRef::Named(n.clone());
                let nets: Vec<Option<Endpoint>> = self
                    .addrs()
                    .iter()
                    .filter(|a| self.get(a.link).ns == r)
                    .map(|a| {
                        let ip = a.cidr.addr();
                        let len = if ip.is_ipv4() { 32 } else { 128 };
                        IpNet::new(ip, len).map(|n| Some(Endpoint::Net(n)))
                    })
                    .collect::<Result<_, _>>()
                    .map_err(|e| e.to_string())?;
                if nets.is_empty() {
                    return Err(format!(
                        "netns {n} has no address for a filter rule to match: give its links addresses, or name a subnet"
                    ));
                }
                Ok(nets)
            }
        }
    }
}
