//! A one-line description of a packet, from the headers that are cheap to
//! read: Ethernet (and one 802.1Q tag), ARP, IPv4/IPv6 (skipping the usual
//! IPv6 extension headers), ICMP/ICMPv6, TCP and UDP. Anything shorter than
//! its header is said to be truncated rather than guessed at.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use super::socket::{LINKTYPE_ETHERNET, LINKTYPE_RAW};

#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Decoded {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eth_src: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eth_dst: Option<String>,
    pub proto: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sport: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dport: Option<u16>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub info: String,
}

fn mac(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn be16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

fn be32(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

pub fn decode(linktype: u16, p: &[u8]) -> Decoded {
    let mut d = Decoded::default();
    match linktype {
        LINKTYPE_ETHERNET => ethernet(&mut d, p),
        LINKTYPE_RAW => match p.first().map(|b| b >> 4) {
            Some(4) => ipv4(&mut d, p),
            Some(6) => ipv6(&mut d, p),
            _ => d.proto = "raw".into(),
        },
        _ => d.proto = format!("linktype {linktype}"),
    }
    d
}

fn ethernet(d: &mut Decoded, p: &[u8]) {
    if p.len() < 14 {
        d.proto = "truncated ethernet".into();
        return;
    }
    d.eth_dst = Some(mac(&p[0..6]));
    d.eth_src = Some(mac(&p[6..12]));
    let mut ethertype = be16(p, 12).unwrap_or(0);
    let mut off = 14;
    let mut vlan = None;
    if ethertype == 0x8100 || ethertype == 0x88a8 {
        let Some(tci) = be16(p, 14) else {
            d.proto = "truncated 802.1Q".into();
            return;
        };
        vlan = Some(tci & 0x0fff);
        ethertype = be16(p, 16).unwrap_or(0);
        off = 18;
    }
    let rest = &p[off.min(p.len())..];
    match ethertype {
        0x0800 => ipv4(d, rest),
        0x86dd => ipv6(d, rest),
        0x0806 => arp(d, rest),
        t if t < 0x0600 => d.proto = format!("802.3 length {t}"),
        t => d.proto = format!("ethertype 0x{t:04x}"),
    }
    if let Some(v) = vlan {
        d.proto = format!("vlan {v} {}", d.proto);
    }
}

fn arp(d: &mut Decoded, p: &[u8]) {
    d.proto = "ARP".into();
    // Ethernet/IPv4 ARP only: hlen 6, plen 4.
    if p.len() < 28 || p[4] != 6 || p[5] != 4 {
        d.info = "(not Ethernet/IPv4)".into();
        return;
    }
    let spa = Ipv4Addr::new(p[14], p[15], p[16], p[17]);
    let tpa = Ipv4Addr::new(p[24], p[25], p[26], p[27]);
    d.info = match be16(p, 6) {
        Some(1) => format!("who-has {tpa} tell {spa}"),
        Some(2) => format!("{spa} is-at {}", mac(&p[8..14])),
        Some(op) => format!("op {op}"),
        None => String::new(),
    };
}

fn ipv4(d: &mut Decoded, p: &[u8]) {
    d.proto = "IPv4".into();
    if p.len() < 20 || p[0] >> 4 != 4 {
        d.info = "truncated".into();
        return;
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    d.src = Some(IpAddr::V4(Ipv4Addr::new(p[12], p[13], p[14], p[15])));
    d.dst = Some(IpAddr::V4(Ipv4Addr::new(p[16], p[17], p[18], p[19])));
    let frag = be16(p, 6).unwrap_or(0) & 0x1fff;
    let ttl = p[8];
    if frag != 0 {
        d.info = format!("fragment offset {} ttl {ttl}", frag * 8);
        return;
    }
    let l4 = p.get(ihl..).unwrap_or(&[]);
    transport(d, p[9], l4, false);
    let _ = write!(
        d.info,
        "{}ttl {ttl}",
        if d.info.is_empty() { "" } else { " " }
    );
}

fn ipv6(d: &mut Decoded, p: &[u8]) {
    d.proto = "IPv6".into();
    if p.len() < 40 || p[0] >> 4 != 6 {
        d.info = "truncated".into();
        return;
    }
    let a = |i: usize| {
        let mut o = [0u8; 16];
        o.copy_from_slice(&p[i..i + 16]);
        IpAddr::V6(Ipv6Addr::from(o))
    };
    d.src = Some(a(8));
    d.dst = Some(a(24));
    let hlim = p[7];
    let mut next = p[6];
    let mut off = 40;
    // Hop-by-hop (MLD carries one), routing, destination options.
    while matches!(next, 0 | 43 | 60) {
        let (Some(&n), Some(&len)) = (p.get(off), p.get(off + 1)) else {
            d.info = "truncated".into();
            return;
        };
        next = n;
        off += (usize::from(len) + 1) * 8;
    }
    if next == 44 {
        d.info = format!("fragment hlim {hlim}");
        return;
    }
    let l4 = p.get(off..).unwrap_or(&[]);
    transport(d, next, l4, true);
    let _ = write!(
        d.info,
        "{}hlim {hlim}",
        if d.info.is_empty() { "" } else { " " }
    );
}

fn transport(d: &mut Decoded, proto: u8, p: &[u8], v6: bool) {
    match proto {
        6 => {
            d.proto = "TCP".into();
            let (Some(sp), Some(dp), Some(seq), Some(&fl)) =
                (be16(p, 0), be16(p, 2), be32(p, 4), p.get(13))
            else {
                d.info = "truncated".into();
                return;
            };
            d.sport = Some(sp);
            d.dport = Some(dp);
            let names = [
                (0x02, 'S'),
                (0x01, 'F'),
                (0x04, 'R'),
                (0x08, 'P'),
                (0x10, '.'),
                (0x20, 'U'),
            ];
            let flags: String = names
                .iter()
                .filter(|(bit, _)| fl & bit != 0)
                .map(|(_, c)| *c)
                .collect();
            let doff = usize::from(p.get(12).copied().unwrap_or(0) >> 4) * 4;
            let payload = p.len().saturating_sub(doff);
            d.info = format!("[{flags}] seq {seq} len {payload}");
        }
        17 => {
            d.proto = "UDP".into();
            let (Some(sp), Some(dp), Some(len)) = (be16(p, 0), be16(p, 2), be16(p, 4)) else {
                d.info = "truncated".into();
                return;
            };
            d.sport = Some(sp);
            d.dport = Some(dp);
            d.info = format!("len {}", len.saturating_sub(8));
        }
        1 if !v6 => {
            d.proto = "ICMP".into();
            icmp(d, p, false);
        }
        58 if v6 => {
            d.proto = "ICMPv6".into();
            icmp(d, p, true);
        }
        n => d.proto = format!("{} proto {n}", d.proto),
    }
}

fn icmp(d: &mut Decoded, p: &[u8], v6: bool) {
    let (Some(&t), Some(&code)) = (p.first(), p.get(1)) else {
        d.info = "truncated".into();
        return;
    };
    let echo = |what: &str| {
        format!(
            "echo {what} id {} seq {}",
            be16(p, 4).unwrap_or(0),
            be16(p, 6).unwrap_or(0)
        )
    };
    d.info = match (v6, t) {
        (false, 8) | (true, 128) => echo("request"),
        (false, 0) | (true, 129) => echo("reply"),
        (false, 3) => format!("destination unreachable code {code}"),
        (true, 1) => format!("destination unreachable code {code}"),
        (false, 11) | (true, 3) => "time exceeded".into(),
        (true, 2) => "packet too big".into(),
        (true, 133) => "router solicitation".into(),
        (true, 134) => "router advertisement".into(),
        (true, 135) | (true, 136) => {
            let what = if t == 135 {
                "neighbor solicitation"
            } else {
                "neighbor advertisement"
            };
            match p.get(8..24) {
                Some(b) => {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(b);
                    format!("{what} {}", Ipv6Addr::from(o))
                }
                None => what.into(),
            }
        }
        (true, 143) => "multicast listener report v2".into(),
        _ => format!("type {t} code {code}"),
    };
}

/// "host:port", with IPv6 addresses in brackets when a port follows.
fn endpoint(a: IpAddr, port: Option<u16>) -> String {
    match (a, port) {
        (IpAddr::V6(v6), Some(p)) => format!("[{v6}]:{p}"),
        (a, Some(p)) => format!("{a}:{p}"),
        (a, None) => a.to_string(),
    }
}

impl Decoded {
    /// The part of the line after time, interface, direction and length.
    pub fn line(&self) -> String {
        let mut s = String::new();
        if let (Some(a), Some(b)) = (&self.eth_src, &self.eth_dst) {
            let _ = write!(s, "{a} > {b} ");
        }
        s.push_str(&self.proto);
        if let (Some(a), Some(b)) = (self.src, self.dst) {
            let _ = write!(
                s,
                " {} > {}",
                endpoint(a, self.sport),
                endpoint(b, self.dport)
            );
        }
        if !self.info.is_empty() {
            s.push(' ');
            s.push_str(&self.info);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        p.extend_from_slice(&ethertype.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    fn ipv4_hdr(proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut h = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0, 10, 9, 0, 2, 10, 9, 0, 1,
        ];
        let total = (20 + l4.len()) as u16;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h.extend_from_slice(l4);
        h
    }

    #[test]
    fn icmp_echo_request() {
        let icmp = [8, 0, 0, 0, 0, 7, 0, 1, 0xde, 0xad];
        let d = decode(1, &eth(0x0800, &ipv4_hdr(1, &icmp)));
        assert_eq!(
            d.line(),
            "02:00:00:00:00:02 > 02:00:00:00:00:01 ICMP 10.9.0.2 > 10.9.0.1 echo request id 7 seq 1 ttl 64"
        );
    }

    #[test]
    fn tcp_syn_with_ports() {
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&1234u32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x02;
        let d = decode(1, &eth(0x0800, &ipv4_hdr(6, &tcp)));
        assert_eq!(d.sport, Some(40000));
        assert_eq!(d.dport, Some(80));
        assert!(
            d.line()
                .ends_with("TCP 10.9.0.2:40000 > 10.9.0.1:80 [S] seq 1234 len 0 ttl 64"),
            "{}",
            d.line()
        );
    }

    #[test]
    fn udp_over_raw_ip() {
        let udp = [0, 53, 0x30, 0x39, 0, 12, 0, 0, 1, 2, 3, 4];
        let d = decode(101, &ipv4_hdr(17, &udp));
        assert_eq!(d.line(), "UDP 10.9.0.2:53 > 10.9.0.1:12345 len 4 ttl 64");
    }

    #[test]
    fn arp_request_and_reply() {
        let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
        a.extend_from_slice(&[2, 0, 0, 0, 0, 2, 10, 9, 0, 2]);
        a.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 9, 0, 1]);
        let d = decode(1, &eth(0x0806, &a));
        assert_eq!(d.info, "who-has 10.9.0.1 tell 10.9.0.2");
        a[7] = 2;
        assert_eq!(
            decode(1, &eth(0x0806, &a)).info,
            "10.9.0.2 is-at 02:00:00:00:00:02"
        );
    }

    #[test]
    fn icmpv6_behind_hop_by_hop() {
        let mut p = vec![0x60, 0, 0, 0, 0, 0, 0, 1];
        p.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16]);
        // hop-by-hop: next 58, length 0 (8 bytes)
        p.extend_from_slice(&[58, 0, 5, 2, 0, 0, 1, 0]);
        p.extend_from_slice(&[143, 0, 0, 0, 0, 0, 0, 0]);
        let d = decode(1, &eth(0x86dd, &p));
        assert_eq!(d.proto, "ICMPv6");
        assert_eq!(d.info, "multicast listener report v2 hlim 1");
        assert_eq!(d.dst, Some("ff02::16".parse().unwrap()));
    }

    #[test]
    fn short_frames_say_truncated() {
        assert_eq!(decode(1, &[1, 2, 3]).proto, "truncated ethernet");
        assert_eq!(decode(1, &eth(0x0800, &[0x45, 0])).info, "truncated");
        let d = decode(1, &eth(0x0800, &ipv4_hdr(6, &[0, 80])));
        assert_eq!(d.proto, "TCP");
        assert!(d.info.starts_with("truncated"), "{}", d.info);
    }
}
