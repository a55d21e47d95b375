//! Waiting for links to be destroyed, on link events instead of polling:
//! after `down` deletes a thousand namespaces, the kernel destroys their
//! veths' far ends in its cleanup work, seconds later, and a loop that
//! re-dumped the host's links every few milliseconds spent its time
//! parsing the links that were still there and overslept the last one.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use netlink_sys::{Socket, protocols::NETLINK_ROUTE};

use super::LinuxKernel;
use super::netns::in_ns;
use crate::kernel::KernelError;
use crate::model::NsRef;

const RTM_DELLINK: u16 = 17;
const RTNLGRP_LINK: u32 = 1;
const NLMSG_HDRLEN: usize = 16;

/// How long one receive waits before the caller looks at its patience.
const TICK: libc::suseconds_t = 50_000;

/// A socket of one namespace subscribed to its link events.
struct LinkEvents {
    sock: Socket,
    buf: Vec<u8>,
}

fn set_opt<T>(fd: i32, level: i32, name: i32, value: &T) -> bool {
    // SAFETY: fd is a live socket and `value` is a plain C value of the
    // size passed; the kernel only reads it.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        ) == 0
    }
}

impl LinkEvents {
    fn open() -> std::io::Result<Self> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.add_membership(RTNLGRP_LINK)?;
        let fd = sock.as_raw_fd();
        // Room for the deletions of a few thousand links between reads; an
        // overrun only costs a re-read of the links (ENOBUFS below).
        let size: libc::c_int = 8 << 20;
        if !set_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size) {
            let _ = sock.set_rx_buf_sz(size as usize);
        }
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: TICK,
        };
        if !set_opt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv) {
            return Err(std::io::Error::last_os_error());
        }
        Ok(LinkEvents {
            sock,
            buf: vec![0; 256 << 10],
        })
    }

    /// The ifindexes the kernel reports destroyed (an AF_UNSPEC
    /// RTM_DELLINK: the AF_BRIDGE ones only mean "left its bridge").
    /// `None`: nothing within a tick, or the buffer overran.
    fn deleted(&mut self) -> Result<Option<Vec<u32>>, KernelError> {
        let mut slice: &mut [u8] = &mut self.buf[..];
        let n = match self.sock.recv(&mut slice, 0) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR)
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(KernelError::from(e)),
        };
        let mut out = Vec::new();
        let mut rest = &self.buf[..n];
        while rest.len() >= NLMSG_HDRLEN {
            let word = |b: &[u8], at: usize| {
                b.get(at..at + 4)
                    .and_then(|w| w.try_into().ok())
                    .map(u32::from_ne_bytes)
            };
            let len = (word(rest, 0).unwrap_or(0) as usize).clamp(NLMSG_HDRLEN, rest.len());
            let ty = u16::from_ne_bytes([rest[4], rest[5]]);
            let body = &rest[NLMSG_HDRLEN..len];
            // struct ifinfomsg: family (u8), pad, type (u16), index (i32).
            if ty == RTM_DELLINK
                && body.first() == Some(&0)
                && let Some(index) = word(body, 4)
            {
                out.push(index);
            }
            rest = &rest[len.next_multiple_of(4).min(rest.len())..];
        }
        Ok(Some(out))
    }
}

impl LinuxKernel {
    /// See `Kernel::wait_links_gone`.
    pub(super) fn wait_gone(
        &mut self,
        ns: &NsRef,
        names: &[String],
        patience: Duration,
    ) -> Result<Vec<String>, KernelError> {
        let f = self.conns.file(&self.nsdir, ns)?;
        // Subscribed before the read below, so no deletion falls between.
        let mut events = in_ns(f, || LinkEvents::open().map_err(KernelError::from))?;
        let mut left = self.present(ns, names)?;
        let mut progress = Instant::now();
        while !left.is_empty() && progress.elapsed() < patience {
            let before = left.len();
            match events.deleted()? {
                Some(ids) => ids.iter().for_each(|i| {
                    left.remove(i);
                }),
                // A quiet tick or an overrun: the links are the truth.
                None => left = self.present(ns, names)?,
            }
            if left.len() < before {
                progress = Instant::now();
            }
        }
        Ok(left.into_values().collect())
    }

    /// Which of `names` are links of `ns` now, by ifindex.
    fn present(
        &mut self,
        ns: &NsRef,
        names: &[String],
    ) -> Result<HashMap<u32, String>, KernelError> {
        let want: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
        Ok(super::read::read_links(self.conns.rtnl(&self.nsdir, ns)?)?
            .into_iter()
            .filter(|l| want.contains(l.name.as_str()))
            .map(|l| (l.index, l.name))
            .collect())
    }
}
