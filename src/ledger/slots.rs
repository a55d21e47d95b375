//! Entries by hash, so that loading and removing thousands of
//! them is linear: the record of S(3000,30000) holds 12,000 entries, and a
//! scan of the list for each one (an `Add` dedup, a `Del`, a confirmed
//! identity) made `down` spend most of its own time comparing entries.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use super::Entry;

/// A list of entries with holes, and where each entry is by its hash.
pub(super) struct Slots {
    items: Vec<Option<Entry>>,
    by_hash: HashMap<u64, Vec<usize>>,
    hasher: RandomState,
}

impl Slots {
    pub fn new(entries: Vec<Entry>) -> Self {
        // Collected in place (an Option<Entry> is an Entry's size): the
        // ledger of S(3000,30000) is megabytes, and a copy of it per
        // replace was a step of `up`'s peak RSS.
        let items: Vec<Option<Entry>> = entries.into_iter().map(Some).collect();
        let mut s = Slots {
            by_hash: HashMap::with_capacity(items.len()),
            items,
            hasher: RandomState::new(),
        };
        for i in 0..s.items.len() {
            s.index(i);
        }
        s
    }

    /// The position of the last entry equal to `e`, as `rposition` finds it.
    pub fn find_last(&self, e: &Entry) -> Option<usize> {
        self.by_hash
            .get(&self.hasher.hash_one(e))?
            .iter()
            .rev()
            .copied()
            .find(|&i| self.items[i].as_ref() == Some(e))
    }

    pub fn push(&mut self, e: Entry) {
        self.items.push(Some(e));
        self.index(self.items.len() - 1);
    }

    /// Enter the entry at `i`, the last position so far, in its bucket.
    fn index(&mut self, i: usize) {
        if let Some(e) = &self.items[i] {
            self.by_hash
                .entry(self.hasher.hash_one(e))
                .or_default()
                .push(i);
        }
    }

    pub fn take(&mut self, i: usize) {
        if let Some(e) = self.items[i].take() {
            self.unindex(&e, i);
        }
    }

    fn unindex(&mut self, e: &Entry, i: usize) {
        let h = self.hasher.hash_one(e);
        if let Some(bucket) = self.by_hash.get_mut(&h) {
            bucket.retain(|&j| j != i);
            if bucket.is_empty() {
                self.by_hash.remove(&h);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by_hash.values().map(Vec::len).sum()
    }

    pub fn into_vec(self) -> Vec<Entry> {
        // filter_map, not flatten: it collects in place, flatten copies.
        #[allow(clippy::filter_map_identity)]
        self.items.into_iter().filter_map(|e| e).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::netns_entry as ns;

    /// The same removals on a plain list (`rposition`, then `remove`, as
    /// the ledger did them) and on the slots end in the same list,
    /// duplicates included.
    #[test]
    fn removals_match_a_plain_list_with_duplicates() {
        let start = vec![ns("a", 1), ns("b", 2), ns("a", 1), ns("c", 3), ns("b", 2)];
        let mut list = start.clone();
        let mut slots = Slots::new(start);
        let removals = [ns("a", 1), ns("b", 2), ns("c", 3), ns("z", 9), ns("b", 2)];
        for old in removals {
            let p = list.iter().rposition(|e| e == &old);
            let q = slots.find_last(&old);
            assert_eq!(p.is_some(), q.is_some(), "{old:?}");
            if let (Some(p), Some(q)) = (p, q) {
                list.remove(p);
                slots.take(q);
            }
            assert_eq!(slots.len(), list.len());
        }
        assert_eq!(slots.into_vec(), list);
    }
}
