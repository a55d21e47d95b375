//! Plain named sets (no data) of one field or a concatenation: their
//! layout, their elements encoded the way `nft -f` encodes them (so both
//! list the same), and their text. Elements are [lo, hi] per field.

use std::fmt::Write;
use std::net::IpAddr;

use crate::encode::Buf;
use crate::expr::{addr_bytes, ifname_bytes};
use crate::sys::*;

/// One key field of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum FieldKind {
    Ifname,
    V4,
    V6,
    Port,
}

impl FieldKind {
    pub fn len(self) -> usize {
        match self {
            FieldKind::Ifname | FieldKind::V6 => 16,
            FieldKind::V4 => 4,
            FieldKind::Port => 2,
        }
    }

    fn type_id(self) -> u32 {
        match self {
            FieldKind::Ifname => TYPE_IFNAME,
            FieldKind::V4 => TYPE_IPADDR,
            FieldKind::V6 => TYPE_IP6ADDR,
            FieldKind::Port => TYPE_INET_SERVICE,
        }
    }

    pub fn type_name(self) -> &'static str {
        match self {
            FieldKind::Ifname => "ifname",
            FieldKind::V4 => "ipv4_addr",
            FieldKind::V6 => "ipv6_addr",
            FieldKind::Port => "inet_service",
        }
    }
}

/// One field's value range, in network order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Span {
    pub lo: Vec<u8>,
    pub hi: Vec<u8>,
}

impl Span {
    pub fn ifname(n: &str) -> Span {
        let b = ifname_bytes(n).to_vec();
        Span {
            lo: b.clone(),
            hi: b,
        }
    }

    pub fn net(n: &ipnet::IpNet) -> Span {
        Span {
            lo: addr_bytes(&n.network()),
            hi: addr_bytes(&n.broadcast()),
        }
    }

    pub fn ports(lo: u16, hi: u16) -> Span {
        Span {
            lo: lo.to_be_bytes().to_vec(),
            hi: hi.to_be_bytes().to_vec(),
        }
    }

    fn is_single(&self) -> bool {
        self.lo == self.hi
    }

