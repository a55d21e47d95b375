//! What each topology created, written ahead of every kernel change, and the
//! per-topology lock. Records live under /run/netplumb (NETPLUMB_STATE_DIR
//! overrides) so they vanish at reboot together with what they describe.
//!
//! The record is an append-only log of JSON lines: `{"add":…}` before a
//! change is attempted, `{"del":…}` once it is undone. An append is one
//! write(2), so a `kill -9` between two changes never loses an entry; an
//! entry whose change never happened is harmless, because teardown
//! tolerates "not found".

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::model::{Cidr, IfName, NsName, NsRef, RouteDest};
use crate::plan::LinkChange;

/// One object a topology owns, or one change to an adopted object it must undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Owned {
    Netns {
        ns: NsName,
    },
    Link {
        ns: NsRef,
        name: IfName,
        kind: String,
        /// A veth's other end: deleting that namespace deletes this link too.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer_ns: Option<NsRef>,
    },
    Addr {
        ns: NsRef,
        dev: IfName,
        cidr: Cidr,
    },
    Route {
        ns: NsRef,
        dest: RouteDest,
        via: IpAddr,
    },
    /// A sysctl we changed, with the value to restore.
    Sysctl {
        ns: NsRef,
        key: String,
        old: String,
    },
    /// A change to an adopted link, with the setting to restore.
    LinkAttr {
        ns: NsRef,
        name: IfName,
        old: LinkChange,
    },
    Nat {
        ns: NsRef,
        table: String,
    },
}

impl Owned {
    /// The namespace the object lives in (None for a namespace itself).
    pub fn ns(&self) -> Option<&NsRef> {
        match self {
            Owned::Netns { .. } => None,
            Owned::Link { ns, .. }
            | Owned::Addr { ns, .. }
            | Owned::Route { ns, .. }
            | Owned::Sysctl { ns, .. }
            | Owned::LinkAttr { ns, .. }
            | Owned::Nat { ns, .. } => Some(ns),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Record {
    Add(Owned),
    Del(Owned),
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot use netplumb's state directory {dir}: {source}")]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the record of topology '{name}' in {path}: {source}")]
    Write {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the record of topology '{name}' in {path} is damaged at line {line}: {msg}")]
    Damaged {
        name: String,
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("topology '{0}' is busy: another netplumb holds its lock")]
    Busy(String),
    #[error("'{0}' cannot name a topology: use letters, digits, '-', '_' or '.', at most 64 bytes")]
    BadName(String),
}

/// Where the records live. By default one directory per network namespace
/// under /run/netplumb: a record describes objects of one namespace world,
/// and throwaway namespaces that share the machine's /run (a private
/// `/run/netns` but not a private `/run`) must not see — or claim — each
/// other's objects.
pub fn state_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| match std::env::var_os("NETPLUMB_STATE_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from("/run/netplumb").join(format!("netns-{}", netns_id())),
    })
    .clone()
}

/// This process's network namespace, as an id that is never reused: the
/// kernel's netns cookie (SO_NETNS_COOKIE), else the namespace's inode.
fn netns_id() -> String {
    const SO_NETNS_COOKIE: libc::c_int = 71;
    // SAFETY: a plain socket, a getsockopt into a u64, and close.
    let cookie = unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        let mut v: u64 = 0;
        let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
        let ok = fd >= 0
            && libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                SO_NETNS_COOKIE,
                (&mut v as *mut u64).cast(),
                &mut len,
            ) == 0;
        if fd >= 0 {
            libc::close(fd);
        }
        ok.then_some(v)
    };
    match cookie {
        Some(c) => c.to_string(),
        None => {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata("/proc/self/ns/net")
                .map(|m| format!("ino{}", m.ino()))
                .unwrap_or_else(|_| "unknown".into())
        }
    }
}

pub fn check_topology_name(name: &str) -> Result<(), LedgerError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(LedgerError::BadName(name.to_string()))
    }
}

