//! Where each entry of the ledger's list is, by hash, kept across calls
//! while the list is only appended to and changed in place: an apply
//! confirms the identities of each chunk of 512 steps as it goes, and
//! indexing the whole record anew for each chunk (`Slots`) hashed the
//! 18,000 entries of S(3000,30000) 35 times over.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use super::Entry;

/// Positions with equal hashes chained newest first: a map entry and a
/// `u32` per entry, not a list per hash (the index lives through a whole
/// apply, which is where `up`'s memory peaks).
#[derive(Default)]
pub(super) struct Positions {
    /// Hash → the last position with it.
    last: HashMap<u64, u32>,
    /// Position → the one before it with the same hash (NONE: none).
    before: Vec<u32>,
    hasher: RandomState,
}

const NONE: u32 = u32::MAX;

impl Positions {
    /// Index the entries appended to `list` since the last call.
    pub fn catch_up(&mut self, list: &[Entry]) {
        for (i, e) in list.iter().enumerate().skip(self.before.len()) {
            let prev = self.last.insert(self.hasher.hash_one(e), i as u32);
            self.before.push(prev.unwrap_or(NONE));
        }
    }

    /// Positions with `e`'s hash, last first.
    fn chain(&self, h: u64) -> impl Iterator<Item = usize> + '_ {
        let mut at = self.last.get(&h).copied().unwrap_or(NONE);
        std::iter::from_fn(move || {
            let i = (at != NONE).then_some(at as usize)?;
            at = self.before[i];
            Some(i)
        })
    }

    /// The position of the last entry equal to `e`, as `rposition` finds it.
    pub fn find_last(&self, list: &[Entry], e: &Entry) -> Option<usize> {
        self.chain(self.hasher.hash_one(e))
            .find(|&i| list.get(i) == Some(e))
    }

    /// `list[i] = new`, its position moved to the new entry's chain.
    pub fn set(&mut self, list: &mut [Entry], i: usize, new: Entry) {
        let old = self.hasher.hash_one(&list[i]);
        let later = self.chain(old).take_while(|&j| j != i).last();
        match later {
            Some(j) => self.before[j] = self.before[i],
            None if self.before[i] == NONE => {
                self.last.remove(&old);
            }
            None => {
                self.last.insert(old, self.before[i]);
            }
        }
        // Chains stay in order, last first, for `find_last`.
        let h = self.hasher.hash_one(&new);
        match self.chain(h).take_while(|&j| j > i).last() {
            Some(j) => {
                self.before[i] = self.before[j];
                self.before[j] = i as u32;
            }
            None => self.before[i] = self.last.insert(h, i as u32).unwrap_or(NONE),
        }
        list[i] = new;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::netns_entry as ns;

    /// Replacements and appends, duplicates included, on a plain list
    /// (`rposition`, then assignment, as the ledger did them) and through
    /// the positions end in the same list.
    #[test]
    fn replacing_and_appending_match_a_plain_list_with_duplicates() {
        let mut plain = vec![ns("a", 1), ns("b", 2), ns("a", 1)];
        let mut list = plain.clone();
        let mut pos = Positions::default();
        let steps: [(&[Entry], Entry, Entry); 5] = [
            (&[], ns("a", 1), ns("a", 7)),
            (&[ns("c", 3), ns("a", 1)], ns("a", 1), ns("b", 2)),
            (&[], ns("b", 2), ns("c", 3)),
            (&[ns("z", 9)], ns("q", 0), ns("a", 1)),
            (&[], ns("a", 1), ns("z", 9)),
        ];
        for (appended, old, new) in steps {
            plain.extend(appended.iter().cloned());
            list.extend(appended.iter().cloned());
            pos.catch_up(&list);
            let p = plain.iter().rposition(|e| e == &old);
            let q = pos.find_last(&list, &old);
            assert_eq!(p, q, "{old:?}");
            if let (Some(p), Some(q)) = (p, q) {
                plain[p] = new.clone();
                pos.set(&mut list, q, new);
            }
            assert_eq!(list, plain);
        }
        assert_eq!(pos.find_last(&list, &ns("z", 9)), Some(5));
    }

    /// Many replacements and appends over a few distinct entries (long
    /// chains of equal ones): every entry is found where `rposition` finds it.
    #[test]
    fn long_chains_of_equal_entries_stay_in_order() {
        let mut list: Vec<Entry> = Vec::new();
        let mut pos = Positions::default();
        let mut seed = 7u64;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..2000 {
            let e = ns(["a", "b", "c"][next(3) as usize], next(2));
            if next(3) == 0 {
                list.push(e);
                pos.catch_up(&list);
                continue;
            }
            let new = ns(["a", "b", "c"][next(3) as usize], next(2));
            let p = list.iter().rposition(|x| x == &e);
            assert_eq!(pos.find_last(&list, &e), p);
            if let Some(p) = p {
                pos.set(&mut list, p, new);
            }
        }
        for e in list.clone() {
            assert_eq!(pos.find_last(&list, &e), list.iter().rposition(|x| x == &e));
        }
    }
}
