//! The kernel's floor for bench workload S(N, 0) (`../shared/bench/README.md`):
//! the objects `scripts/bulk.rhai --set k=0` makes, made the fastest
//! straightforward way — raw rtnetlink, no netplumb code — so `bench/run.sh`
//! can print netplumb's times as ratios of this program's in the same run.
//!
//! ```text
//! floor up N   [--bridges B] [--threads T] [--no-mcast-snooping] [--no-ipv6] [--pipeline] [--ready]
//! floor down N [--bridges B] [--threads T] [--bridge-first]
//! floor wait N
//! ```
//!
//! `up`: bridges `foobr0`…`foobr{B-1}` (172.{18+b}.0.1/16, up), namespace i
//! (1-based) on bridge `(i-1) / ceil(N/B)`; namespaces `bns{i}` made on T
//! threads (`unshare(CLONE_NEWNET)` + bind mount onto /run/netns, like
//! `ip netns add`, and an rtnetlink socket opened inside each); one request
//! per veth from the host (`bv{i}` on its bridge and up, the peer born inside
//! `bns{i}` as `eth0`, ifindex 2); then, on T threads, lo up, eth0 up, its
//! address 172.{18+b}.{i/250}.{i%250+2}/16 and the default route via the
//! bridge, four requests in one send per namespace. No NAT: S(N, 0)'s one
//! masquerade rule is left out (it is one nf_tables batch of a few messages).
//! `--pipeline` instead has each thread take its namespaces end to end (make,
//! veth from its own host socket, configure): 2.5–3× slower here than the
//! phases above, kept only to show that. `--ready` then also waits, as
//! netplumb's `up` does, until every eth0, host end and bridge is
//! operationally up, asking for each link alone (which has the kernel run
//! its pending link-watch event): eth0 on the namespace threads, the rest
//! from the host.
//!
//! `down`: the namespaces' mounts detached and files unlinked on T threads,
//! then waiting (on RTNLGRP_LINK events) until every host end `bv{i}` is
//! really destroyed, then the bridges deleted (`--bridge-first`: before).
//! `wait`: only the waiting, for after a teardown made by someone else (so
//! the kernel's deferred work does not spill into the next measurement).
//!
//! Phase timings go to stdout. A failure stops the run where it is: run it
//! in a throwaway namespace (bench/run.sh does), which takes the rest away.

mod nl;

use std::collections::HashSet;
use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoBridge, InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};

use nl::{Events, Rtnl};

const NETNS_DIR: &str = "/run/netns";
/// A Linux bridge refuses its 1024th port (EXFULL).
const MAX_PORTS: usize = 1023;
/// The first device a fresh namespace gets after lo.
const ETH0_INDEX: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{0}\nusage: floor up N [--bridges B] [--threads T] [--no-mcast-snooping] [--no-ipv6] [--pipeline] [--ready]\n       floor down N [--bridges B] [--threads T] [--bridge-first]\n       floor wait N"
    )]
    Usage(String),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("{what}: the kernel refused: {source}")]
    Kernel { what: String, source: io::Error },
    #[error("a worker thread panicked")]
    Panicked,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmd {
    Up,
    Down,
    Wait,
}

#[derive(Debug, Clone)]
struct Opts {
    cmd: Cmd,
    n: usize,
    bridges: usize,
    threads: usize,
    mcast_snooping: bool,
    ipv6: bool,
    bridge_first: bool,
    pipeline: bool,
    ready: bool,
}

fn parse(args: &[String]) -> Result<Opts, Error> {
    let usage = |m: String| Error::Usage(m);
    let cmd = match args.first().map(String::as_str) {
        Some("up") => Cmd::Up,
        Some("down") => Cmd::Down,
        Some("wait") => Cmd::Wait,
        other => return Err(usage(format!("expected up, down or wait, got {other:?}"))),
    };
    let num = |s: Option<&String>, what: &str| -> Result<usize, Error> {
        let s = s.ok_or_else(|| usage(format!("{what} needs a number")))?;
        s.parse::<usize>()
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| usage(format!("{what}: {s:?} is not a positive number")))
    };
    let mut o = Opts {
        cmd,
        n: num(args.get(1), "N")?,
        bridges: 1,
        threads: 4,
        mcast_snooping: true,
        ipv6: true,
        bridge_first: false,
        pipeline: false,
        ready: false,
    };
    let mut it = args[2..].iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bridges" => o.bridges = num(it.next(), "--bridges")?,
            "--threads" => o.threads = num(it.next(), "--threads")?,
            "--no-mcast-snooping" if cmd == Cmd::Up => o.mcast_snooping = false,
            "--no-ipv6" if cmd == Cmd::Up => o.ipv6 = false,
            "--bridge-first" if cmd == Cmd::Down => o.bridge_first = true,
            "--pipeline" if cmd == Cmd::Up => o.pipeline = true,
            "--ready" if cmd == Cmd::Up => o.ready = true,
            other => return Err(usage(format!("unknown option {other}"))),
        }
    }
    let per = o.n.div_ceil(o.bridges);
    if per > MAX_PORTS {
        return Err(usage(format!(
            "{} namespaces on {} bridge(s) is {per} ports a bridge; a bridge takes at most {MAX_PORTS}: raise --bridges",
            o.n, o.bridges
        )));
    }
    if o.bridges > 255 - 18 || o.n / 250 > 255 {
        return Err(usage(
            "addresses 172.{18+b}.{i/250}.{i%250+2} need B ≤ 237 and N < 64000".into(),
        ));
    }
    Ok(o)
}

