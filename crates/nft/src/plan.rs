//! Turns a NatTable into the concrete objects both the netlink batch and the
//! rendered script are made from, so the two can never disagree.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::filter::{self, FilterPlan};
use crate::loss::{self, LossPlan};
use crate::model::{DnatMapping, L4Proto, NatRule, NatTable};
use crate::sys::*;

pub(crate) const PREROUTING: &str = "prerouting";
pub(crate) const OUTPUT: &str = "output";
pub(crate) const POSTROUTING: &str = "postrouting";
pub(crate) const FORWARD: &str = "forward";
/// 127.0.0.0/8, the source of connections to 127.0.0.1
pub(crate) const LOCALNET: IpNet = IpNet::V4(ipnet::Ipv4Net::new_assert(
    std::net::Ipv4Addr::new(127, 0, 0, 0),
    8,
));

/// A base chain: where it hooks, at which priority, of which type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BaseChain {
    pub name: String,
    pub hook: u32,
    pub prio: i32,
    pub ty: &'static str,
    /// the device of an ingress chain
    pub dev: Option<String>,
}

impl BaseChain {
    fn new(name: &str, hook: u32, prio: i32, ty: &'static str) -> Self {
        BaseChain {
            name: name.into(),
            hook,
            prio,
            ty,
            dev: None,
        }
    }

    /// `type nat hook prerouting priority dstnat; policy accept;`, as nft lists it.
    pub fn spec_text(&self) -> String {
        let hook = match self.hook {
            NF_INET_PRE_ROUTING => "prerouting",
            NF_INET_LOCAL_IN => "input",
            NF_INET_FORWARD => "forward",
            NF_INET_LOCAL_OUT => "output",
            NF_INET_POST_ROUTING => "postrouting",
            _ => "ingress",
        };
        let prio = match (self.ty, self.hook, self.prio) {
            ("nat", NF_INET_PRE_ROUTING, -100) => "dstnat".to_string(),
            ("nat", NF_INET_POST_ROUTING, 100) => "srcnat".to_string(),
            ("filter", _, 0) => "filter".to_string(),
            (_, _, p) => p.to_string(),
        };
        let dev = self
            .dev
            .as_ref()
            .map(|d| format!(" device \"{d}\""))
            .unwrap_or_default();
        format!(
            "type {} hook {hook}{dev} priority {prio}; policy accept;",
            self.ty
        )
    }
}

/// The NAT base chains, in the order they are made.
pub(crate) fn nat_chains() -> [BaseChain; 3] {
    [
        BaseChain::new(PREROUTING, NF_INET_PRE_ROUTING, -100, "nat"),
        BaseChain::new(OUTPUT, NF_INET_LOCAL_OUT, -100, "nat"),
        BaseChain::new(POSTROUTING, NF_INET_POST_ROUTING, 100, "nat"),
    ]
}

pub(crate) fn ingress_chain(name: &str, dev: &str) -> BaseChain {
    BaseChain {
        dev: Some(dev.into()),
        ..BaseChain::new(name, NF_INET_INGRESS, 0, "filter")
    }
}

pub(crate) fn forward_chain() -> BaseChain {
    BaseChain::new(FORWARD, NF_INET_FORWARD, 0, "filter")
}

/// One named map plus the rule (in prerouting and output) that looks it up.
#[derive(Debug)]
pub(crate) struct MapPlan {
    pub name: String,
    pub v6: bool,
    pub proto: L4Proto,
    pub daddr: bool,
    pub interval: bool,
    /// data is addr . port (else addr only: "keep the original port")
    pub data_port: bool,
    pub iif: Option<String>,
    pub elems: Vec<ElemPlan>,
}

impl MapPlan {
    /// The size a big hash map declares (`size N`, NFTA_SET_DESC_SIZE): the
    /// kernel then makes its hash that size at once instead of growing it
    /// while the elements go in (half the kernel's time for 100,000 of
    /// them). The table is replaced whole on any change, so the size is
    /// always its element count.
    pub fn size_hint(&self) -> Option<u32> {
        (!self.interval && self.elems.len() >= SIZE_HINT_FROM)
            .then(|| u32::try_from(self.elems.len()).ok())
            .flatten()
    }
}

