//! The `.rhai` text: namespaces, bridges, veth pairs with their addresses
//! and ports, leaves (one unit each, a `for` where they repeat), routes,
//! sysctls and NAT, then what could not be expressed, as comments.

use super::nat;
use super::read::{At, Live, Space};
use super::repeat::{Piece, group};
use super::structure::Structure;
use crate::kernel::{Link, RT_TABLE_MAIN};
use crate::model::NsRef;

fn q(s: &str) -> String {
    format!("{s:?}")
}

struct R<'a> {
    live: &'a Live,
    st: &'a Structure,
    notes: Vec<String>,
}

/// `ns` in the script: `host()`, a hub's or a leaf's variable.
fn ns_expr(st: &Structure, live: &Live, s: usize) -> String {
    match live.spaces[s].ns {
        NsRef::Host => "host()".into(),
        NsRef::Named(_) => st.ns_var.get(&s).cloned().unwrap_or_default(),
    }
}

impl R<'_> {
    fn link(&self, at: At) -> Option<&Link> {
        self.live.link(at)
    }

    /// `.mtu(…).addr(…).up()` for a link, empty when there is nothing to set.
    fn settings(&self, at: At, mtu: bool) -> String {
        let Some(l) = self.link(at) else {
            return String::new();
        };
        let space = &self.live.spaces[at.0];
        let mut s = String::new();
        if mtu && l.mtu != 1500 && l.mtu != 0 {
            s.push_str(&format!(".mtu({})", l.mtu));
        }
        for a in space.st.addrs.iter().filter(|a| a.index == l.index) {
            let text = a.cidr.to_string();
            let link_local = text.starts_with("fe80:");
            let loopback = l.name == "lo" && (text == "127.0.0.1/8" || text == "::1/128");
            if !link_local && !loopback {
                s.push_str(&format!(".addr({})", q(&text)));
            }
        }
        if l.up && l.name != "lo" {
            s.push_str(".up()");
        }
        s
    }

    fn bridge_ports(&self, at: At) -> bool {
        self.live.spaces[at.0]
            .st
            .links
            .iter()
            .any(|p| p.master == Some(at.1))
    }

    /// The bridge a port is attached to, as the script calls it.
    fn master_ref(&self, at: At) -> Option<String> {
        let m = self.link(at)?.master?;
        self.st.link_var.get(&(at.0, m)).cloned()
    }

    /// A veth pair: declared, its ends set, attached. `var` names it, `ns`
    /// gives each namespace's expression.
    fn veth(&self, (a, b): (At, At), var: &str, ns: &dyn Fn(usize) -> String) -> String {
        let (Some(la), Some(lb)) = (self.link(a), self.link(b)) else {
            return String::new();
        };
        let decl = match (a.0 == b.0, &self.live.spaces[a.0].ns) {
            (true, NsRef::Host) => format!("veth({}, {})", q(&la.name), q(&lb.name)),
            (true, _) => format!("{}.veth({}, {})", ns(a.0), q(&la.name), q(&lb.name)),
            (false, NsRef::Host) => {
                format!("veth({}, {}, {})", q(&la.name), ns(b.0), q(&lb.name))
            }
            (false, _) => format!(
                "{}.veth({}, {}, {})",
                ns(a.0),
                q(&la.name),
                ns(b.0),
                q(&lb.name)
            ),
        };
        let mut out = format!("let {var} = {decl};\n");
        let peer = self.settings(b, true);
        if !peer.is_empty() {
            out.push_str(&format!("{var}.peer{peer};\n"));
        }
        if let Some(br) = self.master_ref(b) {
            out.push_str(&format!("{br}.attach({var}.peer);\n"));
        }
        if let Some(br) = self.master_ref(a) {
            out.push_str(&format!("{br}.attach({var});\n"));
        }
        let own = self.settings(a, true);
        if !own.is_empty() {
            out.push_str(&format!("{var}{own};\n"));
        }
        out
    }

    /// lo's extra addresses, routes, sysctls and NAT of one namespace.
    fn inside(&mut self, s: usize, ns: &str, looped_nat: bool) -> String {
        let space: &Space = &self.live.spaces[s];
        let label = space.label();
        let mut out = String::new();
        if let Some(lo) = space.st.link("lo") {
            let addrs = self.settings((s, lo.index), false);
            if !addrs.is_empty() {
                out.push_str(&format!("{ns}.link(\"lo\"){addrs};\n"));
            }
            if !lo.up && space.ns != NsRef::Host {
                self.notes
                    .push(format!("{label}: lo is down (netns() brings it up)"));
            }
        }
        for r in &space.st.routes {
            let dest = r.dest.to_string();
            let kernel_made = r.proto == "kernel"
                || r.table == 255
                || dest.starts_with("fe80:")
                || dest.starts_with("ff00:")
                || (r.proto == "ra" && space.ns == NsRef::Host);
            if kernel_made {
                continue;
            }
            let dev = r.oif.and_then(|i| space.st.link_by_index(i));
            let ours = dev.is_some_and(|l| l.is_veth() || l.is_bridge() || l.name == "lo");
            if space.ns == NsRef::Host && !ours {
                // the machine's own (its default route out of eth0)
                continue;
            }
            let dev_name = dev.map(|l| l.name.as_str()).unwrap_or("?");
            let what = format!("{label}: route {dest} dev {dev_name} proto {}", r.proto);
            match (r.table, r.kind.as_str(), r.via) {
                (RT_TABLE_MAIN, "unicast", Some(via)) => {
                    let d = if r.dest.prefix_len() == 0 {
                        "default".to_string()
                    } else {
                        dest.clone()
                    };
                    out.push_str(&format!(
                        "{ns}.route({}, {});\n",
                        q(&d),
                        q(&via.to_string())
                    ));
                }
                (RT_TABLE_MAIN, "unicast", None) => {
                    self.notes.push(format!("{what} (no gateway)"));
                }
                (RT_TABLE_MAIN, kind, _) => self.notes.push(format!("{what} ({kind})")),
                (t, _, _) => self.notes.push(format!("{what} (table {t})")),
            }
        }
        // dnat, masquerade and snat turn forwarding on themselves
        let (nat4, nat6) = nat::families(&space.tables);
        for (k, v) in &space.sysctls {
            let implied = v == "1"
                && ((nat4 && k == "net.ipv4.ip_forward")
                    || (nat6 && k == "net.ipv6.conf.all.forwarding"));
            if implied {
                continue;
            }
            out.push_str(&format!("{ns}.sysctl({}, {});\n", q(k), q(v)));
        }
        let prefix = if space.ns == NsRef::Host {
            String::new()
        } else {
            format!("{ns}.")
        };
        let (lines, notes) = nat::lines(&prefix, &label, &space.tables);
        self.notes.extend(notes);
        if looped_nat {
            let units: Vec<String> = lines.iter().map(|l| format!("{l}\n")).collect();
            // a few mappings read best as lines, many as a loop
            for p in group(&units, 5) {
                match p {
                    Piece::One(i) => out.push_str(&units[i]),
                    Piece::Loop { text, .. } => out.push_str(&text),
                }
            }
        } else {
            for l in lines {
                out.push_str(&l);
                out.push('\n');
            }
        }
        out
    }

    /// One leaf namespace; `generic` names its variables n, v, v2 … (the
    /// form a loop body has) instead of after the namespace and its links.
    fn leaf(&mut self, s: usize, generic: bool) -> String {
        let NsRef::Named(name) = &self.live.spaces[s].ns else {
            return String::new();
        };
        let nv = if generic {
            "n".to_string()
        } else {
            self.st.ns_var.get(&s).cloned().unwrap_or_default()
        };
        let mut out = format!("let {nv} = netns({});\n", q(name.as_str()));
        let pairs = self.st.leaf_veths.get(&s).cloned().unwrap_or_default();
        for (k, pair) in pairs.into_iter().enumerate() {
            let var = match (generic, k) {
                (true, 0) => "v".to_string(),
                (true, k) => format!("v{}", k + 1),
                (false, _) => self.st.link_var.get(&pair.0).cloned().unwrap_or_default(),
            };
            let (st, live) = (self.st, self.live);
            let nsf = |x: usize| {
                if x == s {
                    nv.clone()
                } else {
                    ns_expr(st, live, x)
                }
            };
            out.push_str(&self.veth(pair, &var, &nsf));
        }
        let inner = self.inside(s, &nv, false);
        out.push_str(&inner);
        out
    }
}