/// The names of every topology with a record.
pub fn list_topologies() -> Result<Vec<String>, LedgerError> {
    let dir = state_dir();
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(LedgerError::Dir { dir, source }),
    };
    let mut out: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".jsonl"))
                .map(str::to_string)
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Read a topology's record without taking its lock (for conflict checks and `show`).
pub fn read_entries(name: &str) -> Result<Vec<Owned>, LedgerError> {
    let path = state_dir().join(format!("{name}.jsonl"));
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(LedgerError::Write {
                name: name.into(),
                path,
                source,
            });
        }
    };
    let mut entries: Vec<Owned> = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| LedgerError::Write {
            name: name.into(),
            path: path.clone(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        // A torn last line (killed mid-write) carries nothing that happened.
        let rec: Record = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) if e.is_eof() => continue,
            Err(e) => {
                return Err(LedgerError::Damaged {
                    name: name.into(),
                    path,
                    line: i + 1,
                    msg: e.to_string(),
                });
            }
        };
        match rec {
            Record::Add(o) => {
                if !entries.contains(&o) {
                    entries.push(o);
                }
            }
            Record::Del(o) => {
                if let Some(p) = entries.iter().rposition(|e| e == &o) {
                    entries.remove(p);
                }
            }
        }
    }
    Ok(entries)
}

/// An open, locked record of one topology.
pub struct Ledger {
    name: String,
    path: PathBuf,
    log: File,
    entries: Vec<Owned>,
    _lock: Flock<File>,
}

impl Ledger {
    /// Lock and load topology `name`'s record. `wait` decides between blocking
    /// (saying so on stderr) and failing at once when another run holds it.
    pub fn open(name: &str, wait: bool) -> Result<Self, LedgerError> {
        check_topology_name(name)?;
        let dir = state_dir();
        std::fs::create_dir_all(&dir).map_err(|source| LedgerError::Dir {
            dir: dir.clone(),
            source,
        })?;
        let lock_path = dir.join(format!("{name}.lock"));
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| LedgerError::Dir {
                dir: dir.clone(),
                source,
            })?;
        let lock = match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((f, _)) => {
                if !wait {
                    return Err(LedgerError::Busy(name.into()));
                }
                eprintln!(
                    "netplumb: waiting for topology '{name}' (another netplumb is working on it)"
                );
                Flock::lock(f, FlockArg::LockExclusive)
                    .map_err(|_| LedgerError::Busy(name.into()))?
            }
        };
        let path = dir.join(format!("{name}.jsonl"));
        let entries = read_entries(name)?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| LedgerError::Write {
                name: name.into(),
                path: path.clone(),
                source,
            })?;
        Ok(Self {
            name: name.into(),
            path,
            log,
            entries,
            _lock: lock,
        })
    }

    pub fn entries(&self) -> &[Owned] {
        &self.entries
    }

    fn append(&mut self, recs: &[Record]) -> Result<(), LedgerError> {
        let mut buf = Vec::new();
        for r in recs {
            // Serialising plain enums of strings cannot fail.
            if let Ok(line) = serde_json::to_string(r) {
                buf.extend_from_slice(line.as_bytes());
                buf.push(b'\n');
            }
        }
        self.log
            .write_all(&buf)
            .map_err(|source| LedgerError::Write {
                name: self.name.clone(),
                path: self.path.clone(),
                source,
            })
    }

    /// Record, ahead of the kernel change, objects about to be created.
    pub fn add(&mut self, owned: &[Owned]) -> Result<(), LedgerError> {
        let fresh: Vec<Owned> = owned
            .iter()
            .filter(|o| !self.entries.contains(o))
            .cloned()
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let recs: Vec<Record> = fresh.iter().cloned().map(Record::Add).collect();
        self.append(&recs)?;
        self.entries.extend(fresh);
        Ok(())
    }

    /// Forget objects once they are gone.
    pub fn remove(&mut self, owned: &[Owned]) -> Result<(), LedgerError> {
        let recs: Vec<Record> = owned.iter().cloned().map(Record::Del).collect();
        self.append(&recs)?;
        for o in owned {
            if let Some(p) = self.entries.iter().rposition(|e| e == o) {
                self.entries.remove(p);
            }
        }
        Ok(())
    }

    /// Rewrite the log as just the live entries (after a successful run),
    /// or remove it when nothing is owned any more.
    pub fn compact(&mut self) -> Result<(), LedgerError> {
        let err = |source| LedgerError::Write {
            name: self.name.clone(),
            path: self.path.clone(),
            source,
        };
        if self.entries.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(err(e)),
            };
        }
        let tmp = self.path.with_extension("jsonl.tmp");
        let mut buf = String::new();
        for o in &self.entries {
            if let Ok(line) = serde_json::to_string(&Record::Add(o.clone())) {
                buf.push_str(&line);
                buf.push('\n');
            }
        }
        std::fs::write(&tmp, buf).map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        self.log = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(err)?;
        Ok(())
    }
}
