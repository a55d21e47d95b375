//! One nf_tables transaction: BATCH_BEGIN, the messages, BATCH_END, plus the
//! bookkeeping that maps a kernel error back to the caller's tag.

use crate::encode::Buf;
use crate::expr;
use crate::model::NatTable;
use crate::plan::{self, BaseChain, Plan};
use crate::render;
use crate::sys::*;

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
    pub(crate) fn begin(&mut self, ty: u16, flags: u16, op: String, tag: Option<usize>) -> usize {
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
