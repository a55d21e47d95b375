//! Conntrack entries of a remapped port, deleted over ctnetlink: a UDP flow
//! sticks to the backend its first packet was DNAT'd to for as long as it
//! keeps sending (the entry never times out); deleting the entry makes the
//! next packet go through the NAT rules again, to the new backend.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;

use crate::encode::Buf;
use crate::error::NftError;
use crate::expr::addr_bytes;
use crate::model::{DnatMapping, L4Proto};
use crate::parse::{self, Reply, attr};
use crate::socket::NftSocket;
use crate::sys::*;

/// Which conntrack entries to delete, by their original direction (the
/// packet as the client sent it, before DNAT).
///
/// ```no_run
/// use netplumb_nft::{CtMatch, L4Proto, NftSocket};
/// let mut s = NftSocket::open()?;
/// // every UDP flow to port 5000 of any local address
/// let n = s.delete_conntrack(&CtMatch { v6: false, proto: L4Proto::Udp, daddr: None, ports: (5000, 5000) })?;
/// println!("{n} flows will be NATed afresh");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtMatch {
    /// IPv6 entries (else IPv4).
    pub v6: bool,
    /// The transport protocol.
    pub proto: L4Proto,
    /// The original destination address; `None` matches any.
    pub daddr: Option<IpAddr>,
    /// The original destination port range, inclusive.
    pub ports: (u16, u16),
}

impl CtMatch {
    /// The entries a mapping's DNAT made (or would make): same family,
    /// protocol, destination address and ports.
    pub fn for_mapping(m: &DnatMapping) -> CtMatch {
        CtMatch {
            v6: m.to_addr.is_ipv6(),
            proto: m.proto,
            daddr: m.daddr,
            ports: m.ports,
        }
    }

    fn matches(&self, e: &Entry) -> bool {
        let want_len = if self.v6 { 16 } else { 4 };
        e.daddr.len() == want_len
            && e.proto == self.proto.number()
            && self.daddr.is_none_or(|a| addr_bytes(&a) == e.daddr)
            && (self.ports.0..=self.ports.1).contains(&e.dport)
    }
}

/// One conntrack entry, as much as matching and deleting it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// CTA_TUPLE_ORIG's contents, sent back to name the entry
    tuple: Vec<u8>,
    id: Option<u32>,
    zone: Option<u16>,
    daddr: Vec<u8>,
    proto: u8,
    dport: u16,
}

fn entry(attrs_: &[u8]) -> Option<Entry> {
    let tuple = attr(attrs_, CTA_TUPLE_ORIG)?;
    let ip = attr(tuple, CTA_TUPLE_IP)?;
    let daddr = attr(ip, CTA_IP_V4_DST).or_else(|| attr(ip, CTA_IP_V6_DST))?;
    let proto = attr(tuple, CTA_TUPLE_PROTO)?;
    let be16 = |b: &[u8]| Some(u16::from_be_bytes(b.get(..2)?.try_into().ok()?));
    Some(Entry {
        tuple: tuple.to_vec(),
        id: attr(attrs_, CTA_ID).and_then(parse::be32),
        zone: attr(attrs_, CTA_ZONE).and_then(be16),
        daddr: daddr.to_vec(),
        proto: *attr(proto, CTA_PROTO_NUM)?.first()?,
        dport: attr(proto, CTA_PROTO_DST_PORT).and_then(be16)?,
    })
}

fn ct_msg(b: &mut Buf, ty: u16, flags: u16, seq: u32, v6: bool) -> usize {
    let family = if v6 { NFPROTO_IPV6 } else { NFPROTO_IPV4 };
    b.begin_msg((NFNL_SUBSYS_CTNETLINK << 8) | ty, flags, seq, family, 0)
}

/// CT_DELETE of one entry: its original tuple, id (so an entry that went
/// and came back with the same tuple is not hit) and zone.
fn delete_msg(b: &mut Buf, e: &Entry, seq: u32, v6: bool) {
    let m = ct_msg(b, IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, seq, v6);
    b.nested_raw(CTA_TUPLE_ORIG, &e.tuple);
    if let Some(id) = e.id {
        b.u32be(CTA_ID, id);
    }
    if let Some(z) = e.zone {
        b.attr(CTA_ZONE, &z.to_be_bytes());
    }
    b.end_msg(m);
}

/// Deletes sent in one sendmsg: small enough for any socket buffer.
const DELETES_PER_SEND: usize = 256;

impl NftSocket {
    /// Deletes the conntrack entries (of this network namespace) whose
    /// original tuple matches; returns how many were deleted. Entries that
    /// vanish meanwhile are not counted. Their flows' next packets are NATed
    /// again by the current rules.
    pub fn delete_conntrack(&mut self, m: &CtMatch) -> Result<usize, NftError> {
        self.delete_conntrack_any(std::slice::from_ref(m))
    }

    /// [`NftSocket::delete_conntrack`] for several matches at once: one dump
    /// of the table per IP family however many mappings retire (a dump per
    /// mapping made removing 1,000 mappings take seconds).
    pub fn delete_conntrack_any(&mut self, ms: &[CtMatch]) -> Result<usize, NftError> {
        let mut deleted = 0;
        for v6 in [false, true] {
            let fam: Vec<&CtMatch> = ms.iter().filter(|m| m.v6 == v6).collect();
            if fam.is_empty() {
                continue;
            }
            let entries: Vec<Entry> = self
                .dump_family(v6)?
                .iter()
                .filter_map(|msg| entry(&msg.attrs))
                .filter(|e| fam.iter().any(|m| m.matches(e)))
                .collect();
            deleted += self.delete_entries(&entries, v6)?;
        }
        Ok(deleted)
    }

