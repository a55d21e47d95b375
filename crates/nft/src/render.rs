//! The `nft -f` script equivalent to what replace_table() sends.

use crate::model::NatTable;
use crate::plan::{self, ElemPlan, MapPlan, SrcKind, SrcPlan};
use std::fmt::Write;
use std::net::IpAddr;

fn fam(v6: bool) -> &'static str {
    if v6 { "ip6" } else { "ip" }
}

fn addr_type(v6: bool) -> &'static str {
    if v6 { "ipv6_addr" } else { "ipv4_addr" }
}

pub(crate) fn map_key_type(m: &MapPlan) -> String {
    if m.daddr {
        format!("{} . inet_service", addr_type(m.v6))
    } else {
        "inet_service".into()
    }
}

pub(crate) fn map_data_type(m: &MapPlan) -> String {
    if m.data_port {
        format!("{} . inet_service", addr_type(m.v6))
    } else {
        addr_type(m.v6).into()
    }
}

pub(crate) fn dnat_rule_text(m: &MapPlan, output: bool) -> String {
    let f = fam(m.v6);
    let mut s = format!("meta nfproto {}", if m.v6 { "ipv6" } else { "ipv4" });
    if let (false, Some(i)) = (output, &m.iif) {
        let _ = write!(s, " iifname \"{i}\"");
    }
    if output && !m.daddr {
        s.push_str(" fib daddr type local");
    }
    let _ = write!(s, " meta l4proto {} dnat {f} to ", m.proto.name());
    if m.daddr {
        let _ = write!(s, "{f} daddr . ");
    }
    let _ = write!(s, "{} dport map @{}", m.proto.name(), m.name);
    s
}

pub(crate) fn src_rule_text(r: &SrcPlan) -> String {
    let f = fam(r.src.addr().is_ipv6());
    let net = if r.src.prefix_len() == r.src.max_prefix_len() {
        r.src.addr().to_string()
    } else {
        r.src.to_string()
    };
    // nft adds the `meta nfproto` an `ip saddr` needs itself, right before it
    let mut s = String::new();
    if let (SrcKind::Localhost, Some(o)) = (r.kind, &r.oif) {
        let _ = write!(s, "oifname \"{o}\" ");
    }
    let _ = write!(s, "{f} saddr {net}");
    match r.kind {
        SrcKind::Masquerade | SrcKind::Snat(_) => {
            let _ = write!(s, " {f} daddr != {net}");
            if let Some(o) = &r.oif {
                let _ = write!(s, " oifname \"{o}\"");
            }
        }
        SrcKind::Hairpin => {
            let _ = write!(s, " {f} daddr {net} ct status dnat");
        }
        SrcKind::Localhost => s.push_str(" ct status dnat"),
    }
    match r.kind {
        SrcKind::Snat(a) => {
            let _ = write!(s, " snat {f} to {a}");
        }
        _ => s.push_str(" masquerade"),
    }
    s
}

/// `lo` or `lo-hi`, as nft prints a port or a port range.
fn write_ports(w: &mut impl Write, lo: u16, hi: u16) -> std::fmt::Result {
    write_u16(w, lo)?;
    if lo != hi {
        w.write_char('-')?;
        write_u16(w, hi)?;
    }
    Ok(())
}

/// Decimal digits of `v` without the formatting machinery: a 100,000-element
/// map is rendered (and fingerprinted) on every `up`.
fn write_u16(w: &mut impl Write, v: u16) -> std::fmt::Result {
    let mut buf = [0u8; 5];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // only ASCII digits were written
    w.write_str(std::str::from_utf8(&buf[i..]).unwrap_or_default())
}

/// An address as `Display` prints it; IPv4 without the formatting machinery.
fn write_addr(w: &mut impl Write, a: &IpAddr) -> std::fmt::Result {
    match a {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            write_u16(w, a.into())?;
            w.write_char('.')?;
            write_u16(w, b.into())?;
            w.write_char('.')?;
            write_u16(w, c.into())?;
            w.write_char('.')?;
            write_u16(w, d.into())
        }
        IpAddr::V6(_) => write!(w, "{a}"),
    }
}

/// A line of text on the stack: an element is put together here and
/// written in one piece (100,000 elements, a dozen pieces each).
struct Line {
    b: [u8; 128],
    n: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.n + s.len();
        let dst = self.b.get_mut(self.n..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.n = end;
        Ok(())
    }
}

/// `key : value` of one map element, as nft lists it.
fn write_elem(w: &mut impl Write, m: &MapPlan, e: &ElemPlan) -> std::fmt::Result {
    let mut line = Line { b: [0; 128], n: 0 };
    // the longest element (two IPv6 addresses, a range, a port) fits
    elem_into(&mut line, m, e)?;
    // only whole &strs were copied in
    w.write_str(std::str::from_utf8(&line.b[..line.n]).map_err(|_| std::fmt::Error)?)
}

fn elem_into(w: &mut impl Write, m: &MapPlan, e: &ElemPlan) -> std::fmt::Result {
    write_key(w, e)?;
    w.write_str(" : ")?;
    write_value(w, m, e)
}

