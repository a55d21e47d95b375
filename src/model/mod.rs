//! Typed, validated names and values. No I/O here: everything a script can
//! get wrong about a name or an address is caught in this module, before the
//! kernel is asked anything.

mod addr;
mod names;

pub use addr::{Cidr, RouteDest, parse_ip};
pub use names::{IfName, NsName, NsRef};

/// What was wrong with a value, in words a network engineer reads at a glance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    #[error("interface name '{0}' is {1} bytes: interface names are at most 15 bytes")]
    IfNameTooLong(String, usize),
    #[error("{kind} name is empty")]
    Empty { kind: &'static str },
    #[error("{kind} name '{name}' contains {what}: use letters, digits, '-', '_' or '.'")]
    BadChar {
        kind: &'static str,
        name: String,
        what: &'static str,
    },
    #[error("{kind} name '{name}' is reserved")]
    Reserved { kind: &'static str, name: String },
    #[error("namespace name '{0}' is longer than 255 bytes")]
    NsNameTooLong(String),
    #[error("'{0}' is not an address with a prefix length (like 172.18.0.1/24 or fd00::1/64)")]
    BadCidr(String),
    #[error("'{0}': prefix length {1} is larger than {2}")]
    BadPrefix(String, u8, u8),
    #[error("'{0}' is not an IP address")]
    BadIp(String),
    #[error("'{0}' is not a route destination: use \"default\" or a prefix like 10.9.0.0/16")]
    BadDest(String),
    #[error(
        "route to {dest} via {via}: the destination and the gateway are of different IP families"
    )]
    FamilyMismatch { dest: String, via: String },
    #[error("{0}")]
    Other(String),
}
