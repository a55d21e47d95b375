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
    if let Some(n) = name
        && (n.ends_with(".rhai") || std::path::Path::new(n).is_file())
    {
        return graph_file(std::path::Path::new(n), format, output);
    }
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

/// `graph FILE.rhai` of a script with sites: every site's part, from the
/// script (no kernel is read: no one machine has them all).
fn graph_file(
    path: &std::path::Path,
    format: GraphFormat,
    output: Option<PathBuf>,
) -> Result<i32, Report> {
    use crate::opts::{read_script, script_dir, script_label, topology_name};
    let name = topology_name(path, None)?;
    let text = read_script(path)?;
    let mut rec = crate::kernel::Recorder::new();
    rec.assume_devices = true;
    let mut runner = crate::run::Runner::new(&name, Box::new(rec), None)
        .map_err(|e| diag::plain(e.to_string(), None))?;
    runner.quiet = true;
    runner.script = script_label(path);
    let mut session = crate::script::Session::new(runner, script_dir(path), &[], 50_000_000);
    crate::drive::run_file(&mut session, path, &text)?;
    let r = session.runner();
    if !r.sites.any() {
        return Err(diag::plain(
            format!(
                "{}: graph FILE draws a script with sites; this one has none",
                path.display()
            ),
            Some("`netplumb graph NAME` draws a topology as the kernel has it"),
        ));
    }
    let parts: Vec<graph::sites::SitePart> = r
        .sites
        .list
        .iter()
        .filter_map(|s| {
            Some(graph::sites::SitePart {
                name: s.name.to_string(),
                underlay: s.underlay.to_string(),
                topo: r.sites.part(&r.topo, Some(&s.name))?,
            })
        })
        .collect();
    let tunnels = &r.sites.tunnels;
    let bytes = match format {
        GraphFormat::Dot => graph::sites::dot(&parts, tunnels).into_bytes(),
        GraphFormat::Mermaid => graph::sites::mermaid(&parts, tunnels).into_bytes(),
        GraphFormat::Svg => graph::svg_of(graph::sites::dot(&parts, tunnels)).map_err(|e| {
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
