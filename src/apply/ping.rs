//! One ICMP echo with a one-second timeout, on a raw socket (we are root in
//! the namespace; `ping_group_range` is closed in fresh namespaces).

use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use crate::kernel::KernelError;

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += u32::from(w);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn sockaddr(addr: IpAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; zeroed is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        IpAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

static NEXT_SEQ: AtomicU16 = AtomicU16::new(1);

/// The address a reply came from.
fn source_of(ss: &libc::sockaddr_storage) -> Option<IpAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read((ss as *const libc::sockaddr_storage).cast()) };
            Some(IpAddr::from(sin.sin_addr.s_addr.to_ne_bytes()))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read((ss as *const libc::sockaddr_storage).cast()) };
            Some(IpAddr::from(sin6.sin6_addr.s6_addr))
        }
        _ => None,
    }
}

/// Must run on a thread inside the namespace to ping from.
pub fn ping_once(addr: IpAddr) -> Result<bool, KernelError> {
    let (domain, proto, req_type, reply_type) = match addr {
        IpAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_ICMP, 8u8, 0u8),
        IpAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_ICMPV6, 128u8, 129u8),
    };
    // SAFETY: plain socket(2) call; the fd is owned right away.
    let fd = unsafe { libc::socket(domain, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(KernelError::from(std::io::Error::last_os_error())
            .context("cannot open an ICMP socket"));
    }
    // SAFETY: fd was just returned by socket(2) and is not owned elsewhere.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let ident = (std::process::id() as u16) ^ 0x6e70;
    // A raw ICMP socket sees every echo reply in its namespace: a sequence
    // number per call (and the source check below) keeps pings that run in
    // parallel (`ping-all`) from taking each other's replies.
    let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
    let mut pkt = [0u8; 16];
    pkt[0] = req_type;
    pkt[4..6].copy_from_slice(&ident.to_be_bytes());
    pkt[6..8].copy_from_slice(&seq.to_be_bytes());
    pkt[8..16].copy_from_slice(b"netplumb");
    if addr.is_ipv4() {
        let c = checksum(&pkt);
        pkt[2..4].copy_from_slice(&c.to_be_bytes());
    }
    let (ss, len) = sockaddr(addr);
    let send = || {
        // SAFETY: buffers and lengths are valid for the call.
        let sent = unsafe {
            libc::sendto(
                sock.as_raw_fd(),
                pkt.as_ptr().cast(),
                pkt.len(),
                0,
                (&ss as *const libc::sockaddr_storage).cast(),
                len,
            )
        };
        if sent >= 0 {
            return Ok(());
        }
        Err(std::io::Error::last_os_error())
    };
    // One question, asked again every 200 ms within the second it has: a
    // link that just became ready may still drop the first frame (the
    // kernel answers ENOBUFS, or the ARP request goes unanswered), and a
    // later echo of the same sequence number answers the same question.
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut next_send = Instant::now();
    let mut buf = [0u8; 1500];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        if now >= next_send {
            next_send = now + Duration::from_millis(200);
            if let Err(e) = send() {
                match e.raw_os_error() {
                    Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR) => {}
                    // No route, unreachable network…: the ping fails, it
                    // is not an error.
                    _ => return Ok(false),
                }
            }
        }
        let wait = next_send
            .min(deadline)
            .saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, wait.as_millis().max(1) as i32) };
        if r <= 0 {
            continue;
        }
        // SAFETY: sockaddr_storage is plain data; zeroed is a valid value
        // (and names no address until recvfrom fills it in).
        let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut flen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: buffers and lengths are valid for the call.
        let n = unsafe {
            libc::recvfrom(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&mut from as *mut libc::sockaddr_storage).cast(),
                &mut flen,
            )
        };
        if n <= 0 {
            continue;
        }
        let n = n as usize;
        // Raw IPv4 sockets hand us the IP header too; IPv6 ones do not.
        let icmp = if addr.is_ipv4() {
            let ihl = usize::from(buf[0] & 0x0f) * 4;
            if n < ihl + 8 {
                continue;
            }
            &buf[ihl..n]
        } else {
            &buf[..n]
        };
        if icmp.len() >= 8
            && icmp[0] == reply_type
            && icmp[4..6] == ident.to_be_bytes()
            && icmp[6..8] == seq.to_be_bytes()
            && source_of(&from) == Some(addr)
        {
            return Ok(true);
        }
    }
}

/// Pings in flight at once. Each unanswered ping waits its full second, so
/// parallelism is what keeps a matrix with many failures quick; the bound
/// keeps a thousand-namespace topology from starting thousands of threads.
const POOL: usize = 32;

/// Every (namespace, address) ping, on a bounded pool of threads. Each
/// opens its namespace afresh: a worker holds one descriptor at a time,
/// however many namespaces there are.
pub fn ping_parallel(
    dir: &super::netns::NetnsDir,
    pings: &[(crate::model::NsRef, IpAddr)],
) -> Vec<Result<bool, KernelError>> {
    use crate::model::NsRef;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    let results: Mutex<Vec<Option<Result<bool, KernelError>>>> =
        Mutex::new(vec![None; pings.len()]);
    let next = AtomicUsize::new(0);
    std::thread::scope(|sc| {
        for _ in 0..POOL.min(pings.len()) {
            sc.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((ns, addr)) = pings.get(i) else {
                        break;
                    };
                    let r = match ns {
                        NsRef::Host => ping_once(*addr),
                        NsRef::Named(n) => dir
                            .open(n)
                            .and_then(|f| super::netns::in_ns(Some(&f), || ping_once(*addr))),
                    };
                    // A poisoned lock only means another worker panicked;
                    // the slots are independent.
                    let mut res = results.lock().unwrap_or_else(|p| p.into_inner());
                    res[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(KernelError::other("not pinged (a worker thread died)"))))
        .collect()
}
