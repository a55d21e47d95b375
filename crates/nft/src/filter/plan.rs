//! Filter rules laid out as the forward chain's rules and sets: rules of
//! one shape (verdict, family, which fields, protocol) become one set and
//! one lookup. An interval set cannot hold two overlapping elements, so an
//! element that overlaps one already placed goes to a second set of the
//! same shape.

use std::collections::HashMap;

use super::{Endpoint, FilterMatch, FilterProto, FilterRule};
use crate::sets::{FieldKind, SetElem, SetPlan, Span};

/// A field a rule looks up, in key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Key {
    Iif,
    Saddr,
    Oif,
    Daddr,
    Dport,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Shape {
    accept: bool,
    /// Some(v6) when a subnet (or ICMP) pins the family
    v6: Option<bool>,
    l4: Option<u8>,
    keys: Vec<Key>,
}

#[derive(Debug, Clone)]
pub(crate) enum FRuleKind {
    /// `ct state established,related accept`
    Established,
    /// `[meta nfproto …] [meta l4proto …] [keys @set] accept|drop`
    Shape {
        v6: Option<bool>,
        l4: Option<u8>,
        keys: Vec<Key>,
        set: Option<(String, u32)>,
        accept: bool,
    },
    /// `iifname . oifname @set accept`: within an isolated bridge
    IsolatedSelf { set: (String, u32) },
    /// `oifname @set ct status & dnat == 0 drop`: into it from outside
    IsolatedDrop { set: (String, u32) },
}

#[derive(Debug, Clone)]
pub(crate) struct FRule {
    pub kind: FRuleKind,
    pub tag: Option<usize>,
}

#[derive(Debug, Default)]
pub(crate) struct FilterPlan {
    pub sets: Vec<SetPlan>,
    pub rules: Vec<FRule>,
}

pub(crate) const ISOLATED: &str = "isolated";
pub(crate) const ISOLATED_SELF: &str = "isolated_self";

fn l4(p: FilterProto, v6: bool) -> u8 {
    match (p, v6) {
        (FilterProto::Tcp, _) => 6,
        (FilterProto::Udp, _) => 17,
        (FilterProto::Icmp, false) => 1,
        (FilterProto::Icmp, true) => 58,
    }
}

pub(super) fn l4_name(p: u8) -> &'static str {
    match p {
        6 => "tcp",
        17 => "udp",
        1 => "icmp",
        _ => "ipv6-icmp",
    }
}

fn net_v6(e: &Option<Endpoint>) -> Option<bool> {
    match e {
        Some(Endpoint::Net(n)) => Some(n.addr().is_ipv6()),
        _ => None,
    }
}

/// The shapes (and element) one allow/deny rule becomes: ICMP without a
/// subnet is two rules, ICMP for IPv4 and ICMPv6 for IPv6.
fn shapes(m: &FilterMatch, accept: bool) -> Vec<(Shape, SetElem)> {
    let fam = net_v6(&m.from).or(net_v6(&m.to));
    let fams: Vec<Option<bool>> = match (m.proto, fam) {
        (Some(FilterProto::Icmp), None) => vec![Some(false), Some(true)],
        (_, f) => vec![f],
    };
    let mut keys = Vec::new();
    let mut key = Vec::new();
    for (e, iface, addr) in [
        (&m.from, Key::Iif, Key::Saddr),
        (&m.to, Key::Oif, Key::Daddr),
    ] {
        match e {
            Some(Endpoint::Iface(n)) => {
                keys.push(iface);
                key.push(Span::ifname(n));
            }
            Some(Endpoint::Net(n)) => {
                keys.push(addr);
                key.push(Span::net(&n.trunc()));
            }
            None => {}
        }
    }
    if let Some((lo, hi)) = m.ports {
        keys.push(Key::Dport);
        key.push(Span::ports(lo, hi));
    }
    fams.into_iter()
        .map(|v6| {
            let shape = Shape {
                accept,
                v6,
                l4: m.proto.map(|p| l4(p, v6.unwrap_or(false))),
                keys: keys.clone(),
            };
            (
                shape,
                SetElem {
                    key: key.clone(),
                    tag: m.tag,
                },
            )
        })
        .collect()
}

pub(super) fn field(k: Key, v6: Option<bool>) -> FieldKind {
    match k {
        Key::Iif | Key::Oif => FieldKind::Ifname,
        Key::Saddr | Key::Daddr if v6 == Some(true) => FieldKind::V6,
        Key::Saddr | Key::Daddr => FieldKind::V4,
        Key::Dport => FieldKind::Port,
    }
}

