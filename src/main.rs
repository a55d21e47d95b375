//! netplumb: Linux network topologies from Rhai scripts, over netlink.

mod apply;
mod capture;
mod cli;
mod cmd;
mod diag;
mod doc;
mod drive;
mod import;
mod interrupt;
mod kernel;
mod ledger;
mod model;
mod op;
mod opts;
mod out;
mod plan;
mod proc;
mod remote;
mod repl;
mod report;
mod run;
mod sandbox;
mod script;
mod show;
mod site;
mod topo;
mod uprecord;

use clap::Parser;

/// A namespace handle and a socket per namespace: a thousand namespaces
/// need more than the customary 1,024 descriptors.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit with a valid struct; failure leaves the limit as is.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// One malloc arena: the short-lived threads that enter namespaces would
/// each get an arena of their own, and every arena keeps what it once held
/// (tens of MiB at thousands of namespaces) for a few percent of speed on
/// this mostly single-threaded program.
fn one_arena() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only tunes the allocator; called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

fn main() {
    one_arena();
    raise_fd_limit();
    let cli = match cli::Cli::try_parse().and_then(|c| c.check_usage().map(|_| c)) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    // Namespaces must be entered while the process is still single-threaded:
    // --sandbox, --sandbox=WORLD, `sandbox shell`, and a world's holder.
    if let Err(e) = sandbox::early(&cli) {
        eprintln!(
            "{:?}",
            miette::Report::new(diag::Plain {
                msg: e.to_string(),
                help: e.help()
            })
        );
        std::process::exit(e.exit_code());
    }
    // The record directory is named after this process's network namespace:
    // settle it now, on the main thread, before any thread enters another.
    let _ = ledger::state_dir();
    match cmd::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(report) => {
            eprintln!("{report:?}");
            std::process::exit(1);
        }
    }
}
