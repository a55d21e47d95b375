//! Link shaping: the root qdisc made what the script's `shape()` says (tbf
//! for a rate alone, netem otherwise), removed by `shape(#{})`. A link the
//! topology made has no shaping unless the script says so; an adopted
//! device's qdisc is changed only when the script asks, with a record of
//! what to put back on `down`.

use super::{Cx, DiffError, Step, err};
use crate::kernel::shape::{is_as_declared, restore};
use crate::ledger::Entry;
use crate::op::{Op, Shape};
use crate::topo::{LinkId, LinkKind, Topology};

fn put_back(ns: &crate::model::NsRef, dev: &crate::model::IfName, old: Option<Shape>) -> Op {
    match old {
        Some(shape) => Op::SetQdisc {
            ns: ns.clone(),
            dev: dev.clone(),
            shape,
            mtu: 1500,
        },
        None => Op::DelQdisc {
            ns: ns.clone(),
            dev: dev.clone(),
        },
    }
}

pub(super) fn shapes(topo: &Topology, cx: &mut Cx) -> Result<(), DiffError> {
    let ids: Vec<LinkId> = topo.links().map(|(id, _)| id).collect();
    for id in ids {
        let l = topo.get(id);
        let adopted = l.kind == LinkKind::Existing;
        let Some(want) = l
            .shape
            .as_ref()
            .map(Shape::qdisc_part)
            .or((!adopted).then(Shape::default))
        else {
            continue;
        };
        let Some(cur) = cx.link_now(&l.ns, l.name.as_str()) else {
            continue;
        };
        if is_as_declared(cur.qdisc.as_ref(), &want, cur.mtu) {
            continue;
        }
        let pos = l.set_pos.shape.clone().unwrap_or_else(|| l.pos.clone());
        let before = match &cur.qdisc {
            None => None,
            Some(q) => match restore(q) {
                Some(s) => Some(s),
                None => {
                    return Err(err(
                        &pos,
                        format!(
                            "cannot shape {} in netns {}: it has a {} qdisc, which netplumb cannot put back",
                            l.name, l.ns, q.kind
                        ),
                        Some("remove that qdisc first (tc qdisc del dev … root)"),
                    ));
                }
            },
        };
        let mut records = Vec::new();
        if adopted {
            let recorded = cx.owns(
                |e| matches!(e, Entry::Qdisc { ns, name, .. } if *ns == l.ns && *name == l.name),
            );
            if recorded.is_none() {
                records.push(Entry::Qdisc {
                    ns: l.ns.clone(),
                    name: l.name.clone(),
                    old: before.clone(),
                });
            }
        }
        let op = if want.is_empty() {
            Op::DelQdisc {
                ns: l.ns.clone(),
                dev: l.name.clone(),
            }
        } else {
            Op::SetQdisc {
                ns: l.ns.clone(),
                dev: l.name.clone(),
                shape: want,
                mtu: cur.mtu,
            }
        };
        cx.push_step(Step {
            op,
            pos,
            records,
            retires: Vec::new(),
            undo: vec![put_back(&l.ns, &l.name, before)],
            key: Some(format!("{} shape", super::link_key(l))),
        })?;
    }
    Ok(())
}

/// Undo of an adopted device's shaping on removal: what was there before.
pub(super) fn restore_op(
    cx: &Cx,
    ns: &crate::model::NsRef,
    name: &crate::model::IfName,
    old: &Option<Shape>,
) -> Option<(Op, Op)> {
    let cur = cx.state(ns).link(name.as_str())?;
    let want = old.clone().unwrap_or_default();
    if is_as_declared(cur.qdisc.as_ref(), &want, cur.mtu) {
        return None;
    }
    let now = cur.qdisc.as_ref().and_then(restore);
    Some((put_back(ns, name, old.clone()), put_back(ns, name, now)))
}
