//! What each topology owns, written ahead of every kernel change, and the
//! locks. Records live under /run/netplumb (NETPLUMB_STATE_DIR overrides) so
//! they vanish at reboot together with what they describe.
//!
//! A record is an append-only log of JSON lines: `{"add":…}` before a change
//! is attempted, `{"del":…}` once it is undone or confirmed under a fuller
//! identity. An append is one write(2), so a `kill -9` between two changes
//! never loses an entry; an entry whose change never happened is harmless,
//! because an object is only deleted when its identity matches.

mod entry;
mod labnames;
mod positions;
mod slots;
mod store;
mod world;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use positions::Positions;
use slots::Slots;

pub use entry::{
    DaemonName, End, Entry, EtcPath, MadeKind, PortClaim, ReadyText, SysctlKey, SysctlValue,
    TableName,
};
pub use store::{ensure_dir, netns_id, open_read, state_dir, write_atomic};
pub use world::{World, WorldLock};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Record {
    Add(Entry),
    Del(Entry),
}

/// A `Record` written from a borrowed entry (the same line): the log is
/// written without copying the entries it names.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum RecordRef<'a> {
    Add(&'a Entry),
    Del(&'a Entry),
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot use netplumb's state directory {dir}: {source}")]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("netplumb's state directory {dir} is not safe to trust: {why}")]
    Unsafe { dir: PathBuf, why: &'static str },
    #[error("cannot write the record of topology '{name}' in {path}: {source}")]
    Write {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the record of topology '{name}' ({path}) is damaged at line {line}: {msg}")]
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

impl LedgerError {
    pub fn help(&self) -> Option<String> {
        match self {
            LedgerError::Unsafe { dir, .. } => Some(format!(
                "make it a directory owned by you with mode 0700 (chown; chmod 700 {}), or point NETPLUMB_STATE_DIR elsewhere",
                dir.display()
            )),
            LedgerError::Damaged { name, .. } => Some(format!(
                "fix or remove that line; `netplumb down --force-forget {name}` forgets the record without touching the kernel"
            )),
            LedgerError::Busy(_) => Some("or pass --no-wait to fail at once".into()),
            LedgerError::Dir { source, .. }
                if matches!(
                    source.raw_os_error(),
                    Some(libc::EACCES | libc::EPERM | libc::EROFS)
                ) =>
            {
                Some("run as root or add --sandbox".into())
            }
            _ => None,
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

fn record_path(name: &str) -> PathBuf {
    state_dir().join(format!("{name}.jsonl"))
}

/// The names of every topology with a record.
pub fn list_topologies() -> Result<Vec<String>, LedgerError> {
    let Some(dir) = store::dir_exists()? else {
        return Ok(Vec::new());
    };
    let rd = std::fs::read_dir(&dir).map_err(|source| LedgerError::Dir {
        dir: dir.clone(),
        source,
    })?;
    let mut out: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".jsonl"))
                .filter(|n| check_topology_name(n).is_ok())
                .map(str::to_string)
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Has a run of this topology ever taken its lock here (even one killed
/// before it recorded anything)?
pub fn was_started(name: &str) -> bool {
    check_topology_name(name).is_ok() && state_dir().join(format!("{name}.lock")).exists()
}

/// Read a topology's record without taking its lock. Every line must parse
/// into the validated types, the last one included: a torn or planted line
/// is an error naming it, never skipped.
pub fn read_entries(name: &str) -> Result<Vec<Entry>, LedgerError> {
    read_counted(name).map(|(e, _)| e)
}

/// The entries, and how many lines of the record compaction would drop.
fn read_counted(name: &str) -> Result<(Vec<Entry>, usize), LedgerError> {
    check_topology_name(name)?;
    let path = record_path(name);
    let err = |source| LedgerError::Write {
        name: name.into(),
        path: path.clone(),
        source,
    };
    let file = match store::open_read(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(err(e)),
    };
    let mut entries = Slots::new(Vec::new());
    let mut lines = 0;
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    let mut n = 0;
    loop {
        line.clear();
        let got = reader.read_line(&mut line).map_err(err)?;
        if got == 0 {
            break;
        }
        n += 1;
        let damaged = |msg: String| LedgerError::Damaged {
            name: name.into(),
            path: path.clone(),
            line: n,
            msg,
        };
        if !line.ends_with('\n') {
            return Err(damaged(
                "the line is cut short (a write did not finish)".into(),
            ));
        }
        lines += 1;
        if line.trim().is_empty() {
            continue;
        }
        let rec: Record = serde_json::from_str(&line).map_err(|e| damaged(e.to_string()))?;
        match rec {
            Record::Add(o) => {
                if entries.find_last(&o).is_none() {
                    entries.push(o);
                }
            }
            Record::Del(o) => {
                if let Some(p) = entries.find_last(&o) {
                    entries.take(p);
                }
            }
        }
    }
    let garbage = lines - entries.len();
    Ok((entries.into_vec(), garbage))
}

/// Up to this many entries to replace or remove, each is found by a scan;
/// more, through an index of all (`Slots`).
const FEW: usize = 8;

/// An open, locked record of one topology.
pub struct Ledger {
    name: String,
    path: PathBuf,
    log: std::fs::File,
    entries: Vec<Entry>,
    /// Where each of `entries` is, once `replace` needed it; dropped when an
    /// entry is removed (the positions after it move) and after each apply.
    positions: Option<Positions>,
    /// Lines of the log that compaction would drop (a `Del` and the line it
    /// cancels, a repeated `Add`): 0 when the log is already compact.
    garbage: usize,
    /// The log file was removed (nothing owned): reopen it before writing.
    log_gone: bool,
    _lock: Flock<std::fs::File>,
}

impl Ledger {
    /// Lock and load topology `name`'s record. `wait` decides between blocking
    /// (saying so on stderr unless `quiet`) and failing at once when another
    /// run holds it.
    pub fn open(name: &str, wait: bool, quiet: bool) -> Result<Self, LedgerError> {
        check_topology_name(name)?;
        let dir = ensure_dir()?;
        let lock_path = dir.join(format!("{name}.lock"));
        let lock_file = store::open_lock(&lock_path).map_err(|source| LedgerError::Dir {
            dir: dir.clone(),
            source,
        })?;
        let lock = match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((f, _)) => {
                if !wait {
                    return Err(LedgerError::Busy(name.into()));
                }
                if !quiet {
                    eprintln!(
                        "netplumb: waiting for topology '{name}' (another netplumb is working on it)"
                    );
                }
                Flock::lock(f, FlockArg::LockExclusive)
                    .map_err(|_| LedgerError::Busy(name.into()))?
            }
        };
        let path = record_path(name);
        let (entries, garbage) = read_counted(name)?;
        let log = store::open_append(&path).map_err(|source| LedgerError::Write {
            name: name.into(),
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            name: name.into(),
            path,
            log,
            entries,
            positions: None,
            garbage,
            log_gone: false,
            _lock: lock,
        })
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn write_err(&self, source: std::io::Error) -> LedgerError {
        LedgerError::Write {
            name: self.name.clone(),
            path: self.path.clone(),
            source,
        }
    }

    fn append<'a>(
        &mut self,
        recs: impl IntoIterator<Item = RecordRef<'a>>,
    ) -> Result<(), LedgerError> {
        let mut buf = Vec::new();
        for r in recs {
            // Serialising plain enums of strings and numbers cannot fail.
            if serde_json::to_writer(&mut buf, &r).is_ok() {
                buf.push(b'\n');
            }
        }
        if buf.is_empty() {
            return Ok(());
        }
        if self.log_gone {
            self.log = store::open_append(&self.path).map_err(|e| self.write_err(e))?;
            self.log_gone = false;
        }
        self.log.write_all(&buf).map_err(|e| self.write_err(e))
    }

    /// Record, ahead of the kernel change, objects about to be created.
    pub fn add<'a>(
        &mut self,
        entries: impl IntoIterator<Item = &'a Entry>,
    ) -> Result<(), LedgerError> {
        let entries: Vec<&Entry> = entries.into_iter().collect();
        let fresh: Vec<&Entry> = if entries.len() <= FEW {
            entries
                .into_iter()
                .filter(|o| !self.entries.contains(o))
                .collect()
        } else {
            let have: std::collections::HashSet<&Entry> = self.entries.iter().collect();
            entries.into_iter().filter(|o| !have.contains(o)).collect()
        };
        self.append(fresh.iter().map(|e| RecordRef::Add(e)))?;
        self.entries.extend(fresh.into_iter().cloned());
        Ok(())
    }

    /// Replace entries with fuller ones (the identity the kernel gave),
    /// in one append: (old, new) pairs.
    pub fn replace(&mut self, pairs: &[(Entry, Entry)]) -> Result<(), LedgerError> {
        let changed = pairs.iter().filter(|(old, new)| old != new);
        self.append(
            changed
                .clone()
                .flat_map(|(old, new)| [RecordRef::Del(old), RecordRef::Add(new)]),
        )?;
        self.garbage += 2 * changed.count();
        // A few (a REPL statement's) and no index yet: a scan each is
        // cheaper than making one.
        if pairs.len() <= FEW && self.positions.is_none() {
            for (old, new) in pairs {
                if let Some(p) = self.entries.iter().rposition(|e| e == old) {
                    self.entries[p] = new.clone();
                }
            }
            return Ok(());
        }
        let pos = self.positions.get_or_insert_with(Positions::default);
        pos.catch_up(&self.entries);
        for (old, new) in pairs {
            if let Some(p) = pos.find_last(&self.entries, old) {
                pos.set(&mut self.entries, p, new.clone());
            }
        }
        Ok(())
    }

    /// Drop the index `replace` made for the chunks of one apply: kept,
    /// it would live through the rest of the run (the peak of its memory).
    pub fn forget_positions(&mut self) {
        self.positions = None;
    }

    /// Forget objects once they are gone.
    pub fn remove(&mut self, entries: &[Entry]) -> Result<(), LedgerError> {
        self.append(entries.iter().map(RecordRef::Del))?;
        self.garbage += 2 * entries.len();
        if !entries.is_empty() {
            self.positions = None;
        }
        if entries.len() <= FEW {
            for o in entries {
                if let Some(p) = self.entries.iter().rposition(|e| e == o) {
                    self.entries.remove(p);
                }
            }
            return Ok(());
        }
        let mut slots = Slots::new(std::mem::take(&mut self.entries));
        for o in entries {
            if let Some(p) = slots.find_last(o) {
                slots.take(p);
            }
        }
        self.entries = slots.into_vec();
        Ok(())
    }

    /// Rewrite the log as just the live entries (after a successful run),
    /// or remove it when nothing is owned any more. A log that is already
    /// just that (nothing was removed or replaced since) is left as it is.
    pub fn compact(&mut self) -> Result<(), LedgerError> {
        if self.garbage == 0 && !self.entries.is_empty() {
            return Ok(());
        }
        self.rewrite()
    }

    /// Compact only once the log holds at least as many dropped lines as
    /// live ones (the REPL commits after every statement: rewriting the
    /// whole record each time made a statement cost the session's length).
    pub fn compact_amortized(&mut self) -> Result<(), LedgerError> {
        if self.entries.is_empty() || self.garbage > self.entries.len().max(64) {
            return self.rewrite();
        }
        Ok(())
    }

    fn rewrite(&mut self) -> Result<(), LedgerError> {
        if self.entries.is_empty() {
            self.garbage = 0;
            // The next append (a REPL statement after `:down`) makes it anew.
            self.log_gone = true;
            return match std::fs::remove_file(&self.path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(self.write_err(e)),
            };
        }
        let mut buf = Vec::new();
        for o in &self.entries {
            if serde_json::to_writer(&mut buf, &RecordRef::Add(o)).is_ok() {
                buf.push(b'\n');
            }
        }
        store::write_atomic(&self.path, &buf).map_err(|e| self.write_err(e))?;
        self.log = store::open_append(&self.path).map_err(|e| self.write_err(e))?;
        self.garbage = 0;
        self.log_gone = false;
        Ok(())
    }
}

/// A namespace's entry, for the tests of the ledger's indexes.
#[cfg(test)]
fn netns_entry(name: &str, ino: u64) -> Entry {
    Entry::Netns {
        ns: crate::model::NsName::new(name).unwrap(),
        ino: Some(ino),
    }
}

/// Forget a topology's record without touching the kernel (for a record
/// that cannot be read any more). Takes the lock.
pub fn force_forget(name: &str) -> Result<bool, LedgerError> {
    check_topology_name(name)?;
    let dir = ensure_dir()?;
    let lock_file = store::open_lock(&dir.join(format!("{name}.lock")))
        .map_err(|source| LedgerError::Dir { dir, source })?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|_| LedgerError::Busy(name.into()))?;
    let path = record_path(name);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(LedgerError::Write {
            name: name.into(),
            path,
            source,
        }),
    }
}

#[cfg(test)]
mod tests;
