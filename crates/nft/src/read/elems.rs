//! Set and map elements back as [lo, hi] ranges over whole keys, whatever
//! the backend: hash (one key), pipapo (key + key_end) or rbtree (a start
//! element, and an "interval end" element one past its last key).

use std::net::IpAddr;

use super::text::{ifname_from, ip_from};
use crate::parse::{attr, attr_be32, attrs, data_value};
use crate::sys::*;

/// One named set as the kernel describes it, with its elements.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawSet {
    pub name: String,
    pub flags: u32,
    pub key_type: u32,
    pub key_len: u32,
    pub data_type: u32,
    pub data_len: u32,
    pub elems: Vec<Elem>,
}

/// One element: every key from `lo` to `hi` (equal for a single key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Elem {
    pub lo: Vec<u8>,
    pub hi: Vec<u8>,
    pub data: Option<Vec<u8>>,
}

impl RawSet {
    pub fn interval(&self) -> bool {
        self.flags & NFT_SET_INTERVAL != 0
    }
}

/// Big-endian decrement of a whole key (keys compare as byte strings).
fn minus_one(k: &[u8]) -> Vec<u8> {
    let mut v = k.to_vec();
    for b in v.iter_mut().rev() {
        let (n, borrow) = b.overflowing_sub(1);
        *b = n;
        if !borrow {
            break;
        }
    }
    v
}

/// (key, key_end, interval-end flag, data) as dumped
type RawElem = (Vec<u8>, Option<Vec<u8>>, bool, Option<Vec<u8>>);

/// The elements of NFT_MSG_NEWSETELEM dump messages (their attributes).
pub(crate) fn decode(flags: u32, msgs: &[Vec<u8>]) -> Vec<Elem> {
    let mut raw: Vec<RawElem> = Vec::new();
    for m in msgs {
        let Some(list) = attr(m, NFTA_SET_ELEM_LIST_ELEMENTS) else {
            continue;
        };
        for (_, e) in attrs(list) {
            let Some(key) = data_value(e, NFTA_SET_ELEM_KEY) else {
                continue;
            };
            raw.push((
                key.to_vec(),
                data_value(e, NFTA_SET_ELEM_KEY_END).map(<[u8]>::to_vec),
                attr_be32(e, NFTA_SET_ELEM_FLAGS).unwrap_or(0) & NFT_SET_ELEM_INTERVAL_END != 0,
                data_value(e, NFTA_SET_ELEM_DATA).map(<[u8]>::to_vec),
            ));
        }
    }
    let rbtree = flags & NFT_SET_INTERVAL != 0 && raw.iter().all(|r| r.1.is_none());
    if !rbtree {
        let mut out: Vec<Elem> = raw
            .into_iter()
            .map(|(k, ke, _, d)| Elem {
                hi: ke.unwrap_or_else(|| k.clone()),
                lo: k,
                data: d,
            })
            .collect();
        out.sort_by(|a, b| a.lo.cmp(&b.lo));
        return out;
    }
    // an end and a start may share a key (adjacent ranges): the end first
    raw.sort_by(|a, b| a.0.cmp(&b.0).then(b.2.cmp(&a.2)));
    let mut out = Vec::new();
    for (i, (k, _, end, d)) in raw.iter().enumerate() {
        if *end {
            continue;
        }
        let hi = match raw.get(i + 1) {
            Some(next) => minus_one(&next.0),
            None => vec![0xff; k.len()],
        };
        out.push(Elem {
            lo: k.clone(),
            hi,
            data: d.clone(),
        });
    }
    out
}

/// nft's datatype numbers of a (possibly concatenated) type, first field first.
pub(crate) fn type_fields(mut ty: u32) -> Vec<u32> {
    let mut v = Vec::new();
    while ty != 0 && v.len() < 8 {
        v.push(ty & ((1 << TYPE_BITS) - 1));
        ty >>= TYPE_BITS;
    }
    v.reverse();
    v
}

pub(crate) fn type_name(ty: u32) -> String {
    type_fields(ty)
        .into_iter()
        .map(|t| match t {
            TYPE_IPADDR => "ipv4_addr",
            TYPE_IP6ADDR => "ipv6_addr",
            TYPE_INET_SERVICE => "inet_service",
            TYPE_IFNAME => "ifname",
            _ => "?",
        })
        .collect::<Vec<_>>()
        .join(" . ")
}

