//! nf_tables NAT tables for netplumb, spoken directly over NETLINK_NETFILTER:
//! no libnftnl, no `nft` binary at run time. One table per topology, DNAT
//! mappings coalesced into named maps, applied as one atomic transaction.

#![warn(missing_docs)]

mod batch;
mod conntrack;
mod encode;
mod error;
mod expr;
mod filter;
mod loss;
mod maps;
mod model;
mod parse;
mod plan;
mod read;
mod readback;
mod render;
mod sets;
mod socket;
mod summary;
mod sys;
mod table;
mod validate;

pub use conntrack::CtMatch;
pub use error::{Mismatch, NftError};
pub use filter::{Endpoint, FilterMatch, FilterProto, FilterRule};
pub use loss::RandomLoss;
pub use model::{DnatMapping, L4Proto, MAX_USERDATA, NatRule, NatTable};
pub use readback::ReadBack;
pub use render::render;
pub use socket::NftSocket;
pub use summary::{ChainSummary, MapSummary, TableSummary};
pub use table::{Family, TableFlags, TableInfo};

/// Parser entry point for robustness tests: must never panic on any bytes.
#[doc(hidden)]
pub fn fuzz_parse(bytes: &[u8]) -> usize {
    let stmts = read::expr::decode(bytes, &Default::default());
    parse::messages(bytes).count()
        + parse::attrs(bytes).count()
        + read::text::rule(sys::NFPROTO_INET, &stmts).len()
        + read::cond::parse(sys::NFPROTO_INET, &stmts).conds.len()
        + read::elems::decode(sys::NFT_SET_INTERVAL, &[bytes.to_vec()]).len()
}

/// Encoder entry point for robustness tests: builds the whole replace batch
/// for any table, validated or not, and walks the bytes back through the
/// parser. Must never panic, whatever the table holds.
#[doc(hidden)]
pub fn fuzz_encode(t: &NatTable) -> usize {
    let b = batch::replace_batch(t, &t.userdata, batch::Previous::Any, 1);
    let bytes = &b.buf.data;
    parse::messages(bytes).count() + b.msgs.len() + bytes.len()
}
