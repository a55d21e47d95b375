//! `netplumb show`, `graph` and `ping-all`.

use std::path::PathBuf;

use miette::Report;

use crate::cli::GraphFormat;
use crate::cmd::Opts;

pub fn show(_o: &Opts, _name: Option<&str>, _json: bool) -> Result<i32, Report> {
    Err(crate::diag::plain("show is not built yet", None))
}

pub fn graph(_o: &Opts, _name: Option<&str>, _format: GraphFormat, _output: Option<PathBuf>) -> Result<i32, Report> {
    Err(crate::diag::plain("graph is not built yet", None))
}

pub fn ping_all(_o: &Opts, _name: Option<&str>) -> Result<i32, Report> {
    Err(crate::diag::plain("ping-all is not built yet", None))
}
