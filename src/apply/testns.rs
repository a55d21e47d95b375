//! Test helper: a private network namespace per test without the CLI.
//!
//! A thread calls `unshare(CLONE_NEWNET)` and hands back an fd on its new
//! namespace; the fd keeps the namespace alive after the thread ends, and
//! dropping it (once the processes a test started there are gone) makes the
//! namespace and everything in it vanish. Work runs on fresh threads that
//! `setns` into it, commands (`ip -j …`, `tc -j …`, ping, iperf3) in children
//! that `setns` before exec, so the test harness's own threads never move.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::process::{Child, Command, Output, Stdio};

use nix::sched::{CloneFlags, setns, unshare};

use super::rtnl::Rtnl;
use crate::kernel::KernelError;

pub struct TestNs {
    file: File,
}

/// `let Some(ns) = TestNs::new() else { return };` skips a test (with a note)
/// where namespaces cannot be made: not root.
impl TestNs {
    pub fn new() -> Option<Self> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("note: skipped, needs root (a private network namespace)");
            return None;
        }
        let made = std::thread::spawn(|| -> std::io::Result<File> {
            unshare(CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            File::open("/proc/thread-self/ns/net")
        })
        .join()
        .expect("namespace thread panicked");
        match made {
            Ok(file) => {
                let ns = Self { file };
                ns.ok("ip link set lo up");
                Some(ns)
            }
            Err(e) => {
                eprintln!("note: skipped, cannot unshare a network namespace: {e}");
                None
            }
        }
    }

    /// An fd naming this namespace, for IFLA_NET_NS_FD.
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Run `f` on a thread inside the namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .expect("namespace thread panicked")
        })
    }

    /// Run `f` with an rtnetlink socket opened inside the namespace.
    pub fn rtnl<T: Send>(&self, f: impl FnOnce(&mut Rtnl) -> T + Send) -> T {
        self.run(|| {
            let mut rt = Rtnl::open().expect("rtnetlink socket");
            f(&mut rt)
        })
    }

    /// Send requests and insist the kernel accepts them all.
    pub fn apply(&self, reqs: Vec<super::msg::Req>) {
        let n = reqs.len();
        let replies = self.rtnl(|rt| rt.request_many(reqs));
        assert_eq!(replies.len(), n, "not every request was sent");
        for (i, r) in replies.into_iter().enumerate() {
            if let Err(e) = r {
                panic!("request {i} refused: {e}");
            }
        }
    }

    /// Send one request and return the kernel's answer.
    pub fn try_apply(&self, req: super::msg::Req) -> Result<(), KernelError> {
        self.rtnl(|rt| rt.request(req.0, req.1))
    }

    pub fn command(&self, line: &str) -> Command {
        let mut words = line.split_whitespace().map(str::to_string);
        let prog = words.next().expect("empty command");
        let args: Vec<String> = words.collect();
        super::command_in(
            Some(crate::proc::NsTarget {
                file: &self.file,
                name: None,
            }),
            &prog,
            &args,
        )
    }

    /// Run a command (words split on whitespace) and return its output.
    pub fn output(&self, line: &str) -> Output {
        self.command(line)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {line}: {e}"))
    }

    /// Run a command that must succeed; its stdout.
    pub fn ok(&self, line: &str) -> String {
        let out = self.output(line);
        assert!(
            out.status.success(),
            "{line} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run a command printing JSON (`ip -j …`, `tc -j …`) and parse it.
    pub fn json(&self, line: &str) -> serde_json::Value {
        let out = self.ok(line);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{line}: bad JSON ({e}): {out}"))
    }

    /// Start a background command (a server); the caller kills it.
    pub fn spawn(&self, line: &str) -> Child {
        self.command(line)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {line}: {e}"))
    }

    /// The ifindex of a device here.
    pub fn index(&self, name: &str) -> u32 {
        let v = self.json(&format!("ip -j link show dev {name}"));
        v[0]["ifindex"].as_u64().expect("ifindex") as u32
    }
}

/// `ip -j -d link show dev NAME`, the one object.
pub fn link_json(ns: &TestNs, name: &str) -> serde_json::Value {
    ns.json(&format!("ip -j -d link show dev {name}"))[0].clone()
}

/// A veth pair `a` (here) – `b` (in `other`), both up.
pub fn veth_between(ns: &TestNs, a: &str, other: &TestNs, b: &str) {
    let (m, f) = super::msg::add_veth(a, b, Some(other.fd()), None, true);
    ns.apply(vec![(m, f)]);
    other.ok(&format!("ip link set {b} up"));
}

/// The dumped RTM_NEWLINK of one device, as our parsers see it.
pub fn dump_link(ns: &TestNs, name: &str) -> netlink_packet_route::link::LinkMessage {
    use netlink_packet_route::RouteNetlinkMessage as M;
    use netlink_packet_route::link::{LinkAttribute, LinkMessage};
    let name = name.to_string();
    ns.rtnl(move |rt| {
        rt.dump(M::GetLink(LinkMessage::default()))
            .expect("link dump")
            .into_iter()
            .find_map(|m| match m {
                M::NewLink(l) if l.attributes.contains(&LinkAttribute::IfName(name.clone())) => {
                    Some(l)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {name} in the dump"))
    })
}

/// Does `ping` from `ns` reach `addr` (a few tries: links settle)?
pub fn pings(ns: &TestNs, addr: &str) -> bool {
    ns.output(&format!("ping -c 3 -i 0.2 -W 1 {addr}"))
        .status
        .success()
}
