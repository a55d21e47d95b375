//! The per-user registry of worlds (one entry file each, under a 0700
//! directory opened without following symlinks, changed under a flock), and
//! what tells a live holder from a dead one or a reused pid.

use super::*;

/// What the registry keeps of a world: enough to find its holder again and
/// to know a different process that later got the same pid is not it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub world: String,
    pub pid: i32,
    /// Field 22 of /proc/PID/stat: start time in clock ticks since boot.
    pub start_ticks: u64,
    pub boot_id: String,
    /// Unix seconds, for the age `list` shows.
    pub started: u64,
}

/// The per-user directory of world entries, opened without following a
/// symlink at any level netplumb creates, owned by this user, mode 0700.
/// Every change happens under an exclusive flock of the directory.
pub(super) struct Registry {
    pub(super) dir: OwnedFd,
    pub(super) path: PathBuf,
}

pub(super) fn owned_by_me(p: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_dir() && m.uid() == geteuid().as_raw())
}

pub(super) fn registry_base() -> (PathBuf, Vec<String>) {
    let abs = |v: Option<std::ffi::OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(x) = abs(std::env::var_os("XDG_RUNTIME_DIR")).filter(|p| owned_by_me(p)) {
        return (x, vec!["netplumb".into(), "sandbox".into()]);
    }
    if let Some(h) = abs(std::env::var_os("HOME")).filter(|p| owned_by_me(p)) {
        return (
            h,
            vec![".cache".into(), "netplumb".into(), "sandbox".into()],
        );
    }
    // No runtime dir and no home of our own (user nobody): a directory of
    // ours in /tmp, refused if someone else made it first.
    (
        PathBuf::from("/tmp"),
        vec![format!("netplumb-{}", geteuid().as_raw()), "sandbox".into()],
    )
}

impl Registry {
    pub(super) fn open() -> Result<Self, SandboxError> {
        let (base, parts) = registry_base();
        let mut path = base.clone();
        let rerr = |path: &PathBuf, err: String| SandboxError::Registry {
            dir: path.display().to_string(),
            err,
        };
        let mut dir = nix::fcntl::open(
            &base,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|x| rerr(&path, x.to_string()))?;
        let me = geteuid().as_raw();
        for part in &parts {
            path.push(part);
            match nix::sys::stat::mkdirat(&dir, part.as_str(), Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(x) => return Err(rerr(&path, x.to_string())),
            }
            let next = nix::fcntl::openat(
                &dir,
                part.as_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|x| match x {
                Errno::ELOOP | Errno::ENOTDIR => {
                    rerr(&path, "is not a directory (a symlink?)".into())
                }
                x => rerr(&path, x.to_string()),
            })?;
            let st = nix::sys::stat::fstat(&next).map_err(|x| rerr(&path, x.to_string()))?;
            if st.st_uid != me {
                return Err(rerr(
                    &path,
                    format!("belongs to uid {}, not to you", st.st_uid),
                ));
            }
            dir = next;
        }
        // Only the last levels are netplumb's to tighten (not ~/.cache).
        nix::sys::stat::fchmod(&dir, Mode::from_bits_truncate(0o700))
            .map_err(|x| rerr(&path, x.to_string()))?;
        Ok(Self { dir, path })
    }

    pub(super) fn err(&self, err: impl std::fmt::Display) -> SandboxError {
        SandboxError::Registry {
            dir: self.path.display().to_string(),
            err: err.to_string(),
        }
    }

