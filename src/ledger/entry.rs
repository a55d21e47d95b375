//! One object a topology owns or claims, or one change to an adopted object
//! it must undo, with the identity the kernel gave it. Every field is read
//! back through the same validated types a script uses, so a planted or
//! damaged line is refused on load instead of steering `down`.

use std::net::IpAddr;

use netplumb_nft::L4Proto;
use serde::{Deserialize, Serialize};

use crate::model::{Cidr, IfName, NsName, NsRef, RouteDest};
use crate::op::{LinkChange, Op, RouteEx, RouteSpec, RuleSpec, Shape};
use crate::proc::{DaemonSpec, Identity};

pub use super::labnames::{DaemonName, EtcPath, ReadyText};

/// The kinds of link netplumb creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MadeKind {
    Veth,
    Bridge,
    Macvlan,
    Vxlan,
    Tun,
}

/// Where a link end is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct End {
    pub ns: NsRef,
    pub name: IfName,
}

/// A published host port (range), with the script line that published it:
/// another topology's claim on the same key is refused naming this line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortClaim {
    pub proto: L4Proto,
    pub v6: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daddr: Option<IpAddr>,
    pub lo: u16,
    pub hi: u16,
    /// "pa.rhai:3"
    pub at: String,
}

/// An nf_tables table name netplumb makes: `netplumb-` and a topology name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TableName(String);

impl TableName {
    pub fn for_topology(topology: &str) -> Self {
        Self(format!("netplumb-{topology}"))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TableName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.strip_prefix("netplumb-") {
            Some(t) if super::check_topology_name(t).is_ok() => Ok(Self(s)),
            _ => Err(format!("'{s}' is not a netplumb table name")),
        }
    }
}

impl From<TableName> for String {
    fn from(t: TableName) -> String {
        t.0
    }
}

/// A sysctl key as the model accepts it (`net.…`, dots only).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SysctlKey(String);

