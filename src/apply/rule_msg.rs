//! Policy routing rules (`ip rule`), IPv4 and IPv6: RTM_NEWRULE /
//! RTM_DELRULE from typed options, and dumped rules parsed back.

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage as M;
use netlink_packet_route::rule::{RuleAction as KAction, RuleAttribute, RuleMessage};

use super::link_msg::LinkError;
use super::msg::Req;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// Look the packet up in this table.
    Table(u32),
    Blackhole,
    Unreachable,
    Prohibit,
    /// Jump to the rule with this priority.
    Goto(u32),
    Nop,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The family when neither `from` nor `to` says it.
    pub v6: bool,
    pub from: Option<IpNet>,
    pub to: Option<IpNet>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub fwmark: Option<u32>,
    /// Only with `fwmark`; the kernel's default is all ones.
    pub fwmask: Option<u32>,
    /// None: the kernel picks one just below the first non-zero rule.
    pub priority: Option<u32>,
    pub action: RuleAction,
}

impl Rule {
    pub fn new(action: RuleAction) -> Self {
        Self {
            v6: false,
            from: None,
            to: None,
            iif: None,
            oif: None,
            fwmark: None,
            fwmask: None,
            priority: None,
            action,
        }
    }

    fn is_v6(&self) -> bool {
        match (self.from, self.to) {
            (Some(n), _) | (None, Some(n)) => n.addr().is_ipv6(),
            _ => self.v6,
        }
    }

    pub fn validate(&self) -> Result<(), LinkError> {
        let bad = |m: &str| Err(LinkError::Invalid(m.to_string()));
        if let (Some(f), Some(t)) = (self.from, self.to)
            && f.addr().is_ipv6() != t.addr().is_ipv6()
        {
            return bad("a rule's from and to must be of one family");
        }
        if self.fwmask.is_some() && self.fwmark.is_none() {
            return bad("a fwmark mask needs a fwmark");
        }
        for n in [&self.iif, &self.oif].into_iter().flatten() {
            if n.is_empty() || n.len() > 15 {
                return bad("a rule's iif/oif is a device name of 1 to 15 bytes");
            }
        }
        match self.action {
            RuleAction::Table(0) => bad("route table 0 is not a table"),
            RuleAction::Goto(g) if self.priority.is_some_and(|p| g <= p) => {
                bad("a goto must jump forward, to a larger priority")
            }
            _ => Ok(()),
        }
    }

    fn msg(&self) -> RuleMessage {
        let mut m = RuleMessage::default();
        let h = &mut m.header;
        h.family = if self.is_v6() {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        h.action = match self.action {
            RuleAction::Table(_) => KAction::ToTable,
            RuleAction::Blackhole => KAction::Blackhole,
            RuleAction::Unreachable => KAction::Unreachable,
            RuleAction::Prohibit => KAction::Prohibit,
            RuleAction::Goto(_) => KAction::Goto,
            RuleAction::Nop => KAction::Nop,
        };
        let a = &mut m.attributes;
        if let Some(f) = self.from {
            h.src_len = f.prefix_len();
            a.push(RuleAttribute::Source(f.trunc().addr()));
        }
        if let Some(t) = self.to {
            h.dst_len = t.prefix_len();
            a.push(RuleAttribute::Destination(t.trunc().addr()));
        }
        if let Some(i) = &self.iif {
            a.push(RuleAttribute::Iifname(i.clone()));
        }
        if let Some(o) = &self.oif {
            a.push(RuleAttribute::Oifname(o.clone()));
        }
        if let Some(p) = self.priority {
            a.push(RuleAttribute::Priority(p));
        }
        if let Some(mark) = self.fwmark {
            a.push(RuleAttribute::FwMark(mark));
        }
        if let Some(mask) = self.fwmask {
            a.push(RuleAttribute::FwMask(mask));
        }
        match self.action {
            RuleAction::Table(t) => {
                h.table = if t < 256 { t as u8 } else { 0 };
                a.push(RuleAttribute::Table(t));
            }
            RuleAction::Goto(g) => a.push(RuleAttribute::Goto(g)),
            _ => {}
        }
        m
    }

    /// `ip rule add …`: EEXIST when an identical rule is there.
    pub fn add(&self) -> Result<Req, LinkError> {
        self.validate()?;
        Ok((M::NewRule(self.msg()), NLM_F_CREATE | NLM_F_EXCL))
    }

    /// `ip rule del …`: the first rule matching every given field.
    pub fn delete(&self) -> Result<Req, LinkError> {
        self.validate()?;
        Ok((M::DelRule(self.msg()), 0))
    }
}

pub fn dump_request(family: AddressFamily) -> M {
    let mut m = RuleMessage::default();
    m.header.family = family;
    M::GetRule(m)
}

/// A dumped rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleState {
    pub v6: bool,
    pub priority: u32,
    pub from: Option<IpNet>,
    pub to: Option<IpNet>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub fwmark: Option<u32>,
    pub fwmask: Option<u32>,
    /// Table(0) for an action the kernel has but we do not model.
    pub action: RuleAction,
    pub protocol: u8,
}