/// An element's key: `[daddr . ]port[-port]`.
fn write_key(w: &mut impl Write, e: &ElemPlan) -> std::fmt::Result {
    if let Some(d) = &e.daddr {
        write_addr(w, d)?;
        w.write_str(" . ")?;
    }
    write_ports(w, e.lo, e.hi)
}

/// An element's value: `addr[ . port]`.
fn write_value(w: &mut impl Write, m: &MapPlan, e: &ElemPlan) -> std::fmt::Result {
    write_addr(w, &e.to)?;
    if let (true, Some(p)) = (m.data_port, e.to_port) {
        w.write_str(" . ")?;
        write_u16(w, p)?;
    }
    Ok(())
}

pub(crate) fn elem_text(m: &MapPlan, e: &ElemPlan) -> (String, String) {
    let (mut key, mut val) = (String::new(), String::new());
    // writing into a String cannot fail
    let _ = write_key(&mut key, e);
    let _ = write_value(&mut val, m, e);
    (key, val)
}

/// The `nft -f` script that makes the same table [`NftSocket::replace_table`]
/// makes: `nft -j list ruleset` reads the same after either.
///
/// [`NftSocket::replace_table`]: crate::NftSocket::replace_table
pub fn render(table: &NatTable) -> String {
    let mut s = String::new();
    // writing into a String cannot fail
    let _ = render_to(&mut s, table);
    s
}

/// [`render`] into any writer, without building the script as one string.
pub fn render_to(s: &mut impl Write, table: &NatTable) -> std::fmt::Result {
    render_parts(s, table, |s, m, e, i| {
        if i > 0 {
            s.write_str(",\n\t\t\t     ")?;
        }
        write_elem(s, m, e)
    })
}

/// [`render_to`], each map element (the `i`th of its map) handed to `elem`
/// instead of written: a fingerprint takes the text around the elements
/// and each element's values, not their decimal digits (100,000 of them).
pub(crate) fn render_parts<W: Write>(
    s: &mut W,
    table: &NatTable,
    mut elem: impl FnMut(&mut W, &MapPlan, &ElemPlan, usize) -> std::fmt::Result,
) -> std::fmt::Result {
    let p = plan::plan(table);
    let name = &table.name;
    writeln!(
        s,
        "# netplumb NAT table; applied atomically as one transaction"
    )?;
    if !table.userdata.is_empty() {
        let hex: String = table.userdata.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(s, "# table userdata (not expressible in nft syntax): {hex}")?;
    }
    let f = table.flags;
    if f.owner || f.persist {
        let names: Vec<&str> = [(f.owner, "owner"), (f.persist, "persist")]
            .into_iter()
            .filter_map(|(on, n)| on.then_some(n))
            .collect();
        writeln!(
            s,
            "# table flags {} (held by netplumb's socket; an owned table made by `nft -f` goes when nft exits)",
            names.join(",")
        )?;
    }
    // add + delete: replacing works whether or not the table exists yet
    writeln!(s, "add table inet {name}\ndelete table inet {name}\n")?;
    writeln!(s, "table inet {name} {{")?;
    if f.dormant {
        writeln!(s, "\tflags dormant\n")?;
    }
    for m in &p.maps {
        writeln!(s, "\tmap {} {{", m.name)?;
        writeln!(s, "\t\ttype {} : {}", map_key_type(m), map_data_type(m))?;
        if m.interval {
            writeln!(s, "\t\tflags interval")?;
        }
        if let Some(size) = m.size_hint() {
            writeln!(s, "\t\tsize {size}")?;
        }
        s.write_str("\t\telements = { ")?;
        for (i, e) in m.elems.iter().enumerate() {
            elem(s, m, e, i)?;
        }
        writeln!(s, " }}\n\t}}\n")?;
    }
    if !p.filter.sets.is_empty() {
        let mut sets = String::new();
        for set in &p.filter.sets {
            set.render(&mut sets);
        }
        s.write_str(&sets)?;
    }
    let mut chains: Vec<plan::BaseChain> = plan::nat_chains().into();
    if !p.filter.rules.is_empty() {
        chains.push(plan::forward_chain());
    }
    chains.extend(p.loss.iter().map(|l| l.chain.clone()));
    let last = chains.len() - 1;
    for (i, c) in chains.iter().enumerate() {
        let chain = c.name.as_str();
        let output = &(chain == plan::OUTPUT);
        writeln!(s, "\tchain {chain} {{")?;
        writeln!(s, "\t\t{}", c.spec_text())?;
        if let Some(l) = p.loss.iter().find(|l| l.chain.name == chain) {
            writeln!(s, "\t\t{}", l.text())?;
        } else if chain == plan::FORWARD {
            for r in &p.filter.rules {
                writeln!(s, "\t\t{}", r.text())?;
            }
        } else if chain == plan::POSTROUTING {
            for r in &p.src_rules {
                writeln!(s, "\t\t{}", src_rule_text(r))?;
            }
        } else {
            for m in &p.maps {
                writeln!(s, "\t\t{}", dnat_rule_text(m, *output))?;
            }
        }
        writeln!(s, "\t}}{}", if i < last { "\n" } else { "" })?;
    }
    writeln!(s, "}}")
}
