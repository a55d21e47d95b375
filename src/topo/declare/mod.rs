//! The declaration rules: every change to the desired topology goes through
//! one of these methods, which refuse what cannot be built (two links with
//! one name in a namespace, an attach across namespaces, a DNAT port
//! claimed twice …) before anything reaches the kernel.

//!
//! One file per kind of object: links.rs (veths, bridges, adopted devices
//! and their settings, addresses), settings.rs (routes, sysctls), nat.rs.

mod links;
mod nat;
mod settings;

use super::{DeclError, LinkDecl, LinkId, NsDecl, Pos, Topology};
use crate::model::{NsName, NsRef};

impl Topology {
    pub(in crate::topo) fn changed(&mut self) {
        self.revision += 1;
    }

    pub(in crate::topo) fn check_room(&self) -> Result<(), DeclError> {
        if self.limit > 0 && self.size() as u64 >= self.limit {
            return Err(DeclError::TooMany { limit: self.limit });
        }
        Ok(())
    }

    /// A named namespace must be declared before anything is put in it.
    pub(in crate::topo) fn check_ns(&self, ns: &NsRef) -> Result<(), DeclError> {
        match ns {
            NsRef::Named(n) if !self.has_ns(n) => Err(DeclError::UndeclaredNs { ns: n.clone() }),
            _ => Ok(()),
        }
    }

    pub(in crate::topo) fn link_mut(&mut self, id: LinkId) -> Result<&mut LinkDecl, DeclError> {
        self.link(id)?;
        Ok(&mut self.links[id.index()])
    }

    /// Declare a namespace (again is fine: same namespace).
    pub fn add_netns(&mut self, name: NsName, pos: Pos) -> Result<NsRef, DeclError> {
        if !self.has_ns(&name) {
            self.check_room()?;
            self.ns_names.insert(name.clone());
            self.namespaces.push(NsDecl {
                name: name.clone(),
                pos,
            });
            self.changed();
            self.ns_adds += 1;
        }
        Ok(NsRef::Named(name))
    }
}
