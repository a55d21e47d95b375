//! Declaring routes of every kind and policy rules: the kernel's rules for
//! them (a blackhole takes no gateway, a next hop needs a via or a dev, one
//! route per table, destination and metric …) refused here with the line.

use super::{DeclError, Pos, RouteDecl, Topology};
use crate::model::NsRef;
use crate::op::{RouteEx, RouteType, RuleSpec};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteExDecl {
    pub ns: NsRef,
    pub route: RouteEx,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleDecl {
    pub ns: NsRef,
    pub rule: RuleSpec,
    pub pos: Pos,
}

fn bad(msg: impl Into<String>) -> DeclError {
    DeclError::Kind { msg: msg.into() }
}

fn check_route(r: &RouteEx) -> Result<(), DeclError> {
    let v6 = r.v6();
    let same = |a: &std::net::IpAddr| a.is_ipv6() == v6;
    if r.table == 0 || r.table == 255 {
        return Err(bad(format!(
            "route table {} is not one to put routes in",
            r.table
        )));
    }
    if r.src.is_some_and(|s| !same(&s)) {
        return Err(bad("a route's src must be of its destination's family"));
    }
    if r.mtu.is_some_and(|m| !(68..=65535).contains(&m)) {
        return Err(bad("a route's mtu is 68 to 65535"));
    }
    if r.kind != RouteType::Unicast {
        if r.via.is_some() || r.dev.is_some() || !r.nexthops.is_empty() || r.onlink {
            return Err(bad(format!(
                "a {} route takes no via, dev, onlink or nexthops",
                r.kind.as_str()
            )));
        }
        return Ok(());
    }
    if r.nexthops.is_empty() {
        if r.via.is_none() && r.dev.is_none() {
            return Err(bad("a route needs a via, a dev or nexthops"));
        }
        if r.via.is_some_and(|v| !same(&v)) {
            return Err(bad(format!(
                "gateway {} is not of the destination {}'s family",
                r.via.map(|v| v.to_string()).unwrap_or_default(),
                r.dest
            )));
        }
        if r.onlink && (r.via.is_none() || r.dev.is_none()) {
            return Err(bad("onlink needs both a via and a dev"));
        }
        return Ok(());
    }
    if r.via.is_some() || r.dev.is_some() {
        return Err(bad("with nexthops, via and dev go in each next hop"));
    }
    if r.onlink {
        return Err(bad("onlink is not taken with nexthops"));
    }
    for h in &r.nexthops {
        if h.via.is_none() && h.dev.is_none() {
            return Err(bad("each next hop needs a via or a dev"));
        }
        if h.via.is_some_and(|v| !same(&v)) {
            return Err(bad("a next hop's via must be of the destination's family"));
        }
        if !(1..=256).contains(&h.weight) {
            return Err(bad(format!(
                "next hop weight {} is out of range (1 to 256)",
                h.weight
            )));
        }
    }
    Ok(())
}

impl Topology {
    pub fn xroutes(&self) -> &[RouteExDecl] {
        &self.xroutes
    }
    pub fn rules(&self) -> &[RuleDecl] {
        &self.rules
    }

    /// `ns.route(dest, #{ … })`. The same route twice is one route; another
    /// route with its key (table, destination, metric) is refused.
    pub fn add_route_ex(&mut self, ns: NsRef, route: RouteEx, pos: Pos) -> Result<(), DeclError> {
        if let NsRef::Named(n) = &ns
            && !self.has_ns(n)
        {
            return Err(DeclError::UndeclaredNs { ns: n.clone() });
        }
        check_route(&route)?;
        if let Some(x) = self
            .xroutes
            .iter()
            .find(|x| x.ns == ns && x.route.same_key(&route))
        {
            if x.route == route {
                return Ok(());
            }
            return Err(bad(format!(
                "netns {ns} already has a route to {} in table {} with metric {} (declared at {}): {}",
                route.dest,
                route.table,
                route.kernel_metric(),
                x.pos,
                x.route
            )));
        }
        let plain = |r: &RouteDecl| {
            r.ns == ns
                && r.route.dest == route.dest
                && route.table == crate::op::TABLE_MAIN
                && route.metric.is_none()
        };
        if let Some(r) = self.routes.iter().find(|r| plain(r)) {
            return Err(DeclError::RouteTaken {
                ns,
                dest: route.dest,
                via: r.route.via,
                first: r.pos.clone(),
            });
        }
        self.room()?;
        self.xroutes.push(RouteExDecl { ns, route, pos });
        self.revision += 1;
        Ok(())
    }

    /// `ns.rule(#{ … })` (`ip rule add …`); the same rule twice is one.
    pub fn add_rule(&mut self, ns: NsRef, rule: RuleSpec, pos: Pos) -> Result<(), DeclError> {
        if let NsRef::Named(n) = &ns
            && !self.has_ns(n)
        {
            return Err(DeclError::UndeclaredNs { ns: n.clone() });
        }
        if let (Some(f), Some(t)) = (rule.from, rule.to)
            && f.addr().is_ipv6() != t.addr().is_ipv6()
        {
            return Err(bad("a rule's from and to must be of one family"));
        }
        if rule.priority == 0 || rule.priority >= 32766 {
            return Err(bad(format!(
                "rule priority {} is taken by the kernel's own rules: use 1 to 32765",
                rule.priority
            )));
        }
        if self.rules.iter().any(|r| r.ns == ns && r.rule == rule) {
            return Ok(());
        }
        self.room()?;
        self.rules.push(RuleDecl { ns, rule, pos });
        self.revision += 1;
        Ok(())
    }

    fn room(&self) -> Result<(), DeclError> {
        if self.limit > 0 && self.size() as u64 >= self.limit {
            return Err(DeclError::TooMany { limit: self.limit });
        }
        Ok(())
    }
}
