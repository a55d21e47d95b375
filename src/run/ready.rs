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
        // Sets, not scans: thousands of links are brought up in one run.
        let left_down = self.peers_left_down();
        let mut seen: HashSet<(&NsRef, &IfName)> = HashSet::new();
        let mut out: Vec<(NsRef, IfName)> = Vec::new();
        for s in &self.done {
            let (ns, name) = match &s.op {
                Op::SetLink {
                    ns,
                    name,
                    change: LinkChange::Up(true),
                } => (ns, name),
                Op::AddVeth { ns, name, with, .. } if with.up => (ns, name),
                _ => continue,
            };
            if left_down.contains(&(ns, name)) || !seen.insert((ns, name)) {
                continue;
            }
            let l = (ns.clone(), name.clone());
            if !self.ready.contains(&l) {
                out.push(l);
            }
        }
        out
    }

    /// Veth ends whose peer the script does not bring up: they never get
    /// a carrier (operstate LOWERLAYERDOWN), and waiting for one would only
    /// run out the timeout.
    fn peers_left_down(&self) -> HashSet<(&NsRef, &IfName)> {
        self.topo
            .links()
            .filter(|(_, l)| match l.kind {
                crate::topo::LinkKind::Veth { peer } => self.topo.get(peer).up != Some(true),
                _ => false,
            })
            .map(|(_, l)| (&l.ns, &l.name))
            .collect()
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
