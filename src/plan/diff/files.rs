//! Per-namespace files against the ledger and what /etc/netns holds: a
//! file is written when it is missing or its content differs (drift, or
//! an edit of the script); one no longer declared is removed — or, when it
//! was there before the topology first wrote it (adopted), put back as it
//! was. Each step's inverse restores the content it replaces.

use super::{Cx, DiffError, Step, err};
use crate::kernel::Kernel;
use crate::ledger::{Entry, EtcPath};
use crate::model::NsName;
use crate::op::Op;
use crate::topo::{Pos, Topology};

pub fn file_key(ns: &NsName, path: &str) -> String {
    format!("file {ns} {path}")
}

/// The op that puts back `now` (None: there was no file).
fn restore(ns: &NsName, path: &str, now: Option<Vec<u8>>) -> Op {
    match now {
        Some(c) => Op::WriteFile {
            ns: ns.clone(),
            path: path.to_string(),
            content: String::from_utf8_lossy(&c).into_owned(),
        },
        None => Op::RemoveFile {
            ns: ns.clone(),
            path: path.to_string(),
        },
    }
}

fn read(
    kernel: &mut dyn Kernel,
    ns: &NsName,
    path: &str,
    pos: &Pos,
) -> Result<Option<Vec<u8>>, DiffError> {
    kernel
        .etc_read(ns, path)
        .map_err(|e| err(pos, format!("cannot read {path} of netns {ns}: {e}"), None))
}

pub(super) fn files(
    topo: &Topology,
    kernel: &mut dyn Kernel,
    cx: &mut Cx,
) -> Result<(), DiffError> {
    // No longer declared: removed or put back.
    let gone: Vec<Entry> = cx
        .owned
        .iter()
        .filter(|e| match e {
            Entry::File { ns, path, .. } => !topo
                .files()
                .iter()
                .any(|f| &f.ns == ns && f.path == path.as_str()),
            _ => false,
        })
        .cloned()
        .collect();
    for e in gone {
        let Entry::File { ns, path, .. } = &e else {
            continue;
        };
        let now = read(kernel, ns, path.as_str(), &Pos::default())?;
        let ops = e.undo_ops();
        let Some(op) = ops.into_iter().next() else {
            continue;
        };
        if matches!(op, Op::RemoveFile { .. }) && now.is_none() {
            // Gone already.
            cx.diff.releases.push(e.clone());
            continue;
        }
        cx.push_step(Step {
            op,
            pos: Pos::default(),
            records: Vec::new(),
            retires: vec![e.clone()],
            undo: vec![restore(ns, path.as_str(), now)],
            key: None,
        })?;
    }
    for f in topo.files() {
        let now = read(kernel, &f.ns, &f.path, &f.pos)?;
        if now.as_deref() == Some(f.content.as_bytes()) {
            continue;
        }
        let owned = cx
            .owns(|e| matches!(e, Entry::File { ns, path, .. } if *ns == f.ns && path.as_str() == f.path))
            .is_some();
        let records = if owned {
            Vec::new()
        } else {
            let path = EtcPath::new(&f.path).map_err(|m| err(&f.pos, m, None))?;
            // What was there first is recorded ahead of the write: `down`
            // puts an adopted file back, even after a `kill -9` here.
            vec![Entry::File {
                ns: f.ns.clone(),
                path,
                old: now
                    .as_ref()
                    .map(|c| String::from_utf8_lossy(c).into_owned()),
            }]
        };
        cx.push_step(Step {
            op: Op::WriteFile {
                ns: f.ns.clone(),
                path: f.path.clone(),
                content: f.content.clone(),
            },
            pos: f.pos.clone(),
            records,
            retires: Vec::new(),
            undo: vec![restore(&f.ns, &f.path, now)],
            key: Some(file_key(&f.ns, &f.path)),
        })?;
    }
    Ok(())
}
