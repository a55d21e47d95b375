//! Every kernel test runs on its own thread inside a fresh network namespace,
//! so tests run in parallel and the machine's own ruleset is never touched.
#![allow(dead_code)]

pub mod lab;
pub mod net;

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use netplumb_nft::{
    DnatMapping, Endpoint, FilterMatch, FilterProto, FilterRule, L4Proto, NatRule, NatTable,
};
use serde_json::Value;

pub struct Netns {
    fd: File,
}

impl Netns {
    /// Runs `nft ARGS` (stdin = input) inside this namespace.
    pub fn nft(&self, args: &[&str], input: Option<&str>) -> (bool, String, String) {
        let fd = self.fd.as_raw_fd();
        let mut cmd = Command::new("nft");
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: setns is async-signal-safe; fd stays open until the child has exec'd.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn nft");
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(i) = input {
            stdin.write_all(i.as_bytes()).expect("write nft input");
        }
        drop(stdin);
        let out = child.wait_with_output().expect("nft output");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `nft -j list ruleset` with handles dropped and map elements sorted
    /// (hash maps dump in per-set random order).
    pub fn ruleset_json(&self) -> Value {
        let (ok, out, err) = self.nft(&["-j", "list", "ruleset"], None);
        assert!(ok, "nft -j list ruleset failed: {err}");
        let mut v: Value = serde_json::from_str(&out).expect("nft json");
        normalise(&mut v);
        v
    }

    /// Runs a shell snippet (`sh -c`) inside this namespace.
    pub fn sh(&self, script: &str) -> (bool, String, String) {
        let fd = self.fd.as_raw_fd();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]).stdin(Stdio::null());
        // SAFETY: setns is async-signal-safe; fd stays open until the child has exec'd.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = cmd.output().expect("spawn sh");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn ruleset_text(&self) -> String {
        let (ok, out, err) = self.nft(&["list", "ruleset"], None);
        assert!(ok, "nft list ruleset failed: {err}");
        out
    }
}

fn normalise(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("handle");
            m.remove("metainfo");
            for (k, x) in m.iter_mut() {
                normalise(x);
                if let (true, Value::Array(a)) = (k == "elem", x) {
                    a.sort_by_key(|e| e.to_string());
                }
            }
        }
        Value::Array(a) => {
            a.iter_mut().for_each(normalise);
            a.retain(|x| !x.as_object().is_some_and(|o| o.is_empty()));
        }
        _ => {}
    }
}

pub fn in_netns<T: Send + 'static>(f: impl FnOnce(&Netns) -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("unshare(CLONE_NEWNET): run tests as root");
        let fd = File::open("/proc/thread-self/ns/net").expect("open thread netns");
        f(&Netns { fd })
    })
    .join()
    .expect("netns thread panicked")
}

pub fn dnat(tag: usize, port: u16, to: &str, to_port: Option<u16>) -> NatRule {
    NatRule::Dnat(DnatMapping {
        proto: L4Proto::Tcp,
        daddr: None,
        iif: None,
        ports: (port, port),
        to_addr: to.parse().expect("addr"),
        to_port,
        tag,
    })
}

pub fn mapping(tag: usize) -> DnatMapping {
    DnatMapping {
        proto: L4Proto::Tcp,
        daddr: None,
        iif: None,
        ports: (80, 80),
        to_addr: "172.17.0.3".parse().expect("addr"),
        to_port: None,
        tag,
    }
}

