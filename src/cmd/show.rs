//! `netplumb show`, `graph` and `ping-all`: pick the kernel, run the show
//! library over it, write the result and turn failures into reports.

use std::io::Write;
use std::path::PathBuf;

use miette::Report;

use crate::apply::{LinuxKernel, ReadOnly};
use crate::diag;
use crate::kernel::KernelError;
use crate::show::{self, GatherError, GraphFormat, graph, json, pingall, table};

fn gather_err(e: GatherError) -> Report {
    let help = e.help();
    diag::plain(e.to_string(), help)
}

fn kernel_err(e: KernelError) -> Report {
    diag::plain(e.to_string(), None)
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

/// show and graph only read: the kernel that refuses to change anything.
fn reader() -> Result<ReadOnly, Report> {
    ReadOnly::new().map_err(kernel_err)
}

pub fn show(name: Option<&str>, as_json: bool) -> Result<i32, Report> {
    let v = show::views(&mut reader()?, name).map_err(gather_err)?;
    let text = if as_json {
        json::render(&v)
    } else {
        table::render(&v)
    };
    write_out(None, text.as_bytes())?;
    Ok(0)
}

pub fn graph(
    name: Option<&str>,
    format: GraphFormat,
    output: Option<PathBuf>,
) -> Result<i32, Report> {
    let v = show::views(&mut reader()?, name).map_err(gather_err)?;
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

/// `also`: other sites' addresses to ping too (`--all-sites`).
pub fn ping_all(name: Option<&str>, also: &[String]) -> Result<i32, Report> {
    let extra = crate::remote::pingall::parse(also).map_err(|e| diag::plain(e, None))?;
    // Pinging sends packets but changes no configuration.
    let mut k = LinuxKernel::new().map_err(kernel_err)?;
    let v = show::views(&mut k, name).map_err(gather_err)?;
    if v.is_empty() {
        return Err(diag::plain(
            "no netplumb topologies to ping",
            Some("`netplumb up FILE.rhai` makes one"),
        ));
    }
    let mut all_ok = true;
    for (i, t) in v.iter().enumerate() {
        let m = pingall::run_with(&mut k, t, &extra);
        all_ok &= m.ok();
        let mut text = m.render();
        if i > 0 {
            text.insert(0, '\n');
        }
        write_out(None, text.as_bytes())?;
    }
    Ok(if all_ok { 0 } else { 1 })
}
