//! `netplumb watch`: keep topologies as their scripts say. The kernel's
//! own change notifications (rtnetlink link/address/route groups and
//! nf_tables' group, in the host) wake it; it then runs `up` of each
//! watched topology from its up-record, so a flushed ruleset or a deleted
//! veth is repaired within a second and logged as the `(repaired)` lines
//! `up` prints. Changes inside a namespace send no event to the host: a
//! quiet pass every few seconds catches those.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use miette::Report;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER, protocols::NETLINK_ROUTE};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use crate::cli::ScriptArgs;
use crate::diag;
use crate::ledger;
use crate::opts::Opts;
use crate::uprecord::UpRecord;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    // Async-signal-safe: one atomic store; the loop looks at it.
    STOP.store(true, Ordering::SeqCst);
}

/// rtnetlink groups: links, IPv4/IPv6 addresses and routes.
const RT_GROUPS: u32 = 0x1 | 0x10 | 0x40 | 0x100 | 0x400;
/// NFNLGRP_NFTABLES (7) as a group bit.
const NFT_GROUPS: u32 = 1 << (7 - 1);
/// After a change, wait this long for the rest of it (a reload is many
/// messages) before converging.
const SETTLE: Duration = Duration::from_millis(100);

fn listen(proto: isize, groups: u32) -> std::io::Result<Socket> {
    let mut s = Socket::new(proto)?;
    s.bind(&SocketAddr::new(0, groups))?;
    s.set_non_blocking(true)?;
    Ok(s)
}

/// Read everything queued; did anything arrive?
fn drain(socks: &mut [Socket]) -> bool {
    let mut any = false;
    let mut buf = vec![0u8; 64 * 1024];
    for s in socks.iter_mut() {
        loop {
            match s.recv(&mut &mut buf[..], 0) {
                Ok(0) => break,
                Ok(_) => any = true,
                // We fell behind: something changed all the same.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => any = true,
                Err(_) => break,
            }
        }
    }
    any
}

/// Wait up to `timeout` for a message on any socket, or a stop.
fn wait(socks: &[Socket], timeout: Duration) -> bool {
    let mut fds: Vec<libc::pollfd> = socks
        .iter()
        .map(|s| libc::pollfd {
            fd: s.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fds` is a live array of `fds.len()` pollfd structs for the
    // duration of the call, and the sockets outlive it.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    n > 0
}

fn topologies(names: &[String]) -> Result<Vec<String>, Report> {
    if !names.is_empty() {
        return Ok(names.to_vec());
    }
    let all = ledger::list_topologies().map_err(diag::ledger)?;
    Ok(all
        .into_iter()
        .filter(|n| UpRecord::load(n).is_some())
        .collect())
}

/// `up` of `name` as it was last brought up; quiet passes say nothing
/// unless they change something.
fn converge(o: &Opts, name: &str, quiet: bool) {
    let Some(rec) = UpRecord::load(name) else {
        eprintln!("netplumb watch: topology '{name}' has no up record: skipped");
        return;
    };
    let a = ScriptArgs {
        file: rec.script.clone(),
        set: rec.set.clone(),
        name: Some(name.to_string()),
        max_ops: 50_000_000,
        max_memory: crate::script::limits::DEFAULT_MAX_MEMORY_MIB,
        site: rec.site.clone(),
    };
    let o = Opts { quiet, ..o.clone() };
    if let Err(e) = super::up::up(&o, &a, false) {
        eprintln!("netplumb watch: topology '{name}' could not be repaired:\n{e:?}");
    }
}

pub fn run(o: &Opts, names: &[String], every: u64) -> Result<i32, Report> {
    let act = SigAction::new(
        SigHandler::Handler(on_stop),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for s in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe { sigaction(s, &act) }.map_err(|e| diag::plain(format!("sigaction: {e}"), None))?;
    }
    let open = |p, g| {
        listen(p, g).map_err(|e| diag::plain(format!("cannot listen to kernel events: {e}"), None))
    };
    let mut socks = vec![
        open(NETLINK_ROUTE, RT_GROUPS)?,
        open(NETLINK_NETFILTER, NFT_GROUPS)?,
    ];
    let names = topologies(names)?;
    if names.is_empty() {
        return Err(diag::plain(
            "no topology to watch: none is up",
            Some("bring one up with netplumb up FILE, or name it"),
        ));
    }
    if !o.quiet {
        eprintln!(
            "netplumb watch: keeping {} (SIGTERM stops)",
            names.join(", ")
        );
    }
    // The first pass repairs what drifted while nobody watched.
    for n in &names {
        converge(o, n, true);
    }
    drain(&mut socks);
    let every = Duration::from_secs(every.max(1));
    let mut last = Instant::now();
    while !STOP.load(Ordering::SeqCst) {
        let woke = wait(&socks, Duration::from_millis(250));
        if STOP.load(Ordering::SeqCst) {
            break;
        }
        let event = woke && drain(&mut socks);
        if event {
            std::thread::sleep(SETTLE);
            drain(&mut socks);
        }
        if event || last.elapsed() >= every {
            for n in &names {
                converge(o, n, !event);
            }
            // Our own repairs make events too: they are not news.
            drain(&mut socks);
            last = Instant::now();
        }
    }
    if !o.quiet {
        eprintln!("netplumb watch: stopped; the topologies stay as they are");
    }
    Ok(0)
}
