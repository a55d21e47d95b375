//! Per-namespace files, the iproute2 convention: a process run in netns
//! NAME sees each entry of /etc/netns/NAME bind-mounted over the /etc entry
//! of the same name, in a mount namespace of its own whose mounts do not
//! propagate back, with a sysfs that describes NAME's devices — exactly what
//! `ip netns exec NAME` sets up.
//!
//! [`NetnsEntry`] is prepared in the parent (it reads the directory and
//! builds every path) so that [`NetnsEntry::enter`], run in a child between
//! fork and exec, only makes system calls. [`EtcFile`] writes, reads back and
//! removes those files.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::{Mode, SFlag, fchmod, fstat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

pub const ETC: &str = "/etc";
pub const ETC_NETNS: &str = "/etc/netns";

/// A step of entering a namespace, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnterStage {
    Setns,
    UnshareMount,
    SlaveRoot,
    Sysfs,
}

impl EnterStage {
    pub fn as_str(self) -> &'static str {
        match self {
            EnterStage::Setns => "setns(CLONE_NEWNET)",
            EnterStage::UnshareMount => "unshare(CLONE_NEWNS)",
            EnterStage::SlaveRoot => "mount --make-rslave /",
            EnterStage::Sysfs => "mount sysfs on /sys",
        }
    }
    pub(crate) fn code(self) -> u8 {
        self as u8
    }
    pub(crate) fn from_code(c: u8) -> Option<Self> {
        [
            Self::Setns,
            Self::UnshareMount,
            Self::SlaveRoot,
            Self::Sysfs,
        ]
        .into_iter()
        .find(|s| s.code() == c)
    }
}

impl std::fmt::Display for EnterStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

struct Bind {
    src: CString,
    dst: CString,
    /// "netplumb: cannot bind SRC over DST: " — written as is on failure.
    warn: Vec<u8>,
}

/// Everything a child needs to enter network namespace NAME the way
/// `ip netns exec NAME` does, prepared before fork.
pub struct NetnsEntry {
    fd: RawFd,
    /// None: join the network namespace only (a namespace with no name
    /// under /run/netns has no /etc/netns directory either).
    name: Option<CString>,
    binds: Vec<Bind>,
    fail_prefix: Vec<u8>,
}

impl NetnsEntry {
    /// `ns` must stay open until the child has exec'd. A missing or
    /// unreadable /etc/netns/NAME means no binds, as with iproute2.
    pub fn prepare(ns: &File, name: Option<&str>) -> Self {
        let cname = name.and_then(|n| CString::new(n).ok());
        let mut binds = Vec::new();
        // Like iproute2: names that could not be a directory get no binds.
        let usable = name.filter(|n| cname.is_some() && component_ok(n));
        if let Some(name) = usable
            && let Ok(rd) = std::fs::read_dir(format!("{ETC_NETNS}/{name}"))
        {
            let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
            entries.sort();
            for entry in entries {
                let e = entry.as_bytes();
                let mut src = format!("{ETC_NETNS}/{name}/").into_bytes();
                src.extend_from_slice(e);
                let mut dst = format!("{ETC}/").into_bytes();
                dst.extend_from_slice(e);
                let mut warn = b"netplumb: cannot bind ".to_vec();
                warn.extend_from_slice(&src);
                warn.extend_from_slice(b" over ");
                warn.extend_from_slice(&dst);
                warn.extend_from_slice(b": ");
                let (Ok(src), Ok(dst)) = (CString::new(src), CString::new(dst)) else {
                    continue;
                };
                binds.push(Bind { src, dst, warn });
            }
        }
        let shown = name.unwrap_or("(unnamed)");
        Self {
            fd: ns.as_raw_fd(),
            name: cname,
            binds,
            fail_prefix: format!("netplumb: cannot enter netns {shown}: ").into_bytes(),
        }
    }

    /// How many /etc entries will be bound (for tests and `-v`).
    pub fn bind_count(&self) -> usize {
        self.binds.len()
    }

