//! What the script asks for, flattened into keys (the same keys the diff
//! puts on its steps) and values. Kept with the topology's record after
//! each successful run: a step whose key had the same value last time is
//! a repair of drift; any other step is an edit of the script.

use std::collections::BTreeMap;

use super::diff::{
    daemon_key, daemon_value, declared_table, file_key, fingerprint, link_key, nat_namespaces,
    nat_table_name,
};
use crate::model::NsRef;
use crate::topo::{LinkKind, NsDecl, Topology};

pub type Intent = BTreeMap<String, String>;

fn at(ns: &NsRef, name: &dyn std::fmt::Display) -> String {
    match ns {
        NsRef::Host => name.to_string(),
        NsRef::Named(n) => format!("{n}:{name}"),
    }
}

/// The keys of these namespaces: all a namespace adds to the intent, so
/// that a model that only gained namespaces extends its intent with them.
pub fn add_namespaces(out: &mut Intent, ns: &[NsDecl]) {
    for n in ns {
        out.insert(format!("netns {}", n.name), "declared".into());
    }
}

pub fn intent(topo: &Topology, topology: &str) -> Intent {
    intent_given(topo, topology, &[])
}

/// `intent`, with the NAT fingerprints a diff of this same model made.
pub fn intent_given(topo: &Topology, topology: &str, prints: &[(NsRef, Vec<u8>)]) -> Intent {
    let mut out = Intent::new();
    add_namespaces(&mut out, topo.namespaces());
    for (_, l) in topo.links() {
        let k = link_key(l);
        let kind = match &l.kind {
            LinkKind::Veth { .. } => "veth".to_string(),
            LinkKind::Bridge => "bridge".to_string(),
            LinkKind::Existing => "device".to_string(),
            LinkKind::Macvlan { parent, mode } => format!(
                "macvlan on {} mode {}",
                topo.get(*parent).name,
                mode.as_str()
            ),
            LinkKind::Tun(t) => format!("tuntap {}", t.words()),
            LinkKind::Vxlan { spec, dev, cross } => {
                let mut s = spec.clone();
                s.dev = dev.map(|d| topo.get(d).name.clone());
                if let Some(c) = cross {
                    let flood: Vec<String> = c.flood.iter().map(|d| d.to_string()).collect();
                    out.insert(format!("{k} flood"), flood.join(","));
                }
                format!("vxlan {}", s.words())
            }
        };
        out.insert(k.clone(), format!("{kind} at {}", at(&l.ns, &l.name)));
        let opt = |v: Option<String>| v.unwrap_or_default();
        out.insert(format!("{k} up"), opt(l.up.map(|u| u.to_string())));
        out.insert(format!("{k} mtu"), opt(l.mtu.map(|m| m.to_string())));
        out.insert(
            format!("{k} master"),
            opt(l.master.map(|m| topo.get(m).name.to_string())),
        );
        out.insert(format!("{k} stp"), opt(l.stp.map(|s| s.to_string())));
        out.insert(
            format!("{k} mcast_snooping"),
            opt(l.mcast_snooping.map(|s| s.to_string())),
        );
        out.insert(
            format!("{k} shape"),
            opt(l.shape.as_ref().map(|s| s.tc_args(1500))),
        );
    }
    // In one pass, each link's own count for the order: asking the whole
    // list for each link was thousands × thousands at S(3000, ·).
    let mut order = vec![0usize; topo.links().count()];
    for a in topo.addrs() {
        let (Ok(l), Some(n)) = (topo.link(a.link), order.get_mut(a.link.index())) else {
            continue;
        };
        let origin = at(&l.origin.0, &l.origin.1);
        out.insert(format!("addr {origin} {}", a.cidr), "declared".into());
        out.insert(format!("addr {origin} {} order", a.cidr), n.to_string());
        *n += 1;
    }
    for r in topo.routes() {
        out.insert(
            format!("route {} {}", r.ns, r.route.dest),
            r.route.via.to_string(),
        );
    }
    for r in topo.xroutes() {
        out.insert(
            format!("route {} {}", r.ns, r.route.words()),
            "declared".into(),
        );
    }
    for r in topo.rules() {
        out.insert(
            format!("rule {} {}", r.ns, r.rule.words()),
            "declared".into(),
        );
    }
    for s in topo.sysctls() {
        out.insert(format!("sysctl {} {}", s.ns, s.key), s.value.clone());
    }
    for ns in nat_namespaces(topo) {
        let fp = match prints.iter().find(|(n, _)| n == &ns) {
            Some((_, fp)) => String::from_utf8_lossy(fp).into_owned(),
            // An invalid table never reaches the intent: the diff refuses it first.
            None => match declared_table(topo, &ns, &nat_table_name(topology)) {
                Ok(table) => String::from_utf8_lossy(&fingerprint(topology, &table)).into_owned(),
                Err(_) => continue,
            },
        };
        out.insert(format!("nat {ns}"), fp);
    }
    for d in topo.daemons() {
        out.insert(daemon_key(&d.name), daemon_value(d, topology));
    }
    for f in topo.files() {
        out.insert(file_key(&f.ns, &f.path), f.content.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cidr, IfName};
    use crate::topo::Pos;

    /// Addresses of two links declared interleaved: each link counts its
    /// own, in the order the script gave them (the primary first).
    #[test]
    fn each_links_addresses_are_ordered_among_its_own() {
        let mut t = Topology::default();
        let link = |t: &mut Topology, n: &str| {
            t.add_bridge(NsRef::Host, IfName::new(n).unwrap(), Pos::default())
                .unwrap()
        };
        let (a, b) = (link(&mut t, "bra"), link(&mut t, "brb"));
        for (l, c) in [(a, "10.0.0.1/24"), (b, "10.1.0.1/24"), (a, "10.0.0.2/24")] {
            t.add_addr(l, Cidr::parse(c).unwrap(), Pos::default())
                .unwrap();
        }
        let i = intent(&t, "x");
        let order = |k: &str| i.get(&format!("addr {k} order")).cloned();
        assert_eq!(order("bra 10.0.0.1/24").as_deref(), Some("0"));
        assert_eq!(order("brb 10.1.0.1/24").as_deref(), Some("0"));
        assert_eq!(order("bra 10.0.0.2/24").as_deref(), Some("1"));
        assert_eq!(
            i.get("addr bra 10.0.0.2/24").map(String::as_str),
            Some("declared")
        );
        assert_eq!(i.keys().filter(|k| k.starts_with("addr ")).count(), 6);
    }
}
