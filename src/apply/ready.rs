//! Waiting until links are ready to carry packets: carrier is not enough.
//! After IFF_LOWER_UP the kernel's link watch still has to run (operstate
//! UP, a bridge port to forwarding), and an IPv6 address sits in duplicate
//! address detection for a while; under load the first ping after carrier
//! is lost about one run in five.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::LinuxKernel;
use crate::kernel::{NotReady, NsState};
use crate::model::{IfName, NsRef};

/// Why `name` in `st` is not ready yet, or None when it is.
fn pending(st: &NsState, name: &str) -> Option<String> {
    let Some(l) = st.link(name) else {
        return Some("gone".into());
    };
    let ports_up = st.links.iter().any(|p| p.master == Some(l.index) && p.up);
    if !l.is_ready(ports_up) {
        return Some(match l.port_state {
            Some(s) if l.oper == "UP" => format!("bridge port state {s}, not forwarding"),
            _ => format!("operstate {}", l.oper),
        });
    }
    // Only where the link carries IPv6 of its own: a link-local address in
    // DAD does not hold up an IPv4 topology.
    let addrs = st.addrs_of(name);
    let v6 = addrs.iter().any(|a| a.cidr.is_v6() && a.scope == "global");
    if v6 && let Some(a) = addrs.iter().find(|a| a.cidr.is_v6() && a.tentative) {
        return Some(format!(
            "{} tentative (duplicate address detection)",
            a.cidr
        ));
    }
    None
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
        for ns in nss {
            let st = match k.observe_links(&ns) {
                Ok(st) => st,
                // The namespace went away: nothing in it to wait for.
                Err(_) => {
                    left.remove(&ns);
                    continue;
                }
            };
            if let Some(names) = left.get_mut(&ns) {
                names.retain(|n| match pending(&st, n.as_str()) {
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
