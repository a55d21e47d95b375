//! The NAT table as the rest of netplumb describes it, and its validation.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::NftError;
use crate::filter::{FilterRule, check_filter};
use crate::loss::{RandomLoss, check_loss};
use crate::sys::{IFNAMSIZ, NFT_NAME_MAXLEN};
use crate::table::TableFlags;

/// The transport protocol a port mapping forwards.
#[derive(Copy, Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum L4Proto {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
}

impl L4Proto {
    /// The name nft uses: `"tcp"` or `"udp"`.
    pub fn name(self) -> &'static str {
        match self {
            L4Proto::Tcp => "tcp",
            L4Proto::Udp => "udp",
        }
    }

    pub(crate) fn number(self) -> u8 {
        match self {
            L4Proto::Tcp => 6,
            L4Proto::Udp => 17,
        }
    }
}

/// One port mapping (DNAT): traffic for `ports` goes to `to_addr[:to_port]`.
///
/// Mappings of the same shape (family, protocol, with or without `daddr`,
/// `iif`, single port or range, with or without a destination port) share
/// one nftables map and one rule, so 10,000 mappings cost one lookup.
///
/// ```
/// use netplumb_nft::{DnatMapping, L4Proto};
/// // host port 8080 -> 172.17.0.3:80
/// let m = DnatMapping {
///     proto: L4Proto::Tcp,
///     daddr: None,
///     iif: None,
///     ports: (8080, 8080),
///     to_addr: "172.17.0.3".parse().unwrap(),
///     to_port: Some(80),
///     tag: 7,
/// };
/// assert_eq!(m.to_port, Some(80));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DnatMapping {
    /// The transport protocol forwarded.
    pub proto: L4Proto,
    /// Only traffic for this destination address (else any local address).
    pub daddr: Option<IpAddr>,
    /// Only traffic arriving on this interface (prerouting only).
    pub iif: Option<String>,
    /// The destination port range matched, inclusive; `(p, p)` for one port.
    pub ports: (u16, u16),
    /// The backend address; its family decides the mapping's family.
    pub to_addr: IpAddr,
    /// The backend port; `None` keeps the original destination port.
    pub to_port: Option<u16>,
    /// The caller's identifier, returned in errors about this mapping.
    pub tag: usize,
}

impl DnatMapping {
    pub(crate) fn is_range(&self) -> bool {
        self.ports.0 != self.ports.1
    }

    /// A single port mapped "to the same port" is stored as that port, so it
    /// shares a map with explicit `port -> addr:port` mappings.
    pub(crate) fn dest_port(&self) -> Option<u16> {
        match self.to_port {
            None if !self.is_range() => Some(self.ports.0),
            p => p,
        }
    }

    pub(crate) fn is_v6(&self) -> bool {
        self.to_addr.is_ipv6()
    }
}

/// One NAT rule of a table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NatRule {
    /// `ip saddr SRC ip daddr != SRC [oifname OIF] masquerade`: traffic from
    /// the subnet leaving it takes the outgoing interface's address.
    Masquerade {
        /// The subnet whose traffic is rewritten.
        src: IpNet,
        /// Only traffic leaving through this interface.
        oif: Option<String>,
        /// The caller's identifier, returned in errors about this rule.
        tag: usize,
    },
    /// `ip saddr SRC ip daddr != SRC [oifname OIF] snat to TO`.
    Snat {
        /// The subnet whose traffic is rewritten.
        src: IpNet,
        /// The source address it takes.
        to: IpAddr,
        /// Only traffic leaving through this interface.
        oif: Option<String>,
        /// The caller's identifier, returned in errors about this rule.
        tag: usize,
    },
    /// A port mapping.
    Dnat(DnatMapping),
    /// `ip saddr S ip daddr S ct status dnat masquerade`: a host on subnet
    /// `S` reaching a published port whose backend is on `S` too (itself or a
    /// sibling) has its source rewritten, so the answer comes back through
    /// the host instead of straight from the backend (which the client would
    /// drop). The backend's bridge port also needs hairpin mode to reach itself.
    Hairpin {
        /// The subnet whose traffic to its own published ports is rewritten.
        subnet: IpNet,
        /// The caller's identifier, returned in errors about this rule.
        tag: usize,
    },
    /// `oifname OIF ip saddr 127.0.0.0/8 ct status dnat masquerade`: DNAT of
    /// traffic to 127.0.0.1 leaves through `oif` with a routable source. It
    /// needs `net.ipv4.conf.OIF.route_localnet=1`; IPv6 has no equivalent
    /// (the kernel never routes ::1).
    LocalhostMasquerade {
        /// The interface the DNAT'd traffic leaves through (the backend's bridge).
        oif: String,
        /// The caller's identifier, returned in errors about this rule.
        tag: usize,
    },
}

