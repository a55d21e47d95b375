//! Errors, worded for a network engineer rather than for a netlink hacker.

use std::fmt;

/// Everything that can go wrong talking to nf_tables (or ctnetlink).
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The netlink socket itself failed (open, send, receive, timeout).
    #[error("nftables socket: {0}")]
    Io(#[from] std::io::Error),
    /// The kernel refused a request; the whole transaction was rolled back.
    #[error("{}", kernel_text(*errno, op, *tag, msg.as_deref()))]
    Kernel {
        /// The errno the kernel answered (positive, e.g. `libc::EEXIST`).
        errno: i32,
        /// The refused request, as the nft command that does the same.
        op: String,
        /// The tag of the rule or mapping the refused request was about.
        tag: Option<usize>,
        /// The kernel's extended-ACK message, when it gave one.
        msg: Option<String>,
    },
    /// A rule is invalid; found before any kernel contact.
    #[error("{msg}")]
    Invalid {
        /// The tag of the offending rule.
        tag: usize,
        /// The tag of the rule it clashes with, for a conflict.
        other_tag: Option<usize>,
        /// What is wrong, in words.
        msg: String,
    },
    /// A problem with the table itself (name, userdata), not with one rule.
    #[error("{msg}")]
    InvalidTable {
        /// What is wrong, in words.
        msg: String,
    },
    /// The table by that name is not the one the caller made; nothing was
    /// changed.
    #[error("{}", identity_text(table, mismatch))]
    Identity {
        /// The table name.
        table: String,
        /// How the table differs from what the caller expected.
        mismatch: Mismatch,
    },
    /// The transaction does not fit netlink's limits or the socket buffers.
    #[error("NAT table too large: {0}")]
    TooLarge(String),
}

/// Why a table is not the one the caller expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// A table of that name already exists (the caller expected none).
    Exists,
    /// The table with the recorded handle is gone.
    Gone {
        /// The handle the caller recorded.
        expected: u64,
    },
    /// Another table now has the name.
    Other {
        /// The handle the caller recorded.
        expected: u64,
        /// The handle of the table that has the name now.
        present: u64,
    },
}

fn identity_text(table: &str, m: &Mismatch) -> String {
    match m {
        Mismatch::Exists => format!(
            "a table inet {table} already exists and was not made by this run; it was left alone"
        ),
        Mismatch::Gone { expected } => format!(
            "table inet {table} (handle {expected}) is gone: someone deleted it or made it again since it was recorded; nothing was changed"
        ),
        Mismatch::Other { expected, present } => format!(
            "table inet {table} has handle {present}, not the recorded {expected}: it is someone else's and was left alone"
        ),
    }
}

impl NftError {
    /// The caller's tag of the rule or mapping the error is about, if any.
    pub fn tag(&self) -> Option<usize> {
        match self {
            NftError::Kernel { tag, .. } => *tag,
            NftError::Invalid { tag, .. } => Some(*tag),
            _ => None,
        }
    }

    pub(crate) fn invalid(tag: usize, msg: impl Into<String>) -> Self {
        NftError::Invalid {
            tag,
            other_tag: None,
            msg: msg.into(),
        }
    }
}

fn kernel_text(errno: i32, op: &str, _tag: Option<usize>, msg: Option<&str>) -> String {
    let mut s = String::new();
    let _ = fmt::write(
        &mut s,
        format_args!(
            "the kernel refused `{op}`: {}",
            std::io::Error::from_raw_os_error(errno)
        ),
    );
    if let Some(m) = msg {
        s.push_str(" (");
        s.push_str(m);
        s.push(')');
    }
    if let Some(hint) = hint(errno) {
        s.push_str(" — ");
        s.push_str(hint);
    }
    s
}

fn hint(errno: i32) -> Option<&'static str> {
    match errno {
        libc::EPERM => Some("changing nftables needs CAP_NET_ADMIN: run as root or add --sandbox"),
        libc::EOPNOTSUPP | libc::ENOENT => {
            Some("the kernel may lack nf_tables NAT support (nft_nat, nft_masq, nft_fib modules)")
        }
        libc::EEXIST | libc::EBUSY => Some("two entries collide in the same map"),
        libc::EMSGSIZE | libc::ENOBUFS => {
            Some("the transaction is too large for the socket buffers; raise net.core.wmem_max")
        }
        _ => None,
    }
}
