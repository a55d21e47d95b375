//! One nf_tables transaction: BATCH_BEGIN, the messages, BATCH_END, plus the
//! bookkeeping that maps a kernel error back to the caller's tag.

use crate::encode::{Buf, NLA_MAX};
use crate::expr::{self, addr_bytes};
use crate::model::NatTable;
use crate::plan::{self, BaseChain, MapPlan, Plan};
use crate::render;
use crate::sets::{self, SetPlan};
use crate::sys::*;

/// NFTA_SET_ELEM_LIST_ELEMENTS is one nested attribute with a u16 length.
const MAX_ELEMS_PER_MSG: usize = 1000;
/// Largest element we emit (v6 . port key, key_end, v6 . port data) with headers.
const MAX_ELEM_BYTES: usize = 128;

#[derive(Debug)]
pub(crate) struct MsgInfo {
    pub seq: u32,
    pub op: String,
    pub tag: Option<usize>,
    /// element attribute (start, end, tag) relative to the message start
    pub elems: Vec<(u32, u32, usize)>,
}

pub(crate) struct Batch {
    pub buf: Buf,
    pub msgs: Vec<MsgInfo>,
    next_seq: u32,
    /// seq of the NEWTABLE that creates the table (echoed with its handle)
    create_seq: Option<u32>,
}

/// What a replace may remove to make room for the new table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Previous {
    /// Whatever table has the name (created first if missing).
    Any,
    /// Nothing: the name must be free.
    Absent,
    /// Exactly the table with this handle.
    Handle(u64),
}

impl Batch {
    pub fn new(first_seq: u32, capacity: usize) -> Self {
        let mut b = Batch {
            buf: Buf::with_capacity(capacity),
            msgs: Vec::new(),
            next_seq: first_seq,
            create_seq: None,
        };
        b.marker(NFNL_MSG_BATCH_BEGIN);
        b
    }

    /// BATCH_BEGIN / BATCH_END: empty messages addressed to nf_tables.
    fn marker(&mut self, ty: u16) {
        let seq = self.take_seq();
        let m = self
            .buf
            .begin_msg(ty, NLM_F_REQUEST, seq, 0, NFNL_SUBSYS_NFTABLES);
        self.buf.end_msg(m);
    }

