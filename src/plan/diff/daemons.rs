//! Declared processes against recorded ones. A recorded process stays when
//! the script declares it unchanged, it is alive with its recorded
//! identity, and its namespace is the one it was started in; otherwise it
//! is stopped (its whole tree, by identity) — first, before anything it
//! may use is removed — and, when still declared, started again last,
//! once links, addresses, routes and NAT are in place.

use std::path::PathBuf;

use super::{Cx, DiffError, Step};
use crate::kernel::Kernel;
use crate::ledger::{Entry, state_dir};
use crate::model::NsRef;
use crate::op::{DaemonStart, Op};
use crate::proc::{DaemonSpec, Liveness};
use crate::topo::{DaemonDecl, Topology};

/// The intent key of a daemon (and of the steps that start or stop it).
pub fn daemon_key(name: &str) -> String {
    format!("daemon {name}")
}

/// Where a daemon's output goes when the script names no log.
pub fn daemon_log(topology: &str, name: &str) -> PathBuf {
    state_dir()
        .join("logs")
        .join(topology)
        .join(format!("{name}.log"))
}

fn spec_of(d: &DaemonDecl, topology: &str) -> DaemonSpec {
    DaemonSpec {
        name: d.name.clone(),
        argv: d.argv.clone(),
        env: d.env.clone(),
        clear_env: false,
        cwd: d.cwd.clone(),
        log: d
            .log
            .clone()
            .unwrap_or_else(|| daemon_log(topology, &d.name)),
    }
}

/// Everything that, changed, restarts the process: its intent value.
pub fn daemon_value(d: &DaemonDecl, topology: &str) -> String {
    let spec = spec_of(d, topology);
    let v = serde_json::json!({
        "ns": d.ns.to_string(),
        "spec": spec,
        "ready": d.ready,
    });
    v.to_string()
}

fn same(e: &Entry, d: &DaemonDecl, topology: &str) -> bool {
    let Entry::Daemon {
        ns, spec, ready, ..
    } = e
    else {
        return false;
    };
    *ns == d.ns
        && **spec == spec_of(d, topology)
        && ready.as_ref().map(|r| r.as_str()) == d.ready.as_deref()
}

/// Its namespace is about to be made (again): a process still running in
/// the old one is in the wrong place.
fn ns_absent(cx: &Cx, ns: &NsRef) -> bool {
    match ns {
        NsRef::Host => false,
        NsRef::Named(n) => !cx.sim.netns.contains_key(n),
    }
}

pub(super) fn stops(
    topo: &Topology,
    kernel: &mut dyn Kernel,
    cx: &mut Cx,
) -> Result<(), DiffError> {
    let owned: Vec<Entry> = cx
        .owned
        .iter()
        .filter(|e| matches!(e, Entry::Daemon { .. }))
        .cloned()
        .collect();
    for e in owned {
        let Entry::Daemon {
            ns, name, identity, ..
        } = &e
        else {
            continue;
        };
        let decl = topo.daemons().iter().find(|d| d.name == name.as_str());
        let keep = decl.is_some_and(|d| {
            same(&e, d, cx.topo_name)
                && !ns_absent(cx, ns)
                && kernel.daemon_liveness(identity) == Liveness::Running
        });
        if keep {
            cx.keep_daemons.push(name.as_str().to_string());
            continue;
        }
        let step = Step {
            op: Op::StopDaemon {
                ns: ns.clone(),
                name: name.as_str().to_string(),
                identity: identity.clone(),
            },
            pos: decl.map(|d| d.pos.clone()).unwrap_or_default(),
            records: Vec::new(),
            retires: vec![e.clone()],
            // A stopped process is not brought back by a rollback: the
            // next `up` starts it again.
            undo: Vec::new(),
            key: decl.map(|_| daemon_key(name.as_str())),
        };
        cx.push_step(step)?;
    }
    Ok(())
}

pub(super) fn starts(topo: &Topology, cx: &mut Cx) -> Result<(), DiffError> {
    for d in topo.daemons() {
        if cx.keep_daemons.contains(&d.name) {
            continue;
        }
        let step = Step {
            op: Op::StartDaemon {
                ns: d.ns.clone(),
                daemon: Box::new(DaemonStart {
                    spec: spec_of(d, cx.topo_name),
                    ready: d.ready.clone(),
                    topology: cx.topo_name.to_string(),
                }),
            },
            pos: d.pos.clone(),
            // Written by the runner once the process exists and before it
            // runs the command: only then is its identity known.
            records: Vec::new(),
            retires: Vec::new(),
            undo: Vec::new(),
            key: Some(daemon_key(&d.name)),
        };
        cx.push_step(step)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Recorder;
    use crate::ledger::{DaemonName, World};
    use crate::model::NsName;
    use crate::proc::{Argv, Identity};

    fn topo(cmd: &str) -> Topology {
        let mut t = Topology::default();
        let ns = NsName::new("app").unwrap();
        t.add_netns(ns.clone(), Default::default()).unwrap();
        t.add_daemon(DaemonDecl {
            ns: NsRef::Named(ns),
            name: "web".into(),
            argv: Argv::parse(cmd).unwrap(),
            env: Vec::new(),
            cwd: None,
            log: None,
            ready: None,
            pos: Default::default(),
        })
        .unwrap();
        t
    }

    /// The record of topology `t`'s daemon, as if started as `identity`.
    fn record(t: &Topology, identity: Identity) -> Entry {
        let d = &t.daemons()[0];
        Entry::Daemon {
            ns: d.ns.clone(),
            name: DaemonName::new(&d.name).unwrap(),
            spec: Box::new(spec_of(d, "lab")),
            ready: None,
            identity,
        }
    }

    fn ops(t: &Topology, owned: &[Entry]) -> Vec<String> {
        let mut k = Recorder::new();
        // The namespace exists: only the daemon is in question.
        k.apply(&Op::AddNetns {
            ns: NsName::new("app").unwrap(),
        })
        .unwrap();
        let d = super::super::diff(t, &mut k, "lab", "lab.rhai", owned, &World::default()).unwrap();
        d.steps
            .iter()
            .map(|s| s.op.action())
            .filter(|a| a.contains("daemon"))
            .collect()
    }

    #[test]
    fn a_daemon_is_started_kept_restarted_and_stopped() {
        let t = topo("sleep 100");
        assert_eq!(ops(&t, &[]), ["start daemon web in app"]);
        // This test's own process stands for a running daemon.
        let alive = Identity::of(std::process::id() as i32).unwrap();
        let rec = record(&t, alive.clone());
        assert!(ops(&t, std::slice::from_ref(&rec)).is_empty());
        // Its command changed: stopped, then started again.
        let edited = topo("sleep 200");
        assert_eq!(
            ops(&edited, std::slice::from_ref(&rec)),
            ["stop daemon web in app", "start daemon web in app"]
        );
        // Dead (the pid holds another start time now): restarted.
        let dead = Identity {
            start_time: alive.start_time + 1,
            ..alive
        };
        assert_eq!(
            ops(&t, &[record(&t, dead)]),
            ["stop daemon web in app", "start daemon web in app"]
        );
        // No longer declared: stopped.
        let mut none = Topology::default();
        none.add_netns(NsName::new("app").unwrap(), Default::default())
            .unwrap();
        assert_eq!(ops(&none, &[rec]), ["stop daemon web in app"]);
    }
}