pub fn parse_rule(m: &RuleMessage) -> Option<RuleState> {
    let v6 = match m.header.family {
        AddressFamily::Inet => false,
        AddressFamily::Inet6 => true,
        _ => return None,
    };
    let mut st = RuleState {
        v6,
        priority: 0,
        from: None,
        to: None,
        iif: None,
        oif: None,
        fwmark: None,
        fwmask: None,
        action: RuleAction::Table(0),
        protocol: 0,
    };
    let mut table = u32::from(m.header.table);
    let mut goto = 0;
    for a in &m.attributes {
        match a {
            RuleAttribute::Source(s) => st.from = IpNet::new(*s, m.header.src_len).ok(),
            RuleAttribute::Destination(d) => st.to = IpNet::new(*d, m.header.dst_len).ok(),
            RuleAttribute::Iifname(i) => st.iif = Some(i.clone()),
            RuleAttribute::Oifname(o) => st.oif = Some(o.clone()),
            RuleAttribute::Priority(p) => st.priority = *p,
            RuleAttribute::FwMark(f) => st.fwmark = Some(*f),
            RuleAttribute::FwMask(f) => st.fwmask = Some(*f),
            RuleAttribute::Table(t) => table = *t,
            RuleAttribute::Goto(g) => goto = *g,
            RuleAttribute::Protocol(p) => st.protocol = u8::from(*p),
            _ => {}
        }
    }
    st.action = match m.header.action {
        KAction::ToTable => RuleAction::Table(table),
        KAction::Blackhole => RuleAction::Blackhole,
        KAction::Unreachable => RuleAction::Unreachable,
        KAction::Prohibit => RuleAction::Prohibit,
        KAction::Goto => RuleAction::Goto(goto),
        KAction::Nop => RuleAction::Nop,
        _ => RuleAction::Table(0),
    };
    Some(st)
}

