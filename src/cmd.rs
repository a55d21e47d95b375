//! The commands: each turns arguments into a session, a runner and output.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use miette::Report;

use crate::apply::LinuxKernel;
use crate::cli::{Cli, Cmd, ScriptArgs};
use crate::diag;
use crate::kernel::{Kernel, Recorder};
use crate::ledger::{self, Ledger};
use crate::plan;
use crate::run::Runner;
use crate::script::Session;

pub struct Opts {
    pub verbose: bool,
    pub quiet: bool,
    pub sandbox: bool,
}

pub fn run(cli: Cli) -> Result<i32, Report> {
    let json = cli.json;
    let o = Opts {
        verbose: cli.verbose > 0,
        quiet: cli.quiet,
        sandbox: cli.sandbox.is_some(),
    };
    match cli.cmd {
        Cmd::Up { script, no_wait } => up(&o, &script, no_wait),
        Cmd::Down {
            file,
            name,
            all,
            no_wait,
        } => down(&o, file, name, all, no_wait),
        Cmd::Plan { script } => plan_cmd(&o, &script),
        Cmd::Exec { ns, cmd } => {
            require_root(&o)?;
            exec(&ns, &cmd)
        }
        Cmd::Repl { file, name, set } => crate::repl::run(&o, file, name, &set),
        Cmd::Show { name } => crate::show::show(&o, name.as_deref(), json),
        Cmd::Graph {
            name,
            format,
            output,
        } => crate::show::graph(&o, name.as_deref(), format, output),
        Cmd::PingAll { name } => crate::show::ping_all(&o, name.as_deref()),
        Cmd::Doc { module, check } => crate::doc::run(module.as_deref(), check, json),
        Cmd::Check { target, set } => crate::check::run(&o, &target, &set),
        Cmd::Capture(a) => crate::capture::run(&o, &a, json),
        Cmd::Sandbox(c) => {
            let cx = crate::sandbox::Ctx {
                quiet: o.quiet,
                json,
            };
            crate::sandbox::run(&c, &cx)
                .map_err(|e| diag::plain(e.to_string(), e.help().as_deref()))
        }
        Cmd::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "netplumb",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
    }
}

pub fn require_root(o: &Opts) -> Result<(), Report> {
    if !o.sandbox && !nix::unistd::geteuid().is_root() {
        return Err(diag::plain(
            "needs root: this command changes the kernel's network configuration",
            Some("run as root or add --sandbox"),
        ));
    }
    Ok(())
}

pub fn topology_name(file: &Path, name: Option<&str>) -> Result<String, Report> {
    let n = match name {
        Some(n) => n.to_string(),
        None => file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("topology")
            .to_string(),
    };
    ledger::check_topology_name(&n)
        .map_err(|e| diag::plain(e.to_string(), Some("use --name to choose one")))?;
    Ok(n)
}

fn read_script(file: &Path) -> Result<String, Report> {
    std::fs::read_to_string(file).map_err(|e| {
        diag::plain(
            format!("cannot read script {}: {e}", file.display()),
            Some("check the path; scripts end in .rhai"),
        )
    })
}

pub fn script_dir(file: &Path) -> Option<PathBuf> {
    file.parent().map(|p| {
        if p.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            p.to_path_buf()
        }
    })
}

/// Run the script into a session; on any failure roll back and report.
fn run_script(session: &mut Session, file: &Path, text: &str) -> Result<(), Report> {
    let res = session.run_file(file, text);
    let res = match res {
        Ok(_) => {
            let r = session.runner().flush();
            r.map_err(|e| diag::run_error(session, &e))
        }
        Err(e) => {
            let failed = session.runner().failed.take();
            match failed {
                Some(f) => Err(diag::run_error(session, &f)),
                None => Err(diag::script_error(session, &e)),
            }
        }
    };
    if let Err(report) = res {
        let errs = session.runner().rollback();
        if errs.is_empty() {
            return Err(report);
        }
        return Err(diag::plain(
            format!(
                "{report:?}\nand rolling back failed too:\n  {}",
                errs.join("\n  ")
            ),
            None,
        ));
    }
    Ok(())
}

