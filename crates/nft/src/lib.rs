//! nf_tables tables for netplumb, spoken directly over NETLINK_NETFILTER: no
//! libnftnl, no `nft` binary at run time. One `inet` table per topology and
//! namespace, replaced as a whole in one atomic transaction:
//!
//! - NAT ([`NatRule`]): masquerade, SNAT, hairpin and localhost masquerade in
//!   postrouting; DNAT mappings coalesced into named maps (prerouting and
//!   output);
//! - filter rules ([`FilterRule`]) in a forward chain, coalesced into sets;
//! - random loss ([`RandomLoss`]) in a per-device ingress chain.
//!
//! [`render`] gives the `nft -f` script that makes the same table. Tables are
//! known by identity ([`TableInfo`]: handle, flags, the caller's marker), so
//! [`NftSocket::create_table`], [`NftSocket::replace_table_handle`] and
//! [`NftSocket::delete_table_handle`] never touch a namesake someone else
//! made. [`NftSocket::read_table`] reads a table back as typed rules (a
//! foreign one too, naming what it cannot express), and
//! [`NftSocket::delete_conntrack`] drops the conntrack entries of a remapped
//! port over ctnetlink.
//!
//! ```no_run
//! use netplumb_nft::{DnatMapping, L4Proto, NatRule, NatTable, NftSocket};
//! let t = NatTable {
//!     name: "netplumb-lab".into(),
//!     rules: vec![NatRule::Dnat(DnatMapping {
//!         proto: L4Proto::Tcp,
//!         daddr: None,
//!         iif: None,
//!         ports: (8080, 8080),
//!         to_addr: "172.17.0.3".parse()?,
//!         to_port: Some(80),
//!         tag: 0,
//!     })],
//!     userdata: b"netplumb:lab:0123".to_vec(),
//!     ..Default::default()
//! };
//! let mut s = NftSocket::open()?;
//! let handle = s.create_table(&t)?;
//! let back = s.read_table("netplumb-lab")?.expect("just made");
//! assert_eq!(back.table, t.normalized());
//! s.delete_table_handle("netplumb-lab", handle)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod batch;
mod conntrack;
mod elem;
mod encode;
mod error;
mod expr;
mod filter;
mod fingerprint;
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
pub use elem::{ElemField, MapElem};
pub use error::{Mismatch, NftError};
pub use filter::{Endpoint, FilterMatch, FilterProto, FilterRule};
pub use fingerprint::fingerprint;
pub use loss::RandomLoss;
pub use model::{DnatMapping, L4Proto, MAX_USERDATA, NatRule, NatTable};
pub use readback::ReadBack;
pub use render::{render, render_to};
pub use socket::NftSocket;
pub use summary::{ChainSummary, MapSummary, TableSummary, summarize};
pub use table::{Family, TableFlags, TableInfo};
pub use validate::{clash_message, same_destination};

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
