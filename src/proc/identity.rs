//! Which process a pid names. A pid alone is not an identity: after the
//! process exits the kernel hands the number to the next fork. The start
//! time (field 22 of /proc/PID/stat, clock ticks since boot) tells two
//! holders of one pid apart, and the boot id tells two boots apart.
//! Signals go through pidfds opened *before* the start time is re-checked,
//! so the check and the signal are about the same process.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use super::ExitInfo;

/// The fields of /proc/PID/stat that netplumb uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub comm: String,
    /// `R`, `S`, `D`, `Z` (exited, not yet reaped), …
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// Clock ticks after boot at which the process was forked (exec keeps it).
    pub start_time: u64,
}

impl Stat {
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// Parse one /proc/PID/stat line. The command name sits in parentheses and
/// may itself hold spaces and ')' — the fields start after the *last* ')'.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = line[..open].trim().parse().ok()?;
    let comm = line[open + 1..close].to_string();
    let rest: Vec<&str> = line[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    let field = |n: usize| rest.get(n - 3).copied();
    let state = field(3)?.chars().next()?;
    Some(Stat {
        pid,
        comm,
        state,
        ppid: field(4)?.parse().ok()?,
        pgrp: field(5)?.parse().ok()?,
        session: field(6)?.parse().ok()?,
        start_time: field(22)?.parse().ok()?,
    })
}

pub fn read_stat(pid: i32) -> io::Result<Stat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&s).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unreadable /proc/{pid}/stat"),
        )
    })
}

/// This boot's id: a reboot makes every recorded pid meaningless.
pub fn boot_id() -> io::Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?
        .trim()
        .to_string())
}

/// What the caller must record (write-ahead) for a process it starts, and
/// all that `stop` needs later — also from another netplumb process, after
/// this one was killed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "RawIdentity")]
pub struct Identity {
    pub pid: i32,
    /// Field 22 of /proc/PID/stat.
    pub start_time: u64,
    /// /proc/sys/kernel/random/boot_id at start.
    pub boot_id: String,
    /// The process's own cgroup v2 directory, when one could be made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<PathBuf>,
}

#[derive(serde::Deserialize)]
struct RawIdentity {
    pid: i32,
    start_time: u64,
    boot_id: String,
    #[serde(default)]
    cgroup: Option<PathBuf>,
}

/// A record is read back from disk: refuse values that would make a
/// signal reach more than one process (pid ≤ 1 means "everyone", "my
/// group" or init).
impl TryFrom<RawIdentity> for Identity {
    type Error = String;
    fn try_from(r: RawIdentity) -> Result<Self, String> {
        if r.pid <= 1 {
            return Err(format!("pid {} cannot be a recorded process", r.pid));
        }
        let id_ok = r.boot_id.len() == 36
            && r.boot_id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'-');
        if !id_ok {
            return Err(format!("'{}' is not a boot id", r.boot_id));
        }
        Ok(Identity {
            pid: r.pid,
            start_time: r.start_time,
            boot_id: r.boot_id,
            cgroup: r.cgroup,
        })
    }
}

/// Is the recorded process still there?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Running,
    /// Gone, or exited and not yet reaped by its parent.
    Exited,
    /// Another process holds the pid now: never signal it.
    Reused,
    /// Recorded in an earlier boot.
    OtherBoot,
}

impl std::fmt::Display for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Liveness::Running => "running",
            Liveness::Exited => "exited",
            Liveness::Reused => "exited (pid reused)",
            Liveness::OtherBoot => "exited (rebooted)",
        })
    }
}

impl Identity {
    /// The identity of `pid` as it is now.
    pub fn of(pid: i32) -> io::Result<Self> {
        Ok(Self {
            pid,
            start_time: read_stat(pid)?.start_time,
            boot_id: boot_id()?,
            cgroup: None,
        })
    }

    pub fn same_boot(&self) -> bool {
        boot_id().is_ok_and(|b| b == self.boot_id)
    }

    pub fn liveness(&self) -> Liveness {
        if !self.same_boot() {
            return Liveness::OtherBoot;
        }
        match read_stat(self.pid) {
            Err(_) => Liveness::Exited,
            Ok(s) if s.start_time != self.start_time => Liveness::Reused,
            Ok(s) if s.is_zombie() => Liveness::Exited,
            Ok(_) => Liveness::Running,
        }
    }

    /// A pidfd for the recorded process, or None when it is gone or the pid
    /// now names another process.
    pub(crate) fn pidfd(&self) -> Option<PidFd> {
        if !self.same_boot() {
            return None;
        }
        PidFd::open_if(self.pid, self.start_time)
    }

    /// How long the process has been running (for `ps`).
    pub fn uptime(&self) -> Option<Duration> {
        let up: f64 = std::fs::read_to_string("/proc/uptime")
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if hz <= 0 {
            return None;
        }
        let started = self.start_time as f64 / hz as f64;
        Some(Duration::from_secs_f64((up - started).max(0.0)))
    }
}

/// A process handle that cannot be confused with a later holder of the pid.
#[derive(Debug)]
pub(crate) struct PidFd {
    fd: OwnedFd,
    pub pid: i32,
}

