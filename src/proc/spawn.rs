//! Starting a long-lived process inside a namespace, in two steps so that
//! the caller can record it before it runs anything:
//!
//! 1. [`Pending::spawn`] forks. The child joins its own session, the
//!    namespace (as `ip netns exec` would), its cgroup and its stdio, then
//!    blocks on a pipe. The parent now knows its [`Identity`].
//! 2. The caller writes the identity down, then [`Pending::release`] lets
//!    the child exec the user's command.
//!
//! If the caller dies in between (`kill -9`), the pipe closes and the child
//! exits without running anything; if it drops the [`Pending`], the child is
//! killed. Either way no unrecorded process runs the user's command.
//!
//! The fork is raw (not `std::process::Command`, which waits for the exec
//! inside `spawn`): everything the child needs is prepared before the fork,
//! and the child only makes system calls.

use std::ffi::{CString, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::cgroup::{self, TopologyCgroup};
use super::etcns::{EnterStage, NetnsEntry, write_fd};
use super::identity::{Identity, PidFd, Reaped, boot_id, read_stat};
use super::nsexec::{ENTER_FAILED, NOT_EXECUTABLE, NOT_FOUND, NsTarget};
use super::{Argv, ExitInfo, ProcError};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What to run and how. Serializable and comparable, so that a caller can
/// keep it in its record and restart a process whose options changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct DaemonSpec {
    /// For errors and for its cgroup's name (letters, digits, `-_.@`).
    pub name: String,
    pub argv: Argv,
    /// Set on top of netplumb's own environment (or instead of it, with
    /// `clear_env`).
    pub env: Vec<(String, String)>,
    #[serde(default)]
    pub clear_env: bool,
    /// None: netplumb's working directory.
    pub cwd: Option<PathBuf>,
    /// stdout and stderr are appended here (created 0640 if missing; a
    /// symlink is refused).
    pub log: PathBuf,
}

/// Stages of the child's setup, for the error it reports back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Setsid,
    Enter(EnterStage),
    Chdir,
    Exec,
}

impl Stage {
    fn code(self) -> u8 {
        match self {
            Stage::Setsid => 1,
            Stage::Chdir => 2,
            Stage::Exec => 3,
            Stage::Enter(e) => 16 + e.code(),
        }
    }
    fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(Stage::Setsid),
            2 => Some(Stage::Chdir),
            3 => Some(Stage::Exec),
            c if c >= 16 => EnterStage::from_code(c - 16).map(Stage::Enter),
            _ => None,
        }
    }
    fn describe(self) -> &'static str {
        match self {
            Stage::Setsid => "setsid",
            Stage::Chdir => "chdir to its working directory",
            Stage::Exec => "exec",
            Stage::Enter(e) => e.as_str(),
        }
    }
}

/// Everything the child touches, built before the fork.
struct Prepared {
    // The pointer arrays point into these.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
    /// execvp's search, done by hand: each PATH directory joined with the
    /// program (or the program alone when it holds a '/').
    candidates: Vec<CString>,
    cwd: Option<CString>,
    log: OwnedFd,
    devnull: OwnedFd,
    /// Kept open until the child has exec'd.
    ns_fd: Option<File>,
    entry: Option<NetnsEntry>,
}

/// A descriptor moved above 0–2, so that the child's dup2 onto its stdio
/// cannot clobber it (netplumb may have been started with stdio closed).
fn high(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own returns a new one.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: n was just returned by the kernel and is ours.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both were just returned by the kernel and are ours.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((high(r)?, high(w)?))
}

fn cstring(what: &str, b: Vec<u8>) -> Result<CString, ProcError> {
    CString::new(b).map_err(|_| ProcError::BadValue(format!("{what} contains a NUL byte")))
}

