//! `show` as aligned text: one block per namespace, a table of links, then
//! routes and NAT. Everything comes from the gathered model.

use std::fmt::Write;

use std::net::IpAddr;

use netplumb_nft::ElemField;

use super::view::{Link, Namespace, Nat, NatMap, TopologyView};
use crate::model::NsRef;

/// How many compressed DNAT runs to list per map before summarising.
const LISTED_RUNS: usize = 8;

/// 10000 -> "10,000": mapping counts are read at a glance.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Columns padded to their widest cell, two spaces apart; the last column
/// is not padded so lines carry no trailing blanks.
pub fn align(indent: &str, header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut width = vec![0usize; cols];
    for (i, h) in header.iter().enumerate() {
        width[i] = h.chars().count();
    }
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::from(indent);
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(c);
                l.push_str(&" ".repeat(width[i] - c.chars().count() + 2));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

fn ns_label(ns: &NsRef) -> String {
    match ns {
        NsRef::Host => "host".into(),
        NsRef::Named(n) => n.to_string(),
    }
}

fn peer_text(here: &NsRef, l: &Link) -> String {
    let Some(p) = &l.peer else {
        return "-".into();
    };
    let name = p.name.clone().unwrap_or_else(|| format!("if{}", p.index));
    match (&p.ns, p.netnsid) {
        (Some(ns), _) if ns == here => name,
        (Some(ns), _) => format!("{}:{name}", ns_label(ns)),
        (None, Some(id)) => format!("?:if{} (netnsid {id}, unnamed netns)", p.index),
        (None, None) => name,
    }
}

fn link_rows(n: &Namespace) -> Vec<Vec<String>> {
    n.links
        .iter()
        .map(|l| {
            vec![
                l.name.clone(),
                l.kind.clone().unwrap_or_else(|| "-".into()),
                l.state().to_string(),
                l.mtu.to_string(),
                l.master.clone().unwrap_or_else(|| "-".into()),
                peer_text(&n.ns, l),
                l.addrs
                    .iter()
                    .map(|a| a.net.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect()
}

/// One compressed run of DNAT elements: consecutive ports to one address.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    /// The key's fields before the port, as text ("10.0.0.1 . ").
    prefix: String,
    lo: u16,
    hi: u16,
    to: String,
    /// The port `lo` maps to (None: the same port, no port translation).
    to_port: Option<u16>,
}

fn runs(m: &NatMap) -> Vec<Run> {
    let mut elems: Vec<Run> = Vec::new();
    let mut odd: Vec<Run> = Vec::new();
    for e in &m.elements {
        let to = match e.to_addr() {
            Some(a) => a.to_string(),
            None => join(&e.value),
        };
        match e.key.split_last() {
            Some((last, before)) if last.ports().is_some() => {
                let (lo, hi) = last.ports().unwrap_or_default();
                let mut prefix = join(before);
                if !prefix.is_empty() {
                    prefix.push_str(" . ");
                }
                elems.push(Run {
                    prefix,
                    lo,
                    hi,
                    to,
                    to_port: e.to_port(),
                });
            }
            // Keys that do not end in a port are listed as they are.
            _ => odd.push(Run {
                prefix: format!("{} ", join(&e.key)),
                lo: 0,
                hi: 0,
                to: join(&e.value),
                to_port: None,
            }),
        }
    }
    elems.sort_by(|a, b| (&a.prefix, a.lo).cmp(&(&b.prefix, b.lo)));
    let mut out: Vec<Run> = Vec::new();
    for e in elems {
        if let Some(last) = out.last_mut() {
            let next_port = |r: &Run| r.to_port.map(|p| u32::from(p) + u32::from(r.hi - r.lo) + 1);
            let joins = last.prefix == e.prefix
                && last.to == e.to
                && u32::from(last.hi) + 1 == u32::from(e.lo)
                && match (last.to_port, e.to_port) {
                    (None, None) => true,
                    (Some(_), Some(p)) => next_port(last) == Some(u32::from(p)),
                    _ => false,
                };
            if joins {
                last.hi = e.hi;
                continue;
            }
        }
        out.push(e);
    }
    out.extend(odd);
    out
}

/// Fields as nft writes a concatenation: "10.0.0.1 . 80".
fn join(fields: &[ElemField]) -> String {
    fields
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" . ")
}

fn run_text(r: &Run) -> String {
    let ports = |lo: u32, hi: u32| {
        if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        }
    };
    let key = format!("{}{}", r.prefix, ports(r.lo.into(), r.hi.into()));
    if r.prefix.ends_with(' ') && r.lo == 0 && r.hi == 0 {
        return format!("{}→ {}", r.prefix, r.to);
    }
    let span = u32::from(r.hi - r.lo);
    match r.to_port {
        None => format!("{key} → {}", r.to),
        Some(p) if p == r.lo && span > 0 => format!("{key} → {} (same ports)", r.to),
        Some(p) => format!("{key} → {}:{}", r.to, ports(p.into(), u32::from(p) + span)),
    }
}

fn targets_text(t: &[(IpAddr, usize)]) -> String {
    let mut parts: Vec<String> = t
        .iter()
        .take(4)
        .map(|(a, n)| format!("{a} ×{}", thousands(*n)))
        .collect();
    if t.len() > 4 {
        parts.push(format!("+{} more addresses", t.len() - 4));
    }
    parts.join(", ")
}

fn nat_text(out: &mut String, n: &Nat) {
    let _ = writeln!(out, "    nat (nft table inet {}):", n.table);
    for (chain, rules) in &n.chains {
        for r in rules {
            let _ = writeln!(out, "      {chain}: {r}");
        }
    }
    for m in &n.maps {
        let _ = writeln!(
            out,
            "      map {} ({} : {}): {} element{}{}",
            m.name,
            m.key_type,
            m.data_type,
            thousands(m.elements.len()),
            if m.elements.len() == 1 { "" } else { "s" },
            if m.is_dnat() && !m.elements.is_empty() {
                format!(" → {}", targets_text(&m.targets()))
            } else {
                String::new()
            }
        );
        let rs = runs(m);
        for r in rs.iter().take(LISTED_RUNS) {
            let _ = writeln!(out, "        {}", run_text(r));
        }
        if rs.len() > LISTED_RUNS {
            let _ = writeln!(
                out,
                "        … {} more (show --json lists every element)",
                thousands(rs.len() - LISTED_RUNS)
            );
        }
    }
}

fn namespace_text(out: &mut String, topo: &str, n: &Namespace) {
    let what = match (&n.ns, n.owned) {
        (NsRef::Host, _) => "host (the links this topology made or changed)".to_string(),
        (NsRef::Named(name), true) => format!("netns {name} (made by {topo})"),
        (NsRef::Named(name), false) => {
            format!("netns {name} (not made by {topo}: only its links)")
        }
    };
    let mut flags = Vec::new();
    if n.forwarding_v4 == Some(true) {
        flags.push("ipv4 forwarding");
    }
    if n.forwarding_v6 == Some(true) {
        flags.push("ipv6 forwarding");
    }
    if flags.is_empty() {
        let _ = writeln!(out, "  {what}");
    } else {
        let _ = writeln!(out, "  {what}  [{}]", flags.join(", "));
    }
    if !n.exists {
        let _ = writeln!(
            out,
            "    MISSING: recorded by the topology, not in the kernel"
        );
        return;
    }
    if n.links.is_empty() {
        let _ = writeln!(out, "    (no links)");
    } else {
        out.push_str(&align(
            "    ",
            &[
                "LINK",
                "KIND",
                "STATE",
                "MTU",
                "MASTER",
                "PEER",
                "ADDRESSES",
            ],
            &link_rows(n),
        ));
    }
    if !n.routes.is_empty() {
        let _ = writeln!(out, "    routes:");
        for r in &n.routes {
            let _ = writeln!(out, "      {}", r.text());
        }
    }
    for nat in &n.nat {
        nat_text(out, nat);
    }
    if !n.missing.is_empty() {
        let _ = writeln!(
            out,
            "    missing (recorded, not in the kernel): {}",
            n.missing.join(", ")
        );
    }
}

pub fn render(views: &[TopologyView]) -> String {
    let mut out = String::new();
    if views.is_empty() {
        out.push_str("no netplumb topologies (`netplumb up FILE.rhai` makes one)\n");
        return out;
    }
    for (i, t) in views.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match &t.site {
            Some(s) => writeln!(out, "topology {} (site {s})", t.name),
            None => writeln!(out, "topology {}", t.name),
        }
        .unwrap_or_default();
        for n in &t.namespaces {
            namespace_text(&mut out, &t.name, n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use netplumb_nft::MapElem;

    /// An element from nft's text of it ("10.0.0.1 . 80-90", "172.17.0.3 . 80"),
    /// for writing tests briefly.
    fn fields(s: &str) -> Vec<ElemField> {
        s.split(" . ")
            .map(|f| {
                if let Ok(a) = f.parse::<IpAddr>() {
                    return ElemField::Addr { first: a, last: a };
                }
                let (lo, hi) = f.split_once('-').unwrap_or((f, f));
                ElemField::Port {
                    first: lo.parse().unwrap(),
                    last: hi.parse().unwrap(),
                }
            })
            .collect()
    }

    fn map(elems: &[(&str, &str)]) -> NatMap {
        NatMap {
            name: "m".into(),
            key_type: "inet_service".into(),
            data_type: "ipv4_addr . inet_service".into(),
            interval: false,
            elements: elems
                .iter()
                .map(|(k, v)| MapElem {
                    key: fields(k),
                    value: fields(v),
                })
                .collect(),
        }
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(10000), "10,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn consecutive_mappings_compress() {
        let m = map(&[
            ("10001", "172.17.0.3 . 10001"),
            ("10000", "172.17.0.3 . 10000"),
            ("10002", "172.17.0.3 . 10002"),
            ("8080", "172.17.0.4 . 80"),
            ("8081", "172.17.0.4 . 81"),
            ("9000", "172.17.0.5 . 1"),
        ]);
        let t: Vec<String> = runs(&m).iter().map(run_text).collect();
        assert_eq!(
            t,
            vec![
                "8080-8081 → 172.17.0.4:80-81",
                "9000 → 172.17.0.5:1",
                "10000-10002 → 172.17.0.3 (same ports)",
            ]
        );
    }

    #[test]
    fn keys_with_addresses_and_ranges() {
        let m = map(&[
            ("10.18.103.2 . 10050", "172.17.0.3 . 10050"),
            ("30000-30100", "172.17.0.9"),
        ]);
        let t: Vec<String> = runs(&m).iter().map(run_text).collect();
        assert_eq!(
            t,
            vec![
                "30000-30100 → 172.17.0.9",
                "10.18.103.2 . 10050 → 172.17.0.3:10050"
            ]
        );
    }

    #[test]
    fn align_pads_all_but_the_last_column() {
        let s = align(
            "  ",
            &["A", "BB", "C"],
            &[vec!["xxx".into(), "y".into(), "z".into()]],
        );
        assert_eq!(s, "  A    BB  C\n  xxx  y   z\n");
    }
}
