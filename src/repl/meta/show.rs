//! `:show` before anything is built: the session's declared model, per
//! namespace its links (kind, peer, master, state, MTU, addresses),
//! routes, sysctls and NAT rules.

use std::fmt::Write as _;

use netplumb_nft::NatRule;

use crate::model::NsRef;
use crate::topo::{LinkKind, Topology};

fn nat_line(r: &NatRule) -> String {
    let oif = |o: &Option<String>| o.as_ref().map(|o| format!(" oif {o}")).unwrap_or_default();
    match r {
        NatRule::Masquerade { src, oif: o, .. } => format!("masquerade {src}{}", oif(o)),
        NatRule::Snat {
            src, to, oif: o, ..
        } => format!("snat {src} → {to}{}", oif(o)),
        NatRule::Hairpin { subnet, .. } => format!("hairpin masquerade {subnet}"),
        NatRule::LocalhostMasquerade { oif, .. } => format!("localhost masquerade oif {oif}"),
        NatRule::Dnat(m) => {
            let ports = if m.ports.0 == m.ports.1 {
                m.ports.0.to_string()
            } else {
                format!("{}-{}", m.ports.0, m.ports.1)
            };
            let daddr = m.daddr.map(|d| d.to_string()).unwrap_or_else(|| "*".into());
            let to = match m.to_port {
                Some(p) => format!("{}:{p}", m.to_addr),
                None => m.to_addr.to_string(),
            };
            format!("dnat {} {daddr}:{ports} → {to}", m.proto.name())
        }
    }
}

/// The session's model: per namespace its links (kind, peer, master,
/// state, MTU, addresses), routes, sysctls and NAT rules.
pub fn show(t: &Topology) -> String {
    if t.size() == 0 {
        return "the session has built nothing yet\n".to_string();
    }
    let mut out = String::new();
    for ns in t.touched_ns() {
        let _ = match &ns {
            NsRef::Host => writeln!(out, "host"),
            NsRef::Named(n) => writeln!(out, "netns {n}"),
        };
        for (id, l) in t.links().filter(|(_, l)| l.ns == ns) {
            let mut line = format!("  {:<15}", l.name.to_string());
            match &l.kind {
                LinkKind::Veth { peer } => {
                    let p = t.get(*peer);
                    let other = match &p.ns {
                        NsRef::Host => p.name.to_string(),
                        NsRef::Named(n) => format!("{n}:{}", p.name),
                    };
                    let _ = write!(line, " veth ↔ {other}");
                }
                LinkKind::Bridge => line.push_str(" bridge"),
                LinkKind::Existing => line.push_str(" device"),
                LinkKind::Macvlan { parent, mode } => {
                    let _ = write!(
                        line,
                        " macvlan on {} ({})",
                        t.get(*parent).name,
                        mode.as_str()
                    );
                }
                LinkKind::Tun(t) => {
                    let _ = write!(line, " {}", t.words());
                }
                LinkKind::Vxlan { spec, .. } => {
                    let _ = write!(line, " vxlan id {}", spec.id);
                }
            }
            match l.up {
                Some(true) => line.push_str(" up"),
                Some(false) => line.push_str(" down"),
                None => {}
            }
            if let Some(m) = l.mtu {
                let _ = write!(line, " mtu {m}");
            }
            if let Some(m) = l.master {
                let _ = write!(line, " master {}", t.get(m).name);
            }
            if let Some(on) = l.stp {
                let _ = write!(line, " stp {}", if on { "on" } else { "off" });
            }
            for a in t.addrs().iter().filter(|a| a.link == id) {
                let _ = write!(line, " {}", a.cidr);
            }
            let _ = writeln!(out, "{line}");
        }
        for r in t.routes().iter().filter(|r| r.ns == ns) {
            let _ = writeln!(out, "  route {} via {}", r.route.dest, r.route.via);
        }
        for s in t.sysctls().iter().filter(|s| s.ns == ns) {
            let _ = writeln!(out, "  sysctl {}={}", s.key, s.value);
        }
        for n in t.nat().iter().filter(|n| n.ns == ns) {
            let _ = writeln!(out, "  {}", nat_line(&n.rule));
        }
    }
    out
}
