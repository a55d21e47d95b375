//! Stopping a recorded process and everything it started: SIGTERM (and
//! SIGCONT, so a stopped process can act on it), a grace period, then
//! SIGKILL — `cgroup.kill` where the process has a cgroup.
//!
//! Nothing is signalled by a bare pid. The tree is collected as pidfds, each
//! opened *before* its owner is re-checked (start time for the leader and
//! the processes found by walking /proc, cgroup membership for the rest), so
//! a pid reused by an unrelated process is never signalled.
//!
//! The tree is the process's cgroup when it has one: double forks and setsid
//! cannot leave it. Without one it is every process of the leader's session
//! or process group started no earlier than the leader, and their
//! descendants by parent links — a child that double-forked keeps the
//! session; one that also called setsid escapes (only a cgroup holds it).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::ProcError;
use super::cgroup;
use super::identity::{Identity, Liveness, PidFd, Stat, all_processes, read_stat, wait_any_exit};

/// How long SIGKILLed processes may take to disappear before `stop`
/// reports them (a process in uninterruptible sleep dies when it wakes).
const KILL_WAIT: Duration = Duration::from_secs(5);
const TICK: Duration = Duration::from_millis(10);

/// What `stop` found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopReport {
    /// The recorded process, as found before anything was signalled.
    pub leader: Liveness,
    /// Processes of its tree that were sent SIGTERM.
    pub terminated: Vec<i32>,
    /// Those still there after the grace period, killed.
    pub killed: Vec<i32>,
    /// Whether the process's cgroup existed and was removed.
    pub cgroup_removed: bool,
}

/// Where the tree is looked for.
enum Scope {
    Cgroup {
        dir: PathBuf,
        rel: String,
    },
    Session {
        leader_ours: bool,
    },
    /// The pid names another process now: the session and group ids with
    /// that number are the newcomer's.
    Nothing,
}

/// The processes of a recorded tree that are alive now (for `ps`, and to
/// tell a command that daemonized itself from one that died).
pub fn tree(id: &Identity) -> Result<Vec<i32>, ProcError> {
    if !id.same_boot() {
        return Ok(Vec::new());
    }
    let scope = scope(id)?;
    let mut pids: Vec<i32> = collect(id, &scope).iter().map(|f| f.pid).collect();
    pids.sort_unstable();
    Ok(pids)
}

fn scope(id: &Identity) -> Result<Scope, ProcError> {
    if let Some(rel) = &id.cgroup
        && let Some(dir) = cgroup::resolve(rel)?
    {
        return Ok(Scope::Cgroup {
            dir,
            rel: rel.display().to_string(),
        });
    }
    Ok(match id.liveness() {
        Liveness::Running => Scope::Session { leader_ours: true },
        Liveness::Exited => Scope::Session { leader_ours: false },
        Liveness::Reused | Liveness::OtherBoot => Scope::Nothing,
    })
}

/// The tree as pidfds, each checked after it was opened.
fn collect(id: &Identity, scope: &Scope) -> Vec<PidFd> {
    match scope {
        Scope::Nothing => Vec::new(),
        Scope::Cgroup { dir, rel } => cgroup::procs(dir)
            .into_iter()
            .filter_map(|pid| {
                let fd = PidFd::open(pid).ok()?;
                // Opened first, then checked: a pid that left the cgroup
                // (exited, and maybe reused since) is not ours.
                (cgroup::of_pid(pid).as_deref() == Some(rel.as_str())).then_some(fd)
            })
            .collect(),
        Scope::Session { leader_ours } => {
            let all = all_processes();
            let mut found: Vec<&Stat> = Vec::new();
            let mine = |s: &Stat| {
                s.start_time >= id.start_time
                    && !s.is_zombie()
                    && ((*leader_ours && s.pid == id.pid)
                        || s.session == id.pid
                        || s.pgrp == id.pid)
            };
            found.extend(all.iter().filter(|s| mine(s)));
            // Descendants by parent links, to a fixed point: a child that
            // moved to a session of its own is still a child.
            loop {
                let before = found.len();
                let parents: Vec<i32> = found.iter().map(|s| s.pid).collect();
                for s in &all {
                    if parents.contains(&s.ppid)
                        && !s.is_zombie()
                        && !found.iter().any(|f| f.pid == s.pid)
                    {
                        found.push(s);
                    }
                }
                if found.len() == before {
                    break;
                }
            }
            found
                .into_iter()
                .filter_map(|s| PidFd::open_if(s.pid, s.start_time))
                .collect()
        }
    }
}

fn add_new(into: &mut Vec<PidFd>, more: Vec<PidFd>) {
    for f in more {
        if !into.iter().any(|g| g.pid == f.pid) {
            into.push(f);
        }
    }
}

