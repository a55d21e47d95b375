//! What a declaration can get wrong, as data: the edge renders it with the
//! script line of the refused call and, where two declarations clash, the
//! line of the first one too.

use crate::model::{IfName, InvalidValue, NsName, NsRef, RouteDest};

use super::Pos;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeclError {
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    #[error("netns {ns} already has a link named {name} (declared at {first})")]
    LinkTaken { ns: NsRef, name: IfName, first: Pos },
    #[error("netns {ns} already has a link named {name} (declared at {first}), not a bridge")]
    NotABridge { ns: NsRef, name: IfName, first: Pos },
    #[error("a veth pair needs two different names in netns {ns}: both ends are {name}")]
    VethSameName { ns: NsRef, name: IfName },
    #[error(
        "cannot move {name} to netns {ns}: it already has a link named {name} (declared at {first})"
    )]
    MoveClash { ns: NsRef, name: IfName, first: Pos },
    #[error("{name} is attached to a bridge: move it before attaching it")]
    MoveAttached { name: IfName },
    #[error(
        "cannot rename to {name}: netns {ns} already has a link named {name} (declared at {first})"
    )]
    RenameClash { ns: NsRef, name: IfName, first: Pos },
    #[error("{bridge} is a veth end, not a bridge: call attach() on the bridge")]
    AttachToVeth { bridge: IfName },
    #[error(
        "cannot attach {port} (netns {port_ns}) to bridge {bridge} (netns {bridge_ns}): they must be in the same namespace"
    )]
    AttachAcross {
        port: IfName,
        port_ns: NsRef,
        bridge: IfName,
        bridge_ns: NsRef,
    },
    #[error("localhost: true is IPv4 only: the kernel never routes ::1 to {to}")]
    LocalhostV6 { to: std::net::IpAddr },
    #[error(
        "localhost: true needs a link in {ns} on the subnet of {to}, declared before the mapping"
    )]
    LocalhostNoLink { to: std::net::IpAddr, ns: NsRef },
    #[error("{name} is not a bridge: {what} takes a bridge")]
    NotBridgeFor { name: IfName, what: &'static str },
    #[error("cannot attach bridge {bridge} to itself")]
    AttachToSelf { bridge: IfName },
    #[error("{name} is a veth, not a bridge: stp() is for bridges")]
    StpNotBridge { name: IfName },
    #[error("only a veth end has a peer")]
    NoPeer,
    #[error("MTU {mtu} is out of range: use 68 to 65535")]
    Mtu { mtu: i64 },
    #[error("address {addr} is already on {dev} in netns {ns} (declared at {first})")]
    AddrTaken {
        addr: std::net::IpAddr,
        dev: IfName,
        ns: NsRef,
        first: Pos,
    },
    #[error("{addr} is not an address an interface can have")]
    AddrUnusable { addr: String },
    #[error("netns {ns} already has a route to {dest} (via {via}, declared at {first})")]
    RouteTaken {
        ns: NsRef,
        dest: RouteDest,
        via: std::net::IpAddr,
        first: Pos,
    },
    #[error("'{key}' is not a sysctl name (like net.ipv4.ip_forward)")]
    SysctlName { key: String },
    #[error(
        "sysctl {key} is not one of the network namespace's own: ns.sysctl() sets only net.* keys, which a namespace keeps for itself"
    )]
    SysctlGlobal { key: String },
    #[error("sysctl {key}: the value {value:?} is {why}")]
    SysctlValue {
        key: String,
        value: String,
        why: &'static str,
    },
    #[error("netns {ns} is not declared in this topology (any more)")]
    UndeclaredNs { ns: NsName },
    /// Two DNAT mappings for the same key: the nft crate's words, both lines.
    #[error("{msg}")]
    DnatClash { msg: String, first: Pos },
    /// A new kind's declaration refused: the words say what and why.
    #[error("{msg}")]
    Kind { msg: String },
    #[error(
        "bridge {bridge} already has {limit} ports, the most a Linux bridge takes (the kernel refuses port {} with EXFULL)", limit + 1
    )]
    BridgeFull { bridge: IfName, limit: usize },
    #[error(
        "a daemon named '{name}' is already declared (at {first}): give this one another name with #{{ name: \"…\" }}"
    )]
    DaemonTaken { name: String, first: Pos },
    #[error("this link handle is from before the topology was reset or rolled back")]
    Stale,
    #[error(
        "the script declared more than {limit} objects: stopped (raise --max-ops if this is intended)"
    )]
    TooMany { limit: u64 },
}

impl DeclError {
    /// The earlier declaration this one clashes with, when there is one.
    pub fn first(&self) -> Option<&Pos> {
        match self {
            DeclError::LinkTaken { first, .. }
            | DeclError::NotABridge { first, .. }
            | DeclError::MoveClash { first, .. }
            | DeclError::RenameClash { first, .. }
            | DeclError::AddrTaken { first, .. }
            | DeclError::RouteTaken { first, .. }
            | DeclError::DnatClash { first, .. }
            | DeclError::DaemonTaken { first, .. } => Some(first),
            _ => None,
        }
    }

    /// What to do about it, when there is more to say than the message.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            DeclError::Stale => Some("declare the object again (e.g. bridge(\"br0\")) after :down"),
            DeclError::SysctlGlobal { .. } => Some(
                "a global knob (kernel.*, vm.*, fs.*) would change the whole machine; set it outside netplumb if you mean to",
            ),
            DeclError::UndeclaredNs { .. } => Some("declare it with netns(\"…\") first"),
            _ => None,
        }
    }
}
