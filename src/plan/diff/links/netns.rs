//! Namespaces: created where missing, shared with the topology that
//! made them, adopted when someone else's.

use crate::ledger::Entry;
use crate::model::NsRef;
use crate::op::Op;
use crate::plan::diff::{Cx, DiffError, Step, err};
use crate::topo::Topology;

pub(in crate::plan::diff) fn namespaces(topo: &Topology, cx: &mut Cx) -> Result<(), DiffError> {
    for d in topo.namespaces() {
        let n = &d.name;
        match cx.sim.netns.get(n).copied() {
            Some(ino) => {
                match cx.owned_netns(n) {
                    Some(mine @ Entry::Netns { ino: Some(had), .. }) if *had != ino => {
                        // Ours was deleted and someone made another under
                        // its name: that one is theirs.
                        let mine = mine.clone();
                        cx.diff.notes.push(format!(
                            "netns {n} is not the one this topology made (someone replaced it): adopted, never deleted"
                        ));
                        cx.diff.releases.push(mine);
                    }
                    Some(_) => {}
                    None => {
                        let e = Entry::Netns {
                            ns: n.clone(),
                            ino: Some(ino),
                        };
                        if let Some(other) = cx.world.claimant_of(&e) {
                            cx.diff
                                .notes
                                .push(format!("netns {n}: shared with topology '{other}'"));
                            cx.diff.claims.push(e);
                        }
                    }
                }
            }
            None => {
                // Ours, deleted behind our back: the new one is recorded
                // with its own inode, and the entry of the gone one goes
                // (kept, `down` would find a namesake under that name).
                let gone = cx.owned_netns(n).cloned().into_iter().collect();
                cx.push_step(Step {
                    op: Op::AddNetns { ns: n.clone() },
                    pos: d.pos.clone(),
                    records: vec![Entry::Netns {
                        ns: n.clone(),
                        ino: None,
                    }],
                    retires: gone,
                    undo: vec![Op::DelNetns {
                        ns: n.clone(),
                        ino: None,
                    }],
                    key: Some(format!("netns {n}")),
                })?;
            }
        }
    }
    for ns in &cx.touched {
        if let NsRef::Named(n) = ns
            && !cx.sim.netns.contains_key(n)
        {
            let pos = topo
                .links()
                .find(|(_, l)| &l.ns == ns)
                .map(|(_, l)| l.pos.clone())
                .unwrap_or_default();
            return Err(err(
                &pos,
                format!("netns {n} does not exist"),
                Some("create it with netns(\"…\") first"),
            ));
        }
    }
    Ok(())
}