    fn take_seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        s
    }

    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    pub fn create_seq(&self) -> Option<u32> {
        self.create_seq
    }

    /// Starts an nf_tables message; every one asks for an ACK so that the
    /// reader knows when the transaction's answers are complete.
    fn begin(&mut self, ty: u16, flags: u16, op: String, tag: Option<usize>) -> usize {
        let seq = self.take_seq();
        self.msgs.push(MsgInfo {
            seq,
            op,
            tag,
            elems: Vec::new(),
        });
        self.buf.begin_msg(
            (NFNL_SUBSYS_NFTABLES << 8) | ty,
            NLM_F_REQUEST | NLM_F_ACK | flags,
            seq,
            NFPROTO_INET,
            0,
        )
    }

    pub fn finish(mut self) -> Self {
        self.marker(NFNL_MSG_BATCH_END);
        self
    }

    /// `add table`: creates it if missing, leaves an existing one as it is
    /// (no flags attribute: updating the flags of an owned or persistent
    /// table is refused).
    pub fn ensure_table(&mut self, name: &str) {
        let m = self.begin(
            NFT_MSG_NEWTABLE,
            NLM_F_CREATE,
            format!("add table inet {name}"),
            None,
        );
        self.buf.str(NFTA_TABLE_NAME, name);
        self.buf.end_msg(m);
    }

    /// `create table`: fails with EEXIST when the name is taken. Echoed, so
    /// the caller learns the new table's handle.
    pub fn create_table(&mut self, name: &str, flags: u32, userdata: &[u8]) {
        let op = format!("create table inet {name}");
        let m = self.begin(
            NFT_MSG_NEWTABLE,
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
            op,
            None,
        );
        self.create_seq = self.msgs.last().map(|i| i.seq);
        self.buf.str(NFTA_TABLE_NAME, name);
        self.buf.u32be(NFTA_TABLE_FLAGS, flags);
        self.buf.attr(NFTA_TABLE_USERDATA, userdata);
        self.buf.end_msg(m);
    }

    /// Sets the flags of an existing table (NEWTABLE without NLM_F_EXCL).
    pub fn update_table_flags(&mut self, name: &str, flags: u32) {
        let m = self.begin(
            NFT_MSG_NEWTABLE,
            0,
            format!("add table inet {name} {{ flags {flags:#x}; }}"),
            None,
        );
        self.buf.str(NFTA_TABLE_NAME, name);
        self.buf.u32be(NFTA_TABLE_FLAGS, flags);
        self.buf.end_msg(m);
    }

    /// `delete table inet handle H`: fails with ENOENT when that exact table
    /// is gone, whatever now carries its name.
    pub fn del_table_handle(&mut self, handle: u64) {
        let m = self.begin(
            NFT_MSG_DELTABLE,
            0,
            format!("delete table inet handle {handle}"),
            None,
        );
        self.buf.attr(NFTA_TABLE_HANDLE, &handle.to_be_bytes());
        self.buf.end_msg(m);
    }

    pub fn del_table(&mut self, name: &str) {
        let m = self.begin(
            NFT_MSG_DELTABLE,
            0,
            format!("delete table inet {name}"),
            None,
        );
        self.buf.str(NFTA_TABLE_NAME, name);
        self.buf.end_msg(m);
    }

    pub fn chain(&mut self, table: &str, c: &BaseChain, tag: Option<usize>) {
        let m = self.begin(
            NFT_MSG_NEWCHAIN,
            NLM_F_CREATE,
            format!("add chain inet {table} {} {{ {} }}", c.name, c.spec_text()),
            tag,
        );
        self.buf.str(NFTA_CHAIN_TABLE, table);
        self.buf.str(NFTA_CHAIN_NAME, &c.name);
        let h = self.buf.nest(NFTA_CHAIN_HOOK);
        self.buf.u32be(NFTA_HOOK_HOOKNUM, c.hook);
        // signed priority, sent as its two's complement big-endian bits
        self.buf.attr(NFTA_HOOK_PRIORITY, &c.prio.to_be_bytes());
        if let Some(d) = &c.dev {
            self.buf.str(NFTA_HOOK_DEV, d);
        }
        self.buf.end_nest(h);
        self.buf.u32be(NFTA_CHAIN_POLICY, NF_ACCEPT);
        self.buf.str(NFTA_CHAIN_TYPE, c.ty);
        self.buf.end_msg(m);
    }

    fn set(&mut self, table: &str, mp: &MapPlan, set_id: u32) {
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
        let items = element_items(mp);
        let mut open: Option<(usize, usize)> = None;
        let mut count = 0;
        for it in &items {
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
            self.buf.data_value(NFTA_SET_ELEM_KEY, &it.key);
            if let Some(k) = &it.key_end {
                self.buf.data_value(NFTA_SET_ELEM_KEY_END, k);
            }
            if it.end_flag {
                self.buf
                    .u32be(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
            }
            if let Some(d) = &it.data {
                self.buf.data_value(NFTA_SET_ELEM_DATA, d);
            }
            self.buf.end_nest(e);
            let end = self.buf.len() - m;
            if let Some(info) = self.msgs.last_mut() {
                info.elems.push((start as u32, end as u32, it.tag));
            }
            count += 1;
        }
        if let Some(o) = open {
            self.end_elems(o);
        }
    }

    pub fn rule(
        &mut self,
        table: &str,
        chain: &str,
        text: String,
        tag: Option<usize>,
        body: impl FnOnce(&mut Buf),
    ) {
        let op = format!("add rule inet {table} {chain} {text}");
        // APPEND: without it the kernel inserts each rule at the chain's head
        let m = self.begin(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, op, tag);
        self.buf.str(NFTA_RULE_TABLE, table);
        self.buf.str(NFTA_RULE_CHAIN, chain);
        let l = self.buf.nest(NFTA_RULE_EXPRESSIONS);
        body(&mut self.buf);
        self.buf.end_nest(l);
        self.buf.end_msg(m);
    }
}

const NLM_F_APPEND: u16 = 0x800;
const NLM_F_ECHO: u16 = 0x08;

struct Item {
    key: Vec<u8>,
    key_end: Option<Vec<u8>>,
    data: Option<Vec<u8>>,
    end_flag: bool,
    tag: usize,
}

