//! The commands: each turns arguments into a session, a runner and output.
//! The root check is made here, before any command starts.

mod check;
mod down;
mod exec;
mod import;
mod man;
mod plan;
mod ps;
mod show;
mod test;
mod up;
mod watch;

use clap::CommandFactory;
use miette::Report;

use crate::cli::{Cli, Cmd};
use crate::opts::{Opts, require_root};

/// Does the command change or read the kernel's network configuration?
fn needs_root(cmd: &Cmd) -> bool {
    match cmd {
        // --all-sites changes other machines, over ssh: not this one.
        Cmd::Up { all_sites, .. }
        | Cmd::Down { all_sites, .. }
        | Cmd::PingAll { all_sites, .. } => !all_sites,
        Cmd::Test { .. }
        | Cmd::Exec { .. }
        | Cmd::Repl { .. }
        | Cmd::Show { .. }
        | Cmd::Graph { .. }
        | Cmd::Import { .. }
        | Cmd::Watch { .. } => true,
        Cmd::Plan { diff, .. } => *diff,
        // `check NAME` reads the kernel; `check FILE` does not (decided
        // there); capture and sandbox check for themselves.
        Cmd::Check { .. }
        | Cmd::Doc { .. }
        | Cmd::Completions { .. }
        | Cmd::Man { .. }
        | Cmd::Ps { .. }
        | Cmd::Logs { .. }
        | Cmd::Capture(_)
        | Cmd::Sandbox(_) => false,
    }
}

pub fn run(cli: Cli) -> Result<i32, Report> {
    let o = Opts {
        verbose: cli.verbose > 0,
        quiet: cli.quiet,
        sandbox: cli.sandbox.is_some() || crate::sandbox::test_isolated(&cli.cmd),
        json: cli.json,
    };
    if needs_root(&cli.cmd) {
        require_root(&o)?;
    }
    match cli.cmd {
        Cmd::Up {
            script,
            all_sites: true,
            no_wait,
            ..
        } => crate::remote::all_sites::up(&o, &script, no_wait),
        Cmd::Up {
            script,
            no_wait,
            hold,
            ..
        } => up::run(&o, &script, no_wait, hold),
        Cmd::Watch { names, every } => watch::run(&o, &names, every),
        Cmd::Down {
            file,
            name,
            all_sites: true,
            no_wait,
            ..
        } => crate::remote::all_sites::down(&o, file.as_deref(), name.as_deref(), no_wait),
        Cmd::Down {
            file,
            name,
            all,
            no_wait,
            force_forget,
            site,
            ..
        } => down::run(&o, file, name, all, no_wait, force_forget, site),
        Cmd::Plan { script, diff } => plan::run(&o, &script, diff),
        Cmd::Test {
            script,
            junit,
            keep,
        } => test::run(&o, &script, junit.as_deref(), keep),
        Cmd::Ps { name } => ps::ps(&o, name.as_deref()),
        Cmd::Logs {
            name,
            daemon,
            follow,
        } => ps::logs(&name, &daemon, follow),
        Cmd::Exec { ns, cmd } => exec::run(&ns, &cmd),
        Cmd::Repl { file, name, set } => crate::repl::run(&o, file, name, &set),
        Cmd::Show { name } => show::show(name.as_deref(), o.json),
        Cmd::Graph {
            name,
            format,
            output,
        } => show::graph(name.as_deref(), format, output),
        Cmd::Import {
            netns,
            host,
            output,
        } => import::run(&o, &netns, host, output.as_deref()),
        Cmd::PingAll {
            name: Some(target),
            all_sites: true,
            ..
        } => crate::remote::all_sites::ping_all(&o, &target),
        Cmd::PingAll {
            name,
            all_sites,
            also,
        } => {
            if all_sites {
                return Err(crate::diag::plain(
                    "ping-all --all-sites needs the script (or the topology's name)",
                    Some("netplumb ping-all lab.rhai --all-sites"),
                ));
            }
            show::ping_all(name.as_deref(), &also)
        }
        Cmd::Doc { module, check } => crate::doc::run(module.as_deref(), check, o.json),
        Cmd::Check { target, set, site } => check::run(&o, &target, &set, site),
        Cmd::Capture(a) => crate::capture::run(&o, &a, o.json),
        Cmd::Sandbox(c) => {
            let cx = crate::sandbox::Ctx {
                quiet: o.quiet,
                json: o.json,
            };
            crate::sandbox::run(&c, &cx)
                .map_err(|e| crate::diag::plain(e.to_string(), e.help().as_deref()))
        }
        Cmd::Man { output } => man::run(&o, output.as_deref()),
        Cmd::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "netplumb", &mut buf);
            crate::out::write(&String::from_utf8_lossy(&buf));
            Ok(0)
        }
    }
}
