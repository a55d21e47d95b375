//! The desired topology: what the script has declared so far. Script
//! functions only ever change this; `plan::diff` turns it into kernel ops.

use std::net::IpAddr;
use std::sync::Arc;

use netplumb_nft::NatRule;

use crate::model::{Cidr, IfName, NsName, NsRef, RouteDest};

/// Where in which script something was declared: errors point here.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pos {
    /// Script path or module name; empty for the main script.
    pub source: Arc<str>,
    pub line: usize,
    pub col: usize,
    /// For a declaration inside a module function: the line of the user's
    /// script that called into the module, and the function it called.
    pub called_from: Option<(usize, Arc<str>)>,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.source.is_empty() {
            write!(f, "line {}", self.line)
        } else {
            write!(f, "{}:{}", self.source, self.line)
        }
    }
}

pub type LinkId = usize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKind {
    Veth {
        peer: LinkId,
    },
    Bridge,
    /// A device the script found with `ns.link(name)`: adopted, never created.
    Existing,
}

impl LinkKind {
    pub fn kernel_kind(&self) -> Option<&'static str> {
        match self {
            LinkKind::Veth { .. } => Some("veth"),
            LinkKind::Bridge => Some("bridge"),
            LinkKind::Existing => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkDecl {
    pub kind: LinkKind,
    pub ns: NsRef,
    pub name: IfName,
    pub up: Option<bool>,
    pub mtu: Option<u32>,
    pub master: Option<LinkId>,
    pub stp: Option<bool>,
    pub pos: Pos,
    /// Where the last up()/down(), mtu(), attach() and stp() calls were.
    pub set_pos: SetPos,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetPos {
    pub up: Option<Pos>,
    pub mtu: Option<Pos>,
    pub master: Option<Pos>,
    pub stp: Option<Pos>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrDecl {
    pub link: LinkId,
    pub cidr: Cidr,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDecl {
    pub ns: NsRef,
    pub dest: RouteDest,
    pub via: IpAddr,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysctlDecl {
    pub ns: NsRef,
    pub key: String,
    pub value: String,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub struct NatDecl {
    pub ns: NsRef,
    pub rule: NatRule,
    pub pos: Pos,
}

#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub namespaces: Vec<(NsName, Pos)>,
    pub links: Vec<LinkDecl>,
    pub addrs: Vec<AddrDecl>,
    pub routes: Vec<RouteDecl>,
    pub sysctls: Vec<SysctlDecl>,
    pub nat: Vec<NatDecl>,
}

impl Topology {
    pub fn has_ns(&self, ns: &NsName) -> bool {
        self.namespaces.iter().any(|(n, _)| n == ns)
    }

    /// The declared link currently at `name` in `ns`, if any.
    pub fn link_at(&self, ns: &NsRef, name: &IfName) -> Option<LinkId> {
        self.links
            .iter()
            .position(|l| &l.ns == ns && &l.name == name)
    }

    /// Every namespace the topology touches: the host first when it is used,
    /// then the declared namespaces in order, then any other one referenced.
    pub fn touched_ns(&self) -> Vec<NsRef> {
        let mut out: Vec<NsRef> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut push = |r: &NsRef| {
            if seen.insert(r.clone()) {
                out.push(r.clone());
            }
        };
        let host_used = self.links.iter().any(|l| l.ns == NsRef::Host)
            || self.routes.iter().any(|r| r.ns == NsRef::Host)
            || self.sysctls.iter().any(|s| s.ns == NsRef::Host)
            || self.nat.iter().any(|n| n.ns == NsRef::Host);
        if host_used {
            push(&NsRef::Host);
        }
        for (n, _) in &self.namespaces {
            push(&NsRef::Named(n.clone()));
        }
        for l in &self.links {
            push(&l.ns);
        }
        for r in &self.routes {
            push(&r.ns);
        }
        for s in &self.sysctls {
            push(&s.ns);
        }
        for n in &self.nat {
            push(&n.ns);
        }
        out
    }

    /// Number of declarations: what the operation limit counts.
    pub fn size(&self) -> usize {
        self.namespaces.len()
            + self.links.len()
            + self.addrs.len()
            + self.routes.len()
            + self.sysctls.len()
            + self.nat.len()
    }
}
