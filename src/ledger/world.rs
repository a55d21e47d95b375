//! Every other topology's record, for the questions one topology must ask
//! before it changes the machine: is this namespace or bridge another
//! topology's (share it, never delete it while they need it)? does another
//! topology still need this sysctl? is this host port already published?
//! And the lock that makes those answers hold while the answer is acted on.

use std::fs::File;

use nix::fcntl::{Flock, FlockArg};

use super::{Entry, LedgerError, PortClaim, list_topologies, read_entries, store};
use crate::model::NsRef;

#[derive(Debug, Default)]
pub struct World {
    /// (topology, its entries), every topology but the asking one.
    pub others: Vec<(String, Vec<Entry>)>,
    /// Records that could not be read: reported, never blocking.
    pub damaged: Vec<LedgerError>,
}

/// Same object, and — where both sides know it — the same identity.
fn same_identity(a: &Entry, b: &Entry) -> bool {
    if !a.same_object(b) {
        return false;
    }
    match (a, b) {
        (Entry::Netns { ino: Some(x), .. }, Entry::Netns { ino: Some(y), .. }) => x == y,
        (Entry::Link { index: Some(x), .. }, Entry::Link { index: Some(y), .. }) => x == y,
        _ => true,
    }
}

impl World {
    pub fn load(me: &str) -> Result<Self, LedgerError> {
        let mut w = World::default();
        for name in list_topologies()? {
            if name == me {
                continue;
            }
            match read_entries(&name) {
                Ok(e) => w.others.push((name, e)),
                Err(e) => w.damaged.push(e),
            }
        }
        Ok(w)
    }

    /// Another topology that owns or shares this object.
    pub fn claimant_of(&self, e: &Entry) -> Option<&str> {
        self.others
            .iter()
            .find(|(_, es)| es.iter().any(|x| same_identity(x, e)))
            .map(|(n, _)| n.as_str())
    }

    /// Other topologies' entries for the sysctl of `e` (same namespace, key).
    pub fn sysctl_claims<'a>(&'a self, e: &'a Entry) -> impl Iterator<Item = (&'a str, &'a Entry)> {
        self.others.iter().flat_map(move |(n, es)| {
            es.iter()
                .filter(move |x| matches!(x, Entry::Sysctl { .. }) && x.same_object(e))
                .map(move |x| (n.as_str(), x))
        })
    }

    /// Every host port another topology publishes: (topology, namespace, claim).
    pub fn port_claims(&self) -> impl Iterator<Item = (&str, &NsRef, &PortClaim)> {
        self.others.iter().flat_map(|(n, es)| {
            es.iter().flat_map(move |e| match e {
                Entry::Nat { ns, ports, .. } => ports
                    .iter()
                    .map(|p| (n.as_str(), ns, p))
                    .collect::<Vec<_>>(),
                _ => Vec::new(),
            })
        })
    }
}

/// Held while one run decides about shared objects and acts on it (a flush,
/// a teardown): different topologies evaluate their scripts in parallel,
/// but change the machine one at a time.
pub struct WorldLock {
    _lock: Flock<File>,
}

impl WorldLock {
    pub fn acquire() -> Result<Self, LedgerError> {
        let dir = store::ensure_dir()?;
        // The state directory itself is the lock: no file of its own.
        let file = store::open_dir(&dir).map_err(|source| LedgerError::Dir { dir, source })?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|_| LedgerError::Busy("(all topologies)".into()))?;
        Ok(Self { _lock: lock })
    }
}