impl NatRule {
    /// The caller's identifier, to set it.
    pub fn tag_mut(&mut self) -> &mut usize {
        match self {
            NatRule::Masquerade { tag, .. }
            | NatRule::Snat { tag, .. }
            | NatRule::Hairpin { tag, .. }
            | NatRule::LocalhostMasquerade { tag, .. } => tag,
            NatRule::Dnat(m) => &mut m.tag,
        }
    }

    /// The caller's identifier of this rule.
    pub fn tag(&self) -> usize {
        match self {
            NatRule::Masquerade { tag, .. }
            | NatRule::Snat { tag, .. }
            | NatRule::Hairpin { tag, .. }
            | NatRule::LocalhostMasquerade { tag, .. } => *tag,
            NatRule::Dnat(m) => m.tag,
        }
    }
}

/// One nftables table (family `inet`) as netplumb declares it: replaced as a
/// whole, in one transaction.
///
/// ```
/// use netplumb_nft::{NatRule, NatTable};
/// let t = NatTable {
///     name: "netplumb-lab".into(),
///     rules: vec![NatRule::Masquerade {
///         src: "172.18.0.0/16".parse().unwrap(),
///         oif: None,
///         tag: 0,
///     }],
///     userdata: b"netplumb:lab".to_vec(),
///     ..Default::default()
/// };
/// t.validate().unwrap();
/// assert!(netplumb_nft::render(&t).contains("masquerade"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NatTable {
    /// The table name (family inet); at most 255 bytes, an nft identifier.
    pub name: String,
    /// The NAT rules, in any order: the table's layout does not depend on it.
    pub rules: Vec<NatRule>,
    /// Opaque bytes stored with the table (at most [`MAX_USERDATA`]), e.g. a
    /// fingerprint of the desired state and the marker that says who owns it.
    pub userdata: Vec<u8>,
    /// Filter rules of the table's forward chain (none: no forward chain).
    #[serde(default)]
    pub filter: Vec<FilterRule>,
    /// Random loss on interfaces, one ingress chain each.
    #[serde(default)]
    pub loss: Vec<RandomLoss>,
    /// The table's flags (owner, persist); none by default.
    #[serde(default)]
    pub flags: TableFlags,
}

/// The most userdata bytes a table can carry: the kernel keeps 256, and this
/// crate wraps them in one nftnl TLV (2 header bytes) so `nft list` still reads.
pub const MAX_USERDATA: usize = 254;

impl NatTable {
    /// Checks names, addresses, ports and conflicts before any kernel contact;
    /// an error names the offending rule's tag (and the other one's for a clash).
    pub fn validate(&self) -> Result<(), NftError> {
        check_object_name("table", &self.name)?;
        if self.userdata.len() > MAX_USERDATA {
            return Err(NftError::InvalidTable {
                msg: format!(
                    "table userdata is {} bytes; at most {MAX_USERDATA} fit",
                    self.userdata.len()
                ),
            });
        }
        for r in &self.rules {
            check_rule(r)?;
        }
        check_filter(&self.filter)?;
        check_loss(&self.loss)?;
        check_conflicts(&self.rules)
    }
}

