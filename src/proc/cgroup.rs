//! cgroup v2 containment: one cgroup per topology and one per process under
//! it, `<cgroup2 mount>/netplumb/<topology>/<process>`. A process moved in
//! before it execs cannot leave with its descendants by forking twice or
//! calling setsid, and `cgroup.kill` ends them all at once.
//!
//! Machines differ (this one is hybrid: v1 controllers with cgroup2 mounted
//! beside them), so the mount is looked up in mountinfo, never assumed.
//! Records name a process's cgroup by its path inside the hierarchy (as
//! /proc/PID/cgroup shows it), so a later run finds it wherever cgroup2 is
//! mounted then.

use std::io;
use std::path::{Path, PathBuf};

use super::ProcError;

/// The directory under the hierarchy's root that holds netplumb's cgroups.
pub const BASE: &str = "netplumb";

/// One cgroup2 mount: where it is and which part of the hierarchy it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub point: PathBuf,
    /// The hierarchy path mounted there ("/" for a whole hierarchy).
    pub root: String,
    pub writable: bool,
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every cgroup2 mount in a mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mut post = post.split_whitespace();
            if post.next()? != "cgroup2" {
                return None;
            }
            let pre: Vec<&str> = pre.split_whitespace().collect();
            let root = unescape(pre.get(3)?);
            let point = PathBuf::from(unescape(pre.get(4)?));
            let writable = pre.get(5)?.split(',').any(|o| o == "rw");
            Some(Mount {
                point,
                root,
                writable,
            })
        })
        .collect()
}

/// The cgroup2 mounts this thread sees (a thread may have its own mount
/// namespace, so not /proc/self).
pub fn mounts() -> Vec<Mount> {
    std::fs::read_to_string("/proc/thread-self/mountinfo")
        .map(|t| parse_mountinfo(&t))
        .unwrap_or_default()
}

/// Names netplumb gives cgroups: one path component, nothing the kernel
/// reserves (`cgroup.*` files live beside them).
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s != "."
        && s != ".."
        && !s.starts_with("cgroup.")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
}

/// Where a hierarchy path is in this mount namespace.
fn locate(rel: &str) -> Option<PathBuf> {
    mounts().into_iter().find_map(|m| {
        let root = m.root.trim_end_matches('/');
        let rest = rel.strip_prefix(root)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        Some(m.point.join(rest.trim_start_matches('/')))
    })
}

/// A recorded cgroup path is trusted only in the shape netplumb makes:
/// `…/netplumb/<topology>/<process>`, every part a plain name — so a planted
/// record cannot aim `cgroup.kill` at a service's cgroup.
pub fn check_recorded(rel: &Path) -> Result<(), ProcError> {
    let s = rel.to_str().unwrap_or("");
    let parts: Vec<&str> = s.split('/').collect();
    let n = parts.len();
    let ok = s.starts_with('/')
        && n >= 4
        && parts[n - 3] == BASE
        && valid_name(parts[n - 2])
        && valid_name(parts[n - 1])
        && parts[1..n - 3].iter().all(|p| valid_name(p));
    if ok {
        Ok(())
    } else {
        Err(ProcError::ForeignCgroup(rel.display().to_string()))
    }
}

/// A process's cgroup v2 path, as /proc/PID/cgroup's `0::` line says.
pub fn of_pid(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
}

/// netplumb's directory in a writable cgroup2 hierarchy.
#[derive(Debug, Clone)]
pub struct CgroupRoot {
    dir: PathBuf,
    rel: String,
}

impl CgroupRoot {
    /// The first cgroup2 mount that is read-write and lets us make
    /// `netplumb` in it. None when there is none (cgroup v1 only, or no
    /// right to write it, as for an unprivileged user): processes are then
    /// tracked by process group, session and start time alone.
    pub fn find() -> Option<Self> {
        mounts().into_iter().filter(|m| m.writable).find_map(|m| {
            let dir = m.point.join(BASE);
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(_) => return None,
            }
            // A cgroup directory has its interface files: this is one.
            std::fs::metadata(dir.join("cgroup.procs")).ok()?;
            let root = m.root.trim_end_matches('/');
            Some(Self {
                dir,
                rel: format!("{root}/{BASE}"),
            })
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The topology's cgroup (made if missing). `key` names the topology
    /// uniquely on the machine — two sandboxes may both have a topology
    /// called "lab", so the caller includes its namespace world.
    pub fn topology(&self, key: &str) -> Result<TopologyCgroup, ProcError> {
        if !valid_name(key) {
            return Err(ProcError::BadName(key.to_string()));
        }
        let dir = self.dir.join(key);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(ProcError::io(
                    format!("cannot make cgroup {}", dir.display()),
                    e,
                ));
            }
        }
        Ok(TopologyCgroup {
            dir,
            rel: format!("{}/{key}", self.rel),
        })
    }
}

