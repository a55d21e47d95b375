//! The NETLINK_NETFILTER socket: sending one transaction and reading every
//! answer the kernel queued for it.

use std::collections::HashSet;
use std::io;
use std::os::fd::AsRawFd;

use netlink_sys::{Socket, SocketAddr};

use crate::batch::Previous;
use crate::batch::{self, Batch};
use crate::encode::Buf;
use crate::error::NftError;
use crate::model::{MAX_USERDATA, NatTable};
use crate::parse::{self, Reply};
use crate::sys::*;
use crate::validate::check_object_name;

const RCVBUF: usize = 4 << 20;
const RECV_CHUNK: usize = 256 << 10;
/// Our TLV type inside the table userdata. nft parses table userdata as
/// nftnl TLVs and prints an error on every `nft list` if it can't, so raw
/// bytes (a hash) would break `nft list ruleset`; unknown types it skips.
const UDATA_TYPE: u8 = 0xe5;

/// A NETLINK_NETFILTER socket in the network namespace of the thread that
/// opened it. Not shared between threads: open one per namespace.
///
/// ```no_run
/// use netplumb_nft::{NatTable, NftSocket};
/// let mut s = NftSocket::open()?;
/// s.replace_table(&NatTable { name: "netplumb-lab".into(), ..Default::default() })?;
/// assert!(s.delete_table("netplumb-lab")?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct NftSocket {
    sock: Socket,
    pub(crate) seq: u32,
    pub(crate) rbuf: Vec<u8>,
}

/// One error answer inside a transaction.
pub(crate) struct BatchError {
    pub seq: u32,
    pub errno: i32,
    pub msg: Option<String>,
    pub offset: Option<u32>,
}

fn setsockopt_int(fd: i32, level: i32, opt: i32, v: i32) -> io::Result<()> {
    // SAFETY: plain setsockopt with a valid pointer to an int of the stated size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&v as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn getsockopt_int(fd: i32, level: i32, opt: i32) -> io::Result<i32> {
    let mut v: i32 = 0;
    let mut len = size_of::<i32>() as libc::socklen_t;
    // SAFETY: v and len are valid for writes of the sizes given.
    let r = unsafe { libc::getsockopt(fd, level, opt, (&mut v as *mut i32).cast(), &mut len) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(v)
    }
}

/// *FORCE needs CAP_NET_ADMIN in the initial user namespace; in a user
/// namespace only the plain option (capped by [rw]mem_max) works.
fn grow_buffer(fd: i32, force: i32, plain: i32, want: usize) -> io::Result<usize> {
    let want = i32::try_from(want).unwrap_or(i32::MAX);
    if setsockopt_int(fd, libc::SOL_SOCKET, force, want).is_err() {
        setsockopt_int(fd, libc::SOL_SOCKET, plain, want)?;
    }
    Ok(getsockopt_int(fd, libc::SOL_SOCKET, plain)?.max(0) as usize)
}

