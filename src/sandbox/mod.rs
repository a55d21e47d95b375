//! Sandboxes. Plain `--sandbox` runs the whole command in a fresh network +
//! mount namespace (and a user namespace when not root): nothing on the
//! machine is touched and everything vanishes at exit.
//!
//! A *world* is a sandbox that lasts: `sandbox start WORLD` leaves a small
//! holder process in the background that keeps the namespaces alive, and
//! `--sandbox=WORLD CMD` joins them. The holder is PID 1 of a PID namespace
//! of its own, and every process that joins the world is born inside that
//! PID namespace (a joining netplumb forks once after `setns`). When PID 1
//! of a PID namespace exits the kernel kills every other process in it and
//! lets no new one in, so `sandbox stop` ends everything in the world —
//! a daemon that double-forked, a process `exec` left behind, a shell —
//! without cgroups (which an unprivileged user rarely may create) and
//! without walking /proc (which races with forks).
//!
//! Entering a user or mount namespace needs a single-threaded process: all
//! of this runs first thing in main, before any thread exists.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{OFlag, RenameFlags};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::stat::Mode;
use nix::unistd::{getegid, geteuid};
use serde::{Deserialize, Serialize};

use crate::cli::{Cli, Cmd, SandboxCmd};

mod commands;
mod enter;
mod holder;
mod registry;

pub use commands::{Ctx, run};
use enter::*;
use holder::*;
use registry::*;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot set up the sandbox: {what}: {err}")]
    Setup { what: String, err: String },
    #[error(
        "'{0}' is not a sandbox world name: use letters, digits, '-', '_' and '.', at most 64, not starting with '.' or '-'"
    )]
    BadName(String),
    #[error("no sandbox world '{0}'")]
    NoWorld(String),
    #[error("sandbox world '{world}' is already running (holder pid {pid}, up {age})")]
    Running {
        world: String,
        pid: i32,
        age: String,
    },
    #[error("`netplumb sandbox …` manages worlds from outside: drop --sandbox")]
    SandboxFlag,
    #[error("already inside sandbox world '{0}'")]
    Inside(String),
    #[error("the sandbox registry {dir}: {err}")]
    Registry { dir: String, err: String },
    #[error("cannot enter sandbox world '{world}': {err}")]
    Enter { world: String, err: String },
    #[error("the holder of sandbox world '{world}' failed to start: {err}")]
    Holder { world: String, err: String },
    #[error("sandbox world '{world}' (holder pid {pid}) did not end")]
    Stuck { world: String, pid: i32 },
    #[error("cannot run {shell}: {err}")]
    Shell { shell: String, err: String },
}

impl SandboxError {
    pub fn help(&self) -> Option<String> {
        match self {
            SandboxError::NoWorld(w) => Some(format!(
                "start it with `netplumb sandbox start {w}`; `netplumb sandbox list` shows the running ones"
            )),
            SandboxError::Running { world, .. } => Some(format!(
                "use it with `netplumb --sandbox={world} …`, or end it with `netplumb sandbox stop {world}`"
            )),
            SandboxError::Inside(_) => {
                Some("leave the world's shell first (exit), then run it from outside".into())
            }
            SandboxError::Setup { .. } => Some(
                "unprivileged user namespaces must be allowed (sysctl user.max_user_namespaces)"
                    .into(),
            ),
            _ => None,
        }
    }

    /// Usage mistakes exit 2 like clap's own; the rest 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            SandboxError::SandboxFlag | SandboxError::BadName(_) => 2,
            _ => 1,
        }
    }
}

fn e(what: &str, err: impl std::fmt::Display) -> SandboxError {
    SandboxError::Setup {
        what: what.into(),
        err: err.to_string(),
    }
}

/// Everything main must do about sandboxes before anything else: enter the
/// throwaway sandbox or a world, or become a world's holder.
pub fn early(cli: &Cli) -> Result<(), SandboxError> {
    if let Cmd::Sandbox(c) = &cli.cmd {
        if cli.sandbox.is_some() {
            return Err(SandboxError::SandboxFlag);
        }
        return match c {
            SandboxCmd::Hold { world } => hold(world),
            SandboxCmd::Shell { world } => enter_world(world),
            SandboxCmd::Start { world } | SandboxCmd::Stop { world } => {
                check_world(world)?;
                if let Some(w) = current_world() {
                    return Err(SandboxError::Inside(w));
                }
                Ok(())
            }
            SandboxCmd::List => {
                if let Some(w) = current_world() {
                    return Err(SandboxError::Inside(w));
                }
                Ok(())
            }
        };
    }
    match &cli.sandbox {
        // `test` builds in a fresh sandbox of its own unless it is to keep
        // the topology up (then in the world it runs in).
        None if test_isolated(&cli.cmd) => enter(),
        None => Ok(()),
        Some(None) => enter(),
        Some(Some(w)) => enter_world(w),
    }
}

