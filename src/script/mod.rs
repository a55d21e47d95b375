//! The Rhai engine: registered netplumb functions (which only change the
//! desired topology), the module resolver (script dir, then the bundled
//! stdlib), `--set` parameters and the source texts diagnostics point into.

mod api;
mod callsite;
mod cross;
mod filter;
mod kinds;
mod knobs;
mod lab;
pub mod limits;
mod link_fns;
mod nat;
mod net;
mod ns_fns;
mod pingall;
pub mod registry;
mod resolver;
mod routes;
mod sites;
mod util;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rhai::{Dynamic, Engine, EvalAltResult, NativeCallContext, Position, Scope};

pub use api::LinkHandle;
pub use callsite::instrument;
pub(crate) use resolver::Resolver;
pub use resolver::STDLIB;
// For `up --all-sites` (branch h-remote): unused until the merge.
#[allow(unused_imports)]
pub use sites::declared_sites;

use crate::run::Runner;
use crate::topo::Pos;

pub type SharedRunner = Arc<Mutex<Runner>>;

/// The reference text of every `to_string` / `to_debug` conversion.
const TO_STRING: &str = r#"How netplumb values print: `netns foons`, `link foons:eth0`, `counter 3`.
Used by `print` and string interpolation.

```rhai
print(`${foo} has ${v.peer}`);   // netns foons has link foons:eth0
```"#;

/// Source texts by name, so an error anywhere can show its snippet.
#[derive(Default, Debug)]
pub struct Sources {
    pub texts: HashMap<String, String>,
    /// The local module files the script loaded (path relative to the
    /// script's directory, text), for a bundle (`up --all-sites`).
    pub modules: Vec<(String, String)>,
}

pub type SharedSources = Arc<Mutex<Sources>>;

pub fn lock(r: &SharedRunner) -> MutexGuard<'_, Runner> {
    // A panic while holding the lock leaves the model as it was; go on.
    r.lock().unwrap_or_else(|p| p.into_inner())
}

/// A runtime error at the script call that caused it.
pub(crate) fn fail(ctx: &NativeCallContext, msg: impl std::fmt::Display) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(msg.to_string()),
        ctx.call_position(),
    ))
}

/// The main script's name ("") is shared: every declaration keeps one, and
/// a script of 100,000 `dnat()` calls made as many allocations of it.
fn shared_source(source: &str) -> Arc<str> {
    static MAIN: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    if source.is_empty() {
        MAIN.get_or_init(|| Arc::from("")).clone()
    } else {
        Arc::from(source)
    }
}

pub(crate) fn pos_of(ctx: &NativeCallContext) -> Pos {
    let p = ctx.call_position();
    let source = ctx.call_source().unwrap_or("");
    // Inside a module, also remember where the user's script called in.
    let called_from = if source.is_empty() {
        None
    } else {
        callsite::caller(ctx, source)
    };
    Pos {
        source: shared_source(source),
        line: p.line().unwrap_or(0),
        col: p.position().unwrap_or(0),
        called_from,
    }
}

pub struct Session {
    pub engine: Engine,
    pub scope: Scope<'static>,
    pub runner: SharedRunner,
    pub sources: SharedSources,
    pub main_name: String,
    /// The memory budget in force (Rhai's progress callback checks it).
    pub budget: limits::Budget,
    /// The functions registered with their metadata, in reference order.
    pub registry: registry::Registry,
}

/// Every netplumb function, in the order of the reference (docs/dsl.md).
fn register_all(reg: &mut registry::Reg, runner: &SharedRunner, script_dir: Option<PathBuf>) {
    ns_fns::register(reg, runner);
    link_fns::register(reg, runner);
    ns_fns::register_settings(reg, runner);
    sites::register(reg, runner);
    cross::register(reg, runner);
    nat::register(reg, runner);
    lab::register(reg, runner);
    filter::register(reg, runner);
    ns_fns::register_exec(reg, runner);
    pingall::register(reg, runner);
    net::register(reg);
    util::register(reg, script_dir);
    ns_fns::register_conversions(reg);
    link_fns::register_conversions(reg, runner);
}

/// `--set k=v`: numbers become numbers, true/false booleans, the rest strings.
pub fn param_value(v: &str) -> Dynamic {
    if let Ok(i) = v.parse::<i64>() {
        Dynamic::from(i)
    } else if let Ok(f) = v.parse::<f64>() {
        Dynamic::from(f)
    } else if let Ok(b) = v.parse::<bool>() {
        Dynamic::from(b)
    } else {
        Dynamic::from(v.to_string())
    }
}