pub(crate) fn check_object_name(what: &str, name: &str) -> Result<(), NftError> {
    let bad = |why: String| Err(NftError::InvalidTable { msg: why });
    if name.is_empty() {
        return bad(format!("the nftables {what} name is empty"));
    }
    if name.len() > NFT_NAME_MAXLEN {
        return bad(format!(
            "nftables {what} name '{name}' is {} bytes; names are at most {NFT_NAME_MAXLEN} bytes",
            name.len()
        ));
    }
    // nft's scanner only reads these as an identifier; anything else would make
    // the rendered script (and `nft list` output) unusable.
    let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !first_ok || !rest_ok {
        return bad(format!(
            "nftables {what} name '{name}' must start with a letter and use only letters, digits, '_', '-' and '.'"
        ));
    }
    Ok(())
}

pub(crate) fn check_ifname(tag: usize, role: &str, name: &Option<String>) -> Result<(), NftError> {
    let Some(n) = name else { return Ok(()) };
    if n.is_empty() || n.len() >= IFNAMSIZ {
        return Err(NftError::invalid(
            tag,
            format!("{role} '{n}': interface names are 1 to 15 bytes"),
        ));
    }
    // '*' would turn into a wildcard in the rendered script and `"`/'\' would
    // break its quoting; the kernel compares the 16 raw bytes.
    if n == "."
        || n == ".."
        || n.chars().any(|c| {
            c == '/'
                || c == ':'
                || c == '*'
                || c == '"'
                || c == '\\'
                || c.is_whitespace()
                || c.is_control()
        })
    {
        return Err(NftError::invalid(
            tag,
            format!("{role} '{n}' is not a valid interface name"),
        ));
    }
    Ok(())
}

fn fam(a: &IpAddr) -> &'static str {
    if a.is_ipv4() { "IPv4" } else { "IPv6" }
}

fn check_src(tag: usize, what: &str, src: &IpNet) -> Result<(), NftError> {
    if src.prefix_len() == 0 {
        return Err(NftError::invalid(
            tag,
            format!(
                "{what} source {src} matches everything, and 'daddr != {src}' then matches nothing; give the real subnet"
            ),
        ));
    }
    Ok(())
}

fn check_rule(r: &NatRule) -> Result<(), NftError> {
    match r {
        NatRule::Masquerade { src, oif, tag } => {
            check_src(*tag, "masquerade", src)?;
            check_ifname(*tag, "output interface", oif)
        }
        NatRule::Snat { src, to, oif, tag } => {
            check_src(*tag, "snat", src)?;
            if src.addr().is_ipv4() != to.is_ipv4() {
                return Err(NftError::invalid(
                    *tag,
                    format!(
                        "snat from {} subnet {src} to {} address {to}: both must be the same IP version",
                        fam(&src.addr()),
                        fam(to)
                    ),
                ));
            }
            if to.is_unspecified() || to.is_multicast() {
                return Err(NftError::invalid(
                    *tag,
                    format!("snat to {to}: not a usable source address"),
                ));
            }
            check_ifname(*tag, "output interface", oif)
        }
        NatRule::Dnat(m) => check_mapping(m),
        NatRule::Hairpin { subnet, tag } => check_src(*tag, "hairpin", subnet),
        NatRule::LocalhostMasquerade { oif, tag } => {
            check_ifname(*tag, "output interface", &Some(oif.clone()))
        }
    }
}

