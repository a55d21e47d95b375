//! The desired topology: what the script has declared so far. The model
//! keeps its own rules (src/topo/declare.rs): script functions call its
//! declaring methods, which refuse what cannot be built with a typed error
//! naming both positions where two declarations clash. `plan::diff` turns
//! it into kernel ops.

mod cross;
mod daemon;
mod declare;
mod error;
mod file;
mod filter;
mod kinds;
mod publish;
mod routes;
mod snapshot;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use netplumb_nft::NatRule;

pub use cross::Crossing;
pub use daemon::DaemonDecl;
pub use error::DeclError;
pub use file::FileDecl;
pub use filter::{FILTER_TAG_BASE, FilterDecl, FilterEnd, FilterKind, FilterSpec};
pub use routes::{RouteExDecl, RuleDecl};
pub use snapshot::Snapshot;

use crate::model::{Cidr, IfName, NsName, NsRef, RouteDest};
use crate::op::{MacvlanMode, RouteSpec, Shape, TunSpec, VxlanSpec};

/// Where in which script something was declared: errors point here.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
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

/// A link's uid: never reused in this process, across resets and restored
/// checkpoints too, so a handle from before is recognised as stale.
fn fresh_uid() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A declared link, as a script holds it. Checked on every use: a handle
/// from before a REPL `:down` or a rolled-back statement is refused with a
/// script error instead of pointing at whatever took its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkId {
    index: u32,
    uid: u32,
}