    /// Join the network namespace, then a new mount namespace in which /
    /// is a slave (nothing propagates back), /sys is this namespace's sysfs
    /// and the /etc/netns/NAME entries cover /etc. A bind that fails is
    /// reported on stderr and skipped, as `ip netns exec` does.
    ///
    /// Async-signal-safe: only system calls on data prepared by `prepare`.
    pub fn enter(&self) -> Result<(), (EnterStage, i32)> {
        let err = |s| (s, Errno::last_raw());
        // SAFETY: plain system calls on NUL-terminated strings owned by self
        // and a descriptor the caller keeps open.
        unsafe {
            if libc::setns(self.fd, libc::CLONE_NEWNET) != 0 {
                return Err(err(EnterStage::Setns));
            }
            let Some(name) = &self.name else {
                return Ok(());
            };
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(err(EnterStage::UnshareMount));
            }
            if libc::mount(
                c"".as_ptr(),
                c"/".as_ptr(),
                c"none".as_ptr(),
                libc::MS_SLAVE | libc::MS_REC,
                std::ptr::null(),
            ) != 0
            {
                return Err(err(EnterStage::SlaveRoot));
            }
            let mut flags: libc::c_ulong = 0;
            if libc::umount2(c"/sys".as_ptr(), libc::MNT_DETACH) != 0 {
                // Could not unmount it: overlay it. A read-only sysfs cannot
                // be shadowed by a read-write one.
                let mut st: libc::statvfs = std::mem::zeroed();
                if libc::statvfs(c"/sys".as_ptr(), &mut st) == 0 && st.f_flag & libc::ST_RDONLY != 0
                {
                    flags = libc::MS_RDONLY;
                }
            }
            if libc::mount(
                name.as_ptr(),
                c"/sys".as_ptr(),
                c"sysfs".as_ptr(),
                flags,
                std::ptr::null(),
            ) != 0
            {
                return Err(err(EnterStage::Sysfs));
            }
            for b in &self.binds {
                if libc::mount(
                    b.src.as_ptr(),
                    b.dst.as_ptr(),
                    c"none".as_ptr(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ) != 0
                {
                    let e = Errno::last_raw();
                    write_fd(2, &b.warn);
                    write_errno(2, e);
                    write_fd(2, b"\n");
                }
            }
        }
        Ok(())
    }

    /// For a child that cannot report back otherwise: the whole message on
    /// stderr. Async-signal-safe.
    pub fn report_failure(&self, stage: EnterStage, errno: i32) {
        write_fd(2, &self.fail_prefix);
        write_fd(2, stage.as_str().as_bytes());
        write_fd(2, b": ");
        write_errno(2, errno);
        write_fd(2, b"\n");
    }
}

/// write(2) until done or an error. Async-signal-safe.
pub(crate) fn write_fd(fd: RawFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n <= 0 {
            if n < 0 && Errno::last() == Errno::EINTR {
                continue;
            }
            return;
        }
        buf = &buf[n as usize..];
    }
}

/// "Operation not permitted (os error 1)" without strerror (which may
/// allocate). Async-signal-safe.
pub(crate) fn write_errno(fd: RawFd, errno: i32) {
    let text: &[u8] = match errno {
        libc::EPERM => b"Operation not permitted",
        libc::ENOENT => b"No such file or directory",
        libc::EACCES => b"Permission denied",
        libc::EINVAL => b"Invalid argument",
        libc::EBUSY => b"Device or resource busy",
        libc::ENOMEM => b"Cannot allocate memory",
        libc::ENOSPC => b"No space left on device",
        libc::ENOTDIR => b"Not a directory",
        libc::EROFS => b"Read-only file system",
        _ => b"error",
    };
    write_fd(fd, text);
    write_fd(fd, b" (os error ");
    let mut digits = [0u8; 12];
    let mut i = digits.len();
    let mut v = errno.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    write_fd(fd, &digits[i..]);
    write_fd(fd, b")");
}

