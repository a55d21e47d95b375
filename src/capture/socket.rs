//! One AF_PACKET socket per captured interface. A packet socket belongs to
//! the network namespace of the thread that created it, so it is opened on
//! a short-lived thread that joined the namespace; after that it can be read
//! from any thread.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::sched::{CloneFlags, setns};

/// ETH_P_ALL in network byte order: every protocol, both directions.
const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();
const PACKET_OUTGOING: u8 = 4;
const PACKET_STATISTICS: libc::c_int = 6;
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
const ARPHRD_NONE: u16 = 0xFFFE;

/// pcap link types (tcpdump.org/linktypes.html).
pub const LINKTYPE_ETHERNET: u16 = 1;
pub const LINKTYPE_RAW: u16 = 101;

#[derive(Debug, thiserror::Error)]
pub enum SockError {
    #[error("no interface {0}")]
    NoInterface(String),
    #[error(
        "interface {name} has link type {hatype}: capture knows Ethernet, loopback and tun (raw IP) devices"
    )]
    LinkType { name: String, hatype: u16 },
    #[error("{what}: {err}")]
    Sys { what: &'static str, err: nix::Error },
    #[error("the capture thread for {0} panicked")]
    Panicked(String),
}

fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> SockError {
    move |err| SockError::Sys { what, err }
}

fn last(what: &'static str) -> SockError {
    SockError::Sys {
        what,
        err: nix::Error::last(),
    }
}

pub struct PacketSocket {
    fd: OwnedFd,
    pub linktype: u16,
    /// The interface was up when the socket was bound (a socket bound to
    /// a down interface reports ENETDOWN once, at its first read).
    pub was_up: bool,
}

/// A packet as read: when it was seen, its bytes (at most the buffer), its
/// length on the wire, and whether this host sent it.
pub struct Packet {
    pub ts_ns: u64,
    pub data: Vec<u8>,
    pub orig_len: u32,
    pub outgoing: bool,
}

impl PacketSocket {
    /// Open and bind a socket to `ifname` inside `ns` (None: this process's
    /// own namespace).
    pub fn open(ns: Option<&File>, ifname: &str) -> Result<Self, SockError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                if let Some(f) = ns {
                    setns(f.as_fd(), CloneFlags::CLONE_NEWNET).map_err(sys("setns"))?;
                }
                Self::open_here(ifname)
            })
            .join()
            .unwrap_or_else(|_| Err(SockError::Panicked(ifname.to_string())))
        })
    }

    fn open_here(ifname: &str) -> Result<Self, SockError> {
        let cname = std::ffi::CString::new(ifname)
            .map_err(|_| SockError::NoInterface(ifname.to_string()))?;
        // SAFETY: a NUL-terminated string; the call only reads it.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(SockError::NoInterface(ifname.to_string()));
        }
        // Protocol 0: the socket receives nothing until bind names the
        // interface, so no packet of another interface slips in first.
        // SAFETY: plain socket(2); the fd is owned at once.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if raw < 0 {
            return Err(last("socket(AF_PACKET)"));
        }
        // SAFETY: raw is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        set_int(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            1,
            "SO_TIMESTAMPNS",
        )?;
        // A burst (an iperf run) should not overflow the queue while the
        // writer flushes: ask for 4 MiB (FORCE works for real root only).
        if set_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 4 << 20, "").is_err() {
            let _ = set_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 4 << 20, "");
        }
        // SAFETY: sockaddr_ll is plain data; zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL_BE;
        sll.sll_ifindex = ifindex as i32;
        let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: a valid sockaddr_ll of the stated length.
        let r = unsafe { libc::bind(fd.as_raw_fd(), (&raw const sll).cast(), len) };
        if r != 0 {
            let err = nix::Error::last();
            if err == nix::Error::ENODEV {
                return Err(SockError::NoInterface(ifname.to_string()));
            }
            return Err(SockError::Sys {
                what: "bind(AF_PACKET)",
                err,
            });
        }
        let mut got: libc::sockaddr_ll = sll;
        let mut glen = len;
        // SAFETY: getsockname fills at most glen bytes of `got`.
        let r = unsafe { libc::getsockname(fd.as_raw_fd(), (&raw mut got).cast(), &mut glen) };
        if r != 0 {
            return Err(last("getsockname"));
        }
        let linktype = match got.sll_hatype {
            ARPHRD_ETHER | ARPHRD_LOOPBACK => LINKTYPE_ETHERNET,
            ARPHRD_NONE => LINKTYPE_RAW,
            hatype => {
                return Err(SockError::LinkType {
                    name: ifname.to_string(),
                    hatype,
                });
            }
        };
        // SAFETY: ifreq is plain data; SIOCGIFFLAGS fills it.
        let was_up = unsafe {
            let mut ifr: libc::ifreq = std::mem::zeroed();
            for (d, s) in ifr.ifr_name.iter_mut().zip(cname.as_bytes()) {
                *d = *s as libc::c_char;
            }
            libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) == 0
                && ifr.ifr_ifru.ifru_flags & libc::IFF_UP as libc::c_short != 0
        };
        Ok(Self {
            fd,
            linktype,
            was_up,
        })
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// The next queued packet, or None when the queue is empty.
    pub fn recv(&self, buf: &mut [u8]) -> Result<Option<Packet>, SockError> {
        // SAFETY: plain data, zero is valid.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        // Room for one timespec control message (and some slack).
        let mut cbuf = [0u64; 16];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: plain data, zero is valid.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&raw mut from).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        // MSG_TRUNC: the return value is the packet's full length even when
        // the buffer holds only part of it.
        // SAFETY: every pointer in msg refers to live buffers of the stated sizes.
        let n = unsafe {
            libc::recvmsg(
                self.fd.as_raw_fd(),
                &mut msg,
                libc::MSG_TRUNC | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let err = nix::Error::last();
            if err == nix::Error::EAGAIN || err == nix::Error::EINTR {
                return Ok(None);
            }
            return Err(SockError::Sys {
                what: "recvmsg",
                err,
            });
        }
        let orig = n as usize;
        let caplen = orig.min(buf.len());
        let mut ts_ns = None;
        // SAFETY: the CMSG macros walk the control buffer the kernel filled,
        // bounded by msg_controllen.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    ts_ns = Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Ok(Some(Packet {
            ts_ns: ts_ns.unwrap_or_else(now_ns),
            data: buf[..caplen].to_vec(),
            orig_len: u32::try_from(orig).unwrap_or(u32::MAX),
            outgoing: from.sll_pkttype == PACKET_OUTGOING,
        }))
    }

    /// Packets the kernel dropped because the queue was full, since the
    /// last call (the kernel resets the counters on read).
    pub fn drops(&self) -> u64 {
        #[repr(C)]
        struct TpacketStats {
            packets: u32,
            drops: u32,
        }
        let mut st = TpacketStats {
            packets: 0,
            drops: 0,
        };
        let mut len = std::mem::size_of::<TpacketStats>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most len bytes into st.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                (&raw mut st).cast(),
                &mut len,
            )
        };
        if r == 0 { u64::from(st.drops) } else { 0 }
    }
}

fn set_int(
    fd: &OwnedFd,
    level: libc::c_int,
    opt: libc::c_int,
    val: libc::c_int,
    what: &'static str,
) -> Result<(), SockError> {
    // SAFETY: setsockopt reads one c_int.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&raw const val).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(last(what));
    }
    Ok(())
}

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
