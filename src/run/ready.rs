//! Ready means ready: after a run, wait until the links it brought up are
//! operationally up (a bridge port forwarding) and their IPv6 addresses are
//! past duplicate-address detection.

use super::*;
use crate::kernel::NotReady;
use crate::model::{IfName, NsRef};
use crate::op::{LinkChange, Op};

impl Runner {
    /// The links this run brought up that are not known to be ready yet.
    fn brought_up(&self) -> Vec<(NsRef, IfName)> {
        let mut out: Vec<(NsRef, IfName)> = Vec::new();
        for s in &self.done {
            let l = match &s.op {
                Op::SetLink {
                    ns,
                    name,
                    change: LinkChange::Up(true),
                } => (ns.clone(), name.clone()),
                Op::AddVeth { ns, name, with, .. } if with.up => (ns.clone(), name.clone()),
                _ => continue,
            };
            if !self.ready.contains(&l) && !out.contains(&l) && !self.peer_left_down(&l) {
                out.push(l);
            }
        }
        out
    }

    /// A veth end whose peer the script does not bring up never gets a
    /// carrier (operstate LOWERLAYERDOWN): waiting for it would only run
    /// out the timeout.
    fn peer_left_down(&self, (ns, name): &(NsRef, IfName)) -> bool {
        self.topo
            .links()
            .find(|(_, l)| &l.ns == ns && &l.name == name)
            .is_some_and(|(_, l)| match l.kind {
                crate::topo::LinkKind::Veth { peer } => self.topo.get(peer).up != Some(true),
                _ => false,
            })
    }

    /// Wait (a bounded, reported time) until every link this run brought
    /// up is operationally up, a bridge port forwarding, and its IPv6
    /// addresses past duplicate address detection: "carrier" is not
    /// "ready", and a ping sent before that is lost.
    pub fn settle(&mut self) -> Result<(), NotReady> {
        let want = self.brought_up();
        if want.is_empty() {
            return Ok(());
        }
        let res = self.kernel.wait_ready(&want, READY_TIMEOUT);
        // Waited for once: a link that did not get ready is reported once,
        // not waited for again at every later ping.
        self.ready.extend(want);
        res
    }
}
