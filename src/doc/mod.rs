//! `netplumb doc [TOPIC]`: the script language reference from the binary.
//!
//! Two sources, each the single source of truth for its part:
//! - the core (native) functions: the engine's registry, where each
//!   function is registered once with its parameters, return type and doc
//!   comment (script::registry); docs/dsl.md's entries are generated from
//!   it and `doc --check` (and the unit tests) compare them both ways;
//! - the bundled modules: their own `//!` and `///` doc comments
//!   ([`modules`]).

mod markdown;
mod modules;

use std::collections::BTreeSet;
use std::path::Path;

use miette::Report;
use serde::Serialize;

use crate::diag;
use crate::kernel::Recorder;
use crate::run::Runner;
use crate::script::{Session, registry};
pub use modules::{ModuleDoc, module_doc, stdlib_docs};
use modules::{render_module, signature};

/// The reference page, as shipped.
pub const DSL: &str = include_str!("../../docs/dsl.md");

/// One core entry: a function (or overloads sharing one doc comment), as
/// `--json` gives it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The heading without backticks: "netns(name) → Netns".
    pub title: String,
    /// The function names the entry documents.
    pub names: Vec<String>,
    /// Each form with its types: "Netns.veth(string, string) -> Link".
    pub signatures: Vec<String>,
    pub body: String,
}

impl From<&registry::Entry> for Entry {
    fn from(e: &registry::Entry) -> Self {
        Self {
            title: e.heading().replace('`', ""),
            names: e.names(),
            signatures: e.forms.iter().map(registry::Form::typed).collect(),
            body: e.doc.clone(),
        }
    }
}

