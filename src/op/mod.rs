//! One kernel change as plain data: planned by `plan`, rendered as shell
//! lines, simulated by the recording kernel, applied by `apply`, inverted
//! for rollback. A leaf: it depends on the model only.

use std::net::IpAddr;

use netplumb_nft::NatTable;

mod kinds;
mod routes;
mod shape;
pub use kinds::{LinkSpec, MacvlanMode, TunSpec, VXLAN_PORT, VxlanSpec};
pub use routes::{Hop, RouteEx, RouteType, RuleGoal, RuleSpec, TABLE_MAIN};
pub use shape::Shape;

use crate::model::{Cidr, IfName, NsName, NsRef, RouteDest};
use crate::proc::{DaemonSpec, Identity};

#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkChange {
    Up(bool),
    Mtu(u32),
    /// `None` detaches from any bridge.
    Master(Option<IfName>),
    Stp(bool),
    /// A bridge's IGMP/MLD snooping (IFLA_BR_MCAST_SNOOPING; on by default).
    McastSnooping(bool),
    /// Bridge port hairpin mode (`bridge_slave hairpin on`).
    Hairpin(bool),
}

impl std::fmt::Display for LinkChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkChange::Up(true) => f.write_str("up"),
            LinkChange::Up(false) => f.write_str("down"),
            LinkChange::Mtu(m) => write!(f, "mtu {m}"),
            LinkChange::Master(Some(m)) => write!(f, "master {m}"),
            LinkChange::Master(None) => f.write_str("nomaster"),
            LinkChange::Stp(on) => write!(f, "stp {}", if *on { "on" } else { "off" }),
            LinkChange::McastSnooping(on) => {
                write!(f, "mcast_snooping {}", if *on { "on" } else { "off" })
            }
            LinkChange::Hairpin(on) => write!(f, "hairpin {}", if *on { "on" } else { "off" }),
        }
    }
}

/// What a new veth pair is born with: one request instead of three per
/// pair, and one bridge-port notification instead of several.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VethWith {
    pub master: Option<IfName>,
    pub up: bool,
}

/// A static route as netplumb declares it. The key the kernel files it
/// under is (namespace, destination); the gateway is what `replace` changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouteSpec {
    pub dest: RouteDest,
    pub via: IpAddr,
}

impl std::fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} via {}", self.dest, self.via)
    }
}

/// A long-lived process to start in a namespace (see `crate::proc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonStart {
    pub spec: DaemonSpec,
    /// `tcp:80`, `udp:53`, `file:/path` or a duration; None: started is ready.
    pub ready: Option<String>,
    /// The topology it belongs to: its cgroup is made under the topology's.
    pub topology: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Creates the namespace and brings its `lo` up.
    AddNetns {
        ns: NsName,
    },
    /// `ino`: the namespace's identity when known; a namespace at that path
    /// with another identity is someone else's and is left alone.
    DelNetns {
        ns: NsName,
        ino: Option<u64>,
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
    /// A macvlan or vxlan, requested in `ns` (a macvlan's parent is
    /// there); born in `into` when that is another namespace.
    AddLink {
        ns: NsRef,
        name: IfName,
        into: Option<NsRef>,
        spec: LinkSpec,
    },
    /// `index`: the link's identity when known; deleted by index then, so a
    /// namesake made by someone else is never touched, and a renamed link is
    /// still found.
    DelLink {
        ns: NsRef,
        name: IfName,
        index: Option<u32>,
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
        route: RouteSpec,
    },
    /// Change a route in place (NLM_F_REPLACE): same destination, new gateway.
    ReplaceRoute {
        ns: NsRef,
        route: RouteSpec,
    },
    DelRoute {
        ns: NsRef,
        route: RouteSpec,
    },
    /// `ip route add` (or `replace`: same table, destination and metric).
    PutRoute {
        ns: NsRef,
        route: RouteEx,
        replace: bool,
    },
    DelRouteEx {
        ns: NsRef,
        route: RouteEx,
    },
    AddRule {
        ns: NsRef,
        rule: RuleSpec,
    },
    /// `tc qdisc replace dev DEV root …`; `mtu`: the device's, for tbf's
    /// default bucket.
    SetQdisc {
        ns: NsRef,
        dev: IfName,
        shape: Shape,
        mtu: u32,
    },
    /// `tc qdisc del dev DEV root`: back to the device's default qdisc.
    DelQdisc {
        ns: NsRef,
        dev: IfName,
    },
    DelRule {
        ns: NsRef,
        rule: RuleSpec,
    },
    /// Head-end replication on a vxlan: `bridge fdb append
    /// 00:00:00:00:00:00 dev DEV dst DST` (flooded frames go to DST too).
    AddFdb {
        ns: NsRef,
        dev: IfName,
        dst: IpAddr,
    },
    DelFdb {
        ns: NsRef,
        dev: IfName,
        dst: IpAddr,
    },
    Sysctl {
        ns: NsRef,
        key: String,
        value: String,
    },
    /// Replace the topology's table in one transaction. `replaces`: the
    /// handle of the table it takes the place of (deleted by handle in the
    /// same batch, so a table swapped behind our back fails the batch).
    ReplaceNat {
        ns: NsRef,
        table: Box<NatTable>,
        replaces: Option<u64>,
    },
    DelNat {
        ns: NsRef,
        table: String,
        handle: Option<u64>,
    },
    /// Start a process, recorded (pid and start time) before it runs the
    /// command, then wait until it is ready.
    StartDaemon {
        ns: NsRef,
        daemon: Box<DaemonStart>,
    },
    /// Stop a recorded process and its whole tree, by identity: a pid that
    /// names another process now is never signalled.
    StopDaemon {
        ns: NsRef,
        name: String,
        identity: Identity,
    },
    /// Write /etc/netns/NS/NAME (seen as /etc/NAME inside NS), atomically.
    /// `path` is the script's /etc/NAME.
    WriteFile {
        ns: NsName,
        path: String,
        content: String,
    },
    RemoveFile {
        ns: NsName,
        path: String,
    },
}

