//! Processes inside namespaces: commands run like `ip netns exec` (with the
//! namespace's /etc/netns files), and long-lived daemons that outlive the
//! run that started them — recorded before they exec, identified by pid and
//! start time, contained in a cgroup v2 where one can be made, stopped with
//! their whole tree, and waited for until ready.
//!
//! Self-contained: nothing here knows about scripts, plans or the ledger.
//! The caller keeps the [`Identity`] a start hands out (write-ahead, before
//! [`Pending::release`] lets the process exec) and gives it back to
//! [`stop`].

// Daemons (src/apply/daemon.rs) and `exec` use most of this; the
// per-namespace files (EtcFile) wait for their object kind.
#![allow(dead_code, unused_imports)]

pub mod argv;
pub mod cgroup;
pub mod etcns;
pub mod identity;
pub mod nsexec;
pub mod ready;
pub mod spawn;
pub mod stop;
#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

pub use argv::{Argv, ArgvError, split_words};
pub use cgroup::{CgroupRoot, TopologyCgroup};
pub use etcns::{EtcError, EtcFile};
pub use identity::{Identity, Liveness};
pub use nsexec::{NsTarget, exit_code, ns_command, run_foreground};
pub use ready::{Ready, log_tail, wait_ready};
pub use spawn::{Daemon, DaemonSpec, Pending};
pub use stop::{StopReport, stop, tree};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitInfo {
    Code(i32),
    Signal(i32),
    /// Not netplumb's child, or reaped elsewhere: only "gone" is known.
    Unknown,
}

impl ExitInfo {
    pub(crate) fn from_wait(st: i32) -> Self {
        if libc::WIFEXITED(st) {
            ExitInfo::Code(libc::WEXITSTATUS(st))
        } else if libc::WIFSIGNALED(st) {
            ExitInfo::Signal(libc::WTERMSIG(st))
        } else {
            ExitInfo::Unknown
        }
    }
}

fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        _ => return None,
    })
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitInfo::Code(c) => write!(f, "exit status {c}"),
            ExitInfo::Signal(s) => match signal_name(*s) {
                Some(n) => write!(f, "killed by signal {s} ({n})"),
                None => write!(f, "killed by signal {s}"),
            },
            ExitInfo::Unknown => f.write_str("exited"),
        }
    }
}

fn secs(d: &Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

fn tail(log: &std::path::Path, lines: &[String]) -> String {
    if lines.is_empty() {
        return format!(" (its log {} is empty)", log.display());
    }
    let mut s = format!("; the end of its log {}:", log.display());
    for l in lines {
        s.push_str("\n    ");
        s.push_str(l);
    }
    s
}

/// Why a process could not be started, waited for or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error(transparent)]
    Argv(#[from] ArgvError),
    #[error("{0}")]
    BadValue(String),
    #[error("'{0}' cannot name a cgroup: use letters, digits, '-', '_', '.' or '@'")]
    BadName(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot start {name}: {stage} failed: {source}")]
    Setup {
        name: String,
        stage: &'static str,
        #[source]
        source: io::Error,
    },
    /// The program was not found (`not_found`) or could not be executed.
    #[error("cannot start {name}: {text}")]
    Exec {
        name: String,
        text: String,
        not_found: bool,
    },
    #[error("cgroup {0} still holds processes of an earlier start: stop them first")]
    CgroupBusy(PathBuf),
    #[error("recorded cgroup '{0}' is not one netplumb makes: refusing to touch it")]
    ForeignCgroup(String),
    #[error("bad ready condition '{text}': {why}")]
    BadReady { text: String, why: &'static str },
    #[error("{name} is not ready after {}: no {} ({awaited})", secs(after), awaited.describe())]
    NotReady {
        name: String,
        awaited: Ready,
        after: Duration,
    },
    #[error(
        "{name} exited before it was ready ({awaited}): {status}{}",
        tail(log, log_tail)
    )]
    Died {
        name: String,
        awaited: Ready,
        status: ExitInfo,
        log: PathBuf,
        log_tail: Vec<String>,
    },
    #[error("interrupted while waiting for {name} to be ready ({awaited})")]
    Interrupted { name: String, awaited: Ready },
    #[error("processes {0:?} are still there after SIGKILL (uninterruptible sleep?)")]
    Survivors(Vec<i32>),
}

impl ProcError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        ProcError::Io {
            what: what.into(),
            source,
        }
    }
}
