//! ifindex by namespace and name, as far as known: asked for every op of a
//! batch and forgotten a namespace at a time when it is read again. By
//! namespace first, so that forgetting one is not a scan of every
//! namespace's links (quadratic at a thousand) and a lookup copies nothing.

use std::collections::HashMap;

use crate::kernel::Link;
use crate::model::NsRef;

#[derive(Default)]
pub(super) struct LinkIndex(HashMap<NsRef, HashMap<String, u32>>);

impl LinkIndex {
    pub fn get(&self, ns: &NsRef, name: &str) -> Option<u32> {
        self.0.get(ns)?.get(name).copied()
    }

    pub fn contains(&self, ns: &NsRef, name: &str) -> bool {
        self.get(ns, name).is_some()
    }

    pub fn insert(&mut self, ns: &NsRef, name: &str, index: u32) {
        match self.0.get_mut(ns) {
            Some(m) => m.insert(name.to_string(), index),
            None => self
                .0
                .entry(ns.clone())
                .or_default()
                .insert(name.to_string(), index),
        };
    }

    /// The links a read of `ns` found.
    pub fn learn(&mut self, ns: &NsRef, links: &[Link]) {
        for l in links {
            self.insert(ns, &l.name, l.index);
        }
    }

    /// The links a read of all of `ns` found, in place of what was known.
    pub fn relearn(&mut self, ns: &NsRef, links: &[Link]) {
        self.forget(ns);
        self.learn(ns, links);
    }

    pub fn remove(&mut self, ns: &NsRef, name: &str) {
        if let Some(m) = self.0.get_mut(ns) {
            m.remove(name);
        }
    }

    pub fn forget(&mut self, ns: &NsRef) {
        self.0.remove(ns);
    }
}
