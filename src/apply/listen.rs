//! The sockets listening in a namespace, for the plan-time check that a
//! DNAT mapping does not shadow a service already there: the kernel's
//! /proc tables as the namespace's own thread sees them, and the process
//! holding each socket, found only when one is in the way.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netplumb_nft::L4Proto;

use crate::kernel::Listener;

/// TCP_LISTEN, and UDP's "bound, not connected" (TCP_CLOSE).
const TCP_LISTEN: u8 = 0x0A;
const UDP_BOUND: u8 = 0x07;

/// Every listening TCP socket and bound UDP socket of the calling thread's
/// network namespace (/proc/thread-self/net: /proc/net follows the
/// process's first thread, not this one).
pub(super) fn listeners() -> std::io::Result<Vec<Listener>> {
    let mut out = Vec::new();
    for (file, proto, state, v6) in [
        ("tcp", L4Proto::Tcp, TCP_LISTEN, false),
        ("tcp6", L4Proto::Tcp, TCP_LISTEN, true),
        ("udp", L4Proto::Udp, UDP_BOUND, false),
        ("udp6", L4Proto::Udp, UDP_BOUND, true),
    ] {
        let text = match std::fs::read_to_string(format!("/proc/thread-self/net/{file}")) {
            Ok(t) => t,
            // A kernel without IPv6 has no tcp6.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        out.extend(
            text.lines()
                .skip(1)
                .filter_map(|l| parse_line(l, proto, state, v6)),
        );
    }
    Ok(out)
}

fn parse_line(line: &str, proto: L4Proto, want: u8, v6: bool) -> Option<Listener> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let (addr, port) = f.get(1)?.split_once(':')?;
    let st = u8::from_str_radix(f.get(3)?, 16).ok()?;
    if st != want {
        return None;
    }
    let port = u16::from_str_radix(port, 16).ok()?;
    let inode = f.get(9)?.parse().ok()?;
    Some(Listener {
        proto,
        addr: hex_addr(addr, v6)?,
        port,
        inode,
    })
}

/// /proc/net's addresses are 32-bit words in host order, printed in hex.
fn hex_addr(s: &str, v6: bool) -> Option<IpAddr> {
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(s.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    if v6 {
        let mut b = [0u8; 16];
        for i in 0..4 {
            b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
        }
        Some(IpAddr::V6(Ipv6Addr::from(b)))
    } else {
        Some(IpAddr::V4(Ipv4Addr::from(word(0)?)))
    }
}

/// "nginx (pid 123)": the process holding socket `inode`, when one can be
/// found in /proc (all of them for root).
pub(super) fn holder(inode: u64) -> Option<String> {
    let want = format!("socket:[{inode}]");
    for p in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = p.file_name();
        let Some(pid) = pid
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == want.as_str()) {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                return Some(format!("{} (pid {pid})", comm.trim()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_lines_parse_like_ss_shows_them() {
        let v4 = "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0";
        let l = parse_line(v4, L4Proto::Tcp, TCP_LISTEN, false).unwrap();
        assert_eq!(
            (l.addr.to_string(), l.port, l.inode),
            ("0.0.0.0".into(), 8080, 12345)
        );
        let lo = "   1: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 777 2 0000000000000000 0";
        let l = parse_line(lo, L4Proto::Udp, UDP_BOUND, false).unwrap();
        assert_eq!((l.addr.to_string(), l.port), ("127.0.0.1".into(), 53));
        // An established connection is not a listener.
        let est = "   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 9 1";
        assert!(parse_line(est, L4Proto::Tcp, TCP_LISTEN, false).is_none());
        let v6 = "   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1";
        let l = parse_line(v6, L4Proto::Tcp, TCP_LISTEN, true).unwrap();
        assert_eq!((l.addr.to_string(), l.port), ("::1".into(), 80));
    }
}
