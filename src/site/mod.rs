//! Sites (issue 19): one script across several machines. `site("east",
//! #{ underlay, ssh, mtu })` names a machine; every object is declared on
//! one site, and each site's part is its own `topo::Topology`. The part of
//! the site chosen with `--site` is the one the runner applies (its
//! `topo`); the others are kept aside here, validated but never applied.
//! A script without `site()` has one implicit local site, as before.
//!
//! The parts are swapped in and out of `Runner::topo` as the script
//! declares on one site or another ([`Sites::enter`]), so the declaring
//! methods of the model keep working on `r.topo` unchanged; before any
//! diff the runner puts the selected part back ([`Sites::restore`]).

mod alloc;
pub mod collide;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::topo::{LinkId, Pos, Topology};

pub use alloc::vni_for;

/// A machine the script places objects on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteDecl {
    pub name: Arc<str>,
    /// The address other sites reach this machine on.
    pub underlay: IpAddr,
    /// The ssh target (`root@east`); the site's name unless given.
    pub ssh: String,
    /// The underlay's MTU (1500 unless given).
    pub mtu: u32,
    pub pos: Pos,
}

/// A declared site, as the commands that reach machines need it (`up
/// --all-sites` learns the sites from a kernel-less evaluation:
/// `crate::script::declared_sites`).
// Its user, `--all-sites`, is on branch h-remote: allowed until the merge.
#[allow(dead_code)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteInfo {
    pub name: String,
    pub underlay: String,
    pub ssh: String,
    pub mtu: u32,
}

/// A link or bridge that crosses sites, for `plan`'s comments and `graph`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    /// The sites joined, in the script's order.
    pub sites: Vec<Arc<str>>,
    /// Each end: its site, namespace and device (the tunnel end, or the
    /// stretched bridge's vxlan port).
    pub ends: Vec<(Arc<str>, crate::model::NsRef, String)>,
    /// `a:eth0 ↔ b:eth0`, or the stretched bridge's name.
    pub what: String,
    pub vni: u32,
    pub port: u16,
    /// The MTU given to the tunnel's ends (or the stretched bridge's ports).
    pub mtu: u32,
    /// `min(site MTUs) − overhead`: what `plan` explains.
    pub underlay_mtu: u32,
    pub overhead: u32,
    /// A stretched bridge (else a cross-site veth).
    pub stretched: bool,
    pub pos: Pos,
}

impl Tunnel {
    /// What `plan` says about the tunnel's MTU: why it is what it is.
    pub fn mtu_comment(&self) -> String {
        let on = if self.stretched {
            format!("{} and its ports", self.what)
        } else {
            self.what.clone()
        };
        format!(
            "# mtu {} on {on} (vni {}, port {}): underlay {} − {} bytes of VXLAN",
            self.mtu, self.vni, self.port, self.underlay_mtu, self.overhead
        )
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum SiteError {
    #[error(
        "this script has sites ({}): bring one up with --site NAME (or every one with --all-sites)",
        .sites.join(", ")
    )]
    NoneSelected { sites: Vec<String> },
    #[error("--site {site}: the script has no site {site} (its sites: {})", .sites.join(", "))]
    Unknown { site: String, sites: Vec<String> },
    #[error("{msg}")]
    Collision { msg: String },
    #[error("--site {site}: the script declares no sites (site(\"{site}\", #{{ underlay: … }}))")]
    NoSites { site: String },
}

/// The sites of a run: those declared, the one selected, the parts aside.
#[derive(Debug, Clone, Default)]
pub struct Sites {
    pub list: Vec<SiteDecl>,
    /// `--site NAME`: the part this run applies.
    pub selected: Option<String>,
    /// Whose part `Runner::topo` holds now (None: the part of objects on
    /// no site, which only a script without sites fills).
    active: Option<Arc<str>>,
    /// Every other part.
    aside: BTreeMap<Option<Arc<str>>, Topology>,
    pub tunnels: Vec<Tunnel>,
    /// The two ends of each cross-site veth (each in its own site's part).
    xpeers: Vec<(LinkId, LinkId)>,
}

impl Sites {
    pub fn any(&self) -> bool {
        !self.list.is_empty()
    }