/// Maps of this many elements declare their size.
const SIZE_HINT_FROM: usize = 1000;

#[derive(Debug, Clone)]
pub(crate) struct ElemPlan {
    pub daddr: Option<IpAddr>,
    pub lo: u16,
    pub hi: u16,
    pub to: IpAddr,
    pub to_port: Option<u16>,
    pub tag: usize,
}

#[derive(Debug)]
pub(crate) struct SrcPlan {
    pub src: IpNet,
    pub kind: SrcKind,
    pub oif: Option<String>,
    pub tag: usize,
}

/// What a postrouting rule does with traffic from `src`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SrcKind {
    /// leaving the subnet: masquerade
    Masquerade,
    /// leaving the subnet: snat to the address
    Snat(IpAddr),
    /// to the subnet itself, DNAT'd: masquerade
    Hairpin,
    /// from 127.0.0.0/8, DNAT'd: masquerade
    Localhost,
}

#[derive(Debug)]
pub(crate) struct Plan {
    pub maps: Vec<MapPlan>,
    pub src_rules: Vec<SrcPlan>,
    pub filter: FilterPlan,
    pub loss: Vec<LossPlan>,
}

impl MapPlan {
    pub fn first_tag(&self) -> Option<usize> {
        self.elems.first().map(|e| e.tag)
    }
}

type GroupKey = (bool, L4Proto, bool, Option<String>, bool, bool);

fn group_key(m: &DnatMapping) -> GroupKey {
    let interval = m.is_range();
    (
        m.is_v6(),
        m.proto,
        m.daddr.is_some(),
        m.iif.clone(),
        interval,
        m.dest_port().is_some(),
    )
}

