//! `netplumb capture NS:IF …`: an AF_PACKET socket in each namespace, bound
//! to one interface, both directions. One interface is written as classic
//! pcap, several as pcapng (an interface block each); without `-w` a line
//! per packet. Stops at `-c` packets, at `--duration`, or on SIGINT/SIGTERM,
//! always leaving a complete file.

pub mod pcap;
pub mod pcapng;
pub mod socket;
pub mod summary;

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

/// One interface to capture on, as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// None: the namespace netplumb runs in.
    pub ns: Option<NsName>,
    pub ifname: IfName,
}

impl Target {
    /// "NS:IF", "host:IF" or "IF". Interface names cannot hold ':', so the
    /// last ':' splits.
    pub fn parse(arg: &str) -> Result<Self, CaptureError> {
        let bad = |why: String| CaptureError::BadTarget {
            arg: arg.to_string(),
            why,
        };
        let (ns, ifname) = match arg.rsplit_once(':') {
            Some(("host", i)) | Some(("", i)) => (None, i),
            Some((n, i)) => (Some(NsName::new(n).map_err(|e| bad(e.to_string()))?), i),
            None => (None, arg),
        };
        let ifname = IfName::new(ifname).map_err(|e| bad(e.to_string()))?;
        Ok(Self { ns, ifname })
    }

    /// The name written in pcapng's if_name and the lines: "a:eth0", "host:eth0".
    pub fn label(&self) -> String {
        match &self.ns {
            Some(n) => format!("{n}:{}", self.ifname),
            None => format!("host:{}", self.ifname),
        }
    }

    fn place(&self) -> String {
        match &self.ns {
            Some(n) => format!("netns {n}"),
            None => "the host namespace".into(),
        }
    }

    fn open(&self) -> Result<PacketSocket, CaptureError> {
        let file = match &self.ns {
            None => None,
            Some(n) => {
                let dir = crate::apply::netns::NetnsDir::default();
                if !dir.exists(n) {
                    return Err(CaptureError::NoNetns(n.to_string()));
                }
                Some(
                    dir.open(n)
                        .map_err(|_| CaptureError::NoNetns(n.to_string()))?,
                )
            }
        };
        PacketSocket::open(file.as_ref(), self.ifname.as_str()).map_err(|err| match err {
            SockError::NoInterface(_) => CaptureError::NoInterface {
                ifname: self.ifname.to_string(),
                place: self.place(),
            },
            err => CaptureError::Socket {
                target: self.label(),
                err,
            },
        })
    }
}

/// Where packets go.
enum Sink {
    Pcap(pcap::PcapWriter<Box<dyn Write>>),
    Pcapng(pcapng::PcapngWriter<Box<dyn Write>>),
    Lines { json: bool },
}

