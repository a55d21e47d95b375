//! Head-end replication on a vxlan (issue 19): all-zero-MAC fdb entries,
//! one per remote, so the frames the vxlan floods (broadcast, unknown
//! unicast, multicast) go to every other site. `bridge fdb append
//! 00:00:00:00:00:00 dev vx0 dst 192.0.2.2` sends RTM_NEWNEIGH with
//! AF_BRIDGE, NTF_SELF, NUD_PERMANENT and NLM_F_CREATE|NLM_F_APPEND
//! (append: the entries share the zero MAC, one per destination).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage as M;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};

use super::msg::Req;

const ZERO_MAC: [u8; 6] = [0; 6];

fn entry(ifindex: u32, dst: IpAddr) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Bridge;
    m.header.ifindex = ifindex;
    m.header.state = NeighbourState::Permanent;
    m.header.flags = NeighbourFlags::Own;
    m.attributes = vec![
        NeighbourAttribute::LinkLayerAddress(ZERO_MAC.to_vec()),
        NeighbourAttribute::Destination(NeighbourAddress::from(dst)),
    ];
    m
}

/// `bridge fdb append 00:00:00:00:00:00 dev IFINDEX dst DST`.
pub fn add(ifindex: u32, dst: IpAddr) -> Req {
    (
        M::NewNeighbour(entry(ifindex, dst)),
        NLM_F_CREATE | NLM_F_APPEND,
    )
}

/// `bridge fdb del 00:00:00:00:00:00 dev IFINDEX dst DST`.
pub fn del(ifindex: u32, dst: IpAddr) -> Req {
    (M::DelNeighbour(entry(ifindex, dst)), 0)
}

/// The dump of a namespace's bridge fdb (every device's).
pub fn dump_request() -> M {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Bridge;
    M::GetNeighbour(m)
}

/// From a dump: (ifindex, dst) of each all-zero-MAC entry with a
/// destination, the head-end replication list of a vxlan.
pub fn flood_entries(msgs: &[M]) -> Vec<(u32, IpAddr)> {
    let mut out = Vec::new();
    for m in msgs {
        let M::NewNeighbour(n) = m else { continue };
        let mut zero = false;
        let mut dst = None;
        for a in &n.attributes {
            match a {
                NeighbourAttribute::LinkLayerAddress(mac) => zero = mac.as_slice() == ZERO_MAC,
                NeighbourAttribute::Destination(d) => dst = ip_of(d),
                _ => {}
            }
        }
        if let (true, Some(d)) = (zero, dst) {
            out.push((n.header.ifindex, d));
        }
    }
    out
}

/// AF_BRIDGE dumps carry the destination as raw bytes: 4 or 16 of them.
fn ip_of(a: &NeighbourAddress) -> Option<IpAddr> {
    match a {
        NeighbourAddress::Inet(v) => Some(IpAddr::V4(*v)),
        NeighbourAddress::Inet6(v) => Some(IpAddr::V6(*v)),
        NeighbourAddress::Other(b) => match b.len() {
            4 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
            16 => {
                let mut x = [0u8; 16];
                x.copy_from_slice(b);
                Some(IpAddr::V6(Ipv6Addr::from(x)))
            }
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::testns::TestNs;

    /// Appended entries read back as `bridge fdb` shows them, and as our
    /// own dump parses them; deleting one leaves the other.
    #[test]
    fn flood_entries_append_read_back_and_delete() {
        let Some(ns) = TestNs::new() else { return };
        ns.ok("ip link add vx9 type vxlan id 9 local 192.0.2.1 dstport 4789");
        let i = ns.index("vx9");
        let a: IpAddr = "192.0.2.2".parse().unwrap();
        let b: IpAddr = "192.0.2.3".parse().unwrap();
        ns.apply(vec![add(i, a), add(i, b)]);
        let shown = ns.ok("bridge fdb show dev vx9");
        assert!(
            shown.contains("00:00:00:00:00:00 dst 192.0.2.2 self permanent"),
            "{shown}"
        );
        assert!(
            shown.contains("00:00:00:00:00:00 dst 192.0.2.3 self permanent"),
            "{shown}"
        );
        let read = ns.rtnl(|rt| flood_entries(&rt.dump(dump_request()).unwrap()));
        assert_eq!(read, vec![(i, a), (i, b)]);
        ns.apply(vec![del(i, a)]);
        let shown = ns.ok("bridge fdb show dev vx9");
        assert!(!shown.contains("dst 192.0.2.2"), "{shown}");
        assert!(shown.contains("dst 192.0.2.3"), "{shown}");
    }
}
