//! The DNAT maps of a replace batch: NEWSET with the key and data types nft
//! uses, and the elements, split under the 64 KiB nest limit and tagged so
//! a refused element names its mapping; plain sets (filter) the same way.

use crate::batch::Batch;
use crate::encode::NLA_MAX;
use std::net::IpAddr;

use crate::plan::{self, MapPlan};
use crate::render;
use crate::sets::{self, SetPlan};
use crate::sys::*;

/// NFTA_SET_ELEM_LIST_ELEMENTS is one nested attribute with a u16 length.
const MAX_ELEMS_PER_MSG: usize = 1000;
/// Largest element we emit (v6 . port key, key_end, v6 . port data) with headers.
const MAX_ELEM_BYTES: usize = 128;

impl Batch {
    pub fn set(&mut self, table: &str, mp: &MapPlan, set_id: u32) {
        let op = format!(
            "add map inet {table} {} {{ type {} : {} }}",
            mp.name,
            render::map_key_type(mp),
            render::map_data_type(mp)
        );
        let m = self.begin(
            NFT_MSG_NEWSET,
            NLM_F_CREATE | NLM_F_EXCL,
            op,
            mp.first_tag(),
        );
        let (addr_ty, addr_len) = if mp.v6 {
            (TYPE_IP6ADDR, 16)
        } else {
            (TYPE_IPADDR, 4)
        };
        let concat = (addr_ty << TYPE_BITS) | TYPE_INET_SERVICE;
        let (key_ty, key_len) = if mp.daddr {
            (concat, addr_len + 4)
        } else {
            (TYPE_INET_SERVICE, 2)
        };
        let (data_ty, data_len) = if mp.data_port {
            (concat, addr_len + 4)
        } else {
            (addr_ty, addr_len)
        };
        let mut flags = NFT_SET_MAP;
        // a ranged concatenation needs the pipapo backend, chosen by CONCAT +
        // the per-field lengths in NFTA_SET_DESC; single-field ranges use rbtree
        let pipapo = mp.interval && mp.daddr;
        if mp.interval {
            flags |= NFT_SET_INTERVAL;
        }
        if pipapo {
            flags |= NFT_SET_CONCAT;
        }
        self.buf.str(NFTA_SET_TABLE, table);
        self.buf.str(NFTA_SET_NAME, &mp.name);
        self.buf.u32be(NFTA_SET_FLAGS, flags);
        self.buf.u32be(NFTA_SET_KEY_TYPE, key_ty);
        self.buf.u32be(NFTA_SET_KEY_LEN, key_len);
        self.buf.u32be(NFTA_SET_DATA_TYPE, data_ty);
        self.buf.u32be(NFTA_SET_DATA_LEN, data_len);
        self.buf.u32be(NFTA_SET_ID, set_id);
        if pipapo {
            let d = self.buf.nest(NFTA_SET_DESC);
            let c = self.buf.nest(NFTA_SET_DESC_CONCAT);
            for len in [addr_len, 2] {
                let e = self.buf.nest(NFTA_LIST_ELEM);
                self.buf.u32be(NFTA_SET_FIELD_LEN, len);
                self.buf.end_nest(e);
            }
            self.buf.end_nest(c);
            self.buf.end_nest(d);
        } else if let Some(size) = mp.size_hint() {
            let d = self.buf.nest(NFTA_SET_DESC);
            self.buf.u32be(NFTA_SET_DESC_SIZE, size);
            self.buf.end_nest(d);
        }
        self.buf.end_msg(m);
        self.elements(table, mp, set_id);
    }

