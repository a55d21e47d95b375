//! `netplumb import`: write the script that rebuilds what the kernel has.

use std::path::Path;

use miette::Report;

use crate::apply::ReadOnly;
use crate::diag;
use crate::import::{ImportError, Selection, import};
use crate::opts::Opts;

pub fn run(o: &Opts, netns: &[String], host: bool, output: Option<&Path>) -> Result<i32, Report> {
    let mut k = ReadOnly::new().map_err(|e| diag::plain(e.to_string(), None))?;
    let sel = Selection {
        netns: netns.to_vec(),
        host,
    };
    let text = import(&mut k, &sel).map_err(|e| match e {
        ImportError::Usage(_) => diag::plain(e.to_string(), Some("see `netplumb import --help`")),
        e => diag::plain(e.to_string(), None),
    })?;
    match output {
        None => crate::out::write(&text),
        Some(p) => {
            std::fs::write(p, &text)
                .map_err(|e| diag::plain(format!("cannot write {}: {e}", p.display()), None))?;
            if !o.quiet {
                eprintln!("wrote {} ({} lines)", p.display(), text.lines().count());
            }
        }
    }
    Ok(0)
}
