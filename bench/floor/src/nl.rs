//! Just enough rtnetlink: requests serialised by netlink-packet-route, sent
//! many to one `sendmsg`, and their ACKs read back raw (the kernel handles a
//! send synchronously, so every ACK of a buffer is queued when `send` returns).

use std::io;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::Error;

const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
const IFLA_IFNAME: u16 = 3;
const IFLA_OPERSTATE: u16 = 16;
const IF_OPER_UP: u8 = 6;
const RTNLGRP_LINK: u32 = 1;
/// Flush after this many requests: their ACKs (≈ 0.7 KiB of receive buffer
/// each, counted by skb size) must fit the default receive buffer.
const BATCH: usize = 64;
const BATCH_BYTES: usize = 32 * 1024;

/// A request socket in the namespace of the thread that opened it.
pub struct Rtnl {
    sock: Socket,
    seq: u32,
    out: Vec<u8>,
    pending: Vec<(u32, String)>,
    buf: Vec<u8>,
}

fn os(what: &str) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        what: what.to_string(),
        source,
    }
}

impl Rtnl {
    pub fn open() -> Result<Self, Error> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(os("open an rtnetlink socket"))?;
        sock.bind_auto().map_err(os("bind an rtnetlink socket"))?;
        sock.set_cap_ack(true).map_err(os("set NETLINK_CAP_ACK"))?;
        sock.set_ext_ack(true).map_err(os("set NETLINK_EXT_ACK"))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(os("connect an rtnetlink socket"))?;
        Ok(Rtnl {
            sock,
            seq: 0,
            out: Vec::with_capacity(BATCH_BYTES + 4096),
            pending: Vec::new(),
            buf: vec![0; 1 << 20],
        })
    }

    /// Queue one request (NLM_F_REQUEST | NLM_F_ACK | `flags`); `what` names it in errors.
    pub fn push(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: String,
    ) -> Result<(), Error> {
        self.queue(msg, NLM_F_REQUEST | NLM_F_ACK | flags);
        self.pending.push((self.seq, what));
        if self.pending.len() >= BATCH || self.out.len() >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn queue(&mut self, msg: RouteNetlinkMessage, flags: u16) {
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        self.seq = self.seq.wrapping_add(1);
        header.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        m.finalize();
        let at = self.out.len();
        self.out.resize(at + m.buffer_len(), 0);
        m.serialize(&mut self.out[at..]);
    }

    fn send_out(&mut self) -> Result<(), Error> {
        let sent = self
            .sock
            .send(&self.out, 0)
            .map_err(os("send to rtnetlink"))?;
        if sent != self.out.len() {
            return Err(Error::Io {
                what: "send to rtnetlink".into(),
                source: io::Error::other("short send"),
            });
        }
        self.out.clear();
        Ok(())
    }

    fn recv(&mut self) -> Result<usize, Error> {
        let mut slice: &mut [u8] = &mut self.buf[..];
        self.sock
            .recv(&mut slice, 0)
            .map_err(os("receive from rtnetlink"))
    }

    /// Send what is queued and wait for every ACK; the first refusal is the error.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.send_out()?;
        let mut left = self.pending.len();
        let mut first: Option<Error> = None;
        while left > 0 {
            let n = self.recv()?;
            for (ty, seq, body) in messages(&self.buf[..n]) {
                if ty != NLMSG_ERROR {
                    continue;
                }
                left = left.saturating_sub(1);
                let code = i32_at(body, 0);
                if code != 0 && first.is_none() {
                    let what = self
                        .pending
                        .iter()
                        .find(|(s, _)| *s == seq)
                        .map_or("a request", |(_, w)| w.as_str());
                    first = Some(Error::Kernel {
                        what: what.to_string(),
                        source: io::Error::from_raw_os_error(-code),
                    });
                }
            }
        }
        self.pending.clear();
        first.map_or(Ok(()), Err)
    }

    /// Every link of this namespace: (ifindex, name).
    pub fn links(&mut self) -> Result<Vec<(u32, String)>, Error> {
        self.flush()?;
        self.queue(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_REQUEST | NLM_F_DUMP,
        );
        self.send_out()?;
        let mut links = Vec::new();
        loop {
            let n = self.recv()?;
            for (ty, _, body) in messages(&self.buf[..n]) {
                match ty {
                    NLMSG_DONE => return Ok(links),
                    NLMSG_ERROR => {
                        let code = i32_at(body, 0);
                        return Err(Error::Kernel {
                            what: "dump links".into(),
                            source: io::Error::from_raw_os_error(-code),
                        });
                    }
                    RTM_NEWLINK => {
                        if let Some(link) = link_of(body) {
                            links.push(link);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// The ifindex of `name` in this namespace.
    pub fn index_of(&mut self, name: &str) -> Result<u32, Error> {
        Ok(self.ask_link(name)?.0)
    }

    /// Whether `name` is operationally up. A single-link RTM_GETLINK has
    /// the kernel run the device's pending link-watch event first (6.8+).
    pub fn oper_up(&mut self, name: &str) -> Result<bool, Error> {
        Ok(self.ask_link(name)?.1 == Some(IF_OPER_UP))
    }

    /// (ifindex, IFLA_OPERSTATE) of `name`.
    fn ask_link(&mut self, name: &str) -> Result<(u32, Option<u8>), Error> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.flush()?;
        self.queue(RouteNetlinkMessage::GetLink(m), NLM_F_REQUEST);
        self.send_out()?;
        let n = self.recv()?;
        for (ty, _, body) in messages(&self.buf[..n]) {
            match ty {
                RTM_NEWLINK => {
                    return Ok((
                        u32_at(body, 4),
                        attr(body, IFLA_OPERSTATE).and_then(|a| a.first().copied()),
                    ));
                }
                NLMSG_ERROR => {
                    let code = i32_at(body, 0);
                    return Err(Error::Kernel {
                        what: format!("find link {name}"),
                        source: io::Error::from_raw_os_error(-code),
                    });
                }
                _ => {}
            }
        }
        Err(Error::Io {
            what: format!("find link {name}"),
            source: io::Error::other("no answer"),
        })
    }
}

/// A socket subscribed to link events (RTNLGRP_LINK), with a receive buffer
/// large enough for a few thousand of them and a timeout so a caller can
/// re-read the truth when it may have missed some.
pub struct Events {
    sock: Socket,
    buf: Vec<u8>,
}

impl Events {
    pub fn open() -> Result<Self, Error> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(os("open an rtnetlink socket"))?;
        sock.bind_auto().map_err(os("bind an rtnetlink socket"))?;
        sock.add_membership(RTNLGRP_LINK)
            .map_err(os("join RTNLGRP_LINK"))?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&sock);
        let size: libc::c_int = 64 << 20;
        // SAFETY: fd is a live socket; the option value is a c_int of the stated size.
        let forced = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&raw const size).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if forced != 0 {
            sock.set_rx_buf_sz(size as usize)
                .map_err(os("grow the event socket's receive buffer"))?;
        }
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        // SAFETY: as above, with a timeval.
        if unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        } != 0
        {
            return Err(Error::Io {
                what: "set SO_RCVTIMEO".into(),
                source: io::Error::last_os_error(),
            });
        }
        Ok(Events {
            sock,
            buf: vec![0; 1 << 20],
        })
    }

    /// The ifindexes of links the kernel reports destroyed (AF_UNSPEC
    /// RTM_DELLINK; the AF_BRIDGE ones only mean "left its bridge").
    /// `Ok(None)`: timed out or the buffer overran — re-read the links.
    pub fn deleted(&mut self) -> Result<Option<Vec<u32>>, Error> {
        let mut slice: &mut [u8] = &mut self.buf[..];
        let n = match self.sock.recv(&mut slice, 0) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EAGAIN) | Some(libc::ENOBUFS) | Some(libc::EINTR)
                ) =>
            {
                return Ok(None);
            }
            Err(source) => {
                return Err(Error::Io {
                    what: "receive link events".into(),
                    source,
                });
            }
        };
        let gone = messages(&self.buf[..n])
            .filter(|(ty, _, body)| *ty == RTM_DELLINK && body.first() == Some(&0))
            .map(|(_, _, body)| u32_at(body, 4))
            .collect();
        Ok(Some(gone))
    }
}

