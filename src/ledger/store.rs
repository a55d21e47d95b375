//! The state directory and its files, handled so that nobody else can steer
//! them: directories made 0700 whatever the umask and refused when someone
//! else owns them or may write to them; files opened without following
//! symlinks; temporary files created exclusively.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::LedgerError;

/// Where the records live. By default one directory per network namespace
/// under /run/netplumb: a record describes objects of one namespace world,
/// and throwaway namespaces that share the machine's /run (a private
/// `/run/netns` but not a private `/run`) must not see — or claim — each
/// other's objects. An empty NETPLUMB_STATE_DIR counts as unset.
pub fn state_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| match std::env::var_os("NETPLUMB_STATE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from("/run/netplumb").join(format!("netns-{}", netns_id())),
    })
    .clone()
}

/// This process's network namespace, as an id that is never reused: the
/// kernel's netns cookie (SO_NETNS_COOKIE), else the namespace's inode.
pub fn netns_id() -> String {
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
        None => std::fs::metadata("/proc/self/ns/net")
            .map(|m| format!("ino{}", m.ino()))
            .unwrap_or_else(|_| "unknown".into()),
    }
}

fn dir_err(dir: &Path, source: std::io::Error) -> LedgerError {
    LedgerError::Dir {
        dir: dir.to_path_buf(),
        source,
    }
}

/// A directory only we may change: ours (or root's, for the shared parent),
/// a real directory, writable by nobody else.
fn check_dir(dir: &Path, parent: bool) -> Result<(), LedgerError> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| dir_err(dir, e))?;
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    let why = if !meta.file_type().is_dir() {
        Some("it is not a directory")
    } else if meta.uid() != euid && !(parent && meta.uid() == 0) {
        Some("another user owns it")
    } else if meta.mode() & 0o022 != 0 {
        Some("other users may write to it")
    } else {
        None
    };
    match why {
        Some(why) => Err(LedgerError::Unsafe {
            dir: dir.to_path_buf(),
            why,
        }),
        None => Ok(()),
    }
}

fn make_dir(dir: &Path, mode: u32) -> Result<(), LedgerError> {
    match std::fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => {
            // The umask may have taken bits away or left some: say exactly.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
                .map_err(|e| dir_err(dir, e))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(dir_err(dir, e)),
    }
}

/// The state directory, created when missing (0700, its parent 0755) and
/// checked: records in a directory someone else can write are not trusted.
pub fn ensure_dir() -> Result<PathBuf, LedgerError> {
    let dir = state_dir();
    if let Some(parent) = dir.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        if let Some(pp) = parent.parent()
            && !pp.as_os_str().is_empty()
        {
            std::fs::create_dir_all(pp).map_err(|e| dir_err(pp, e))?;
        }
        make_dir(parent, 0o755)?;
    }
    if let Some(parent) = dir.parent()
        && parent == Path::new("/run/netplumb")
    {
        check_dir(parent, true)?;
    }
    make_dir(&dir, 0o700)?;
    check_dir(&dir, false)?;
    Ok(dir)
}

/// Is the state directory there at all (nothing recorded when it is not)?
pub fn dir_exists() -> Result<Option<PathBuf>, LedgerError> {
    let dir = state_dir();
    match std::fs::symlink_metadata(&dir) {
        Ok(_) => {
            check_dir(&dir, false)?;
            Ok(Some(dir))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(dir_err(&dir, e)),
    }
}

fn nofollow(o: &mut OpenOptions) -> &mut OpenOptions {
    o.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
}

pub fn open_dir(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

pub fn open_read(path: &Path) -> std::io::Result<File> {
    nofollow(OpenOptions::new().read(true)).open(path)
}

pub fn open_append(path: &Path) -> std::io::Result<File> {
    nofollow(OpenOptions::new().append(true).create(true).mode(0o600)).open(path)
}

pub fn open_lock(path: &Path) -> std::io::Result<File> {
    nofollow(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600),
    )
    .open(path)
}

/// Replace `path` with `bytes` atomically: a temporary file made exclusively
/// beside it (never through a planted symlink), then renamed over it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = nofollow(OpenOptions::new().write(true).create_new(true).mode(0o600)).open(&tmp)?;
    let res = f.write_all(bytes).and_then(|_| f.sync_data());
    match res.and_then(|_| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}
