//! The shape of what was read: which namespaces are leaves (their veths
//! all lead to the host or to a namespace with a bridge: the repeatable
//! part), which are hubs, which veth end declares each pair, and the names
//! the script's variables get.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::read::{At, Live};
use super::repeat::natural_key;
use crate::model::NsRef;

pub struct Structure {
    /// Named namespaces declared up front (routers, switches), in order.
    pub hubs: Vec<usize>,
    /// Namespaces each written as one unit (and looped when they repeat).
    pub leaves: Vec<usize>,
    /// Bridges, host first.
    pub bridges: Vec<At>,
    /// Veth pairs outside the leaves: (declaring end, other end).
    pub core_veths: Vec<(At, At)>,
    /// Each leaf's veth pairs: (declaring end, other end).
    pub leaf_veths: HashMap<usize, Vec<(At, At)>>,
    /// Veth ends whose peer is in a namespace not read.
    pub unpaired: Vec<At>,
    /// Host devices netplumb did not make but a bridge has as a port.
    pub adopted: Vec<At>,
    /// Devices netplumb cannot make (not veth, bridge or lo).
    pub foreign: Vec<At>,
    /// Variable names: of namespaces (by space) and links (by place).
    pub ns_var: HashMap<usize, String>,
    pub link_var: HashMap<At, String>,
}

const RESERVED: &[&str] = &[
    "let",
    "const",
    "fn",
    "if",
    "else",
    "for",
    "in",
    "while",
    "loop",
    "do",
    "until",
    "return",
    "throw",
    "try",
    "catch",
    "import",
    "export",
    "as",
    "private",
    "this",
    "true",
    "false",
    "switch",
    "break",
    "continue",
    "global",
    "is",
    "call",
    "curry",
    "print",
    "debug",
    "eval",
    "var",
    "static",
    "shared",
    "with",
    "module",
    "package",
    "super",
    "thread",
    "spawn",
    "go",
    "await",
    "async",
    "sync",
    "new",
    "use",
    "public",
    "protected",
    "default",
    "void",
    "null",
    "nil",
    "match",
    "case",
    "host",
    "netns",
    "veth",
    "bridge",
    "dnat",
    "snat",
    "masquerade",
    "i",
    "k",
    "n",
    "v",
];

/// Hands out variable names: the object's name made an identifier, with
/// a suffix where two would clash.
#[derive(Default)]
struct Names(HashSet<String>);

impl Names {
    fn take(&mut self, name: &str, ns: Option<&str>) -> String {
        let ident = |s: &str| {
            let mut id: String = s
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            if id.is_empty() || id.starts_with(|c: char| c.is_ascii_digit()) {
                id.insert_str(0, "l_");
            }
            if RESERVED.contains(&id.as_str()) {
                id.push('_');
            }
            id
        };
        let mut tries = vec![ident(name)];
        if let Some(ns) = ns {
            tries.push(ident(&format!("{ns}_{name}")));
        }
        for t in &tries {
            if self.0.insert(t.clone()) {
                return t.clone();
            }
        }
        let base = tries.pop().unwrap_or_default();
        (2..)
            .map(|n| format!("{base}_{n}"))
            .find(|t| self.0.insert(t.clone()))
            .unwrap_or(base)
    }
}

fn ns_name(live: &Live, s: usize) -> Option<String> {
    match &live.spaces[s].ns {
        NsRef::Host => None,
        NsRef::Named(n) => Some(n.to_string()),
    }
}

