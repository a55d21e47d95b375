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

// ---------------------------------------------------------------- registry

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
struct Registry {
    dir: OwnedFd,
    path: PathBuf,
}

fn owned_by_me(p: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_dir() && m.uid() == geteuid().as_raw())
}

fn registry_base() -> (PathBuf, Vec<String>) {
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
    fn open() -> Result<Self, SandboxError> {
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

    fn err(&self, err: impl std::fmt::Display) -> SandboxError {
        SandboxError::Registry {
            dir: self.path.display().to_string(),
            err: err.to_string(),
        }
    }

    fn lock(&self) -> Result<(), SandboxError> {
        // SAFETY: flock on a descriptor we own; released when it closes.
        if unsafe { libc::flock(self.dir.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(self.err(Errno::last()));
        }
        Ok(())
    }

    fn file(world: &str) -> String {
        format!("{world}.json")
    }

    fn read(&self, world: &str) -> Result<Option<Entry>, SandboxError> {
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
    fn create(&self, e: &Entry) -> Result<bool, SandboxError> {
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

    fn remove(&self, world: &str) {
        let _ = nix::unistd::unlinkat(
            &self.dir,
            Self::file(world).as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }

    fn worlds(&self) -> Result<Vec<String>, SandboxError> {
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

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// (state, start ticks) from /proc/PID/stat; the command name may hold
/// spaces and parentheses, so fields are counted after the last ')'.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.get(s.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split(' ').collect();
    Some((f.first()?.chars().next()?, f.get(19)?.parse().ok()?))
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pidfd_signal(fd: &OwnedFd, sig: libc::c_int) -> bool {
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
fn pidfd_wait(fd: &OwnedFd, limit: Duration) -> bool {
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
    fn holder(&self) -> Option<OwnedFd> {
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

    fn age(&self) -> String {
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

// ---------------------------------------------------------------- entering

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let c = CHILD.load(Ordering::SeqCst);
    if c > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(c, sig) };
    }
}

fn ns_id(path: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Join a world: its user namespace first (when it has one of its own),
/// then mount, network and PID namespaces, atomically through the holder's
/// pidfd; then fork so this netplumb itself lives inside the world's PID
/// namespace and ends with it. The parent only waits and passes the exit
/// status on.
fn enter_world(world: &str) -> Result<(), SandboxError> {
    check_world(world)?;
    if let Some(w) = current_world() {
        return if w == world {
            Ok(())
        } else {
            Err(SandboxError::Inside(w))
        };
    }
    let reg = Registry::open()?;
    let entry = reg
        .read(world)?
        .ok_or_else(|| SandboxError::NoWorld(world.into()))?;
    let Some(pidfd) = entry.holder() else {
        // Forget it under the lock, and only if it is still the dead one: a
        // `sandbox start` may have replaced it meanwhile.
        reg.lock()?;
        if reg.read(world)?.is_some_and(|e| e.holder().is_none()) {
            reg.remove(world);
        }
        return Err(SandboxError::NoWorld(world.into()));
    };
    drop(reg);
    let enter_err = |err: String| SandboxError::Enter {
        world: world.into(),
        err,
    };
    let mut flags = 0;
    for (flag, name) in [
        (libc::CLONE_NEWUSER, "user"),
        (libc::CLONE_NEWNS, "mnt"),
        (libc::CLONE_NEWNET, "net"),
        (libc::CLONE_NEWPID, "pid"),
    ] {
        let theirs = ns_id(&format!("/proc/{}/ns/{name}", entry.pid));
        let ours = ns_id(&format!("/proc/self/ns/{name}"));
        if theirs.is_none() {
            return Err(enter_err(format!("cannot read its {name} namespace")));
        }
        if theirs != ours {
            flags |= flag;
        }
    }
    let cwd = std::env::current_dir().ok();
    let cwd_fd = nix::fcntl::open(
        ".",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok();
    // SAFETY: setns(2) on a pidfd we own; single-threaded here.
    if flags != 0 && unsafe { libc::setns(pidfd.as_raw_fd(), flags) } != 0 {
        return Err(enter_err(format!("setns: {}", Errno::last())));
    }
    // Joining a mount namespace moves us to its root: go back to the same
    // directory as seen in the world (a path under the world's private
    // /run does not exist there; then the directory itself, by handle).
    let back = cwd
        .as_ref()
        .is_some_and(|p| std::env::set_current_dir(p).is_ok())
        || cwd_fd
            .as_ref()
            .is_some_and(|fd| nix::unistd::fchdir(fd).is_ok());
    if !back {
        let _ = std::env::set_current_dir("/");
    }
    drop(cwd_fd);
    // SAFETY: single-threaded (see the module comment).
    unsafe { std::env::set_var("NETPLUMB_SANDBOX", world) };
    if flags & libc::CLONE_NEWPID == 0 {
        return Ok(());
    }
    // SAFETY: single-threaded, so fork is safe; the child returns to main.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => Ok(()),
        Ok(nix::unistd::ForkResult::Parent { child }) => wait_child(child.as_raw()),
        Err(x) => Err(enter_err(format!("fork: {x}"))),
    }
}

/// The parent of an entered command: pass SIGTERM/SIGHUP on, leave Ctrl-C
/// to the terminal (the child is in the same process group and gets it),
/// and exit as the child did.
fn wait_child(child: i32) -> ! {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    CHILD.store(child, Ordering::SeqCst);
    let fwd = SigAction::new(
        SigHandler::Handler(forward),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    let ign = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: the handler only reads an atomic and calls kill(2).
    unsafe {
        let _ = sigaction(Signal::SIGTERM, &fwd);
        let _ = sigaction(Signal::SIGHUP, &fwd);
        let _ = sigaction(Signal::SIGINT, &ign);
        let _ = sigaction(Signal::SIGQUIT, &ign);
    }
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child.
        let r = unsafe { libc::waitpid(child, &mut status, 0) };
        if r == child {
            break;
        }
        if r < 0 && Errno::last() != Errno::EINTR {
            std::process::exit(1);
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    };
    std::process::exit(code)
}

// ---------------------------------------------------------------- the holder

fn say(line: &str) {
    let mut o = std::io::stdout();
    let _ = writeln!(o, "{line}");
    let _ = o.flush();
}

/// `sandbox hold WORLD`, started by `sandbox start`: detach, make the
/// namespaces, fork PID 1 of the new PID namespace, report its pid on
/// stdout, and exit. PID 1 reports "ready" once /proc is its own.
fn hold(world: &str) -> Result<(), SandboxError> {
    check_world(world)?;
    let r = (|| {
        nix::unistd::setsid().map_err(|x| e("setsid", x))?;
        unshare_private(CloneFlags::CLONE_NEWPID)
    })();
    if let Err(x) = r {
        say(&format!("error: {x}"));
        std::process::exit(1);
    }
    // SAFETY: single-threaded; the child only makes plain syscalls.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => init(world),
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            say(&format!("pid {child}"));
            std::process::exit(0)
        }
        Err(x) => {
            say(&format!("error: fork: {x}"));
            std::process::exit(1)
        }
    }
}

/// PID 1 of the world: reap orphans, and on SIGTERM (from `sandbox stop`)
/// ask everyone to end, give them a moment, then exit — the kernel kills
/// whatever is left.
fn init(world: &str) -> ! {
    use nix::sys::signal::{SigSet, Signal};
    // The world's own /proc: its processes see their own pids, and
    // /proc/1 is this holder (which `current_world` checks).
    let _ = mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    );
    let _ = std::env::set_current_dir("/");
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        set.add(s);
    }
    // Blocked signals are queued even for a namespace's PID 1, which
    // otherwise ignores every signal it has no handler for.
    let _ = set.thread_block();
    say("ready");
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        // SAFETY: dup2 onto the standard descriptors.
        unsafe {
            for fd in 0..3 {
                libc::dup2(null.as_raw_fd(), fd);
            }
        }
    }
    let _ = world;
    loop {
        match set.wait() {
            Ok(Signal::SIGCHLD) => reap(),
            Ok(_) => break,
            Err(_) => {}
        }
    }
    // SAFETY: kill(-1) from a namespace's PID 1 reaches every other
    // process of the namespace, and only those.
    unsafe { libc::kill(-1, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        reap();
        // SAFETY: signal 0 only checks whether anyone is left.
        if unsafe { libc::kill(-1, 0) } != 0 && Errno::last() == Errno::ESRCH {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::process::exit(0)
}

fn reap() {
    let mut st = 0;
    // SAFETY: waitpid for any child, without blocking.
    while unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) } > 0 {}
}

// ---------------------------------------------------------------- commands

pub struct Ctx {
    pub quiet: bool,
    pub json: bool,
}

pub fn run(c: &SandboxCmd, cx: &Ctx) -> Result<i32, SandboxError> {
    match c {
        SandboxCmd::Start { world } => start(world, cx),
        SandboxCmd::Stop { world } => stop(world, cx),
        SandboxCmd::List => list(cx),
        SandboxCmd::Shell { world } => shell(world, cx),
        // `early` never returns for the holder.
        SandboxCmd::Hold { world } => Err(SandboxError::Holder {
            world: world.clone(),
            err: "hold runs only at start".into(),
        }),
    }
}

fn start(world: &str, cx: &Ctx) -> Result<i32, SandboxError> {
    check_world(world)?;
    let reg = Registry::open()?;
    reg.lock()?;
    if let Some(old) = reg.read(world)? {
        if old.holder().is_some() {
            return Err(SandboxError::Running {
                world: world.into(),
                pid: old.pid,
                age: old.age(),
            });
        }
        reg.remove(world);
    }
    use std::os::unix::process::CommandExt;
    let herr = |err: String| SandboxError::Holder {
        world: world.into(),
        err,
    };
    let mut child = Command::new("/proc/self/exe")
        .arg0("netplumb")
        .args([OsStr::new("sandbox"), OsStr::new("hold"), OsStr::new(world)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .current_dir("/")
        .env_remove("NETPLUMB_SANDBOX")
        .spawn()
        .map_err(|x| herr(x.to_string()))?;
    let mut out = String::new();
    if let Some(mut so) = child.stdout.take() {
        // EOF once the first holder exited and PID 1 said ready (or died).
        let _ = so.read_to_string(&mut out);
    }
    let _ = child.wait();
    let mut pid = None;
    let mut ready = false;
    for l in out.lines() {
        if let Some(x) = l.strip_prefix("error: ") {
            return Err(herr(x.to_string()));
        }
        if let Some(p) = l.strip_prefix("pid ") {
            pid = p.trim().parse::<i32>().ok();
        }
        ready |= l == "ready";
    }
    let (Some(pid), true) = (pid, ready) else {
        return Err(herr(format!("it said {:?}", out.trim())));
    };
    let fd = pidfd_open(pid).ok_or_else(|| herr("it died at once".into()))?;
    let (_, start_ticks) = proc_stat(pid).ok_or_else(|| herr("it died at once".into()))?;
    let entry = Entry {
        world: world.into(),
        pid,
        start_ticks,
        boot_id: boot_id(),
        started: now_unix(),
    };
    if !reg.create(&entry)? {
        pidfd_signal(&fd, libc::SIGKILL);
        return Err(SandboxError::Running {
            world: world.into(),
            pid,
            age: "0s".into(),
        });
    }
    if cx.json {
        println!("{}", serde_json::json!({ "world": world, "pid": pid }));
    } else if !cx.quiet {
        println!("sandbox world '{world}' started (holder pid {pid})");
        println!("  netplumb --sandbox={world} up FILE.rhai   # any command, inside it");
        println!("  netplumb sandbox shell {world}            # a shell inside it");
        println!("  netplumb sandbox stop {world}             # end it and everything in it");
    }
    Ok(0)
}

fn stop(world: &str, cx: &Ctx) -> Result<i32, SandboxError> {
    check_world(world)?;
    let reg = Registry::open()?;
    reg.lock()?;
    let entry = reg
        .read(world)?
        .ok_or_else(|| SandboxError::NoWorld(world.into()))?;
    let Some(fd) = entry.holder() else {
        reg.remove(world);
        if !cx.quiet {
            println!("sandbox world '{world}' was not running (its holder had died); forgot it");
        }
        return Ok(0);
    };
    let t0 = Instant::now();
    // The holder asks everything to end and waits up to 3 s; then the
    // kernel kills the rest. The pidfd turns readable only once every
    // process of the world's PID namespace is gone.
    pidfd_signal(&fd, libc::SIGTERM);
    if !pidfd_wait(&fd, Duration::from_secs(6)) {
        pidfd_signal(&fd, libc::SIGKILL);
        if !pidfd_wait(&fd, Duration::from_secs(5)) {
            return Err(SandboxError::Stuck {
                world: world.into(),
                pid: entry.pid,
            });
        }
    }
    reg.remove(world);
    if !cx.quiet {
        println!(
            "sandbox world '{world}' stopped in {:.2?}, with everything in it",
            t0.elapsed()
        );
    }
    Ok(0)
}

fn list(cx: &Ctx) -> Result<i32, SandboxError> {
    let reg = Registry::open()?;
    reg.lock()?;
    let mut rows = Vec::new();
    for w in reg.worlds()? {
        let Some(entry) = reg.read(&w)? else { continue };
        if entry.holder().is_some() {
            rows.push(entry);
        } else {
            reg.remove(&w);
            if !cx.quiet && !cx.json {
                eprintln!(
                    "forgot sandbox world '{w}': its holder (pid {}) is gone",
                    entry.pid
                );
            }
        }
    }
    if cx.json {
        let v: Vec<_> = rows
            .iter()
            .map(|e| {
                serde_json::json!({
                    "world": e.world,
                    "pid": e.pid,
                    "started": e.started,
                    "age_s": now_unix().saturating_sub(e.started),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(0);
    }
    if rows.is_empty() {
        if !cx.quiet {
            println!("no sandbox worlds running");
        }
        return Ok(0);
    }
    let wide = rows.iter().map(|e| e.world.len()).max().unwrap_or(5).max(5);
    println!("{:<wide$}  {:>8}  AGE", "WORLD", "PID");
    for e in &rows {
        println!("{:<wide$}  {:>8}  {}", e.world, e.pid, e.age());
    }
    Ok(0)
}

/// Already inside the world (`early` entered it): become the user's shell.
fn shell(world: &str, cx: &Ctx) -> Result<i32, SandboxError> {
    use std::os::unix::process::CommandExt;
    let shell = std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into());
    if !cx.quiet && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!(
            "inside sandbox world '{world}' (exit to leave it running; `netplumb sandbox stop {world}` ends it)"
        );
    }
    let err = Command::new(&shell).exec();
    Err(SandboxError::Shell {
        shell: String::from_utf8_lossy(shell.as_bytes()).into_owned(),
        err: err.to_string(),
    })
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
