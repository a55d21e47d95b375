//! Waiting for links to be destroyed, on link events instead of polling:
//! after `down` deletes a thousand namespaces, the kernel destroys their
//! veths' far ends in its cleanup work, seconds later, and a loop that
//! re-dumped the host's links every few milliseconds spent its time
//! parsing the links that were still there and overslept the last one.
//! Each re-dump also takes rtnl_mutex, which the kernel's cleanup of the
//! namespaces needs: the links are read again only when events were lost.
//!
//! A veth end whose peer's namespace the kernel has begun to destroy goes
//! for sure, however long the cleanup takes (it unhashes the namespace's
//! ids first, then runs every subsystem's exit, then unregisters all the
//! devices of the batch at once: a silence of a second at a thousand
//! namespaces). Only the others are given up on after `patience`.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use netlink_sys::{Socket, protocols::NETLINK_ROUTE};

use super::LinuxKernel;
use super::netns::in_ns;
use crate::kernel::KernelError;
use crate::model::NsRef;

const RTM_DELLINK: u16 = 17;
const RTM_DELNSID: u16 = 89;
const RTNLGRP_LINK: u32 = 1;
const RTNLGRP_NSID: u32 = 28;
/// IFLA_LINK_NETNSID of a veth whose peer's namespace is being destroyed
/// (its id is unhashed first): NETNSA_NSID_NOT_ASSIGNED.
const NSID_DYING: i32 = -1;
/// However sure the kernel's cleanup is, `down` does not hang on it.
const DYING_PATIENCE: Duration = Duration::from_secs(30);
const NLMSG_HDRLEN: usize = 16;

/// How long one receive waits before the caller looks at its patience.
const TICK: libc::suseconds_t = 50_000;

/// A socket of one namespace subscribed to its link and nsid events.
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
        sock.add_membership(RTNLGRP_NSID)?;
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

    /// What the kernel reports within a tick: the ifindexes destroyed (an
    /// AF_UNSPEC RTM_DELLINK: the AF_BRIDGE ones only mean "left its
    /// bridge") and the ids of namespaces it began to destroy.
    fn next(&mut self) -> Result<Events, KernelError> {
        let mut slice: &mut [u8] = &mut self.buf[..];
        let n = match self.sock.recv(&mut slice, 0) {
            Ok(n) => n,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) => {
                return Ok(Events::Quiet);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(Events::Lost),
            Err(e) => return Err(KernelError::from(e)),
        };
        let mut links = Vec::new();
        let mut dying = Vec::new();
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
                links.push(index);
            }
            if ty == RTM_DELNSID
                && let Some(id) = nsid_attr(body)
            {
                dying.push(id);
            }
            rest = &rest[len.next_multiple_of(4).min(rest.len())..];
        }
        Ok(Events::Some { links, dying })
    }
}

enum Events {
    Quiet,
    /// The receive buffer overran: events were dropped.
    Lost,
    Some {
        links: Vec<u32>,
        dying: Vec<i32>,
    },
}

/// NETNSA_NSID of an RTM_DELNSID body (struct rtgenmsg, padded to 4, then
/// attributes).
fn nsid_attr(body: &[u8]) -> Option<i32> {
    const NETNSA_NSID: u16 = 1;
    let mut at = 4;
    while let Some(h) = body.get(at..at + 4) {
        let len = u16::from_ne_bytes([h[0], h[1]]) as usize;
        let ty = u16::from_ne_bytes([h[2], h[3]]) & 0x3fff;
        if len < 4 {
            return None;
        }
        if ty == NETNSA_NSID {
            let v = body.get(at + 4..at + 8)?;
            return Some(i32::from_ne_bytes(v.try_into().ok()?));
        }
        at += len.next_multiple_of(4);
    }
    None
}

/// A link being waited for: its name, and the id its peer's namespace has
/// here (NSID_DYING once the kernel destroys that namespace).
struct Waited {
    name: String,
    peer_nsid: Option<i32>,
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
        let start = Instant::now();
        let mut progress = start;
        while !left.is_empty() {
            let sure = left.values().any(|w| w.peer_nsid == Some(NSID_DYING));
            let waited = if sure {
                start.elapsed()
            } else {
                progress.elapsed()
            };
            if waited >= if sure { DYING_PATIENCE } else { patience } {
                break;
            }
            match events.next()? {
                Events::Quiet => {}
                Events::Lost => {
                    left = self.present(ns, names)?;
                    progress = Instant::now();
                }
                Events::Some { links, dying } => {
                    let before = left.len();
                    for i in links {
                        left.remove(&i);
                    }
                    let mut moved = left.len() < before;
                    for w in left.values_mut() {
                        if w.peer_nsid
                            .is_some_and(|id| id != NSID_DYING && dying.contains(&id))
                        {
                            w.peer_nsid = Some(NSID_DYING);
                            moved = true;
                        }
                    }
                    if moved {
                        progress = Instant::now();
                    }
                }
            }
        }
        Ok(left.into_values().map(|w| w.name).collect())
    }

    /// Which of `names` are links of `ns` now, by ifindex.
    fn present(
        &mut self,
        ns: &NsRef,
        names: &[String],
    ) -> Result<HashMap<u32, Waited>, KernelError> {
        let want: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
        Ok(super::read::read_links(self.conns.rtnl(&self.nsdir, ns)?)?
            .into_iter()
            .filter(|l| want.contains(l.name.as_str()))
            .map(|l| {
                let w = Waited {
                    name: l.name,
                    peer_nsid: l.peer_netnsid,
                };
                (l.index, w)
            })
            .collect())
    }
}
