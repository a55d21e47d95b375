//! Waiting until links are ready to carry packets: carrier is not enough.
//! After IFF_LOWER_UP the kernel's link watch still has to run (operstate
//! UP, a bridge port to forwarding), and an IPv6 address sits in duplicate
//! address detection for a while; under load the first ping after carrier
//! is lost about one run in five.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use super::LinuxKernel;
use super::rtnl::Rtnl;
use crate::kernel::{KernelError, Link, NotReady, NsState};
use crate::model::{IfName, NsRef};

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

/// Namespaces read on threads of their own once there are this many: one
/// read is mostly waiting for the kernel, and a handle per namespace beyond
/// the cached ones costs a thread to open anyway.
const PARALLEL_FROM: usize = 8;

/// Threads reading namespaces at once.
fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(2)
        .clamp(2, 8)
}

/// Links and addresses of each namespace, in order: the host through its
/// cached socket, many named ones on a few threads.
fn read_all(k: &mut LinuxKernel, nss: &[NsRef]) -> Vec<Result<NsState, KernelError>> {
    if nss.len() < PARALLEL_FROM {
        return nss.iter().map(|ns| k.observe_links(ns)).collect();
    }
    let named: Vec<NsRef> = nss.iter().filter(|n| **n != NsRef::Host).cloned().collect();
    fn itself(ns: &NsRef) -> Result<&NsRef, KernelError> {
        Ok(ns)
    }
    let mut read = super::pool::in_each_ns(&k.nsdir, &named, workers(), itself, |_| {
        super::read::read_links_addrs(&mut Rtnl::open()?)
    })
    .into_iter();
    let mut out = Vec::with_capacity(nss.len());
    for ns in nss {
        if *ns == NsRef::Host {
            out.push(k.observe_links(ns));
            continue;
        }
        let r = read
            .next()
            .unwrap_or_else(|| Err(KernelError::other("namespace read lost")));
        if let Ok(st) = &r {
            k.forget(ns);
            for l in &st.links {
                k.index.insert((ns.clone(), l.name.clone()), l.index);
            }
        }
        out.push(r);
    }
    out
}

pub(super) fn wait(
    k: &mut LinuxKernel,
    links: &[(NsRef, IfName)],
    timeout: Duration,
) -> Result<(), NotReady> {
    let t0 = Instant::now();
    let mut left: BTreeMap<NsRef, Vec<IfName>> = BTreeMap::new();
    for (ns, l) in links {
        left.entry(ns.clone()).or_default().push(l.clone());
    }
    let mut pause = Duration::from_millis(1);
    loop {
        let mut why = Vec::new();
        let nss: Vec<NsRef> = left.keys().cloned().collect();
        let states = read_all(k, &nss);
        for (ns, st) in nss.into_iter().zip(states) {
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
