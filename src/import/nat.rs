//! A namespace's nf_tables tables as `dnat`, `masquerade` and `snat`
//! lines, whoever made them (iptables-nft's `ip nat`, nft by hand, an
//! earlier netplumb); the rest as "not imported" notes.

use std::net::IpAddr;

use netplumb_nft::{DnatMapping, L4Proto, NatRule, ReadBack};

fn q(s: &str) -> String {
    format!("{s:?}")
}

fn to_text(addr: &IpAddr, port: Option<u16>) -> String {
    match (addr, port) {
        (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        (a, Some(p)) => format!("{a}:{p}"),
        (a, None) => a.to_string(),
    }
}

fn dnat_line(prefix: &str, m: &DnatMapping) -> String {
    let (lo, hi) = m.ports;
    let to = q(&to_text(&m.to_addr, m.to_port));
    let plain = m.proto == L4Proto::Tcp && m.daddr.is_none() && m.iif.is_none() && lo == hi;
    if plain {
        return format!("{prefix}dnat({lo}, {to});");
    }
    let mut fields = Vec::new();
    if let Some(d) = &m.daddr {
        fields.push(format!("daddr: {}", q(&d.to_string())));
    }
    let port = if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}..={hi}")
    };
    fields.push(format!("port: {port}"));
    fields.push(format!("to: {to}"));
    if m.proto == L4Proto::Udp {
        fields.push("proto: \"udp\"".into());
    }
    if let Some(i) = &m.iif {
        fields.push(format!("iif: {}", q(i)));
    }
    format!("{prefix}dnat(#{{ {} }});", fields.join(", "))
}

/// Two mappings the DSL would refuse as a clash: the kernel uses the first.
fn shadows(a: &DnatMapping, b: &DnatMapping) -> bool {
    a.proto == b.proto
        && a.daddr == b.daddr
        && a.iif == b.iif
        && a.to_addr.is_ipv6() == b.to_addr.is_ipv6()
        && a.ports.0 <= b.ports.1
        && b.ports.0 <= a.ports.1
}

/// Whether the tables have IPv4 and IPv6 rules a line is written for: the
/// NAT functions turn forwarding on for their family themselves.
pub fn families(tables: &[ReadBack]) -> (bool, bool) {
    let (mut v4, mut v6) = (false, false);
    for r in tables.iter().flat_map(|t| &t.table.rules) {
        let six = match r {
            NatRule::Dnat(m) => m.to_addr.is_ipv6(),
            NatRule::Masquerade { src, .. } | NatRule::Snat { src, .. } => src.addr().is_ipv6(),
            _ => continue,
        };
        if six {
            v6 = true;
        } else {
            v4 = true;
        }
    }
    (v4, v6)
}

/// The lines for `tables` (`prefix` is "" for the host, "web." in a
/// namespace), and the notes for what has no line.
pub fn lines(prefix: &str, where_: &str, tables: &[ReadBack]) -> (Vec<String>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let mut kept: Vec<&DnatMapping> = Vec::new();
    for rb in tables {
        let t = format!("{where_}: table {} {}", rb.info.family, rb.info.name);
        for r in &rb.table.rules {
            match r {
                NatRule::Dnat(m) => {
                    if let Some(first) = kept.iter().find(|k| shadows(k, m)) {
                        notes.push(format!(
                            "{t}: {} (shadowed by the earlier {})",
                            dnat_line("", m),
                            dnat_line("", first)
                        ));
                    } else {
                        kept.push(m);
                        out.push(dnat_line(prefix, m));
                    }
                }
                NatRule::Masquerade { src, oif, .. } => out.push(match oif {
                    None => format!("{prefix}masquerade({});", q(&src.to_string())),
                    Some(o) => format!(
                        "{prefix}masquerade({}, #{{ oif: {} }});",
                        q(&src.to_string()),
                        q(o)
                    ),
                }),
                NatRule::Snat { src, to, oif, .. } => {
                    let args = format!("{}, {}", q(&src.to_string()), q(&to.to_string()));
                    out.push(match oif {
                        None => format!("{prefix}snat({args});"),
                        Some(o) => format!("{prefix}snat({args}, #{{ oif: {} }});", q(o)),
                    });
                }
                NatRule::Hairpin { subnet, .. } => {
                    notes.push(format!("{t}: hairpin masquerade of {subnet}"))
                }
                NatRule::LocalhostMasquerade { oif, .. } => {
                    notes.push(format!("{t}: masquerade of localhost out of {oif}"))
                }
            }
        }
        for f in &rb.table.filter {
            notes.push(format!("{t}: filter rule {f:?}"));
        }
        for l in &rb.table.loss {
            notes.push(format!("{t}: {}% random loss on {}", l.percent, l.iface));
        }
        for u in &rb.unrecognized {
            notes.push(format!("{t}: {u}"));
        }
    }
    (out, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ports: (u16, u16), to: &str, to_port: Option<u16>) -> DnatMapping {
        DnatMapping {
            proto: L4Proto::Tcp,
            daddr: None,
            iif: None,
            ports,
            to_addr: to.parse().expect("addr"),
            to_port,
            tag: 0,
        }
    }

    #[test]
    fn dnat_lines_use_the_short_form_when_they_can() {
        assert_eq!(
            dnat_line("", &m((8080, 8080), "172.17.0.3", Some(80))),
            "dnat(8080, \"172.17.0.3:80\");"
        );
        assert_eq!(
            dnat_line("web.", &m((30000, 30099), "172.17.0.9", None)),
            "web.dnat(#{ port: 30000..=30099, to: \"172.17.0.9\" });"
        );
        let mut d = m((10050, 10050), "fd00::3", Some(10050));
        d.daddr = Some("fd00::1".parse().expect("addr"));
        d.proto = L4Proto::Udp;
        assert_eq!(
            dnat_line("", &d),
            "dnat(#{ daddr: \"fd00::1\", port: 10050, to: \"[fd00::3]:10050\", proto: \"udp\" });"
        );
    }

    #[test]
    fn overlapping_ports_are_a_clash() {
        assert!(shadows(
            &m((8080, 8080), "10.0.0.1", None),
            &m((8000, 9000), "10.0.0.2", None)
        ));
        let mut with_daddr = m((8080, 8080), "10.0.0.2", None);
        with_daddr.daddr = Some("10.9.0.1".parse().expect("addr"));
        assert!(!shadows(&m((8080, 8080), "10.0.0.1", None), &with_daddr));
    }
}