pub(crate) fn first_paragraph(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A session as `plan` builds it, for its engine's registrations.
fn plan_engine() -> Result<Session, String> {
    let runner = Runner::new("doc", Box::new(Recorder::new()), None).map_err(|e| e.to_string())?;
    Ok(Session::new(runner, None, &[], 0))
}

/// The core entries of a session's registry.
pub fn session_entries(session: &Session) -> Vec<registry::Entry> {
    registry::entries(&session.engine, &session.registry)
}

/// The core entries, from a fresh engine's registry.
pub fn core_entries() -> Result<Vec<Entry>, String> {
    let session = plan_engine()?;
    Ok(session_entries(&session).iter().map(Entry::from).collect())
}

/// What disagrees between the engine's registry, docs/dsl.md and the
/// modules' doc comments; empty when the reference is complete.
pub fn check(session: &Session) -> Result<Vec<String>, String> {
    let mut problems = registry::problems(&session.engine, &session.registry);
    problems.extend(markdown::problems(DSL, &session_entries(session)));
    problems.extend(modules::problems(DSL)?);
    Ok(problems)
}

/// One core entry as `doc FUNCTION` and the REPL's `:help NAME` print it.
pub fn render_entry(e: &Entry) -> String {
    let mut s = format!("{}\n", e.title);
    for l in e.body.lines() {
        if l.is_empty() {
            s.push('\n');
        } else {
            s.push_str(&format!("    {l}\n"));
        }
    }
    s
}

fn overview(core: &[Entry], mods: &[ModuleDoc]) -> String {
    let mut s = String::from(
        "netplumb script reference: `netplumb doc core`, `netplumb doc MODULE`, `netplumb doc FUNCTION`\n\
         (the full text is docs/dsl.md)\n\ncore functions:\n",
    );
    let mut names: Vec<String> = core.iter().flat_map(|e| e.names.clone()).collect();
    names.dedup();
    let mut seen = BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    s.push_str(&wrap(&names.join(" "), 76, "  "));
    s.push_str("\nmodules (import \"NAME\" as x;):\n");
    let w = mods.iter().map(|m| m.name.len()).max().unwrap_or(0);
    for m in mods {
        let first = m.summary();
        let sentence = first
            .split_once(": ")
            .map(|(a, _)| a.to_string())
            .unwrap_or(first);
        s.push_str(&format!("  {:w$}  {}\n", m.name, sentence));
        let fns: Vec<&str> = m.functions.iter().map(|f| f.name.as_str()).collect();
        let mut uniq: Vec<&str> = Vec::new();
        for f in fns {
            if !uniq.contains(&f) {
                uniq.push(f);
            }
        }
        s.push_str(&format!("  {:w$}  {}\n", "", uniq.join(" ")));
    }
    s
}

fn wrap(words: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for w in words.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + w.len() > width {
            out.push_str(indent);
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    if !line.is_empty() {
        out.push_str(indent);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The help text for a topic: nothing (overview), "core", a module name,
/// a module file (`./mine.rhai`), a function (`veth`, `docker::publish`).
/// Also for the REPL's `:help`, with its session's entries.
pub fn help_text(core: &[Entry], topic: Option<&str>) -> Result<String, String> {
    let mods = stdlib_docs()?;
    let Some(t) = topic else {
        return Ok(overview(core, &mods));
    };
    if t == "core" {
        let mut s = String::from("core functions (netplumb doc FUNCTION for one):\n\n");
        for e in core {
            let summary = first_paragraph(&e.body);
            let sentence = summary
                .split_inclusive(". ")
                .next()
                .unwrap_or(&summary)
                .trim();
            s.push_str(&format!("{}\n    {}\n", e.title, sentence));
        }
        return Ok(s);
    }
    if let Some(m) = mods.iter().find(|m| m.name == t) {
        return Ok(render_module(m));
    }
    if t.ends_with(".rhai") && Path::new(t).is_file() {
        let text = std::fs::read_to_string(t).map_err(|e| format!("cannot read {t}: {e}"))?;
        let stem = Path::new(t)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(t);
        return Ok(render_module(&module_doc(stem, &text)?));
    }
    // A function: core entries naming it, module functions of that name.
    let (module, name) = match t.split_once("::") {
        Some((m, n)) => (Some(m), n),
        None => (None, t),
    };
    let mut s = String::new();
    if module.is_none() {
        for e in core.iter().filter(|e| e.names.iter().any(|n| n == name)) {
            s.push_str(&render_entry(e));
            s.push('\n');
        }
    }
    for m in mods.iter().filter(|m| module.is_none_or(|x| x == m.name)) {
        for f in m.functions.iter().filter(|f| f.name == name) {
            s.push_str(&format!("{}\n", signature(&m.name, f)));
            for l in f.doc.lines() {
                s.push_str(&format!("    {l}\n").replace("    \n", "\n"));
            }
            s.push('\n');
        }
    }
    if s.is_empty() {
        let names: Vec<&str> = mods.iter().map(|m| m.name.as_str()).collect();
        return Err(format!(
            "no function or module named '{t}': topics are core, {}, or a function name (netplumb doc core lists them)",
            names.join(", ")
        ));
    }
    Ok(s.trim_end().to_string() + "\n")
}

#[derive(Serialize)]
struct JsonDoc {
    core: Vec<Entry>,
    modules: Vec<ModuleDoc>,
}

pub fn run(topic: Option<&str>, check_only: bool, json: bool) -> Result<i32, Report> {
    if check_only {
        let session = plan_engine().map_err(|e| diag::plain(e, None))?;
        let problems = check(&session).map_err(|e| diag::plain(e, None))?;
        if problems.is_empty() {
            println!("docs/dsl.md and the stdlib doc comments cover every function");
            return Ok(0);
        }
        return Err(diag::plain(
            format!("the reference is incomplete:\n  {}", problems.join("\n  ")),
            Some(
                "register each function through script::registry::Reg with a doc comment ending in a rhai example, regenerate docs/dsl.md (UPDATE_GOLDEN=1 cargo test --bin netplumb dsl_md), and document each module function with /// comments",
            ),
        ));
    }
    if json {
        let mut modules = stdlib_docs().map_err(|e| diag::plain(e, None))?;
        let mut core = core_entries().map_err(|e| diag::plain(e, None))?;
        if let Some(t) = topic {
            modules.retain(|m| m.name == t);
            if t != "core" {
                core.clear();
            }
            if modules.is_empty() && core.is_empty() {
                eprintln!("netplumb doc: no module '{t}' (use core, or a bundled module name)");
                return Ok(2);
            }
        }
        let text = serde_json::to_string_pretty(&JsonDoc { core, modules })
            .map_err(|e| diag::plain(e.to_string(), None))?;
        println!("{text}");
        return Ok(0);
    }
    let core = core_entries().map_err(|e| diag::plain(e, None))?;
    match help_text(&core, topic) {
        Ok(t) => {
            print!("{t}");
            Ok(0)
        }
        Err(e) => {
            eprintln!("netplumb doc: {e}");
            Ok(2)
        }
    }
}

#[cfg(test)]
mod tests;
