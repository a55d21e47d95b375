//! NAT tables checked before any kernel contact: names, addresses, ports,
//! and two mappings of one key that go to different places.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::NftError;
use crate::filter::check_filter;
use crate::loss::check_loss;
use crate::model::{DnatMapping, L4Proto, MAX_USERDATA, NatRule, NatTable};
use crate::sys::{IFNAMSIZ, NFT_NAME_MAXLEN};

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
    let mut lists: Vec<Vec<&DnatMapping>> = Vec::new();
    let mut by_key: HashMap<Key, usize> = HashMap::new();
    // consecutive mappings mostly share a key: no lookup for those
    let mut last: Option<(Key, usize)> = None;
    for r in rules {
        if let NatRule::Dnat(m) = r {
            let key = (m.is_v6(), m.proto, m.daddr, m.iif.as_deref());
            let i = match last {
                Some((k, i)) if k == key => i,
                _ => *by_key.entry(key).or_insert_with(|| {
                    lists.push(Vec::new());
                    lists.len() - 1
                }),
            };
            last = Some((key, i));
            lists[i].push(m);
        }
    }
    let mut found: Option<NftError> = None;
    for list in &mut lists {
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
    NftError::Invalid {
        tag: second.tag,
        other_tag: Some(first.tag),
        msg: clash_message(first, second),
    }
}

/// Do two mappings of overlapping keys send their traffic to the same place
/// (then they are one mapping, not a clash)?
pub fn same_destination(a: &DnatMapping, b: &DnatMapping) -> bool {
    a.ports == b.ports && a.to_addr == b.to_addr && a.dest_port() == b.dest_port()
}

/// Why `second` cannot be added beside `first`, whose key it overlaps:
/// `tcp port 8080 is already forwarded to 172.17.0.3:80; it cannot also go
/// to 172.17.0.4:80 (port 8080 overlaps)`.
pub fn clash_message(first: &DnatMapping, second: &DnatMapping) -> String {
    let on = match (&first.daddr, &first.iif) {
        (Some(d), Some(i)) => format!(" to {d} on {i}"),
        (Some(d), None) => format!(" to {d}"),
        (None, Some(i)) => format!(" on {i}"),
        (None, None) => String::new(),
    };
    format!(
        "{} port {}{on} is already forwarded to {}; it cannot also go to {} (port {} overlaps)",
        second.proto.name(),
        show_ports(second.ports),
        show_dest(first),
        show_dest(second),
        show_ports(first.ports),
    )
}
