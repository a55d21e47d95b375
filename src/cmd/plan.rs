//! `netplumb plan FILE`: the from-scratch `ip` / `nft` commands of a script,
//! without root and without touching the kernel. `plan --diff FILE`: exactly
//! what `up` would run now against the live kernel.

use miette::Report;

use crate::apply::ReadOnly;
use crate::cli::ScriptArgs;
use crate::diag;
use crate::drive;
use crate::kernel::{Kernel, Recorder};
use crate::ledger;
use crate::opts::{Opts, read_script, script_dir, script_label, topology_name};
use crate::plan;
use crate::report;
use crate::run::Runner;
use crate::script::Session;

pub fn run(o: &Opts, a: &ScriptArgs, diff: bool) -> Result<i32, Report> {
    let session = eval(o, a, diff, a.site.clone())?;
    let sites = session.runner().sites.list.clone();
    if sites.is_empty() || a.site.is_some() {
        let code = say(o, a, diff, &session)?;
        session.end_of_command();
        return Ok(code);
    }
    if o.json {
        return Err(diag::plain(
            format!(
                "plan --json of a script with sites is one document per site: add --site NAME ({})",
                sites
                    .iter()
                    .map(|s| s.name.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None,
        ));
    }
    // Every site's plan, each under its header (issue 19).
    drop(session);
    for s in sites {
        crate::out::write(&format!("# site {} (underlay {})\n", s.name, s.underlay));
        let session = eval(o, a, diff, Some(s.name.to_string()))?;
        say(o, a, diff, &session)?;
    }
    Ok(0)
}

/// Run the script with `site`'s part selected.
fn eval(o: &Opts, a: &ScriptArgs, diff: bool, site: Option<String>) -> Result<Session, Report> {
    let name = topology_name(&a.file, a.name.as_deref())?;
    let text = read_script(&a.file)?;
    let kernel: Box<dyn Kernel> = if diff {
        Box::new(ReadOnly::new().map_err(|e| diag::plain(e.to_string(), None))?)
    } else {
        let mut rec = Recorder::new();
        rec.assume_devices = true;
        Box::new(rec)
    };
    let mut runner =
        Runner::new(&name, kernel, None).map_err(|e| diag::plain(e.to_string(), None))?;
    runner.quiet = true;
    runner.verbose = o.verbose;
    runner.script = script_label(&a.file);
    runner.sites.selected = site;
    if diff {
        runner.assume_owned(ledger::read_entries(&name).map_err(diag::ledger)?);
        runner.read_world = true;
    }
    let mut session = Session::new(runner, script_dir(&a.file), &a.set, a.max_ops);
    session.set_max_memory(a.max_memory);
    report::stream::debug_to_stderr(&mut session.engine);
    drive::run_file(&mut session, &a.file, &text)?;
    Ok(session)
}

fn say(o: &Opts, a: &ScriptArgs, diff: bool, session: &Session) -> Result<i32, Report> {
    let name = topology_name(&a.file, a.name.as_deref())?;
    let mut r = session.runner();
    if o.json {
        let ops = report::doc::dry_changes(&mut r, diff);
        report::emit(&report::doc::Plan::new(&name, diff, ops, &r.not_run));
        super::check::say_not_run(&r.not_run);
        return Ok(0);
    }
    let mut out = String::new();
    for t in r.sites.selected_tunnels() {
        out.push_str(&t.mtu_comment());
        out.push('\n');
    }
    for s in &r.done {
        // `up` makes routes as `ip route add` does (proto boot), so the
        // same lines serve the from-scratch plan and --diff.
        for line in plan::render(&s.op) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    crate::out::write(&out);
    super::check::say_not_run(&r.not_run);
    Ok(0)
}
