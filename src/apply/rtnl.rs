//! A small synchronous rtnetlink client: requests are built with rtnetlink's
//! message builders and sent on a plain netlink socket, pipelined (many
//! requests in flight, ACKs matched by sequence number). Synchronous on
//! purpose: a socket belongs to the namespace it was opened in, and sockets
//! are opened on short-lived threads that `setns` first.

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_ECHO, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::kernel::KernelError;

/// Requests in flight before we stop to read ACKs: keeps the ACKs well
/// inside the default receive buffer.
const WINDOW: usize = 256;

/// The same for requests the kernel echoes (NLM_F_ECHO): each echo is a
/// whole link message of a kilobyte or two, and a receive buffer that
/// overflows drops the ACKs a window waits for.
const ECHO_WINDOW: usize = 32;

/// Bytes of requests in one send: far below the socket's send buffer
/// (a bigger message is refused with EMSGSIZE).
const SEND_BYTES: usize = 32 << 10;

/// One request's outcome: the messages echoed for it, or its refusal.
pub type Reply = Result<Vec<RouteNetlinkMessage>, KernelError>;

pub struct Rtnl {
    sock: Socket,
    seq: u32,
    /// Receive buffer, allocated per read: a thousand idle namespace
    /// sockets must not hold 64 KiB each.
    buf: Vec<u8>,
    /// Keep `buf` between reads: for a socket that lives for a few dumps
    /// only, zeroing 64 KiB anew for each was a measurable part of reading
    /// a thousand namespaces.
    keep: bool,
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
            keep: false,
        })
    }

    /// This socket keeps its receive buffer until it is dropped.
    pub fn keep_buffer(mut self) -> Self {
        self.keep = true;
        self
    }

    /// The next request, numbered and serialized onto the end of `out`.
    fn encode(&mut self, payload: RouteNetlinkMessage, flags: u16, out: &mut Vec<u8>) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        let mut hdr = NetlinkHeader::default();
        hdr.flags = flags;
        hdr.sequence_number = self.seq;
        let mut msg = NetlinkMessage::new(hdr, NetlinkPayload::from(payload));
        msg.finalize();
        let at = out.len();
        // Netlink messages are 4-byte aligned; buffer_len already is.
        out.resize(at + msg.buffer_len(), 0);
        msg.serialize(&mut out[at..]);
        self.seq
    }

    fn send(&mut self, payload: RouteNetlinkMessage, flags: u16) -> Result<u32, KernelError> {
        let mut out = Vec::new();
        let seq = self.encode(payload, flags, &mut out);
        self.sock.send(&out, 0).map_err(io)?;
        Ok(seq)
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
                if !self.keep {
                    self.buf = Vec::new();
                }
                return Ok(());
            }
        }
    }

    /// Send one request and wait for its ACK.
    pub fn request(&mut self, payload: RouteNetlinkMessage, flags: u16) -> Result<(), KernelError> {
        match self.request_many(vec![(payload, flags)]).pop() {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(e),
            None => Err(KernelError::other("the request was not sent")),
        }
    }

    /// Send many requests, pipelined, and return each one's outcome: the
    /// messages the kernel echoed for it (NLM_F_ECHO), or its refusal. After
    /// a window with a refusal nothing more is sent; requests in that window
    /// after the refused one may have been applied, and their outcome says so.
    /// The result is as long as the requests sent.
    pub fn request_many(&mut self, reqs: Vec<(RouteNetlinkMessage, u16)>) -> Vec<Reply> {
        self.request_many_keeping(reqs, |m| m)
    }

    /// `request_many`, each echoed message passed through `keep` as it
    /// arrives: a caller that wants a few fields of each echo holds those,
    /// not hundreds of whole parsed links at once.
    pub fn request_many_keeping(
        &mut self,
        reqs: Vec<(RouteNetlinkMessage, u16)>,
        mut keep: impl FnMut(RouteNetlinkMessage) -> RouteNetlinkMessage,
    ) -> Vec<Reply> {
        let mut out: Vec<Reply> = Vec::with_capacity(reqs.len());
        let mut iter = reqs.into_iter();
        loop {
            let start_seq = self.seq.wrapping_add(1);
            // A window's requests go out in as few sends as fit one
            // buffer each: the kernel handles every message of a send in
            // turn, ACKing each, as if sent one by one.
            let mut batch = 0usize;
            let mut queued = 0usize;
            let mut send_err = None;
            let mut room = WINDOW;
            let mut buf = Vec::new();
            for (p, flags) in iter.by_ref() {
                if flags & NLM_F_ECHO != 0 {
                    room = room.min(ECHO_WINDOW);
                }
                let at = buf.len();
                self.encode(p, flags | NLM_F_REQUEST | NLM_F_ACK, &mut buf);
                if at > 0 && buf.len() > SEND_BYTES {
                    // This one starts the next send.
                    if let Err(e) = self.sock.send(&buf[..at], 0) {
                        send_err = Some(io(e));
                        break;
                    }
                    batch += queued;
                    queued = 0;
                    buf.drain(..at);
                }
                queued += 1;
                if batch + queued >= room {
                    break;
                }
            }
            if send_err.is_none() && queued > 0 {
                match self.sock.send(&buf, 0) {
                    Ok(_) => batch += queued,
                    Err(e) => send_err = Some(io(e)),
                }
            }
            if batch == 0 && send_err.is_none() {
                return out;
            }
            let base = out.len();
            out.extend((0..batch).map(|_| Ok(Vec::new())));
            let mut acked = 0usize;
            let mut refused = false;
            if batch > 0 {
                let res = self.recv_until(|seq, payload| {
                    let i = seq.wrapping_sub(start_seq) as usize;
                    if i >= batch {
                        return false;
                    }
                    match payload {
                        NetlinkPayload::InnerMessage(m) => {
                            if let Some(Ok(v)) = out.get_mut(base + i) {
                                v.push(keep(m));
                            }
                        }
                        NetlinkPayload::Error(e) => {
                            acked += 1;
                            if let Some(code) = e.code {
                                let errno = -code.get();
                                refused = true;
                                out[base + i] = Err(KernelError::errno(
                                    errno,
                                    std::io::Error::from_raw_os_error(errno).to_string(),
                                ));
                            }
                        }
                        _ => {}
                    }
                    acked >= batch
                });
                if let Err(e) = res {
                    // The ACKs are lost: what happened to these is unknown,
                    // so none of them counts as applied.
                    for r in &mut out[base..] {
                        *r = Err(e.clone());
                    }
                    return out;
                }
            }
            if let Some(e) = send_err {
                out.push(Err(e));
                return out;
            }
            if refused {
                return out;
            }
        }
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

    /// A dump whose replies are handed to `f` one at a time, as they are
    /// parsed: a parsed link message is kilobytes (stats, per-family
    /// settings), and holding a thousand of them made `down` of a thousand
    /// namespaces peak at tens of megabytes.
    pub fn dump_each(
        &mut self,
        payload: RouteNetlinkMessage,
        f: impl FnMut(RouteNetlinkMessage),
    ) -> Result<(), KernelError> {
        self.each(payload, NLM_F_REQUEST | NLM_F_DUMP, f)
    }

    /// Send one request and gather its data replies until DONE or the ACK.
    fn collect(
        &mut self,
        payload: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, KernelError> {
        let mut out = Vec::new();
        self.each(payload, flags, |m| out.push(m))?;
        Ok(out)
    }

    /// Send one request and hand each data reply to `f` until DONE or the ACK.
    fn each(
        &mut self,
        payload: RouteNetlinkMessage,
        flags: u16,
        mut f: impl FnMut(RouteNetlinkMessage),
    ) -> Result<(), KernelError> {
        let seq = self.send(payload, flags)?;
        let mut failure = None;
        self.recv_until(|s, p| {
            if s != seq {
                return false;
            }
            match p {
                NetlinkPayload::InnerMessage(m) => {
                    f(m);
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
            None => Ok(()),
        }
    }
}