/// Why a per-namespace file could not be named, written or removed.
#[derive(Debug, thiserror::Error)]
pub enum EtcError {
    #[error(
        "'{0}' is not a file directly in /etc: per-namespace files are /etc/NAME (each entry of /etc/netns/NS is bound over /etc/NAME, so a subdirectory would hide the host's whole directory)"
    )]
    NotInEtc(String),
    #[error("'{0}' cannot be a namespace's directory under /etc/netns")]
    BadNamespace(String),
    #[error("{0} exists and is not a regular file: refusing to touch it")]
    NotRegular(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// One per-namespace file: /etc/netns/NS/NAME, seen as /etc/NAME inside NS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFile {
    ns: String,
    name: String,
}

fn component_ok(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && s.len() < 255 && !s.contains(['/', '\0'])
}

impl EtcFile {
    /// `path` as the script writes it: `/etc/hosts`, `/etc/resolv.conf`.
    pub fn new(ns: &str, path: &str) -> Result<Self, EtcError> {
        if !component_ok(ns) {
            return Err(EtcError::BadNamespace(ns.to_string()));
        }
        let name = path
            .strip_prefix("/etc/")
            .filter(|n| component_ok(n) && *n != "netns")
            .ok_or_else(|| EtcError::NotInEtc(path.to_string()))?;
        Ok(Self {
            ns: ns.to_string(),
            name: name.to_string(),
        })
    }