pub fn parse_dump(msgs: &[M]) -> Vec<RuleState> {
    msgs.iter()
        .filter_map(|m| match m {
            M::NewRule(r) => parse_rule(r),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::apply::route_msg::tests::{net, tx_packets};
    use crate::apply::route_msg::{NextHop, Route};
    use crate::apply::testns::{TestNs, veth_between};

    fn dump(ns: &TestNs) -> Vec<RuleState> {
        ns.rtnl(|rt| parse_dump(&rt.dump(dump_request(AddressFamily::Unspec)).expect("dump")))
    }

    fn table_name(t: u32) -> String {
        match t {
            253 => "default".into(),
            254 => "main".into(),
            255 => "local".into(),
            n => n.to_string(),
        }
    }

    /// What `ip -j rule` prints for a parsed rule.
    fn as_ip_json(r: &RuleState) -> Value {
        let mut o = json!({ "priority": r.priority });
        let addr = |n: &IpNet, key: &str, o: &mut Value| {
            o[key] = json!(n.addr().to_string());
            if n.prefix_len() != n.max_prefix_len() {
                o[format!("{key}len")] = json!(n.prefix_len());
            }
        };
        match &r.from {
            Some(n) => addr(n, "src", &mut o),
            None => o["src"] = json!("all"),
        }
        if let Some(n) = &r.to {
            addr(n, "dst", &mut o);
        }
        if let Some(i) = &r.iif {
            o["iif"] = json!(i);
        }
        if let Some(i) = &r.oif {
            o["oif"] = json!(i);
        }
        if let Some(m) = r.fwmark {
            o["fwmark"] = json!(format!("{m:#x}"));
            if let Some(k) = r.fwmask.filter(|k| *k != u32::MAX) {
                o["fwmask"] = json!(format!("{k:#x}"));
            }
        }
        match r.action {
            RuleAction::Table(t) => o["table"] = json!(table_name(t)),
            RuleAction::Goto(g) => o["goto"] = json!(g),
            RuleAction::Blackhole => o["action"] = json!("blackhole"),
            RuleAction::Unreachable => o["action"] = json!("unreachable"),
            RuleAction::Prohibit => o["action"] = json!("prohibit"),
            RuleAction::Nop => o["action"] = json!("nop"),
        }
        o
    }

    fn sorted(mut v: Vec<Value>) -> Vec<Value> {
        v.sort_by_key(|x| x.to_string());
        v
    }

    #[test]
    fn refusals_before_the_kernel() {
        let mut r = Rule::new(RuleAction::Table(0));
        assert!(r.add().is_err());
        r.action = RuleAction::Table(100);
        r.from = Some(net("10.0.0.0/8"));
        r.to = Some(net("fd00::/8"));
        assert!(r.add().is_err());
        r.to = None;
        r.fwmask = Some(0xff);
        assert!(r.add().is_err());
        r.fwmask = None;
        r.priority = Some(100);
        r.action = RuleAction::Goto(50);
        assert!(r.add().is_err());
    }

    #[test]
    fn every_rule_reads_back_like_ip_shows_it() {
        let Some(ns) = TestNs::new() else { return };
        let with = |f: &dyn Fn(&mut Rule), a: RuleAction| {
            let mut r = Rule::new(a);
            f(&mut r);
            r
        };
        let rules = [
            with(
                &|r| {
                    r.from = Some(net("10.1.0.0/24"));
                    r.to = Some(net("10.9.0.0/16"));
                    r.iif = Some("lo".into());
                    r.priority = Some(100);
                },
                RuleAction::Table(100),
            ),
            with(
                &|r| {
                    r.fwmark = Some(0x10);
                    r.fwmask = Some(0xff);
                    r.priority = Some(101);
                },
                RuleAction::Table(1000),
            ),
            with(
                &|r| {
                    r.oif = Some("lo".into());
                    r.priority = Some(102);
                },
                RuleAction::Blackhole,
            ),
            with(
                &|r| r.from = Some(net("10.3.0.1/32")),
                RuleAction::Unreachable,
            ),
            with(
                &|r| {
                    r.to = Some(net("10.4.0.0/16"));
                    r.priority = Some(104);
                },
                RuleAction::Prohibit,
            ),
            with(
                &|r| {
                    r.fwmark = Some(7);
                    r.priority = Some(105);
                },
                RuleAction::Goto(32766),
            ),
            with(
                &|r| {
                    r.from = Some(net("fd00::/64"));
                    r.priority = Some(200);
                },
                RuleAction::Table(7),
            ),
            with(
                &|r| {
                    r.v6 = true;
                    r.fwmark = Some(3);
                    r.priority = Some(201);
                },
                RuleAction::Prohibit,
            ),
        ];
        ns.apply(rules.iter().map(|r| r.add().expect("rule")).collect());
        let ours = dump(&ns);
        let mut theirs = ns
            .json("ip -j -4 rule")
            .as_array()
            .cloned()
            .unwrap_or_default();
        theirs.extend(
            ns.json("ip -j -6 rule")
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        let mine = sorted(ours.iter().map(as_ip_json).collect());
        assert_eq!(mine, sorted(theirs));
        assert_eq!(mine.len(), 3 + 6 + 2 + 2, "defaults and ours");
        // Without a priority the kernel chose one just below 100.
        let auto = ours
            .iter()
            .find(|r| r.from == Some(net("10.3.0.1/32")))
            .expect("rule");
        assert_eq!(auto.priority, 99);
        // Identical again: EEXIST. Deleted by its own description: gone.
        assert_eq!(
            ns.try_apply(rules[1].add().expect("r")).unwrap_err().errno,
            Some(libc::EEXIST)
        );
        ns.apply(rules.iter().map(|r| r.delete().expect("del")).collect());
        assert_eq!(
            dump(&ns).len(),
            3 + 2,
            "only the kernel's own rules are left"
        );
    }

    /// A source rule sends one host's traffic down its own table's path.
    #[test]
    fn a_rule_chooses_the_path() {
        let Some(a) = TestNs::new() else { return };
        let b = TestNs::new().expect("b");
        veth_between(&a, "x0", &b, "x1");
        veth_between(&a, "y0", &b, "y1");
        a.ok("ip addr add 10.1.0.1/24 dev x0");
        a.ok("ip addr add 10.2.0.1/24 dev y0");
        a.ok("ip addr add 10.77.0.5/32 dev lo");
        b.ok("ip addr add 10.1.0.2/24 dev x1");
        b.ok("ip addr add 10.2.0.2/24 dev y1");
        b.ok("ip addr add 10.99.0.1/32 dev lo");
        b.ok("ip route add 10.77.0.5/32 via 10.2.0.1");
        let (x0, y0) = (a.index("x0"), a.index("y0"));
        let mut main = Route::new(net("10.99.0.1/32"));
        main.nexthops = vec![NextHop::new(
            Some("10.1.0.2".parse().expect("ip")),
            Some(x0),
        )];
        let mut alt = Route::new(net("10.99.0.1/32"));
        alt.via = Some("10.2.0.2".parse().expect("ip"));
        alt.dev = Some(y0);
        alt.table = 200;
        let mut rule = Rule::new(RuleAction::Table(200));
        rule.from = Some(net("10.77.0.5/32"));
        rule.priority = Some(1000);
        a.apply(vec![
            main.add().expect("main"),
            alt.add().expect("alt"),
            rule.add().expect("rule"),
        ]);
        // Plain traffic takes x0; traffic from 10.77.0.5 takes y0.
        let (x, y) = (tx_packets(&a, "x0"), tx_packets(&a, "y0"));
        a.ok("ping -c 20 -i 0.05 -W 1 10.99.0.1");
        let (dx, dy) = (tx_packets(&a, "x0") - x, tx_packets(&a, "y0") - y);
        assert!(dx >= 20 && dy < 10, "main table: x0 {dx}, y0 {dy}");
        let (x, y) = (tx_packets(&a, "x0"), tx_packets(&a, "y0"));
        a.ok("ping -c 20 -i 0.05 -W 1 -I 10.77.0.5 10.99.0.1");
        let (dx, dy) = (tx_packets(&a, "x0") - x, tx_packets(&a, "y0") - y);
        assert!(dy >= 20 && dx < 10, "rule: x0 {dx}, y0 {dy}");
        // Rule gone: the same traffic takes the main path again.
        a.apply(vec![rule.delete().expect("del")]);
        let (x, y) = (tx_packets(&a, "x0"), tx_packets(&a, "y0"));
        a.ok("ping -c 20 -i 0.05 -W 1 -I 10.77.0.5 10.99.0.1");
        let (dx, dy) = (tx_packets(&a, "x0") - x, tx_packets(&a, "y0") - y);
        assert!(dx >= 20 && dy < 10, "no rule: x0 {dx}, y0 {dy}");
    }
}
