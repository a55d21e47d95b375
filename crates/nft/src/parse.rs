//! Reading what the kernel sends back: netlink headers, (extended) ACKs and
//! attributes. Everything here takes untrusted bytes and must never panic.

use crate::sys::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// NLMSG_ERROR with error 0
    Ack {
        seq: u32,
    },
    Error {
        seq: u32,
        errno: i32,
        msg: Option<String>,
        /// offset of the offending attribute inside the message we sent
        offset: Option<u32>,
    },
    Done {
        seq: u32,
    },
    Data {
        seq: u32,
        ty: u16,
        flags: u16,
        payload: &'a [u8],
    },
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// Splits a datagram into netlink messages; stops at the first malformed one
/// and reports it as Err so the caller does not silently lose an error.
pub fn messages(buf: &[u8]) -> impl Iterator<Item = Result<Reply<'_>, String>> {
    let mut at = 0usize;
    let mut broken = false;
    std::iter::from_fn(move || {
        if broken || at + 16 > buf.len() {
            return None;
        }
        let len = u32_at(buf, at)? as usize;
        let ty = u16_at(buf, at + 4)?;
        let flags = u16_at(buf, at + 6)?;
        let seq = u32_at(buf, at + 8)?;
        if len < 16 || at.saturating_add(len) > buf.len() {
            broken = true;
            return Some(Err(format!(
                "truncated netlink message ({len} bytes at {at})"
            )));
        }
        let body = &buf[at + 16..at + len];
        at = at.saturating_add(align4(len));
        Some(match ty {
            NLMSG_ERROR => parse_error(seq, flags, body),
            NLMSG_DONE => Ok(Reply::Done { seq }),
            _ => Ok(Reply::Data {
                seq,
                ty,
                flags,
                payload: body,
            }),
        })
    })
}

fn parse_error(seq: u32, flags: u16, body: &[u8]) -> Result<Reply<'_>, String> {
    let err = u32_at(body, 0).ok_or("short NLMSG_ERROR")? as i32;
    if err == 0 {
        return Ok(Reply::Ack { seq });
    }
    let orig_len = u32_at(body, 4).unwrap_or(16) as usize;
    // with NETLINK_CAP_ACK (NLM_F_CAPPED) only the header of our message is echoed
    let echoed = if flags & NLM_F_CAPPED != 0 {
        16
    } else {
        align4(orig_len.max(16))
    };
    let mut msg = None;
    let mut offset = None;
    if flags & NLM_F_ACK_TLVS != 0
        && let Some(tlvs) = body.get(4usize.saturating_add(echoed)..)
    {
        for (t, v) in attrs(tlvs) {
            match t {
                NLMSGERR_ATTR_MSG => {
                    let s = v.split(|&c| c == 0).next().unwrap_or_default();
                    msg = Some(String::from_utf8_lossy(s).into_owned());
                }
                NLMSGERR_ATTR_OFFS => offset = u32_at(v, 0),
                _ => {}
            }
        }
    }
    Ok(Reply::Error {
        seq,
        errno: err.checked_neg().unwrap_or(libc::EINVAL),
        msg,
        offset,
    })
}

const NLM_F_CAPPED: u16 = 0x100;

/// Attributes of one level (type without the NESTED/BYTEORDER bits, value).
pub fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = u16_at(b, 0)? as usize;
        let ty = u16_at(b, 2)? & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            return None;
        }
        let v = &b[4..len];
        b = b.get(align4(len)..).unwrap_or_default();
        Some((ty, v))
    })
}

pub fn attr(b: &[u8], ty: u16) -> Option<&[u8]> {
    attrs(b).find(|(t, _)| *t == ty).map(|(_, v)| v)
}

pub fn attr_str(b: &[u8], ty: u16) -> Option<String> {
    let v = attr(b, ty)?;
    let s = v.split(|&c| c == 0).next().unwrap_or_default();
    Some(String::from_utf8_lossy(s).into_owned())
}

pub fn attr_be32(b: &[u8], ty: u16) -> Option<u32> {
    be32(attr(b, ty)?)
}

pub fn attr_be64(b: &[u8], ty: u16) -> Option<u64> {
    Some(u64::from_be_bytes(attr(b, ty)?.get(..8)?.try_into().ok()?))
}

/// The NFTA_DATA_VALUE inside an nft_data nest.
pub fn data_value(b: &[u8], ty: u16) -> Option<&[u8]> {
    attr(attr(b, ty)?, NFTA_DATA_VALUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_msg(seq: u32, errno: i32, tlvs: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        let len = 16 + 4 + 16 + tlvs.len();
        b.extend_from_slice(&(len as u32).to_ne_bytes());
        b.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        b.extend_from_slice(&(NLM_F_CAPPED | NLM_F_ACK_TLVS).to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&(-errno).to_ne_bytes());
        b.extend_from_slice(&[0u8; 16]);
        b.extend_from_slice(tlvs);
        b
    }

    #[test]
    fn ext_ack() {
        let mut t = Vec::new();
        t.extend_from_slice(&8u16.to_ne_bytes());
        t.extend_from_slice(&NLMSGERR_ATTR_OFFS.to_ne_bytes());
        t.extend_from_slice(&44u32.to_ne_bytes());
        t.extend_from_slice(&8u16.to_ne_bytes());
        t.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        t.extend_from_slice(b"bad\0");
        let b = err_msg(9, libc::EEXIST, &t);
        let r: Vec<_> = messages(&b).collect();
        assert_eq!(
            r,
            vec![Ok(Reply::Error {
                seq: 9,
                errno: libc::EEXIST,
                msg: Some("bad".into()),
                offset: Some(44)
            })]
        );
    }

    /// xorshift: no dev-dependency needed for a few thousand random inputs
    fn rng(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn never_panics_on_garbage() {
        let mut s = 0x9e3779b97f4a7c15u64;
        let mut t = Vec::new();
        t.extend_from_slice(&8u16.to_ne_bytes());
        t.extend_from_slice(&NLMSGERR_ATTR_OFFS.to_ne_bytes());
        t.extend_from_slice(&44u32.to_ne_bytes());
        let good = err_msg(3, libc::EINVAL, &t);
        for i in 0..20_000 {
            let mut b: Vec<u8> = if i % 2 == 0 {
                let n = (rng(&mut s) % 200) as usize;
                (0..n).map(|_| rng(&mut s) as u8).collect()
            } else {
                let mut g = good.clone();
                g.truncate((rng(&mut s) as usize) % (g.len() + 1));
                g
            };
            if i % 3 == 0 && !b.is_empty() {
                let at = (rng(&mut s) as usize) % b.len();
                b[at] = rng(&mut s) as u8;
            }
            for r in messages(&b) {
                if let Ok(Reply::Data { payload, .. }) = r {
                    for (_, v) in attrs(payload) {
                        let _ = attrs(v).count();
                        let _ = data_value(v, 1);
                    }
                }
            }
            let _ = attrs(&b).count();
            let _ = attr_str(&b, 1);
            let _ = crate::read::text::rule(
                NFPROTO_INET,
                &crate::read::expr::decode(&b, &Default::default()),
            );
        }
    }
}
