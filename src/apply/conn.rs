//! Per-namespace handles (the namespace file, an rtnetlink socket, an
//! nf_tables socket), opened on first use and kept for the namespaces used
//! most recently only: a run over thousands of namespaces must not hold
//! two descriptors for each (the customary limit is 1,024).

use std::collections::HashMap;
use std::fs::File;

use netplumb_nft::NftSocket;

use super::netns::{NetnsDir, in_ns};
use super::rtnl::Rtnl;
use crate::kernel::KernelError;
use crate::model::NsRef;

/// Namespaces with open handles at once.
const OPEN: usize = 128;

#[derive(Default)]
struct Conn {
    file: Option<File>,
    rtnl: Option<Rtnl>,
    nft: Option<NftSocket>,
    used: u64,
}

pub struct Conns {
    host: File,
    map: HashMap<NsRef, Conn>,
    tick: u64,
}

impl Conns {
    pub fn new(host: File) -> Self {
        Self {
            host,
            map: HashMap::new(),
            tick: 0,
        }
    }

    /// The entry for `ns`, its namespace file opened; the least recently
    /// used entry is closed when too many are open.
    fn entry(&mut self, dir: &NetnsDir, ns: &NsRef) -> Result<&mut Conn, KernelError> {
        self.tick += 1;
        if !self.map.contains_key(ns) {
            if self.map.len() >= OPEN
                && let Some(old) = self
                    .map
                    .iter()
                    .filter(|(k, _)| **k != NsRef::Host)
                    .min_by_key(|(_, c)| c.used)
                    .map(|(k, _)| k.clone())
            {
                self.map.remove(&old);
            }
            let file = match ns {
                NsRef::Host => None,
                NsRef::Named(n) => Some(dir.open(n)?),
            };
            self.map.insert(
                ns.clone(),
                Conn {
                    file,
                    ..Conn::default()
                },
            );
        }
        let tick = self.tick;
        let c = self
            .map
            .get_mut(ns)
            .ok_or_else(|| KernelError::other("namespace handle vanished"))?;
        c.used = tick;
        Ok(c)
    }

    /// Adopt the handles made with a new namespace.
    pub fn adopt(&mut self, ns: &NsRef, file: File, rtnl: Rtnl) {
        self.map.remove(ns);
        if self.map.len() >= OPEN {
            // Not kept open: reopened when next needed.
            return;
        }
        self.tick += 1;
        self.map.insert(
            ns.clone(),
            Conn {
                file: Some(file),
                rtnl: Some(rtnl),
                nft: None,
                used: self.tick,
            },
        );
    }

    /// Close everything about a namespace that is gone.
    pub fn drop_ns(&mut self, ns: &NsRef) {
        self.map.remove(ns);
    }

    /// The namespace's file (None: the namespace netplumb runs in).
    pub fn file(&mut self, dir: &NetnsDir, ns: &NsRef) -> Result<Option<&File>, KernelError> {
        if *ns == NsRef::Host {
            return Ok(None);
        }
        Ok(self.entry(dir, ns)?.file.as_ref())
    }

    /// A handle on `ns` of the caller's own (a duplicate), to name it by fd
    /// in a request that is sent later.
    pub fn ns_file(&mut self, dir: &NetnsDir, ns: &NsRef) -> Result<File, KernelError> {
        match ns {
            NsRef::Host => self.host.try_clone().map_err(KernelError::from),
            NsRef::Named(_) => match &self.entry(dir, ns)?.file {
                Some(f) => f.try_clone().map_err(KernelError::from),
                None => Err(KernelError::other("namespace handle vanished")),
            },
        }
    }

    pub fn rtnl(&mut self, dir: &NetnsDir, ns: &NsRef) -> Result<&mut Rtnl, KernelError> {
        let c = self.entry(dir, ns)?;
        if c.rtnl.is_none() {
            let sock = in_ns(c.file.as_ref(), || Rtnl::open().map_err(KernelError::from))?;
            c.rtnl = Some(sock);
        }
        c.rtnl
            .as_mut()
            .ok_or_else(|| KernelError::other("socket vanished"))
    }

    pub fn nft(&mut self, dir: &NetnsDir, ns: &NsRef) -> Result<&mut NftSocket, KernelError> {
        let c = self.entry(dir, ns)?;
        if c.nft.is_none() {
            let sock = in_ns(c.file.as_ref(), || {
                NftSocket::open().map_err(KernelError::from)
            })?;
            c.nft = Some(sock);
        }
        c.nft
            .as_mut()
            .ok_or_else(|| KernelError::other("socket vanished"))
    }
}