/// One of everything the script language can produce.
pub fn kitchen_sink(name: &str) -> NatTable {
    let m = mapping;
    let rules = vec![
        NatRule::Masquerade {
            src: "172.18.0.0/16".parse().expect("net"),
            oif: None,
            tag: 1,
        },
        NatRule::Masquerade {
            src: "10.9.8.0/21".parse().expect("net"),
            oif: Some("eth0".into()),
            tag: 2,
        },
        NatRule::Snat {
            src: "172.19.0.0/24".parse().expect("net"),
            to: "192.168.1.10".parse().expect("a"),
            oif: Some("br0".into()),
            tag: 3,
        },
        NatRule::Masquerade {
            src: "fd00:18::/64".parse().expect("net"),
            oif: None,
            tag: 4,
        },
        NatRule::Dnat(DnatMapping {
            ports: (10050, 10050),
            to_port: Some(10050),
            ..m(10)
        }),
        NatRule::Dnat(DnatMapping {
            ports: (8080, 8080),
            to_port: Some(80),
            ..m(11)
        }),
        NatRule::Dnat(DnatMapping {
            daddr: Some("10.18.103.2".parse().expect("a")),
            ports: (10050, 10050),
            proto: L4Proto::Udp,
            ..m(12)
        }),
        NatRule::Dnat(DnatMapping {
            ports: (30000, 30100),
            to_addr: "172.17.0.9".parse().expect("a"),
            ..m(13)
        }),
        NatRule::Dnat(DnatMapping {
            ports: (40000, 40010),
            to_port: Some(443),
            ..m(14)
        }),
        NatRule::Dnat(DnatMapping {
            daddr: Some("10.18.103.3".parse().expect("a")),
            ports: (5000, 5100),
            ..m(15)
        }),
        NatRule::Dnat(DnatMapping {
            iif: Some("eth1".into()),
            ports: (2222, 2222),
            to_port: Some(22),
            ..m(16)
        }),
        NatRule::Dnat(DnatMapping {
            to_addr: "fd00:17::3".parse().expect("a"),
            ports: (80, 80),
            to_port: Some(8080),
            ..m(17)
        }),
        NatRule::Dnat(DnatMapping {
            to_addr: "fd00:17::4".parse().expect("a"),
            daddr: Some("fd00:1::1".parse().expect("a")),
            ports: (53, 53),
            proto: L4Proto::Udp,
            ..m(18)
        }),
        NatRule::Dnat(DnatMapping {
            to_addr: "fd00:17::5".parse().expect("a"),
            ports: (60000, 65535),
            ..m(19)
        }),
        NatRule::Dnat(DnatMapping {
            ports: (81, 81),
            ..m(20)
        }),
        NatRule::Hairpin {
            subnet: "172.18.0.0/16".parse().expect("net"),
            tag: 21,
        },
        NatRule::Hairpin {
            subnet: "fd00:18::/64".parse().expect("net"),
            tag: 22,
        },
        NatRule::LocalhostMasquerade {
            oif: "br0".into(),
            tag: 23,
        },
    ];
    NatTable {
        name: name.into(),
        rules,
        userdata: b"spec-hash-0123456789abcdef".to_vec(),
        ..Default::default()
    }
}

fn fm(
    from: Option<Endpoint>,
    to: Option<Endpoint>,
    proto: Option<FilterProto>,
    ports: Option<(u16, u16)>,
    tag: usize,
) -> FilterMatch {
    FilterMatch {
        from,
        to,
        proto,
        ports,
        tag,
    }
}

pub fn net(s: &str) -> Option<Endpoint> {
    Some(Endpoint::Net(s.parse().expect("net")))
}

pub fn iface(s: &str) -> Option<Endpoint> {
    Some(Endpoint::Iface(s.into()))
}

/// Filter rules of every shape the planner knows.
pub fn filter_sink() -> Vec<FilterRule> {
    use FilterProto::*;
    vec![
        FilterRule::Allow(fm(
            net("10.1.0.0/16"),
            net("10.2.0.0/16"),
            Some(Tcp),
            Some((8000, 8100)),
            100,
        )),
        FilterRule::Allow(fm(
            net("10.1.2.3/32"),
            net("10.2.0.9/32"),
            Some(Tcp),
            Some((22, 22)),
            101,
        )),
        FilterRule::Allow(fm(iface("eth0"), iface("br0"), None, None, 102)),
        FilterRule::Allow(fm(None, iface("br1"), Some(Udp), Some((53, 53)), 103)),
        FilterRule::Deny(fm(
            net("fd00:1::/64"),
            None,
            Some(Udp),
            Some((5353, 5353)),
            104,
        )),
        FilterRule::Deny(fm(iface("eth1"), None, Some(Icmp), None, 105)),
        FilterRule::Deny(fm(
            net("10.9.0.5/32"),
            iface("br0"),
            Some(Tcp),
            Some((80, 80)),
            106,
        )),
        FilterRule::Deny(fm(None, None, Some(Udp), Some((65000, 65535)), 107)),
        FilterRule::Deny(fm(net("0.0.0.0/1"), None, None, None, 108)),
        FilterRule::Deny(fm(net("255.255.255.0/24"), None, None, None, 109)),
        // overlaps 108 (same shape): goes to a second set
        FilterRule::Deny(fm(net("10.0.0.0/8"), None, None, None, 110)),
        FilterRule::Deny(fm(None, net("fd00:2::/48"), Some(Icmp), None, 111)),
        FilterRule::Deny(fm(None, None, Some(Tcp), None, 112)),
        FilterRule::Isolate {
            bridge: "br0".into(),
            tag: 113,
        },
        FilterRule::Isolate {
            bridge: "br1".into(),
            tag: 114,
        },
    ]
}