    /// Where the content lives: /etc/netns/NS/NAME.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("{ETC_NETNS}/{}/{}", self.ns, self.name))
    }

    /// What it covers inside the namespace: /etc/NAME.
    pub fn target(&self) -> PathBuf {
        PathBuf::from(format!("{ETC}/{}", self.name))
    }

    /// Without /etc/NAME on the host, `ip netns exec` (and netplumb) cannot
    /// bind over it: the file is written but nothing sees it.
    pub fn target_exists(&self) -> bool {
        self.target().exists()
    }

    fn io(&self, path: PathBuf) -> impl FnOnce(Errno) -> EtcError {
        move |e| EtcError::Io {
            path,
            source: io::Error::from(e),
        }
    }

    /// Open /etc/netns/NS without following a symlink anywhere on the way
    /// (a planted link must not redirect the write); create the directories
    /// when `create`.
    fn ns_dir(&self, create: bool) -> Result<Option<OwnedFd>, EtcError> {
        let dir = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let etc = nix::fcntl::open(ETC, dir, Mode::empty()).map_err(self.io(ETC.into()))?;
        let mut cur = etc;
        let mut shown = PathBuf::from(ETC);
        for part in ["netns", self.ns.as_str()] {
            shown.push(part);
            if create {
                match mkdirat(&cur, part, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(self.io(shown)(e)),
                }
            }
            cur = match openat(&cur, part, dir, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if !create => return Ok(None),
                Err(Errno::ELOOP | Errno::ENOTDIR) => return Err(EtcError::NotRegular(shown)),
                Err(e) => return Err(self.io(shown)(e)),
            };
        }
        Ok(Some(cur))
    }

    fn read_in(&self, dir: &OwnedFd) -> Result<Option<Vec<u8>>, EtcError> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = match openat(dir, self.name.as_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => return Err(EtcError::NotRegular(self.path())),
            Err(e) => return Err(self.io(self.path())(e)),
        };
        let st = fstat(&fd).map_err(self.io(self.path()))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            return Err(EtcError::NotRegular(self.path()));
        }
        let mut buf = Vec::new();
        File::from(fd)
            .read_to_end(&mut buf)
            .map_err(|e| EtcError::Io {
                path: self.path(),
                source: e,
            })?;
        Ok(Some(buf))
    }

    /// The content now, for drift checks; None when there is no file.
    pub fn read(&self) -> Result<Option<Vec<u8>>, EtcError> {
        match self.ns_dir(false)? {
            None => Ok(None),
            Some(dir) => self.read_in(&dir),
        }
    }

    /// Replace the file atomically (a reader sees the old or the new
    /// content, never a part), mode 0644. Returns what was there before:
    /// None when there was no file — the caller decides ownership from it
    /// (a file that existed is adopted, not owned).
    pub fn write(&self, content: &[u8]) -> Result<Option<Vec<u8>>, EtcError> {
        let Some(dir) = self.ns_dir(true)? else {
            return Err(self.io(self.path())(Errno::ENOENT));
        };
        let before = self.read_in(&dir)?;
        let tmp = format!(".{}.netplumb-tmp", self.name);
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(0o644);
        let fd = match openat(&dir, tmp.as_str(), flags, mode) {
            Ok(fd) => fd,
            // Left by a write that was killed half-way: no one's file.
            Err(Errno::EEXIST) => {
                let _ = unlinkat(&dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
                openat(&dir, tmp.as_str(), flags, mode).map_err(self.io(self.path()))?
            }
            Err(e) => return Err(self.io(self.path())(e)),
        };
        let res = (|| {
            fchmod(&fd, mode)?;
            let mut f = File::from(fd);
            f.write_all(content).map_err(io_errno)?;
            f.sync_all().map_err(io_errno)?;
            renameat(&dir, tmp.as_str(), &dir, self.name.as_str())?;
            // SAFETY: fsync on a directory descriptor we own.
            unsafe { libc::fsync(dir.as_fd().as_raw_fd()) };
            Ok(())
        })();
        if let Err(e) = res {
            let _ = unlinkat(&dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
            return Err(self.io(self.path())(e));
        }
        Ok(before)
    }

    /// Remove the file, then /etc/netns/NS and /etc/netns when that left
    /// them empty. Returns whether there was a file.
    pub fn remove(&self) -> Result<bool, EtcError> {
        let Some(dir) = self.ns_dir(false)? else {
            return Ok(false);
        };
        // Refuse to unlink a directory or anything that is not our kind.
        if self.read_in(&dir)?.is_none() {
            return Ok(false);
        }
        unlinkat(&dir, self.name.as_str(), UnlinkatFlags::NoRemoveDir)
            .map_err(self.io(self.path()))?;
        drop(dir);
        // Others' files keep the directories: ENOTEMPTY is the answer then.
        let _ = std::fs::remove_dir(format!("{ETC_NETNS}/{}", self.ns));
        let _ = std::fs::remove_dir(ETC_NETNS);
        Ok(true)
    }
}

fn io_errno(e: io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_direct_entries_of_etc() {
        let f = EtcFile::new("web", "/etc/hosts").unwrap();
        assert_eq!(f.path(), PathBuf::from("/etc/netns/web/hosts"));
        assert_eq!(f.target(), PathBuf::from("/etc/hosts"));
        for bad in [
            "hosts",
            "/etc",
            "/etc/",
            "/etc/..",
            "/etc/.",
            "/etc/../shadow",
            "/etc/ssl/certs/x.pem",
            "/etc//hosts",
            "/etc/netns",
            "/tmp/hosts",
            "/etcx/hosts",
            "/etc/a\0b",
        ] {
            assert!(
                matches!(EtcFile::new("web", bad), Err(EtcError::NotInEtc(_))),
                "{bad}"
            );
        }
        for bad in ["", ".", "..", "a/b"] {
            assert!(
                matches!(
                    EtcFile::new(bad, "/etc/hosts"),
                    Err(EtcError::BadNamespace(_))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            EtcFile::new("web", "/etc/ssl/x").unwrap_err().to_string(),
            "'/etc/ssl/x' is not a file directly in /etc: per-namespace files are /etc/NAME (each entry of /etc/netns/NS is bound over /etc/NAME, so a subdirectory would hide the host's whole directory)"
        );
    }
}
