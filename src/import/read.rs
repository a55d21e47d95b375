//! Reading the live kernel for `import`, through the `Kernel` trait only:
//! each chosen namespace's links, addresses, routes, nf_tables tables and
//! the sysctls that differ from a fresh namespace's, and every veth end
//! matched with its peer (IFLA_LINK names the peer's ifindex in the peer's
//! namespace, IFLA_LINK_NETNSID that namespace as this one numbers it).

use std::collections::HashMap;

use super::ImportError;
use crate::kernel::{Kernel, Link, NsState};
use crate::model::{NsName, NsRef};

/// The per-namespace sysctls `import` compares with a fresh namespace's:
/// the ones topologies set (forwarding, reverse-path filtering, proxy ARP).
pub const SYSCTLS: &[&str] = &[
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.rp_filter",
    "net.ipv4.conf.all.proxy_arp",
    "net.ipv4.conf.all.route_localnet",
    "net.ipv6.conf.all.disable_ipv6",
];

/// One namespace as read.
pub struct Space {
    pub ns: NsRef,
    pub st: NsState,
    pub tables: Vec<netplumb_nft::ReadBack>,
    /// (key, value) where the value differs from a fresh namespace's.
    pub sysctls: Vec<(String, String)>,
}

impl Space {
    pub fn label(&self) -> String {
        match &self.ns {
            NsRef::Host => "host".into(),
            NsRef::Named(n) => format!("netns {n}"),
        }
    }
}

/// A link's place: (space index, ifindex).
pub type At = (usize, u32);

pub struct Live {
    pub spaces: Vec<Space>,
    /// Each veth end read, to its peer's place (when the peer was read too).
    pub peers: HashMap<At, At>,
}

impl Live {
    pub fn link(&self, at: At) -> Option<&Link> {
        self.spaces.get(at.0)?.st.link_by_index(at.1)
    }
}

/// Which namespaces to read: the host and every named one unless narrowed.
pub struct Selection {
    pub netns: Vec<String>,
    pub host: bool,
}

fn chosen(k: &mut dyn Kernel, sel: &Selection) -> Result<Vec<NsRef>, ImportError> {
    let all = k
        .netns_list()
        .map_err(ImportError::kernel("list namespaces"))?;
    let everything = sel.netns.is_empty() && !sel.host;
    let mut out = Vec::new();
    if everything || sel.host {
        out.push(NsRef::Host);
    }
    if everything {
        out.extend(all.into_iter().map(NsRef::Named));
        return Ok(out);
    }
    for n in &sel.netns {
        let name = NsName::new(n).map_err(|e| ImportError::Usage(e.to_string()))?;
        if !all.contains(&name) {
            return Err(ImportError::Usage(format!(
                "no namespace named '{n}' (ip netns list shows the ones there are)"
            )));
        }
        out.push(NsRef::Named(name));
    }
    Ok(out)
}

pub fn read(k: &mut dyn Kernel, sel: &Selection) -> Result<Live, ImportError> {
    let mut spaces = Vec::new();
    for ns in chosen(k, sel)? {
        let what = format!("read {ns}");
        let st = k.observe(&ns).map_err(ImportError::kernel(&what))?;
        let tables = k.nft_tables(&ns).map_err(ImportError::kernel(&what))?;
        let mut sysctls = Vec::new();
        for key in SYSCTLS {
            let now = k.sysctl_get(&ns, key).map_err(ImportError::kernel(&what))?;
            let fresh = k.sysctl_fresh(key).map_err(ImportError::kernel(&what))?;
            if let (Some(now), Some(fresh)) = (now, fresh)
                && now != fresh
            {
                sysctls.push(((*key).to_string(), now));
            }
        }
        spaces.push(Space {
            ns,
            st,
            tables,
            sysctls,
        });
    }
    let peers = pair(k, &spaces)?;
    Ok(Live { spaces, peers })
}

/// Match every veth end with its peer. The peer's ifindex alone usually
/// decides (the candidate must point back); when several namespaces have
/// a candidate, the namespace ids decide.
fn pair(k: &mut dyn Kernel, spaces: &[Space]) -> Result<HashMap<At, At>, ImportError> {
    let mut peers = HashMap::new();
    for (a, s) in spaces.iter().enumerate() {
        for l in s.st.links.iter().filter(|l| l.is_veth()) {
            let Some(p) = l.peer else { continue };
            let points_back = |b: &Space| {
                b.st.link_by_index(p)
                    .is_some_and(|q| q.is_veth() && q.peer == Some(l.index))
            };
            let Some(id) = l.peer_netnsid else {
                if points_back(s) {
                    peers.insert((a, l.index), (a, p));
                }
                continue;
            };
            let cands: Vec<usize> = (0..spaces.len())
                .filter(|b| *b != a && points_back(&spaces[*b]))
                .collect();
            let found = match cands.as_slice() {
                [] => None,
                [b] => Some(*b),
                _ => {
                    let mut hit = None;
                    for b in cands {
                        let nsid = k
                            .nsid(&s.ns, &spaces[b].ns)
                            .map_err(ImportError::kernel("namespace ids"))?;
                        if nsid == Some(id) {
                            hit = Some(b);
                            break;
                        }
                    }
                    hit
                }
            };
            if let Some(b) = found {
                peers.insert((a, l.index), (b, p));
            }
        }
    }
    Ok(peers)
}
