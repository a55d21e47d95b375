//! docs/dsl.md's core part, generated from the registry: each `## `
//! section keeps its hand-written introduction, and its `### ` entries are
//! the registered functions of that section, each with its doc comment.
//! [`problems`] compares the page with the registry both ways; the test
//! `dsl_md_is_generated_from_the_registry` rewrites the page under
//! `UPDATE_GOLDEN=1`.

use std::collections::BTreeSet;

use crate::script::registry::Entry;

/// The heading that starts the modules part (written by hand, from the
/// modules' doc comments).
const MODULES: &str = "## Modules";

fn render(e: &Entry) -> String {
    format!("### {}\n\n{}\n\n", e.heading(), e.doc)
}

/// The page with every core section's entries replaced by the registry's.
pub fn generate(page: &str, entries: &[Entry]) -> String {
    let (core, rest) = match page.find(&format!("\n{MODULES}")) {
        Some(i) => page.split_at(i + 1),
        None => (page, ""),
    };
    let mut out = String::new();
    let mut section: Option<&str> = None;
    let mut skipping = false;
    let flush = |out: &mut String, section: Option<&str>| {
        if let Some(s) = section {
            for e in entries.iter().filter(|e| e.section == s) {
                out.push_str(&render(e));
            }
        }
    };
    for line in core.split_inclusive('\n') {
        if let Some(title) = line.strip_prefix("## ") {
            flush(&mut out, section);
            section = Some(title.trim_end());
            skipping = false;
        } else if line.starts_with("### ") {
            skipping = true;
        }
        if !skipping {
            out.push_str(line);
        }
    }
    flush(&mut out, section);
    out.push_str(rest);
    out
}

/// The `### ` headings of the core part, with their section.
fn headings(page: &str) -> Vec<(String, String)> {
    let core = page.split(&format!("\n{MODULES}")).next().unwrap_or(page);
    let mut section = String::new();
    let mut out = Vec::new();
    for l in core.lines() {
        if let Some(s) = l.strip_prefix("## ") {
            section = s.to_string();
        } else if let Some(h) = l.strip_prefix("### ") {
            out.push((section.clone(), h.to_string()));
        }
    }
    out
}

/// Where the page and the registry disagree, both ways; empty when the
/// page is what [`generate`] makes of it.
pub fn problems(page: &str, entries: &[Entry]) -> Vec<String> {
    let mut out = Vec::new();
    let sections: BTreeSet<String> = page
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(str::to_string)
        .collect();
    let in_page: BTreeSet<(String, String)> = headings(page).into_iter().collect();
    let in_registry: BTreeSet<(String, String)> = entries
        .iter()
        .map(|e| (e.section.to_string(), e.heading()))
        .collect();
    for e in entries {
        if !sections.contains(e.section) {
            out.push(format!(
                "{} is registered in section '{}', which docs/dsl.md does not have",
                e.heading(),
                e.section
            ));
        }
    }
    for (s, h) in in_registry.difference(&in_page) {
        out.push(format!(
            "{h} is registered (section {s}) but docs/dsl.md has no `### ` entry for it"
        ));
    }
    for (s, h) in in_page.difference(&in_registry) {
        out.push(format!(
            "docs/dsl.md documents {h} (section {s}), which the engine does not register"
        ));
    }
    if out.is_empty() && generate(page, entries) != page {
        out.push(
            "docs/dsl.md's entries differ from the functions' doc comments \
             (regenerate it: UPDATE_GOLDEN=1 cargo test --bin netplumb dsl_md)"
                .to_string(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::registry::{Form, Param};

    fn entry(section: &'static str, name: &str, doc: &str) -> Entry {
        Entry {
            section,
            forms: vec![Form {
                name: name.to_string(),
                this: None,
                params: vec![Param {
                    name: "x".into(),
                    ty: "int".into(),
                }],
                ret: "int".into(),
                property: false,
            }],
            doc: doc.to_string(),
        }
    }

    const PAGE: &str = "# T\n\n## A\n\nIntro of A.\n\n### `old(x)` → int\n\nGone.\n\n## B\n\n## Modules\n\n#### `m::f()`\n";

    #[test]
    fn entries_replace_a_sections_own_and_keep_its_introduction() {
        let page = generate(
            PAGE,
            &[entry("A", "one", "One."), entry("B", "two", "Two.")],
        );
        assert_eq!(
            page,
            "# T\n\n## A\n\nIntro of A.\n\n### `one(x)` → int\n\nOne.\n\n## B\n\n### `two(x)` → int\n\nTwo.\n\n## Modules\n\n#### `m::f()`\n"
        );
        assert!(
            problems(
                &page,
                &[entry("A", "one", "One."), entry("B", "two", "Two.")]
            )
            .is_empty()
        );
    }

    #[test]
    fn the_page_and_the_registry_are_compared_both_ways() {
        let p = problems(
            PAGE,
            &[entry("A", "one", "One."), entry("C", "three", "3.")],
        );
        assert!(
            p.iter()
                .any(|x| x.contains("`one(x)` → int is registered (section A)")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|x| x.contains("documents `old(x)` → int (section A)")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|x| x.contains("section 'C', which docs/dsl.md does not have")),
            "{p:?}"
        );
        // Same headings, another text: the page is out of date.
        let page = generate(PAGE, &[entry("A", "one", "One.")]);
        let p = problems(&page, &[entry("A", "one", "One, changed.")]);
        assert!(
            p.iter()
                .any(|x| x.starts_with("docs/dsl.md's entries differ")),
            "{p:?}"
        );
    }
}