pub fn analyse(live: &Live) -> Structure {
    let is_host = |s: usize| live.spaces[s].ns == NsRef::Host;
    let order = |s: usize| natural_key(&ns_name(live, s).unwrap_or_default());
    let with_bridge: BTreeSet<usize> = (0..live.spaces.len())
        .filter(|s| live.spaces[*s].st.links.iter().any(|l| l.is_bridge()))
        .collect();
    let mut leaves: Vec<usize> = (0..live.spaces.len())
        .filter(|s| !is_host(*s) && !with_bridge.contains(s))
        .filter(|s| {
            live.spaces[*s]
                .st
                .links
                .iter()
                .filter(|l| l.is_veth())
                .all(|l| match live.peers.get(&(*s, l.index)) {
                    Some((b, _)) => *b == *s || is_host(*b) || with_bridge.contains(b),
                    None => true,
                })
        })
        .collect();
    leaves.sort_by_key(|s| order(*s));
    let leaf_set: HashSet<usize> = leaves.iter().copied().collect();
    let mut hubs: Vec<usize> = (0..live.spaces.len())
        .filter(|s| !is_host(*s) && !leaf_set.contains(s))
        .collect();
    hubs.sort_by_key(|s| order(*s));

    let mut st = Structure {
        hubs,
        leaves,
        bridges: Vec::new(),
        core_veths: Vec::new(),
        leaf_veths: HashMap::new(),
        unpaired: Vec::new(),
        adopted: Vec::new(),
        foreign: Vec::new(),
        ns_var: HashMap::new(),
        link_var: HashMap::new(),
    };
    // spaces in script order: host, hubs, leaves
    let mut spaces: Vec<usize> = (0..live.spaces.len()).filter(|s| is_host(*s)).collect();
    spaces.extend(&st.hubs);
    spaces.extend(&st.leaves);
    // which end declares a pair: the host's, then the namespace with the
    // most veths (a router's, not each host's), then the first in order
    let veths = |s: usize| {
        live.spaces[s]
            .st
            .links
            .iter()
            .filter(|l| l.is_veth())
            .count()
    };
    let mut by_rank = spaces.clone();
    by_rank.sort_by_key(|s| (!is_host(*s), std::cmp::Reverse(veths(*s)), order(*s)));
    let rank: HashMap<usize, usize> = by_rank.iter().enumerate().map(|(r, s)| (*s, r)).collect();
    let mut names = Names::default();
    for s in st.hubs.clone() {
        let n = ns_name(live, s).unwrap_or_default();
        st.ns_var.insert(s, names.take(&n, None));
    }
    for &s in &spaces {
        let space = &live.spaces[s];
        for l in &space.st.links {
            let at = (s, l.index);
            if l.is_bridge() {
                st.bridges.push(at);
            } else if l.is_veth() {
                match live.peers.get(&at) {
                    None => st.unpaired.push(at),
                    Some(&p) => {
                        // the host end first, then a hub's, then by order
                        let key = |a: At| {
                            let name = live.link(a).map(|l| l.name.clone()).unwrap_or_default();
                            (rank.get(&a.0).copied().unwrap_or(usize::MAX), name)
                        };
                        if key(at) > key(p) {
                            continue;
                        }
                        let leaf = [p.0, s].into_iter().find(|x| leaf_set.contains(x));
                        match leaf {
                            Some(lf) => st.leaf_veths.entry(lf).or_default().push((at, p)),
                            None => st.core_veths.push((at, p)),
                        }
                    }
                }
            } else if l.name != "lo" {
                let port_of_bridge = l
                    .master
                    .and_then(|m| space.st.link_by_index(m))
                    .is_some_and(|b| b.is_bridge());
                if is_host(s) && port_of_bridge {
                    st.adopted.push(at);
                } else if !is_host(s) {
                    st.foreign.push(at);
                }
            }
        }
    }
    // names for what lives outside the leaves; leaves name their own
    let link_name = |a: At| live.link(a).map(|l| l.name.clone()).unwrap_or_default();
    for a in st.bridges.clone().into_iter().chain(st.adopted.clone()) {
        let v = names.take(&link_name(a), ns_name(live, a.0).as_deref());
        st.link_var.insert(a, v);
    }
    for (a, _) in st.core_veths.clone() {
        let v = names.take(&link_name(a), ns_name(live, a.0).as_deref());
        st.link_var.insert(a, v);
    }
    for s in st.leaves.clone() {
        let n = ns_name(live, s).unwrap_or_default();
        st.ns_var.insert(s, names.take(&n, None));
        for (a, _) in st.leaf_veths.get(&s).cloned().unwrap_or_default() {
            let v = names.take(&link_name(a), ns_name(live, a.0).as_deref());
            st.link_var.insert(a, v);
        }
    }
    st
}