pub fn render(live: &Live, st: &Structure) -> String {
    let mut r = R {
        live,
        st,
        notes: Vec::new(),
    };
    let read: Vec<String> = live.spaces.iter().map(Space::label).collect();
    let mut out = format!(
        "// Imported by `netplumb import` from {}.\n// Rebuild it with `netplumb up` of this file; `netplumb plan` shows the ip / nft lines.\n",
        read.join(", ")
    );
    let section = |out: &mut String, text: String| {
        if !text.is_empty() {
            out.push('\n');
            out.push_str(&text);
        }
    };
    let mut hubs = String::new();
    for s in &st.hubs {
        if let NsRef::Named(n) = &live.spaces[*s].ns {
            hubs.push_str(&format!(
                "let {} = netns({});\n",
                st.ns_var.get(s).cloned().unwrap_or_default(),
                q(n.as_str())
            ));
        }
    }
    section(&mut out, hubs);
    for b in &st.bridges {
        let Some(l) = live.link(*b) else { continue };
        let var = st.link_var.get(b).cloned().unwrap_or_default();
        let decl = match live.spaces[b.0].ns {
            NsRef::Host => format!("bridge({})", q(&l.name)),
            NsRef::Named(_) => format!("{}.bridge({})", ns_expr(st, live, b.0), q(&l.name)),
        };
        let mut text = format!("let {var} = {decl};\n");
        if l.stp == Some(true) {
            text.push_str(&format!("{var}.stp(true);\n"));
        }
        let set = r.settings(*b, !r.bridge_ports(*b));
        if !set.is_empty() {
            text.push_str(&format!("{var}{set};\n"));
        }
        section(&mut out, text);
    }
    let mut adopted = String::new();
    for a in &st.adopted {
        let (Some(l), Some(var)) = (live.link(*a), st.link_var.get(a)) else {
            continue;
        };
        adopted.push_str(&format!("let {var} = host().link({});\n", q(&l.name)));
        if let Some(br) = r.master_ref(*a) {
            adopted.push_str(&format!("{br}.attach({var});\n"));
        }
    }
    section(&mut out, adopted);
    for pair in &st.core_veths {
        let var = st.link_var.get(&pair.0).cloned().unwrap_or_default();
        let text = r.veth(*pair, &var, &|x| ns_expr(st, live, x));
        section(&mut out, text);
    }
    let generic: Vec<String> = st.leaves.iter().map(|s| r.leaf(*s, true)).collect();
    for p in group(&generic, 3) {
        let text = match p {
            Piece::One(i) => r.leaf(st.leaves[i], false),
            Piece::Loop { text, .. } => text,
        };
        section(&mut out, text);
    }
    // the hubs' routes and settings together, then the host's
    let mut hubs = String::new();
    for s in &st.hubs {
        let ns = ns_expr(st, live, *s);
        hubs.push_str(&r.inside(*s, &ns, true));
    }
    section(&mut out, hubs);
    for s in (0..live.spaces.len()).filter(|s| live.spaces[*s].ns == NsRef::Host) {
        let text = r.inside(s, "host()", true);
        section(&mut out, text);
    }
    notes(&mut r, &mut out);
    out
}

fn notes(r: &mut R, out: &mut String) {
    let (live, st) = (r.live, r.st);
    let name = |a: &At| live.link(*a).map(|l| l.name.clone()).unwrap_or_default();
    for a in &st.unpaired {
        r.notes.push(format!(
            "{}: veth {}: its peer is in a namespace not imported",
            live.spaces[a.0].label(),
            name(a)
        ));
    }
    for a in &st.foreign {
        let kind = live
            .link(*a)
            .and_then(|l| l.kind.clone())
            .unwrap_or_else(|| "device".into());
        r.notes.push(format!(
            "{}: {} ({kind}): netplumb makes veth pairs and bridges",
            live.spaces[a.0].label(),
            name(a)
        ));
    }
    // a leaf is rendered twice (as a loop body and alone): one note each
    let mut seen = std::collections::HashSet::new();
    r.notes.retain(|n| seen.insert(n.clone()));
    if !r.notes.is_empty() {
        out.push('\n');
        for n in &r.notes {
            out.push_str(&format!("// not imported: {}\n", n.replace('\n', " ")));
        }
    }
}
