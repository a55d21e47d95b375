//! One way to run a script against a runner, shared by `up`, `plan`,
//! `check` and the REPL: evaluate it, converge the kernel to what it
//! declared, and on any failure roll back what this run changed and turn
//! the failure into a report at the script line it came from.

use std::path::Path;

use miette::Report;

use crate::diag;
use crate::script::Session;

/// Run `text` (the script `file`) into the session and converge; roll back
/// and report on failure.
pub fn run_file(session: &mut Session, file: &Path, text: &str) -> Result<(), Report> {
    let res = match session.run_file(file, text) {
        Ok(_) => {
            let r = session.runner().flush();
            r.map(|_| ()).map_err(|e| diag::run_error(session, &e))
        }
        Err(e) => failure(session, &e),
    };
    res.map_err(|report| roll_back(session, report))
}

/// The report for a failed evaluation: a convergence failure an `exec()` or
/// `ping()` ran into is reported at the op's own line.
pub fn failure(session: &Session, e: &rhai::EvalAltResult) -> Result<(), Report> {
    let failed = session.runner().failed.take();
    match failed {
        Some(f) => Err(diag::run_error(session, &f)),
        None => Err(diag::script_error(session, e)),
    }
}

/// Undo what the run changed; the report says so when that failed too.
pub fn roll_back(session: &mut Session, report: Report) -> Report {
    let errs = session.runner().rollback();
    if errs.is_empty() {
        return report;
    }
    diag::with_rollback_errors(report, &errs)
}