    pub(super) fn lock(&self) -> Result<(), SandboxError> {
        // SAFETY: flock on a descriptor we own; released when it closes.
        if unsafe { libc::flock(self.dir.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(self.err(Errno::last()));
        }
        Ok(())
    }

    pub(super) fn file(world: &str) -> String {
        format!("{world}.json")
    }

    pub(super) fn read(&self, world: &str) -> Result<Option<Entry>, SandboxError> {
        let fd = match nix::fcntl::openat(
            &self.dir,
            Self::file(world).as_str(),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(x) => return Err(self.err(format!("{}: {x}", Self::file(world)))),
        };
        let mut s = String::new();
        File::from(fd)
            .read_to_string(&mut s)
            .map_err(|x| self.err(x))?;
        // An unreadable entry (a crash mid-write cannot leave one: entries
        // are renamed into place) is treated as a dead world.
        Ok(serde_json::from_str(&s).ok().or(Some(Entry {
            world: world.into(),
            pid: 0,
            start_ticks: 0,
            boot_id: String::new(),
            started: 0,
        })))
    }

    /// Write a new entry; fails with Ok(false) when one appeared meanwhile.
    pub(super) fn create(&self, e: &Entry) -> Result<bool, SandboxError> {
        let tmp = format!(".{}.{}.tmp", e.world, std::process::id());
        let fd = nix::fcntl::openat(
            &self.dir,
            tmp.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|x| self.err(x))?;
        let body = serde_json::to_string(e).map_err(|x| self.err(x))?;
        let w = File::from(fd).write_all(body.as_bytes());
        let r = w.map_err(|x| self.err(x)).and_then(|()| {
            nix::fcntl::renameat2(
                &self.dir,
                tmp.as_str(),
                &self.dir,
                Self::file(&e.world).as_str(),
                RenameFlags::RENAME_NOREPLACE,
            )
            .map(|()| true)
            .or_else(|x| {
                if x == Errno::EEXIST {
                    Ok(false)
                } else {
                    Err(self.err(x))
                }
            })
        });
        let _ = nix::unistd::unlinkat(
            &self.dir,
            tmp.as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
        r
    }

    pub(super) fn remove(&self, world: &str) {
        let _ = nix::unistd::unlinkat(
            &self.dir,
            Self::file(world).as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }

    pub(super) fn worlds(&self) -> Result<Vec<String>, SandboxError> {
        let rd = std::fs::read_dir(format!("/proc/self/fd/{}", self.dir.as_raw_fd()))
            .map_err(|x| self.err(x))?;
        let mut out: Vec<String> = rd
            .filter_map(|d| d.ok())
            .filter_map(|d| {
                let n = d.file_name().into_string().ok()?;
                let w = n.strip_suffix(".json")?.to_string();
                check_world(&w).ok().map(|()| w)
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

// ---------------------------------------------------------------- holders

pub(super) fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// (state, start ticks) from /proc/PID/stat; the command name may hold
/// spaces and parentheses, so fields are counted after the last ')'.
pub(super) fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.get(s.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split(' ').collect();
    Some((f.first()?.chars().next()?, f.get(19)?.parse().ok()?))
}

pub(super) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(super) fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

pub(super) fn pidfd_signal(fd: &OwnedFd, sig: libc::c_int) -> bool {
    // SAFETY: pidfd_send_signal(2) with no siginfo.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        ) == 0
    }
}

/// Wait until the process behind `fd` has exited, up to `limit`.
pub(super) fn pidfd_wait(fd: &OwnedFd, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        // SAFETY: one live pollfd.
        let r = unsafe { libc::poll(&mut p, 1, left.as_millis() as libc::c_int) };
        if r > 0 {
            return true;
        }
        if r == 0 || left.is_zero() {
            return false;
        }
    }
}

impl Entry {
    /// A handle on the world's holder when it is still the process the
    /// entry recorded: the pidfd is opened first, then the pid's start time
    /// and the boot are compared, so a pid reused by another process (now
    /// or between the two steps) is never taken for the holder.
    pub(super) fn holder(&self) -> Option<OwnedFd> {
        if self.pid <= 0 || self.boot_id != boot_id() {
            return None;
        }
        let fd = pidfd_open(self.pid)?;
        match proc_stat(self.pid) {
            Some((state, ticks)) if ticks == self.start_ticks && !matches!(state, 'Z' | 'X') => {
                Some(fd)
            }
            _ => None,
        }
    }

    pub(super) fn age(&self) -> String {
        age(now_unix().saturating_sub(self.started))
    }
}

pub fn age(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}
