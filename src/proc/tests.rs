//! Kernel tests (root): each runs on a thread of its own that first made a
//! private network + mount namespace (/ private, a tmpfs on /run for
//! namespace files and scratch, an overlay over /etc so /etc/netns can be
//! written), so tests run in parallel and leave nothing on the machine. The
//! processes they start are forked from that thread and live in its
//! namespaces; /proc is the oracle.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, setns, unshare};

use super::*;

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Run `f` inside a fresh network + mount namespace, on a thread of its
/// own (a thread may unshare both; the test harness's threads stay put).
fn sandboxed<T: Send>(f: impl FnOnce(&Path) -> T + Send) -> Option<T> {
    if !is_root() {
        eprintln!("skipped: kernel tests need root");
        return None;
    }
    Some(std::thread::scope(|s| {
        s.spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS).expect("unshare");
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .expect("make / private");
            mount(
                Some("none"),
                "/run",
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .expect("tmpfs on /run");
            for d in ["/run/netns", "/run/t", "/run/etc-ov/u", "/run/etc-ov/w"] {
                std::fs::create_dir_all(d).unwrap();
            }
            mount(
                Some("overlay"),
                "/etc",
                Some("overlay"),
                MsFlags::empty(),
                Some("lowerdir=/etc,upperdir=/run/etc-ov/u,workdir=/run/etc-ov/w"),
            )
            .expect("overlay on /etc");
            sh("ip link set lo up");
            f(Path::new("/run/t"))
        })
        .join()
        .expect("sandboxed test thread")
    }))
}