fn alive(fds: &[PidFd]) -> Vec<i32> {
    fds.iter()
        .filter(|f| !f.has_exited())
        .map(|f| f.pid)
        .collect()
}

/// Everything of the tree gone (cgroup empty too)?
fn all_gone(fds: &[PidFd], scope: &Scope) -> bool {
    alive(fds).is_empty()
        && match scope {
            Scope::Cgroup { dir, .. } => cgroup::procs(dir).is_empty(),
            _ => true,
        }
}

/// Our own children among them are reaped, so none is left a zombie.
fn reap(fds: &[PidFd]) {
    for f in fds {
        let _ = f.reap();
    }
}

/// Stop the recorded process and its whole tree, gracefully for `grace`,
/// then by force. Safe to call for a process that has already exited, for
/// one recorded in another boot, and for a pid that now names someone else
/// (nothing is signalled then).
pub fn stop(id: &Identity, grace: Duration) -> Result<StopReport, ProcError> {
    let leader = id.liveness();
    let mut report = StopReport {
        leader,
        terminated: Vec::new(),
        killed: Vec::new(),
        cgroup_removed: false,
    };
    if leader == Liveness::OtherBoot {
        return Ok(report);
    }
    let scope = scope(id)?;
    let mut fds = collect(id, &scope);
    for f in &fds {
        if matches!(f.signal(libc::SIGTERM), Ok(true)) {
            report.terminated.push(f.pid);
        }
        let _ = f.signal(libc::SIGCONT);
    }
    let deadline = Instant::now() + grace;
    while !all_gone(&fds, &scope) && Instant::now() < deadline {
        settle(&fds);
        // Children forked while shutting down get their SIGTERM too.
        let more = collect(id, &scope);
        for f in &more {
            if !fds.iter().any(|g| g.pid == f.pid) {
                let _ = f.signal(libc::SIGTERM);
                let _ = f.signal(libc::SIGCONT);
            }
        }
        add_new(&mut fds, more);
        reap(&fds);
    }
    if !all_gone(&fds, &scope) {
        add_new(&mut fds, collect(id, &scope));
        report.killed = alive(&fds);
        if let Scope::Cgroup { dir, .. } = &scope {
            // The kernel kills the cgroup as a whole: nothing forks out.
            let killed = cgroup::kill_all(dir)
                .map_err(|e| ProcError::io(format!("{}/cgroup.kill", dir.display()), e))?;
            if !killed {
                kill_each(&mut fds, id, &scope, &mut report);
            }
        } else {
            kill_each(&mut fds, id, &scope, &mut report);
        }
        let deadline = Instant::now() + KILL_WAIT;
        while !all_gone(&fds, &scope) && Instant::now() < deadline {
            settle(&fds);
            let more = collect(id, &scope);
            for f in &more {
                let _ = f.signal(libc::SIGKILL);
            }
            add_new(&mut fds, more);
            reap(&fds);
        }
        report.killed.sort_unstable();
        report.killed.dedup();
    }
    reap(&fds);
    let left = alive(&fds);
    if !left.is_empty() {
        return Err(ProcError::Survivors(left));
    }
    if let Scope::Cgroup { dir, .. } = &scope {
        report.cgroup_removed = remove_when_empty(dir);
    }
    Ok(report)
}

/// Wait a tick, or less when one of the living exits.
fn settle(fds: &[PidFd]) {
    let living: Vec<&PidFd> = fds.iter().filter(|f| !f.has_exited()).collect();
    if living.is_empty() {
        // Only cgroup members not seen yet, or exits in flight.
        std::thread::sleep(Duration::from_millis(2));
    } else {
        wait_any_exit(living, TICK);
    }
}

fn kill_each(fds: &mut Vec<PidFd>, id: &Identity, scope: &Scope, report: &mut StopReport) {
    add_new(fds, collect(id, scope));
    // A zombie still takes signals: count only the living.
    for f in fds.iter().filter(|f| !f.has_exited()) {
        if matches!(f.signal(libc::SIGKILL), Ok(true)) && !report.killed.contains(&f.pid) {
            report.killed.push(f.pid);
        }
    }
}

/// A cgroup's populated state drops as its last task exits; rmdir may
/// briefly still see it busy.
fn remove_when_empty(dir: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match cgroup::remove_dir(dir) {
            Ok(()) => return true,
            Err(_) if Instant::now() < deadline => std::thread::sleep(TICK),
            Err(_) => return false,
        }
    }
}

/// Is the leader gone while others of its tree live on (a command that
/// daemonized itself)?
pub(crate) fn tree_outlives_leader(id: &Identity) -> bool {
    tree(id).is_ok_and(|t| t.iter().any(|&p| p != id.pid && read_stat(p).is_ok()))
}
