//! Waiting until links are ready to carry packets: carrier is not enough.
//! After IFF_LOWER_UP the kernel's link watch still has to run (operstate
//! UP, a bridge port to forwarding), and an IPv6 address sits in duplicate
//! address detection for a while; under load the first ping after carrier
//! is lost about one run in five.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage as M;
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};

use super::LinuxKernel;
use super::rtnl::Rtnl;
use crate::kernel::{KernelError, Link, NotReady, NsState};
use crate::model::{IfName, NsRef};
use crate::op::{LinkChange, Op};

/// A namespace's links by name, and which masters have a port up: what
/// each readiness question asks, built once per read (the host of a
/// thousand veths would otherwise be scanned once per link asked about).
struct Index<'a> {
    st: &'a NsState,
    by_name: HashMap<&'a str, &'a Link>,
    ports_up: HashSet<u32>,
}

impl<'a> Index<'a> {
    fn new(st: &'a NsState) -> Self {
        Self {
            st,
            by_name: st.links.iter().map(|l| (l.name.as_str(), l)).collect(),
            ports_up: st
                .links
                .iter()
                .filter(|p| p.up)
                .filter_map(|p| p.master)
                .collect(),
        }
    }

    /// Why `name` is not ready yet, or None when it is.
    fn pending(&self, name: &str) -> Option<String> {
        let Some(l) = self.by_name.get(name) else {
            return Some("gone".into());
        };
        if !l.is_ready(self.ports_up.contains(&l.index)) {
            return Some(match l.port_state {
                Some(s) if l.oper == "UP" => format!("bridge port state {s}, not forwarding"),
                _ => format!("operstate {}", l.oper),
            });
        }
        // Only where the link carries IPv6 of its own: a link-local address in
        // DAD does not hold up an IPv4 topology.
        let mut addrs = self.st.addrs.iter().filter(|a| a.index == l.index);
        let v6 = addrs.clone().any(|a| a.cidr.is_v6() && a.scope == "global");
        if v6 && let Some(a) = addrs.find(|a| a.cidr.is_v6() && a.tentative) {
            return Some(format!(
                "{} tentative (duplicate address detection)",
                a.cidr
            ));
        }
        None
    }
}

/// Links found ready right after their namespace's requests, asked on the
/// socket the in-namespace phase already has there: the wait need not
/// enter a thousand namespaces again for what it would find the same.
#[derive(Default)]
pub(super) struct SeenReady(HashSet<(NsRef, String)>);

impl SeenReady {
    /// Ops about to be sent change what was seen of their links.
    pub(super) fn forget_touched(&mut self, ops: &[Op]) {
        if self.0.is_empty() {
            return;
        }
        for op in ops {
            match op {
                Op::SetLink { ns, name, .. }
                | Op::DelLink { ns, name, .. }
                | Op::MoveLink { ns, name, .. }
                | Op::RenameLink { ns, name, .. } => {
                    self.0.remove(&(ns.clone(), name.to_string()));
                }
                Op::AddVeth {
                    ns,
                    name,
                    peer_ns,
                    peer,
                    ..
                } => {
                    self.0.remove(&(ns.clone(), name.to_string()));
                    self.0.remove(&(peer_ns.clone(), peer.to_string()));
                }
                _ => {}
            }
        }
    }

    pub(super) fn record(&mut self, ns: &NsRef, ready: Vec<String>) {
        self.0.extend(ready.into_iter().map(|n| (ns.clone(), n)));
    }

    /// What was seen, once: a later run asks again.
    fn take(&mut self) -> HashSet<(NsRef, String)> {
        std::mem::take(&mut self.0)
    }
}

/// The link an op brings up, where the wait would ask about it.
pub(super) fn brings_up(op: &Op) -> Option<&IfName> {
    match op {
        Op::SetLink {
            name,
            change: LinkChange::Up(true),
            ..
        } => Some(name),
        Op::AddVeth { name, with, .. } if with.up => Some(name),
        _ => None,
    }
}

/// Which of `names` are ready now, asked on `rt` (a namespace's socket).
pub(super) fn ready_now(rt: &mut Rtnl, names: &[IfName]) -> Result<Vec<String>, KernelError> {
    let st = read_one(rt, names, false)?;
    let ix = Index::new(&st);
    Ok(names
        .iter()
        .filter(|n| ix.pending(n.as_str()).is_none() && ix.by_name.contains_key(n.as_str()))
        .map(|n| n.to_string())
        .collect())
}

/// Namespaces read on threads of their own once there are this many: one
/// read is mostly waiting for the kernel, and a handle per namespace beyond
/// the cached ones costs a thread to open anyway.
const PARALLEL_FROM: usize = 8;