fn map_name(k: &GroupKey, used: &mut HashSet<String>) -> String {
    let (v6, proto, daddr, iif, interval, data_port) = k;
    let mut n = format!("dnat_{}{}", proto.name(), if *v6 { "6" } else { "" });
    if *daddr {
        n.push_str("_daddr");
    }
    if *interval {
        n.push_str(if *data_port {
            "_ranges_to_port"
        } else {
            "_ranges"
        });
    }
    if let Some(i) = iif {
        n.push_str("_iif_");
        n.extend(
            i.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    let base = n.clone();
    let mut k = 2;
    while !used.insert(n.clone()) {
        n = format!("{base}_{k}");
        k += 1;
    }
    n
}

/// Does `m` belong to the map of key `k`? ([`group_key`] without its clone.)
fn in_group(k: &GroupKey, m: &DnatMapping) -> bool {
    k.0 == m.is_v6()
        && k.1 == m.proto
        && k.2 == m.daddr.is_some()
        && k.3.as_deref() == m.iif.as_deref()
        && k.4 == m.is_range()
        && k.5 == m.dest_port().is_some()
}

/// What tells two mappings of one map apart: the rest of the mapping is
/// the map's key, so equal idents within a map are exact duplicates.
#[derive(PartialEq, Eq, Hash)]
struct Ident {
    daddr: Option<IpAddr>,
    ports: (u16, u16),
    to: IpAddr,
    to_port: Option<u16>,
}

/// FxHash (as in rustc): the duplicate check hashes every mapping of a
/// 100,000-element map on every plan, and SipHash's DoS resistance buys
/// nothing against the script's own mappings.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Fx {
    #[inline]
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        for b in chunks.remainder() {
            self.add(u64::from(*b));
        }
    }
    fn write_u8(&mut self, v: u8) {
        self.add(v.into());
    }
    fn write_u16(&mut self, v: u16) {
        self.add(v.into());
    }
    fn write_u32(&mut self, v: u32) {
        self.add(v.into());
    }
    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxSet<T> = HashSet<T, std::hash::BuildHasherDefault<Fx>>;

fn ident_of(e: &ElemPlan) -> Ident {
    Ident {
        daddr: e.daddr,
        ports: (e.lo, e.hi),
        to: e.to,
        to_port: e.to_port,
    }
}

/// The duplicate check of one map. While the keys come in increasing
/// order (as a loop declares them) no mapping can repeat an earlier one and
/// nothing is hashed; the first key out of order starts a set of all.
enum Seen {
    Increasing,
    Set(FxSet<Ident>),
}

impl Seen {
    /// Is `m` new in the map whose elements so far are `elems`?
    fn first(&mut self, elems: &[ElemPlan], m: &DnatMapping) -> bool {
        let ident = Ident {
            daddr: m.daddr,
            ports: m.ports,
            to: m.to_addr,
            to_port: m.dest_port(),
        };
        if let Seen::Increasing = self {
            // equal idents have equal keys: a greater key is a new mapping
            match elems.last() {
                None => return true,
                Some(l) if (l.daddr, l.lo, l.hi) < (m.daddr, m.ports.0, m.ports.1) => {
                    return true;
                }
                Some(_) => *self = Seen::Set(elems.iter().map(ident_of).collect()),
            }
        }
        match self {
            Seen::Set(set) => set.insert(ident),
            Seen::Increasing => true,
        }
    }
}

pub(crate) fn plan(t: &NatTable) -> Plan {
    // each map with the idents of its elements (validate() allows exact
    // duplicates; the kernel would not)
    let mut groups: Vec<(GroupKey, Vec<ElemPlan>, Seen)> = Vec::new();
    let mut index: HashMap<GroupKey, usize> = HashMap::new();
    // consecutive mappings mostly share a map: try the last one first
    let mut last: Option<usize> = None;
    let mut src_rules = Vec::new();
    for r in &t.rules {
        match r {
            NatRule::Masquerade { src, oif, tag } => src_rules.push(SrcPlan {
                src: src.trunc(),
                kind: SrcKind::Masquerade,
                oif: oif.clone(),
                tag: *tag,
            }),
            NatRule::Snat { src, to, oif, tag } => src_rules.push(SrcPlan {
                src: src.trunc(),
                kind: SrcKind::Snat(*to),
                oif: oif.clone(),
                tag: *tag,
            }),
            NatRule::Hairpin { subnet, tag } => src_rules.push(SrcPlan {
                src: subnet.trunc(),
                kind: SrcKind::Hairpin,
                oif: None,
                tag: *tag,
            }),
            NatRule::LocalhostMasquerade { oif, tag } => src_rules.push(SrcPlan {
                src: LOCALNET,
                kind: SrcKind::Localhost,
                oif: Some(oif.clone()),
                tag: *tag,
            }),
            NatRule::Dnat(m) => {
                let gi = match last {
                    Some(i) if in_group(&groups[i].0, m) => i,
                    _ => {
                        let k = group_key(m);
                        *index.entry(k.clone()).or_insert_with(|| {
                            groups.push((k, Vec::new(), Seen::Increasing));
                            groups.len() - 1
                        })
                    }
                };
                last = Some(gi);
                let (_, elems, seen) = &mut groups[gi];
                if !seen.first(elems, m) {
                    continue;
                }
                elems.push(ElemPlan {
                    daddr: m.daddr,
                    lo: m.ports.0,
                    hi: m.ports.1,
                    to: m.to_addr,
                    to_port: m.dest_port(),
                    tag: m.tag,
                });
            }
        }
    }
    let mut groups: Vec<(GroupKey, Vec<ElemPlan>)> =
        groups.into_iter().map(|(k, e, _)| (k, e)).collect();
    // Most specific rules first: a nat verdict ends the chain, so a generic
    // port map placed earlier would shadow a daddr- or iif-specific one.
    groups.sort_by_key(|(k, _)| (!k.2, k.3.is_none()));
    let mut used = HashSet::new();
    let maps: Vec<MapPlan> = groups
        .into_iter()
        .map(|(k, mut elems)| {
            if k.4 {
                elems.sort_by_key(|e| (e.daddr, e.lo));
            }
            let name = map_name(&k, &mut used);
            let (v6, proto, daddr, iif, interval, data_port) = k;
            MapPlan {
                name,
                v6,
                proto,
                daddr,
                interval,
                data_port,
                iif,
                elems,
            }
        })
        .collect();
    // filter set ids follow the DNAT maps' (each map's id is its index + 1)
    let filter = filter::plan(&t.filter, maps.len() as u32 + 1);
    Plan {
        maps,
        src_rules,
        filter,
        loss: loss::plan(&t.loss),
    }
}