struct Out {
    sink: Sink,
    /// stdout carries the packets: flush each one so a reader sees it now.
    stream: bool,
    name: String,
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

fn open_out(
    a: &CaptureArgs,
    labels: &[String],
    socks: &[PacketSocket],
    json: bool,
) -> Result<Out, CaptureError> {
    let Some(path) = &a.write else {
        return Ok(Out {
            sink: Sink::Lines { json },
            stream: true,
            name: "stdout".into(),
        });
    };
    let stream = path == &PathBuf::from("-");
    let name = if stream {
        "stdout".to_string()
    } else {
        path.display().to_string()
    };
    let w: Box<dyn Write> = if stream {
        if io::stdout().is_terminal() {
            return Err(CaptureError::Write(
                name,
                io::Error::other(
                    "it is a terminal; pipe it (| tcpdump -r -, | wireshark -k -i -) or name a file",
                ),
            ));
        }
        Box::new(io::stdout())
    } else {
        let f = File::create(path).map_err(|e| CaptureError::Write(name.clone(), e))?;
        Box::new(io::BufWriter::with_capacity(1 << 16, f))
    };
    let werr = |e| CaptureError::Write(name.clone(), e);
    let sink = if socks.len() == 1 && !a.pcapng {
        Sink::Pcap(pcap::PcapWriter::new(w, socks[0].linktype, a.snaplen, a.nano).map_err(werr)?)
    } else {
        let ifaces: Vec<pcapng::Iface> = labels
            .iter()
            .zip(socks)
            .map(|(l, s)| pcapng::Iface {
                name: l.clone(),
                linktype: s.linktype,
            })
            .collect();
        Sink::Pcapng(pcapng::PcapngWriter::new(w, &ifaces, a.snaplen).map_err(werr)?)
    };
    let mut out = Out { sink, stream, name };
    // The header now: `wireshark -k -i -` starts before the first packet.
    out.flush()
        .map_err(|e| CaptureError::Write(out.name.clone(), e))?;
    Ok(out)
}

impl Out {
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Pcap(w) => w.flush(),
            Sink::Pcapng(w) => w.flush(),
            Sink::Lines { .. } => io::stdout().flush(),
        }
    }

    fn write(
        &mut self,
        iface: usize,
        label: &str,
        linktype: u16,
        p: &socket::Packet,
    ) -> io::Result<()> {
        match &mut self.sink {
            Sink::Pcap(w) => w.packet(p.ts_ns, &p.data, p.orig_len)?,
            Sink::Pcapng(w) => w.packet(iface as u32, p.ts_ns, &p.data, p.orig_len, p.outgoing)?,
            Sink::Lines { json } => {
                let d = summary::decode(linktype, &p.data);
                let dir = if p.outgoing { "out" } else { "in" };
                let line = if *json {
                    let v = serde_json::json!({
                        "time": p.ts_ns as f64 / 1e9,
                        "iface": label,
                        "dir": dir,
                        "len": p.orig_len,
                        "packet": d,
                    });
                    v.to_string()
                } else {
                    format!(
                        "{} {label} {dir:<3} {:>5} {}",
                        time_of_day(p.ts_ns),
                        p.orig_len,
                        d.line()
                    )
                };
                let mut so = io::stdout().lock();
                writeln!(so, "{line}")?;
            }
        }
        if self.stream {
            self.flush()?;
        }
        Ok(())
    }
}

/// Local time of day with microseconds, as tcpdump prints it.
fn time_of_day(ts_ns: u64) -> String {
    let secs = (ts_ns / 1_000_000_000) as libc::time_t;
    let micros = (ts_ns % 1_000_000_000) / 1000;
    // SAFETY: plain data; localtime_r fills `tm` and touches nothing shared.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return format!("{secs}.{micros:06}");
        }
        tm
    };
    format!(
        "{:02}:{:02}:{:02}.{micros:06}",
        tm.tm_hour, tm.tm_min, tm.tm_sec
    )
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
        if last {
            for f in fds.iter_mut() {
                f.revents = libc::POLLIN;
            }
        } else {
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
        // Drain a bounded batch from each ready socket, then write it in
        // time order so several interfaces interleave as they happened.
        for (i, pfd) in fds.iter().enumerate() {
            if pfd.revents == 0 {
                continue;
            }
            for _ in 0..256 {
                match socks[i].recv(&mut buf) {
                    Ok(Some(p)) => {
                        down[i] = false;
                        batch.push((i, p));
                    }
                    Ok(None) => break,
                    // Link set down: the socket reports it once and keeps
                    // receiving when the link comes back.
                    Err(SockError::Sys {
                        err: nix::Error::ENETDOWN,
                        ..
                    }) => {
                        if !down[i] {
                            eprintln!("netplumb: {} went down", labels[i]);
                            down[i] = true;
                        }
                        break;
                    }
                    Err(err) => {
                        let e = CaptureError::Read {
                            target: labels[i].clone(),
                            err,
                        };
                        let _ = out.flush();
                        return Err((n, e));
                    }
                }
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