/// What the kernel made for an op: the identity the ledger records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Made {
    Nothing,
    /// A new namespace's inode (nsfs).
    Netns {
        ino: u64,
    },
    /// A new link's ifindex (and, for a veth, the peer's).
    Link {
        index: u32,
        peer: Option<u32>,
    },
    /// A new nf_tables table's handle.
    Table {
        handle: u64,
    },
    /// A sysctl's value before the op set it.
    Sysctl {
        old: String,
    },
    /// A started process (None: simulated, nothing was started).
    Daemon {
        identity: Option<Identity>,
    },
}

/// How a batch of ops went: for each op, what it made when it was applied
/// (None: refused or never sent), and the first refusal. Requests pipelined
/// after a refused one may still have been applied: `applied` says which.
#[derive(Debug)]
pub struct Outcome<E> {
    pub applied: Vec<Option<Made>>,
    pub failed: Option<(usize, E)>,
}

impl<E> Outcome<E> {
    pub fn ok(made: Vec<Made>) -> Self {
        Self {
            applied: made.into_iter().map(Some).collect(),
            failed: None,
        }
    }
}

fn at(ns: &NsRef, name: &dyn std::fmt::Display) -> String {
    match ns {
        NsRef::Host => format!("{name}"),
        NsRef::Named(n) => format!("{n}:{name}"),
    }
}

impl Op {
    /// The namespace the op runs in (for namespace creation: the new one).
    pub fn ns(&self) -> NsRef {
        match self {
            Op::AddNetns { ns }
            | Op::DelNetns { ns, .. }
            | Op::WriteFile { ns, .. }
            | Op::RemoveFile { ns, .. } => NsRef::Named(ns.clone()),
            Op::AddVeth { ns, .. }
            | Op::AddBridge { ns, .. }
            | Op::AddLink { ns, .. }
            | Op::DelLink { ns, .. }
            | Op::MoveLink { ns, .. }
            | Op::RenameLink { ns, .. }
            | Op::SetLink { ns, .. }
            | Op::AddAddr { ns, .. }
            | Op::DelAddr { ns, .. }
            | Op::AddRoute { ns, .. }
            | Op::ReplaceRoute { ns, .. }
            | Op::DelRoute { ns, .. }
            | Op::PutRoute { ns, .. }
            | Op::DelRouteEx { ns, .. }
            | Op::AddRule { ns, .. }
            | Op::SetQdisc { ns, .. }
            | Op::DelQdisc { ns, .. }
            | Op::DelRule { ns, .. }
            | Op::AddFdb { ns, .. }
            | Op::DelFdb { ns, .. }
            | Op::Sysctl { ns, .. }
            | Op::ReplaceNat { ns, .. }
            | Op::DelNat { ns, .. }
            | Op::StartDaemon { ns, .. }
            | Op::StopDaemon { ns, .. } => ns.clone(),
        }
    }

    /// Is this op a removal (its summary starts with `-`)?
    pub fn is_removal(&self) -> bool {
        matches!(
            self,
            Op::DelNetns { .. }
                | Op::DelLink { .. }
                | Op::DelAddr { .. }
                | Op::DelRoute { .. }
                | Op::DelRouteEx { .. }
                | Op::DelRule { .. }
                | Op::DelFdb { .. }
                | Op::DelNat { .. }
                | Op::StopDaemon { .. }
                | Op::RemoveFile { .. }
        )
    }

