//! `netplumb repl` (issue: interactive REPL).

use std::path::PathBuf;

use miette::Report;

use crate::cmd::Opts;

pub fn run(_o: &Opts, _file: Option<PathBuf>, _name: Option<String>, _set: &[(String, String)]) -> Result<i32, Report> {
    Err(crate::diag::plain("the REPL is not built yet", None))
}
