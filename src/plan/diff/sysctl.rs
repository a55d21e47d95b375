//! Sysctls: set where the kernel differs, recorded with the value from
//! before any netplumb topology set them, shared between topologies that
//! set the same value, refused when another topology needs another value.

use std::collections::{BTreeMap, HashMap};

use super::{Cx, DiffError, Step, err};
use crate::kernel::{Kernel, SysctlScope};
use crate::ledger::{Entry, SysctlKey, SysctlValue};
use crate::model::NsRef;
use crate::op::Op;
use crate::topo::Topology;

pub(super) fn sysctls(
    topo: &Topology,
    kernel: &mut dyn Kernel,
    cx: &mut Cx,
) -> Result<(), DiffError> {
    // Last write per (ns, key) wins, in first-seen order.
    let mut last: BTreeMap<(NsRef, String), usize> = BTreeMap::new();
    let mut order = Vec::new();
    for (i, s) in topo.sysctls().iter().enumerate() {
        let k = (s.ns.clone(), s.key.clone());
        if last.insert(k.clone(), i).is_none() {
            order.push(k);
        }
    }
    // Read what the kernel holds in one go, before the checks below use it.
    let unknown: Vec<(NsRef, String)> = order
        .iter()
        .filter(|k| !cx.sim.sysctls.contains_key(*k) && !cx.is_fresh(&k.0))
        .cloned()
        .collect();
    let mut read: HashMap<(NsRef, String), _> = unknown
        .iter()
        .cloned()
        .zip(kernel.sysctl_get_many(&unknown))
        .collect();
    for k in order {
        let s = &topo.sysctls()[last[&k]];
        let bad = |why: String| err(&s.pos, why, None);
        let key = SysctlKey::new(&s.key).map_err(bad)?;
        let value = SysctlValue::new(&s.value).map_err(bad)?;
        let scope = kernel
            .sysctl_scope(&s.key)
            .map_err(|e| err(&s.pos, format!("cannot check sysctl {}: {e}", s.key), None))?;
        if scope == SysctlScope::Missing {
            return Err(err(
                &s.pos,
                format!("netns {} has no sysctl {}", s.ns, s.key),
                Some("check the name, e.g. net.ipv4.ip_forward"),
            ));
        }
        if scope == SysctlScope::Global {
            return Err(err(
                &s.pos,
                format!(
                    "sysctl {} is not one of the network namespace's own: setting it would change the whole machine",
                    s.key
                ),
                Some(
                    "only knobs each network namespace keeps for itself can be set with ns.sysctl()",
                ),
            ));
        }
        let probe = Entry::Sysctl {
            ns: s.ns.clone(),
            key: key.clone(),
            value: value.clone(),
            old: None,
        };
        let others: Vec<(String, Entry)> = cx
            .world
            .sysctl_claims(&probe)
            .map(|(n, e)| (n.to_string(), e.clone()))
            .collect();
        for (other, e) in &others {
            if let Entry::Sysctl { value: v, .. } = e
                && v != &value
            {
                return Err(err(
                    &s.pos,
                    format!(
                        "sysctl {} in netns {} is set to {} by topology '{other}'; this script sets it to {}",
                        s.key,
                        s.ns,
                        v.as_str(),
                        s.value
                    ),
                    Some("both topologies need the same value while both are up"),
                ));
            }
        }
        let fresh = cx.is_fresh(&s.ns);
        let cur = if let Some(v) = cx.sim.sysctls.get(&k) {
            Some(v.clone())
        } else if fresh {
            None
        } else {
            let v = match read.remove(&k) {
                Some(v) => v,
                None => kernel.sysctl_get(&s.ns, &s.key),
            };
            let v = v.map_err(|e| {
                err(
                    &s.pos,
                    format!("cannot read sysctl {} in netns {}: {e}", s.key, s.ns),
                    None,
                )
            })?;
            match v {
                Some(v) => Some(v.trim().to_string()),
                // A knob of a device this plan is about to make: the kernel
                // has none yet (the scope check above found the key).
                None if declared_device(topo, &s.ns, &s.key) => None,
                None => {
                    return Err(err(
                        &s.pos,
                        format!("netns {} has no sysctl {}", s.ns, s.key),
                        Some("check the name, e.g. net.ipv4.ip_forward"),
                    ));
                }
            }
        };
        let mine = cx.owns_in(&s.ns, |e| e.same_object(&probe)).cloned();
        let inherited = others.iter().find_map(|(_, e)| match e {
            Entry::Sysctl { old: Some(o), .. } => Some(o.clone()),
            _ => None,
        });
        let needs_op = cur.as_deref() != Some(s.value.as_str());
        let old = match &mine {
            Some(Entry::Sysctl { old, .. }) => old.clone(),
            _ => inherited.or_else(|| cur.as_deref().and_then(|c| SysctlValue::new(c).ok())),
        };
        let record = Entry::Sysctl {
            ns: s.ns.clone(),
            key,
            value,
            old,
        };
        let want_entry = mine.is_some() || needs_op || !others.is_empty();
        if !needs_op {
            if want_entry && mine.as_ref() != Some(&record) {
                cx.diff.releases.extend(mine);
                cx.diff.claims.push(record);
            }
            continue;
        }
        let undo = cur
            .map(|c| Op::Sysctl {
                ns: s.ns.clone(),
                key: s.key.clone(),
                value: c,
            })
            .into_iter()
            .collect();
        cx.push_step(Step {
            op: Op::Sysctl {
                ns: s.ns.clone(),
                key: s.key.clone(),
                value: s.value.clone(),
            },
            pos: s.pos.clone(),
            records: vec![record],
            retires: mine.into_iter().collect(),
            undo,
            key: Some(format!("sysctl {} {}", s.ns, s.key)),
        })?;
    }
    Ok(())
}

