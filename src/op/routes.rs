//! Routes of every kind and policy rules, as plain data: what `ip route
//! add|replace|del …` and `ip rule add|del …` are asked to do. The model
//! checks them; `apply::route_msg` / `apply::rule_msg` encode them.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::model::{IfName, RouteDest};

pub const TABLE_MAIN: u32 = 254;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteType {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
}

impl RouteType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "unicast" => Self::Unicast,
            "blackhole" => Self::Blackhole,
            "unreachable" => Self::Unreachable,
            "prohibit" => Self::Prohibit,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unicast => "unicast",
            Self::Blackhole => "blackhole",
            Self::Unreachable => "unreachable",
            Self::Prohibit => "prohibit",
        }
    }
}

/// One path of a multipath (ECMP) route.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hop {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<IfName>,
    /// 1 to 256.
    pub weight: u16,
}

/// A route as `ns.route(dest, #{ … })` declares it. The kernel files it
/// under (table, destination, metric): that is its identity here too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteEx {
    pub dest: RouteDest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<IfName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddr>,
    pub table: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub onlink: bool,
    pub kind: RouteType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nexthops: Vec<Hop>,
}

impl RouteEx {
    pub fn v6(&self) -> bool {
        self.dest.is_v6()
    }

    /// The metric the kernel gives it: IPv6 routes default to 1024.
    pub fn kernel_metric(&self) -> u32 {
        self.metric.unwrap_or(if self.v6() { 1024 } else { 0 })
    }

    /// Same key as `other`: one replaces the other in the kernel.
    pub fn same_key(&self, other: &RouteEx) -> bool {
        self.dest == other.dest
            && self.table == other.table
            && self.kernel_metric() == other.kernel_metric()
    }

    /// The words after `ip route add|replace|del`.
    pub fn words(&self) -> String {
        let mut s = String::new();
        if self.kind != RouteType::Unicast {
            s.push_str(self.kind.as_str());
            s.push(' ');
        }
        s.push_str(&self.dest.to_string());
        if let Some(v) = self.via {
            s.push_str(&format!(" via {v}"));
        }
        if let Some(d) = &self.dev {
            s.push_str(&format!(" dev {d}"));
        }
        if let Some(t) = self.table_word() {
            s.push_str(&format!(" table {t}"));
        }
        if let Some(m) = self.metric {
            s.push_str(&format!(" metric {m}"));
        }
        if let Some(src) = self.src {
            s.push_str(&format!(" src {src}"));
        }
        if self.onlink {
            s.push_str(" onlink");
        }
        if let Some(m) = self.mtu {
            s.push_str(&format!(" mtu {m}"));
        }
        for h in &self.nexthops {
            s.push_str(" nexthop");
            if let Some(v) = h.via {
                s.push_str(&format!(" via {v}"));
            }
            if let Some(d) = &h.dev {
                s.push_str(&format!(" dev {d}"));
            }
            s.push_str(&format!(" weight {}", h.weight));
        }
        s
    }

    fn table_word(&self) -> Option<String> {
        (self.table != TABLE_MAIN).then(|| self.table.to_string())
    }

    /// Every device the route names.
    pub fn devs(&self) -> impl Iterator<Item = &IfName> {
        self.dev
            .iter()
            .chain(self.nexthops.iter().filter_map(|h| h.dev.as_ref()))
    }
}

impl std::fmt::Display for RouteEx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.words())
    }
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleGoal {
    Table(u32),
    Blackhole,
    Unreachable,
    Prohibit,
}

/// A policy rule as `ns.rule(#{ … })` declares it (`ip rule`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub v6: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<IpNet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<IpNet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iif: Option<IfName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oif: Option<IfName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
    pub priority: u32,
    pub goal: RuleGoal,
}

impl RuleSpec {
    /// The words after `ip rule add|del`.
    pub fn words(&self) -> String {
        let mut s = String::new();
        if let Some(f) = self.from {
            s.push_str(&format!("from {f} "));
        }
        if let Some(t) = self.to {
            s.push_str(&format!("to {t} "));
        }
        if let Some(i) = &self.iif {
            s.push_str(&format!("iif {i} "));
        }
        if let Some(o) = &self.oif {
            s.push_str(&format!("oif {o} "));
        }
        if let Some(m) = self.fwmark {
            s.push_str(&format!("fwmark {m:#x} "));
        }
        s.push_str(&format!("priority {} ", self.priority));
        match self.goal {
            RuleGoal::Table(t) => s.push_str(&format!("table {t}")),
            RuleGoal::Blackhole => s.push_str("blackhole"),
            RuleGoal::Unreachable => s.push_str("unreachable"),
            RuleGoal::Prohibit => s.push_str("prohibit"),
        }
        s
    }
}

impl std::fmt::Display for RuleSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.words())
    }
}