    /// The other end of a cross-site veth end.
    pub fn xpeer(&self, id: LinkId) -> Option<LinkId> {
        self.xpeers.iter().find_map(|&(a, b)| {
            if a == id {
                Some(b)
            } else if b == id {
                Some(a)
            } else {
                None
            }
        })
    }

    pub fn add_xpeer(&mut self, a: LinkId, b: LinkId) {
        self.xpeers.push((a, b));
    }

    /// Whose part the runner's `topo` holds now.
    pub fn active(&self) -> Option<&Arc<str>> {
        self.active.as_ref()
    }

    /// Is the part declarations go to now the one this run applies?
    pub fn active_is_applied(&self) -> bool {
        self.is_applied(self.active.as_deref())
    }

    pub fn get(&self, name: &str) -> Option<&SiteDecl> {
        self.list.iter().find(|s| &*s.name == name)
    }

    pub fn names(&self) -> Vec<String> {
        self.list.iter().map(|s| s.name.to_string()).collect()
    }

    /// Is `site` the one this run applies? (A script without sites has only
    /// the implicit local one, which every run applies.)
    pub fn is_applied(&self, site: Option<&str>) -> bool {
        match (site, &self.selected) {
            (None, _) => !self.any(),
            (Some(s), Some(sel)) => s == sel,
            (Some(_), None) => false,
        }
    }

    /// Make `topo` the part of `site` (keeping the current one aside).
    pub fn enter(&mut self, topo: &mut Topology, site: Option<&Arc<str>>) {
        if self.active.as_ref() == site {
            return;
        }
        let next = self.aside.remove(&site.cloned()).unwrap_or_else(|| {
            // A new part: empty, with the same object limit.
            let mut t = topo.clone();
            t.reset();
            t
        });
        let prev = std::mem::replace(topo, next);
        self.aside.insert(self.active.take(), prev);
        self.active = site.cloned();
    }

    /// Put the selected site's part back in `topo` (before a diff).
    pub fn restore(&mut self, topo: &mut Topology) {
        let sel = self
            .selected
            .as_deref()
            .and_then(|s| self.get(s))
            .map(|s| s.name.clone());
        self.enter(topo, sel.as_ref());
    }

    /// The part of `site` wherever it is now (`topo`: the runner's).
    pub fn part<'a>(&'a self, topo: &'a Topology, site: Option<&Arc<str>>) -> Option<&'a Topology> {
        if self.active.as_ref() == site {
            Some(topo)
        } else {
            self.aside.get(&site.cloned())
        }
    }

    /// The site whose part holds link `id` (`topo`: the runner's).
    pub fn site_of_link(&self, topo: &Topology, id: LinkId) -> Option<Option<Arc<str>>> {
        if topo.link(id).is_ok() {
            return Some(self.active.clone());
        }
        self.aside
            .iter()
            .find(|(_, t)| t.link(id).is_ok())
            .map(|(s, _)| s.clone())
    }

    /// Whether the selected site makes sense for this script: the check
    /// before anything is diffed. `applying`: a run that changes the kernel
    /// (a plan without `--site` only evaluates).
    pub fn check_selected(&self, applying: bool) -> Result<(), SiteError> {
        match &self.selected {
            None if self.any() && applying => Err(SiteError::NoneSelected {
                sites: self.names(),
            }),
            Some(s) if !self.any() => Err(SiteError::NoSites { site: s.clone() }),
            Some(s) if self.get(s).is_none() => Err(SiteError::Unknown {
                site: s.clone(),
                sites: self.names(),
            }),
            _ => Ok(()),
        }
    }

    /// The tunnels with an end on the selected site.
    pub fn selected_tunnels(&self) -> impl Iterator<Item = &Tunnel> {
        self.tunnels.iter().filter(|t| {
            t.sites
                .iter()
                .any(|s| Some(&**s) == self.selected.as_deref())
        })
    }

    #[allow(dead_code)]
    pub fn info(&self) -> Vec<SiteInfo> {
        self.list
            .iter()
            .map(|s| SiteInfo {
                name: s.name.to_string(),
                underlay: s.underlay.to_string(),
                ssh: s.ssh.clone(),
                mtu: s.mtu,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