fn port4(p: u16) -> [u8; 4] {
    let b = p.to_be_bytes();
    [b[0], b[1], 0, 0]
}

fn element_items(mp: &MapPlan) -> Vec<Item> {
    let data = |e: &plan::ElemPlan| {
        let mut d = addr_bytes(&e.to);
        if mp.data_port {
            d.extend_from_slice(&port4(e.to_port.unwrap_or(e.lo)));
        }
        d
    };
    let concat_key = |e: &plan::ElemPlan, port: u16| {
        match e.daddr.as_ref().map(addr_bytes) {
            // inside a concatenation every field is padded to 4 bytes; alone it is not
            Some(mut k) => {
                k.extend_from_slice(&port4(port));
                k
            }
            None => port.to_be_bytes().to_vec(),
        }
    };
    let mut out = Vec::with_capacity(mp.elems.len() * if mp.interval { 2 } else { 1 });
    if !mp.interval || mp.daddr {
        for e in &mp.elems {
            let key_end = mp.interval.then(|| concat_key(e, e.hi));
            out.push(Item {
                key: concat_key(e, e.lo),
                key_end,
                data: Some(data(e)),
                end_flag: false,
                tag: e.tag,
            });
        }
        return out;
    }
    // rbtree ranges are start elements plus "interval end" elements at hi+1;
    // nft also closes [0, first) so the listing reads the same as nft's own.
    if let Some(first) = mp.elems.first() {
        out.push(Item {
            key: 0u16.to_be_bytes().to_vec(),
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
        out.push(Item {
            key: e.lo.to_be_bytes().to_vec(),
            key_end: None,
            data: Some(data(e)),
            end_flag: false,
            tag: e.tag,
        });
        if let Some(end) = e.hi.checked_add(1) {
            out.push(Item {
                key: end.to_be_bytes().to_vec(),
                key_end: None,
                data: None,
                end_flag: true,
                tag: e.tag,
            });
        }
    }
    out
}

/// Removes what `prev` allows, then creates the table afresh: one
/// transaction, so either the new table is there or nothing changed.
pub(crate) fn replace_batch(
    t: &NatTable,
    userdata: &[u8],
    prev: Previous,
    first_seq: u32,
) -> Batch {
    let p: Plan = plan::plan(t);
    let nelems: usize = p.maps.iter().map(|m| m.elems.len()).sum();
    let mut b = Batch::new(first_seq, 4096 + nelems * 80);
    let name = t.name.as_str();
    match prev {
        // create-if-missing + delete: works whether or not it exists
        Previous::Any => {
            b.ensure_table(name);
            b.del_table(name);
        }
        Previous::Absent => {}
        Previous::Handle(h) => b.del_table_handle(h),
    }
    b.create_table(name, t.flags.bits(), userdata);
    for c in plan::nat_chains() {
        b.chain(name, &c, None);
    }
    if !p.filter.rules.is_empty() {
        b.chain(name, &plan::forward_chain(), None);
    }
    for l in &p.loss {
        b.chain(name, &l.chain, Some(l.tag));
    }
    for (i, m) in p.maps.iter().enumerate() {
        b.set(name, m, i as u32 + 1);
    }
    let first_filter_id = p.maps.len() as u32 + 1;
    for (i, s) in p.filter.sets.iter().enumerate() {
        b.plain_set(name, s, first_filter_id + i as u32);
    }
    for (i, m) in p.maps.iter().enumerate() {
        let id = i as u32 + 1;
        for (chain, output) in [(plan::PREROUTING, false), (plan::OUTPUT, true)] {
            b.rule(
                name,
                chain,
                render::dnat_rule_text(m, output),
                m.first_tag(),
                |buf| expr::dnat_rule(buf, m, id, output),
            );
        }
    }
    for r in &p.src_rules {
        b.rule(
            name,
            plan::POSTROUTING,
            render::src_rule_text(r),
            Some(r.tag),
            |buf| expr::src_rule(buf, r),
        );
    }
    for r in &p.filter.rules {
        b.rule(name, plan::FORWARD, r.text(), r.tag, |buf| r.encode(buf));
    }
    for l in &p.loss {
        b.rule(name, &l.chain.name, l.text(), Some(l.tag), |buf| {
            l.encode(buf)
        });
    }
    b.finish()
}
