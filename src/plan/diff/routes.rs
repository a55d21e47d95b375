//! Routes of every kind and policy rules: made where missing, changed in
//! place (`ip route replace`) when the script changes a route it keeps the
//! key of, left alone when they read back as declared. A route or rule the
//! topology did not make is never replaced behind its owner's back.

use super::{Cx, DiffError, Step, err};
use crate::kernel::routes::{find_key, has_rule, is_as_declared};
use crate::ledger::Entry;
use crate::op::Op;
use crate::topo::Topology;

pub(super) fn routes_and_rules(topo: &Topology, cx: &mut Cx) -> Result<(), DiffError> {
    for d in topo.xroutes() {
        let st = cx.state(&d.ns);
        let have = find_key(st, &d.route).cloned();
        let mine = cx
            .owns(|e| matches!(e, Entry::RouteEx { ns, route } if *ns == d.ns && route.same_key(&d.route)))
            .cloned();
        let record = Entry::RouteEx {
            ns: d.ns.clone(),
            route: d.route.clone(),
        };
        let key = Some(format!("route {} {}", d.ns, d.route.words()));
        match have {
            Some(h) if is_as_declared(st, &d.route, &h) => {}
            Some(_) if mine.is_none() => {
                return Err(err(
                    &d.pos,
                    format!(
                        "netns {} already has a route to {} in table {} with metric {}, not made by this topology",
                        d.ns,
                        d.route.dest,
                        d.route.table,
                        d.route.kernel_metric()
                    ),
                    Some("remove that route, or give this one another metric or table"),
                ));
            }
            Some(_) => {
                let old = match &mine {
                    Some(Entry::RouteEx { route, .. }) => route.clone(),
                    _ => d.route.clone(),
                };
                cx.push_step(Step {
                    op: Op::PutRoute {
                        ns: d.ns.clone(),
                        route: d.route.clone(),
                        replace: true,
                    },
                    pos: d.pos.clone(),
                    records: vec![record],
                    retires: mine.into_iter().collect(),
                    undo: vec![Op::PutRoute {
                        ns: d.ns.clone(),
                        route: old,
                        replace: true,
                    }],
                    key,
                })?;
            }
            None => cx.push_step(Step {
                op: Op::PutRoute {
                    ns: d.ns.clone(),
                    route: d.route.clone(),
                    replace: false,
                },
                pos: d.pos.clone(),
                records: vec![record],
                retires: mine.into_iter().collect(),
                undo: vec![Op::DelRouteEx {
                    ns: d.ns.clone(),
                    route: d.route.clone(),
                }],
                key,
            })?,
        }
    }
    for d in topo.rules() {
        if has_rule(cx.state(&d.ns), &d.rule) {
            continue;
        }
        cx.push_step(Step {
            op: Op::AddRule {
                ns: d.ns.clone(),
                rule: d.rule.clone(),
            },
            pos: d.pos.clone(),
            records: vec![Entry::Rule {
                ns: d.ns.clone(),
                rule: d.rule.clone(),
            }],
            retires: Vec::new(),
            undo: vec![Op::DelRule {
                ns: d.ns.clone(),
                rule: d.rule.clone(),
            }],
            key: Some(format!("rule {} {}", d.ns, d.rule.words())),
        })?;
    }
    Ok(())
}
