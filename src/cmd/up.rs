//! `netplumb up`: run the script and converge the kernel to it, then say
//! what changed: `+` created, `~` changed, `-` removed, "(repaired)" where
//! the kernel had drifted from what the topology last made.

use miette::Report;

use crate::apply::LinuxKernel;
use crate::cli::ScriptArgs;
use crate::diag;
use crate::drive;
use crate::ledger::Ledger;
use crate::opts::{Opts, read_script, script_dir, script_label, topology_name};
use crate::plan::{self, Step};
use crate::run::Runner;
use crate::script::Session;
use crate::uprecord::UpRecord;

pub fn run(o: &Opts, a: &ScriptArgs, no_wait: bool) -> Result<i32, Report> {
    let name = topology_name(&a.file, a.name.as_deref())?;
    let text = read_script(&a.file)?;
    let ledger = Ledger::open(&name, !no_wait, o.quiet).map_err(diag::ledger)?;
    let kernel = LinuxKernel::new().map_err(|e| diag::plain(e.to_string(), None))?;
    let mut runner = Runner::new(&name, Box::new(kernel), Some(ledger))
        .map_err(|e| diag::plain(e.to_string(), None))?;
    runner.verbose = o.verbose;
    runner.quiet = o.quiet;
    runner.script = script_label(&a.file);
    runner.prev_intent = UpRecord::load(&name).map(|u| u.intent).unwrap_or_default();
    let t0 = std::time::Instant::now();
    let mut session = Session::new(runner, script_dir(&a.file), &a.set, a.max_ops);
    session.set_max_memory(a.max_memory);
    drive::run_file(&mut session, &a.file, &text)?;
    let mut r = session.runner();
    if let Err(nr) = r.settle()
        && !o.quiet
    {
        eprintln!(
            "netplumb: after {:.1?} these links are still not ready: {}",
            nr.waited,
            nr.pending.join(", ")
        );
    }
    let now = plan::intent(&r.topo, &name);
    let summary = summarize(&name, &r, &now, o.verbose, t0.elapsed());
    r.commit().map_err(|e| diag::plain(e.to_string(), None))?;
    UpRecord::new(&a.file, &a.set, a.name.as_deref(), now).save(&name);
    if !o.quiet {
        crate::out::write(&summary);
        for n in &r.notes {
            eprintln!("netplumb: note: {n}");
        }
    }
    Ok(0)
}

/// "+", "~" or "-": what kind of change a step is.
fn mark(s: &Step) -> char {
    s.op.summary().chars().next().unwrap_or('~')
}

/// The change lines (compressed by kind when there are many) and the count.
pub fn summarize(
    name: &str,
    r: &Runner,
    now: &plan::Intent,
    verbose: bool,
    took: std::time::Duration,
) -> String {
    let done = &r.done;
    if done.is_empty() {
        return format!("topology '{name}': no changes, everything is up to date\n");
    }
    let mut out = String::new();
    let repaired = |s: &Step| r.is_repair(s, now);
    if done.len() <= 40 || verbose {
        for s in done {
            let tag = if repaired(s) { "   (repaired)" } else { "" };
            out.push_str(&format!("{}{tag}\n", s.op.summary()));
        }
    } else {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for s in done {
            let summary = s.op.summary();
            let key: String = summary
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            match counts.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => counts.push((key, 1)),
            }
        }
        for (k, n) in counts {
            out.push_str(&format!("{k} ×{n}\n"));
        }
    }
    let count = |c: char| done.iter().filter(|s| mark(s) == c).count();
    let repairs = done.iter().filter(|s| repaired(s)).count();
    let mut parts = vec![
        format!("{} created", count('+')),
        format!("{} changed", count('~')),
        format!("{} removed", count('-')),
    ];
    if repairs > 0 {
        parts.push(format!("{repairs} repaired"));
    }
    out.push_str(&format!(
        "topology '{name}': {} in {took:.2?}\n",
        parts.join(", ")
    ));
    out
}