/// The links named, each asked for alone: a single-link RTM_GETLINK has
/// the kernel run that device's pending link-watch event first (operstate,
/// and a bridge port's move to forwarding; since 6.8), where a dump reports
/// whatever the link watch got to — under a thousand new veths, up to its
/// next batch a second later. Gone links (ENODEV) are left out.
fn ask_by_name(rt: &mut Rtnl, names: &[&IfName]) -> Result<Vec<Link>, KernelError> {
    let asks = names
        .iter()
        .map(|n| {
            let mut m = LinkMessage::default();
            m.attributes.push(LinkAttribute::IfName(n.to_string()));
            (M::GetLink(m), 0)
        })
        .collect();
    let mut out = Vec::new();
    for r in rt.request_many(asks) {
        match r {
            Ok(ms) => out.extend(ms.iter().filter_map(|m| match m {
                M::NewLink(l) => Some(super::read::link(l)),
                _ => None,
            })),
            Err(e) if e.errno == Some(libc::ENODEV) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// What one read of a namespace answers: the links asked about (all of
/// them, or only those), and the IPv6 addresses (the only ones DAD holds).
fn read_one(rt: &mut Rtnl, names: &[IfName], all: bool) -> Result<NsState, KernelError> {
    let mut st = NsState::default();
    if !all {
        let asked: Vec<&IfName> = names.iter().collect();
        st.links = ask_by_name(rt, &asked)?;
        // A bridge gets carrier from its ports' move to forwarding, which
        // the asks above may just have made: ask again for those still
        // without it, so that their own link-watch event runs too.
        let dark = |l: &Link| l.is_bridge() && l.up && l.oper != "UP";
        let waiting: Vec<&IfName> = names
            .iter()
            .filter(|n| st.links.iter().any(|l| l.name == n.as_str() && dark(l)))
            .collect();
        if !waiting.is_empty() {
            let again = ask_by_name(rt, &waiting)?;
            st.links
                .retain(|l| !again.iter().any(|a| a.index == l.index));
            st.links.extend(again);
        }
        // A bridge that is up without carrier is ready when none of its
        // ports is up: that needs every link.
        if st.links.iter().any(dark) {
            return read_one(rt, names, true);
        }
    } else {
        st.links = super::read::read_links(rt)?;
    }
    let asked: HashSet<&str> = names.iter().map(IfName::as_str).collect();
    let ready: Vec<u32> = {
        let ix = Index::new(&st);
        st.links
            .iter()
            .filter(|l| {
                asked.contains(l.name.as_str()) && l.is_ready(ix.ports_up.contains(&l.index))
            })
            .map(|l| l.index)
            .collect()
    };
    if !ready.is_empty() {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet6;
        for a in rt.dump(M::GetAddress(m))? {
            if let M::NewAddress(a) = a
                && ready.contains(&a.header.index)
                && let Some(x) = super::read::addr(&a)
            {
                st.addrs.push(x);
            }
        }
    }
    Ok(st)
}

/// Each namespace's state as far as its pending links need, in order, on a
/// few threads when there are many (the host's own read among them, so
/// that it overlaps the others). `all`: whether a namespace is read whole.
fn read_all(
    k: &mut LinuxKernel,
    nss: &[(NsRef, Vec<IfName>, bool)],
) -> Vec<Result<NsState, KernelError>> {
    let out: Vec<Result<NsState, KernelError>> = if nss.len() < PARALLEL_FROM {
        nss.iter()
            .map(|(ns, names, all)| read_one(k.conns.rtnl(&k.nsdir, ns)?, names, *all))
            .collect()
    } else {
        super::pool::in_each_ns(
            &k.nsdir,
            nss,
            super::pool::workers(),
            |(ns, _, _)| Ok(ns),
            |(_, names, all)| read_one(&mut Rtnl::open()?, names, *all),
        )
    };
    for ((ns, _, all), r) in nss.iter().zip(&out) {
        if let Ok(st) = r {
            if *all {
                k.index.relearn(ns, &st.links);
            } else {
                k.index.learn(ns, &st.links);
            }
        }
    }
    out
}

pub(super) fn wait(
    k: &mut LinuxKernel,
    links: &[(NsRef, IfName)],
    timeout: Duration,
) -> Result<(), NotReady> {
    let t0 = Instant::now();
    let seen = k.ready_seen.take();
    let mut left: BTreeMap<NsRef, Vec<IfName>> = BTreeMap::new();
    for (ns, l) in links {
        if !seen.contains(&(ns.clone(), l.to_string())) {
            left.entry(ns.clone()).or_default().push(l.clone());
        }
    }
    let mut pause = Duration::from_millis(1);
    loop {
        let mut why = Vec::new();
        let nss: Vec<(NsRef, Vec<IfName>, bool)> = left
            .iter()
            .map(|(ns, names)| (ns.clone(), names.clone(), false))
            .collect();
        let states = read_all(k, &nss);
        for ((ns, _, _), st) in nss.into_iter().zip(states) {
            let st = match st {
                Ok(st) => st,
                // The namespace went away: nothing in it to wait for.
                Err(_) => {
                    left.remove(&ns);
                    continue;
                }
            };
            let ix = Index::new(&st);
            if let Some(names) = left.get_mut(&ns) {
                names.retain(|n| match ix.pending(n.as_str()) {
                    Some(w) if w != "gone" => {
                        why.push(match &ns {
                            NsRef::Host => format!("{n}: {w}"),
                            NsRef::Named(x) => format!("{x}:{n}: {w}"),
                        });
                        true
                    }
                    _ => false,
                });
                if names.is_empty() {
                    left.remove(&ns);
                }
            }
        }
        if left.is_empty() {
            return Ok(());
        }
        if t0.elapsed() >= timeout {
            return Err(NotReady {
                waited: t0.elapsed(),
                pending: why,
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
