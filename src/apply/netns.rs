//! Named network namespaces, made the way `ip netns add` makes them but
//! without a process per namespace: a bind mount of a thread's own netns.

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

use crate::kernel::KernelError;
use crate::model::NsName;

pub const NETNS_DIR: &str = "/run/netns";

fn ke(what: &str, e: Errno) -> KernelError {
    KernelError::errno(e as i32, format!("{what}: {}", e.desc()))
}

type Created<T> = Result<(File, T), KernelError>;

pub struct NetnsDir {
    dir: PathBuf,
    prepared: bool,
}

impl Default for NetnsDir {
    fn default() -> Self {
        Self {
            dir: PathBuf::from(NETNS_DIR),
            prepared: false,
        }
    }
}

impl NetnsDir {
    pub fn path(&self, ns: &NsName) -> PathBuf {
        self.dir.join(ns.as_str())
    }

    /// A namespace is there when its file is a mounted nsfs inode. A plain
    /// file left by an interrupted creation (killed between create and
    /// bind mount) does not count.
    pub fn exists(&self, ns: &NsName) -> bool {
        is_nsfs(&self.path(ns))
    }

    /// The namespace's identity: the inode of the nsfs file mounted there
    /// (None: no namespace at that name).
    pub fn ino(&self, ns: &NsName) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        let path = self.path(ns);
        if !is_nsfs(&path) {
            return None;
        }
        std::fs::metadata(&path).ok().map(|m| m.ino())
    }

    /// Like iproute2: the directory is a shared mount point, so a namespace
    /// mounted here stays visible to every mount namespace that sees the
    /// directory (and `ip netns` finds it).
    fn prepare(&mut self) -> Result<(), KernelError> {
        if self.prepared {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            KernelError::from(e).context(&format!("cannot create {}", self.dir.display()))
        })?;
        let shared = |d: &Path| {
            mount(
                None::<&str>,
                d,
                None::<&str>,
                MsFlags::MS_SHARED | MsFlags::MS_REC,
                None::<&str>,
            )
        };
        if let Err(Errno::EINVAL) = shared(&self.dir) {
            mount(
                Some(&self.dir),
                &self.dir,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| ke("cannot bind-mount the netns directory", e))?;
            shared(&self.dir).map_err(|e| ke("cannot make the netns directory shared", e))?;
        }
        self.prepared = true;
        Ok(())
    }

    /// Create `ns` and return a handle to it plus what `init` made. `init`
    /// runs on the creating thread, already inside the new namespace (netplumb
    /// opens its rtnetlink socket there and brings `lo` up).
    pub fn create<T: Send>(
        &mut self,
        ns: &NsName,
        init: impl FnOnce() -> Result<T, KernelError> + Send,
    ) -> Result<(File, T), KernelError> {
        self.prepare()?;
        std::thread::scope(|s| {
            s.spawn(|| self.create_here(ns, init))
                .join()
                .unwrap_or_else(|_| Err(KernelError::other("namespace thread panicked")))
        })
    }

    /// Create many namespaces on a small pool of threads: each creation is
    /// mostly kernel time, and different namespaces do not contend much.
    /// Results come back in input order.
    pub fn create_many<T: Send>(
        &mut self,
        names: &[NsName],
        init: impl Fn() -> Result<T, KernelError> + Sync,
    ) -> Vec<Result<(File, T), KernelError>> {
        if let Err(e) = self.prepare() {
            return names.iter().map(|_| Err(e.clone())).collect();
        }
        let workers = super::pool::workers().min(names.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let slots: Vec<std::sync::Mutex<Option<Created<T>>>> =
            names.iter().map(|_| std::sync::Mutex::new(None)).collect();
        let this = &*self;
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(ns) = names.get(i) else { break };
                        // unshare moves this thread for good, but a thread
                        // of its own per creation is not needed: the next
                        // unshare makes a fresh namespace from wherever the
                        // thread is, and these threads do nothing else.
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            this.create_here(ns, &init)
                        }))
                        .unwrap_or_else(|_| Err(KernelError::other("namespace thread panicked")));
                        if let Ok(mut slot) = slots[i].lock() {
                            *slot = Some(r);
                        }
                    }
                });
            }
        });
        slots
            .into_iter()
            .map(|m| {
                m.into_inner()
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| Err(KernelError::other("namespace worker lost its result")))
            })
            .collect()
    }

    /// Must run on a thread of its own, which ends up inside the namespace.
    fn create_here<T>(
        &self,
        ns: &NsName,
        init: impl FnOnce() -> Result<T, KernelError>,
    ) -> Result<(File, T), KernelError> {
        let path = self.path(ns);
        let create = || OpenOptions::new().write(true).create_new(true).open(&path);
        match create() {
            Ok(_) => {}
            // A leftover of a creation killed before its bind mount is no
            // one's namespace: take its place.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && !is_nsfs(&path) => {
                let _ = std::fs::remove_file(&path);
                create().map_err(|e| {
                    KernelError::from(e).context(&format!("cannot create netns {ns}"))
                })?;
            }
            Err(e) => {
                return Err(KernelError::from(e).context(&format!("cannot create netns {ns}")));
            }
        }
        let res = (|| {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| ke("unshare(CLONE_NEWNET)", e))?;
            // Made ready (lo up, netplumb's mark) before it gets its name:
            // a run killed at any point leaves either no namespace at the
            // path or a marked one, which `down` then knows as its own.
            let made = init()?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| ke("cannot bind-mount the new namespace", e))?;
            let f = File::open("/proc/thread-self/ns/net").map_err(KernelError::from)?;
            Ok((f, made))
        })();
        if res.is_err() {
            let _ = umount2(&path, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(&path);
        }
        res
    }

    pub fn open(&self, ns: &NsName) -> Result<File, KernelError> {
        File::open(self.path(ns)).map_err(|e| KernelError::from(e).context(&format!("netns {ns}")))
    }

    /// Unmount and remove `ns` — only when it is still the namespace with
    /// identity `ino` (when given): a namesake made since is someone else's.
    pub fn delete(&self, ns: &NsName, ino: Option<u64>) -> Result<(), KernelError> {
        let path = self.path(ns);
        if let Some(want) = ino
            && let Some(have) = self.ino(ns)
            && have != want
        {
            return Err(KernelError::errno(
                libc::ESTALE,
                format!("netns {ns} is another namespace now: left alone"),
            ));
        }
        match umount2(&path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::EINVAL) => {}
            Err(Errno::ENOENT) => return Err(ke(&format!("netns {ns}"), Errno::ENOENT)),
            Err(e) => return Err(ke(&format!("cannot unmount netns {ns}"), e)),
        }
        std::fs::remove_file(&path)
            .map_err(|e| KernelError::from(e).context(&format!("netns {ns}")))
    }

    /// Delete many namespaces on a few threads: each unmount waits for the
    /// kernel (1–2.5 ms here), and they do not contend much.
    pub fn delete_many(&self, nss: &[(NsName, Option<u64>)]) -> Vec<Result<(), KernelError>> {
        let workers = 4.min(nss.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let slots: Vec<std::sync::Mutex<Option<Result<(), KernelError>>>> =
            nss.iter().map(|_| std::sync::Mutex::new(None)).collect();
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((ns, ino)) = nss.get(i) else { break };
                        let r = self.delete(ns, *ino);
                        if let Ok(mut slot) = slots[i].lock() {
                            *slot = Some(r);
                        }
                    }
                });
            }
        });
        slots
            .into_iter()
            .map(|m| {
                m.into_inner()
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| Err(KernelError::other("namespace worker lost its result")))
            })
            .collect()
    }

    pub fn list(&self) -> Vec<NsName> {
        let mut out: Vec<NsName> = std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().to_str().and_then(|n| NsName::new(n).ok()))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }
}

const NSFS_MAGIC: i64 = 0x6e73_6673;

fn is_nsfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type().0 == NSFS_MAGIC)
}

/// Run `f` on a fresh thread that has joined `ns` (None: stay where we are).
/// Never `setns` a thread that other work shares: sockets and /proc/sys files
/// opened in `f` stay bound to `ns` after the thread ends.
pub fn in_ns<T: Send>(
    ns: Option<&File>,
    f: impl FnOnce() -> Result<T, KernelError> + Send,
) -> Result<T, KernelError> {
    let Some(ns) = ns else { return f() };
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| ke("setns", e))?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(KernelError::other("namespace thread panicked")))
    })
}
