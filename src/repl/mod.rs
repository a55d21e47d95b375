//! `netplumb repl`: an interactive session in which every statement is
//! applied as soon as it is complete (spec §5).
//!
//! Each complete input is compiled on its own and run against the session's
//! scope; the kernel is then converged to the model and the change committed,
//! echoing one short line per change. A statement that fails or is
//! interrupted is undone whole: its kernel changes roll back, and the model,
//! the variables and the module cache go back to what they were before it.
//!
//! What persists from one input to the next:
//! - variables: the session's `Scope` (top-level `let`s stay in it);
//! - `fn` definitions: Rhai keeps functions per AST, so the function library
//!   of each successful input is registered with the engine as a global
//!   module named after that input; a later input calls them like built-in
//!   functions, a redefinition shadows the older one, and an error inside
//!   one points into the input that defined it;
//! - `import "m" as m;`: imports live in the per-run global state Rhai drops
//!   after each run, so the top-level import statements of successful inputs
//!   are kept and run again in front of every later input. The resolver
//!   caches modules, so that neither re-reads nor re-runs a module.

mod commands;
mod complete;
mod input;
mod meta;
mod resolve;
mod signal;
mod statement;

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use miette::Report;
use rhai::{AST, Dynamic, EvalAltResult, Scope, Stmt};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor};

use crate::apply::LinuxKernel;
use crate::diag;
use crate::ledger::{self, Entry as Owned, Ledger};
use crate::model::NsRef;
use crate::opts::{Opts, require_root};
use crate::out::say;
use crate::plan;
use crate::run::{Checkpoint, RunError, Runner};
use crate::script::{LinkHandle, Session, lock, param_value};

use complete::{Known, ReplHelper};
use meta::{FnIndex, UserFn};
use resolve::{Cache, CachingResolver, SharedDir};

const PROMPT: &str = "netplumb> ";
const CONTINUE: &str = "      ... ";

/// The same limit as `up --max-ops`, for statements read from a pipe, where
/// nobody is there to press Ctrl-C. At a terminal Ctrl-C is the brake.
const PIPED_MAX_OPS: u64 = 50_000_000;