fn key_name(k: Key) -> &'static str {
    match k {
        Key::Iif => "iif",
        Key::Saddr => "saddr",
        Key::Oif => "oif",
        Key::Daddr => "daddr",
        Key::Dport => "dport",
    }
}

fn set_name(s: &Shape) -> String {
    let mut n = String::from(if s.accept { "allow" } else { "deny" });
    match s.v6 {
        Some(false) => n.push('4'),
        Some(true) => n.push('6'),
        None => {}
    }
    for k in &s.keys {
        n.push('_');
        n.push_str(key_name(*k));
    }
    if let Some(p) = s.l4 {
        n.push('_');
        n.push_str(if p == 58 { "icmp" } else { l4_name(p) });
    }
    n
}

/// Splits elements so no set holds two that overlap (or the same twice).
fn partition(elems: Vec<SetElem>, interval: bool) -> Vec<Vec<SetElem>> {
    let mut groups: Vec<Vec<SetElem>> = Vec::new();
    if !interval {
        let mut seen = HashMap::new();
        for e in elems {
            let n = seen.entry(e.key.clone()).or_insert(0usize);
            if *n == 0 {
                if groups.is_empty() {
                    groups.push(Vec::new());
                }
                groups[0].push(e);
            }
            *n += 1;
        }
        return groups;
    }
    let mut elems = elems;
    elems.sort_by(|a, b| a.key.cmp(&b.key));
    elems.dedup_by(|a, b| a.key == b.key);
    // placed elements whose first field may still overlap later ones
    let mut active: Vec<(SetElem, usize)> = Vec::new();
    for e in elems {
        let lo = e.key.first().map(|s| s.lo.clone()).unwrap_or_default();
        active.retain(|(a, _)| a.key.first().is_some_and(|s| s.hi >= lo));
        let g = (0..)
            .find(|g| !active.iter().any(|(a, ag)| ag == g && a.overlaps(&e)))
            .unwrap_or(0);
        if g == groups.len() {
            groups.push(Vec::new());
        }
        groups[g].push(e.clone());
        active.push((e, g));
    }
    groups
}