/// `netplumb test` without `--keep`: a throwaway sandbox.
pub fn test_isolated(cmd: &Cmd) -> bool {
    matches!(cmd, Cmd::Test { keep: false, .. })
}

pub fn enter() -> Result<(), SandboxError> {
    unshare_private(CloneFlags::empty())?;
    // SAFETY: still single-threaded (see the module comment).
    unsafe { std::env::set_var("NETPLUMB_STATE_DIR", "/run/netplumb") };
    Ok(())
}

/// New network + mount (+ user when not root, + `extra`) namespaces with a
/// private /run (netns directory, records) and this namespace's /sys.
fn unshare_private(extra: CloneFlags) -> Result<(), SandboxError> {
    let uid = geteuid();
    let gid = getegid();
    if uid.is_root() {
        unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS | extra)
            .map_err(|x| e("unshare", x))?;
    } else {
        unshare(
            CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS | extra,
        )
        .map_err(|x| e("unshare (are unprivileged user namespaces allowed?)", x))?;
        std::fs::write("/proc/self/setgroups", "deny").map_err(|x| e("setgroups", x))?;
        std::fs::write("/proc/self/uid_map", format!("0 {uid} 1")).map_err(|x| e("uid_map", x))?;
        std::fs::write("/proc/self/gid_map", format!("0 {gid} 1")).map_err(|x| e("gid_map", x))?;
    }
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|x| e("make / private", x))?;
    // A private /run: our own netns directory and state, gone at exit.
    mount(
        Some("tmpfs"),
        "/run",
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=755"),
    )
    .map_err(|x| e("mount tmpfs on /run", x))?;
    for d in ["/run/netns", "/run/netplumb"] {
        std::fs::create_dir_all(d).map_err(|x| e(d, x))?;
    }
    // Like every namespace netplumb makes: lo up, so the sandbox's own
    // addresses answer (`ping-all` from the host side of the sandbox).
    lo_up().map_err(|x| e("set lo up", x))?;
    // Tools run with `exec` read /sys/class/net; show them this namespace.
    let _ = mount(
        Some("sysfs"),
        "/sys",
        Some("sysfs"),
        MsFlags::empty(),
        None::<&str>,
    );
    Ok(())
}

fn lo_up() -> Result<(), Errno> {
    // SAFETY: a datagram socket for the interface ioctls, owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: fd is fresh and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; zero is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    ifr.ifr_name[0] = b'l' as libc::c_char;
    ifr.ifr_name[1] = b'o' as libc::c_char;
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we pass.
    unsafe {
        if libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) != 0 {
            return Err(Errno::last());
        }
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(fd.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) != 0 {
            return Err(Errno::last());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- names

pub fn check_world(w: &str) -> Result<(), SandboxError> {
    let ok = !w.is_empty()
        && w.len() <= 64
        && !w.starts_with(['.', '-'])
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(SandboxError::BadName(w.to_string()))
    }
}

/// The world this process already runs in: PID 1 of our PID namespace
/// (the world's own /proc) is that world's holder. Not the environment:
/// a variable can be stale or cleared, and inside a world the registry's
/// pids are another namespace's numbers, so acting on them from there
/// would take a live world for a dead one.
fn current_world() -> Option<String> {
    let cmdline = std::fs::read("/proc/1/cmdline").ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let holder = args.len() >= 4 && args[1] == b"sandbox" && args[2] == b"hold";
    let w = String::from_utf8(args.get(3)?.to_vec()).ok()?;
    (holder && check_world(&w).is_ok()).then_some(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_names() {
        for ok in ["default", "w", "lab-1", "a.b_c"] {
            assert!(check_world(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "-x", "a/b", "a b", "..", &"x".repeat(65)] {
            assert!(check_world(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ages() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(125), "2m05s");
        assert_eq!(age(3 * 3600 + 60), "3h01m");
        assert_eq!(age(2 * 86400 + 3600), "2d01h");
    }

    #[test]
    fn stat_tells_live_zombie_and_gone() {
        // A command name with a space and a parenthesis, as /proc shows it.
        let dir = std::env::temp_dir().join(format!("np-stat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let odd = dir.join("a) b");
        std::os::unix::fs::symlink("/bin/sleep", &odd).unwrap();
        let mut c = Command::new(&odd).arg("5").spawn().unwrap();
        let pid = c.id() as i32;
        let (state, ticks) = proc_stat(pid).unwrap();
        assert!(matches!(state, 'S' | 'R'), "{state}");
        assert!(ticks > 0);
        c.kill().unwrap();
        let t0 = Instant::now();
        while proc_stat(pid).map(|s| s.0) != Some('Z') && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(proc_stat(pid), Some(('Z', ticks)));
        c.wait().unwrap();
        assert_eq!(proc_stat(pid), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
