//! Copies of the model for going back to (a REPL statement that fails),
//! without the namespaces: those are only ever appended to (a reset makes
//! a new model), so how many there were is enough to have them back. A
//! long session copied every namespace's declaration before each statement.

use super::{NsDecl, Topology};

/// A model but its namespaces (see `Topology::snapshot`).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    rest: Topology,
    ns_len: usize,
}

impl Topology {
    pub fn snapshot(&self) -> Snapshot {
        // Every field named: a new one must be decided on here.
        let Topology {
            namespaces,
            ns_names: _,
            links,
            addrs,
            routes,
            xroutes,
            rules,
            sysctls,
            nat,
            daemons,
            files,
            filters,
            dnat_index,
            link_names,
            port_counts,
            route_index,
            sysctl_keys,
            stretched,
            revision,
            ns_adds,
            limit,
        } = self;
        Snapshot {
            rest: Topology {
                namespaces: Vec::new(),
                ns_names: Default::default(),
                links: links.clone(),
                addrs: addrs.clone(),
                routes: routes.clone(),
                xroutes: xroutes.clone(),
                rules: rules.clone(),
                sysctls: sysctls.clone(),
                nat: nat.clone(),
                daemons: daemons.clone(),
                files: files.clone(),
                filters: filters.clone(),
                dnat_index: dnat_index.clone(),
                link_names: link_names.clone(),
                port_counts: port_counts.clone(),
                route_index: route_index.clone(),
                sysctl_keys: sysctl_keys.clone(),
                stretched: stretched.clone(),
                revision: *revision,
                ns_adds: *ns_adds,
                limit: *limit,
            },
            ns_len: namespaces.len(),
        }
    }

    /// The model `s` was taken of, its namespaces the first ones of
    /// `later`: the namespaces of the model it grew into since, unreset.
    pub fn from_snapshot(s: Snapshot, mut later: Vec<NsDecl>) -> Topology {
        later.truncate(s.ns_len);
        // A pass over them, but only when a statement is undone.
        Topology {
            ns_names: later.iter().map(|n| n.name.clone()).collect(),
            namespaces: later,
            ..s.rest
        }
    }

    /// The namespaces, taken out (for `from_snapshot`).
    pub fn take_namespaces(&mut self) -> Vec<NsDecl> {
        self.ns_names.clear();
        std::mem::take(&mut self.namespaces)
    }
}
