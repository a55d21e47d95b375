//! Links: moves and renames of links made by earlier flushes, then new
//! bridges and veth pairs, adopting what already exists as asked.

use super::{Applied, Ctx, DiffError, err};
use crate::ledger::Owned;
use crate::plan::{Op, VethWith};
use crate::topo::{LinkKind, Topology};

pub(super) fn links(topo: &Topology, applied: &mut Applied, cx: &mut Ctx) -> Result<(), DiffError> {
    applied.link_loc.resize(topo.links.len(), None);
    applied.created.resize(topo.links.len(), false);
    // Moves and renames of links that earlier flushes already made.
    for (id, l) in topo.links.iter().enumerate() {
        let Some((ons, oname)) = applied.link_loc[id].clone() else {
            continue;
        };
        let mut cur_ns = ons.clone();
        let mut cur_name = oname.clone();
        let was_owned = cx.owns_link(&ons, &oname);
        let kind = l.kind.kernel_kind().unwrap_or("").to_string();
        let mut moved = false;
        if cur_ns != l.ns {
            cx.push(
                Op::MoveLink {
                    ns: cur_ns.clone(),
                    name: cur_name.clone(),
                    to: l.ns.clone(),
                },
                &l.pos,
                vec![],
            )?;
            cur_ns = l.ns.clone();
            moved = true;
        }
        if cur_name != l.name {
            cx.push(
                Op::RenameLink {
                    ns: cur_ns.clone(),
                    name: cur_name.clone(),
                    to: l.name.clone(),
                },
                &l.pos,
                vec![],
            )?;
            cur_name = l.name.clone();
            moved = true;
        }
        if moved
            && was_owned
            && let Some(last) = cx.steps.last_mut()
        {
            let peer_ns = match l.kind {
                LinkKind::Veth { peer } => Some(topo.links[peer].ns.clone()),
                _ => None,
            };
            last.owns = vec![Owned::Link {
                ns: cur_ns.clone(),
                name: cur_name.clone(),
                kind: kind.clone(),
                peer_ns: peer_ns.clone(),
            }];
            last.retires = vec![Owned::Link {
                ns: ons,
                name: oname,
                kind,
                peer_ns,
            }];
        }
        applied.link_loc[id] = Some((cur_ns, cur_name));
    }
    // New links.
    for (id, l) in topo.links.iter().enumerate() {
        if applied.link_loc[id].is_some() {
            continue;
        }
        let existing = cx.state(&l.ns).link(l.name.as_str()).cloned();
        // Another topology's record only matters for a device that is there.
        if let Some(other) = cx.foreign.get(&(l.ns.clone(), l.name.to_string()))
            && existing.is_some()
        {
            return Err(err(
                &l.pos,
                format!(
                    "netns '{}' already has {} — from topology '{other}'",
                    l.ns, l.name
                ),
                Some("pick another name, or take that topology down first"),
            ));
        }
        match &l.kind {
            LinkKind::Existing => {
                if existing.is_none() {
                    return Err(err(
                        &l.pos,
                        format!("no link '{}' in netns {}", l.name, l.ns),
                        Some(
                            "ns.link(name) finds a device that already exists; create it with veth() or bridge()",
                        ),
                    ));
                }
            }
            LinkKind::Bridge => match existing {
                Some(e) if e.kind.as_deref() == Some("bridge") => {}
                Some(e) => {
                    return Err(err(
                        &l.pos,
                        format!(
                            "netns {} already has {}, and it is a {}, not a bridge",
                            l.ns,
                            l.name,
                            e.kind.as_deref().unwrap_or("device")
                        ),
                        Some("pick another name"),
                    ));
                }
                None => {
                    let owns = vec![Owned::Link {
                        ns: l.ns.clone(),
                        name: l.name.clone(),
                        kind: "bridge".into(),
                        peer_ns: None,
                    }];
                    cx.push(
                        Op::AddBridge {
                            ns: l.ns.clone(),
                            name: l.name.clone(),
                        },
                        &l.pos,
                        owns,
                    )?;
                    applied.created[id] = true;
                }
            },
            LinkKind::Veth { peer } => {
                let p = &topo.links[*peer];
                if applied.link_loc[*peer].is_some() {
                    // The pair was handled from the other end.
                    applied.link_loc[id] = Some((l.ns.clone(), l.name.clone()));
                    continue;
                }
                let pexisting = cx.state(&p.ns).link(p.name.as_str()).cloned();
                match (existing, pexisting) {
                    (Some(a), Some(b))
                        if a.kind.as_deref() == Some("veth")
                            && b.kind.as_deref() == Some("veth") => {}
                    (None, None) => {
                        let owns = vec![Owned::Link {
                            ns: l.ns.clone(),
                            name: l.name.clone(),
                            kind: "veth".into(),
                            peer_ns: Some(p.ns.clone()),
                        }];
                        cx.push(
                            Op::AddVeth {
                                ns: l.ns.clone(),
                                name: l.name.clone(),
                                peer_ns: p.ns.clone(),
                                peer: p.name.clone(),
                                with: VethWith::default(),
                            },
                            &l.pos,
                            owns,
                        )?;
                        applied.created[id] = true;
                        applied.created[*peer] = true;
                    }
                    (Some(_), None) | (Some(_), Some(_)) => {
                        return Err(err(
                            &l.pos,
                            format!(
                                "netns {} already has {}, and it is not this veth pair",
                                l.ns, l.name
                            ),
                            Some("pick another name, or remove the existing device"),
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(err(
                            &l.pos,
                            format!("netns {} already has {} (the peer's name)", p.ns, p.name),
                            Some("pick another peer name, or remove the existing device"),
                        ));
                    }
                }
                applied.link_loc[*peer] = Some((p.ns.clone(), p.name.clone()));
            }
        }
        applied.link_loc[id] = Some((l.ns.clone(), l.name.clone()));
    }
    Ok(())
}