impl SysctlKey {
    pub fn new(key: &str) -> Result<Self, String> {
        let ok = key.starts_with("net.")
            && !key.contains("..")
            && !key.ends_with('.')
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(Self(key.to_string()))
        } else {
            Err(format!("'{key}' is not a per-namespace sysctl key"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SysctlKey {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::new(&s)
    }
}

impl From<SysctlKey> for String {
    fn from(k: SysctlKey) -> String {
        k.0
    }
}

/// A sysctl value: one line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SysctlValue(String);

impl SysctlValue {
    pub fn new(v: &str) -> Result<Self, String> {
        if v.chars().any(char::is_control) || v.len() > 4096 {
            Err(format!("{v:?} is not a sysctl value"))
        } else {
            Ok(Self(v.to_string()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SysctlValue {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::new(&s)
    }
}

impl From<SysctlValue> for String {
    fn from(v: SysctlValue) -> String {
        v.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Entry {
    /// A namespace this topology made or shares. `ino`: its nsfs inode.
    Netns {
        ns: NsName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ino: Option<u64>,
    },
    /// A link this topology made or shares; `index` is its ifindex in `ns`.
    /// For a veth, `peer` is the other end: deleting either end, or the
    /// namespace of either, deletes both.
    Link {
        ns: NsRef,
        name: IfName,
        kind: MadeKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<End>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        index: Option<u32>,
        /// Where the script declared it (before any move or rename): what
        /// ties it to the script's declaration across edits and flushes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<End>,
        /// Made by another topology and shared: this one sets only what its
        /// script says on it, never the defaults of a link it made.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        shared: bool,
    },
    Addr {
        ns: NsRef,
        dev: IfName,
        cidr: Cidr,
    },
    Route {
        ns: NsRef,
        dest: RouteDest,
        via: IpAddr,
    },
    /// A route of `ns.route(dest, #{ … })`, keyed by table, destination
    /// and metric.
    RouteEx {
        ns: NsRef,
        route: RouteEx,
    },
    /// A policy rule (`ip rule`).
    Rule {
        ns: NsRef,
        rule: RuleSpec,
    },
    /// An adopted device's root qdisc this topology changed: `old` the
    /// shape to put back (None: the device's default).
    Qdisc {
        ns: NsRef,
        name: IfName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old: Option<Shape>,
    },
    /// A sysctl this topology set: `value` what it set, `old` the value
    /// before any netplumb topology set it (None: not known yet, or the
    /// namespace it lives in goes away with the topology).
    Sysctl {
        ns: NsRef,
        key: SysctlKey,
        value: SysctlValue,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old: Option<SysctlValue>,
    },
    /// A change to an adopted link, with the setting to restore.
    LinkAttr {
        ns: NsRef,
        name: IfName,
        old: LinkChange,
    },
    /// An adopted device this topology moved or renamed: `down` puts it
    /// back at `home` under its old name.
    LinkPlace {
        ns: NsRef,
        name: IfName,
        home: End,
        /// It was up at home: brought up again once back.
        #[serde(default)]
        up: bool,
    },
    /// The topology's nf_tables table in `ns`, with its handle and the host
    /// ports it publishes.
    Nat {
        ns: NsRef,
        table: TableName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handle: Option<u64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ports: Vec<PortClaim>,
    },
    /// A process this topology started, recorded (pid, start time, boot,
    /// cgroup) before it ran the command: `down` stops exactly it and its
    /// tree. `spec` and `ready` are what it was started with, compared with
    /// the script to decide on a restart.
    Daemon {
        ns: NsRef,
        name: DaemonName,
        spec: Box<DaemonSpec>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ready: Option<ReadyText>,
        identity: Identity,
    },
    /// A per-namespace file (/etc/netns/NS/NAME) this topology wrote. `old`:
    /// what was there before it first wrote it — an adopted file, put back
    /// on `down`; None: the topology made it, and removes it.
    File {
        ns: NsName,
        path: EtcPath,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old: Option<String>,
    },
}

impl Entry {
    /// The namespace the object lives in (None for a namespace itself).
    pub fn ns(&self) -> Option<&NsRef> {
        match self {
            Entry::Netns { .. } | Entry::File { .. } => None,
            Entry::Link { ns, .. }
            | Entry::Addr { ns, .. }
            | Entry::Route { ns, .. }
            | Entry::RouteEx { ns, .. }
            | Entry::Rule { ns, .. }
            | Entry::Qdisc { ns, .. }
            | Entry::Sysctl { ns, .. }
            | Entry::LinkAttr { ns, .. }
            | Entry::LinkPlace { ns, .. }
            | Entry::Nat { ns, .. }
            | Entry::Daemon { ns, .. } => Some(ns),
        }
    }

    /// Is this the same object as `other` (identity aside)?
    pub fn same_object(&self, other: &Entry) -> bool {
        match (self, other) {
            (Entry::Netns { ns: a, .. }, Entry::Netns { ns: b, .. }) => a == b,
            (
                Entry::Link {
                    ns: a, name: an, ..
                },
                Entry::Link {
                    ns: b, name: bn, ..
                },
            ) => a == b && an == bn,
            (
                Entry::Qdisc {
                    ns: a, name: an, ..
                },
                Entry::Qdisc {
                    ns: b, name: bn, ..
                },
            ) => a == b && an == bn,
            (Entry::RouteEx { ns: a, route: ar }, Entry::RouteEx { ns: b, route: br }) => {
                a == b && ar.same_key(br)
            }
            (Entry::Sysctl { ns: a, key: ak, .. }, Entry::Sysctl { ns: b, key: bk, .. }) => {
                a == b && ak == bk
            }
            (
                Entry::LinkAttr {
                    ns: a,
                    name: an,
                    old: ao,
                },
                Entry::LinkAttr {
                    ns: b,
                    name: bn,
                    old: bo,
                },
            ) => a == b && an == bn && std::mem::discriminant(ao) == std::mem::discriminant(bo),
            (
                Entry::Nat {
                    ns: a, table: at, ..
                },
                Entry::Nat {
                    ns: b, table: bt, ..
                },
            ) => a == b && at == bt,
            (Entry::Daemon { name: a, .. }, Entry::Daemon { name: b, .. }) => a == b,
            (
                Entry::File {
                    ns: a, path: ap, ..
                },
                Entry::File {
                    ns: b, path: bp, ..
                },
            ) => a == b && ap == bp,
            (a, b) => a == b,
        }
    }

    /// The ops that undo this entry on `down`: delete what was made (by
    /// identity when known), restore what was changed. Empty: nothing to do
    /// (a sysctl whose old value is not known).
    pub fn undo_ops(&self) -> Vec<Op> {
        let op = match self.clone() {
            Entry::Netns { ns, ino } => Op::DelNetns { ns, ino },
            Entry::Link {
                ns, name, index, ..
            } => Op::DelLink { ns, name, index },
            Entry::Addr { ns, dev, cidr } => Op::DelAddr { ns, dev, cidr },
            Entry::Route { ns, dest, via } => Op::DelRoute {
                ns,
                route: RouteSpec { dest, via },
            },
            Entry::RouteEx { ns, route } => Op::DelRouteEx { ns, route },
            Entry::Rule { ns, rule } => Op::DelRule { ns, rule },
            Entry::Qdisc { ns, name, old } => match old {
                Some(shape) => Op::SetQdisc {
                    ns,
                    dev: name,
                    shape,
                    mtu: 1500,
                },
                None => Op::DelQdisc { ns, dev: name },
            },
            Entry::Sysctl { ns, key, old, .. } => match old {
                Some(old) => Op::Sysctl {
                    ns,
                    key: key.as_str().to_string(),
                    value: old.as_str().to_string(),
                },
                None => return Vec::new(),
            },
            Entry::LinkAttr { ns, name, old } => Op::SetLink {
                ns,
                name,
                change: old,
            },
            // Renamed back first, where it is: moved home under its new
            // name, it could clash with a device there.
            Entry::LinkPlace { ns, name, home, up } => {
                let mut ops = Vec::new();
                if name != home.name {
                    ops.push(Op::RenameLink {
                        ns: ns.clone(),
                        name,
                        to: home.name.clone(),
                    });
                }
                if ns != home.ns {
                    ops.push(Op::MoveLink {
                        ns,
                        name: home.name.clone(),
                        to: home.ns.clone(),
                    });
                }
                if up {
                    ops.push(Op::SetLink {
                        ns: home.ns,
                        name: home.name,
                        change: LinkChange::Up(true),
                    });
                }
                return ops;
            }
            Entry::Nat {
                ns, table, handle, ..
            } => Op::DelNat {
                ns,
                table: table.as_str().to_string(),
                handle,
            },
            Entry::File { ns, path, old } => match old {
                Some(content) => Op::WriteFile {
                    ns,
                    path: path.as_str().to_string(),
                    content,
                },
                None => Op::RemoveFile {
                    ns,
                    path: path.as_str().to_string(),
                },
            },
            Entry::Daemon {
                ns, name, identity, ..
            } => Op::StopDaemon {
                ns,
                name: name.as_str().to_string(),
                identity,
            },
        };
        vec![op]
    }
}
