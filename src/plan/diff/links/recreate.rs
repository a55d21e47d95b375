//! The ops that build a removed veth end or bridge again (a removal's
//! undo), from the state the diff was planned against.

use super::super::Cx;
use crate::ledger::{Entry, MadeKind};
use crate::model::{IfName, NsRef};
use crate::op::{LinkChange, Op, VethWith};

/// What a veth end or bridge looks like, to build it again on rollback.
pub(in crate::plan::diff) fn recreate_link(cx: &Cx, e: &Entry) -> Vec<Op> {
    let Entry::Link {
        ns,
        name,
        kind,
        peer,
        ..
    } = e
    else {
        return Vec::new();
    };
    let st = cx.seen(ns);
    let Some(l) = st.link(name.as_str()) else {
        return Vec::new();
    };
    let master = l
        .master
        .and_then(|m| st.link_by_index(m))
        .and_then(|m| IfName::new(&m.name).ok());
    let mut ops = match (kind, peer) {
        (MadeKind::Veth, Some(p)) => vec![Op::AddVeth {
            ns: ns.clone(),
            name: name.clone(),
            peer_ns: p.ns.clone(),
            peer: p.name.clone(),
            with: VethWith { master, up: l.up },
        }],
        (MadeKind::Bridge, _) => {
            let mut v = vec![Op::AddBridge {
                ns: ns.clone(),
                name: name.clone(),
            }];
            if l.stp == Some(true) {
                v.push(set(ns, name, LinkChange::Stp(true)));
            }
            if l.up {
                v.push(set(ns, name, LinkChange::Up(true)));
            }
            v
        }
        _ => return Vec::new(),
    };
    if l.mtu != 1500 {
        ops.push(set(ns, name, LinkChange::Mtu(l.mtu)));
    }
    if let (MadeKind::Veth, Some(p)) = (kind, peer)
        && let Some(pl) = cx.seen(&p.ns).link(p.name.as_str())
    {
        if pl.mtu != 1500 {
            ops.push(set(&p.ns, &p.name, LinkChange::Mtu(pl.mtu)));
        }
        if pl.up {
            ops.push(set(&p.ns, &p.name, LinkChange::Up(true)));
        }
    }
    for a in st.addrs_of(name.as_str()) {
        // An address the topology owns is removed by a step of its own,
        // whose undo puts it back: adding it here too would fail (EEXIST).
        let own = cx.owned.iter().any(|o| {
            matches!(o, Entry::Addr { ns: n, dev, cidr } if n == ns && dev == name && cidr == &a.cidr)
        });
        if a.scope != "link" && !own {
            ops.push(Op::AddAddr {
                ns: ns.clone(),
                dev: name.clone(),
                cidr: a.cidr,
            });
        }
    }
    ops
}

pub(in crate::plan::diff) fn set(ns: &NsRef, name: &IfName, change: LinkChange) -> Op {
    Op::SetLink {
        ns: ns.clone(),
        name: name.clone(),
        change,
    }
}