/// The forward chain's rules and sets; set ids start at `first_id`.
pub(crate) fn plan(rules: &[FilterRule], first_id: u32) -> FilterPlan {
    let mut order: Vec<Shape> = Vec::new();
    let mut by_shape: HashMap<Shape, Vec<SetElem>> = HashMap::new();
    let mut bridges: Vec<(String, usize)> = Vec::new();
    for accept in [true, false] {
        for r in rules {
            let m = match (r, accept) {
                (FilterRule::Allow(m), true) | (FilterRule::Deny(m), false) => m,
                (FilterRule::Isolate { bridge, tag }, false) => {
                    if !bridges.iter().any(|(b, _)| b == bridge) {
                        bridges.push((bridge.clone(), *tag));
                    }
                    continue;
                }
                _ => continue,
            };
            for (shape, elem) in shapes(m, accept) {
                by_shape
                    .entry(shape.clone())
                    .or_insert_with(|| {
                        order.push(shape);
                        Vec::new()
                    })
                    .push(elem);
            }
        }
    }
    let mut p = FilterPlan::default();
    if rules.is_empty() {
        return p;
    }
    p.rules.push(FRule {
        kind: FRuleKind::Established,
        tag: None,
    });
    let mut next_id = first_id;
    for shape in order {
        let elems = by_shape.remove(&shape).unwrap_or_default();
        let tag = elems.first().map(|e| e.tag);
        if shape.keys.is_empty() {
            p.rules.push(FRule {
                kind: FRuleKind::Shape {
                    v6: shape.v6,
                    l4: shape.l4,
                    keys: Vec::new(),
                    set: None,
                    accept: shape.accept,
                },
                tag,
            });
            continue;
        }
        let fields: Vec<FieldKind> = shape.keys.iter().map(|k| field(*k, shape.v6)).collect();
        let interval = fields
            .iter()
            .any(|f| matches!(f, FieldKind::V4 | FieldKind::V6))
            || elems.iter().any(|e| e.key.iter().any(|s| s.lo != s.hi));
        let base = set_name(&shape);
        for (i, group) in partition(elems, interval).into_iter().enumerate() {
            let name = if i == 0 {
                base.clone()
            } else {
                format!("{base}_{}", i + 1)
            };
            let tag = group.first().map(|e| e.tag);
            p.sets.push(SetPlan {
                name: name.clone(),
                fields: fields.clone(),
                interval,
                elems: group,
            });
            p.rules.push(FRule {
                kind: FRuleKind::Shape {
                    v6: shape.v6,
                    l4: shape.l4,
                    keys: shape.keys.clone(),
                    set: Some((name, next_id)),
                    accept: shape.accept,
                },
                tag,
            });
            next_id += 1;
        }
    }
    if !bridges.is_empty() {
        let tag = bridges.first().map(|b| b.1);
        let one = |(b, t): &(String, usize)| SetElem {
            key: vec![Span::ifname(b)],
            tag: *t,
        };
        let two = |(b, t): &(String, usize)| SetElem {
            key: vec![Span::ifname(b), Span::ifname(b)],
            tag: *t,
        };
        p.sets.push(SetPlan {
            name: ISOLATED.into(),
            fields: vec![FieldKind::Ifname],
            interval: false,
            elems: bridges.iter().map(one).collect(),
        });
        p.sets.push(SetPlan {
            name: ISOLATED_SELF.into(),
            fields: vec![FieldKind::Ifname, FieldKind::Ifname],
            interval: false,
            elems: bridges.iter().map(two).collect(),
        });
        p.rules.push(FRule {
            kind: FRuleKind::IsolatedSelf {
                set: (ISOLATED_SELF.into(), next_id + 1),
            },
            tag,
        });
        p.rules.push(FRule {
            kind: FRuleKind::IsolatedDrop {
                set: (ISOLATED.into(), next_id),
            },
            tag,
        });
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny(from: &str, to: &str, ports: (u16, u16), tag: usize) -> FilterRule {
        FilterRule::Deny(FilterMatch {
            from: Some(Endpoint::Net(from.parse().expect("net"))),
            to: Some(Endpoint::Net(to.parse().expect("net"))),
            proto: Some(FilterProto::Tcp),
            ports: Some(ports),
            tag,
        })
    }

    #[test]
    fn one_shape_is_one_set_and_overlaps_go_to_a_second() {
        let p = plan(
            &[
                deny("10.0.0.0/8", "192.168.0.0/16", (80, 90), 1),
                deny("10.1.2.3/32", "1.2.3.4/32", (22, 22), 2),
                // inside the first in every field
                deny("10.1.0.0/16", "192.168.1.0/24", (85, 85), 3),
                deny("10.1.2.3/32", "1.2.3.4/32", (22, 22), 4),
            ],
            1,
        );
        let names: Vec<_> = p
            .sets
            .iter()
            .map(|s| (s.name.as_str(), s.elems.len()))
            .collect();
        assert_eq!(
            names,
            [
                ("deny4_saddr_daddr_dport_tcp", 2),
                ("deny4_saddr_daddr_dport_tcp_2", 1)
            ]
        );
        let texts: Vec<_> = p.rules.iter().map(FRule::text).collect();
        assert_eq!(
            texts,
            [
                "ct state established,related accept",
                "meta nfproto ipv4 meta l4proto tcp ip saddr . ip daddr . tcp dport @deny4_saddr_daddr_dport_tcp drop",
                "meta nfproto ipv4 meta l4proto tcp ip saddr . ip daddr . tcp dport @deny4_saddr_daddr_dport_tcp_2 drop",
            ]
        );
    }

    #[test]
    fn allows_come_first_and_icmp_without_a_subnet_is_both_families() {
        let p = plan(
            &[
                FilterRule::Isolate {
                    bridge: "br0".into(),
                    tag: 1,
                },
                FilterRule::Deny(FilterMatch {
                    from: Some(Endpoint::Iface("eth0".into())),
                    to: None,
                    proto: Some(FilterProto::Icmp),
                    ports: None,
                    tag: 2,
                }),
                FilterRule::Allow(FilterMatch {
                    from: None,
                    to: None,
                    proto: Some(FilterProto::Udp),
                    ports: None,
                    tag: 3,
                }),
            ],
            5,
        );
        let texts: Vec<_> = p.rules.iter().map(FRule::text).collect();
        assert_eq!(
            texts,
            [
                "ct state established,related accept",
                "meta l4proto udp accept",
                "meta nfproto ipv4 meta l4proto icmp iifname @deny4_iif_icmp drop",
                "meta nfproto ipv6 meta l4proto ipv6-icmp iifname @deny6_iif_icmp drop",
                "iifname . oifname @isolated_self accept",
                "oifname @isolated ct status & dnat == 0 drop",
            ]
        );
    }
}