fn check_mapping(m: &DnatMapping) -> Result<(), NftError> {
    let t = m.tag;
    let (lo, hi) = m.ports;
    if lo == 0 || hi == 0 {
        return Err(NftError::invalid(
            t,
            "port 0 cannot be forwarded; ports are 1 to 65535",
        ));
    }
    if lo > hi {
        return Err(NftError::invalid(
            t,
            format!("port range {lo}-{hi} is backwards; write {hi}-{lo}"),
        ));
    }
    if m.to_port == Some(0) {
        return Err(NftError::invalid(
            t,
            "destination port 0 is not a port; ports are 1 to 65535",
        ));
    }
    if let Some(d) = &m.daddr
        && d.is_ipv4() != m.to_addr.is_ipv4()
    {
        return Err(NftError::invalid(
            t,
            format!(
                "dnat of {} address {d} to {} address {}: both must be the same IP version",
                fam(d),
                fam(&m.to_addr),
                m.to_addr
            ),
        ));
    }
    if m.to_addr.is_unspecified() || m.to_addr.is_multicast() {
        return Err(NftError::invalid(
            t,
            format!("dnat to {}: not a usable destination address", m.to_addr),
        ));
    }
    check_ifname(t, "input interface", &m.iif)
}

/// Same (family, protocol, daddr, iif) with overlapping ports and different
/// destinations: the kernel would refuse the second element; say it first.
fn check_conflicts(rules: &[NatRule]) -> Result<(), NftError> {
    type Key<'a> = (bool, L4Proto, Option<IpAddr>, Option<&'a str>);
    let mut by_key: HashMap<Key, Vec<&DnatMapping>> = HashMap::new();
    for r in rules {
        if let NatRule::Dnat(m) = r {
            by_key
                .entry((m.is_v6(), m.proto, m.daddr, m.iif.as_deref()))
                .or_default()
                .push(m);
        }
    }
    let mut found: Option<NftError> = None;
    for list in by_key.values_mut() {
        list.sort_by_key(|m| (m.ports.0, m.ports.1, m.tag));
        let mut widest: Option<&DnatMapping> = None;
        for m in list.iter() {
            if let Some(w) = widest {
                if m.ports.0 <= w.ports.1 {
                    let same = w.ports == m.ports
                        && w.to_addr == m.to_addr
                        && w.dest_port() == m.dest_port();
                    if !same {
                        let e = conflict(w, m);
                        // report the earliest-tagged conflict so errors are stable
                        if found
                            .as_ref()
                            .and_then(|f| f.tag())
                            .is_none_or(|ft| e.tag().unwrap_or(0) < ft)
                        {
                            found = Some(e);
                        }
                    }
                }
                if m.ports.1 > w.ports.1 {
                    widest = Some(m);
                }
            } else {
                widest = Some(m);
            }
        }
    }
    found.map_or(Ok(()), Err)
}

fn show_ports(p: (u16, u16)) -> String {
    if p.0 == p.1 {
        p.0.to_string()
    } else {
        format!("{}-{}", p.0, p.1)
    }
}

pub(crate) fn show_dest(m: &DnatMapping) -> String {
    match (m.dest_port(), m.to_addr) {
        (Some(p), IpAddr::V6(a)) => format!("[{a}]:{p}"),
        (Some(p), a) => format!("{a}:{p}"),
        (None, a) => format!("{a} (same ports)"),
    }
}

fn conflict(a: &DnatMapping, b: &DnatMapping) -> NftError {
    let (first, second) = if a.tag <= b.tag { (a, b) } else { (b, a) };
    let on = match (&first.daddr, &first.iif) {
        (Some(d), Some(i)) => format!(" to {d} on {i}"),
        (Some(d), None) => format!(" to {d}"),
        (None, Some(i)) => format!(" on {i}"),
        (None, None) => String::new(),
    };
    NftError::Invalid {
        tag: second.tag,
        other_tag: Some(first.tag),
        msg: format!(
            "{} port {}{on} is already forwarded to {}; it cannot also go to {} (port {} overlaps)",
            second.proto.name(),
            show_ports(second.ports),
            show_dest(first),
            show_dest(second),
            show_ports(first.ports),
        ),
    }
}