/// (type, sequence, payload) of each netlink message in a datagram.
fn messages(mut buf: &[u8]) -> impl Iterator<Item = (u16, u32, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < NLMSG_HDR {
            return None;
        }
        let len = (u32_at(buf, 0) as usize).clamp(NLMSG_HDR, buf.len());
        let ty = u16::from_ne_bytes([buf[4], buf[5]]);
        let seq = u32_at(buf, 8);
        let body = &buf[NLMSG_HDR..len];
        buf = &buf[len.next_multiple_of(4).min(buf.len())..];
        Some((ty, seq, body))
    })
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    u32_at(b, at) as i32
}

/// (ifindex, IFLA_IFNAME) of an RTM_NEWLINK payload.
fn link_of(body: &[u8]) -> Option<(u32, String)> {
    let name = attr(body, IFLA_IFNAME)?;
    let name = name.split(|&c| c == 0).next().unwrap_or(name);
    Some((u32_at(body, 4), String::from_utf8_lossy(name).into_owned()))
}

/// The payload of attribute `want` of an RTM_NEWLINK payload (ifinfomsg
/// is 16 bytes).
fn attr(body: &[u8], want: u16) -> Option<&[u8]> {
    let mut attrs = body.get(16..)?;
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let ty = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            return None;
        }
        if ty == want {
            return Some(&attrs[4..len]);
        }
        attrs = &attrs[len.next_multiple_of(4).min(attrs.len())..];
    }
    None
}
