//! The bundled modules' documentation: their own `//!` and `///` doc
//! comments, read with Rhai's metadata from the module source.

use std::collections::BTreeSet;

use rhai::{Engine, FnAccess};
use serde::Serialize;

use crate::script::STDLIB;

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
        super::first_paragraph(&self.doc)
    }
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

/// Module headings of docs/dsl.md: "docker::network" etc.
fn documented_module_fns(dsl: &str) -> BTreeSet<String> {
    dsl.lines()
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

/// What the modules' doc comments and docs/dsl.md's module section lack.
pub fn problems(dsl: &str) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    let in_page = documented_module_fns(dsl);
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

pub fn signature(m: &str, f: &FnDoc) -> String {
    format!("{m}::{}({})", f.name, f.params.join(", "))
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

pub fn render_module(m: &ModuleDoc) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
