//! Several network namespaces joined by veths, for tests with real traffic:
//! each namespace is held by a `unshare --net sleep` process (killed on
//! drop, taking the namespace with it); commands run inside with nsenter,
//! and NftSocket work on a thread that setns()'d into it.

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Ns {
    holder: Child,
    pid: u32,
    procs: RefCell<Vec<Child>>,
}

impl Ns {
    pub fn new() -> Self {
        let mut holder = Command::new("unshare")
            .args([
                "--net",
                "--",
                "sh",
                "-c",
                "ip link set lo up && echo ready && exec sleep 3600",
            ])
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("namespace start");
        assert_eq!(line.trim(), "ready", "namespace did not start");
        let pid = holder.id();
        Ns {
            holder,
            pid,
            procs: RefCell::new(Vec::new()),
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn cmd(&self, script: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.pid.to_string())
            .args(["-n", "--", "sh", "-c", script]);
        c
    }

    /// Runs a shell snippet inside; (success, stdout + stderr).
    pub fn sh(&self, script: &str) -> (bool, String) {
        let o = self
            .cmd(script)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter");
        let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&o.stderr));
        (o.status.success(), text)
    }

    /// A snippet that must succeed; its output.
    pub fn ok(&self, script: &str) -> String {
        let (ok, out) = self.sh(script);
        assert!(ok, "`{script}` failed: {out}");
        out
    }

    /// Starts a long-running snippet, killed (its whole process group) on drop.
    pub fn spawn(&self, script: &str) {
        let child = self
            .cmd(script)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        self.procs.borrow_mut().push(child);
    }

    /// Runs `f` on a thread inside this namespace (for NftSocket).
    pub fn with<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/proc/{}/ns/net", self.pid);
        std::thread::scope(|s| {
            s.spawn(|| {
                let fd = File::open(&path).expect("open netns");
                nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .expect("netns thread panicked")
        })
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        for c in self.procs.borrow_mut().iter_mut() {
            // SAFETY: kill(2) of a process group we made; no memory involved.
            unsafe {
                libc::kill(-(c.id() as i32), libc::SIGKILL);
            }
            let _ = c.wait();
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A veth pair `a_name` in `a` and `b_name` in `b`, both up.
pub fn veth(a: &Ns, a_name: &str, b: &Ns, b_name: &str) {
    a.ok(&format!(
        "ip link add {a_name} type veth peer name {b_name} netns /proc/{}/ns/net && ip link set {a_name} up",
        b.pid()
    ));
    b.ok(&format!("ip link set {b_name} up"));
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("netplumb-nft-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("scratch dir");
        Scratch(p)
    }

    pub fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `f` every 20 ms until it is true or `limit` passes; the time it took.
pub fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lines in a file (0 when it does not exist yet).
pub fn lines(path: &str) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

const UDP_SINK: &str = "import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
with open(sys.argv[3], 'a', buffering=1) as f:
    while True:
        s.recv(100)
        f.write('x\\n')
";

const UDP_FLOW: &str = "import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', int(sys.argv[3])))
while True:
    s.sendto(b'x', (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.05)
";

/// Writes a helper script into the scratch dir; its path.
fn script(dir: &Scratch, name: &str, body: &str) -> String {
    let p = dir.file(name);
    std::fs::write(&p, body).expect("write helper");
    p
}

/// A UDP receiver on addr:port appending a line per datagram to `file`.
pub fn udp_sink(ns: &Ns, dir: &Scratch, addr: &str, port: u16, file: &str) {
    let py = script(dir, "udp_sink.py", UDP_SINK);
    ns.spawn(&format!("exec python3 {py} {addr} {port} {file}"));
}

/// A UDP sender to addr:port every 50 ms, always from the same source port.
pub fn udp_flow(ns: &Ns, dir: &Scratch, addr: &str, port: u16, sport: u16) {
    let py = script(dir, "udp_flow.py", UDP_FLOW);
    ns.spawn(&format!("exec python3 {py} {addr} {port} {sport}"));
}

/// A TCP listener on port that accepts and closes every connection.
pub fn tcp_listen(ns: &Ns, port: u16) {
    ns.spawn(&format!(
        "exec socat TCP-LISTEN:{port},fork,reuseaddr SYSTEM:'echo hi'"
    ));
}

/// Whether a TCP connection to addr:port is answered within `secs`.
pub fn tcp_connects(ns: &Ns, addr: &str, port: u16, secs: f32) -> bool {
    let (ok, out) = ns.sh(&format!(
        "timeout {secs} socat -u TCP:{addr}:{port},connect-timeout={secs} STDOUT"
    ));
    ok && out.contains("hi")
}