fn prepare(spec: &DaemonSpec, ns: Option<NsTarget<'_>>) -> Result<Prepared, ProcError> {
    let argv = spec.argv.to_cstrings();
    let mut argv_ptrs: Vec<_> = argv.iter().map(|c| c.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());

    let mut env: Vec<(OsString, OsString)> = if spec.clear_env {
        Vec::new()
    } else {
        std::env::vars_os().collect()
    };
    for (k, v) in &spec.env {
        if k.is_empty() || k.contains(['=', '\0']) {
            return Err(ProcError::BadValue(format!(
                "'{k}' cannot be an environment variable's name"
            )));
        }
        env.retain(|(ek, _)| ek.as_bytes() != k.as_bytes());
        env.push((k.into(), v.into()));
    }
    let path_var = env
        .iter()
        .find(|(k, _)| k.as_bytes() == b"PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| DEFAULT_PATH.into());
    let envp = env
        .into_iter()
        .map(|(k, v)| {
            let mut b = k.into_vec();
            b.push(b'=');
            b.extend(v.into_vec());
            cstring("an environment variable", b)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut envp_ptrs: Vec<_> = envp.iter().map(|c| c.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());

    let prog = spec.argv.program();
    let candidates = if prog.contains('/') {
        vec![cstring("the program", prog.as_bytes().to_vec())?]
    } else {
        path_var
            .as_bytes()
            .split(|&b| b == b':')
            .map(|dir| {
                let mut p = if dir.is_empty() {
                    b".".to_vec()
                } else {
                    dir.to_vec()
                };
                p.push(b'/');
                p.extend_from_slice(prog.as_bytes());
                cstring("PATH", p)
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let cwd = spec
        .cwd
        .as_ref()
        .map(|c| cstring("the working directory", c.as_os_str().as_bytes().to_vec()))
        .transpose()?;

    let log = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&spec.log)
        .map_err(|e| ProcError::io(format!("cannot open log file {}", spec.log.display()), e))?;
    let devnull = File::open("/dev/null").map_err(|e| ProcError::io("/dev/null", e))?;
    let high_io = |f: File, what: &str| high(f.into()).map_err(|e| ProcError::io(what, e));
    let log = high_io(log, "log file")?;
    let devnull = high_io(devnull, "/dev/null")?;
    let (ns_file, entry) = match ns {
        None => (None, None),
        Some(t) => {
            let dup = t
                .file
                .try_clone()
                .map_err(|e| ProcError::io("namespace handle", e))?;
            let f = File::from(high_io(dup, "namespace handle")?);
            let entry = NetnsEntry::prepare(&f, t.name);
            (Some(f), Some(entry))
        }
    };
    Ok(Prepared {
        _argv: argv,
        argv_ptrs,
        _envp: envp,
        envp_ptrs,
        candidates,
        cwd,
        log,
        devnull,
        ns_fd: ns_file,
        entry,
    })
}

/// Tell the parent what failed: 'E', the stage, the errno. Async-signal-safe.
fn report(status: RawFd, stage: Stage, errno: i32) {
    let e = errno.to_le_bytes();
    write_fd(status, &[b'E', stage.code(), e[0], e[1], e[2], e[3]]);
}

/// Close every descriptor but `keep` (sorted): the user's command must not
/// inherit netplumb's sockets, nor another start's pipes (which would keep
/// that start's child from seeing its parent die). Async-signal-safe.
fn close_others(keep: &mut [RawFd]) {
    keep.sort_unstable();
    let mut lo: u32 = 3;
    for &k in keep.iter() {
        let k = k as u32;
        if k > lo {
            // SAFETY: close_range(2) on descriptors this child owns.
            unsafe { libc::syscall(libc::SYS_close_range, lo, k - 1, 0) };
        }
        lo = lo.max(k + 1);
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, lo, u32::MAX, 0) };
}

/// The child between fork and exec. Only system calls on `p`'s data.
///
/// # Safety
/// Must run in a freshly forked child and never return.
unsafe fn child(p: &Prepared, gate: RawFd, status: RawFd) -> ! {
    // SAFETY: the calls below are async-signal-safe system calls on data
    // prepared before the fork; every path ends in execve or _exit.
    unsafe {
        // Ignored signals and the mask survive exec: start clean.
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..=64 {
            libc::signal(sig, libc::SIG_DFL);
        }
        if libc::setsid() < 0 {
            report(status, Stage::Setsid, errno());
            libc::_exit(ENTER_FAILED);
        }
        let mut keep = [
            gate,
            status,
            p.log.as_raw_fd(),
            p.devnull.as_raw_fd(),
            p.ns_fd.as_ref().map(|f| f.as_raw_fd()).unwrap_or(gate),
        ];
        close_others(&mut keep);
        libc::dup2(p.devnull.as_raw_fd(), 0);
        libc::dup2(p.log.as_raw_fd(), 1);
        libc::dup2(p.log.as_raw_fd(), 2);
        if let Some(e) = &p.entry
            && let Err((stage, errno)) = e.enter()
        {
            report(status, Stage::Enter(stage), errno);
            libc::_exit(ENTER_FAILED);
        }
        if let Some(cwd) = &p.cwd
            && libc::chdir(cwd.as_ptr()) != 0
        {
            report(status, Stage::Chdir, errno());
            libc::_exit(ENTER_FAILED);
        }
        write_fd(status, b"R");
        // Wait to be recorded. EOF (the parent died) or anything but "go":
        // run nothing.
        let mut b = 0u8;
        let n = loop {
            let n = libc::read(gate, (&raw mut b).cast(), 1);
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            break n;
        };
        if n != 1 || b != b'G' {
            libc::_exit(ENTER_FAILED);
        }
        let mut err = libc::ENOENT;
        let mut denied = false;
        for c in &p.candidates {
            libc::execve(c.as_ptr(), p.argv_ptrs.as_ptr(), p.envp_ptrs.as_ptr());
            match errno() {
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR | libc::ELOOP | libc::ENAMETOOLONG => {}
                e => {
                    err = e;
                    break;
                }
            }
        }
        if denied && err == libc::ENOENT {
            err = libc::EACCES;
        }
        report(status, Stage::Exec, err);
        libc::_exit(if err == libc::ENOENT {
            NOT_FOUND
        } else {
            NOT_EXECUTABLE
        });
    }
}

fn errno() -> i32 {
    nix::errno::Errno::last_raw()
}

/// What the child said on its status pipe.
enum ChildReport {
    /// The pipe closed: the child exec'd (or died).
    Eof,
    /// Set up and waiting for the go.
    Ready,
    Failed(Option<Stage>, i32),
}

fn read_report(fd: &File) -> io::Result<ChildReport> {
    use std::io::Read;
    let mut f = fd;
    let mut tag = [0u8; 1];
    loop {
        match f.read(&mut tag) {
            Ok(0) => return Ok(ChildReport::Eof),
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if tag[0] == b'R' {
        return Ok(ChildReport::Ready);
    }
    let mut rest = [0u8; 5];
    f.read_exact(&mut rest)?;
    let errno = i32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]);
    Ok(ChildReport::Failed(Stage::from_code(rest[0]), errno))
}

/// Reap our child and say how it ended.
pub(crate) fn wait_child(pid: i32, nohang: bool) -> Option<ExitInfo> {
    let mut st = 0;
    // SAFETY: waitpid on our own child's pid.
    let r = unsafe { libc::waitpid(pid, &mut st, if nohang { libc::WNOHANG } else { 0 }) };
    match r {
        0 => None,
        r if r == pid => Some(ExitInfo::from_wait(st)),
        // Not (or no longer) our child: someone else reaped it.
        _ => Some(ExitInfo::Unknown),
    }
}

/// A process forked and set up, waiting to be recorded before it execs.
#[must_use = "dropping a Pending kills the process; call release() after recording it"]
#[derive(Debug)]
pub struct Pending {
    identity: Identity,
    pidfd: Option<PidFd>,
    gate: Option<File>,
    status: File,
    name: String,
    program: String,
    log: PathBuf,
    cgroup_dir: Option<PathBuf>,
}

impl Pending {
    /// Fork the process for `spec` inside `ns` (None: netplumb's own
    /// namespaces), in a cgroup of its own under `cgroup` when given.
    pub fn spawn(
        spec: &DaemonSpec,
        ns: Option<NsTarget<'_>>,
        cgroup: Option<&TopologyCgroup>,
    ) -> Result<Pending, ProcError> {
        let prep = prepare(spec, ns)?;
        let cg = cgroup.map(|c| c.make_child(&spec.name)).transpose()?;
        let boot = boot_id().map_err(|e| ProcError::io("cannot read the boot id", e))?;
        let (gate_r, gate_w) = pipe().map_err(|e| ProcError::io("pipe", e))?;
        let (status_r, status_w) = pipe().map_err(|e| ProcError::io("pipe", e))?;
        // SAFETY: the child runs only `child`, which makes async-signal-safe
        // system calls on memory prepared above and never returns.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: we are the freshly forked child.
            unsafe { child(&prep, gate_r.as_raw_fd(), status_w.as_raw_fd()) }
        }
        if pid < 0 {
            let e = io::Error::last_os_error();
            if let Some((dir, _)) = &cg {
                let _ = cgroup::remove_dir(dir);
            }
            return Err(ProcError::io("fork", e));
        }
        drop(gate_r);
        drop(status_w);
        drop(prep);
        let status = File::from(status_r);
        let fail = |e: ProcError| {
            // SAFETY: kill(2) of our own unreaped child: the pid cannot
            // have been reused.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            wait_child(pid, false);
            if let Some((dir, _)) = &cg {
                let _ = cgroup::remove_dir(dir);
            }
            e
        };
        match read_report(&status) {
            Ok(ChildReport::Ready) => {}
            Ok(ChildReport::Failed(stage, errno)) => {
                return Err(fail(ProcError::Setup {
                    name: spec.name.clone(),
                    stage: stage.map(Stage::describe).unwrap_or("setup"),
                    source: io::Error::from_raw_os_error(errno),
                }));
            }
            Ok(ChildReport::Eof) => {
                return Err(fail(ProcError::Setup {
                    name: spec.name.clone(),
                    stage: "setup",
                    source: io::Error::other("the child exited before it was ready"),
                }));
            }
            Err(e) => return Err(fail(ProcError::io("reading the child's setup", e))),
        }
        // An unreaped child's pid cannot be reused: no race here.
        let pidfd = PidFd::open(pid).map_err(|e| fail(ProcError::io("pidfd_open", e)))?;
        if let Some((dir, _)) = &cg {
            cgroup::move_in(dir, pid).map_err(|e| {
                fail(ProcError::io(
                    format!("cannot move {} into cgroup {}", spec.name, dir.display()),
                    e,
                ))
            })?;
        }
        let start_time = read_stat(pid)
            .map_err(|e| fail(ProcError::io(format!("/proc/{pid}/stat"), e)))?
            .start_time;
        Ok(Pending {
            identity: Identity {
                pid,
                start_time,
                boot_id: boot,
                cgroup: cg.as_ref().map(|(_, rel)| PathBuf::from(rel)),
            },
            pidfd: Some(pidfd),
            gate: Some(File::from(gate_w)),
            status,
            name: spec.name.clone(),
            program: spec.argv.program().to_string(),
            log: spec.log.clone(),
            cgroup_dir: cg.map(|(d, _)| d),
        })
    }

    /// Record this before calling [`Pending::release`].
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Let the process exec the command. Returns once the exec has
    /// happened (or failed: the program not found or not executable).
    pub fn release(mut self) -> Result<Daemon, ProcError> {
        use std::io::Write;
        let pid = self.identity.pid;
        if let Some(mut g) = self.gate.take() {
            g.write_all(b"G")
                .map_err(|e| ProcError::io("releasing the child", e))?;
        }
        // The status pipe closes on exec (close-on-exec), or carries why
        // the exec failed.
        let outcome = read_report(&self.status);
        let pidfd = self.pidfd.take();
        match outcome {
            Ok(ChildReport::Eof) => Ok(Daemon {
                identity: self.identity.clone(),
                pidfd,
                name: std::mem::take(&mut self.name),
                log: std::mem::take(&mut self.log),
                exit: None,
            }),
            Ok(ChildReport::Failed(_, errno)) => {
                wait_child(pid, false);
                if let Some(d) = self.cgroup_dir.take() {
                    let _ = cgroup::remove_dir(&d);
                }
                let e = io::Error::from_raw_os_error(errno);
                Err(ProcError::Exec {
                    name: self.name.clone(),
                    text: super::nsexec::spawn_failure_text(&self.program, &e),
                    not_found: e.kind() == io::ErrorKind::NotFound,
                })
            }
            Ok(ChildReport::Ready) | Err(_) => {
                self.pidfd = pidfd;
                Err(ProcError::Setup {
                    name: self.name.clone(),
                    stage: "exec",
                    source: io::Error::other("unexpected report from the child"),
                })
            }
        }
    }
}

impl Drop for Pending {
    /// Not released: the process never runs the command.
    fn drop(&mut self) {
        if let Some(fd) = self.pidfd.take() {
            let _ = fd.signal(libc::SIGKILL);
            wait_child(self.identity.pid, false);
            if let Some(d) = self.cgroup_dir.take() {
                let _ = cgroup::remove_dir(&d);
            }
        }
    }
}

/// A running process that netplumb started (and so may reap).
#[derive(Debug)]
pub struct Daemon {
    identity: Identity,
    pidfd: Option<PidFd>,
    name: String,
    log: PathBuf,
    exit: Option<ExitInfo>,
}

impl Daemon {
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
    pub fn pid(&self) -> i32 {
        self.identity.pid
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Has it exited? Reaps it if so (without blocking). `Unknown` when
    /// something else reaped it first (a `stop` in this process).
    pub fn try_wait(&mut self) -> Option<ExitInfo> {
        if self.exit.is_none()
            && let Some(fd) = &self.pidfd
        {
            self.exit = match fd.reap() {
                Reaped::Exited(e) => Some(e),
                Reaped::Running => None,
                Reaped::NotOurs => fd.has_exited().then_some(ExitInfo::Unknown),
            };
        }
        self.exit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape a caller keeps in its record: compared on the next run to
    /// decide whether a process must be restarted.
    #[test]
    fn spec_record_round_trips() {
        let spec = DaemonSpec {
            name: "web".into(),
            argv: Argv::parse("python3 -m http.server 80").unwrap(),
            env: vec![("PYTHONUNBUFFERED".into(), "1".into())],
            clear_env: false,
            cwd: Some("/srv/www".into()),
            log: "/run/netplumb/logs/lab/web.log".into(),
        };
        let j = serde_json::to_string(&spec).unwrap();
        assert_eq!(
            j,
            r#"{"name":"web","argv":["python3","-m","http.server","80"],"env":[["PYTHONUNBUFFERED","1"]],"clear_env":false,"cwd":"/srv/www","log":"/run/netplumb/logs/lab/web.log"}"#
        );
        let back: DaemonSpec = serde_json::from_str(&j).unwrap();
        assert_eq!(back, spec);
        let changed = DaemonSpec {
            argv: Argv::parse("python3 -m http.server 81").unwrap(),
            ..spec.clone()
        };
        assert_ne!(changed, spec);
        assert!(
            serde_json::from_str::<DaemonSpec>(
                &j.replace(r#"["python3","-m","http.server","80"]"#, "[]")
            )
            .is_err()
        );
    }

    #[test]
    fn stage_codes_round_trip() {
        for s in [
            Stage::Setsid,
            Stage::Chdir,
            Stage::Exec,
            Stage::Enter(EnterStage::Setns),
            Stage::Enter(EnterStage::UnshareMount),
            Stage::Enter(EnterStage::SlaveRoot),
            Stage::Enter(EnterStage::Sysfs),
        ] {
            assert_eq!(Stage::from_code(s.code()), Some(s));
        }
        assert_eq!(Stage::from_code(0), None);
    }
}