pub(crate) fn field_len(t: u32) -> usize {
    match t {
        TYPE_IPADDR => 4,
        TYPE_IP6ADDR | TYPE_IFNAME => 16,
        TYPE_INET_SERVICE => 2,
        _ => 4,
    }
}

/// The fields of a key or data value; inside a concatenation each field is
/// padded to 4 bytes, alone it is not. A missing field is empty.
pub(crate) fn split(ty: u32, b: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let fields = type_fields(ty);
    let concat = fields.len() > 1;
    let mut at = 0;
    let mut out = Vec::new();
    for t in fields {
        let len = field_len(t);
        let v = b.get(at..at + len).unwrap_or_default().to_vec();
        out.push((t, v));
        at += if concat { len.div_ceil(4) * 4 } else { len };
    }
    out
}

/// The prefix length when [lo, hi] is exactly one CIDR block.
pub(crate) fn prefix_len(lo: &[u8], hi: &[u8]) -> Option<u8> {
    if lo.len() != hi.len() {
        return None;
    }
    let bits = lo.len() * 8;
    let bit = |b: &[u8], i: usize| b[i / 8] >> (7 - i % 8) & 1;
    let common = (0..bits).take_while(|&i| bit(lo, i) == bit(hi, i)).count();
    let host_ok = (common..bits).all(|i| bit(lo, i) == 0 && bit(hi, i) == 1);
    host_ok.then_some(common as u8)
}

fn one(t: u32, b: &[u8]) -> String {
    match t {
        TYPE_IPADDR | TYPE_IP6ADDR => {
            ip_from(b).map_or_else(|| format!("{b:02x?}"), |a: IpAddr| a.to_string())
        }
        TYPE_INET_SERVICE if b.len() >= 2 => u16::from_be_bytes([b[0], b[1]]).to_string(),
        TYPE_IFNAME => format!("\"{}\"", ifname_from(b)),
        _ => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

/// One field over [lo, hi] as nft writes it: `80`, `80-90`, `10.0.0.0/8`.
pub(crate) fn field_text(t: u32, lo: &[u8], hi: &[u8]) -> String {
    if lo == hi {
        return one(t, lo);
    }
    if matches!(t, TYPE_IPADDR | TYPE_IP6ADDR)
        && let Some(p) = prefix_len(lo, hi)
    {
        return format!("{}/{p}", one(t, lo));
    }
    format!("{}-{}", one(t, lo), one(t, hi))
}

/// An element's key and data as text.
pub(crate) fn elem_text(s: &RawSet, e: &Elem) -> (String, String) {
    let lo = split(s.key_type, &e.lo);
    let hi = split(s.key_type, &e.hi);
    let key: Vec<String> = lo
        .iter()
        .zip(&hi)
        .map(|((t, l), (_, h))| field_text(*t, l, h))
        .collect();
    let data = e.data.as_ref().map_or_else(String::new, |d| {
        split(s.data_type, d)
            .iter()
            .map(|(t, v)| one(*t, v))
            .collect::<Vec<_>>()
            .join(" . ")
    });
    (key.join(" . "), data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_ranges() {
        assert_eq!(prefix_len(&[10, 0, 0, 0], &[10, 255, 255, 255]), Some(8));
        assert_eq!(prefix_len(&[10, 1, 2, 3], &[10, 1, 2, 3]), Some(32));
        assert_eq!(prefix_len(&[10, 0, 0, 1], &[10, 0, 0, 2]), None);
        assert_eq!(prefix_len(&[0; 4], &[0xff; 4]), Some(0));
        assert_eq!(
            field_text(TYPE_IPADDR, &[10, 0, 0, 0], &[10, 0, 0, 255]),
            "10.0.0.0/24"
        );
        assert_eq!(field_text(TYPE_INET_SERVICE, &[0, 80], &[0, 90]), "80-90");
        assert_eq!(minus_one(&[1, 0]), vec![0, 0xff]);
    }
}
