//! Filter rules recognised in a forward chain: this crate's set lookups and
//! isolation pair, and plain one-rule matches. A rule is only recognised
//! when it means exactly a [`FilterRule`]: ICMP for "both families" only
//! when both halves are there, isolation only with its within-bridge rule.

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::cond::{Action, Cond, Key, Parsed};
use super::elems::{RawSet, prefix_len, split};
use super::text::{ifname_from, ip_from};
use crate::filter::{Endpoint, FilterMatch, FilterProto, FilterRule, ISOLATED, ISOLATED_SELF};
use crate::sys::*;

#[derive(Default)]
pub(crate) struct FilterAcc {
    pub rules: Vec<FilterRule>,
    /// ICMP rules without a subnet, by family seen, until both are
    icmp: BTreeMap<FilterRule, (bool, bool, String)>,
    /// bridges of `oifname @s ct status ! dnat drop`, and that rule's text
    isolated: Vec<(String, String)>,
    /// pairs of `iifname . oifname @s accept`, and that rule's text
    isolated_self: Vec<(String, String, String)>,
}

fn proto(l4: Option<u8>, nfproto: Option<u8>) -> Option<Option<FilterProto>> {
    Some(match (l4, nfproto) {
        (None, _) => None,
        (Some(6), _) => Some(FilterProto::Tcp),
        (Some(17), _) => Some(FilterProto::Udp),
        (Some(1), None | Some(NFPROTO_IPV4)) => Some(FilterProto::Icmp),
        (Some(58), None | Some(NFPROTO_IPV6)) => Some(FilterProto::Icmp),
        _ => return None,
    })
}

/// One element of a set keyed on `keys`, as the rule's endpoints and ports.
fn elem_match(keys: &[Key], set: &RawSet, lo: &[u8], hi: &[u8]) -> Option<FilterMatch> {
    let lo = split(set.key_type, lo);
    let hi = split(set.key_type, hi);
    let mut m = FilterMatch {
        from: None,
        to: None,
        proto: None,
        ports: None,
        tag: 0,
    };
    if lo.len() != keys.len() {
        return None;
    }
    for (k, ((_, l), (_, h))) in keys.iter().zip(lo.iter().zip(&hi)) {
        let net = || IpNet::new(ip_from(l)?, prefix_len(l, h)?).ok();
        let port = |b: &[u8]| Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]));
        match k {
            Key::Iif | Key::Oif if l == h => {
                let e = Some(Endpoint::Iface(ifname_from(l)));
                if *k == Key::Iif { m.from = e } else { m.to = e }
            }
            Key::Saddr => m.from = Some(Endpoint::Net(net()?)),
            Key::Daddr => m.to = Some(Endpoint::Net(net()?)),
            Key::Dport => m.ports = Some((port(l)?, port(h)?)),
            _ => return None,
        }
    }
    Some(m)
}