    fn overlaps(&self, o: &Span) -> bool {
        self.lo <= o.hi && o.lo <= self.hi
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SetElem {
    pub key: Vec<Span>,
    pub tag: usize,
}

impl SetElem {
    /// Every field overlaps: the kernel refuses both in one interval set.
    pub fn overlaps(&self, o: &SetElem) -> bool {
        self.key.iter().zip(&o.key).all(|(a, b)| a.overlaps(b))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SetPlan {
    pub name: String,
    pub fields: Vec<FieldKind>,
    pub interval: bool,
    pub elems: Vec<SetElem>,
}

fn pad4(b: &[u8]) -> Vec<u8> {
    let mut v = b.to_vec();
    v.resize(b.len().div_ceil(4) * 4, 0);
    v
}

/// Big-endian increment; `None` past the largest key.
fn plus_one(k: &[u8]) -> Option<Vec<u8>> {
    let mut v = k.to_vec();
    for b in v.iter_mut().rev() {
        let (n, carry) = b.overflowing_add(1);
        *b = n;
        if !carry {
            return Some(v);
        }
    }
    None
}

/// One element as the kernel wants it.
pub(crate) struct EncElem {
    pub key: Vec<u8>,
    pub key_end: Option<Vec<u8>>,
    pub end_flag: bool,
    /// nft's "interval runs to the end" mark
    pub open: bool,
    pub tag: usize,
}

impl SetPlan {
    pub fn concat(&self) -> bool {
        self.fields.len() > 1
    }

    pub fn key_type(&self) -> u32 {
        self.fields
            .iter()
            .fold(0, |t, f| (t << TYPE_BITS) | f.type_id())
    }

    pub fn key_len(&self) -> u32 {
        if self.concat() {
            self.fields
                .iter()
                .map(|f| f.len().div_ceil(4) * 4)
                .sum::<usize>() as u32
        } else {
            self.fields.first().map_or(0, |f| f.len() as u32)
        }
    }

    pub fn flags(&self) -> u32 {
        match (self.interval, self.concat()) {
            (true, true) => NFT_SET_INTERVAL | NFT_SET_CONCAT,
            (true, false) => NFT_SET_INTERVAL,
            _ => 0,
        }
    }

    /// nftnl set userdata: the key byte order nft needs to print a lone
    /// field (a string type like ifname is host order). Concatenations
    /// list the same without it.
    pub fn userdata(&self) -> Option<Vec<u8>> {
        let [f] = self.fields.as_slice() else {
            return None;
        };
        // NFTNL_UDATA_SET_KEYBYTEORDER: 1 host, 2 big endian (u32, host order)
        let order: u32 = if *f == FieldKind::Ifname { 1 } else { 2 };
        let mut ud = vec![0, 4];
        ud.extend_from_slice(&order.to_ne_bytes());
        Some(ud)
    }

    fn bytes(&self, e: &SetElem, hi: bool) -> Vec<u8> {
        let part = |s: &Span| if hi { s.hi.clone() } else { s.lo.clone() };
        if self.concat() {
            e.key.iter().flat_map(|s| pad4(&part(s))).collect()
        } else {
            e.key.first().map(part).unwrap_or_default()
        }
    }

    /// Elements the way nft sends them: a hash set one key each, a
    /// concatenated interval set key + key_end, a one-field interval set
    /// start elements and "interval end" elements one past each range,
    /// closing [0, first) too.
    pub fn encoded(&self) -> Vec<EncElem> {
        if !self.interval || self.concat() {
            return self
                .elems
                .iter()
                .map(|e| EncElem {
                    key: self.bytes(e, false),
                    key_end: self.interval.then(|| self.bytes(e, true)),
                    end_flag: false,
                    open: false,
                    tag: e.tag,
                })
                .collect();
        }
        let mut elems: Vec<&SetElem> = self.elems.iter().collect();
        elems.sort_by(|a, b| a.key.cmp(&b.key));
        let mut out = Vec::new();
        if let Some(first) = elems.first()
            && first
                .key
                .first()
                .is_some_and(|s| s.lo.iter().any(|b| *b != 0))
        {
            out.push(EncElem {
                key: vec![0; self.key_len() as usize],
                key_end: None,
                end_flag: true,
                open: false,
                tag: first.tag,
            });
        }
        for e in elems {
            let end = plus_one(&self.bytes(e, true));
            out.push(EncElem {
                key: self.bytes(e, false),
                key_end: None,
                end_flag: false,
                open: end.is_none(),
                tag: e.tag,
            });
            if let Some(k) = end {
                out.push(EncElem {
                    key: k,
                    key_end: None,
                    end_flag: true,
                    open: false,
                    tag: e.tag,
                });
            }
        }
        out
    }

    /// `type … ; flags interval; elements = { … }` lines for `nft -f`.
    pub fn render(&self, s: &mut String) {
        let types: Vec<&str> = self.fields.iter().map(|f| f.type_name()).collect();
        let _ = writeln!(s, "\tset {} {{", self.name);
        let _ = writeln!(s, "\t\ttype {}", types.join(" . "));
        if self.interval {
            let _ = writeln!(s, "\t\tflags interval");
        }
        let elems: Vec<String> = self
            .elems
            .iter()
            .map(|e| {
                e.key
                    .iter()
                    .zip(&self.fields)
                    .map(|(sp, f)| span_text(*f, sp))
                    .collect::<Vec<_>>()
                    .join(" . ")
            })
            .collect();
        let _ = writeln!(
            s,
            "\t\telements = {{ {} }}\n\t}}\n",
            elems.join(",\n\t\t\t     ")
        );
    }
}

fn ip(b: &[u8]) -> String {
    match b.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(b).unwrap_or_default()).to_string(),
        _ => IpAddr::from(<[u8; 16]>::try_from(b).unwrap_or_default()).to_string(),
    }
}

fn port(b: &[u8]) -> u16 {
    u16::from_be_bytes([
        b.first().copied().unwrap_or(0),
        b.get(1).copied().unwrap_or(0),
    ])
}

/// One field of an element: `"eth0"`, `10.0.0.0/8`, `10.0.0.1`, `80-90`.
pub(crate) fn span_text(f: FieldKind, s: &Span) -> String {
    match f {
        FieldKind::Ifname => {
            let n = s.lo.split(|c| *c == 0).next().unwrap_or_default();
            format!("\"{}\"", String::from_utf8_lossy(n))
        }
        FieldKind::V4 | FieldKind::V6 => match crate::read::elems::prefix_len(&s.lo, &s.hi) {
            Some(p) if (p as usize) < s.lo.len() * 8 => format!("{}/{p}", ip(&s.lo)),
            _ if s.is_single() => ip(&s.lo),
            _ => format!("{}-{}", ip(&s.lo), ip(&s.hi)),
        },
        FieldKind::Port if s.is_single() => port(&s.lo).to_string(),
        FieldKind::Port => format!("{}-{}", port(&s.lo), port(&s.hi)),
    }
}

/// The element attributes of one element inside NFTA_SET_ELEM_LIST_ELEMENTS.
pub(crate) fn emit_elem(buf: &mut Buf, e: &EncElem) {
    let n = buf.nest(NFTA_LIST_ELEM);
    buf.data_value(NFTA_SET_ELEM_KEY, &e.key);
    if let Some(k) = &e.key_end {
        buf.data_value(NFTA_SET_ELEM_KEY_END, k);
    }
    if e.end_flag {
        buf.u32be(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
    }
    if e.open {
        buf.attr(NFTA_SET_ELEM_USERDATA, &UDATA_ELEM_INTERVAL_OPEN);
    }
    buf.end_nest(n);
}
