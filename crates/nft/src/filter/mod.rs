//! Filter rules in the topology's own table: a forward chain at filter
//! priority where netplumb's allow / deny / isolate rules live, coalesced
//! into sets like the DNAT maps.
//!
//! The chain, in order: `ct state established,related accept` (answers of
//! allowed traffic always pass), every allow (accept), every deny (drop),
//! then isolation. So an allow wins over a deny and over isolation, and the
//! order rules were declared in does not matter. Between tables the kernel's
//! rule holds: netplumb's accept ends only its own chain — another table's
//! drop still drops — while its drop is final everywhere.
//!
//! Where br_netfilter calls the inet hooks for bridged frames
//! (`net.bridge.bridge-nf-call-iptables=1`, the default of this kernel once
//! a bridge exists), traffic between two ports of one bridge passes the
//! forward chain too, seen as `iifname = oifname =` the bridge: a deny
//! between two containers on one bridge then works, and isolation lets it
//! through explicitly.

mod encode;
mod plan;
mod validate;

pub(crate) use encode::verdict;
pub(crate) use plan::{FilterPlan, ISOLATED, ISOLATED_SELF, plan};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One side of a filter rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Endpoint {
    /// Addresses in a subnet (`ip saddr` / `ip daddr`).
    Net(IpNet),
    /// Traffic arriving on (from) or leaving through (to) an interface.
    Iface(String),
}

/// The protocol a filter rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FilterProto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP for IPv4, ICMPv6 for IPv6 (both when the rule has no subnet).
    Icmp,
}

impl FilterProto {
    /// The name nft uses.
    pub fn name(self) -> &'static str {
        match self {
            FilterProto::Tcp => "tcp",
            FilterProto::Udp => "udp",
            FilterProto::Icmp => "icmp",
        }
    }
}

/// What an allow or deny rule matches; every field left out matches all.
///
/// ```
/// use netplumb_nft::{Endpoint, FilterMatch, FilterProto};
/// // from 10.1.0.0/16 to anything leaving through br0, tcp port 22
/// let m = FilterMatch {
///     from: Some(Endpoint::Net("10.1.0.0/16".parse().unwrap())),
///     to: Some(Endpoint::Iface("br0".into())),
///     proto: Some(FilterProto::Tcp),
///     ports: Some((22, 22)),
///     tag: 0,
/// };
/// assert_eq!(m.proto.map(|p| p.name()), Some("tcp"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FilterMatch {
    /// Where the traffic comes from.
    pub from: Option<Endpoint>,
    /// Where it goes.
    pub to: Option<Endpoint>,
    /// Its protocol.
    pub proto: Option<FilterProto>,
    /// Destination ports, inclusive (needs `proto` tcp or udp).
    pub ports: Option<(u16, u16)>,
    /// The caller's identifier, returned in errors about this rule.
    pub tag: usize,
}

/// One rule of the forward chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FilterRule {
    /// Accept what matches (wins over every deny and isolation).
    Allow(FilterMatch),
    /// Drop what matches.
    Deny(FilterMatch),
    /// Traffic routed into the bridge from outside it is dropped unless its
    /// destination was DNAT'd (a published port); traffic within the bridge
    /// and out of it passes.
    Isolate {
        /// The bridge (its routed interface).
        bridge: String,
        /// The caller's identifier, returned in errors about this rule.
        tag: usize,
    },
}

impl FilterRule {
    /// The caller's identifier of this rule.
    pub fn tag(&self) -> usize {
        match self {
            FilterRule::Allow(m) | FilterRule::Deny(m) => m.tag,
            FilterRule::Isolate { tag, .. } => *tag,
        }
    }

    /// The caller's identifier, to set it.
    pub fn tag_mut(&mut self) -> &mut usize {
        match self {
            FilterRule::Allow(m) | FilterRule::Deny(m) => &mut m.tag,
            FilterRule::Isolate { tag, .. } => tag,
        }
    }

    /// Tag 0 and subnets truncated to their network.
    pub fn normalized(&self) -> FilterRule {
        let ep = |e: &Option<Endpoint>| match e {
            Some(Endpoint::Net(n)) => Some(Endpoint::Net(n.trunc())),
            o => o.clone(),
        };
        let m = |m: &FilterMatch| FilterMatch {
            from: ep(&m.from),
            to: ep(&m.to),
            tag: 0,
            ..m.clone()
        };
        match self {
            FilterRule::Allow(x) => FilterRule::Allow(m(x)),
            FilterRule::Deny(x) => FilterRule::Deny(m(x)),
            FilterRule::Isolate { bridge, .. } => FilterRule::Isolate {
                bridge: bridge.clone(),
                tag: 0,
            },
        }
    }
}

pub(crate) use validate::check_filter;
