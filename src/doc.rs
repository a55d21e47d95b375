//! `netplumb doc [TOPIC]`: the script language reference from the binary.
//!
//! Two sources, each the single source of truth for its part:
//! - the core (native) functions: docs/dsl.md, embedded at build time and
//!   cut into one entry per `### ` heading; `doc --check` (and the unit
//!   tests below) compare its headings with the functions the engine
//!   really registers, so the page cannot fall behind the code;
//! - the bundled modules: their own `//!` and `///` doc comments, read with
//!   Rhai's metadata from the module source.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use miette::Report;
use rhai::{Engine, FnAccess};
use serde::Serialize;

use crate::diag;
use crate::kernel::Recorder;
use crate::run::Runner;
use crate::script::{STDLIB, Session};

/// The reference page, as shipped.
pub const DSL: &str = include_str!("../docs/dsl.md");

/// One `### ` entry of docs/dsl.md: a core function (or a group of
/// overloads spelled in one heading).
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The heading without `###` and backticks: "netns(name) → Netns".
    pub title: String,
    /// The function names the heading documents.
    pub names: Vec<String>,
    /// (name, arity) of each form in the heading, the receiver counted.
    #[serde(skip)]
    pub forms: Vec<(String, usize)>,
    pub body: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FnDoc {
    pub name: String,
    pub params: Vec<String>,
    pub doc: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModuleDoc {
    pub name: String,
    pub doc: String,
    pub functions: Vec<FnDoc>,
}

impl ModuleDoc {
    /// The first paragraph of the module doc, on one line.
    pub fn summary(&self) -> String {
        first_paragraph(&self.doc)
    }
}

fn first_paragraph(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The functions a heading documents, as (name, arity): in each `code
/// span`, the identifier right before the first `(` (or the last one, for a
/// property like `link.peer`); the arity counts the arguments and the
/// receiver (`ns.route(dest, via)` is route/3, `link.peer` is peer/1).
fn heading_forms(heading: &str) -> Vec<(String, usize)> {
    let mut forms = Vec::new();
    for (i, span) in heading.split('`').enumerate() {
        if i % 2 == 0 {
            continue;
        }
        let (head, args) = match span.split_once('(') {
            Some((h, rest)) => (h, Some(rest.split(')').next().unwrap_or(""))),
            None => (span, None),
        };
        let name: String = head
            .chars()
            .rev()
            .take_while(|c| is_ident(*c))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if name.is_empty() || head.contains("::") {
            continue;
        }
        let receiver = usize::from(head.ends_with(&format!(".{name}")));
        let arity = match args {
            None => 1,
            Some(a) if a.trim().is_empty() => receiver,
            Some(a) => receiver + a.split(',').count(),
        };
        forms.push((name, arity));
    }
    forms
}

/// The `### ` entries of docs/dsl.md before the modules section: the core.
pub fn core_entries() -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    let mut in_core = true;
    for line in DSL.lines() {
        if line.starts_with("## ") {
            in_core = !line.starts_with("## Modules");
            if let Some(e) = out.last_mut() {
                e.body = e.body.trim_end().to_string();
            }
            continue;
        }
        if !in_core {
            continue;
        }
        if let Some(h) = line.strip_prefix("### ") {
            if let Some(e) = out.last_mut() {
                e.body = e.body.trim_end().to_string();
            }
            let forms = heading_forms(h);
            let mut names: Vec<String> = Vec::new();
            for (n, _) in &forms {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
            out.push(Entry {
                title: h.replace('`', ""),
                names,
                forms,
                body: String::new(),
            });
        } else if let Some(e) = out.last_mut() {
            if e.body.is_empty() && line.trim().is_empty() {
                continue;
            }
            e.body.push_str(line);
            e.body.push('\n');
        }
    }
    if let Some(e) = out.last_mut() {
        e.body = e.body.trim_end().to_string();
    }
    out
}

/// Module headings of docs/dsl.md: "docker::network" etc.
fn documented_module_fns() -> BTreeSet<String> {
    DSL.lines()
        .filter(|l| l.starts_with("#### "))
        .flat_map(|l| {
            l.split('`')
                .skip(1)
                .step_by(2)
                .filter_map(|s| s.split('(').next())
                .filter(|s| s.contains("::"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Strip the `///`, `/**` or `//!` leaders of doc comment lines.
fn uncomment(lines: &str) -> String {
    let mut out = Vec::new();
    for l in lines.lines() {
        let l = l.trim_start();
        let body = l
            .strip_prefix("///")
            .or_else(|| l.strip_prefix("//!"))
            .or_else(|| l.strip_prefix("/**"))
            .or_else(|| l.strip_prefix("*/"))
            .or_else(|| l.strip_prefix('*'))
            .unwrap_or(l);
        let body = body.strip_prefix(' ').unwrap_or(body);
        out.push(body.trim_end_matches("*/").trim_end().to_string());
    }
    out.join("\n").trim().to_string()
}

/// A module's documentation from its source: `//!` for the module, `///`
/// for each public function (private helpers are left out).
pub fn module_doc(name: &str, text: &str) -> Result<ModuleDoc, String> {
    let mut engine = Engine::new_raw();
    // Only parsed for its comments: no nesting limit (0 = unlimited).
    engine.set_max_expr_depths(0, 0);
    let ast = engine
        .compile(text)
        .map_err(|e| format!("module {name}: {e}"))?;
    let mut functions: Vec<FnDoc> = ast
        .iter_functions()
        .filter(|f| f.access != FnAccess::Private)
        .map(|f| FnDoc {
            name: f.name.to_string(),
            params: f.params.iter().map(|p| p.to_string()).collect(),
            doc: uncomment(&f.comments.join("\n")),
        })
        .collect();
    // The AST keeps functions hashed: list them in source order instead.
    let at = |f: &FnDoc| {
        text.find(&format!("fn {}({})", f.name, f.params.join(", ")))
            .unwrap_or(usize::MAX)
    };
    functions.sort_by_key(|f| (at(f), f.params.len()));
    Ok(ModuleDoc {
        name: name.to_string(),
        doc: uncomment(ast.doc()),
        functions,
    })
}

pub fn stdlib_docs() -> Result<Vec<ModuleDoc>, String> {
    STDLIB.iter().map(|(n, t)| module_doc(n, t)).collect()
}

/// The functions netplumb registers in its engine, standard Rhai packages
/// left out: (name, arity) with a signature each, getters under their
/// property name.
pub fn registered(engine: &Engine) -> BTreeMap<(String, usize), String> {
    let mut out = BTreeMap::new();
    for sig in engine.gen_fn_signatures(false) {
        let Some((name, rest)) = sig.split_once('(') else {
            continue;
        };
        let params = rest.split(')').next().unwrap_or("");
        let arity = if params.trim().is_empty() {
            0
        } else {
            params.split(", ").count()
        };
        let name = name.trim_start_matches("get$").trim_start_matches("set$");
        if !name.is_empty() {
            let short = sig.split(" -> ").next().unwrap_or(&sig).to_string();
            out.entry((name.to_string(), arity)).or_insert(short);
        }
    }
    out
}

/// The names alone.
#[cfg(test)]
fn registered_names(engine: &Engine) -> BTreeSet<String> {
    registered(engine).into_keys().map(|(n, _)| n).collect()
}

/// A session as `plan` builds it, for its engine's registrations.
fn plan_engine() -> Result<Session, String> {
    let runner = Runner::new("doc", Box::new(Recorder::new()), None).map_err(|e| e.to_string())?;
    Ok(Session::new(runner, None, &[], 0))
}

/// What disagrees between the engine, docs/dsl.md and the modules' doc
/// comments; empty when the reference is complete.
pub fn check(engine: &Engine) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    let entries = core_entries();
    let documented: BTreeSet<(String, usize)> =
        entries.iter().flat_map(|e| e.forms.clone()).collect();
    let registered = registered(engine);
    for ((n, arity), sig) in &registered {
        if !documented.contains(&(n.clone(), *arity)) {
            problems.push(format!(
                "function `{n}` with {arity} argument(s) ({sig}) is registered but has no `### ` entry in docs/dsl.md"
            ));
        }
    }
    for (n, arity) in &documented {
        if !registered.contains_key(&(n.clone(), *arity)) {
            problems.push(format!(
                "docs/dsl.md documents `{n}` with {arity} argument(s), which the engine does not register"
            ));
        }
    }
    for e in &entries {
        if e.body.is_empty() || !e.body.contains("```rhai") {
            problems.push(format!(
                "docs/dsl.md entry `{}` needs a description and a rhai example",
                e.title
            ));
        }
    }
    let in_page = documented_module_fns();
    for m in stdlib_docs()? {
        if m.doc.is_empty() {
            problems.push(format!("module {} has no //! documentation", m.name));
        }
        for f in &m.functions {
            if f.doc.is_empty() {
                problems.push(format!(
                    "{}::{}({}) has no /// doc comment",
                    m.name,
                    f.name,
                    f.params.join(", ")
                ));
            }
            let q = format!("{}::{}", m.name, f.name);
            if !in_page.contains(&q) {
                problems.push(format!("{q} is not in docs/dsl.md's module section"));
            }
        }
    }
    Ok(problems)
}

fn signature(m: &str, f: &FnDoc) -> String {
    format!("{m}::{}({})", f.name, f.params.join(", "))
}

fn render_module(m: &ModuleDoc) -> String {
    // The module's name as its alias, when it is an identifier.
    let alias = if m.name.chars().all(is_ident) {
        m.name.as_str()
    } else {
        "m"
    };
    let mut s = format!(
        "module {0} (import \"{0}\" as {alias};)\n\n{1}\n",
        m.name, m.doc
    );
    for f in &m.functions {
        s.push_str(&format!("\n{}\n", signature(&m.name, f)));
        for l in f.doc.lines() {
            if l.is_empty() {
                s.push('\n');
            } else {
                s.push_str(&format!("    {l}\n"));
            }
        }
    }
    s
}

fn render_entry(e: &Entry) -> String {
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

fn overview(mods: &[ModuleDoc]) -> String {
    let mut s = String::from(
        "netplumb script reference: `netplumb doc core`, `netplumb doc MODULE`, `netplumb doc FUNCTION`\n\
         (the full text is docs/dsl.md)\n\ncore functions:\n",
    );
    let mut names: Vec<String> = core_entries().into_iter().flat_map(|e| e.names).collect();
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
/// Also for the REPL's `:help`.
pub fn help_text(topic: Option<&str>) -> Result<String, String> {
    let mods = stdlib_docs()?;
    let Some(t) = topic else {
        return Ok(overview(&mods));
    };
    if t == "core" {
        let mut s = String::from("core functions (netplumb doc FUNCTION for one):\n\n");
        for e in core_entries() {
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
        for e in core_entries()
            .iter()
            .filter(|e| e.names.iter().any(|n| n == name))
        {
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
        let problems = check(&session.engine).map_err(|e| diag::plain(e, None))?;
        if problems.is_empty() {
            println!("docs/dsl.md and the stdlib doc comments cover every function");
            return Ok(0);
        }
        return Err(diag::plain(
            format!("the reference is incomplete:\n  {}", problems.join("\n  ")),
            Some(
                "document each function in docs/dsl.md (a `### ` entry with a rhai example) and each module function with /// comments",
            ),
        ));
    }
    if json {
        let mut modules = stdlib_docs().map_err(|e| diag::plain(e, None))?;
        let mut core = core_entries();
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
    match help_text(topic) {
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
mod tests {
    use super::*;

    #[test]
    fn every_registered_function_is_documented_and_nothing_else() {
        let session = plan_engine().unwrap();
        let problems = check(&session.engine).unwrap();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn an_undocumented_function_is_caught() {
        let mut session = plan_engine().unwrap();
        session.engine.register_fn("frobnicate", || 1_i64);
        let problems = check(&session.engine).unwrap();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("`frobnicate` with 0 argument(s)")),
            "{problems:?}"
        );
        // A new overload of a documented name is caught too.
        let mut session = plan_engine().unwrap();
        // (netns has one and two arguments: options are documented.)
        session
            .engine
            .register_fn("netns", |_: &str, _: i64, _: i64| 1_i64);
        let problems = check(&session.engine).unwrap();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("`netns` with 3 argument(s)")),
            "{problems:?}"
        );
    }

    #[test]
    fn registered_names_include_methods_and_getters() {
        let session = plan_engine().unwrap();
        let names = registered_names(&session.engine);
        for n in [
            "netns",
            "veth",
            "peer",
            "addr",
            "dnat",
            "cidr_host",
            "read_file",
        ] {
            assert!(names.contains(n), "{n} missing from {names:?}");
        }
    }

    #[test]
    fn headings_name_functions_with_their_arity() {
        let v = |x: &[(&str, usize)]| -> Vec<(String, usize)> {
            x.iter().map(|(n, a)| (n.to_string(), *a)).collect()
        };
        assert_eq!(heading_forms("`netns(name)` → Netns"), v(&[("netns", 1)]));
        assert_eq!(heading_forms("`host()` → Netns"), v(&[("host", 0)]));
        assert_eq!(heading_forms("`link.peer` → Link"), v(&[("peer", 1)]));
        assert_eq!(
            heading_forms("`bridge.attach(port)` → Link"),
            v(&[("attach", 2)])
        );
        assert_eq!(heading_forms("`counter.next()` → int"), v(&[("next", 1)]));
        assert_eq!(
            heading_forms("`masquerade(cidr)` / `ns.masquerade(cidr)` → ()"),
            v(&[("masquerade", 1), ("masquerade", 2)])
        );
        assert_eq!(
            heading_forms("`to_string(value)` / `to_debug(value)` → string"),
            v(&[("to_string", 1), ("to_debug", 1)])
        );
    }

    #[test]
    fn modules_have_their_doc_comments() {
        let mods = stdlib_docs().unwrap();
        let docker = mods.iter().find(|m| m.name == "docker").unwrap();
        assert!(
            docker.doc.starts_with("Docker-style networks"),
            "{}",
            docker.doc
        );
        let net = docker
            .functions
            .iter()
            .find(|f| f.name == "network")
            .unwrap();
        assert_eq!(net.params, ["name", "cidr"]);
        assert!(net.doc.contains("gateway"), "{}", net.doc);
        assert!(
            !docker.functions.iter().any(|f| f.name == "target"),
            "private helpers are hidden"
        );
    }

    #[test]
    fn help_topics() {
        assert!(help_text(None).unwrap().contains("portmap"));
        assert!(
            help_text(Some("core"))
                .unwrap()
                .contains("netns(name) → Netns")
        );
        let v = help_text(Some("veth")).unwrap();
        assert!(v.contains("veth(name, ns, peer)"), "{v}");
        let p = help_text(Some("docker::publish")).unwrap();
        assert!(p.contains("docker::publish(c, host_port, port)"), "{p}");
        assert!(help_text(Some("nope")).is_err());
    }
}