pub fn run(
    o: &Opts,
    file: Option<PathBuf>,
    name: Option<String>,
    set: &[(String, String)],
) -> Result<i32, Report> {
    require_root(o)?;
    let name = name.unwrap_or_else(|| "repl".to_string());
    ledger::check_topology_name(&name)
        .map_err(|e| diag::plain(e.to_string(), Some("use --name to choose one")))?;
    // Fail at once rather than wait: the lock is held for the whole session,
    // so waiting would mean waiting for another person's session to end.
    let ledger = Ledger::open(&name, false, o.quiet).map_err(|e| {
        diag::plain(
            e.to_string(),
            Some("another session is using this topology: start this one with --name NAME"),
        )
    })?;
    let kernel = LinuxKernel::new().map_err(|e| diag::plain(e.to_string(), None))?;
    let mut runner = Runner::new(&name, Box::new(kernel), Some(ledger))
        .map_err(|e| diag::plain(e.to_string(), None))?;
    runner.verbose = o.verbose;
    runner.quiet = o.quiet;
    runner.echo = !o.quiet;
    let earlier = runner.owned().len();

    let interactive = std::io::stdin().is_terminal();
    let dir = match file.as_deref().and_then(Path::parent) {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let max_ops = if interactive { 0 } else { PIPED_MAX_OPS };
    let session = Session::new(runner, Some(dir.clone()), set, max_ops);
    let mut repl = Repl::new(session, dir, set, interactive);
    signal::install(interactive)
        .map_err(|e| diag::plain(format!("cannot catch Ctrl-C: {e}"), None))?;

    if earlier > 0 {
        eprintln!(
            "note: topology '{name}' already owns {earlier} objects from an earlier session; \
             they stay, and :down removes them too"
        );
    }
    if let Some(f) = &file {
        repl.load(f);
    }
    if interactive {
        repl.interactive()?;
    } else {
        repl.piped();
    }
    Ok(if !interactive && repl.failures > 0 {
        1
    } else {
        0
    })
}

/// One successful input, for `:save`.
struct Entry {
    text: String,
    file: Option<String>,
    /// Only `fn` definitions and imports: kept across `:down`.
    defs_only: bool,
}

enum Flow {
    Go,
    Quit,
}

struct Repl {
    session: Session,
    interactive: bool,
    params: Vec<(String, String)>,
    /// Top-level imports of successful inputs, run before each new input.
    imports: Vec<Stmt>,
    log: Vec<Entry>,
    inputs: usize,
    failures: usize,
    /// Lines of an input not complete yet.
    pending: String,
    dir: PathBuf,
    resolver_dir: SharedDir,
    modules: Cache,
    known: Arc<Mutex<Known>>,
    index: FnIndex,
    user_fns: BTreeMap<(String, usize), UserFn>,
}

impl Repl {
    fn new(
        mut session: Session,
        dir: PathBuf,
        params: &[(String, String)],
        interactive: bool,
    ) -> Self {
        let resolver_dir: SharedDir = Arc::new(Mutex::new(Some(dir.clone())));
        let modules: Cache = Arc::default();
        session.engine.set_module_resolver(CachingResolver {
            dir: resolver_dir.clone(),
            sources: session.sources.clone(),
            cache: modules.clone(),
        });
        // Ctrl-C: the handler raises a flag, this stops the script at its
        // next operation with ErrorTerminated; so does the memory budget.
        let budget = session.budget;
        session.engine.on_progress(move |_| {
            signal::interrupted()
                .then(|| Dynamic::from("interrupted"))
                .or_else(|| budget.check())
        });
        // `=> …` shows values with to_debug; give links a readable one.
        let rn = session.runner.clone();
        session
            .engine
            .register_fn("to_debug", move |l: &mut LinkHandle| {
                let r = lock(&rn);
                match r.topo.link(l.id) {
                    Ok(d) => format!("link {}:{}", d.ns, d.name),
                    Err(_) => "link (removed)".to_string(),
                }
            });
        let index = FnIndex::from_session(&session);
        let mut repl = Self {
            session,
            interactive,
            params: params.to_vec(),
            imports: Vec::new(),
            log: Vec::new(),
            inputs: 0,
            failures: 0,
            pending: String::new(),
            dir,
            resolver_dir,
            modules,
            known: Arc::default(),
            index,
            user_fns: BTreeMap::new(),
        };
        repl.refresh_known();
        repl
    }

    // ---- reading ---------------------------------------------------------

    fn interactive(&mut self) -> Result<(), Report> {
        let config = Config::builder()
            .auto_add_history(false)
            .completion_type(CompletionType::List)
            .history_ignore_dups(true)
            .map_err(|e| diag::plain(format!("line editor: {e}"), None))?
            .max_history_size(5000)
            .map_err(|e| diag::plain(format!("line editor: {e}"), None))?
            .build();
        let mut rl: Editor<ReplHelper, DefaultHistory> = Editor::with_config(config)
            .map_err(|e| diag::plain(format!("cannot start the line editor: {e}"), None))?;
        rl.set_helper(Some(ReplHelper::new(self.known.clone())));
        // The editor took SIGINT over for itself (it only needs it with
        // `enable_signals`, which is off): take it back for Ctrl-C.
        signal::install(true)
            .map_err(|e| diag::plain(format!("cannot catch Ctrl-C: {e}"), None))?;
        let history = history_path();
        if let Some(h) = &history {
            // A first session has no history yet: nothing to report.
            let _ = rl.load_history(h);
        }
        say!(
            "netplumb repl: topology '{}'. Each statement is applied when complete.\n\
             :help lists functions and commands; Ctrl-C stops a statement, Ctrl-D leaves.",
            self.session.runner().name
        );
        let mut history_ok = true;
        loop {
            let prompt = if self.pending.is_empty() {
                PROMPT
            } else {
                CONTINUE
            };
            match rl.readline(prompt) {
                Ok(line) => {
                    let flow = self.feed(&line, |text| {
                        // One entry per complete input, blocks included.
                        let _ = rl.add_history_entry(text);
                    });
                    if let Some(h) = &history
                        && history_ok
                        && let Err(e) = rl.append_history(h)
                    {
                        eprintln!("note: cannot save history to {}: {e}", h.display());
                        history_ok = false;
                    }
                    if let Flow::Quit = flow {
                        break;
                    }
                }
                // Ctrl-C at the prompt drops the line, and an unfinished block.
                Err(ReadlineError::Interrupted) => self.pending.clear(),
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(diag::plain(format!("cannot read input: {e}"), None)),
            }
        }
        let r = self.session.runner();
        if !r.owned().is_empty() {
            eprintln!(
                "topology '{}' stays as built: `netplumb down --name {}` removes it",
                r.name, r.name
            );
        }
        Ok(())
    }

    fn piped(&mut self) {
        let stdin = std::io::stdin();
        let mut lines = stdin.lock().lines();
        loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Flow::Quit = self.feed(&line, |_| {}) {
                        return;
                    }
                }
                Some(Err(e)) => {
                    eprintln!("{:?}", diag::plain(format!("cannot read input: {e}"), None));
                    self.failures += 1;
                    return;
                }
                None => break,
            }
        }
        // Input ended inside a block: run it, so its syntax error is shown.
        if !self.pending.trim().is_empty() {
            let text = std::mem::take(&mut self.pending);
            self.input(&text);
        }
    }

    /// One line typed or read. `add_history` gets each complete input.
    fn feed(&mut self, line: &str, mut add_history: impl FnMut(&str)) -> Flow {
        if self.pending.is_empty() {
            let t = line.trim();
            if t.is_empty() {
                return Flow::Go;
            }
            if t.starts_with(':') {
                add_history(t);
                return self.meta(t);
            }
        } else {
            self.pending.push('\n');
        }
        self.pending.push_str(line);
        if input::is_incomplete(&self.session.engine, &self.pending) {
            return Flow::Go;
        }
        let text = std::mem::take(&mut self.pending);
        add_history(&text);
        self.input(&text);
        Flow::Go
    }

    // ---- statements --------------------------------------------------------

    /// A typed (or piped) input.
    fn input(&mut self, text: &str) {
        self.inputs += 1;
        let name = format!("input#{}", self.inputs);
        self.statement(&name, text, None);
    }

    /// `repl FILE` and `:load FILE`: the whole file as one statement.
    fn load(&mut self, path: &Path) {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                self.failures += 1;
                eprintln!(
                    "{:?}",
                    diag::plain(
                        format!("cannot read script {}: {e}", path.display()),
                        Some("check the path; scripts end in .rhai"),
                    )
                );
                return;
            }
        };
        // Its imports are looked up beside it while it runs.
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        *resolve::lock(&self.resolver_dir) = Some(dir);
        let name = path.display().to_string();
        self.statement(&name, &text, Some(&name));
        *resolve::lock(&self.resolver_dir) = Some(self.dir.clone());
    }

    fn register_source(&mut self, name: &str, text: &str) {
        let mut s = lock_sources(&self.session);
        s.texts.insert(name.to_string(), text.to_string());
        // Errors without a source name (syntax errors, errors at the top
        // level) are shown against the main text: make that this input.
        s.texts.insert(String::new(), text.to_string());
        drop(s);
        self.session.main_name = name.to_string();
    }
}

fn lock_sources(s: &Session) -> std::sync::MutexGuard<'_, crate::script::Sources> {
    resolve::lock(&s.sources)
}

/// `$XDG_STATE_HOME/netplumb/history`, else `~/.local/state/netplumb/history`.
fn history_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    let dir = base.join("netplumb");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history"))
}
