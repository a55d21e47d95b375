//! `netplumb capture NS:IF …`: an AF_PACKET socket in each namespace, bound
//! to one interface, both directions. One interface is written as classic
//! pcap, several as pcapng (an interface block each); without `-w` a line
//! per packet. Stops at `-c` packets, at `--duration`, or on SIGINT/SIGTERM,
//! always leaving a complete file.

pub mod pcap;
pub mod pcapng;
pub mod socket;
pub mod summary;
mod target;
mod write;

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use miette::Report;

use crate::cli::CaptureArgs;
use crate::diag;
use crate::model::{IfName, NsName};
use crate::opts::Opts;
use socket::{PacketSocket, SockError};
pub use target::Target;
use write::*;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("'{arg}' is not NS:IF: {why}")]
    BadTarget { arg: String, why: String },
    #[error("{0} is given twice")]
    Twice(String),
    #[error("no netns {0}")]
    NoNetns(String),
    #[error("no interface {ifname} in {place}")]
    NoInterface { ifname: String, place: String },
    #[error("cannot capture on {target}: {err}")]
    Socket { target: String, err: SockError },
    #[error("cannot write {0}: {1}")]
    Write(String, io::Error),
    #[error("reading packets on {target}: {err}")]
    Read { target: String, err: SockError },
}

impl CaptureError {
    fn help(&self) -> Option<&'static str> {
        match self {
            CaptureError::NoNetns(_) => Some(
                "`ip netns` lists the namespaces; inside a sandbox world run capture with the same --sandbox=WORLD",
            ),
            CaptureError::NoInterface { .. } => {
                Some("`netplumb show` lists each namespace's links")
            }
            CaptureError::Socket {
                err: SockError::Sys { .. },
                ..
            } => Some("packet sockets need root (or --sandbox)"),
            _ => None,
        }
    }
}

fn stopping() -> bool {
    crate::interrupt::raised()
}

extern "C" fn on_signal(_: libc::c_int) {
    crate::interrupt::raise();
}

fn install_signals() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let act = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for s in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        let _ = unsafe { sigaction(s, &act) };
    }
}

pub fn run(o: &Opts, a: &CaptureArgs, json: bool) -> Result<i32, Report> {
    if !o.sandbox && !nix::unistd::geteuid().is_root() {
        return Err(diag::plain(
            "needs root: capture opens packet sockets in the namespaces",
            Some("run as root, or add --sandbox=WORLD to capture inside a sandbox world"),
        ));
    }
    let r = capture(o, a, json);
    r.map_err(|e| diag::plain(e.to_string(), e.help()))
}

fn capture(o: &Opts, a: &CaptureArgs, json: bool) -> Result<i32, CaptureError> {
    let mut targets = Vec::new();
    for arg in &a.targets {
        let t = Target::parse(arg)?;
        if targets.contains(&t) {
            return Err(CaptureError::Twice(t.label()));
        }
        targets.push(t);
    }
    let socks = targets
        .iter()
        .map(Target::open)
        .collect::<Result<Vec<_>, _>>()?;
    let labels: Vec<String> = targets.iter().map(Target::label).collect();
    if !o.quiet {
        for (l, s) in labels.iter().zip(&socks) {
            if !s.was_up {
                eprintln!("netplumb: {l} is down: its packets show once it is up");
            }
        }
    }
    let mut out = open_out(a, &labels, &socks, json)?;
    crate::interrupt::clear();
    install_signals();
    if !o.quiet {
        let format = match out.sink {
            Sink::Pcap(_) => " (pcap)",
            Sink::Pcapng(_) => " (pcapng)",
            Sink::Lines { .. } => "",
        };
        eprintln!(
            "capturing on {}{}{format}",
            labels.join(", "),
            match a.write.as_deref() {
                Some(p) if p == Path::new("-") => " to stdout".to_string(),
                Some(p) => format!(" to {}", p.display()),
                None => String::new(),
            }
        );
    }
    let res = pump(a, &targets, &socks, &mut out);
    let drops: u64 = socks.iter().map(PacketSocket::drops).sum();
    let (n, err) = match res {
        Ok(n) => (n, None),
        Err((n, e)) => (n, Some(e)),
    };
    if !o.quiet {
        let dropped = if drops > 0 {
            format!(", {drops} dropped by the kernel")
        } else {
            String::new()
        };
        eprintln!(
            "{n} packet{} captured{dropped}",
            if n == 1 { "" } else { "s" }
        );
    }
    match err {
        Some(e) => Err(e),
        None => Ok(0),
    }
}

