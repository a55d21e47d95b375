//! The NETLINK_NETFILTER socket: sending one transaction and reading every
//! answer the kernel queued for it.

use std::collections::HashSet;
use std::io;
use std::os::fd::AsRawFd;

use netlink_sys::{Socket, SocketAddr};

use crate::batch::{self, Batch};
use crate::encode::Buf;
use crate::error::NftError;
use crate::model::{NatTable, check_object_name};
use crate::parse::{self, Reply};
use crate::sys::*;

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
    seq: u32,
    rbuf: Vec<u8>,
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
    /// made it).
    pub fn replace_table(&mut self, t: &NatTable) -> Result<(), NftError> {
        t.validate()?;
        self.replace_table_unvalidated(t)
    }

    /// replace_table without validate(): lets tests see how a kernel refusal is reported.
    #[doc(hidden)]
    pub fn replace_table_unvalidated(&mut self, t: &NatTable) -> Result<(), NftError> {
        let mut ud = Vec::with_capacity(t.userdata.len() + 2);
        ud.push(UDATA_TYPE);
        ud.push(
            u8::try_from(t.userdata.len()).map_err(|_| NftError::InvalidTable {
                msg: "table userdata is longer than 254 bytes".into(),
            })?,
        );
        ud.extend_from_slice(&t.userdata);
        let b = batch::replace_batch(t, &ud, self.seq);
        self.seq = b.next_seq();
        self.run_batch(b)
    }

    /// Deletes table `inet name`; `Ok(false)` when there was none.
    pub fn delete_table(&mut self, name: &str) -> Result<bool, NftError> {
        check_object_name("table", name)?;
        let mut b = Batch::new(self.seq, 256);
        b.del_table(name);
        let b = b.finish();
        self.seq = b.next_seq();
        match self.run_batch(b) {
            Ok(()) => Ok(true),
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
        let Some(t) = self.get_table(name)? else {
            return Ok(None);
        };
        let ud = parse::attr(&t, NFTA_TABLE_USERDATA).unwrap_or_default();
        Ok(Some(unwrap_userdata(ud)))
    }

    /// NFTA_* attributes of the table, None when it does not exist.
    pub(crate) fn get_table(&mut self, name: &str) -> Result<Option<Vec<u8>>, NftError> {
        let mut b = Buf::default();
        let seq = self.take_seq();
        let m = b.begin_msg(
            (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            NFPROTO_INET,
            0,
        );
        b.str(NFTA_TABLE_NAME, name);
        b.end_msg(m);
        match self.request(&b, seq, false, &format!("list table inet {name}")) {
            Ok(mut v) => Ok(v.pop()),
            Err(NftError::Kernel {
                errno: libc::ENOENT,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A dump of `ty` filtered by table; returns each object's attributes.
    pub(crate) fn dump(
        &mut self,
        ty: u16,
        filters: &[(u16, &str)],
        op: &str,
    ) -> Result<Vec<Vec<u8>>, NftError> {
        let mut b = Buf::default();
        let seq = self.take_seq();
        let m = b.begin_msg(
            (NFNL_SUBSYS_NFTABLES << 8) | ty,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            NFPROTO_INET,
            0,
        );
        for (t, v) in filters {
            b.str(*t, v);
        }
        b.end_msg(m);
        self.request(&b, seq, true, op)
    }

    fn take_seq(&mut self) -> u32 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(1);
        s
    }

    fn send_all(&mut self, buf: &Buf) -> Result<(), NftError> {
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

    fn recv(&mut self, dontwait: bool) -> io::Result<Option<usize>> {
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

    fn request(
        &mut self,
        b: &Buf,
        seq: u32,
        dump: bool,
        op: &str,
    ) -> Result<Vec<Vec<u8>>, NftError> {
        self.send_all(b)?;
        let mut out = Vec::new();
        loop {
            let Some(n) = self.recv(false)? else { continue };
            for r in parse::messages(&self.rbuf[..n]) {
                match r.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))? {
                    Reply::Data {
                        seq: s, payload, ..
                    } if s == seq => out.push(payload.get(4..).unwrap_or_default().to_vec()),
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
    /// is already queued when it returns: drain without blocking.
    fn run_batch(&mut self, b: Batch) -> Result<(), NftError> {
        self.send_all(&b.buf)?;
        let mut pending: HashSet<u32> = b.msgs.iter().map(|m| m.seq).collect();
        let mut errors: Vec<(u32, i32, Option<String>, Option<u32>)> = Vec::new();
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
                        errors.push((seq, errno, msg, offset));
                    }
                    _ => {}
                }
            }
        }
        // the first failure in batch order is the cause; later ones often follow from it
        errors.sort_by_key(|e| e.0.wrapping_sub(b.msgs.first().map_or(0, |m| m.seq)));
        match errors.into_iter().next() {
            None => Ok(()),
            Some((seq, errno, msg, offset)) => Err(map_error(&b, seq, errno, msg, offset)),
        }
    }
}

fn map_error(
    b: &Batch,
    seq: u32,
    errno: i32,
    msg: Option<String>,
    offset: Option<u32>,
) -> NftError {
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

pub(crate) fn unwrap_userdata(ud: &[u8]) -> Vec<u8> {
    match ud {
        [UDATA_TYPE, len, rest @ ..] if rest.len() >= *len as usize => {
            rest[..*len as usize].to_vec()
        }
        _ => ud.to_vec(),
    }
}
