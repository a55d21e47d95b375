//! DNAT maps as the mappings themselves, for pictures: `tcp 8080 →
//! 172.30.0.3:80`, runs of neighbouring ports merged (`tcp 30000–30099 →
//! 172.30.0.9`), and past a few lines a count of the rest (`+9,990 more`).

use netplumb_nft::{ElemField, MapElem};

use super::table::thousands;
use super::view::Nat;

/// One mapping, or a run of them with consecutive ports.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    proto: String,
    daddr: Option<String>,
    lo: u32,
    hi: u32,
    to: String,
    /// the first backend port; None keeps the port
    to_port: Option<u32>,
    /// single ports merged with their backend ports counting along
    /// (a port range read as one element goes to one port instead)
    shift: bool,
    count: usize,
}

fn parse(proto: &str, e: &MapElem) -> Option<Run> {
    let (daddr, (lo, hi)) = match e.key.as_slice() {
        [p] => (None, p.ports()?),
        [a, p] => (Some(a.addr()?.to_string()), p.ports()?),
        _ => return None,
    };
    let to = e.value.first().and_then(ElemField::addr)?.to_string();
    let to_port = match e.value.get(1) {
        Some(p) => Some(u32::from(p.ports()?.0)),
        None => None,
    };
    let (lo, hi) = (u32::from(lo), u32::from(hi));
    Some(Run {
        proto: proto.to_string(),
        daddr,
        lo,
        hi,
        to,
        to_port,
        shift: false,
        count: (hi - lo + 1) as usize,
    })
}

/// Does `b` carry on where `a` stops?
fn continues(a: &Run, b: &Run) -> bool {
    let same = a.proto == b.proto && a.daddr == b.daddr && a.to == b.to;
    if !same || a.hi.checked_add(1) != Some(b.lo) {
        return false;
    }
    match (a.to_port, b.to_port) {
        (None, None) => true,
        (Some(x), Some(y)) => {
            b.lo == b.hi && (a.lo == a.hi || a.shift) && Some(y) == x.checked_add(b.lo - a.lo)
        }
        _ => false,
    }
}

fn addr_port(a: &str, p: u32) -> String {
    if a.contains(':') {
        format!("[{a}]:{p}")
    } else {
        format!("{a}:{p}")
    }
}

fn text(r: &Run) -> String {
    let from = match (&r.daddr, r.lo == r.hi) {
        (None, true) => r.lo.to_string(),
        (None, false) => format!("{}–{}", r.lo, r.hi),
        (Some(d), true) => addr_port(d, r.lo),
        (Some(d), false) => format!("{}:{}–{}", d, r.lo, r.hi),
    };
    let to = match r.to_port {
        None => r.to.clone(),
        Some(p) if r.shift => format!("{}–{}", addr_port(&r.to, p), p + (r.hi - r.lo)),
        Some(p) => addr_port(&r.to, p),
    };
    format!("{} {from} → {to}", r.proto)
}

/// The protocol a map's rule matches (`meta l4proto udp … map @m`).
fn proto_of(n: &Nat, map: &str) -> &'static str {
    let at = format!("@{map}");
    let udp = n
        .chains
        .iter()
        .flat_map(|(_, rules)| rules.iter())
        .any(|r| r.contains(&at) && r.contains("l4proto udp"));
    if udp { "udp" } else { "tcp" }
}

/// Every DNAT mapping of the table, merged into runs, in port order.
fn runs(n: &Nat) -> Vec<Run> {
    let mut all: Vec<Run> = Vec::new();
    for m in n.maps.iter().filter(|m| m.is_dnat()) {
        let proto = proto_of(n, &m.name);
        for e in &m.elements {
            if let Some(r) = parse(proto, e) {
                all.push(r);
            }
        }
    }
    all.sort_by(|a, b| (&a.proto, &a.daddr, a.lo).cmp(&(&b.proto, &b.daddr, b.lo)));
    let mut out: Vec<Run> = Vec::new();
    for r in all {
        match out.last_mut() {
            Some(last) if continues(last, &r) => {
                last.shift = last.to_port.is_some();
                last.hi = r.hi;
                last.count += r.count;
            }
            _ => out.push(r),
        }
    }
    out
}

