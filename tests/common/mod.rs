//! Integration-test harness: every test gets its own private network + mount
//! namespace (a long-lived `unshare … sleep` process with a tmpfs on /run),
//! and runs netplumb and the oracles (`ip -j`, `nft -j`) inside it with
//! nsenter. Tests run in parallel and leave nothing behind.

#![allow(dead_code)]

pub mod kstate;
pub mod machines;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_netplumb");

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc_geteuid() == 0 }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

pub struct Sandbox {
    child: Child,
    pid: u32,
    pub dir: tempdir::TempDir,
}

pub mod tempdir {
    use std::path::{Path, PathBuf};

    /// A scratch directory removed on drop (scripts written by tests).
    pub struct TempDir(PathBuf);
    impl TempDir {
        pub fn new() -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let p = std::env::temp_dir().join(format!(
                "netplumb-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::create_dir_all(&p).expect("temp dir");
            Self(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    impl Default for TempDir {
        fn default() -> Self {
            Self::new()
        }
    }
}

impl Sandbox {
    pub fn new() -> Self {
        let mut cmd = Command::new("unshare");
        if !is_root() {
            cmd.arg("--user").arg("--map-root-user");
        }
        cmd.args(["--net", "--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(
                "mount -t tmpfs none /run && mkdir -p /run/netns /run/netplumb && \
                 mount -t sysfs none /sys 2>/dev/null; ip link set lo up && echo ready && exec sleep 3600",
            )
            .stdout(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().expect("unshare (util-linux) must be installed");
        let out = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .expect("sandbox start");
        assert_eq!(line.trim(), "ready", "sandbox did not start");
        let pid = child.id();
        Self {
            child,
            pid,
            dir: tempdir::TempDir::new(),
        }
    }

    /// The pid of the process holding the sandbox's namespaces (for nsenter).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A command that runs inside the sandbox.
    pub fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t").arg(self.pid.to_string());
        if !is_root() {
            c.arg("-U").arg("--preserve-credentials");
        }
        c.arg(format!("--wd={}", root().display()));
        c.args(["-n", "-m", "--", prog]);
        c.current_dir(root());
        c
    }

    pub fn run(&self, prog: &str, args: &[&str]) -> Output {
        self.cmd(prog)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    pub fn sh(&self, script: &str) -> Output {
        self.run("sh", &["-c", script])
    }

    /// Run a shell snippet that must succeed; returns stdout.
    pub fn ok(&self, script: &str) -> String {
        let o = self.sh(script);
        assert!(
            o.status.success(),
            "`{script}` failed: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    pub fn netplumb(&self, args: &[&str]) -> Output {
        self.run(BIN, args)
    }

    /// netplumb that must succeed; returns stdout.
    pub fn np_ok(&self, args: &[&str]) -> String {
        let o = self.netplumb(args);
        assert!(
            o.status.success(),
            "netplumb {args:?} failed:\n{}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    /// `down --name NAME` after `up` was killed `ms` into its run. Killed
    /// before it took the topology's lock (a loaded machine, a debug build),
    /// `up` never used the name and `down` rightly calls it unknown; the
    /// caller's snapshot then shows that nothing was made either way.
    pub fn down_after_kill(&self, name: &str, ms: u64) {
        let o = self.netplumb(&["down", "--name", name]);
        let err = text(&o.stderr);
        assert!(
            o.status.success() || err.contains(&format!("no topology named '{name}'")),
            "down after kill -9 at {ms} ms failed: {err}"
        );
    }

    pub fn json(&self, script: &str) -> serde_json::Value {
        let out = self.ok(script);
        if out.trim().is_empty() {
            return serde_json::Value::Array(vec![]);
        }
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("bad JSON from `{script}`: {e}\n{out}"))
    }

    /// Write a script into the test's scratch dir; returns its path.
    pub fn script(&self, name: &str, body: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, body).expect("write script");
        p.display().to_string()
    }

    /// Everything a user could check, as one comparable string: namespaces,
    /// and per namespace links, addresses, routes and the nft ruleset.
    pub fn snapshot(&self) -> String {
        self.ok(
            "for ns in '' $(ip netns list | cut -d' ' -f1 | sort); do \
               if [ -z \"$ns\" ]; then p=''; echo '== host'; else p=\"-n $ns\"; echo \"== $ns\"; fi; \
               ip $p -br link | sed 's/  */ /g' | cut -d' ' -f1,4 | sort; \
               ip $p -br addr | sed 's/  */ /g' | cut -d' ' -f1,3- | sort; \
               ip $p route | sort; ip $p -6 route | grep -v '^fe80' | sort; \
               if [ -z \"$ns\" ]; then nft list ruleset 2>/dev/null; sysctl -n net.ipv4.ip_forward; \
               else ip netns exec $ns nft list ruleset 2>/dev/null; ip netns exec $ns sysctl -n net.ipv4.ip_forward; fi; \
             done",
        )
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn script_path(rel: &str) -> String {
    root().join(rel).display().to_string()
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// A TCP (or UDP) server inside namespace `ns` answering every connection
/// with `reply` and the peer's address ("zc3 from 10.200.0.1"). Killed on drop.
pub struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Sandbox {
    pub fn server(&self, ns: &str, bind: &str, ports: &[u16], reply: &str, udp: bool) -> Server {
        let fam = if bind.contains(':') {
            "AF_INET6"
        } else {
            "AF_INET"
        };
        let kind = if udp { "SOCK_DGRAM" } else { "SOCK_STREAM" };
        let code = format!(
            r#"
import socket, selectors, sys
sel = selectors.DefaultSelector()
for p in {ports:?}:
    s = socket.socket(socket.{fam}, socket.{kind})
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("{bind}", p))
    if not {udp}: s.listen(64)
    sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        s = key.fileobj
        if {udp}:
            data, peer = s.recvfrom(100)
            s.sendto(("{reply} from %s" % peer[0]).encode(), peer)
        else:
            c, peer = s.accept()
            c.sendall(("{reply} from %s" % peer[0]).encode())
            c.close()
"#,
            udp = if udp { "True" } else { "False" },
        );
        let mut child = self
            .cmd("ip")
            .args(["netns", "exec", ns, "python3", "-c", &code])
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("python3");
        let out = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .expect("server start");
        assert_eq!(line.trim(), "ready", "server in {ns} did not start");
        Server(child)
    }

    /// Connect from `ns` to addr:port; the server's reply, or None.
    pub fn fetch(&self, ns: &str, addr: &str, port: u16, udp: bool) -> Option<String> {
        let fam = if addr.contains(':') {
            "AF_INET6"
        } else {
            "AF_INET"
        };
        let code = if udp {
            format!(
                "import socket\ns=socket.socket(socket.{fam}, socket.SOCK_DGRAM)\ns.settimeout(2)\ns.sendto(b'x', ('{addr}', {port}))\nprint(s.recv(100).decode())"
            )
        } else {
            format!(
                "import socket\ns=socket.create_connection(('{addr}', {port}), timeout=2)\ns.settimeout(2)\nprint(s.recv(100).decode())"
            )
        };
        let o = self.run("ip", &["netns", "exec", ns, "python3", "-c", &code]);
        o.status
            .success()
            .then(|| text(&o.stdout).trim().to_string())
    }
}

/// Run netplumb as the unprivileged user `nobody` (no sandbox of ours).
pub fn as_nobody(args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(BIN)
        .args(args)
        .current_dir(root())
        .output()
        .expect("setpriv (util-linux)")
}

/// A state directory the tests know the path of (strace watches a file in
/// it; planted records go there).
pub const STATE: &str = "/run/nps";

impl Sandbox {
    /// netplumb with its state in [`STATE`].
    pub fn np_at(&self, args: &[&str]) -> Output {
        self.cmd(BIN)
            .env("NETPLUMB_STATE_DIR", STATE)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("netplumb")
    }

    /// [`Sandbox::np_at`] that must succeed; its stdout.
    pub fn np_at_ok(&self, args: &[&str]) -> String {
        let o = self.np_at(args);
        assert!(
            o.status.success(),
            "netplumb {args:?} failed:\n{}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }
}
