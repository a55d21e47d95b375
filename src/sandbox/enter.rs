//! Entering a world: its user, mount, network and PID namespaces through the
//! holder's pidfd, then a fork so the command lives inside the world.

use super::*;

pub(super) static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let c = CHILD.load(Ordering::SeqCst);
    if c > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(c, sig) };
    }
}

pub(super) fn ns_id(path: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Join a world: its user namespace first (when it has one of its own),
/// then mount, network and PID namespaces, atomically through the holder's
/// pidfd; then fork so this netplumb itself lives inside the world's PID
/// namespace and ends with it. The parent only waits and passes the exit
/// status on.
pub(super) fn enter_world(world: &str) -> Result<(), SandboxError> {
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
pub(super) fn wait_child(child: i32) -> ! {
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