fn sh(cmd: &str) -> String {
    let o = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(
        o.status.success(),
        "`{cmd}`: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Two namespaces joined by a veth pair: srv 10.77.0.1, cli 10.77.0.2.
fn two_namespaces() -> (File, File) {
    sh("ip netns add srv && ip netns add cli && \
        ip link add v-srv netns srv type veth peer v-cli netns cli && \
        ip -n srv addr add 10.77.0.1/24 dev v-srv && ip -n cli addr add 10.77.0.2/24 dev v-cli && \
        ip -n srv link set v-srv up && ip -n cli link set v-cli up && \
        ip -n srv link set lo up && ip -n cli link set lo up");
    (
        File::open("/run/netns/srv").unwrap(),
        File::open("/run/netns/cli").unwrap(),
    )
}

/// Gone from /proc, or a zombie (it has exited; reaping is its parent's
/// business — on this machine pid 1 never reaps).
fn dead(pid: i32) -> bool {
    match identity::read_stat(pid) {
        Err(_) => true,
        Ok(s) => s.is_zombie(),
    }
}

fn read_pid(p: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(t) = std::fs::read_to_string(p)
            && let Ok(n) = t.trim().parse()
        {
            return n;
        }
        assert!(Instant::now() < deadline, "no pid in {}", p.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn topology(test: &str) -> TopologyCgroup {
    CgroupRoot::find()
        .expect("this machine has a writable cgroup2 mount")
        .topology(&format!("test-{}-{test}", std::process::id()))
        .unwrap()
}

fn spec(name: &str, cmd: &str, dir: &Path) -> DaemonSpec {
    DaemonSpec {
        name: name.to_string(),
        argv: Argv::parse(cmd).unwrap(),
        env: vec![("NP_TEST".into(), name.into())],
        clear_env: false,
        cwd: Some(dir.to_path_buf()),
        log: dir.join(format!("{name}.log")),
    }
}

fn srv(f: &File) -> Option<NsTarget<'_>> {
    Some(NsTarget {
        file: f,
        name: Some("srv"),
    })
}

/// Start and record: the identity goes to `record` before the exec.
fn start(
    s: &DaemonSpec,
    ns: Option<NsTarget<'_>>,
    cg: Option<&TopologyCgroup>,
    record: &mut Vec<Identity>,
) -> Daemon {
    let p = Pending::spawn(s, ns, cg).unwrap();
    record.push(p.identity().clone());
    p.release().unwrap()
}

fn netns_inode(path: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

#[test]
fn http_server_in_a_namespace_answers_another_namespace() {
    sandboxed(|dir| {
        let (srv_ns, cli_ns) = two_namespaces();
        let topo = topology("http");
        std::fs::create_dir_all(dir.join("www")).unwrap();
        std::fs::write(dir.join("www/index.html"), "hello from srv\n").unwrap();
        let mut s = spec(
            "web",
            "sh -c 'sleep 0.4; exec python3 -m http.server 8000 --bind 10.77.0.1'",
            dir,
        );
        s.cwd = Some(dir.join("www"));
        let mut records = Vec::new();
        let mut d = start(&s, srv(&srv_ns), Some(&topo), &mut records);
        let id = records[0].clone();
        assert_eq!(d.identity(), &id);
        // Nothing listens yet: the shell sleeps first.
        let took = wait_ready(
            &mut d,
            &Ready::Tcp(8000),
            Some(&srv_ns),
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(took >= Duration::from_millis(400), "ready after {took:?}");
        // Ready means listening: the first connection from the other
        // namespace is answered, no retry.
        let body = netns::in_ns_test(&cli_ns, || {
            let mut c = TcpStream::connect(("10.77.0.1", 8000)).expect("connect from cli");
            c.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
            let mut r = String::new();
            c.read_to_string(&mut r).unwrap();
            r
        });
        assert!(body.starts_with("HTTP/1.0 200"), "{body}");
        assert!(body.ends_with("hello from srv\n"), "{body}");
        // It is where it was put: its own session, the srv namespace, its
        // cgroup, the requested environment.
        let st = identity::read_stat(id.pid).unwrap();
        assert_eq!(st.session, id.pid);
        assert_eq!(st.comm, "python3");
        assert_eq!(
            netns_inode(&format!("/proc/{}/ns/net", id.pid)),
            netns_inode("/run/netns/srv")
        );
        let rel = id.cgroup.clone().expect("a cgroup");
        assert_eq!(cgroup::of_pid(id.pid).as_deref(), rel.to_str());
        let env = std::fs::read(format!("/proc/{}/environ", id.pid)).unwrap();
        assert!(env.split(|&b| b == 0).any(|e| e == b"NP_TEST=web"));
        let fd0 = std::fs::read_link(format!("/proc/{}/fd/0", id.pid)).unwrap();
        assert_eq!(fd0, PathBuf::from("/dev/null"));
        let log = std::fs::read_to_string(dir.join("web.log")).unwrap();
        assert!(log.contains("GET /index.html"), "{log}");

        let r = stop(&id, Duration::from_secs(5)).unwrap();
        assert_eq!(r.leader, Liveness::Running);
        assert_eq!(r.terminated, vec![id.pid]);
        assert!(r.killed.is_empty(), "{r:?}");
        assert!(r.cgroup_removed);
        assert!(dead(id.pid));
        assert_eq!(id.liveness(), Liveness::Exited);
        assert!(topo.remove().unwrap());
    });
}

/// A tree with a plain child, a child that double-forked (reparented away
/// from the leader, same session), one that double-forked and called
/// setsid, and one that ignores SIGTERM.
const TREE: &str = r#"sh -c '
sleep 1000 & echo $! > child
(sleep 1000 & echo $! > double) &
wait $!
(setsid sleep 1000 & echo $! > escaped) &
wait $!
sh -c "trap \"\" TERM; exec sleep 1000" & echo $! > stubborn
sleep 0.2; touch started
exec sleep 1000'"#;

struct Tree {
    leader: i32,
    child: i32,
    double: i32,
    escaped: i32,
    stubborn: i32,
    /// A failed assertion must not leave the tree running.
    _guard: KillOnDrop,
}

/// SIGKILL (by checked pidfd) whatever of a test's processes is left.
struct KillOnDrop(Vec<(i32, u64)>);

impl KillOnDrop {
    fn of(pids: &[i32]) -> Self {
        Self(
            pids.iter()
                .filter_map(|&p| Some((p, identity::read_stat(p).ok()?.start_time)))
                .collect(),
        )
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &(pid, start) in &self.0 {
            if let Some(fd) = identity::PidFd::open_if(pid, start) {
                let _ = fd.signal(libc::SIGKILL);
            }
        }
    }
}

fn start_tree(dir: &Path, cg: Option<&TopologyCgroup>) -> (Daemon, Identity, Tree) {
    let mut records = Vec::new();
    let s = spec("tree", TREE, dir);
    let mut d = start(&s, None, cg, &mut records);
    let started = dir.join("started");
    wait_ready(&mut d, &Ready::File(started), None, Duration::from_secs(10)).unwrap();
    let id = records.remove(0);
    let (child, double) = (read_pid(&dir.join("child")), read_pid(&dir.join("double")));
    let (escaped, stubborn) = (
        read_pid(&dir.join("escaped")),
        read_pid(&dir.join("stubborn")),
    );
    let t = Tree {
        leader: id.pid,
        child,
        double,
        escaped,
        stubborn,
        _guard: KillOnDrop::of(&[id.pid, child, double, escaped, stubborn]),
    };
    // The shapes are real: the double-forked sleep lost its parent link,
    // the setsid one left the session.
    let dbl = identity::read_stat(t.double).unwrap();
    assert_ne!(dbl.ppid, t.leader);
    assert_eq!(dbl.session, t.leader);
    let esc = identity::read_stat(t.escaped).unwrap();
    assert_eq!(esc.session, t.escaped);
    assert_ne!(esc.ppid, t.leader);
    for p in [t.leader, t.child, t.double, t.escaped, t.stubborn] {
        assert!(!dead(p), "{p} should run");
    }
    (d, id, t)
}

#[test]
fn stop_with_a_cgroup_leaves_no_process_of_the_tree() {
    sandboxed(|dir| {
        let topo = topology("tree");
        let (_d, id, t) = start_tree(dir, Some(&topo));
        let all = [t.leader, t.child, t.double, t.escaped, t.stubborn];
        let mut want = all.to_vec();
        want.sort_unstable();
        assert_eq!(tree(&id).unwrap(), want);
        let began = Instant::now();
        let r = stop(&id, Duration::from_millis(300)).unwrap();
        assert!(began.elapsed() >= Duration::from_millis(300));
        for p in all {
            assert!(dead(p), "pid {p} survived: {r:?}");
        }
        assert_eq!(r.killed, vec![t.stubborn], "{r:?}");
        assert!(r.cgroup_removed);
        assert!(topo.remove().unwrap());
    });
}

#[test]
fn stop_without_a_cgroup_follows_the_session_and_parent_links() {
    sandboxed(|dir| {
        let (_d, id, t) = start_tree(dir, None);
        assert_eq!(id.cgroup, None);
        let found = tree(&id).unwrap();
        for p in [t.leader, t.child, t.double, t.stubborn] {
            assert!(found.contains(&p), "{p} not in {found:?}");
        }
        let r = stop(&id, Duration::from_millis(300)).unwrap();
        for p in [t.leader, t.child, t.double, t.stubborn] {
            assert!(dead(p), "pid {p} survived: {r:?}");
        }
        assert_eq!(r.killed, vec![t.stubborn], "{r:?}");
        // Only a cgroup holds a child that left the session by setsid;
        // without one it is out of reach, as documented.
        assert!(!dead(t.escaped));
    });
}

#[test]
fn a_reused_pid_is_never_signalled() {
    sandboxed(|_dir| {
        // An unrelated session leader with a member, standing in for the
        // process that got the daemon's pid after the daemon died.
        let mut other = Command::new("setsid")
            .args(["sh", "-c", "sleep 1000 & exec sleep 1000"])
            .spawn()
            .unwrap();
        let pid = other.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(5);
        while identity::read_stat(pid).map(|s| s.comm).ok().as_deref() != Some("sleep") {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
        let real = Identity::of(pid).unwrap();
        assert_eq!(identity::read_stat(pid).unwrap().session, pid);
        let member = identity::all_processes()
            .into_iter()
            .find(|s| s.session == pid && s.pid != pid)
            .expect("the session's other sleep")
            .pid;
        let guard = KillOnDrop::of(&[pid, member]);
        // The record of "the daemon": same pid, an earlier start.
        let recorded = Identity {
            start_time: real.start_time - 1,
            ..real.clone()
        };
        assert_eq!(recorded.liveness(), Liveness::Reused);
        assert!(tree(&recorded).unwrap().is_empty());
        let r = stop(&recorded, Duration::from_millis(100)).unwrap();
        assert_eq!(r.leader, Liveness::Reused);
        assert!(r.terminated.is_empty() && r.killed.is_empty(), "{r:?}");
        assert!(!dead(pid) && !dead(member));
        assert_eq!(other.try_wait().unwrap(), None);
        // A record from another boot touches nothing either.
        let old = Identity {
            boot_id: "00000000-0000-4000-8000-000000000000".into(),
            ..real.clone()
        };
        assert_eq!(
            stop(&old, Duration::ZERO).unwrap().leader,
            Liveness::OtherBoot
        );
        assert!(!dead(pid));
        // A planted record naming someone else's cgroup is refused.
        let planted = Identity {
            cgroup: Some("/system.slice/sshd.service".into()),
            ..real.clone()
        };
        assert!(matches!(
            stop(&planted, Duration::ZERO),
            Err(ProcError::ForeignCgroup(_))
        ));
        assert!(!dead(pid) && !dead(member));
        // The real identity does stop it (and its session).
        let r = stop(&real, Duration::from_secs(2)).unwrap();
        assert_eq!(r.leader, Liveness::Running);
        assert!(dead(member));
        // stop reaped it (it was this process's child): nothing to wait for.
        let _ = other.wait();
        drop(guard);
    });
}

/// Not a test: the supervising process that `kill -9` tests start and
/// kill. It starts a daemon, writes its record (write-ahead), and, when
/// asked, releases it, then waits to be killed.
#[test]
#[ignore = "helper process for the kill -9 tests"]
fn supervisor_helper() {
    let Ok(dir) = std::env::var("NETPLUMB_TEST_SUPERVISE") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let release = std::env::var("NETPLUMB_TEST_RELEASE").is_ok();
    let key = std::env::var("NETPLUMB_TEST_CGROUP").unwrap();
    let topo = CgroupRoot::find().unwrap().topology(&key).unwrap();
    let ns = File::open("/run/netns/srv").unwrap();
    let s = spec(
        "sup",
        "sh -c 'sleep 1000 & echo ran > ran; exec sleep 1000'",
        &dir,
    );
    let p = Pending::spawn(&s, srv(&ns), Some(&topo)).unwrap();
    let tmp = dir.join("record.tmp");
    let mut f = File::create(&tmp).unwrap();
    f.write_all(serde_json::to_string(p.identity()).unwrap().as_bytes())
        .unwrap();
    f.sync_all().unwrap();
    std::fs::rename(&tmp, dir.join("record.json")).unwrap();
    if release {
        let _d = p.release().unwrap();
        while !dir.join("ran").exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::write(dir.join("released"), "").unwrap();
        std::thread::sleep(Duration::from_secs(1000));
    } else {
        std::fs::write(dir.join("recorded"), "").unwrap();
        std::thread::sleep(Duration::from_secs(1000));
        drop(p);
    }
}

fn run_supervisor(dir: &Path, key: &str, release: bool, wait_for: &str) -> Identity {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "proc::tests::supervisor_helper",
        "--ignored",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env("NETPLUMB_TEST_SUPERVISE", dir)
    .env("NETPLUMB_TEST_CGROUP", key)
    .stdout(std::process::Stdio::null());
    if release {
        cmd.env("NETPLUMB_TEST_RELEASE", "1");
    }
    let mut sup = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.join(wait_for).exists() {
        assert!(
            Instant::now() < deadline,
            "supervisor never got to {wait_for}"
        );
        assert_eq!(sup.try_wait().unwrap(), None, "supervisor died");
        std::thread::sleep(Duration::from_millis(10));
    }
    // kill -9 of the supervising process, right after the start.
    sup.kill().unwrap();
    sup.wait().unwrap();
    serde_json::from_str(&std::fs::read_to_string(dir.join("record.json")).unwrap()).unwrap()
}

#[test]
fn kill_9_of_the_supervisor_then_stop_by_the_record_leaves_nothing() {
    sandboxed(|dir| {
        let _ = two_namespaces();
        let key = format!("test-{}-sup", std::process::id());
        let id = run_supervisor(dir, &key, true, "released");
        // The daemon outlived its supervisor, in its namespace and cgroup.
        assert_eq!(id.liveness(), Liveness::Running);
        let pids = tree(&id).unwrap();
        assert_eq!(pids.len(), 2, "{pids:?}");
        assert_eq!(
            netns_inode(&format!("/proc/{}/ns/net", id.pid)),
            netns_inode("/run/netns/srv")
        );
        let r = stop(&id, Duration::from_secs(2)).unwrap();
        assert_eq!(r.leader, Liveness::Running);
        for p in pids {
            assert!(dead(p), "{p} survived: {r:?}");
        }
        assert!(r.cgroup_removed);
        assert!(
            CgroupRoot::find()
                .unwrap()
                .topology(&key)
                .unwrap()
                .remove()
                .unwrap()
        );
    });
}

#[test]
fn kill_9_of_the_supervisor_before_release_runs_nothing() {
    sandboxed(|dir| {
        let _ = two_namespaces();
        let key = format!("test-{}-pend", std::process::id());
        let id = run_supervisor(dir, &key, false, "recorded");
        // Its pipe closed with the supervisor: the child exits by itself
        // without running the command.
        let deadline = Instant::now() + Duration::from_secs(5);
        while id.liveness() == Liveness::Running {
            assert!(Instant::now() < deadline, "the pending child waits on");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!dir.join("ran").exists(), "the command ran unreleased");
        // The record still stops cleanly: nothing to signal, the empty
        // cgroup removed.
        let r = stop(&id, Duration::from_secs(1)).unwrap();
        assert_eq!(r.leader, Liveness::Exited);
        assert!(r.terminated.is_empty(), "{r:?}");
        assert!(r.cgroup_removed);
        assert!(
            CgroupRoot::find()
                .unwrap()
                .topology(&key)
                .unwrap()
                .remove()
                .unwrap()
        );
    });
}

#[test]
fn dropping_a_pending_start_kills_it_and_cleans_its_cgroup() {
    sandboxed(|dir| {
        let topo = topology("drop");
        let s = spec("dropped", "sh -c 'echo ran > ran'", dir);
        let p = Pending::spawn(&s, None, Some(&topo)).unwrap();
        let id = p.identity().clone();
        assert_eq!(id.liveness(), Liveness::Running);
        drop(p);
        assert!(dead(id.pid));
        assert!(!dir.join("ran").exists());
        assert!(!topo.path().join("dropped").exists());
        assert!(topo.remove().unwrap());
    });
}

#[test]
fn ready_reports_death_timeout_and_bad_programs() {
    sandboxed(|dir| {
        let (srv_ns, _) = two_namespaces();
        // Dies before it is ready: status and the end of its log.
        let s = spec("crash", "sh -c 'echo boom; echo bang >&2; exit 3'", dir);
        let mut d = start(&s, srv(&srv_ns), None, &mut Vec::new());
        let e = wait_ready(
            &mut d,
            &Ready::Tcp(9),
            Some(&srv_ns),
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "crash exited before it was ready (tcp:9): exit status 3; the end of its log {}:\n    boom\n    bang",
                dir.join("crash.log").display()
            )
        );
        // Killed by a signal while waiting.
        let s = spec("victim", "sh -c 'kill -KILL $$'", dir);
        let mut d = start(&s, None, None, &mut Vec::new());
        let e = wait_ready(
            &mut d,
            &Ready::File(dir.join("never")),
            None,
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                ProcError::Died {
                    status: ExitInfo::Signal(9),
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string().contains("killed by signal 9 (SIGKILL)"),
            "{e}"
        );
        // Alive but never ready: a bounded wait naming what was awaited.
        let mut rec = Vec::new();
        let s = spec("sleeper", "sleep 1000", dir);
        let mut d = start(&s, srv(&srv_ns), None, &mut rec);
        let t = Instant::now();
        let e = wait_ready(
            &mut d,
            &Ready::Udp(53),
            Some(&srv_ns),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(t.elapsed() >= Duration::from_millis(300));
        assert!(t.elapsed() < Duration::from_secs(3));
        assert_eq!(
            e.to_string(),
            "sleeper is not ready after 0.3 s: no UDP socket bound to port 53 (udp:53)"
        );
        // A duration is met by staying alive that long.
        let took = wait_ready(
            &mut d,
            &Ready::After(Duration::from_millis(200)),
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(took >= Duration::from_millis(200));
        stop(&rec[0], Duration::from_secs(1)).unwrap();
        assert!(dead(rec[0].pid));
        // A program that does not exist: the exec fails after the record.
        let s = spec("typo", "no-such-program-here --flag", dir);
        let p = Pending::spawn(&s, None, None).unwrap();
        let pid = p.identity().pid;
        let e = p.release().unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot start typo: no-such-program-here: command not found"
        );
        assert!(matches!(
            e,
            ProcError::Exec {
                not_found: true,
                ..
            }
        ));
        assert!(dead(pid));
        // Setup failures come back before anything is recorded.
        let mut s = spec("nowhere", "true", dir);
        s.cwd = Some("/no/such/dir".into());
        assert_eq!(
            Pending::spawn(&s, None, None).unwrap_err().to_string(),
            "cannot start nowhere: chdir to its working directory failed: No such file or directory (os error 2)"
        );
        let not_a_netns = File::open(dir.join("crash.log")).unwrap();
        let target = NsTarget {
            file: &not_a_netns,
            name: Some("srv"),
        };
        assert_eq!(
            Pending::spawn(&spec("lost", "true", dir), Some(target), None)
                .unwrap_err()
                .to_string(),
            "cannot start lost: setns(CLONE_NEWNET) failed: Invalid argument (os error 22)"
        );
    });
}

#[test]
fn ready_udp_in_the_namespace_and_a_command_that_daemonizes_itself() {
    sandboxed(|dir| {
        let (srv_ns, _) = two_namespaces();
        let topo = topology("udp");
        let mut rec = Vec::new();
        let s = spec(
            "dns",
            "python3 -c 'import socket, time; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); time.sleep(0.3); s.bind((\"::\", 5353)); time.sleep(1000)'",
            dir,
        );
        let mut d = start(&s, srv(&srv_ns), Some(&topo), &mut rec);
        wait_ready(
            &mut d,
            &Ready::Udp(5353),
            Some(&srv_ns),
            Duration::from_secs(10),
        )
        .unwrap();
        // Bound in srv, not here.
        assert!(!sh("cat /proc/net/udp6").contains(":14E9 "));
        // The leader forks the real server and exits 0: still waited for.
        let s = spec(
            "forker",
            "sh -c '(sleep 0.3; touch up; exec sleep 1000) & exit 0'",
            dir,
        );
        let mut d2 = start(&s, None, Some(&topo), &mut rec);
        wait_ready(
            &mut d2,
            &Ready::File(dir.join("up")),
            None,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(rec[1].liveness(), Liveness::Exited);
        let left = tree(&rec[1]).unwrap();
        assert_eq!(left.len(), 1, "{left:?}");
        for id in &rec {
            stop(id, Duration::from_secs(2)).unwrap();
        }
        assert!(dead(left[0]));
        assert!(tree(&rec[0]).unwrap().is_empty());
        assert!(topo.remove().unwrap());
    });
}

#[test]
fn etc_netns_files_are_written_seen_and_removed() {
    sandboxed(|dir| {
        let (srv_ns, _) = two_namespaces();
        let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap();
        let f = EtcFile::new("srv", "/etc/hosts").unwrap();
        assert_eq!(f.read().unwrap(), None);
        assert_eq!(f.write(b"10.1.2.3 db.lab\n").unwrap(), None);
        assert_eq!(
            f.write(b"10.7.7.7 db.lab\n").unwrap().as_deref(),
            Some(&b"10.1.2.3 db.lab\n"[..])
        );
        assert_eq!(
            f.read().unwrap().as_deref(),
            Some(&b"10.7.7.7 db.lab\n"[..])
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata("/etc/netns/srv/hosts")
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        // A daemon in srv sees it over /etc/hosts; this thread does not.
        let s = spec("cat", "cat /etc/hosts", dir);
        let mut d = start(&s, srv(&srv_ns), None, &mut Vec::new());
        let deadline = Instant::now() + Duration::from_secs(5);
        while d.try_wait().is_none() {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(d.try_wait(), Some(ExitInfo::Code(0)));
        assert_eq!(
            std::fs::read_to_string(dir.join("cat.log")).unwrap(),
            "10.7.7.7 db.lab\n"
        );
        assert_eq!(std::fs::read_to_string("/etc/hosts").unwrap(), host_hosts);
        // So does a command run like `netplumb exec srv -- cat /etc/hosts`.
        let o = crate::apply::command_in(srv(&srv_ns), "cat", &["/etc/hosts".into()])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout), "10.7.7.7 db.lab\n");
        // A symlink planted in its place is refused, not followed.
        std::os::unix::fs::symlink("/etc/shadow", "/etc/netns/srv/resolv.conf").unwrap();
        let r = EtcFile::new("srv", "/etc/resolv.conf").unwrap();
        assert!(matches!(r.write(b"x"), Err(EtcError::NotRegular(_))));
        std::fs::remove_file("/etc/netns/srv/resolv.conf").unwrap();
        assert!(f.remove().unwrap());
        assert!(!f.remove().unwrap());
        assert_eq!(f.read().unwrap(), None);
        assert!(
            !Path::new("/etc/netns").exists(),
            "emptied directories are removed"
        );
        // A command that cannot enter its namespace says so and exits 125.
        let bogus = File::open("/etc/hosts").unwrap();
        let o = crate::apply::command_in(
            Some(NsTarget {
                file: &bogus,
                name: Some("srv"),
            }),
            "true",
            &[],
        )
        .output()
        .unwrap();
        assert_eq!(o.status.code(), Some(nsexec::ENTER_FAILED));
        assert_eq!(
            String::from_utf8_lossy(&o.stderr),
            "netplumb: cannot enter netns srv: setns(CLONE_NEWNET): Invalid argument (os error 22)\n"
        );
    });
}

mod netns {
    use super::*;

    /// Run `f` on a thread that joined `ns`.
    pub fn in_ns_test<T: Send>(ns: &File, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
                f()
            })
            .join()
            .unwrap()
        })
    }
}
