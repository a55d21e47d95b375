//! `netplumb down`: remove exactly what a topology created, newest first,
//! leaving what other topologies still use. `--all` goes on past a
//! topology it cannot read and reports it at the end.

use std::path::{Path, PathBuf};

use miette::Report;

use crate::apply::LinuxKernel;
use crate::diag;
use crate::ledger::{self, Ledger};
use crate::opts::{Opts, topology_name};
use crate::out::say;
use crate::report::{self, doc::DownOne};
use crate::run::Runner;
use crate::uprecord::UpRecord;

pub fn run(
    o: &Opts,
    file: Option<PathBuf>,
    name: Option<String>,
    all: bool,
    no_wait: bool,
    force_forget: bool,
    site: Option<String>,
) -> Result<i32, Report> {
    if force_forget {
        // `down --force-forget NAME`, as the damaged-record error says it:
        // the word is the topology's name (a script's stem names it too).
        let n = match &file {
            Some(f) if name.is_none() => topology_name(f, None)?,
            _ => topology_name(Path::new(""), name.as_deref())?,
        };
        let had = ledger::force_forget(&n).map_err(diag::ledger)?;
        UpRecord::forget(&n);
        if o.json {
            let mut one = DownOne::named(&n);
            one.forgotten = had;
            report::emit(&report::doc::Down::new(vec![one]));
        } else if !o.quiet {
            if had {
                say!("topology '{n}': record forgotten; nothing in the kernel was touched");
            } else {
                say!("topology '{n}': had no record");
            }
        }
        return Ok(0);
    }
    let names = if all {
        ledger::list_topologies().map_err(diag::ledger)?
    } else if let Some(f) = &file {
        vec![topology_name(f, None)?]
    } else {
        let n = topology_name(Path::new(""), name.as_deref())?;
        let known = ledger::list_topologies().map_err(diag::ledger)?;
        // A topology that was started (it has a lock) but recorded nothing
        // yet has nothing to remove; a name never used at all is a typo.
        if !known.contains(&n) && !ledger::was_started(&n) {
            let list = if known.is_empty() {
                "netplumb has no topologies here".to_string()
            } else {
                format!("known: {}", known.join(", "))
            };
            return Err(diag::plain(
                format!("no topology named '{n}' ({list})"),
                Some("`netplumb show` lists every topology; names are the scripts' file stems"),
            ));
        }
        vec![n]
    };
    if let Some(s) = &site {
        for n in &names {
            other_site(n, s)?;
        }
    }
    let mut failed = Vec::new();
    let mut docs = Vec::new();
    for n in names {
        let mut doc = DownOne::named(&n);
        match down_one(o, &n, no_wait, &mut doc) {
            Ok(_) if o.json => {}
            Ok(0) if !o.quiet => say!("topology '{n}': nothing to remove"),
            Ok(k) if !o.quiet => say!("topology '{n}': removed {k} objects"),
            Ok(_) => {}
            Err(e) => {
                doc.error = Some(e.clone());
                failed.push(format!("topology '{n}': {e}"));
            }
        }
        docs.push(doc);
    }
    if o.json {
        report::emit(&report::doc::Down::new(docs));
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        Err(diag::plain(
            failed.join("\n"),
            Some("what could be removed was; run down again after fixing the cause"),
        ))
    }
}

/// `down --site S`: refused, before anything is touched, unless this
/// machine holds site S's part of topology `n` (issue 19).
fn other_site(n: &str, s: &str) -> Result<(), Report> {
    let here = UpRecord::load(n).and_then(|r| r.site);
    match here {
        Some(h) if h == s => Ok(()),
        Some(h) => Err(diag::plain(
            format!(
                "topology '{n}' on this machine is site {h}'s part, not {s}'s: nothing removed"
            ),
            Some("run down --site on the machine of that site, or without --site here"),
        )),
        None => Err(diag::plain(
            format!(
                "topology '{n}' on this machine is not a site's part (it was brought up without --site): nothing removed"
            ),
            None,
        )),
    }
}

fn down_one(o: &Opts, n: &str, no_wait: bool, doc: &mut DownOne) -> Result<usize, String> {
    let ledger = Ledger::open(n, !no_wait, o.quiet).map_err(|e| match e.help() {
        Some(h) => format!("{e}\n  help: {h}"),
        None => e.to_string(),
    })?;
    let kernel = LinuxKernel::new().map_err(|e| e.to_string())?;
    let mut runner = Runner::new(n, Box::new(kernel), Some(ledger)).map_err(|e| e.to_string())?;
    runner.verbose = o.verbose;
    let before = runner.owned().to_vec();
    let res = runner.down();
    if o.json {
        let after = runner.owned().to_vec();
        (doc.objects, doc.left) = report::doc::down_objects(runner.kernel(), &before, &after);
        doc.notes = runner.notes.clone();
    } else if !o.quiet {
        for note in &runner.notes {
            eprintln!("netplumb: note: {note}");
        }
    }
    let k = res.map_err(|e| e.to_string())?;
    doc.removed = k;
    UpRecord::forget(n);
    Ok(k)
}
