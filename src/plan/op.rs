//! One kernel change as plain data.

use std::net::IpAddr;

use netplumb_nft::NatTable;

use crate::model::{Cidr, IfName, NsName, NsRef, RouteDest};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkChange {
    Up(bool),
    Mtu(u32),
    /// `None` detaches from any bridge.
    Master(Option<IfName>),
    Stp(bool),
}

/// What a new veth pair is born with: one request instead of three per
/// pair, and one bridge-port notification instead of several.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VethWith {
    pub master: Option<IfName>,
    pub up: bool,
}

#[derive(Debug, Clone)]
pub enum Op {
    /// Creates the namespace and brings its `lo` up.
    AddNetns {
        ns: NsName,
    },
    DelNetns {
        ns: NsName,
    },
    AddVeth {
        ns: NsRef,
        name: IfName,
        peer_ns: NsRef,
        peer: IfName,
        /// Settings folded into the create request (see `plan::diff::fuse_veths`).
        with: VethWith,
    },
    AddBridge {
        ns: NsRef,
        name: IfName,
    },
    DelLink {
        ns: NsRef,
        name: IfName,
    },
    MoveLink {
        ns: NsRef,
        name: IfName,
        to: NsRef,
    },
    RenameLink {
        ns: NsRef,
        name: IfName,
        to: IfName,
    },
    SetLink {
        ns: NsRef,
        name: IfName,
        change: LinkChange,
    },
    AddAddr {
        ns: NsRef,
        dev: IfName,
        cidr: Cidr,
    },
    DelAddr {
        ns: NsRef,
        dev: IfName,
        cidr: Cidr,
    },
    AddRoute {
        ns: NsRef,
        dest: RouteDest,
        via: IpAddr,
    },
    DelRoute {
        ns: NsRef,
        dest: RouteDest,
        via: IpAddr,
    },
    Sysctl {
        ns: NsRef,
        key: String,
        value: String,
    },
    ReplaceNat {
        ns: NsRef,
        table: Box<NatTable>,
    },
    DelNat {
        ns: NsRef,
        table: String,
    },
}

impl Op {
    /// The namespace the op runs in (for namespace creation: the new one).
    pub fn ns(&self) -> NsRef {
        match self {
            Op::AddNetns { ns } | Op::DelNetns { ns } => NsRef::Named(ns.clone()),
            Op::AddVeth { ns, .. }
            | Op::AddBridge { ns, .. }
            | Op::DelLink { ns, .. }
            | Op::MoveLink { ns, .. }
            | Op::RenameLink { ns, .. }
            | Op::SetLink { ns, .. }
            | Op::AddAddr { ns, .. }
            | Op::DelAddr { ns, .. }
            | Op::AddRoute { ns, .. }
            | Op::DelRoute { ns, .. }
            | Op::Sysctl { ns, .. }
            | Op::ReplaceNat { ns, .. }
            | Op::DelNat { ns, .. } => ns.clone(),
        }
    }

    /// The summary as a verb phrase for errors: "add addr 10.0.0.1/24 on eth0",
    /// "set link veth0 up", "remove netns foons".
    pub fn action(&self) -> String {
        let s = self.summary();
        let (verb, rest) = match s.split_at_checked(1) {
            Some(("+", r)) => ("add", r),
            Some(("~", r)) => ("set", r),
            Some(("-", r)) => ("remove", r),
            _ => ("", s.as_str()),
        };
        format!("{verb} {}", rest.trim_start()).trim().to_string()
    }

    /// Short human description for progress lines and errors: `+ veth veth0 ↔ foons:eth0`.
    pub fn summary(&self) -> String {
        let at = |ns: &NsRef, name: &dyn std::fmt::Display| match ns {
            NsRef::Host => format!("{name}"),
            NsRef::Named(n) => format!("{n}:{name}"),
        };
        match self {
            Op::AddNetns { ns } => format!("+ netns {ns}"),
            Op::DelNetns { ns } => format!("- netns {ns}"),
            Op::AddVeth {
                ns,
                name,
                peer_ns,
                peer,
                with,
            } => {
                let mut s = format!("+ veth {} ↔ {}", at(ns, name), at(peer_ns, peer));
                if let Some(m) = &with.master {
                    s.push_str(&format!(" on {m}"));
                }
                if with.up {
                    s.push_str(" up");
                }
                s
            }
            Op::AddBridge { ns, name } => format!("+ bridge {}", at(ns, name)),
            Op::DelLink { ns, name } => format!("- link {}", at(ns, name)),
            Op::MoveLink { ns, name, to } => format!("~ link {} → netns {to}", at(ns, name)),
            Op::RenameLink { ns, name, to } => format!("~ link {} → {to}", at(ns, name)),
            Op::SetLink { ns, name, change } => {
                let what = match change {
                    LinkChange::Up(true) => "up".to_string(),
                    LinkChange::Up(false) => "down".to_string(),
                    LinkChange::Mtu(m) => format!("mtu {m}"),
                    LinkChange::Master(Some(m)) => format!("master {m}"),
                    LinkChange::Master(None) => "nomaster".to_string(),
                    LinkChange::Stp(on) => format!("stp {}", if *on { "on" } else { "off" }),
                };
                format!("~ link {} {what}", at(ns, name))
            }
            Op::AddAddr { ns, dev, cidr } => format!("+ addr {cidr} on {}", at(ns, dev)),
            Op::DelAddr { ns, dev, cidr } => format!("- addr {cidr} on {}", at(ns, dev)),
            Op::AddRoute { ns, dest, via } => format!("+ route {dest} via {via} in {ns}"),
            Op::DelRoute { ns, dest, via } => format!("- route {dest} via {via} in {ns}"),
            Op::Sysctl { ns, key, value } => format!("~ sysctl {key}={value} in {ns}"),
            Op::ReplaceNat { ns, table } => {
                format!(
                    "+ nat table {} in {ns} ({} rules)",
                    table.name,
                    table.rules.len()
                )
            }
            Op::DelNat { ns, table } => format!("- nat table {table} in {ns}"),
        }
    }
}