/// The label of the arrow to `addr`: the mappings that lead there.
pub fn to_addr(n: &Nat, addr: &str) -> String {
    let runs: Vec<Run> = runs(n).into_iter().filter(|r| r.to == addr).collect();
    let mut parts: Vec<String> = runs
        .iter()
        .take(2)
        .map(|r| text(r).split(" → ").next().unwrap_or("").to_string())
        .collect();
    let rest: usize = runs.iter().skip(2).map(|r| r.count).sum();
    if rest > 0 {
        parts.push(format!("+{} more", thousands(rest)));
    }
    format!("DNAT {}", parts.join(", "))
}

/// How many ports are mapped (a range of 100 is 100 mappings).
pub fn total(n: &Nat) -> usize {
    runs(n).iter().map(|r| r.count).sum()
}

/// At most `max` lines, the last one counting what is left.
pub fn lines(n: &Nat, max: usize) -> Vec<String> {
    let runs = runs(n);
    let mut out: Vec<String> = runs.iter().take(max).map(text).collect();
    if runs.len() > max {
        let rest: usize = runs[max..].iter().map(|r| r.count).sum();
        out.push(format!("+{} more", thousands(rest)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::view::NatMap;
    use super::*;

    /// "10.0.0.1", "80", "5000-5099" as a typed field.
    fn field(s: &str) -> ElemField {
        if let Ok(a) = s.parse::<std::net::IpAddr>() {
            return ElemField::Addr { first: a, last: a };
        }
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        ElemField::Port {
            first: a.parse().unwrap(),
            last: b.parse().unwrap(),
        }
    }

    fn fields(s: &str) -> Vec<ElemField> {
        s.split(" . ").map(field).collect()
    }

    fn map(name: &str, elements: Vec<(String, String)>) -> NatMap {
        NatMap {
            name: name.into(),
            key_type: "inet_service".into(),
            data_type: "ipv4_addr . inet_service".into(),
            interval: false,
            elements: elements
                .iter()
                .map(|(k, v)| MapElem {
                    key: fields(k),
                    value: fields(v),
                })
                .collect(),
        }
    }

    #[test]
    fn mappings_are_named_and_runs_merged() {
        let mut el = vec![("8080".to_string(), "172.30.0.3 . 80".to_string())];
        for p in 30000..30100 {
            el.push((p.to_string(), "172.30.0.9".to_string()));
        }
        for p in 40000..50000 {
            el.push((
                p.to_string(),
                format!("172.30.{}.{} . 80", p / 250 % 250, p % 250),
            ));
        }
        let n = Nat {
            table: "netplumb-x".into(),
            chains: vec![(
                "prerouting".into(),
                vec!["meta l4proto tcp dnat ip to tcp dport map @dnat_tcp".into()],
            )],
            maps: vec![map("dnat_tcp", el)],
            rules: vec![],
        };
        let l = lines(&n, 4);
        assert_eq!(l[0], "tcp 8080 → 172.30.0.3:80");
        assert_eq!(l[1], "tcp 30000–30099 → 172.30.0.9");
        assert_eq!(l[2], "tcp 40000 → 172.30.160.0:80");
        assert_eq!(l.len(), 5);
        assert_eq!(l[4], "+9,998 more");
        // the range counts as the hundred mappings it is
        assert_eq!(total(&n), 10_101);
        assert_eq!(to_addr(&n, "172.30.0.9"), "DNAT tcp 30000–30099");
    }

    #[test]
    fn daddr_keys_and_udp() {
        let n = Nat {
            table: "t".into(),
            chains: vec![(
                "prerouting".into(),
                vec!["meta l4proto udp dnat ip to ip daddr . udp dport map @dnat_udp_daddr".into()],
            )],
            maps: vec![map(
                "dnat_udp_daddr",
                vec![("10.200.0.10 . 53".into(), "172.17.0.3 . 5353".into())],
            )],
            rules: vec![],
        };
        assert_eq!(lines(&n, 5), ["udp 10.200.0.10:53 → 172.17.0.3:5353"]);
    }

    #[test]
    fn shifted_ports_and_a_range_to_one_port() {
        let el = (0..10)
            .map(|i| ((2000 + i).to_string(), format!("10.0.0.2 . {}", 3000 + i)))
            .chain([("5000-5099".to_string(), "10.0.0.3 . 80".to_string())])
            .collect();
        let n = Nat {
            table: "t".into(),
            chains: vec![],
            maps: vec![map("dnat_tcp", el)],
            rules: vec![],
        };
        assert_eq!(
            lines(&n, 5),
            [
                "tcp 2000–2009 → 10.0.0.2:3000–3009",
                "tcp 5000–5099 → 10.0.0.3:80"
            ]
        );
    }
}