fn up(o: &Opts, a: &ScriptArgs, no_wait: bool) -> Result<i32, Report> {
    require_root(o)?;
    let name = topology_name(&a.file, a.name.as_deref())?;
    let text = read_script(&a.file)?;
    let ledger = Ledger::open(&name, !no_wait)
        .map_err(|e| diag::plain(e.to_string(), Some("or pass --no-wait to fail at once")))?;
    let kernel = LinuxKernel::new().map_err(|e| diag::plain(e.to_string(), None))?;
    let mut runner = Runner::new(&name, Box::new(kernel), Some(ledger))
        .map_err(|e| diag::plain(e.to_string(), None))?;
    runner.verbose = o.verbose;
    runner.quiet = o.quiet;
    let t0 = std::time::Instant::now();
    let mut session = Session::new(runner, script_dir(&a.file), &a.set, a.max_ops);
    run_script(&mut session, &a.file, &text)?;
    let mut r = session.runner();
    r.commit().map_err(|e| diag::plain(e.to_string(), None))?;
    crate::check::save_up_record(&name, &a.file, &a.set);
    if !o.quiet {
        summarize(&name, &r, o.verbose, t0.elapsed());
    }
    Ok(0)
}

fn summarize(name: &str, r: &Runner, verbose: bool, took: std::time::Duration) {
    let done = &r.done;
    if done.is_empty() {
        println!("topology '{name}': no changes, everything is up to date");
        return;
    }
    let repairs = done.iter().filter(|s| r.is_repair(s)).count();
    if done.len() <= 40 || verbose {
        for s in done {
            let tag = if r.is_repair(s) { "   (repaired)" } else { "" };
            println!("{}{tag}", s.op.summary());
        }
    } else {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for s in done {
            let summary = s.op.summary();
            let key: String = summary
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            match counts.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => counts.push((key, 1)),
            }
        }
        for (k, n) in counts {
            println!("{k} ×{n}");
        }
    }
    if repairs > 0 {
        println!(
            "topology '{name}': repaired {repairs} drifted objects, {} changes in {:.2?}",
            done.len(),
            took
        );
    } else {
        println!("topology '{name}': {} changes in {:.2?}", done.len(), took);
    }
}

fn down(
    o: &Opts,
    file: Option<PathBuf>,
    name: Option<String>,
    all: bool,
    no_wait: bool,
) -> Result<i32, Report> {
    require_root(o)?;
    let names = if all {
        ledger::list_topologies().map_err(|e| diag::plain(e.to_string(), None))?
    } else if let Some(f) = &file {
        vec![topology_name(f, None)?]
    } else {
        vec![topology_name(Path::new(""), name.as_deref())?]
    };
    let mut failed = Vec::new();
    for n in names {
        let ledger = Ledger::open(&n, !no_wait).map_err(|e| diag::plain(e.to_string(), None))?;
        let kernel = LinuxKernel::new().map_err(|e| diag::plain(e.to_string(), None))?;
        let mut runner = Runner::new(&n, Box::new(kernel), Some(ledger))
            .map_err(|e| diag::plain(e.to_string(), None))?;
        runner.verbose = o.verbose;
        let res = runner.down();
        if res.is_ok() {
            crate::check::forget_up_record(&n);
        }
        match res {
            Ok(0) if !o.quiet => println!("topology '{n}': nothing to remove"),
            Ok(k) if !o.quiet => println!("topology '{n}': removed {k} objects"),
            Ok(_) => {}
            Err(e) => failed.push(format!("topology '{n}': {e}")),
        }
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

fn plan_cmd(o: &Opts, a: &ScriptArgs) -> Result<i32, Report> {
    let name = topology_name(&a.file, a.name.as_deref())?;
    let text = read_script(&a.file)?;
    let kernel: Box<dyn Kernel> = Box::new(Recorder::new());
    let mut runner =
        Runner::new(&name, kernel, None).map_err(|e| diag::plain(e.to_string(), None))?;
    runner.quiet = true;
    runner.verbose = o.verbose;
    let mut session = Session::new(runner, script_dir(&a.file), &a.set, a.max_ops);
    run_script(&mut session, &a.file, &text)?;
    let r = session.runner();
    let mut out = String::new();
    for s in &r.done {
        for line in plan::render(&s.op) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    print!("{out}");
    Ok(0)
}

fn exec(ns: &str, cmd: &[String]) -> Result<i32, Report> {
    let name = crate::model::NsName::new(ns).map_err(|e| diag::plain(e.to_string(), None))?;
    let dir = crate::apply::netns::NetnsDir::default();
    let file = dir.open(&name).map_err(|e| {
        diag::plain(
            format!("no netns '{ns}': {e}"),
            Some("list namespaces with `ip netns`, or check that you are in the same --sandbox"),
        )
    })?;
    let (prog, args) = cmd
        .split_first()
        .ok_or_else(|| diag::plain("exec needs a command after --", None))?;
    let status = crate::apply::command_in(Some(&file), prog, args)
        .status()
        .map_err(|e| diag::plain(format!("cannot run {prog} in netns {ns}: {e}"), None))?;
    Ok(status.code().unwrap_or(1))
}