    /// The summary as a verb phrase for errors: "add addr 10.0.0.1/24 on eth0",
    /// "set link veth0 up", "remove netns foons".
    pub fn action(&self) -> String {
        match self {
            Op::StartDaemon { ns, daemon } => {
                return format!("start daemon {} in {ns}", daemon.spec.name);
            }
            Op::StopDaemon { ns, name, .. } => return format!("stop daemon {name} in {ns}"),
            _ => {}
        }
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
        match self {
            Op::AddNetns { ns } => format!("+ netns {ns}"),
            Op::DelNetns { ns, .. } => format!("- netns {ns}"),
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
            Op::AddLink {
                ns,
                name,
                into,
                spec,
            } => {
                let home = into.as_ref().unwrap_or(ns);
                match spec {
                    LinkSpec::Macvlan { parent, mode } => format!(
                        "+ macvlan {} on {} ({})",
                        at(home, name),
                        at(ns, parent),
                        mode.as_str()
                    ),
                    LinkSpec::Tun(t) => {
                        format!("+ {} {}", if t.tap { "tap" } else { "tun" }, at(home, name))
                    }
                    LinkSpec::Vxlan { spec, mtu } => {
                        let mut s = format!("+ vxlan {} id {}", at(home, name), spec.id);
                        if let Some(m) = mtu {
                            s.push_str(&format!(" mtu {m}"));
                        }
                        s
                    }
                }
            }
            Op::DelLink { ns, name, .. } => format!("- link {}", at(ns, name)),
            Op::MoveLink { ns, name, to } => format!("~ link {} → netns {to}", at(ns, name)),
            Op::RenameLink { ns, name, to } => format!("~ link {} → {to}", at(ns, name)),
            Op::SetLink { ns, name, change } => format!("~ link {} {change}", at(ns, name)),
            Op::AddAddr { ns, dev, cidr } => format!("+ addr {cidr} on {}", at(ns, dev)),
            Op::DelAddr { ns, dev, cidr } => format!("- addr {cidr} on {}", at(ns, dev)),
            Op::AddRoute { ns, route } => format!("+ route {route} in {ns}"),
            Op::ReplaceRoute { ns, route } => format!("~ route {route} in {ns}"),
            Op::DelRoute { ns, route } => format!("- route {route} in {ns}"),
            Op::PutRoute {
                ns,
                route,
                replace: false,
            } => format!("+ route {route} in {ns}"),
            Op::PutRoute { ns, route, .. } => format!("~ route {route} in {ns}"),
            Op::DelRouteEx { ns, route } => format!("- route {route} in {ns}"),
            Op::AddRule { ns, rule } => format!("+ rule {rule} in {ns}"),
            Op::SetQdisc {
                ns,
                dev,
                shape,
                mtu,
            } => format!("~ link {} shape {}", at(ns, dev), shape.tc_args(*mtu)),
            Op::DelQdisc { ns, dev } => format!("~ link {} shape none", at(ns, dev)),
            Op::DelRule { ns, rule } => format!("- rule {rule} in {ns}"),
            Op::AddFdb { ns, dev, dst } => format!("+ flood {} → {dst}", at(ns, dev)),
            Op::DelFdb { ns, dev, dst } => format!("- flood {} → {dst}", at(ns, dev)),
            Op::Sysctl { ns, key, value } => format!("~ sysctl {key}={value} in {ns}"),
            Op::ReplaceNat {
                ns,
                table,
                replaces,
            } => {
                let n = table.rules.len();
                let rules = if n == 1 { "rule" } else { "rules" };
                let f = table.filter.len();
                let filters = match f {
                    0 => String::new(),
                    1 => ", 1 filter rule".to_string(),
                    f => format!(", {f} filter rules"),
                };
                // Replacing the table it made is a change of it, not a creation.
                let sign = if replaces.is_some() { '~' } else { '+' };
                format!(
                    "{sign} nat table {} in {ns} ({n} {rules}{filters})",
                    table.name
                )
            }
            Op::DelNat { ns, table, .. } => format!("- nat table {table} in {ns}"),
            Op::StartDaemon { ns, daemon } => {
                format!(
                    "+ daemon {} in {ns}: {}",
                    daemon.spec.name, daemon.spec.argv
                )
            }
            Op::StopDaemon { ns, name, identity } => {
                format!("- daemon {name} in {ns} (pid {})", identity.pid)
            }
            Op::WriteFile { ns, path, content } => {
                format!("+ file {path} in {ns} ({} bytes)", content.len())
            }
            Op::RemoveFile { ns, path } => format!("- file {path} in {ns}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_is_singular() {
        let t = NatTable {
            name: "netplumb-t".into(),
            rules: vec![netplumb_nft::NatRule::Masquerade {
                src: "10.0.0.0/8".parse().unwrap(),
                oif: None,
                tag: 0,
            }],
            userdata: vec![],
            ..NatTable::default()
        };
        let op = Op::ReplaceNat {
            ns: NsRef::Host,
            table: Box::new(t),
            replaces: None,
        };
        assert_eq!(op.summary(), "+ nat table netplumb-t in host (1 rule)");
    }
}
