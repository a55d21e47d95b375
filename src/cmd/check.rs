//! `netplumb check FILE` validates a script without root and without the
//! kernel; `netplumb check NAME` re-runs the topology's recorded script
//! against what the kernel has now, changing nothing, and reports drift
//! with the command that repairs it.

use std::path::Path;

use miette::Report;

use crate::apply::ReadOnly;
use crate::diag;
use crate::drive;
use crate::kernel::{Kernel, Recorder};
use crate::ledger;
use crate::opts::{Opts, read_script, require_root, script_dir, script_label, topology_name};
use crate::out::say;
use crate::report;
use crate::run::Runner;
use crate::script::Session;
use crate::uprecord::UpRecord;

/// Results a script got that were not measured are never shown as facts.
pub fn say_not_run(not_run: &[String]) {
    if not_run.is_empty() {
        return;
    }
    eprintln!(
        "note: not run (no kernel was asked): {}; the script saw ping → true and exec → status 0 with no output",
        not_run.join(", ")
    );
}

/// `check FILE` of a script with sites: every site's part is planned (and
/// so validated) as its machine would, and the counts said per site.
fn check_sites(
    o: &Opts,
    target: &str,
    name: &str,
    set: &[(String, String)],
    sites: &[String],
) -> Result<i32, Report> {
    let mut counts = Vec::new();
    for s in sites {
        let mut rec = Recorder::new();
        rec.assume_devices = true;
        let session = run_into(
            Box::new(rec),
            name,
            Path::new(target),
            set,
            None,
            Some(s.clone()),
        )?;
        let r = session.runner();
        counts.push(format!("{s} {}", r.done.len()));
        say_not_run(&r.not_run);
    }
    if !o.quiet {
        say!(
            "{target}: valid; {} sites, on empty machines their parts make {} changes",
            sites.len(),
            counts.join(", ")
        );
    }
    Ok(0)
}

/// With `--json`, a script that does not run is still a document
/// (`"valid": false`); the report goes to stderr as always.
fn json_invalid(o: &Opts, target: &str, kind: &'static str, e: Report) -> Report {
    if o.json {
        report::emit(&report::doc::Check::invalid(target, kind, e.to_string()));
    }
    e
}

/// Run `file` into a session over `kernel`; the session, or the report.
fn run_into(
    kernel: Box<dyn Kernel>,
    name: &str,
    file: &Path,
    set: &[(String, String)],
    owned: Option<Vec<ledger::Entry>>,
    site: Option<String>,
) -> Result<Session, Report> {
    let text = read_script(file)?;
    let mut runner =
        Runner::new(name, kernel, None).map_err(|e| diag::plain(e.to_string(), None))?;
    runner.quiet = true;
    runner.script = script_label(file);
    runner.sites.selected = site;
    if let Some(owned) = owned {
        runner.assume_owned(owned);
        runner.read_world = true;
    }
    let mut session = Session::new(runner, script_dir(file), set, 50_000_000);
    report::stream::debug_to_stderr(&mut session.engine);
    drive::run_file(&mut session, file, &text)?;
    Ok(session)
}

pub fn run(
    o: &Opts,
    target: &str,
    set: &[(String, String)],
    site: Option<String>,
) -> Result<i32, Report> {
    let path = Path::new(target);
    if target.ends_with(".rhai") || path.is_file() {
        let name = topology_name(path, None)?;
        let mut rec = Recorder::new();
        rec.assume_devices = true;
        let session = run_into(Box::new(rec), &name, path, set, None, site.clone())
            .map_err(|e| json_invalid(o, target, "file", e))?;
        let sites = session.runner().sites.names();
        if site.is_none() && !sites.is_empty() {
            if o.json {
                return Err(diag::plain(
                    format!(
                        "check --json of a script with sites is one document per site: add --site NAME ({})",
                        sites.join(", ")
                    ),
                    None,
                ));
            }
            return check_sites(o, target, &name, set, &sites);
        }
        let mut r = session.runner();
        if o.json {
            let changes = report::doc::dry_changes(&mut r, false);
            report::emit(&report::doc::Check::file(target, changes, &r.not_run));
        } else if !o.quiet {
            say!(
                "{target}: valid; on an empty machine it makes {} changes",
                r.done.len()
            );
        }
        say_not_run(&r.not_run);
        return Ok(0);
    }
    require_root(o)?;
    ledger::check_topology_name(target).map_err(|e| diag::plain(e.to_string(), None))?;
    let rec = UpRecord::load(target).ok_or_else(|| {
        diag::plain(
            format!("no record of how topology '{target}' was brought up"),
            Some("check FILE.rhai validates a script; check NAME needs a topology made by `netplumb up`"),
        )
    })?;
    let owned = ledger::read_entries(target).map_err(diag::ledger)?;
    let kernel = ReadOnly::new().map_err(|e| diag::plain(e.to_string(), None))?;
    let session = run_into(
        Box::new(kernel),
        target,
        &rec.script,
        &rec.set,
        Some(owned),
        rec.site.clone(),
    )
    .map_err(|e| json_invalid(o, target, "topology", e))?;
    if o.json {
        let mut r = session.runner();
        let changes = report::doc::dry_changes(&mut r, true);
        let drifted = !changes.is_empty();
        let script = rec.script.display().to_string();
        let repair = rec.up_command(target);
        report::emit(&report::doc::Check::topology(
            target, script, repair, changes, &r.not_run,
        ));
        return Ok(if drifted { 1 } else { 0 });
    }
    let done = &session.runner().done;
    if done.is_empty() {
        if !o.quiet {
            say!(
                "topology '{target}': no drift, the kernel matches {}",
                rec.script.display()
            );
        }
        return Ok(0);
    }
    say!(
        "topology '{target}': drifted; `{}` would repair:",
        rec.up_command(target)
    );
    for s in done {
        say!("  {}", s.op.summary());
    }
    Ok(1)
}
