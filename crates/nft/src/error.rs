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
    /// The transaction does not fit netlink's limits or the socket buffers.
    #[error("NAT table too large: {0}")]
    TooLarge(String),
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