/// One topology's cgroup: its processes' cgroups are made under it.
#[derive(Debug, Clone)]
pub struct TopologyCgroup {
    dir: PathBuf,
    rel: String,
}

impl TopologyCgroup {
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Make (or take back, when an earlier instance left it empty) the
    /// cgroup of process `name`. Returns (directory, hierarchy path).
    pub(crate) fn make_child(&self, name: &str) -> Result<(PathBuf, String), ProcError> {
        if !valid_name(name) {
            return Err(ProcError::BadName(name.to_string()));
        }
        let dir = self.dir.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !procs(&dir).is_empty() {
                    return Err(ProcError::CgroupBusy(dir));
                }
            }
            Err(e) => {
                return Err(ProcError::io(
                    format!("cannot make cgroup {}", dir.display()),
                    e,
                ));
            }
        }
        Ok((dir, format!("{}/{name}", self.rel)))
    }

    /// Remove the topology's cgroup and, when no other topology has one,
    /// netplumb's directory. Process cgroups left empty are removed first;
    /// one that still holds processes keeps everything (Ok(false)).
    pub fn remove(&self) -> Result<bool, ProcError> {
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.filter_map(|e| e.ok()) {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
        }
        match std::fs::remove_dir(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => return Ok(false),
            Err(e) => {
                return Err(ProcError::io(
                    format!("cannot remove cgroup {}", self.dir.display()),
                    e,
                ));
            }
        }
        if let Some(base) = self.dir.parent() {
            let _ = std::fs::remove_dir(base);
        }
        Ok(true)
    }
}

/// The recorded cgroup of a process, resolved in this mount namespace.
/// None when it is gone (stopped, or the machine rebooted) or cgroup2 is
/// not visible here.
pub(crate) fn resolve(rel: &Path) -> Result<Option<PathBuf>, ProcError> {
    check_recorded(rel)?;
    let Some(dir) = rel.to_str().and_then(locate) else {
        return Ok(None);
    };
    Ok(dir.join("cgroup.procs").exists().then_some(dir))
}

pub(crate) fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

pub(crate) fn move_in(dir: &Path, pid: i32) -> io::Result<()> {
    std::fs::write(dir.join("cgroup.procs"), pid.to_string())
}

/// SIGKILL to everything in the cgroup, by the kernel, atomically with
/// respect to forks. Ok(false) when this kernel has no cgroup.kill (< 5.14).
pub(crate) fn kill_all(dir: &Path) -> io::Result<bool> {
    match std::fs::write(dir.join("cgroup.kill"), "1") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

pub(crate) fn remove_dir(dir: &Path) -> io::Result<()> {
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
52 41 0:38 /lab /mnt/with\\040space ro,nosuid shared:7 - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_cgroup2_beside_v1() {
        assert_eq!(
            parse_mountinfo(HYBRID),
            vec![
                Mount {
                    point: "/sys/fs/cgroup/unified".into(),
                    root: "/".into(),
                    writable: true,
                },
                Mount {
                    point: "/mnt/with space".into(),
                    root: "/lab".into(),
                    writable: false,
                },
            ]
        );
        assert!(parse_mountinfo("garbage\n\n1 2 3 - cgroup2").is_empty());
    }

    #[test]
    fn recorded_paths_must_be_netplumbs() {
        for ok in ["/netplumb/lab/web", "/sandbox.slice/netplumb/w-1.lab/dns@2"] {
            assert!(check_recorded(Path::new(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "/",
            "/system.slice",
            "/system.slice/sshd.service",
            "/netplumb",
            "/netplumb/lab",
            "/netplumb/lab/../../system.slice",
            "/netplumb/lab/web/deeper",
            "netplumb/lab/web",
            "/netplumb/lab/cgroup.procs",
            "/x/../netplumb/lab/web",
        ] {
            assert!(
                matches!(
                    check_recorded(Path::new(bad)),
                    Err(ProcError::ForeignCgroup(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn names() {
        assert!(valid_name("web-1.lab_x"));
        for bad in ["", ".", "..", "a/b", "cgroup.kill", "sp ace", "ü"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