impl NftSocket {
    /// Opens a socket in the calling thread's network namespace, with
    /// extended ACKs and a receive buffer large enough for 10,000 ACKs.
    pub fn open() -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_NETFILTER)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        sock.set_cap_ack(true)?;
        sock.set_ext_ack(true)?;
        let fd = sock.as_raw_fd();
        grow_buffer(fd, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, RCVBUF)?;
        let tv = libc::timeval {
            tv_sec: 10,
            tv_usec: 0,
        };
        // SAFETY: tv is a valid timeval; a stuck kernel answer must not hang us forever.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        let seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        Ok(NftSocket {
            sock,
            seq,
            rbuf: vec![0u8; RECV_CHUNK],
        })
    }

    /// Validates `t`, then replaces table `inet t.name` with it in one
    /// transaction, whether or not a table of that name exists (and whoever
    /// made it). [`NftSocket::create_table`] and
    /// [`NftSocket::replace_table_handle`] only ever touch the caller's own.
    pub fn replace_table(&mut self, t: &NatTable) -> Result<(), NftError> {
        t.validate()?;
        self.replace_table_unvalidated(t)
    }

    /// replace_table without validate(): lets tests see how a kernel refusal is reported.
    #[doc(hidden)]
    pub fn replace_table_unvalidated(&mut self, t: &NatTable) -> Result<(), NftError> {
        self.replace(t, Previous::Any).map(|_| ())
    }

    /// Sends the replace batch for `t`; returns the new table's handle.
    pub(crate) fn replace(&mut self, t: &NatTable, prev: Previous) -> Result<u64, NftError> {
        let ud = wrap_userdata(&t.userdata)?;
        let b = batch::replace_batch(t, &ud, prev, self.seq);
        self.seq = b.next_seq();
        let create_seq = b.create_seq();
        let echoes = self.run_batch(b)?;
        echoes
            .iter()
            .find(|m| Some(m.seq) == create_seq && m.ty == NFT_MSG_NEWTABLE)
            .and_then(|m| parse::attr_be64(&m.attrs, NFTA_TABLE_HANDLE))
            .ok_or_else(|| {
                NftError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the kernel did not echo the handle of table inet {}",
                        t.name
                    ),
                ))
            })
    }

    /// Deletes table `inet name`; `Ok(false)` when there was none.
    pub fn delete_table(&mut self, name: &str) -> Result<bool, NftError> {
        check_object_name("table", name)?;
        let mut b = Batch::new(self.seq, 256);
        b.del_table(name);
        let b = b.finish();
        self.seq = b.next_seq();
        match self.run_batch(b) {
            Ok(_) => Ok(true),
            Err(NftError::Kernel {
                errno: libc::ENOENT,
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The caller's userdata of table `inet name`; `None` when it does not
    /// exist. A table not written by this crate returns its raw userdata.
    pub fn table_userdata(&mut self, name: &str) -> Result<Option<Vec<u8>>, NftError> {
        check_object_name("table", name)?;
        let Some(t) = self.get_table(NFPROTO_INET, name)? else {
            return Ok(None);
        };
        let ud = parse::attr(&t.attrs, NFTA_TABLE_USERDATA).unwrap_or_default();
        Ok(Some(unwrap_userdata(ud).unwrap_or(ud).to_vec()))
    }

    /// The table's message, None when it does not exist.
    pub(crate) fn get_table(&mut self, family: u8, name: &str) -> Result<Option<Msg>, NftError> {
        let mut b = Buf::default();
        let seq = self.take_seq();
        let m = b.begin_msg(
            (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            family,
            0,
        );
        b.str(NFTA_TABLE_NAME, name);
        b.end_msg(m);
        match self.request(&b, seq, false, &format!("list table {name}")) {
            Ok(mut v) => Ok(v.pop()),
            Err(NftError::Kernel {
                errno: libc::ENOENT,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A dump of nf_tables objects of type `ty` in `family` (0 = all
    /// families), with string filter attributes.
    pub(crate) fn dump(
        &mut self,
        ty: u16,
        family: u8,
        filters: &[(u16, &str)],
        op: &str,
    ) -> Result<Vec<Msg>, NftError> {
        let mut b = Buf::default();
        let seq = self.take_seq();
        let m = b.begin_msg(
            (NFNL_SUBSYS_NFTABLES << 8) | ty,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            family,
            0,
        );
        for (t, v) in filters {
            b.str(*t, v);
        }
        b.end_msg(m);
        self.request(&b, seq, true, op)
    }

    pub(crate) fn take_seq(&mut self) -> u32 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(1);
        s
    }

    pub(crate) fn send_all(&mut self, buf: &Buf) -> Result<(), NftError> {
        if let Some(o) = buf.overflow() {
            return Err(NftError::TooLarge(format!(
                "{o} exceeds the netlink limit of 65535 bytes"
            )));
        }
        let fd = self.sock.as_raw_fd();
        let need = buf.len() + 4096;
        let have = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF)?.max(0) as usize;
        if have < need {
            let got = grow_buffer(fd, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, need)?;
            // the kernel refuses a datagram larger than sk_sndbuf - 32 with EMSGSIZE
            if got < buf.len() + 32 {
                return Err(NftError::TooLarge(format!(
                    "the transaction is {} bytes but the socket send buffer is only {got}; \
                     raise net.core.wmem_max or run with CAP_NET_ADMIN",
                    buf.len()
                )));
            }
        }
        match self.sock.send(&buf.data, 0) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => Err(NftError::TooLarge(format!(
                "the kernel refused a {}-byte transaction as too large",
                buf.len()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn recv(&mut self, dontwait: bool) -> io::Result<Option<usize>> {
        let flags = libc::MSG_TRUNC | if dontwait { libc::MSG_DONTWAIT } else { 0 };
        // SAFETY: rbuf is valid for writes of its length.
        let n = unsafe {
            libc::recv(
                self.sock.as_raw_fd(),
                self.rbuf.as_mut_ptr().cast(),
                self.rbuf.len(),
                flags,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) if dontwait => Ok(None),
                Some(libc::EAGAIN) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no answer from nf_tables within 10 s",
                )),
                Some(libc::ENOBUFS) => Err(io::Error::other(
                    "nf_tables answers were lost (socket receive buffer overflow)",
                )),
                _ => Err(e),
            };
        }
        let n = n as usize;
        if n > self.rbuf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "netlink message larger than the receive buffer",
            ));
        }
        Ok(Some(n))
    }

    /// Sends one request (or a few, all answered under `seq`) and collects
    /// its answers until the ACK (or, for a dump, NLMSG_DONE).
    pub(crate) fn request(
        &mut self,
        b: &Buf,
        seq: u32,
        dump: bool,
        op: &str,
    ) -> Result<Vec<Msg>, NftError> {
        self.send_all(b)?;
        let mut out = Vec::new();
        loop {
            let Some(n) = self.recv(false)? else { continue };
            for r in parse::messages(&self.rbuf[..n]) {
                match r.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))? {
                    Reply::Data {
                        seq: s,
                        ty,
                        payload,
                        ..
                    } if s == seq => out.push(Msg::new(s, ty, payload)),
                    Reply::Error {
                        seq: s, errno, msg, ..
                    } if s == seq => {
                        return Err(NftError::Kernel {
                            errno,
                            op: op.into(),
                            tag: None,
                            msg,
                        });
                    }
                    Reply::Done { seq: s } if s == seq && dump => return Ok(out),
                    Reply::Ack { seq: s } if s == seq && !dump => return Ok(out),
                    _ => {}
                }
            }
        }
    }

    /// nfnetlink runs the whole batch inside sendmsg(), so every ACK and error
    /// is already queued when it returns: drain without blocking. Returns the
    /// messages the kernel echoed (NLM_F_ECHO), which come before the ACKs.
    pub(crate) fn run_batch(&mut self, b: Batch) -> Result<Vec<Msg>, NftError> {
        let (echoes, mut errors) = self.run_batch_raw(&b)?;
        // the first failure in batch order is the cause; later ones often follow from it
        let first = b.msgs.first().map_or(0, |m| m.seq);
        errors.sort_by_key(|e| e.seq.wrapping_sub(first));
        match errors.into_iter().next() {
            None => Ok(echoes),
            Some(e) => Err(map_error(&b, e)),
        }
    }

    /// Sends a transaction; returns the echoes and every error, unsorted.
    pub(crate) fn run_batch_raw(
        &mut self,
        b: &Batch,
    ) -> Result<(Vec<Msg>, Vec<BatchError>), NftError> {
        self.send_all(&b.buf)?;
        let mut pending: HashSet<u32> = b.msgs.iter().map(|m| m.seq).collect();
        let mut echoes = Vec::new();
        let mut errors = Vec::new();
        loop {
            let n = match self.recv(true)? {
                Some(n) => n,
                None if pending.is_empty() || !errors.is_empty() => break,
                None => match self.recv(false)? {
                    Some(n) => n,
                    None => break,
                },
            };
            for r in parse::messages(&self.rbuf[..n]) {
                match r.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))? {
                    Reply::Ack { seq } => {
                        pending.remove(&seq);
                    }
                    Reply::Error {
                        seq,
                        errno,
                        msg,
                        offset,
                    } => {
                        pending.remove(&seq);
                        errors.push(BatchError {
                            seq,
                            errno,
                            msg,
                            offset,
                        });
                    }
                    Reply::Data {
                        seq, ty, payload, ..
                    } => echoes.push(Msg::new(seq, ty, payload)),
                    _ => {}
                }
            }
        }
        Ok((echoes, errors))
    }
}

fn map_error(b: &Batch, e: BatchError) -> NftError {
    let BatchError {
        seq,
        errno,
        msg,
        offset,
    } = e;
    let Some(info) = b.msgs.iter().find(|m| m.seq == seq) else {
        return NftError::Kernel {
            errno,
            op: "nftables transaction".into(),
            tag: None,
            msg,
        };
    };
    let elem = offset.and_then(|o| info.elems.iter().find(|(s, e, _)| o >= *s && o < *e));
    NftError::Kernel {
        errno,
        op: info.op.clone(),
        tag: elem.map(|(_, _, t)| *t).or(info.tag),
        msg,
    }
}

/// The caller's bytes inside this crate's TLV; `None` when the userdata was
/// not written by this crate (another tool's, or none).
pub(crate) fn unwrap_userdata(ud: &[u8]) -> Option<&[u8]> {
    match ud {
        [UDATA_TYPE, len, rest @ ..] if rest.len() == *len as usize => Some(rest),
        _ => None,
    }
}

pub(crate) fn wrap_userdata(ud: &[u8]) -> Result<Vec<u8>, NftError> {
    let len = u8::try_from(ud.len())
        .ok()
        .filter(|l| usize::from(*l) <= MAX_USERDATA)
        .ok_or_else(|| NftError::InvalidTable {
            msg: format!(
                "table userdata is {} bytes; at most {MAX_USERDATA} fit",
                ud.len()
            ),
        })?;
    let mut out = Vec::with_capacity(ud.len() + 2);
    out.push(UDATA_TYPE);
    out.push(len);
    out.extend_from_slice(ud);
    Ok(out)
}

/// One answer from the kernel: its nfgenmsg family, message type (without
/// the subsystem) and attributes.
#[derive(Debug, Clone)]
pub(crate) struct Msg {
    pub seq: u32,
    pub family: u8,
    pub ty: u16,
    pub attrs: Vec<u8>,
}

impl Msg {
    fn new(seq: u32, ty: u16, payload: &[u8]) -> Self {
        Msg {
            seq,
            family: payload.first().copied().unwrap_or(0),
            ty: ty & 0xff,
            attrs: payload.get(4..).unwrap_or_default().to_vec(),
        }
    }
}
