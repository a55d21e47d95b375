//! A stable hash of a table's content: what a second `up` compares with the
//! one kept in the table's userdata instead of reading every element back.

use std::fmt::Write;
use std::net::IpAddr;

use crate::model::NatTable;
use crate::plan::{ElemPlan, MapPlan};
use crate::render::render_parts;

/// FNV-1a over the table's `nft -f` text, each map element taken as its
/// values in a fixed binary form: stable across runs and builds, and it
/// changes whenever the rendered script would (the values are all an
/// element's text is made of).
pub fn fingerprint(table: &NatTable) -> u64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    // Fnv's write_str never fails
    let _ = render_parts(&mut h, table, |h, m, e, _| {
        h.elem(m, e);
        Ok(())
    });
    h.0
}

/// FNV-1a as a `fmt::Write`: each byte written goes into the hash.
struct Fnv(u64);

impl Fnv {
    fn bytes(&mut self, bs: &[u8]) {
        let mut h = self.0;
        for b in bs {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    /// An element in a form no two different elements share: a tag before
    /// each address (none, IPv4, IPv6), both ports, and the target port only
    /// where the map's data has one, as the text does.
    fn elem(&mut self, m: &MapPlan, e: &ElemPlan) {
        let mut r = Record { b: [0; 48], n: 0 };
        r.addr(e.daddr.as_ref());
        r.put(&e.lo.to_be_bytes());
        r.put(&e.hi.to_be_bytes());
        r.addr(Some(&e.to));
        match (m.data_port, e.to_port) {
            (true, Some(p)) => {
                r.put(&[1]);
                r.put(&p.to_be_bytes());
            }
            _ => r.put(&[0]),
        }
        self.bytes(&r.b[..r.n]);
    }
}

/// One element's bytes, on the stack (the longest: two IPv6 addresses).
struct Record {
    b: [u8; 48],
    n: usize,
}

impl Record {
    fn put(&mut self, bs: &[u8]) {
        self.b[self.n..self.n + bs.len()].copy_from_slice(bs);
        self.n += bs.len();
    }

    fn addr(&mut self, a: Option<&IpAddr>) {
        match a {
            None => self.put(&[0]),
            Some(IpAddr::V4(v)) => {
                self.put(&[4]);
                self.put(&v.octets());
            }
            Some(IpAddr::V6(v)) => {
                self.put(&[6]);
                self.put(&v.octets());
            }
        }
    }
}

impl Write for Fnv {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DnatMapping, L4Proto, NatRule};

    fn table(port: u16, to: &str, to_port: Option<u16>) -> NatTable {
        let m = |tag, ports, to: &str, to_port| {
            NatRule::Dnat(DnatMapping {
                proto: L4Proto::Tcp,
                daddr: Some("10.255.0.1".parse().expect("addr")),
                iif: None,
                ports,
                to_addr: to.parse().expect("addr"),
                to_port,
                tag,
            })
        };
        NatTable {
            name: "netplumb-t".into(),
            rules: vec![
                m(0, (port, port), to, to_port),
                m(1, (9000, 9010), "fd00::2", Some(80)),
            ],
            ..Default::default()
        }
    }

    /// The value a table made by an earlier build carries in its userdata:
    /// when this changes, every table is replaced once on the next `up`.
    #[test]
    fn stable_across_builds() {
        assert_eq!(
            format!("{:016x}", fingerprint(&table(8080, "172.18.0.2", Some(80)))),
            "a20a20e933f0818f"
        );
    }

    #[test]
    fn each_value_of_an_element_counts() {
        let base = fingerprint(&table(8080, "172.18.0.2", Some(80)));
        for other in [
            table(8081, "172.18.0.2", Some(80)),
            table(8080, "172.18.0.3", Some(80)),
            table(8080, "172.18.0.2", Some(81)),
            table(8080, "172.18.0.2", None),
        ] {
            assert_ne!(fingerprint(&other), base, "{}", crate::render(&other));
        }
        let mut renamed = table(8080, "172.18.0.2", Some(80));
        renamed.name = "netplumb-u".into();
        assert_ne!(fingerprint(&renamed), base, "the text around the elements");
        assert_eq!(fingerprint(&table(8080, "172.18.0.2", Some(80))), base);
    }
}