impl PidFd {
    pub fn open(pid: i32) -> io::Result<Self> {
        if pid <= 1 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this descriptor; we own it.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd as i32) },
            pid,
        })
    }

    /// The handle is opened first and the start time compared after: if the
    /// pid was reused before the open, the times differ; if the process
    /// exits after it, signals through the fd fail instead of reaching a
    /// newcomer.
    pub fn open_if(pid: i32, start_time: u64) -> Option<Self> {
        let fd = Self::open(pid).ok()?;
        match read_stat(pid) {
            Ok(s) if s.start_time == start_time && !s.is_zombie() => Some(fd),
            _ => None,
        }
    }

    /// Ok(false): the process has already exited.
    pub fn signal(&self, sig: i32) -> io::Result<bool> {
        // SAFETY: pidfd_send_signal(2) with our own fd and no siginfo.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            Ok(false)
        } else {
            Err(e)
        }
    }

    /// Reap the process if it is netplumb's child and has exited. By pidfd,
    /// not pid: a pid already reaped elsewhere may name a newer child.
    pub fn reap(&self) -> Reaped {
        // SAFETY: waitid(2) on our pidfd with a zeroed siginfo to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                self.fd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            )
        };
        if r != 0 {
            return Reaped::NotOurs;
        }
        // SAFETY: waitid filled a SIGCHLD siginfo (or left it zeroed).
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Reaped::Running;
        }
        Reaped::Exited(match info.si_code {
            libc::CLD_EXITED => ExitInfo::Code(status),
            libc::CLD_KILLED | libc::CLD_DUMPED => ExitInfo::Signal(status),
            _ => ExitInfo::Unknown,
        })
    }

    /// A pidfd turns readable when its process exits.
    pub fn has_exited(&self) -> bool {
        wait_any_exit(std::slice::from_ref(self), Duration::ZERO)
    }
}

pub(crate) enum Reaped {
    Exited(ExitInfo),
    Running,
    /// Not netplumb's child (or already reaped).
    NotOurs,
}

/// Wait until one of `fds` has exited, or `timeout`. True if one has.
pub(crate) fn wait_any_exit<'a>(
    fds: impl IntoIterator<Item = &'a PidFd>,
    timeout: Duration,
) -> bool {
    let mut polls: Vec<libc::pollfd> = fds
        .into_iter()
        .map(|f| libc::pollfd {
            fd: f.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    if polls.is_empty() {
        return false;
    }
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: polls is a valid array of pollfd for its length.
    let n = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, ms) };
    n > 0
}

/// Every process in /proc with its stat (threads are not listed there).
pub(crate) fn all_processes() -> Vec<Stat> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| read_stat(pid).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLEEP: &str = "4242 (sleep) S 4240 4240 4100 34816 4240 4194304 104 0 0 0 0 0 0 0 20 0 1 0 987654 5644288 224 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0";

    #[test]
    fn stat_fields_by_position() {
        let s = parse_stat(SLEEP).unwrap();
        assert_eq!(
            s,
            Stat {
                pid: 4242,
                comm: "sleep".into(),
                state: 'S',
                ppid: 4240,
                pgrp: 4240,
                session: 4100,
                start_time: 987654,
            }
        );
        assert!(!s.is_zombie());
    }

    #[test]
    fn comm_with_spaces_and_parens() {
        let line = SLEEP.replace("(sleep)", "(a) b (c))");
        let s = parse_stat(&line).unwrap();
        assert_eq!(s.comm, "a) b (c)");
        assert_eq!(s.start_time, 987654);
        assert_eq!(s.session, 4100);
        let z = parse_stat(&SLEEP.replace(") S ", ") Z ")).unwrap();
        assert!(z.is_zombie());
    }

    #[test]
    fn truncated_or_garbled_stat_is_refused() {
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("12 (x) S 1 2 3"), None);
        assert_eq!(parse_stat(&SLEEP.replace("987654", "x")), None);
        assert_eq!(parse_stat("12 )x( S"), None);
    }

    #[test]
    fn this_process_reads_back() {
        let me = std::process::id() as i32;
        let s = read_stat(me).unwrap();
        assert_eq!(s.pid, me);
        let id = Identity::of(me).unwrap();
        assert_eq!(id.liveness(), Liveness::Running);
        let wrong = Identity {
            start_time: id.start_time + 1,
            ..id.clone()
        };
        assert_eq!(wrong.liveness(), Liveness::Reused);
        assert!(wrong.pidfd().is_none());
        let other_boot = Identity {
            boot_id: "00000000-0000-0000-0000-000000000000".into(),
            ..id.clone()
        };
        assert_eq!(other_boot.liveness(), Liveness::OtherBoot);
        assert!(id.uptime().is_some());
    }

    #[test]
    fn record_round_trip_and_refusals() {
        let id = Identity {
            pid: 4242,
            start_time: 987654,
            boot_id: "206b27a0-f458-4ad3-aac6-c788826b22ab".into(),
            cgroup: None,
        };
        let j = serde_json::to_string(&id).unwrap();
        assert_eq!(
            j,
            r#"{"pid":4242,"start_time":987654,"boot_id":"206b27a0-f458-4ad3-aac6-c788826b22ab"}"#
        );
        assert_eq!(serde_json::from_str::<Identity>(&j).unwrap(), id);
        for bad in [
            r#"{"pid":-1,"start_time":1,"boot_id":"206b27a0-f458-4ad3-aac6-c788826b22ab"}"#,
            r#"{"pid":1,"start_time":1,"boot_id":"206b27a0-f458-4ad3-aac6-c788826b22ab"}"#,
            r#"{"pid":9,"start_time":1,"boot_id":"../../etc"}"#,
        ] {
            assert!(serde_json::from_str::<Identity>(bad).is_err(), "{bad}");
        }
    }
}