    /// A plain set (no data) and its elements, split under the nest limit.
    pub fn plain_set(&mut self, table: &str, set: &SetPlan, set_id: u32) {
        let types: Vec<&str> = set.fields.iter().map(|f| f.type_name()).collect();
        let op = format!(
            "add set inet {table} {} {{ type {} }}",
            set.name,
            types.join(" . ")
        );
        let tag = set.elems.first().map(|e| e.tag);
        let m = self.begin(NFT_MSG_NEWSET, NLM_F_CREATE | NLM_F_EXCL, op, tag);
        self.buf.str(NFTA_SET_TABLE, table);
        self.buf.str(NFTA_SET_NAME, &set.name);
        self.buf.u32be(NFTA_SET_FLAGS, set.flags());
        self.buf.u32be(NFTA_SET_KEY_TYPE, set.key_type());
        self.buf.u32be(NFTA_SET_KEY_LEN, set.key_len());
        self.buf.u32be(NFTA_SET_ID, set_id);
        if let Some(ud) = set.userdata() {
            self.buf.attr(NFTA_SET_USERDATA, &ud);
        }
        if set.interval && set.concat() {
            let d = self.buf.nest(NFTA_SET_DESC);
            let c = self.buf.nest(NFTA_SET_DESC_CONCAT);
            for f in &set.fields {
                let e = self.buf.nest(NFTA_LIST_ELEM);
                self.buf.u32be(NFTA_SET_FIELD_LEN, f.len() as u32);
                self.buf.end_nest(e);
            }
            self.buf.end_nest(c);
            self.buf.end_nest(d);
        }
        self.buf.end_msg(m);
        let mut open: Option<(usize, usize)> = None;
        let mut count = 0;
        for e in set.encoded() {
            if let Some((m, n)) = open
                && (count >= MAX_ELEMS_PER_MSG || self.buf.len() - n + MAX_ELEM_BYTES > NLA_MAX)
            {
                self.end_elems((m, n));
                open = None;
            }
            if open.is_none() {
                count = 0;
            }
            let op = format!("add element inet {table} {}", set.name);
            let (m, _) = *open.get_or_insert_with(|| {
                let m = self.begin(
                    NFT_MSG_NEWSETELEM,
                    NLM_F_CREATE | NLM_F_EXCL,
                    op,
                    Some(e.tag),
                );
                self.buf.str(NFTA_SET_ELEM_LIST_TABLE, table);
                self.buf.str(NFTA_SET_ELEM_LIST_SET, &set.name);
                self.buf.u32be(NFTA_SET_ELEM_LIST_SET_ID, set_id);
                (m, self.buf.nest(NFTA_SET_ELEM_LIST_ELEMENTS))
            });
            let start = self.buf.len() - m;
            sets::emit_elem(&mut self.buf, &e);
            let end = self.buf.len() - m;
            if let Some(info) = self.msgs.last_mut() {
                info.elems.push((start as u32, end as u32, e.tag));
            }
            count += 1;
        }
        if let Some(o) = open {
            self.end_elems(o);
        }
    }

    fn begin_elems(
        &mut self,
        table: &str,
        mp: &MapPlan,
        set_id: u32,
        tag: usize,
    ) -> (usize, usize) {
        let op = format!("add element inet {table} {}", mp.name);
        let m = self.begin(NFT_MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_EXCL, op, Some(tag));
        self.buf.str(NFTA_SET_ELEM_LIST_TABLE, table);
        self.buf.str(NFTA_SET_ELEM_LIST_SET, &mp.name);
        self.buf.u32be(NFTA_SET_ELEM_LIST_SET_ID, set_id);
        let n = self.buf.nest(NFTA_SET_ELEM_LIST_ELEMENTS);
        (m, n)
    }

    fn end_elems(&mut self, (m, n): (usize, usize)) {
        self.buf.end_nest(n);
        self.buf.end_msg(m);
    }

