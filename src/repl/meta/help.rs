//! `:help`, tab completion's function names and parameter hints: all read
//! from the engine's registry (script::registry), the same metadata
//! `netplumb doc` and docs/dsl.md come from.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::doc;
use crate::script::{Session, registry};

pub const META_HELP: &[(&str, &str)] = &[
    (":help [name]", "this list, or one function's signatures"),
    (":plan", "what the session has built, as ip / nft commands"),
    (
        ":show",
        "the session's namespaces and links with their addresses",
    ),
    (
        ":save FILE",
        "write the session's statements as a script `netplumb up` reproduces",
    ),
    (":load FILE", "run a script file into the session"),
    (
        ":down",
        "remove everything the session built (its topology), and start afresh",
    ),
    (":quit", "leave (Ctrl-D too); what was built stays up"),
];

/// The functions the session's engine knows, from its registry.
#[derive(Debug, Default)]
pub struct FnIndex {
    /// name → signatures with types (`Netns.bridge(string) -> Link`).
    pub functions: BTreeMap<String, Vec<String>>,
    pub properties: BTreeMap<String, Vec<String>>,
    /// name → its forms as scripts write them (`ns.veth(name, peer)`).
    usage: BTreeMap<String, Vec<String>>,
    /// The reference entries, as `netplumb doc` has them.
    pub core: Vec<doc::Entry>,
}

impl FnIndex {
    pub fn from_session(session: &Session) -> Self {
        let mut idx = Self::default();
        for r in registry::registered(&session.engine, &session.registry) {
            let f = &r.form;
            let map = if f.property {
                &mut idx.properties
            } else {
                &mut idx.functions
            };
            let v = map.entry(f.name.clone()).or_default();
            let typed = f.typed();
            if !v.contains(&typed) {
                v.push(typed);
            }
            let u = idx.usage.entry(f.name.clone()).or_default();
            if !u.contains(&f.usage()) {
                u.push(f.usage());
            }
        }
        for v in idx
            .functions
            .values_mut()
            .chain(idx.properties.values_mut())
        {
            v.sort();
        }
        idx.core = doc::session_entries(session)
            .iter()
            .map(doc::Entry::from)
            .collect();
        idx
    }

    /// The functions to call by name: the conversions (`to_string`,
    /// `to_debug`) left out of the list and of completion, not of `:help`.
    pub fn callable(&self) -> impl Iterator<Item = (&String, &Vec<String>)> {
        self.functions
            .iter()
            .filter(|(n, _)| !matches!(n.as_str(), "to_string" | "to_debug"))
    }

    /// One line on `name` for the `:help` list: the first sentence of the
    /// first entry documenting it, up to its details (a parenthesis, a
    /// colon or a semicolon).
    fn describe(&self, name: &str) -> String {
        let Some(e) = self.core.iter().find(|e| e.names.iter().any(|n| n == name)) else {
            return String::new();
        };
        let p = doc::first_paragraph(&e.body);
        let mut s = p.split_inclusive(". ").next().unwrap_or(&p).trim();
        for cut in [" (`", ": ", "; "] {
            if let Some(i) = s.find(cut) {
                s = &s[..i];
            }
        }
        s.trim_end_matches('.').to_string()
    }

    /// The parameter hint after `name(`: the first form's parameter list.
    pub fn param_hint(&self, name: &str) -> Option<String> {
        let first = self.usage.get(name)?.iter().find(|u| u.ends_with(')'))?;
        let open = first.find(&format!("{name}("))? + name.len() + 1;
        Some(first[open..].to_string())
    }
}

/// A function the session defined, for `:help`.
#[derive(Debug, Clone)]
pub struct UserFn {
    pub signature: String,
    pub doc: String,
    /// The input that defined it.
    pub source: String,
}

