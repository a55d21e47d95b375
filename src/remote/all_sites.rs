//! `--all-sites`: `up`, `down` and `ping-all` of a script with sites, run on
//! every site's machine over ssh at once. The script is evaluated here
//! first, with no kernel (as `plan` does), to learn its sites and the local
//! modules it imports; each site then gets the script as a bundle.

use std::path::Path;

use miette::Report;

use super::bundle::Bundle;
use super::fanout::{self, Outcome, Target};
use super::hold::ABORTED;
use crate::cli::ScriptArgs;
use crate::diag;
use crate::drive;
use crate::kernel::Recorder;
use crate::opts::{Opts, read_script, script_dir, script_label, topology_name};
use crate::out::say;
use crate::run::Runner;
use crate::script::Session;

/// What a kernel-less evaluation of the script tells: its sites and the
/// bundle to send them.
struct Learned {
    name: String,
    targets: Vec<Target>,
    bundle: Bundle,
    /// Per site, the other sites' addresses (for ping-all's `--also`).
    others: Vec<(String, Vec<String>)>,
}

fn learn(o: &Opts, a: &ScriptArgs, name: Option<&str>) -> Result<Learned, Report> {
    if o.json {
        return Err(diag::plain(
            "--json with --all-sites: each site reports on its own, as text",
            Some("run `netplumb --json … --site NAME` on one site for its document"),
        ));
    }
    let name = topology_name(&a.file, name)?;
    let text = read_script(&a.file)?;
    let mut rec = Recorder::new();
    rec.assume_devices = true;
    let mut runner =
        Runner::new(&name, Box::new(rec), None).map_err(|e| diag::plain(e.to_string(), None))?;
    runner.quiet = true;
    runner.script = script_label(&a.file);
    let mut session = Session::new(runner, script_dir(&a.file), &a.set, a.max_ops);
    session.set_max_memory(a.max_memory);
    // Each site prints the script's print() lines: not once more here.
    session.engine.on_print(|_| {});
    drive::run_file(&mut session, &a.file, &text)?;
    let targets = super::site_targets(&session);
    if targets.is_empty() {
        return Err(diag::plain(
            format!(
                "--all-sites: {} declares no site(): nothing to run elsewhere",
                script_label(&a.file)
            ),
            Some(
                "run it here without --all-sites, or declare its machines with site(\"east\", #{ underlay: \"192.0.2.1\" })",
            ),
        ));
    }
    let modules = session
        .sources
        .lock()
        .map(|s| s.modules.clone())
        .unwrap_or_default();
    let bundle = Bundle::of(&script_label(&a.file), &text, &modules)
        .map_err(|e| diag::plain(e.to_string(), None))?;
    let others = super::pingall::others(&session);
    Ok(Learned {
        name,
        targets,
        bundle,
        others,
    })
}

/// The global flags a site's netplumb gets too.
fn global(o: &Opts) -> Vec<String> {
    let mut v = Vec::new();
    if o.verbose {
        v.push("-v".into());
    }
    if o.quiet {
        v.push("-q".into());
    }
    v
}

/// `up FILE --all-sites`: every site's part, held until all are ready,
/// then committed everywhere; a failure anywhere rolls every site back.
pub fn up(o: &Opts, a: &ScriptArgs, no_wait: bool) -> Result<i32, Report> {
    let l = learn(o, a, a.name.as_deref())?;
    let bytes = l.bundle.encode();
    let args_of = |t: &Target| {
        let mut v = global(o);
        v.extend(["up", "-", "--site", &t.name, "--name", &l.name, "--hold"].map(String::from));
        if no_wait {
            v.push("--no-wait".into());
        }
        for (k, val) in &a.set {
            v.push("--set".into());
            v.push(format!("{k}={val}"));
        }
        v
    };
    let res = fanout::run(
        &fanout::ssh_words(),
        &l.targets,
        args_of,
        Some(&bytes),
        true,
        o.verbose,
    );
    let failed: Vec<&Outcome> = res
        .iter()
        .filter(|r| !r.ready || (r.code != Some(0) && r.code != Some(ABORTED)))
        .collect();
    if failed.is_empty() && res.iter().all(|r| r.code == Some(0)) {
        if !o.quiet {
            say!(
                "topology '{}': up on all {} sites ({})",
                l.name,
                res.len(),
                fanout::names(&res)
            );
        }
        return Ok(0);
    }
    let rolled: Vec<&Outcome> = res.iter().filter(|r| r.code == Some(ABORTED)).collect();
    let kept: Vec<&Outcome> = res.iter().filter(|r| r.code == Some(0)).collect();
    let mut msg = failures(&failed);
    if !rolled.is_empty() {
        msg.push_str(&format!("; {} rolled back", fanout::names(rolled)));
    }
    // Every site said READY and got COMMIT, yet one failed after: the
    // others have committed.
    if !kept.is_empty() {
        msg.push_str(&format!("; {} stayed up", fanout::names(kept)));
    }
    Err(diag::plain(
        msg,
        Some("fix the cause and run `up --all-sites` again: it starts over on every site"),
    ))
}

