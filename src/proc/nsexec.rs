//! Run a command inside a named network namespace the way `ip netns exec`
//! does (see [`super::etcns`]), and map how it ended to an exit status the
//! way a shell does.

use std::fs::File;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};

use super::etcns::NetnsEntry;

/// A network namespace to run in: its handle, and the name its per-namespace
/// files are kept under (/etc/netns/NAME).
#[derive(Clone, Copy)]
pub struct NsTarget<'a> {
    pub file: &'a File,
    pub name: Option<&'a str>,
}

/// netplumb could not put the command into its namespace (the message is on
/// the command's stderr). Like `env`/`chroot`'s own-failure status.
pub const ENTER_FAILED: i32 = 125;
/// Found but could not be executed.
pub const NOT_EXECUTABLE: i32 = 126;
pub const NOT_FOUND: i32 = 127;

/// A shell's `$?`: the exit code, or 128 + N for a command killed by signal N.
pub fn exit_code(st: ExitStatus) -> i32 {
    match (st.code(), st.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    }
}

/// A shell's status for a command that could not be started.
pub fn spawn_failure_code(e: &io::Error) -> i32 {
    if e.kind() == io::ErrorKind::NotFound {
        NOT_FOUND
    } else {
        NOT_EXECUTABLE
    }
}

/// What a shell says about a command that could not be started.
pub fn spawn_failure_text(program: &str, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound if !program.contains('/') => {
            format!("{program}: command not found")
        }
        io::ErrorKind::NotFound => format!("{program}: No such file or directory"),
        io::ErrorKind::PermissionDenied => format!("{program}: Permission denied"),
        _ => format!("{program}: {e}"),
    }
}

/// Undo what a waiting parent may have set: ignored signals stay ignored
/// across exec. Async-signal-safe.
pub(crate) fn default_signals() {
    for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGPIPE] {
        // SAFETY: signal(2) with SIG_DFL, no handler involved.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}

/// A command that runs in `ns`: network namespace joined, and, for a named
/// one, /etc/netns/NAME bound over /etc in a private mount namespace with
/// that namespace's sysfs. If entering fails the child says why on its
/// stderr and exits with [`ENTER_FAILED`].
pub fn ns_command(ns: Option<NsTarget<'_>>, program: &str, args: &[String]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let entry = ns.map(|t| NetnsEntry::prepare(t.file, t.name));
    // SAFETY: the closure only makes system calls on data prepared above
    // (async-signal-safe); the namespace file stays open in the parent
    // until the child has exec'd.
    unsafe {
        cmd.pre_exec(move || {
            default_signals();
            if let Some(e) = &entry
                && let Err((stage, errno)) = e.enter()
            {
                e.report_failure(stage, errno);
                libc::_exit(ENTER_FAILED);
            }
            Ok(())
        });
    }
    cmd
}

/// `netplumb exec NS -- CMD…`: run `cmd` (made by [`ns_command`]) in the
/// foreground and return the status to exit with, as a shell would: the
/// command's code, 128 + N when signal N killed it, 127 when `program` is
/// not found, 126 when it cannot be executed. Like system(3), netplumb
/// ignores Ctrl-C and Ctrl-\ while the command runs, so the command gets
/// them and its death by the signal comes back as 128 + N.
pub fn run_foreground(mut cmd: Command, program: &str) -> i32 {
    let ignore = Ignored::new(&[libc::SIGINT, libc::SIGQUIT]);
    let res = cmd.status();
    drop(ignore);
    match res {
        Ok(st) => exit_code(st),
        Err(e) => {
            eprintln!("netplumb: {}", spawn_failure_text(program, &e));
            spawn_failure_code(&e)
        }
    }
}

/// Signals ignored for as long as this lives; the old actions come back on
/// drop.
struct Ignored(Vec<(i32, libc::sigaction)>);

impl Ignored {
    fn new(sigs: &[i32]) -> Self {
        let mut old = Vec::new();
        for &sig in sigs {
            // SAFETY: sigaction with zeroed (valid) structs; SIG_IGN has no
            // handler to run.
            unsafe {
                let mut ign: libc::sigaction = std::mem::zeroed();
                ign.sa_sigaction = libc::SIG_IGN;
                let mut prev: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &ign, &mut prev) == 0 {
                    old.push((sig, prev));
                }
            }
        }
        Self(old)
    }
}

impl Drop for Ignored {
    fn drop(&mut self) {
        for (sig, prev) in &self.0 {
            // SAFETY: restores the action sigaction returned earlier.
            unsafe { libc::sigaction(*sig, prev, std::ptr::null_mut()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_like_a_shell() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGKILL)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGTERM)), 143);
        let nf = io::Error::from_raw_os_error(libc::ENOENT);
        let perm = io::Error::from_raw_os_error(libc::EACCES);
        let noexec = io::Error::from_raw_os_error(libc::ENOEXEC);
        assert_eq!(spawn_failure_code(&nf), 127);
        assert_eq!(spawn_failure_code(&perm), 126);
        assert_eq!(spawn_failure_code(&noexec), 126);
        assert_eq!(
            spawn_failure_text("nosuch", &nf),
            "nosuch: command not found"
        );
        assert_eq!(
            spawn_failure_text("./nosuch", &nf),
            "./nosuch: No such file or directory"
        );
        assert_eq!(
            spawn_failure_text("/tmp/x", &perm),
            "/tmp/x: Permission denied"
        );
    }
}
