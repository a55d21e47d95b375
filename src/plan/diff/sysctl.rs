//! Sysctls: set where the kernel differs, recorded with the value from
//! before any netplumb topology set them, shared between topologies that
//! set the same value, refused when another topology needs another value.

use std::collections::BTreeMap;

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
            let v = kernel.sysctl_get(&s.ns, &s.key).map_err(|e| {
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
        let mine = cx.owned.iter().find(|e| e.same_object(&probe)).cloned();
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