/// `down FILE --all-sites` (or `--name N FILE`): each site removes its part.
pub fn down(
    o: &Opts,
    file: Option<&Path>,
    name: Option<&str>,
    no_wait: bool,
) -> Result<i32, Report> {
    let Some(file) = file else {
        return Err(diag::plain(
            "down --all-sites needs the script: it names the sites and how to reach them",
            Some("netplumb down lab.rhai --all-sites (with --name N for another name)"),
        ));
    };
    let a = plain_args(file);
    let l = learn(o, &a, name)?;
    let args_of = |t: &Target| {
        let mut v = global(o);
        v.extend(["down", "--name", &l.name, "--site", &t.name].map(String::from));
        if no_wait {
            v.push("--no-wait".into());
        }
        v
    };
    let res = fanout::run(
        &fanout::ssh_words(),
        &l.targets,
        args_of,
        None,
        false,
        o.verbose,
    );
    finish(&res, "down")
}

/// `ping-all FILE --all-sites` (or a name whose record names the script):
/// each site's ping-all, exit 1 when any failed.
pub fn ping_all(o: &Opts, target: &str) -> Result<i32, Report> {
    let (file, name) = if target.ends_with(".rhai") || Path::new(target).is_file() {
        (std::path::PathBuf::from(target), None)
    } else {
        match crate::uprecord::UpRecord::load(target) {
            Some(u) if !super::is_stdin(&u.script) => (u.script, Some(target)),
            _ => {
                return Err(diag::plain(
                    format!("ping-all --all-sites: no script known for topology '{target}' here"),
                    Some("give the script: netplumb ping-all lab.rhai --all-sites"),
                ));
            }
        }
    };
    let l = learn(o, &plain_args(&file), name)?;
    let args_of = |t: &Target| {
        let mut v = global(o);
        v.extend(["ping-all", &l.name].map(String::from));
        let theirs = l.others.iter().filter(|(s, _)| *s == t.name);
        for a in theirs.flat_map(|(_, a)| a) {
            v.push("--also".into());
            v.push(a.clone());
        }
        v
    };
    let res = fanout::run(
        &fanout::ssh_words(),
        &l.targets,
        args_of,
        None,
        false,
        o.verbose,
    );
    finish(&res, "ping-all")
}

fn plain_args(file: &Path) -> ScriptArgs {
    ScriptArgs {
        file: file.to_path_buf(),
        set: Vec::new(),
        name: None,
        site: None,
        max_ops: 50_000_000,
        max_memory: crate::script::limits::DEFAULT_MAX_MEMORY_MIB,
    }
}

/// Every site's exit: 0 when all succeeded, else the failures named.
fn finish(res: &[Outcome], what: &str) -> Result<i32, Report> {
    let failed: Vec<&Outcome> = res.iter().filter(|r| r.code != Some(0)).collect();
    if failed.is_empty() {
        return Ok(0);
    }
    let ok: Vec<&Outcome> = res.iter().filter(|r| r.code == Some(0)).collect();
    let mut msg = failures(&failed);
    if !ok.is_empty() {
        msg.push_str(&format!("; {what} succeeded on {}", fanout::names(ok)));
    }
    Err(diag::plain(msg, None))
}

/// A line per failed site, with its reason.
fn failures(failed: &[&Outcome]) -> String {
    failed
        .iter()
        .map(|f| format!("site {} failed: {}", f.name, fanout::why(f)))
        .collect::<Vec<_>>()
        .join("\n")
}
