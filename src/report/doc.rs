//! The `--json` documents of `up`, `down`, `plan` and `check`, field for
//! field as docs/up-json.md, down-json.md, plan-json.md and check-json.md
//! describe them (tests/hands.rs checks each against its page).

use serde::Serialize;

use crate::kernel::Kernel;
use crate::ledger::Entry;
use crate::model::NsRef;

use super::stream::Printed;
use super::{Change, Counts, SCHEMA};

/// `netplumb up --json`.
#[derive(Debug, Serialize)]
pub struct Up {
    pub schema: u32,
    pub topology: String,
    pub changes: Vec<Change>,
    pub counts: Counts,
    pub notes: Vec<String>,
    pub not_ready: Vec<String>,
    pub printed: Vec<Printed>,
    pub asserts: Vec<Assert>,
    pub seconds: f64,
}

/// One `assert_reach` / `assert_no_reach` and how it went.
#[derive(Debug, Serialize)]
pub struct Assert {
    pub at: String,
    pub call: String,
    pub passed: bool,
    pub detail: String,
}

impl Assert {
    pub fn of(c: &crate::run::Checked) -> Self {
        Assert {
            at: c.assertion.pos.to_string(),
            call: c.assertion.call(),
            passed: c.passed,
            detail: c.detail.clone(),
        }
    }
}

impl Up {
    pub fn new(topology: &str, changes: Vec<Change>) -> Self {
        Up {
            schema: SCHEMA,
            topology: topology.to_string(),
            counts: Counts::of(&changes),
            changes,
            notes: Vec::new(),
            not_ready: Vec::new(),
            printed: Vec::new(),
            asserts: Vec::new(),
            seconds: 0.0,
        }
    }
}

/// `netplumb down --json`.
#[derive(Debug, Serialize)]
pub struct Down {
    pub schema: u32,
    pub topologies: Vec<DownOne>,
}

impl Down {
    pub fn new(topologies: Vec<DownOne>) -> Self {
        Down {
            schema: SCHEMA,
            topologies,
        }
    }
}

/// One topology's `down`.
#[derive(Debug, Default, Serialize)]
pub struct DownOne {
    pub name: String,
    /// Namespaces and links removed (what the text form counts).
    pub removed: usize,
    /// Those namespaces and links, as removals.
    pub objects: Vec<Change>,
    /// Namespaces and links the record no longer holds but the kernel still
    /// has: left to another topology, or found not to be this one's.
    pub left: Vec<Change>,
    pub notes: Vec<String>,
    /// `--force-forget`: a record was there and is forgotten.
    pub forgotten: bool,
    pub error: Option<String>,
}

impl DownOne {
    pub fn named(name: &str) -> Self {
        DownOne {
            name: name.to_string(),
            ..DownOne::default()
        }
    }
}

/// Sort the namespaces and links a topology's record held before `down`
/// (`before`) and no longer holds (`after`) into what the kernel no longer
/// has (removed) and what it still has (left), by asking the kernel.
pub fn down_objects(
    kernel: &mut dyn Kernel,
    before: &[Entry],
    after: &[Entry],
) -> (Vec<Change>, Vec<Change>) {
    let mut removed = Vec::new();
    let mut left = Vec::new();
    for e in before.iter().filter(|e| !after.contains(e)) {
        let still = match e {
            Entry::Netns { ns, ino } => match kernel.netns_ino(ns) {
                Ok(Some(have)) => ino.is_none_or(|want| want == have),
                _ => false,
            },
            Entry::Link { ns, name, .. } => {
                let ns_there = match ns {
                    NsRef::Host => true,
                    NsRef::Named(n) => matches!(kernel.netns_ino(n), Ok(Some(_))),
                };
                ns_there
                    && kernel
                        .link_names(ns)
                        .is_ok_and(|names| names.iter().any(|n| n == name.as_str()))
            }
            _ => continue,
        };
        let Some(op) = e.undo_ops().into_iter().next() else {
            continue;
        };
        let c = Change::of(&op, false);
        if still { left.push(c) } else { removed.push(c) }
    }
    (removed, left)
}

/// `netplumb plan --json`.
#[derive(Debug, Serialize)]
pub struct Plan {
    pub schema: u32,
    pub topology: String,
    /// "scratch" (what `up` runs on an empty machine) or "diff" (`--diff`).
    pub mode: &'static str,
    pub ops: Vec<Change>,
    pub counts: Counts,
    pub not_run: Vec<String>,
}

impl Plan {
    pub fn new(topology: &str, diff: bool, ops: Vec<Change>, not_run: &[String]) -> Self {
        Plan {
            schema: SCHEMA,
            topology: topology.to_string(),
            mode: if diff { "diff" } else { "scratch" },
            counts: Counts::of(&ops),
            ops,
            not_run: not_run.to_vec(),
        }
    }
}

/// `netplumb check --json`, for a script file and for a topology.
#[derive(Debug, Serialize)]
pub struct Check {
    pub schema: u32,
    pub target: String,
    /// "file" (`check FILE.rhai`) or "topology" (`check NAME`).
    pub kind: &'static str,
    pub valid: bool,
    pub error: Option<String>,
    pub drifted: Option<bool>,
    pub script: Option<String>,
    pub repair: Option<String>,
    pub changes: Vec<Change>,
    pub counts: Counts,
    pub not_run: Vec<String>,
}

impl Check {
    /// A script checked on its own: valid, and what it makes on an empty machine.
    pub fn file(target: &str, changes: Vec<Change>, not_run: &[String]) -> Self {
        Check {
            schema: SCHEMA,
            target: target.to_string(),
            kind: "file",
            valid: true,
            error: None,
            drifted: None,
            script: None,
            repair: None,
            counts: Counts::of(&changes),
            changes,
            not_run: not_run.to_vec(),
        }
    }

    /// A script that does not run: the error's message.
    pub fn invalid(target: &str, kind: &'static str, error: String) -> Self {
        let mut c = Check::file(target, Vec::new(), &[]);
        c.kind = kind;
        c.valid = false;
        c.error = Some(error);
        c
    }

    /// A topology against its recorded script: drifted when `changes` is
    /// not empty, and `repair` the command that puts it back.
    pub fn topology(
        target: &str,
        script: String,
        repair: String,
        changes: Vec<Change>,
        not_run: &[String],
    ) -> Self {
        let drifted = !changes.is_empty();
        Check {
            schema: SCHEMA,
            target: target.to_string(),
            kind: "topology",
            valid: true,
            error: None,
            drifted: Some(drifted),
            script: Some(script),
            repair: drifted.then_some(repair),
            counts: Counts::of(&changes),
            changes,
            not_run: not_run.to_vec(),
        }
    }
}

/// The changes a dry run (`plan`, `check`) recorded. `against_record`:
/// the run planned against the live kernel, so a change that puts back
/// what the topology's last `up` asked for is a repair.
pub fn dry_changes(r: &mut crate::run::Runner, against_record: bool) -> Vec<Change> {
    if against_record {
        r.prev_intent = crate::uprecord::UpRecord::load(&r.name)
            .map(|u| u.intent)
            .unwrap_or_default();
    }
    let now = r.intent();
    super::changes(r, &r.done, &now, super::Change::of)
}