    fn elements(&mut self, table: &str, mp: &MapPlan, set_id: u32) {
        let mut open: Option<(usize, usize)> = None;
        let mut count = 0;
        // each item encoded as it is made: no list of 100,000 of them
        element_items(mp, |it| {
            if let Some((m, n)) = open
                && (count >= MAX_ELEMS_PER_MSG || self.buf.len() - n + MAX_ELEM_BYTES > NLA_MAX)
            {
                self.end_elems((m, n));
                open = None;
            }
            if open.is_none() {
                count = 0;
            }
            let (m, _) = *open.get_or_insert_with(|| self.begin_elems(table, mp, set_id, it.tag));
            let start = self.buf.len() - m;
            let e = self.buf.nest(NFTA_LIST_ELEM);
            self.buf.data_value(NFTA_SET_ELEM_KEY, it.key.bytes());
            if let Some(k) = &it.key_end {
                self.buf.data_value(NFTA_SET_ELEM_KEY_END, k.bytes());
            }
            if it.end_flag {
                self.buf
                    .u32be(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
            }
            if let Some(d) = &it.data {
                self.buf.data_value(NFTA_SET_ELEM_DATA, d.bytes());
            }
            self.buf.end_nest(e);
            let end = self.buf.len() - m;
            if let Some(info) = self.msgs.last_mut() {
                info.elems.push((start as u32, end as u32, it.tag));
            }
            count += 1;
        });
        if let Some(o) = open {
            self.end_elems(o);
        }
    }
}

struct Item {
    key: Val,
    key_end: Option<Val>,
    data: Option<Val>,
    end_flag: bool,
    tag: usize,
}

/// An element's key or data: at most an IPv6 address and a padded port,
/// kept inline (a 100,000-element map would otherwise allocate 200,000
/// small vectors per batch).
#[derive(Clone, Copy)]
struct Val {
    b: [u8; 20],
    n: usize,
}

impl Val {
    fn of(bytes: &[u8]) -> Val {
        let mut v = Val { b: [0; 20], n: 0 };
        v.push(bytes);
        v
    }

    fn addr(a: &IpAddr) -> Val {
        match a {
            IpAddr::V4(a) => Val::of(&a.octets()),
            IpAddr::V6(a) => Val::of(&a.octets()),
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.b[self.n..self.n + bytes.len()].copy_from_slice(bytes);
        self.n += bytes.len();
    }

    fn bytes(&self) -> &[u8] {
        &self.b[..self.n]
    }
}

fn port4(p: u16) -> [u8; 4] {
    let b = p.to_be_bytes();
    [b[0], b[1], 0, 0]
}

fn element_items(mp: &MapPlan, mut out: impl FnMut(Item)) {
    let data = |e: &plan::ElemPlan| {
        let mut d = Val::addr(&e.to);
        if mp.data_port {
            d.push(&port4(e.to_port.unwrap_or(e.lo)));
        }
        d
    };
    let concat_key = |e: &plan::ElemPlan, port: u16| {
        match e.daddr.as_ref().map(Val::addr) {
            // inside a concatenation every field is padded to 4 bytes; alone it is not
            Some(mut k) => {
                k.push(&port4(port));
                k
            }
            None => Val::of(&port.to_be_bytes()),
        }
    };
    if !mp.interval || mp.daddr {
        for e in &mp.elems {
            let key_end = mp.interval.then(|| concat_key(e, e.hi));
            out(Item {
                key: concat_key(e, e.lo),
                key_end,
                data: Some(data(e)),
                end_flag: false,
                tag: e.tag,
            });
        }
        return;
    }
    // rbtree ranges are start elements plus "interval end" elements at hi+1;
    // nft also closes [0, first) so the listing reads the same as nft's own.
    if let Some(first) = mp.elems.first() {
        out(Item {
            key: Val::of(&0u16.to_be_bytes()),
            key_end: None,
            data: None,
            end_flag: true,
            tag: first.tag,
        });
    }
    // An adjacent range still needs its end element: the rbtree tells an end
    // and a start with the same key apart by the flag, and refuses (EEXIST) a
    // start that directly follows a start.
    for e in &mp.elems {
        out(Item {
            key: Val::of(&e.lo.to_be_bytes()),
            key_end: None,
            data: Some(data(e)),
            end_flag: false,
            tag: e.tag,
        });
        if let Some(end) = e.hi.checked_add(1) {
            out(Item {
                key: Val::of(&end.to_be_bytes()),
                key_end: None,
                data: None,
                end_flag: true,
                tag: e.tag,
            });
        }
    }
}
