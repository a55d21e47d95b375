//! What the ledger says one topology has in each namespace: which
//! namespaces it made (shown whole), and elsewhere which links, routes and
//! NAT tables are its own (shown alone).

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::ledger::Entry as Owned;
use crate::model::NsRef;

/// What one topology wants shown in one namespace, from its ledger.
pub(super) struct Wanted {
    pub ns: NsRef,
    pub owned: bool,
    pub links: BTreeSet<String>,
    pub routes: Vec<(IpNet, IpAddr)>,
    pub nat: BTreeSet<String>,
}

pub(super) fn wanted(entries: &[Owned]) -> Vec<Wanted> {
    let mut out: Vec<Wanted> = Vec::new();
    fn slot<'a>(out: &'a mut Vec<Wanted>, ns: &NsRef) -> &'a mut Wanted {
        let pos = match out.iter().position(|w| &w.ns == ns) {
            Some(p) => p,
            None => {
                out.push(Wanted {
                    ns: ns.clone(),
                    owned: false,
                    links: BTreeSet::new(),
                    routes: Vec::new(),
                    nat: BTreeSet::new(),
                });
                out.len() - 1
            }
        };
        &mut out[pos]
    }
    for e in entries {
        match e {
            Owned::Netns { ns, .. } => slot(&mut out, &NsRef::Named(ns.clone())).owned = true,
            Owned::Link { ns, name, .. }
            | Owned::LinkAttr { ns, name, .. }
            | Owned::LinkPlace { ns, name, .. }
            | Owned::Qdisc { ns, name, .. } => {
                slot(&mut out, ns).links.insert(name.to_string());
            }
            Owned::Addr { ns, dev, .. } => {
                slot(&mut out, ns).links.insert(dev.to_string());
            }
            Owned::Route { ns, dest, via } => {
                slot(&mut out, ns).routes.push((dest.as_net(), *via));
            }
            Owned::Nat { ns, table, .. } => {
                slot(&mut out, ns).nat.insert(table.as_str().to_string());
            }
            Owned::Sysctl { ns, .. }
            | Owned::Daemon { ns, .. }
            | Owned::RouteEx { ns, .. }
            | Owned::Rule { ns, .. } => {
                slot(&mut out, ns);
            }
            Owned::File { .. } => {}
        }
    }
    // The host first, then namespaces in the order the topology made them.
    out.sort_by_key(|w| w.ns != NsRef::Host);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cidr, IfName, NsName, RouteDest};

    #[test]
    fn wanted_puts_host_first_and_collects_links() {
        let foo = NsName::new("foons").unwrap();
        let entries = vec![
            Owned::Netns {
                ns: foo.clone(),
                ino: None,
            },
            Owned::Link {
                ns: NsRef::Host,
                name: IfName::new("veth0").unwrap(),
                kind: crate::ledger::MadeKind::Veth,
                peer: None,
                index: None,
                key: None,
                shared: false,
            },
            Owned::Addr {
                ns: NsRef::Host,
                dev: IfName::new("foobr0").unwrap(),
                cidr: Cidr::parse("172.18.0.1/16").unwrap(),
            },
            Owned::Route {
                ns: NsRef::Named(foo.clone()),
                dest: RouteDest::parse("default", &"172.18.0.1".parse().unwrap()).unwrap(),
                via: "172.18.0.1".parse().unwrap(),
            },
        ];
        let w = wanted(&entries);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].ns, NsRef::Host);
        assert!(!w[0].owned);
        assert_eq!(
            w[0].links.iter().cloned().collect::<Vec<_>>(),
            vec!["foobr0".to_string(), "veth0".to_string()]
        );
        assert!(w[1].owned);
        assert_eq!(w[1].routes.len(), 1);
    }
}