impl LinkId {
    /// Position in declaration order (for tables indexed like the links).
    pub fn index(self) -> usize {
        self.index as usize
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKind {
    Veth {
        peer: LinkId,
    },
    Bridge,
    /// A device the script found with `ns.link(name)`: adopted, never created.
    Existing,
    /// On `parent`, in the namespace the macvlan is declared in (it may
    /// move elsewhere afterwards).
    Macvlan {
        parent: LinkId,
        mode: MacvlanMode,
    },
    /// A persistent tun or tap device.
    Tun(TunSpec),
    /// `spec.dev` is filled in from `dev` when planned. `cross`: a vxlan
    /// netplumb makes for a link or bridge that crosses sites.
    Vxlan {
        spec: VxlanSpec,
        dev: Option<LinkId>,
        cross: Option<Crossing>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsDecl {
    pub name: NsName,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkDecl {
    uid: u32,
    pub kind: LinkKind,
    /// Where the link is to be (after any `move_to` / `rename`).
    pub ns: NsRef,
    pub name: IfName,
    /// Where it was declared: for an adopted device, where it is found; for
    /// a created link, the key that identifies it across edits of a script.
    pub origin: (NsRef, IfName),
    pub up: Option<bool>,
    pub mtu: Option<u32>,
    pub master: Option<LinkId>,
    pub stp: Option<bool>,
    /// `bridge(name, #{ mcast_snooping: false })`.
    pub mcast_snooping: Option<bool>,
    /// `shape(#{ … })`; `Some(empty)`: `shape(#{})`, no shaping.
    pub shape: Option<Shape>,
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
    pub mcast_snooping: Option<Pos>,
    pub shape: Option<Pos>,
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
    pub route: RouteSpec,
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
    /// For a DNAT mapping: a backend on a bridge gets hairpin (default on).
    pub hairpin: bool,
    /// For a DNAT mapping: published even over a socket listening on the port.
    pub force: bool,
}

/// A point in a model's history (see `Topology::ns_added_since`). Only
/// meaningful for the model it was taken of: whoever keeps one forgets it
/// when the model is replaced (a restored checkpoint, another site's part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    revision: u64,
    ns_adds: u64,
    ns_len: usize,
}

/// DNAT keys already declared, per (namespace, v6, proto, daddr, iif):
/// first port of each range → (last port, tag). Ranges never overlap, so
/// the one starting at or before a port is the only one that can hold it.
type DnatIndex =
    HashMap<(NsRef, bool, u8, Option<IpAddr>, Option<String>), BTreeMap<u16, (u16, usize)>>;

#[derive(Debug, Clone, Default)]
pub struct Topology {
    namespaces: Vec<NsDecl>,
    /// The names in `namespaces`: a new name is a miss, and a scan for it
    /// was thousands x thousands at S(3000, ·). Not in a snapshot, like
    /// the namespaces themselves (a REPL statement would copy it).
    ns_names: HashSet<NsName>,
    links: Vec<LinkDecl>,
    addrs: Vec<AddrDecl>,
    routes: Vec<RouteDecl>,
    xroutes: Vec<RouteExDecl>,
    rules: Vec<RuleDecl>,
    sysctls: Vec<SysctlDecl>,
    nat: Vec<NatDecl>,
    daemons: Vec<DaemonDecl>,
    files: Vec<FileDecl>,
    filters: Vec<FilterDecl>,
    dnat_index: DnatIndex,
    /// Each link's position in `links` by where it is now: `link_at` is
    /// asked for every link declared (is the name taken?), and a scan of
    /// the links was thousands × thousands at S(3000, ·).
    link_names: HashMap<(NsRef, IfName), u32>,
    /// How many ports each bridge (by position) has, for its 1023-port
    /// limit, asked at each attach.
    port_counts: HashMap<u32, usize>,
    /// Each route's position in `routes` by (namespace, destination): one
    /// route per destination, asked at every route declared.
    route_index: HashMap<(NsRef, RouteDest), usize>,
    /// The (namespace, key) of every sysctl in `sysctls`: each NAT rule
    /// asks whether its namespace's forwarding is declared, and a scan of
    /// the sysctls was 22 % of a `plan` of S(3000,30000) with `lean=true`
    /// (two sysctls in each namespace, times 30,000 mappings).
    sysctl_keys: HashMap<NsRef, HashSet<String>>,
    /// Stretched bridges (issue 19) and the MTU their ports get.
    stretched: Vec<(LinkId, u32)>,
    /// Bumped by every change: "did anything change since the last flush?"
    revision: u64,
    /// Bumped with `revision` by each new namespace: equal steps of the two
    /// since a `Mark` mean only namespaces were declared since.
    ns_adds: u64,
    /// Most objects a script may declare (0: no limit).
    limit: u64,
}

impl Topology {
    pub fn with_limit(limit: u64) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn namespaces(&self) -> &[NsDecl] {
        &self.namespaces
    }

    /// Where the model stands now, to ask later what was added since.
    pub fn mark(&self) -> Mark {
        Mark {
            revision: self.revision,
            ns_adds: self.ns_adds,
            ns_len: self.namespaces.len(),
        }
    }

    /// The namespaces declared since `m`, when nothing else changed since
    /// then. A REPL statement that only declares namespaces then costs what
    /// they do, not what the whole model does (issue 14).
    pub fn ns_added_since(&self, m: &Mark) -> Option<&[NsDecl]> {
        let adds = self.ns_adds.checked_sub(m.ns_adds)?;
        let same_lineage = self.revision.checked_sub(m.revision)? == adds
            && self.namespaces.len() as u64 == m.ns_len as u64 + adds;
        same_lineage.then(|| &self.namespaces[m.ns_len..])
    }

    /// Nothing declared but namespaces (nothing in them, no host objects).
    pub fn only_namespaces(&self) -> bool {
        self.size() == self.namespaces.len() && self.stretched.is_empty()
    }

    /// A model of just these namespaces, with this one's object limit.
    pub fn of_namespaces(&self, ns: &[NsDecl]) -> Topology {
        Topology {
            namespaces: ns.to_vec(),
            ns_names: ns.iter().map(|n| n.name.clone()).collect(),
            limit: self.limit,
            ..Topology::default()
        }
    }
    pub fn has_ns(&self, ns: &NsName) -> bool {
        self.ns_names.contains(ns)
    }
    /// Every declared link, in declaration order.
    pub fn links(&self) -> impl Iterator<Item = (LinkId, &LinkDecl)> {
        self.links.iter().enumerate().map(|(i, l)| {
            (
                LinkId {
                    index: i as u32,
                    uid: l.uid,
                },
                l,
            )
        })
    }
    /// The link a handle names, or a stale-handle error.
    pub fn link(&self, id: LinkId) -> Result<&LinkDecl, DeclError> {
        match self.links.get(id.index()) {
            Some(l) if l.uid == id.uid => Ok(l),
            _ => Err(DeclError::Stale),
        }
    }
    /// The link of a handle the model itself made (a veth's peer, a
    /// master): always current while the model holds it.
    pub fn get(&self, id: LinkId) -> &LinkDecl {
        &self.links[id.index()]
    }
    /// The declared link currently at `name` in `ns`, if any.
    pub fn link_at(&self, ns: &NsRef, name: &IfName) -> Option<LinkId> {
        let index = *self.link_names.get(&(ns.clone(), name.clone()))?;
        Some(LinkId {
            index,
            uid: self.links[index as usize].uid,
        })
    }
    pub fn addrs(&self) -> &[AddrDecl] {
        &self.addrs
    }
    pub fn routes(&self) -> &[RouteDecl] {
        &self.routes
    }
    pub fn sysctls(&self) -> &[SysctlDecl] {
        &self.sysctls
    }
    pub fn nat(&self) -> &[NatDecl] {
        &self.nat
    }

    /// Every namespace the topology touches: the host first when it is used,
    /// then the declared namespaces in order, then any other one referenced.
    pub fn touched_ns(&self) -> Vec<NsRef> {
        let host_used = self.links.iter().any(|l| l.ns == NsRef::Host)
            || self.routes.iter().any(|r| r.ns == NsRef::Host)
            || self.xroutes.iter().any(|r| r.ns == NsRef::Host)
            || self.rules.iter().any(|r| r.ns == NsRef::Host)
            || self.sysctls.iter().any(|s| s.ns == NsRef::Host)
            || self.nat.iter().any(|n| n.ns == NsRef::Host)
            || self.daemons.iter().any(|d| d.ns == NsRef::Host)
            || self.filters.iter().any(|f| f.ns == NsRef::Host);
        let mut out: Vec<NsRef> = Vec::new();
        let mut host = host_used;
        if host_used {
            out.push(NsRef::Host);
        }
        // Names borrowed from the model: one clone per namespace, not two
        // per reference (the REPL asks this after every statement).
        let mut seen: std::collections::HashSet<&NsName> = std::collections::HashSet::new();
        for n in &self.namespaces {
            if seen.insert(&n.name) {
                out.push(NsRef::Named(n.name.clone()));
            }
        }
        let refs = self
            .links
            .iter()
            .flat_map(|l| [&l.ns, &l.origin.0])
            .chain(self.routes.iter().map(|r| &r.ns))
            .chain(self.xroutes.iter().map(|r| &r.ns))
            .chain(self.rules.iter().map(|r| &r.ns))
            .chain(self.sysctls.iter().map(|s| &s.ns))
            .chain(self.nat.iter().map(|n| &n.ns))
            .chain(self.daemons.iter().map(|d| &d.ns))
            .chain(self.filters.iter().map(|f| &f.ns));
        for r in refs {
            let new = match r {
                // Only where an adopted device moved away from it.
                NsRef::Host => !std::mem::replace(&mut host, true),
                NsRef::Named(n) => seen.insert(n),
            };
            if new {
                out.push(r.clone());
            }
        }
        out
    }

    /// Number of declarations: what the object limit counts.
    pub fn size(&self) -> usize {
        self.namespaces.len()
            + self.links.len()
            + self.addrs.len()
            + self.routes.len()
            + self.xroutes.len()
            + self.rules.len()
            + self.sysctls.len()
            + self.nat.len()
            + self.daemons.len()
            + self.files.len()
            + self.filters.len()
    }

    /// Forget every declaration (the REPL's `:down`). Handles made before
    /// stay stale.
    pub fn reset(&mut self) {
        *self = Self {
            revision: self.revision + 1,
            limit: self.limit,
            ..Self::default()
        };
    }
}

#[cfg(test)]
mod tests;
