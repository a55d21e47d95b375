//! `netplumb ps`: the daemons every topology runs, from their records and
//! /proc (by identity: a pid now held by another process shows as exited).
//! `netplumb logs NAME DAEMON [-f]`: what a daemon wrote.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use miette::Report;
use serde::Serialize;

use crate::diag;
use crate::ledger::{self, Entry};
use crate::opts::Opts;
use crate::proc::Liveness;
use crate::report;

/// One daemon, as `ps --json` gives it (docs/ps-json.md).
#[derive(Debug, Serialize)]
pub struct Row {
    pub topology: String,
    pub namespace: Option<String>,
    pub name: String,
    pub pid: i32,
    pub state: String,
    pub uptime: Option<f64>,
    pub command: Vec<String>,
    pub log: String,
    pub cgroup: Option<String>,
}

#[derive(Debug, Serialize)]
struct Doc {
    schema: u32,
    daemons: Vec<Row>,
}

fn rows(name: Option<&str>) -> Result<Vec<Row>, Report> {
    let names = match name {
        Some(n) => vec![n.to_string()],
        None => ledger::list_topologies().map_err(diag::ledger)?,
    };
    let mut out = Vec::new();
    for t in names {
        for e in ledger::read_entries(&t).map_err(diag::ledger)? {
            let Entry::Daemon {
                ns,
                name,
                spec,
                identity,
                ..
            } = e
            else {
                continue;
            };
            let live = identity.liveness();
            out.push(Row {
                topology: t.clone(),
                namespace: match ns {
                    crate::model::NsRef::Host => None,
                    crate::model::NsRef::Named(n) => Some(n.to_string()),
                },
                name: name.as_str().to_string(),
                pid: identity.pid,
                state: live.to_string(),
                uptime: (live == Liveness::Running)
                    .then(|| identity.uptime().map(|d| d.as_secs_f64()))
                    .flatten(),
                command: spec.argv.words().to_vec(),
                log: spec.log.display().to_string(),
                cgroup: identity.cgroup.as_ref().map(|c| c.display().to_string()),
            });
        }
    }
    Ok(out)
}

fn uptime_text(s: Option<f64>) -> String {
    let Some(s) = s else {
        return "-".into();
    };
    let s = s as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

pub fn ps(o: &Opts, name: Option<&str>) -> Result<i32, Report> {
    let rows = rows(name)?;
    if o.json {
        report::emit(&Doc {
            schema: 1,
            daemons: rows,
        });
        return Ok(0);
    }
    if rows.is_empty() {
        if !o.quiet {
            eprintln!("netplumb: no daemons");
        }
        return Ok(0);
    }
    let mut out = format!(
        "{:<12} {:<12} {:<12} {:>7} {:<10} {:>8}  COMMAND\n",
        "TOPOLOGY", "NETNS", "NAME", "PID", "STATE", "UPTIME"
    );
    for r in &rows {
        let cmd = crate::proc::Argv::from_words(r.command.clone())
            .map(|a| a.to_string())
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<12} {:<12} {:<12} {:>7} {:<10} {:>8}  {cmd}\n",
            r.topology,
            r.namespace.as_deref().unwrap_or("host"),
            r.name,
            r.pid,
            r.state,
            uptime_text(r.uptime)
        ));
    }
    crate::out::write(&out);
    Ok(0)
}

pub fn logs(topology: &str, daemon: &str, follow: bool) -> Result<i32, Report> {
    let entries = ledger::read_entries(topology).map_err(diag::ledger)?;
    let mut names = Vec::new();
    let mut log = None;
    for e in &entries {
        if let Entry::Daemon { name, spec, .. } = e {
            names.push(name.as_str().to_string());
            if name.as_str() == daemon {
                log = Some(spec.log.clone());
            }
        }
    }
    let Some(log) = log else {
        let known = if names.is_empty() {
            format!("topology '{topology}' runs no daemons")
        } else {
            format!("its daemons: {}", names.join(", "))
        };
        return Err(diag::plain(
            format!("no daemon '{daemon}' in topology '{topology}' ({known})"),
            Some("`netplumb ps` lists every daemon"),
        ));
    };
    let mut f = std::fs::File::open(&log).map_err(|e| {
        diag::plain(
            format!("cannot read the log of {daemon}, {}: {e}", log.display()),
            None,
        )
    })?;
    let mut stdout = std::io::stdout();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        f.read_to_end(&mut buf)
            .map_err(|e| diag::plain(format!("cannot read {}: {e}", log.display()), None))?;
        if !buf.is_empty() && stdout.write_all(&buf).and_then(|_| stdout.flush()).is_err() {
            // The reader went away (a pipe to head).
            return Ok(0);
        }
        if !follow {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(200));
        // Truncated behind us (a restart with another log): start over.
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let pos = f.stream_position().unwrap_or(0);
        if len < pos {
            let _ = f.seek(SeekFrom::Start(0));
        }
    }
}