impl Session {
    pub fn new(
        runner: Runner,
        script_dir: Option<PathBuf>,
        params: &[(String, String)],
        max_ops: u64,
    ) -> Self {
        // A run without a ledger (`plan`, `check`) prints its plan on
        // stdout: the script's prints go to stderr.
        let dry = !runner.has_ledger();
        let mut runner = runner;
        runner.topo = crate::topo::Topology::with_limit(max_ops);
        let runner = Arc::new(Mutex::new(runner));
        let sources: SharedSources = Arc::default();
        let mut engine = Engine::new();
        // No string interning: its cache hashes and throttles on every
        // property name and string built, and a script of 100,000 `dnat()`
        // calls spends a fifth of its evaluation there. Strings stay
        // equal; they are only not shared.
        engine.set_max_strings_interned(0);
        engine.set_max_operations(max_ops);
        let budget = limits::Budget::new(limits::DEFAULT_MAX_MEMORY_MIB);
        engine.on_progress(move |_| budget.check());
        callsite::register(&mut engine);
        engine.set_max_call_levels(64);
        engine.set_max_expr_depths(128, 64);
        engine.set_module_resolver(resolver::Resolver::new(script_dir.clone(), sources.clone()));
        if dry {
            engine.on_print(|s| eprintln!("{s}"));
        }
        let mut registry = registry::Registry::default();
        let mut reg = registry::Reg::new(&mut engine, &mut registry);
        register_all(&mut reg, &runner, script_dir);
        let mut scope = Scope::new();
        for (k, v) in params {
            scope.push_constant_dynamic(k.clone(), param_value(v));
        }
        Self {
            engine,
            scope,
            runner,
            sources,
            main_name: String::new(),
            budget,
            registry,
        }
    }

    /// `--max-memory`: let the heap grow `mib` MiB from now (0: no limit).
    /// Replaces the engine's progress callback; a caller that sets its own
    /// must also return `self.budget.check()` from it.
    pub fn set_max_memory(&mut self, mib: u64) {
        let budget = limits::Budget::new(mib);
        self.budget = budget;
        self.engine.on_progress(move |_| budget.check());
    }

    pub fn runner(&self) -> MutexGuard<'_, Runner> {
        lock(&self.runner)
    }

    /// The command is over and the process exits next: its memory goes
    /// back to the kernel in one piece. Freeing the model, the plan and the
    /// observed state one allocation at a time took 57 ms, 6 % of a `plan`
    /// of S(3000, 30000). Only for a process that ends now (not `test` or
    /// `watch`, which go on). The ledger is closed first, which releases
    /// the topology's lock; nothing else here does more on drop than free
    /// (netlink sockets close with the process; processes being started
    /// are owned by `apply/`, not kept here).
    pub fn end_of_command(self) {
        self.runner().close_ledger();
        std::mem::forget(self);
    }

    /// Compile and run a whole script (for `up`, `plan`, `repl FILE`).
    pub fn run_file(&mut self, path: &Path, text: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        self.main_name = path.display().to_string();
        self.eval_named("", text)
    }

    /// Run source text registered under `name` ("" = the main script).
    pub fn eval_named(&mut self, name: &str, text: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        if let Ok(mut s) = self.sources.lock() {
            s.texts.insert(name.to_string(), text.to_string());
        }
        let mut ast = self.engine.compile_with_scope(&self.scope, text)?;
        if !name.is_empty() {
            ast.set_source(name);
        }
        let ast = instrument(&self.engine, &ast);
        self.engine
            .eval_ast_with_scope::<Dynamic>(&mut self.scope, &ast)
    }

    pub fn source_text(&self, name: &str) -> Option<String> {
        self.sources
            .lock()
            .ok()
            .and_then(|s| s.texts.get(name).cloned())
    }
}

/// The innermost error and its position: where the user should look.
pub fn innermost(e: &EvalAltResult) -> (&EvalAltResult, Position, Option<String>) {
    let mut cur = e;
    let mut source = None;
    loop {
        match cur {
            EvalAltResult::ErrorInFunctionCall(_, src, inner, _) => {
                if !src.is_empty() {
                    source = Some(src.clone());
                }
                cur = inner;
            }
            EvalAltResult::ErrorInModule(name, inner, _) => {
                source = Some(name.clone());
                cur = inner;
            }
            _ => return (cur, cur.position(), source),
        }
    }
}