impl FilterAcc {
    /// Files a rule of a forward filter chain; false when it is not one of ours.
    pub fn rule(&mut self, p: &Parsed, set: impl Fn(&str) -> Option<RawSet>, desc: &str) -> bool {
        let accept = match p.action {
            Action::Accept => true,
            Action::Drop => false,
            _ => return false,
        };
        match (p.conds.as_slice(), accept) {
            ([Cond::CtEstablished], true) => return true,
            // this crate's isolation pair, known by its set names
            ([Cond::Lookup { keys, set: s }], true)
                if keys == &[Key::Iif, Key::Oif] && s == ISOLATED_SELF =>
            {
                let Some(s) = set(s) else { return false };
                for e in &s.elems {
                    let f = split(s.key_type, &e.lo);
                    if e.lo != e.hi || f.len() != 2 {
                        return false;
                    }
                    self.isolated_self.push((
                        ifname_from(&f[0].1),
                        ifname_from(&f[1].1),
                        desc.to_string(),
                    ));
                }
                return true;
            }
            ([Cond::Lookup { keys, set: s }, Cond::CtNotDnat], false)
                if keys == &[Key::Oif] && s == ISOLATED =>
            {
                let Some(s) = set(s) else { return false };
                for e in &s.elems {
                    self.isolated.push((ifname_from(&e.lo), desc.to_string()));
                }
                return true;
            }
            _ => {}
        }
        let (mut nfproto, mut l4, mut lookup) = (None, None, None);
        let mut direct = FilterMatch {
            from: None,
            to: None,
            proto: None,
            ports: None,
            tag: 0,
        };
        for c in &p.conds {
            match c {
                Cond::Nfproto(x) if nfproto.is_none() => nfproto = Some(*x),
                Cond::L4(x) if l4.is_none() => l4 = Some(*x),
                Cond::Lookup { keys, set } if lookup.is_none() => lookup = Some((keys, set)),
                Cond::Iif(i) if direct.from.is_none() => {
                    direct.from = Some(Endpoint::Iface(i.clone()))
                }
                Cond::Saddr(n) if direct.from.is_none() => direct.from = Some(Endpoint::Net(*n)),
                Cond::Oif(o) if direct.to.is_none() => direct.to = Some(Endpoint::Iface(o.clone())),
                Cond::Daddr(n) if direct.to.is_none() => direct.to = Some(Endpoint::Net(*n)),
                Cond::Dport(lo, hi) if direct.ports.is_none() => direct.ports = Some((*lo, *hi)),
                _ => return false,
            }
        }
        let Some(proto) = proto(l4, nfproto) else {
            return false;
        };
        let mut matches = Vec::new();
        match lookup {
            None => matches.push(direct),
            Some((keys, name)) => {
                // a lookup and direct matches together: not a shape of ours
                if direct.from.is_some() || direct.to.is_some() || direct.ports.is_some() {
                    return false;
                }
                let Some(s) = set(name) else { return false };
                if s.flags & NFT_SET_MAP != 0 {
                    return false;
                }
                for e in &s.elems {
                    match elem_match(keys, &s, &e.lo, &e.hi) {
                        Some(m) => matches.push(m),
                        None => return false,
                    }
                }
            }
        }
        let mut out = Vec::new();
        for mut m in matches {
            m.proto = proto;
            let fam = [&m.from, &m.to].into_iter().find_map(|e| match e {
                Some(Endpoint::Net(n)) => Some(if n.addr().is_ipv6() {
                    NFPROTO_IPV6
                } else {
                    NFPROTO_IPV4
                }),
                _ => None,
            });
            let ports_ok = m.ports.is_none_or(|(lo, _)| lo >= 1)
                && (m.ports.is_none()
                    || matches!(proto, Some(FilterProto::Tcp | FilterProto::Udp)));
            let same_fam = match (&m.from, &m.to) {
                (Some(Endpoint::Net(a)), Some(Endpoint::Net(b))) => {
                    a.addr().is_ipv6() == b.addr().is_ipv6()
                }
                _ => true,
            };
            if !ports_ok || !same_fam || (nfproto.is_some() && fam.is_some() && nfproto != fam) {
                return false;
            }
            let r = if accept {
                FilterRule::Allow(m)
            } else {
                FilterRule::Deny(m)
            };
            // a family pinned by nfproto alone only means something for ICMP
            match (fam, nfproto) {
                (None, Some(f)) if proto == Some(FilterProto::Icmp) => out.push((r, Some(f))),
                (None, Some(_)) => return false,
                _ => out.push((r, None)),
            }
        }
        for (r, fam) in out {
            match fam {
                None => self.rules.push(r),
                Some(f) => {
                    let e = self
                        .icmp
                        .entry(r)
                        .or_insert((false, false, desc.to_string()));
                    if f == NFPROTO_IPV4 {
                        e.0 = true
                    } else {
                        e.1 = true
                    }
                }
            }
        }
        true
    }

    /// The rules, and the descriptions of halves that did not pair up.
    pub fn finish(mut self) -> (Vec<FilterRule>, Vec<String>) {
        let mut rest = Vec::new();
        for (r, (v4, v6, desc)) in std::mem::take(&mut self.icmp) {
            if v4 && v6 {
                self.rules.push(r);
            } else {
                rest.push(desc);
            }
        }
        for (b, desc) in &self.isolated {
            if self.isolated_self.iter().any(|(i, o, _)| i == b && o == b) {
                self.rules.push(FilterRule::Isolate {
                    bridge: b.clone(),
                    tag: 0,
                });
            } else {
                rest.push(format!("{desc} (bridge {b})"));
            }
        }
        for (i, o, desc) in &self.isolated_self {
            if i != o || !self.isolated.iter().any(|(b, _)| b == i) {
                rest.push(format!("{desc} ({i} . {o})"));
            }
        }
        rest.dedup();
        (self.rules, rest)
    }
}