/// Up to 256 packets queued on `sock` (interface `i`) into `batch`.
fn drain(
    sock: &PacketSocket,
    label: &str,
    buf: &mut [u8],
    down: &mut bool,
    i: usize,
    batch: &mut Vec<(usize, socket::Packet)>,
) -> Result<(), CaptureError> {
    for _ in 0..256 {
        match sock.recv(buf) {
            Ok(Some(p)) => {
                *down = false;
                batch.push((i, p));
            }
            Ok(None) => break,
            // Link set down: the socket reports it once and keeps
            // receiving when the link comes back.
            Err(SockError::Sys {
                err: nix::Error::ENETDOWN,
                ..
            }) => {
                if !*down {
                    eprintln!("netplumb: {label} went down");
                    *down = true;
                }
                break;
            }
            Err(err) => {
                return Err(CaptureError::Read {
                    target: label.to_string(),
                    err,
                });
            }
        }
    }
    Ok(())
}

/// Read until the count, the deadline or a signal. Returns the number of
/// packets written (also on error, with the error).
fn pump(
    a: &CaptureArgs,
    targets: &[Target],
    socks: &[PacketSocket],
    out: &mut Out,
) -> Result<u64, (u64, CaptureError)> {
    let labels: Vec<String> = targets.iter().map(Target::label).collect();
    let deadline = a.duration.map(|d| Instant::now() + d);
    let mut fds: Vec<libc::pollfd> = socks
        .iter()
        .map(|s| libc::pollfd {
            fd: s.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut buf = vec![0u8; a.snaplen as usize];
    let mut n: u64 = 0;
    // Said "is down" for this interface, and no packet since.
    let mut down: Vec<bool> = socks.iter().map(|s| !s.was_up).collect();
    let mut batch: Vec<(usize, socket::Packet)> = Vec::new();
    let werr = |name: &str, e: io::Error| CaptureError::Write(name.to_string(), e);
    loop {
        if a.count.is_some_and(|c| n >= c) {
            break;
        }
        // Signalled or out of time: one last pass over what the kernel has
        // queued already (a packet that arrived before the signal is kept).
        let mut last = stopping();
        let mut wait = Duration::from_millis(500);
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            last |= left.is_zero();
            wait = wait.min(left);
        }
        // The last pass reads without waiting: every socket is drained below.
        if !last {
            // SAFETY: fds is a live array of pollfd of the given length.
            let r = unsafe {
                libc::poll(
                    fds.as_mut_ptr(),
                    fds.len() as libc::nfds_t,
                    wait.as_millis().max(1) as libc::c_int,
                )
            };
            if r <= 0 {
                // Timeout, or EINTR from SIGINT/SIGTERM: the loop head decides.
                continue;
            }
        }
        // Drain a bounded batch from every socket, not only those poll
        // named (a packet queued on one while poll returned for another,
        // the request on the sending end, would otherwise land a batch
        // after the reply), in passes until one finds nothing; then write
        // it in time order so several interfaces interleave as they happened.
        for _pass in 0..4 {
            let before = batch.len();
            for (i, sock) in socks.iter().enumerate() {
                if let Err(e) = drain(sock, &labels[i], &mut buf, &mut down[i], i, &mut batch) {
                    let _ = out.flush();
                    return Err((n, e));
                }
            }
            if batch.len() == before {
                break;
            }
        }
        batch.sort_by_key(|(_, p)| p.ts_ns);
        for (i, p) in batch.drain(..) {
            if a.count.is_some_and(|c| n >= c) {
                break;
            }
            match out.write(i, &labels[i], socks[i].linktype, &p) {
                Ok(()) => n += 1,
                // The reader went away (`| head`, tcpdump -c): done.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(n),
                Err(e) => return Err((n, werr(&out.name, e))),
            }
        }
        if let Err(e) = out.flush() {
            if e.kind() == io::ErrorKind::BrokenPipe {
                return Ok(n);
            }
            return Err((n, werr(&out.name, e)));
        }
        if last {
            break;
        }
    }
    match out.flush() {
        Ok(()) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(n),
        Err(e) => Err((n, werr(&out.name, e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("app:eth0").unwrap();
        assert_eq!(t.ns.as_ref().map(|n| n.as_str()), Some("app"));
        assert_eq!(t.label(), "app:eth0");
        assert_eq!(Target::parse("host:br0").unwrap().ns, None);
        assert_eq!(Target::parse("br0").unwrap().label(), "host:br0");
        assert_eq!(
            Target::parse("a:b:eth0").unwrap().ns.unwrap().as_str(),
            "a:b"
        );
        let e = Target::parse("app:").unwrap_err().to_string();
        assert!(e.starts_with("'app:' is not NS:IF: "), "{e}");
        assert!(Target::parse("app:averyveryverylongname").is_err());
    }
}