/// Does the key belong to one device (`net.ipv6.conf.eth0.…`), which must
/// exist before it is set?
fn names_a_device(key: &str) -> bool {
    let parts: Vec<&str> = key.split('.').collect();
    matches!(
        parts.as_slice(),
        ["net", "ipv4" | "ipv6", "conf" | "neigh", dev, ..] if *dev != "all" && *dev != "default"
    )
}

/// IPv6 switched off in a namespace this plan makes moves up to right
/// after the namespaces are made, before any link is made in or moved
/// into them:
/// `disable_ipv6` set first means no device there ever starts IPv6
/// (no link-local address, no DAD, no router solicitation to undo). The
/// rest keeps its order; a sysctl step changes nothing the others depend on.
pub(super) fn hoist_fresh(steps: &mut Vec<Step>) {
    let Some(last_ns) = steps
        .iter()
        .rposition(|s| matches!(s.op, Op::AddNetns { .. }))
    else {
        return;
    };
    let fresh: std::collections::HashSet<crate::model::NsName> = steps[..=last_ns]
        .iter()
        .filter_map(|s| match &s.op {
            Op::AddNetns { ns } => Some(ns.clone()),
            _ => None,
        })
        .collect();
    // Only what must come before the devices: other settings stay where
    // they were planned (and where plans have always shown them).
    let hoist = |s: &Step| {
        matches!(&s.op, Op::Sysctl { ns: NsRef::Named(n), key, .. }
            if fresh.contains(n) && !names_a_device(key) && key.ends_with(".disable_ipv6"))
    };
    if !steps[last_ns + 1..].iter().any(hoist) {
        return;
    }
    let (up, rest): (Vec<Step>, Vec<Step>) = steps.drain(last_ns + 1..).partition(hoist);
    steps.extend(up);
    steps.extend(rest);
}

/// `net.ipv4.conf.DEV.…` / `net.ipv6.conf.DEV.…` of a link the script declares in `ns`.
fn declared_device(topo: &Topology, ns: &NsRef, key: &str) -> bool {
    let dev = key
        .strip_prefix("net.ipv4.conf.")
        .or_else(|| key.strip_prefix("net.ipv6.conf."))
        .and_then(|r| r.split_once('.'))
        .map(|(d, _)| d);
    dev.and_then(|d| crate::model::IfName::new(d).ok())
        .is_some_and(|d| topo.link_at(ns, &d).is_some())
}

#[cfg(test)]
mod tests {
    use super::names_a_device;

    #[test]
    fn device_keys_wait_for_their_device() {
        assert!(names_a_device("net.ipv6.conf.eth0.disable_ipv6"));
        assert!(!names_a_device("net.ipv6.conf.all.disable_ipv6"));
        assert!(!names_a_device("net.ipv6.conf.default.disable_ipv6"));
        assert!(!names_a_device("net.ipv4.ip_forward"));
    }
}
