//! VNI collisions on this machine (issue 19), refused before any change:
//! a crossing of this topology whose VNI and UDP port another topology
//! here already uses (its up-record says what it asked for), or a vxlan
//! in the host namespace that is not this topology's (its socket is the
//! one ours would share: the kernel would refuse ours half-way).

use crate::kernel::NsState;
use crate::model::NsRef;
use crate::topo::{LinkKind, Topology};

use super::SiteError;

/// The crossings of `topo`: (VNI, port, where, the script line).
fn crossings(topo: &Topology) -> Vec<(u32, u16, String, String)> {
    topo.links()
        .filter_map(|(_, l)| match &l.kind {
            LinkKind::Vxlan {
                spec,
                cross: Some(_),
                ..
            } => Some((
                spec.id,
                spec.port,
                format!("{}:{}", l.ns, l.name),
                l.pos.to_string(),
            )),
            _ => None,
        })
        .collect()
}

/// Does an intent value (`vxlan id N … dstport P at …`) use `vni`+`port`?
fn uses(value: &str, vni: u32, port: u16) -> bool {
    value.starts_with(&format!("vxlan id {vni} ")) && value.contains(&format!(" dstport {port}"))
}

/// What every other topology of `world` asked for when it was last
/// brought up.
pub fn others(world: &crate::ledger::World) -> Vec<(String, crate::plan::Intent)> {
    world
        .others
        .iter()
        .filter_map(|(n, _)| crate::uprecord::UpRecord::load(n).map(|r| (n.clone(), r.intent)))
        .collect()
}

/// `others`: (topology, what its last `up` asked for) of every other
/// topology here; `host`: the host namespace as read now.
pub fn check(
    topo: &Topology,
    others: &[(String, crate::plan::Intent)],
    host: Option<&NsState>,
) -> Result<(), SiteError> {
    for (vni, port, at, line) in crossings(topo) {
        for (name, intent) in others {
            if let Some((key, _)) = intent.iter().find(|(_, v)| uses(v, vni, port)) {
                return Err(SiteError::Collision {
                    msg: format!(
                        "VNI {vni} (port {port}) of {at} ({line}) is already used on this machine by topology '{name}' ({key})"
                    ),
                });
            }
        }
        let ours = |name: &str| {
            topo.links()
                .any(|(_, l)| l.ns == NsRef::Host && l.name.as_str() == name)
        };
        for l in host.map(|h| h.links.as_slice()).unwrap_or_default() {
            let Some(info) = l.info.as_deref() else {
                continue;
            };
            if l.kind.as_deref() == Some("vxlan")
                && !ours(&l.name)
                && info.starts_with(&format!("id {vni} "))
                && info.contains(&format!(" dstport {port}"))
            {
                return Err(SiteError::Collision {
                    msg: format!(
                        "VNI {vni} (port {port}) of {at} ({line}) is already used on this machine by vxlan {} in the host namespace, not this topology's",
                        l.name
                    ),
                });
            }
        }
    }
    Ok(())
}
