//! Routes of every kind and policy rules as requests: `op::RouteEx` /
//! `op::RuleSpec` to the encoders of `route_msg` / `rule_msg`, device names
//! resolved to the namespace's ifindexes.

use super::LinuxKernel;
use super::msg::Req;
use super::route_msg::{NextHop, Route, RouteKind};
use super::rule_msg::{Rule, RuleAction};
use crate::kernel::KernelError;
use crate::model::NsRef;
use crate::op::{RouteEx, RouteType, RuleGoal, RuleSpec, Shape};

fn bad(e: super::link_msg::LinkError) -> KernelError {
    KernelError::errno(libc::EINVAL, e.to_string())
}

fn route(k: &mut LinuxKernel, ns: &NsRef, r: &RouteEx) -> Result<Route, KernelError> {
    let mut out = Route::new(r.dest.as_net());
    out.via = r.via;
    out.dev = match &r.dev {
        Some(d) => Some(k.ifindex(ns, d.as_str())?),
        None => None,
    };
    out.metric = r.metric;
    out.src = r.src;
    out.table = r.table;
    out.onlink = r.onlink;
    out.mtu = r.mtu;
    out.kind = match r.kind {
        RouteType::Unicast => RouteKind::Unicast,
        RouteType::Blackhole => RouteKind::Blackhole,
        RouteType::Unreachable => RouteKind::Unreachable,
        RouteType::Prohibit => RouteKind::Prohibit,
    };
    for h in &r.nexthops {
        let dev = match &h.dev {
            Some(d) => Some(k.ifindex(ns, d.as_str())?),
            None => None,
        };
        let mut hop = NextHop::new(h.via, dev);
        hop.weight = h.weight;
        out.nexthops.push(hop);
    }
    Ok(out)
}

pub(super) fn put_route(
    k: &mut LinuxKernel,
    ns: &NsRef,
    r: &RouteEx,
    replace: bool,
) -> Result<Req, KernelError> {
    let r = route(k, ns, r)?;
    if replace { r.replace() } else { r.add() }.map_err(bad)
}

pub(super) fn del_route(k: &mut LinuxKernel, ns: &NsRef, r: &RouteEx) -> Result<Req, KernelError> {
    route(k, ns, r)?.delete().map_err(bad)
}

fn rule(r: &RuleSpec) -> Rule {
    let mut out = Rule::new(match r.goal {
        RuleGoal::Table(t) => RuleAction::Table(t),
        RuleGoal::Blackhole => RuleAction::Blackhole,
        RuleGoal::Unreachable => RuleAction::Unreachable,
        RuleGoal::Prohibit => RuleAction::Prohibit,
    });
    out.v6 = r.v6;
    out.from = r.from;
    out.to = r.to;
    out.iif = r.iif.as_ref().map(|i| i.to_string());
    out.oif = r.oif.as_ref().map(|o| o.to_string());
    out.fwmark = r.fwmark;
    out.priority = Some(r.priority);
    out
}

pub(super) fn add_rule(r: &RuleSpec) -> Result<Req, KernelError> {
    rule(r).add().map_err(bad)
}

pub(super) fn del_rule(r: &RuleSpec) -> Result<Req, KernelError> {
    rule(r).delete().map_err(bad)
}

/// `tc qdisc replace dev DEV root tbf|netem …` for a shape.
pub(super) fn set_qdisc(index: u32, shape: &Shape, mtu: u32) -> Result<Req, KernelError> {
    use super::tc::{Qdisc, netem::Netem, tbf::TbfParams};
    let q = match shape.tbf(mtu) {
        Some((rate, burst, limit)) => Qdisc::Tbf(TbfParams { rate, burst, limit }),
        None => {
            let pct = |m: Option<u32>| m.map(|m| f64::from(m) / 1000.0);
            let us = |u: Option<u32>| u.map(|u| std::time::Duration::from_micros(u64::from(u)));
            Qdisc::Netem(Netem {
                limit: shape.limit.unwrap_or(1000),
                delay: us(shape.delay),
                jitter: us(shape.jitter),
                loss: pct(shape.loss),
                duplicate: pct(shape.duplicate),
                corrupt: pct(shape.corrupt),
                reorder: pct(shape.reorder),
                rate: shape.rate,
                ..Netem::default()
            })
        }
    };
    super::tc::replace_root(index, &q).map_err(|e| KernelError::errno(libc::EINVAL, e.to_string()))
}
