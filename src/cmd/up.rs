//! `netplumb up`: run the script and converge the kernel to it, then say
//! what changed: `+` created, `~` changed, `-` removed, "(repaired)" where
//! the kernel had drifted from what the topology last made.

use std::io::Write;

use miette::Report;

use crate::apply::LinuxKernel;
use crate::cli::ScriptArgs;
use crate::diag;
use crate::drive;
use crate::ledger::Ledger;
use crate::opts::{Opts, script_label, topology_name};
use crate::remote::{self, hold};
use crate::report::{self, stream::Stream};
use crate::run::{Checked, Runner};
use crate::script::Session;
use crate::uprecord::UpRecord;

pub fn run(o: &Opts, a: &ScriptArgs, no_wait: bool, held: bool) -> Result<i32, Report> {
    let Some((checked, session)) = up_held(o, a, no_wait, held)? else {
        return Ok(hold::ABORTED);
    };
    session.end_of_command();
    Ok(if say_asserts(o, &checked, true) > 0 {
        1
    } else {
        0
    })
}

/// Each failed assertion on stderr with its line (passes too with -v);
/// how many failed.
pub fn say_asserts(o: &Opts, checked: &[Checked], stays_up: bool) -> usize {
    let mut failed = 0;
    for c in checked {
        let a = &c.assertion;
        if !c.passed {
            failed += 1;
            eprintln!("netplumb: {}: {} failed: {}", a.pos, a.call(), c.detail);
        } else if o.verbose {
            eprintln!("netplumb: {}: {} passed: {}", a.pos, a.call(), c.detail);
        }
    }
    if failed > 0 {
        let up = if stays_up {
            " (the topology stays up for inspection)"
        } else {
            ""
        };
        eprintln!(
            "netplumb: {failed} of {} assertions failed{up}",
            checked.len()
        );
    }
    failed
}

/// `up`, then the script's assertions (once everything is converged and
/// every daemon is ready): their results.
pub fn up(o: &Opts, a: &ScriptArgs, no_wait: bool) -> Result<Vec<Checked>, Report> {
    // `watch` re-runs a topology from its up record: one made by `up -`
    // records no script, and reading stdin instead would be an empty
    // script, which removes everything.
    if remote::is_stdin(&a.file) {
        return Err(diag::plain(
            "it was brought up from stdin (`up -`, as `up --all-sites` does): \
             its script is not kept on this machine, so it cannot be run again here",
            Some("run `up --all-sites` again from the machine that has the script"),
        ));
    }
    // Freed here: `test` and `watch` go on in this process.
    Ok(up_held(o, a, no_wait, false)?
        .map(|(checked, _)| checked)
        .unwrap_or_default())
}

/// `up`, holding the changes until stdin says COMMIT when `held`
/// (`up - --hold`): None when told to roll back; else the assertions'
/// results and the session, for the caller to free or not.
fn up_held(
    o: &Opts,
    a: &ScriptArgs,
    no_wait: bool,
    held: bool,
) -> Result<Option<(Vec<Checked>, Session)>, Report> {
    let src = remote::Script::read(&a.file, a.name.is_some())?;
    if held && !src.is_bundle() {
        return Err(diag::plain(
            "--hold waits for COMMIT on stdin after the script: it needs the script as a bundle (`up - --hold`)",
            Some("`up --all-sites` sends one (the format: docs/all-sites.md)"),
        ));
    }
    let name = topology_name(&a.file, a.name.as_deref())?;
    let ledger = Ledger::open(&name, !no_wait, o.quiet).map_err(diag::ledger)?;
    let kernel = LinuxKernel::new().map_err(|e| diag::plain(e.to_string(), None))?;
    let mut runner = Runner::new(&name, Box::new(kernel), Some(ledger))
        .map_err(|e| diag::plain(e.to_string(), None))?;
    runner.verbose = o.verbose;
    runner.quiet = o.quiet;
    runner.script = script_label(&src.file);
    runner.sites.selected = a.site.clone();
    runner.prev_intent = UpRecord::load(&name).map(|u| u.intent).unwrap_or_default();
    let t0 = std::time::Instant::now();
    let mut session = Session::new(runner, src.dir.clone(), &a.set, a.max_ops);
    src.install(&mut session);
    session.set_max_memory(a.max_memory);
    let stream = Stream::install(&mut session, o.json, o.quiet, o.verbose);
    drive::run_file(&mut session, &src.file, &src.text).inspect_err(|_| {
        if stream.reported() > 0 && !o.quiet {
            eprintln!("netplumb: the run failed: the changes listed above are rolled back");
        }
    })?;
    let mut r = session.runner();
    let t_settle = std::time::Instant::now();
    let mut not_ready = Vec::new();
    let settled = r.settle();
    if o.verbose {
        eprintln!(
            "netplumb: script and its flushes {:?}, waiting for links to be ready {:?}",
            t_settle - t0,
            t_settle.elapsed()
        );
    }
    if let Err(nr) = settled {
        if !o.quiet && !o.json {
            eprintln!(
                "netplumb: after {:.1?} these links are still not ready: {}",
                nr.waited,
                nr.pending.join(", ")
            );
        }
        not_ready = nr.pending;
    }
    let now = r.intent();
    // The text report shows no shell lines, and -q none at all.
    let all = if o.json {
        report::changes(&r, &r.done, &now, report::Change::of)
    } else if !o.quiet {
        report::changes(&r, &r.done, &now, report::Change::brief)
    } else {
        Vec::new()
    };
    let took = t0.elapsed();
    if held && let hold::Verdict::Abort(why) = hold::wait() {
        let errs = r.rollback();
        if !errs.is_empty() {
            let report = diag::plain(format!("{why}: rolling back"), None);
            return Err(diag::with_rollback_errors(report, &errs));
        }
        if !o.quiet {
            // Not eprintln!: when the driver's ssh is gone, so is stderr.
            let _ = writeln!(
                std::io::stderr(),
                "netplumb: {why}: the changes are rolled back; the machine is as before"
            );
        }
        return Ok(None);
    }
    r.commit_last()
        .map_err(|e| diag::plain(e.to_string(), None))?;
    let mut rec = UpRecord::new(&a.file, &a.set, a.name.as_deref(), now);
    rec.site = a.site.clone();
    rec.save(&name);
    let checked = r.check_asserts();
    if o.json {
        let mut doc = report::doc::Up::new(&name, all);
        doc.asserts = checked.iter().map(report::doc::Assert::of).collect();
        doc.notes = r.notes.clone();
        doc.not_ready = not_ready;
        doc.printed = stream.printed();
        doc.seconds = took.as_secs_f64();
        report::emit(&doc);
    } else if !o.quiet {
        let mut out = stream.rest(&all);
        out.push_str(&report::counts_line(&name, &all, took));
        crate::out::write(&out);
        for n in &r.notes {
            eprintln!("netplumb: note: {n}");
        }
    }
    drop(r);
    Ok(Some((checked, session)))
}
