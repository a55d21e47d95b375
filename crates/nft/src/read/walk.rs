//! Walks a table's base chains (following jumps, with the jump's conditions
//! carried into the chain it reaches) and sorts every rule into what it
//! recognises and the human description of what it cannot express.

use std::collections::HashSet;

use super::cond::{self, Action, Cond};
use super::filter::FilterAcc;
use super::{RawTable, nat, text};
use crate::filter::FilterRule;
use crate::loss::RandomLoss;
use crate::model::NatRule;
use crate::sys::*;

/// What a table holds, as typed rules plus descriptions of the rest.
#[derive(Debug, Default)]
pub(crate) struct Recognized {
    pub nat: Vec<NatRule>,
    pub filter: Vec<FilterRule>,
    pub loss: Vec<RandomLoss>,
    pub unrecognized: Vec<String>,
}

const MAX_DEPTH: usize = 8;

/// The base chain a rule is reached from.
#[derive(Clone, Copy)]
struct Hooked<'a> {
    num: u32,
    /// the chain type: nat, filter, route
    ty: Option<&'a str>,
    /// the device of an ingress chain
    dev: Option<&'a str>,
}

struct Walk<'a> {
    raw: &'a RawTable,
    family: u8,
    out: Recognized,
    /// mappings of output chains, kept only when prerouting lacks them
    output: Vec<(Vec<NatRule>, String)>,
    reached: HashSet<String>,
    filter: FilterAcc,
}

impl<'a> Walk<'a> {
    fn chain(&mut self, name: &str, hook: Hooked<'a>, prefix: &[Cond], path: &str, depth: usize) {
        let Some(c) = self.raw.chain(name) else {
            return;
        };
        for stmts in &c.rules {
            let p = cond::parse(self.family, stmts);
            let desc = format!("{path}: {}", text::rule(self.family, stmts));
            let mut full = cond::Parsed {
                conds: prefix.to_vec(),
                action: p.action.clone(),
            };
            full.conds.extend(p.conds.iter().cloned());
            match &p.action {
                Action::Jump(to) if depth < MAX_DEPTH && self.raw.chain(to).is_some() => {
                    self.reached.insert(to.clone());
                    let via = format!(
                        "{path} → {to} (reached by `{}`)",
                        text::rule(self.family, stmts)
                    );
                    self.chain(to, hook, &full.conds, &via, depth + 1);
                }
                // a rule that only counts changes nothing
                Action::None if p.conds.is_empty() => {}
                _ => {
                    if !self.rule(hook, &full, desc.clone()) {
                        self.out.unrecognized.push(desc);
                    }
                }
            }
        }
    }

    /// Files one rule; false when nothing recognises it.
    fn rule(&mut self, hook: Hooked<'a>, p: &cond::Parsed, desc: String) -> bool {
        let sets = |n: &str| self.raw.set(n).cloned();
        if hook.num == NF_INET_FORWARD && hook.ty == Some("filter") {
            return self.filter.rule(p, sets, &desc);
        }
        if let (NF_INET_INGRESS, Some("filter"), Some(dev)) = (hook.num, hook.ty, hook.dev) {
            return match (p.conds.as_slice(), &p.action) {
                (
                    [
                        Cond::Random {
                            modulus: 100,
                            below,
                        },
                    ],
                    Action::Drop,
                ) if (1..=100).contains(below) => {
                    self.out.loss.push(RandomLoss {
                        iface: dev.to_string(),
                        percent: *below as u8,
                        tag: 0,
                    });
                    true
                }
                _ => false,
            };
        }
        if hook.ty != Some("nat") {
            return false;
        }
        match hook.num {
            NF_INET_PRE_ROUTING => match nat::dnat(p, false, sets) {
                Some(r) => {
                    // the first matching rule wins: a mapping an earlier
                    // rule already takes is dead, and no netplumb rule
                    let (dead, live): (Vec<NatRule>, Vec<NatRule>) =
                        r.into_iter().partition(|m| self.taken(m));
                    if !dead.is_empty() {
                        self.out.unrecognized.push(format!(
                            "{desc} (never used for {} of its mappings: an earlier rule takes the same port)",
                            dead.len()
                        ));
                    }
                    self.out.nat.extend(live);
                    true
                }
                None => false,
            },
            NF_INET_LOCAL_OUT => match nat::dnat(p, true, sets) {
                Some(r) => {
                    self.output.push((r, desc));
                    true
                }
                None => false,
            },
            NF_INET_POST_ROUTING => match nat::src_nat(p) {
                Some(r) => {
                    self.out.nat.push(r);
                    true
                }
                None => false,
            },
            _ => false,
        }
    }
}

impl Walk<'_> {
    /// Does an earlier prerouting mapping catch every packet `r` would?
    fn taken(&self, r: &NatRule) -> bool {
        let NatRule::Dnat(m) = r else { return false };
        self.out.nat.iter().any(|e| match e {
            NatRule::Dnat(e) => {
                e.proto == m.proto
                    && e.to_addr.is_ipv6() == m.to_addr.is_ipv6()
                    && (e.daddr.is_none() || e.daddr == m.daddr)
                    && (e.iif.is_none() || e.iif == m.iif)
                    && e.ports.0 <= m.ports.1
                    && m.ports.0 <= e.ports.1
            }
            _ => false,
        })
    }
}

fn without_iif(r: &NatRule) -> NatRule {
    match r {
        NatRule::Dnat(m) => NatRule::Dnat(crate::model::DnatMapping {
            iif: None,
            ..m.clone()
        }),
        o => o.clone(),
    }
}

pub(crate) fn recognize(raw: &RawTable) -> Recognized {
    let mut w = Walk {
        raw,
        family: raw.info.family.nfproto(),
        out: Recognized::default(),
        output: Vec::new(),
        reached: HashSet::new(),
        filter: FilterAcc::default(),
    };
    for c in &raw.chains {
        let Some(h) = &c.hook else { continue };
        if c.policy == Some(NF_DROP) {
            w.out.unrecognized.push(format!("{}: policy drop", c.name));
        }
        let hook = Hooked {
            num: h.num,
            ty: c.ty.as_deref(),
            dev: h.dev.as_deref(),
        };
        w.chain(&c.name, hook, &[], &c.name, 0);
    }
    // netplumb's DNAT applies to forwarded and local traffic alike: an
    // output-chain mapping that prerouting has too is part of that one rule
    let pre: HashSet<NatRule> = w.out.nat.iter().map(without_iif).collect();
    for (rules, desc) in std::mem::take(&mut w.output) {
        if !rules.iter().all(|r| pre.contains(&without_iif(r))) {
            w.out
                .unrecognized
                .push(format!("{desc} (only for locally generated traffic)"));
        }
    }
    let (filter, rest) = std::mem::take(&mut w.filter).finish();
    w.out.filter = filter;
    w.out.unrecognized.extend(rest);
    for c in &raw.chains {
        if c.hook.is_none() && !w.reached.contains(&c.name) && !c.rules.is_empty() {
            w.out.unrecognized.push(format!(
                "{}: not reached from a base chain ({} rules not read)",
                c.name,
                c.rules.len()
            ));
        }
    }
    w.out
}
