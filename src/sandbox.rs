//! `--sandbox`: run the whole command in a fresh network + mount namespace
//! (and a user namespace when not root), so nothing on the machine is
//! touched and everything vanishes at exit. Must run before any thread
//! exists: unshare(CLONE_NEWUSER) refuses multi-threaded processes.

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{getegid, geteuid};

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the sandbox: {what}: {err}")]
pub struct SandboxError {
    what: String,
    err: String,
}

fn e(what: &str, err: impl std::fmt::Display) -> SandboxError {
    SandboxError {
        what: what.into(),
        err: err.to_string(),
    }
}

pub fn enter() -> Result<(), SandboxError> {
    let uid = geteuid();
    let gid = getegid();
    if uid.is_root() {
        unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS).map_err(|x| e("unshare", x))?;
    } else {
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS)
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
    // Tools run with `exec` read /sys/class/net; show them this namespace.
    let _ = mount(
        Some("sysfs"),
        "/sys",
        Some("sysfs"),
        MsFlags::empty(),
        None::<&str>,
    );
    // SAFETY: still single-threaded (see the module comment).
    unsafe { std::env::set_var("NETPLUMB_STATE_DIR", "/run/netplumb") };
    Ok(())
}