    /// Whether any conntrack entry of this namespace has had its destination
    /// NATed: when none has, there is no flow of a retiring table to
    /// forget, and reading the table's whole map first (a tenth of a second
    /// at 10,000 mappings, for a `down`) can be skipped.
    pub fn has_dnat_flows(&mut self) -> Result<bool, NftError> {
        for v6 in [false, true] {
            let dnat = self
                .dump_family(v6)?
                .iter()
                .filter_map(|msg| attr(&msg.attrs, CTA_STATUS).and_then(parse::be32))
                .any(|status| status & IPS_DST_NAT != 0);
            if dnat {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every conntrack entry of one IP family (`conntrack -L`).
    fn dump_family(&mut self, v6: bool) -> Result<Vec<crate::socket::Msg>, NftError> {
        let mut b = Buf::default();
        let seq = self.take_seq();
        let msg = ct_msg(
            &mut b,
            IPCTNL_MSG_CT_GET,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            v6,
        );
        b.end_msg(msg);
        self.request(&b, seq, true, "conntrack -L")
    }

    fn delete_entries(&mut self, entries: &[Entry], v6: bool) -> Result<usize, NftError> {
        let mut deleted = 0;
        for chunk in entries.chunks(DELETES_PER_SEND) {
            let mut b = Buf::default();
            let mut seqs = Vec::with_capacity(chunk.len());
            for e in chunk {
                let s = self.take_seq();
                delete_msg(&mut b, e, s, v6);
                seqs.push(s);
            }
            for (_, errno) in self.acks(&b, &seqs)? {
                match errno {
                    0 => deleted += 1,
                    libc::ENOENT => {}
                    e => {
                        return Err(NftError::Kernel {
                            errno: e,
                            op: "conntrack -D".into(),
                            tag: None,
                            msg: None,
                        });
                    }
                }
            }
        }
        Ok(deleted)
    }

    /// Sends several requests at once; returns each one's errno (0 = ACK).
    fn acks(&mut self, b: &Buf, seqs: &[u32]) -> Result<Vec<(u32, i32)>, NftError> {
        self.send_all(b)?;
        let mut pending: HashMap<u32, Option<i32>> = seqs.iter().map(|s| (*s, None)).collect();
        let mut left = seqs.len();
        while left > 0 {
            let Some(n) = self.recv(false)? else { continue };
            for r in parse::messages(&self.rbuf[..n]) {
                let (seq, errno) =
                    match r.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))? {
                        Reply::Ack { seq } => (seq, 0),
                        Reply::Error { seq, errno, .. } => (seq, errno),
                        _ => continue,
                    };
                if let Some(slot @ None) = pending.get_mut(&seq) {
                    *slot = Some(errno);
                    left -= 1;
                }
            }
        }
        Ok(seqs
            .iter()
            .map(|s| (*s, pending.get(s).copied().flatten().unwrap_or(0)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::attrs;

    /// A CT_NEW dump message's attributes for a v4 UDP flow.
    fn dumped(dst: [u8; 4], dport: u16, id: u32) -> Vec<u8> {
        let mut b = Buf::default();
        let t = b.nest(CTA_TUPLE_ORIG);
        let ip = b.nest(CTA_TUPLE_IP);
        b.attr(1, &[10, 0, 1, 2]);
        b.attr(CTA_IP_V4_DST, &dst);
        b.end_nest(ip);
        let p = b.nest(CTA_TUPLE_PROTO);
        b.attr(CTA_PROTO_NUM, &[17]);
        b.attr(2, &40000u16.to_be_bytes());
        b.attr(CTA_PROTO_DST_PORT, &dport.to_be_bytes());
        b.end_nest(p);
        b.end_nest(t);
        b.u32be(CTA_ID, id);
        b.data
    }

    #[test]
    fn matches_by_family_proto_daddr_and_port_range() {
        let e = entry(&dumped([10, 0, 1, 1], 5000, 7)).expect("entry");
        assert_eq!((e.proto, e.dport, e.id), (17, 5000, Some(7)));
        let m = |daddr: Option<&str>, ports, proto, v6| CtMatch {
            v6,
            proto,
            daddr: daddr.map(|d| d.parse().expect("a")),
            ports,
        };
        assert!(m(None, (5000, 5000), L4Proto::Udp, false).matches(&e));
        assert!(m(Some("10.0.1.1"), (4000, 6000), L4Proto::Udp, false).matches(&e));
        assert!(!m(Some("10.0.1.9"), (5000, 5000), L4Proto::Udp, false).matches(&e));
        assert!(!m(None, (5001, 6000), L4Proto::Udp, false).matches(&e));
        assert!(!m(None, (5000, 5000), L4Proto::Tcp, false).matches(&e));
        assert!(!m(None, (5000, 5000), L4Proto::Udp, true).matches(&e));
    }

    #[test]
    fn delete_names_the_entry_by_tuple_and_id() {
        let e = entry(&dumped([10, 0, 1, 1], 5000, 7)).expect("entry");
        let mut b = Buf::default();
        delete_msg(&mut b, &e, 42, false);
        let r: Vec<_> = parse::messages(&b.data).collect();
        let Some(Ok(Reply::Data { ty, payload, .. })) = r.first() else {
            panic!("{r:?}");
        };
        assert_eq!(*ty, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE);
        assert_eq!(payload[0], NFPROTO_IPV4);
        let back = entry(&payload[4..]).expect("same entry");
        assert_eq!(back, e);
        // the tuple is re-sent as a nested attribute, exactly as dumped
        let (ty, _) = attrs(&payload[4..]).next().expect("attr");
        assert_eq!(ty, CTA_TUPLE_ORIG);
    }
}
