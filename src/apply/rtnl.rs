//! A small synchronous rtnetlink client: requests are built with rtnetlink's
//! message builders and sent on a plain netlink socket, pipelined (many
//! requests in flight, ACKs matched by sequence number). Synchronous on
//! purpose: a socket belongs to the namespace it was opened in, and sockets
//! are opened on short-lived threads that `setns` first.

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::kernel::KernelError;

/// Requests in flight before we stop to read ACKs: keeps the ACKs well
/// inside the default receive buffer.
const WINDOW: usize = 256;

pub struct Rtnl {
    sock: Socket,
    seq: u32,
    /// Receive buffer, allocated per read: a thousand idle namespace
    /// sockets must not hold 64 KiB each.
    buf: Vec<u8>,
}

fn io(e: std::io::Error) -> KernelError {
    KernelError::from(e)
}

impl Rtnl {
    /// Open in the calling thread's network namespace.
    pub fn open() -> std::io::Result<Self> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        // Errors carry no copy of our request: less to read back.
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_ext_ack(true);
        Ok(Self {
            sock,
            seq: 0,
            buf: Vec::new(),
        })
    }

    fn send(&mut self, payload: RouteNetlinkMessage, flags: u16) -> Result<u32, KernelError> {
        self.seq = self.seq.wrapping_add(1);
        let mut hdr = NetlinkHeader::default();
        hdr.flags = flags;
        hdr.sequence_number = self.seq;
        let mut msg = NetlinkMessage::new(hdr, NetlinkPayload::from(payload));
        msg.finalize();
        let mut out = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut out);
        self.sock.send(&out, 0).map_err(io)?;
        Ok(self.seq)
    }

    /// Read messages, handing each to `f` with its sequence number. Returns
    /// once `f` says it has seen enough.
    fn recv_until(
        &mut self,
        mut f: impl FnMut(u32, NetlinkPayload<RouteNetlinkMessage>) -> bool,
    ) -> Result<(), KernelError> {
        loop {
            let n = {
                if self.buf.is_empty() {
                    self.buf = vec![0; 1 << 16];
                }
                let mut b = &mut self.buf[..];
                self.sock.recv(&mut b, 0).map_err(io)?
            };
            let mut off = 0;
            let mut done = false;
            while off < n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n])
                    .map_err(|e| KernelError::other(format!("bad netlink reply: {e}")))?;
                let len = msg.header.length as usize;
                let seq = msg.header.sequence_number;
                if f(seq, msg.payload) {
                    done = true;
                }
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
            }
            if done {
                self.buf = Vec::new();
                return Ok(());
            }
        }
    }

    /// Send one request and wait for its ACK.
    pub fn request(&mut self, payload: RouteNetlinkMessage, flags: u16) -> Result<(), KernelError> {
        self.request_many(vec![(payload, flags)])
            .map_err(|(_, e)| e)
    }

    /// Send many requests, pipelined; stop at the first refusal and return
    /// its index. Requests after a refused one may already have been sent
    /// and applied: callers treat the whole batch as one unit for rollback.
    pub fn request_many(
        &mut self,
        reqs: Vec<(RouteNetlinkMessage, u16)>,
    ) -> Result<(), (usize, KernelError)> {
        let total = reqs.len();
        let mut iter = reqs.into_iter().enumerate();
        let mut first_err: Option<(usize, KernelError)> = None;
        let mut sent = 0usize;
        while sent < total {
            let start_seq = self.seq.wrapping_add(1);
            let mut batch = 0usize;
            for (i, (p, flags)) in iter.by_ref() {
                self.send(p, flags | NLM_F_REQUEST | NLM_F_ACK)
                    .map_err(|e| (i, e))?;
                batch += 1;
                if batch == WINDOW {
                    break;
                }
            }
            let mut acked = 0usize;
            let base = sent;
            self.recv_until(|seq, payload| {
                if let NetlinkPayload::Error(e) = payload {
                    let idx = base + seq.wrapping_sub(start_seq) as usize;
                    acked += 1;
                    if let Some(code) = e.code
                        && first_err.as_ref().is_none_or(|(i, _)| idx < *i)
                    {
                        let errno = -code.get();
                        first_err = Some((
                            idx,
                            KernelError::errno(
                                errno,
                                std::io::Error::from_raw_os_error(errno).to_string(),
                            ),
                        ));
                    }
                }
                acked >= batch
            })
            .map_err(|e| (base, e))?;
            sent += batch;
            if let Some(e) = first_err.take() {
                return Err(e);
            }
        }
        Ok(())
    }

    /// A request answered with data (RTM_GETNSID): every reply message up to
    /// the ACK that closes it.
    pub fn query(
        &mut self,
        payload: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, KernelError> {
        self.collect(payload, NLM_F_REQUEST | NLM_F_ACK)
    }

    /// A dump request: every reply message until NLMSG_DONE.
    pub fn dump(
        &mut self,
        payload: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, KernelError> {
        self.collect(payload, NLM_F_REQUEST | NLM_F_DUMP)
    }

    /// Send one request and gather its data replies until DONE or the ACK.
    fn collect(
        &mut self,
        payload: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, KernelError> {
        let seq = self.send(payload, flags)?;
        let mut out = Vec::new();
        let mut failure = None;
        self.recv_until(|s, p| {
            if s != seq {
                return false;
            }
            match p {
                NetlinkPayload::InnerMessage(m) => {
                    out.push(m);
                    false
                }
                NetlinkPayload::Error(e) => {
                    if let Some(code) = e.code {
                        failure = Some(KernelError::from(std::io::Error::from_raw_os_error(
                            -code.get(),
                        )));
                    }
                    true
                }
                NetlinkPayload::Done(_) => true,
                _ => false,
            }
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}
