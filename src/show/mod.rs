//! `netplumb show`, `graph` and `ping-all`: read a topology back from the
//! kernel (model), then print it as a table, JSON, a picture or a
//! reachability matrix. The REPL's `:show` calls `show_text`.

pub mod graph;
pub mod json;
mod mappings;
pub mod model;
pub mod pingall;
pub mod table;

use std::io::Write;
use std::path::PathBuf;

use miette::Report;

use crate::cli::GraphFormat;
use crate::diag;
use crate::ledger::{self, Entry as Owned};
use crate::opts::Opts;
use model::{GatherError, TopologyView};

fn gather_err(e: GatherError) -> Report {
    let help = e.help();
    diag::plain(e.to_string(), help)
}

/// The ledgers of the named topology, or of every topology.
pub fn records(name: Option<&str>) -> Result<Vec<(String, Vec<Owned>)>, GatherError> {
    let known = ledger::list_topologies()?;
    let names = match name {
        None => known,
        Some(n) if known.iter().any(|k| k == n) => vec![n.to_string()],
        Some(n) => {
            return Err(GatherError::NoTopology {
                name: n.to_string(),
                known,
            });
        }
    };
    names
        .into_iter()
        .map(|n| {
            let e = ledger::read_entries(&n)?;
            Ok((n, e))
        })
        .collect()
}

pub fn views(name: Option<&str>) -> Result<Vec<TopologyView>, Report> {
    let recs = records(name).map_err(gather_err)?;
    model::gather(&recs).map_err(gather_err)
}

/// The table for one topology (or all): what the REPL's `:show` prints.
// Not called yet: the REPL (another change in flight) switches its `:show` to it.
pub fn show_text(name: Option<&str>) -> Result<String, Report> {
    Ok(table::render(&views(name)?))
}

fn write_out(output: Option<&PathBuf>, bytes: &[u8]) -> Result<(), Report> {
    let res = match output {
        Some(p) => std::fs::write(p, bytes).map_err(|e| (p.display().to_string(), e)),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)
                .and_then(|_| out.flush())
                .map_err(|e| ("stdout".to_string(), e))
        }
    };
    match res {
        Ok(()) => Ok(()),
        // `netplumb show | head` is not an error.
        Err((_, e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err((what, e)) => Err(diag::plain(format!("cannot write {what}: {e}"), None)),
    }
}

pub fn show(o: &Opts, name: Option<&str>, json: bool) -> Result<i32, Report> {
    let _ = o;
    let v = views(name)?;
    let text = if json {
        json::render(&v)
    } else {
        table::render(&v)
    };
    write_out(None, text.as_bytes())?;
    Ok(0)
}

pub fn graph(
    o: &Opts,
    name: Option<&str>,
    format: GraphFormat,
    output: Option<PathBuf>,
) -> Result<i32, Report> {
    let _ = o;
    let v = views(name)?;
    if v.is_empty() {
        return Err(diag::plain(
            "no netplumb topologies to draw",
            Some("`netplumb up FILE.rhai` makes one"),
        ));
    }
    let bytes = match format {
        GraphFormat::Dot => graph::dot(&v).into_bytes(),
        GraphFormat::Mermaid => graph::mermaid(&v).into_bytes(),
        GraphFormat::Svg => graph::svg(&v).map_err(|e| {
            let help = e.help();
            diag::plain(e.to_string(), help)
        })?,
    };
    write_out(output.as_ref(), &bytes)?;
    Ok(0)
}

pub fn ping_all(o: &Opts, name: Option<&str>) -> Result<i32, Report> {
    let _ = o;
    let v = views(name)?;
    if v.is_empty() {
        return Err(diag::plain(
            "no netplumb topologies to ping",
            Some("`netplumb up FILE.rhai` makes one"),
        ));
    }
    let mut all_ok = true;
    for (i, t) in v.iter().enumerate() {
        let m = pingall::run(t).map_err(|e| {
            diag::plain(
                format!("ping-all in topology '{}': {e}", t.name),
                Some("run as root or add --sandbox"),
            )
        })?;
        all_ok &= m.ok();
        let mut text = m.render();
        if i > 0 {
            text.insert(0, '\n');
        }
        write_out(None, text.as_bytes())?;
    }
    Ok(if all_ok { 0 } else { 1 })
}