pub fn help_all(idx: &FnIndex, user: &BTreeMap<(String, usize), UserFn>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "netplumb functions (:help NAME for one):");
    for (name, sigs) in idx.callable() {
        let _ = writeln!(out, "  {name:<16} {}", idx.describe(name));
        for s in sigs {
            let _ = writeln!(out, "  {:<16}   {s}", "");
        }
    }
    let _ = writeln!(out, "properties:");
    for (name, sigs) in &idx.properties {
        let desc = idx.describe(name);
        let _ = writeln!(out, "  {name:<16} {desc}  ({})", sigs.join(", "));
    }
    if !user.is_empty() {
        let _ = writeln!(out, "your functions:");
        for f in user.values() {
            let _ = writeln!(out, "  {:<30} {}", f.signature, first_line(&f.doc));
        }
    }
    let _ = writeln!(out, "commands:");
    for (c, d) in META_HELP {
        let _ = writeln!(out, "  {c:<16} {d}");
    }
    let _ = writeln!(
        out,
        "Each statement is applied when it is complete; Ctrl-C stops a running one \
         (it is rolled back), Ctrl-D leaves."
    );
    out
}

fn first_line(doc: &str) -> &str {
    doc.lines()
        .map(|l| {
            l.trim()
                .trim_start_matches("///")
                .trim_start_matches("/**")
                .trim()
        })
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// One function (its forms, typed signatures and reference entries, as
/// `netplumb doc NAME` prints them), a meta command, or the session's own.
pub fn help_one(
    idx: &FnIndex,
    user: &BTreeMap<(String, usize), UserFn>,
    name: &str,
) -> Option<String> {
    let name = name.trim().trim_end_matches("()");
    let mut out = String::new();
    if let Some((c, d)) = META_HELP
        .iter()
        .find(|(c, _)| c.split(' ').next() == Some(&format!(":{}", name.trim_start_matches(':'))))
    {
        let _ = writeln!(out, "{c}  {d}");
    }
    if let Some(sigs) = idx.functions.get(name).or_else(|| idx.properties.get(name)) {
        if let Some(forms) = idx.usage.get(name) {
            let _ = writeln!(out, "{}", forms.join(" · "));
        }
        let _ = writeln!(out, "signatures:");
        for s in sigs {
            let _ = writeln!(out, "  {s}");
        }
        for e in idx
            .core
            .iter()
            .filter(|e| e.names.iter().any(|n| n == name))
        {
            let _ = writeln!(out, "\n{}", doc::render_entry(e).trim_end());
        }
    }
    for ((n, _), f) in user {
        if n == name {
            let _ = writeln!(out, "{}  (defined in {})", f.signature, f.source);
            for l in f.doc.lines() {
                let _ = writeln!(out, "  {}", l.trim());
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Recorder;
    use crate::run::Runner;

    fn index() -> FnIndex {
        let runner = Runner::new("t", Box::new(Recorder::new()), None).unwrap();
        FnIndex::from_session(&Session::new(runner, None, &[], 0))
    }

    #[test]
    fn signatures_read_like_scripts() {
        let idx = index();
        assert!(
            idx.functions["bridge"].contains(&"Netns.bridge(string) -> Link".to_string()),
            "{:?}",
            idx.functions["bridge"]
        );
        assert_eq!(
            idx.properties["name"],
            [
                "Daemon.name -> string",
                "Link.name -> string",
                "Netns.name -> string",
                "Site.name -> string"
            ]
        );
        assert!(idx.functions["exec"].contains(&"Netns.exec(string) -> map".to_string()));
        assert_eq!(idx.param_hint("netns").as_deref(), Some("name)"));
        assert_eq!(idx.param_hint("route").as_deref(), Some("dest, via)"));
        assert!(!idx.callable().any(|(n, _)| n == "to_string"));
    }

    #[test]
    fn help_says_what_doc_says_for_every_function() {
        let idx = index();
        assert!(!idx.core.is_empty());
        for e in &idx.core {
            for name in &e.names {
                let h = help_one(&idx, &BTreeMap::new(), name).unwrap();
                assert!(
                    h.contains(doc::render_entry(e).trim_end()),
                    ":help {name}:\n{h}"
                );
            }
        }
    }

    #[test]
    fn help_one_agrees_with_the_reference() {
        let idx = index();
        let h = help_one(&idx, &BTreeMap::new(), "veth").unwrap();
        assert!(
            h.starts_with("veth(name, peer) · veth(name, ns, peer) · ns.veth(name, other, peer)"),
            "{h}"
        );
        let one = idx
            .core
            .iter()
            .find(|e| e.title == "veth(name, ns, peer) → Link")
            .unwrap();
        assert!(h.contains(doc::render_entry(one).trim_end()), "{h}");
    }
}