impl Opts {
    fn bridge_of(&self, i: usize) -> usize {
        (i - 1) / self.n.div_ceil(self.bridges)
    }
    fn gateway(b: usize) -> Ipv4Addr {
        Ipv4Addr::new(172, 18 + b as u8, 0, 1)
    }
    fn addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(
            172,
            18 + self.bridge_of(i) as u8,
            (i / 250) as u8,
            (i % 250 + 2) as u8,
        )
    }
    /// Namespaces 1..=N dealt out to the threads round-robin.
    fn shares(&self) -> Vec<Vec<usize>> {
        let t = self.threads.min(self.n);
        (0..t)
            .map(|k| (1 + k..=self.n).step_by(t).collect())
            .collect()
    }
}

fn ns_path(i: usize) -> PathBuf {
    Path::new(NETNS_DIR).join(format!("bns{i}"))
}

fn errno(what: impl Into<String>) -> Error {
    Error::Io {
        what: what.into(),
        source: io::Error::last_os_error(),
    }
}

fn cpath(p: &Path) -> Result<CString, Error> {
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| Error::Io {
        what: format!("{}", p.display()),
        source: io::Error::other("NUL in path"),
    })
}

/// Like `ip netns add`: /run/netns a shared mount point, so a namespace's
/// unmount propagates to every mount namespace that sees it.
fn prepare_netns_dir() -> Result<(), Error> {
    fs::create_dir_all(NETNS_DIR).map_err(|source| Error::Io {
        what: format!("create {NETNS_DIR}"),
        source,
    })?;
    let dir = cpath(Path::new(NETNS_DIR))?;
    let none = c"none";
    let mut bound = false;
    loop {
        // SAFETY: every pointer is a NUL-terminated string that outlives the call.
        if unsafe {
            libc::mount(
                c"".as_ptr(),
                dir.as_ptr(),
                none.as_ptr(),
                libc::MS_SHARED | libc::MS_REC,
                std::ptr::null(),
            )
        } == 0
        {
            return Ok(());
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) || bound {
            return Err(errno(format!("make {NETNS_DIR} a shared mount")));
        }
        // SAFETY: as above.
        if unsafe {
            libc::mount(
                dir.as_ptr(),
                dir.as_ptr(),
                none.as_ptr(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            )
        } != 0
        {
            return Err(errno(format!("bind {NETNS_DIR} onto itself")));
        }
        bound = true;
    }
}

/// One namespace's handles: its fd (for the veth peer) and a socket inside it.
struct Ns {
    i: usize,
    fd: OwnedFd,
    rtnl: Rtnl,
}

/// On the calling thread: a new network namespace, pinned at /run/netns/bns{i}.
/// Leaves the thread inside it.
fn make_netns(i: usize, ipv6: bool) -> Result<Ns, Error> {
    let path = ns_path(i);
    File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|source| Error::Io {
            what: format!("create {}", path.display()),
            source,
        })?;
    // SAFETY: unshare only changes this thread's namespace membership.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(errno("unshare(CLONE_NEWNET)"));
    }
    let target = cpath(&path)?;
    // SAFETY: NUL-terminated strings outliving the call; /proc/thread-self is
    // this thread's own namespace, not the process's first thread's.
    if unsafe {
        libc::mount(
            c"/proc/thread-self/ns/net".as_ptr(),
            target.as_ptr(),
            c"none".as_ptr(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    } != 0
    {
        return Err(errno(format!(
            "bind-mount the namespace onto {}",
            path.display()
        )));
    }
    let fd: OwnedFd = File::open(&path)
        .map_err(|source| Error::Io {
            what: format!("open {}", path.display()),
            source,
        })?
        .into();
    if !ipv6 {
        // /proc/sys/net is the calling thread's namespace's. `default` covers
        // eth0 (born later), `all` the lo that exists already.
        for which in ["all", "default"] {
            let p = format!("/proc/sys/net/ipv6/conf/{which}/disable_ipv6");
            fs::write(&p, "1").map_err(|source| Error::Io {
                what: format!("write {p}"),
                source,
            })?;
        }
    }
    Ok(Ns {
        i,
        fd,
        rtnl: Rtnl::open()?,
    })
}

fn up_flags(m: &mut LinkMessage) {
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
}

fn addr_msg(index: u32, ip: Ipv4Addr, prefix: u8) -> RouteNetlinkMessage {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = prefix;
    m.header.index = index;
    m.attributes.push(AddressAttribute::Local(IpAddr::V4(ip)));
    m.attributes.push(AddressAttribute::Address(IpAddr::V4(ip)));
    RouteNetlinkMessage::NewAddress(m)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, Result<T, Error>>) -> Result<T, Error> {
    h.join().map_err(|_| Error::Panicked)?
}

fn make_bridges(o: &Opts, host: &mut Rtnl) -> Result<Vec<u32>, Error> {
    for b in 0..o.bridges {
        let name = format!("foobr{b}");
        let mut m = LinkMessage::default();
        up_flags(&mut m);
        m.attributes.push(LinkAttribute::IfName(name.clone()));
        let mut info = vec![LinkInfo::Kind(InfoKind::Bridge)];
        if !o.mcast_snooping {
            info.push(LinkInfo::Data(InfoData::Bridge(vec![
                InfoBridge::MulticastSnooping(false),
            ])));
        }
        m.attributes.push(LinkAttribute::LinkInfo(info));
        host.push(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
            format!("create bridge {name}"),
        )?;
    }
    host.flush()?;
    let mut bridges = Vec::with_capacity(o.bridges);
    for b in 0..o.bridges {
        let index = host.index_of(&format!("foobr{b}"))?;
        host.push(
            addr_msg(index, Opts::gateway(b), 16),
            NLM_F_CREATE | NLM_F_EXCL,
            format!("address foobr{b}"),
        )?;
        bridges.push(index);
    }
    host.flush()?;
    Ok(bridges)
}

/// From the host: `bv{i}` on its bridge and up, its peer born in the namespace as eth0.
fn push_veth(o: &Opts, host: &mut Rtnl, ns: &Ns, bridges: &[u32]) -> Result<(), Error> {
    // Not up here: a veth end can only open once its peer is linked
    // (ENOTCONN), which is after the peer's own configuration.
    let mut peer = LinkMessage::default();
    peer.header.index = ETH0_INDEX;
    peer.attributes.push(LinkAttribute::IfName("eth0".into()));
    peer.attributes
        .push(LinkAttribute::NetNsFd(ns.fd.as_raw_fd()));
    let mut m = LinkMessage::default();
    up_flags(&mut m);
    m.attributes
        .push(LinkAttribute::IfName(format!("bv{}", ns.i)));
    m.attributes
        .push(LinkAttribute::Controller(bridges[o.bridge_of(ns.i)]));
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    host.push(
        RouteNetlinkMessage::NewLink(m),
        NLM_F_CREATE | NLM_F_EXCL,
        format!("create veth bv{} (peer eth0 in bns{})", ns.i, ns.i),
    )
}

/// Inside the namespace: lo up, eth0 up, its address, the default route; one send.
fn configure_ns(o: &Opts, ns: &mut Ns) -> Result<(), Error> {
    let mut lo = LinkMessage::default();
    up_flags(&mut lo);
    lo.header.index = 1;
    ns.rtnl.push(
        RouteNetlinkMessage::NewLink(lo),
        0,
        format!("set lo up in bns{}", ns.i),
    )?;
    let mut eth0 = LinkMessage::default();
    up_flags(&mut eth0);
    eth0.header.index = ETH0_INDEX;
    ns.rtnl.push(
        RouteNetlinkMessage::NewLink(eth0),
        0,
        format!("set eth0 up in bns{}", ns.i),
    )?;
    ns.rtnl.push(
        addr_msg(ETH0_INDEX, o.addr(ns.i), 16),
        NLM_F_CREATE | NLM_F_EXCL,
        format!("address eth0 in bns{}", ns.i),
    )?;
    let mut r = RouteMessage::default();
    r.header.address_family = AddressFamily::Inet;
    r.header.table = RouteHeader::RT_TABLE_MAIN;
    r.header.protocol = RouteProtocol::Boot;
    r.header.scope = RouteScope::Universe;
    r.header.kind = RouteType::Unicast;
    r.attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(Opts::gateway(
            o.bridge_of(ns.i),
        ))));
    ns.rtnl.push(
        RouteNetlinkMessage::NewRoute(r),
        NLM_F_CREATE | NLM_F_EXCL,
        format!("default route in bns{}", ns.i),
    )?;
    ns.rtnl.flush()
}

