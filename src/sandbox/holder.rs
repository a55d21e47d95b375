//! A world's holder: `sandbox hold` detaches and makes the namespaces, and
//! its PID 1 reaps orphans until `sandbox stop`.

use super::*;

pub(super) fn say(line: &str) {
    let mut o = std::io::stdout();
    let _ = writeln!(o, "{line}");
    let _ = o.flush();
}

/// `sandbox hold WORLD`, started by `sandbox start`: detach, make the
/// namespaces, fork PID 1 of the new PID namespace, report its pid on
/// stdout, and exit. PID 1 reports "ready" once /proc is its own.
pub(super) fn hold(world: &str) -> Result<(), SandboxError> {
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
pub(super) fn init(world: &str) -> ! {
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

pub(super) fn reap() {
    let mut st = 0;
    // SAFETY: waitpid for any child, without blocking.
    while unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) } > 0 {}
}