fn up(o: &Opts) -> Result<(), Error> {
    let start = Instant::now();
    let mut host = Rtnl::open()?;
    let bridges = make_bridges(o, &mut host)?;
    let t_bridges = start.elapsed();
    prepare_netns_dir()?;
    let head = format!(
        "floor up n={} bridges={} threads={} mcast_snooping={} ipv6={}",
        o.n,
        o.bridges,
        o.threads,
        on(o.mcast_snooping),
        on(o.ipv6)
    );

    if o.pipeline {
        // Every thread takes its namespaces end to end, with its own host
        // socket (opened before its first unshare, so in the host).
        let t = Instant::now();
        let bridges = &bridges;
        std::thread::scope(|s| {
            let hs: Vec<_> = o
                .shares()
                .into_iter()
                .map(|share| {
                    s.spawn(move || {
                        let mut host = Rtnl::open()?;
                        for i in share {
                            let mut ns = make_netns(i, o.ipv6)?;
                            push_veth(o, &mut host, &ns, bridges)?;
                            host.flush()?;
                            configure_ns(o, &mut ns)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            hs.into_iter().map(join).collect::<Result<Vec<()>, _>>()
        })?;
        println!(
            "{head} pipeline: bridges {}, namespaces end to end {}, total {}",
            ms(t_bridges),
            ms(t.elapsed()),
            ms(start.elapsed())
        );
        return Ok(());
    }

    let t = Instant::now();
    let mut nss: Vec<Ns> = std::thread::scope(|s| {
        let hs: Vec<_> = o
            .shares()
            .into_iter()
            .map(|share| {
                s.spawn(move || {
                    share
                        .into_iter()
                        .map(|i| make_netns(i, o.ipv6))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        hs.into_iter().map(join).collect::<Result<Vec<_>, _>>()
    })?
    .into_iter()
    .flatten()
    .collect();
    nss.sort_by_key(|ns| ns.i);
    let t_netns = t.elapsed();

    let t = Instant::now();
    for ns in &nss {
        push_veth(o, &mut host, ns, &bridges)?;
    }
    host.flush()?;
    let t_host = t.elapsed();

    let t = Instant::now();
    let per = nss.len().div_ceil(o.threads.min(nss.len()).max(1));
    std::thread::scope(|s| {
        let hs: Vec<_> = nss
            .chunks_mut(per.max(1))
            .map(|chunk| s.spawn(move || chunk.iter_mut().try_for_each(|ns| configure_ns(o, ns))))
            .collect();
        hs.into_iter().map(join).collect::<Result<Vec<()>, _>>()
    })?;
    let t_inns = t.elapsed();
    let t = Instant::now();
    if o.ready {
        std::thread::scope(|s| {
            let hs: Vec<_> = nss
                .chunks_mut(per.max(1))
                .map(|chunk| {
                    s.spawn(move || {
                        chunk
                            .iter_mut()
                            .try_for_each(|ns| until_up(&mut ns.rtnl, "eth0"))
                    })
                })
                .collect();
            hs.into_iter().map(join).collect::<Result<Vec<()>, _>>()
        })?;
        for i in 1..=o.n {
            until_up(&mut host, &format!("bv{i}"))?;
        }
        for b in 0..o.bridges {
            until_up(&mut host, &format!("foobr{b}"))?;
        }
    }
    let t_ready = t.elapsed();
    drop(nss);
    let ready = match o.ready {
        true => format!(", ready {}", ms(t_ready)),
        false => String::new(),
    };
    println!(
        "{head}: bridges {}, netns {}, host veths {}, in-namespace {}{ready}, total {}",
        ms(t_bridges),
        ms(t_netns),
        ms(t_host),
        ms(t_inns),
        ms(start.elapsed())
    );
    Ok(())
}

/// Ask for `name` until it is operationally up (1 ms apart, 10 s at most).
fn until_up(rt: &mut Rtnl, name: &str) -> Result<(), Error> {
    let t = Instant::now();
    while !rt.oper_up(name)? {
        if t.elapsed() > Duration::from_secs(10) {
            return Err(Error::Io {
                what: format!("wait for {name}"),
                source: io::Error::other("not operationally up after 10 s"),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn on(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn delete_bridges(host: &mut Rtnl, bridges: &[(u32, String)]) -> Result<(), Error> {
    for (index, name) in bridges {
        let mut m = LinkMessage::default();
        m.header.index = *index;
        host.push(
            RouteNetlinkMessage::DelLink(m),
            0,
            format!("delete bridge {name}"),
        )?;
    }
    host.flush()
}

fn remove_netns(i: usize) -> Result<(), Error> {
    let path = ns_path(i);
    let c = cpath(&path)?;
    // SAFETY: a NUL-terminated path outliving the call.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(errno(format!("unmount {}", path.display())));
    }
    fs::remove_file(&path).map_err(|source| Error::Io {
        what: format!("remove {}", path.display()),
        source,
    })
}

/// Until no link of `waiting` exists; returns how often it re-read the links
/// (event timeouts or overruns).
fn wait_gone(
    events: &mut Events,
    host: &mut Rtnl,
    mut waiting: HashSet<u32>,
) -> Result<usize, Error> {
    let mut resyncs = 0;
    while !waiting.is_empty() {
        match events.deleted()? {
            Some(gone) => gone.iter().for_each(|i| {
                waiting.remove(i);
            }),
            None => {
                resyncs += 1;
                let present: HashSet<u32> = host.links()?.into_iter().map(|(i, _)| i).collect();
                waiting.retain(|i| present.contains(i));
            }
        }
    }
    Ok(resyncs)
}

fn host_ends(o: &Opts, links: &[(u32, String)]) -> HashSet<u32> {
    let veths: HashSet<String> = (1..=o.n).map(|i| format!("bv{i}")).collect();
    links
        .iter()
        .filter(|(_, n)| veths.contains(n))
        .map(|(i, _)| *i)
        .collect()
}

fn wait(o: &Opts) -> Result<(), Error> {
    let start = Instant::now();
    let mut events = Events::open()?;
    let mut host = Rtnl::open()?;
    let waiting = host_ends(o, &host.links()?);
    let left = waiting.len();
    let resyncs = wait_gone(&mut events, &mut host, waiting)?;
    println!(
        "floor wait n={}: {left} host ends went in {} ({resyncs} re-reads)",
        o.n,
        ms(start.elapsed())
    );
    Ok(())
}

fn down(o: &Opts) -> Result<(), Error> {
    let start = Instant::now();
    // Subscribe before looking, so no destruction falls between the two.
    let mut events = Events::open()?;
    let mut host = Rtnl::open()?;
    let links = host.links()?;
    let bridge_names: HashSet<String> = (0..o.bridges).map(|b| format!("foobr{b}")).collect();
    let waiting = host_ends(o, &links);
    let bridges: Vec<(u32, String)> = links
        .into_iter()
        .filter(|(_, n)| bridge_names.contains(n))
        .collect();
    let mut t_bridges = Duration::ZERO;
    if o.bridge_first {
        let t = Instant::now();
        delete_bridges(&mut host, &bridges)?;
        t_bridges = t.elapsed();
    }

    let t = Instant::now();
    std::thread::scope(|s| {
        let hs: Vec<_> = o
            .shares()
            .into_iter()
            .map(|share| s.spawn(move || share.into_iter().try_for_each(remove_netns)))
            .collect();
        hs.into_iter().map(join).collect::<Result<Vec<()>, _>>()
    })?;
    let t_netns = t.elapsed();

    let t = Instant::now();
    let resyncs = wait_gone(&mut events, &mut host, waiting)?;
    let t_wait = t.elapsed();

    if !o.bridge_first {
        let t = Instant::now();
        delete_bridges(&mut host, &bridges)?;
        t_bridges = t.elapsed();
    }
    println!(
        "floor down n={} bridges={} threads={}{}: umount+unlink {}, wait for host ends {} ({resyncs} re-reads), delete bridges {}, total {}",
        o.n,
        o.bridges,
        o.threads,
        if o.bridge_first { " bridge-first" } else { "" },
        ms(t_netns),
        ms(t_wait),
        ms(t_bridges),
        ms(start.elapsed())
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run = parse(&args).and_then(|o| match o.cmd {
        Cmd::Up => up(&o),
        Cmd::Down => down(&o),
        Cmd::Wait => wait(&o),
    });
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ Error::Usage(_)) => {
            eprintln!("floor: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("floor: {e}");
            ExitCode::FAILURE
        }
    }
}
