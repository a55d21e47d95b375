//! The source tree has layers: no top-level module of src/ may depend on a
//! module that depends back on it, however long the way round. A module's
//! dependencies are every `crate::NAME` path in its files (in `use` lines,
//! `use crate::{a, b::c}` groups and paths written inline), comments and
//! strings left out; the check finds strongly connected components (Tarjan)
//! and names each import that closes a cycle.
//!
//! Unit tests (`#[cfg(test)]` modules, inline or in their own file) are left
//! out: they ship in no binary, and a test may set up its subject with a
//! module above it (the runner's tests run scripts).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file of src/ belongs to (None: the crate root).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (name != "main" && name != "lib").then_some(name)
}

/// The text with `//` comments (doc comments too) and string literals
/// blanked, so a path in prose or in a message is no dependency.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == '\\' {
                i += 2;
                continue;
            }
            if c == '"' {
                in_str = false;
            }
            out.push(if c == '\n' { '\n' } else { ' ' });
            i += 1;
            continue;
        }
        if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
            continue;
        }
        // A char literal such as '"' is no string start.
        if c == '\'' && b.get(i + 2) == Some(&'\'') {
            out.push_str("   ");
            i += 3;
            continue;
        }
        if c == '"' {
            in_str = true;
        }
        out.push(c);
        i += 1;
    }
    out
}

fn ident_at(s: &[char], mut i: usize) -> (String, usize) {
    while i < s.len() && s[i].is_whitespace() {
        i += 1;
    }
    let start = i;
    while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_') {
        i += 1;
    }
    (s[start..i].iter().collect(), i)
}

/// Blank every `#[cfg(test)] mod NAME { … }` block of `code`; the names of
/// `#[cfg(test)] mod NAME;` (test modules in their own files) are returned.
fn without_tests(code: &str) -> (String, Vec<String>) {
    let mut out: Vec<char> = code.chars().collect();
    let mut files = Vec::new();
    let pat: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut i = 0;
    while i + pat.len() <= out.len() {
        if out[i..i + pat.len()] != pat[..] {
            i += 1;
            continue;
        }
        let mut j = i + pat.len();
        let skip_ws = |j: &mut usize, s: &[char]| {
            while *j < s.len() && s[*j].is_whitespace() {
                *j += 1;
            }
        };
        skip_ws(&mut j, &out);
        let rest: String = out[j..out.len().min(j + 8)].iter().collect();
        let after_pub = if rest.starts_with("pub ") { j + 4 } else { j };
        let rest: String = out[after_pub..out.len().min(after_pub + 4)]
            .iter()
            .collect();
        if !rest.starts_with("mod ") {
            i = j;
            continue;
        }
        let (name, mut k) = ident_at(&out, after_pub + 4);
        skip_ws(&mut k, &out);
        match out.get(k) {
            Some(';') => files.push(name),
            Some('{') => {
                let mut depth = 0;
                let start = i;
                while k < out.len() {
                    match out[k] {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    k += 1;
                }
                for c in out.iter_mut().take(k + 1).skip(start) {
                    if *c != '\n' {
                        *c = ' ';
                    }
                }
            }
            _ => {}
        }
        i = k;
    }
    (out.into_iter().collect(), files)
}

/// The top-level names after each `crate::` in `code`, with the line.
fn crate_paths(code: &str) -> Vec<(String, usize)> {
    let s: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let pat: Vec<char> = "crate::".chars().collect();
    let mut line = 1;
    let mut i = 0;
    while i < s.len() {
        if s[i] == '\n' {
            line += 1;
        }
        let here = s[i..].starts_with(&pat)
            && (i == 0 || !(s[i - 1].is_alphanumeric() || s[i - 1] == '_' || s[i - 1] == '$'));
        if !here {
            i += 1;
            continue;
        }
        let mut j = i + pat.len();
        while j < s.len() && s[j].is_whitespace() {
            j += 1;
        }
        if s.get(j) == Some(&'{') {
            // `crate::{a, b::{c, d}, e}`: the first name of each item at depth 1.
            let mut depth = 0;
            let mut k = j;
            let mut expect_name = true;
            while k < s.len() {
                match s[k] {
                    '{' => {
                        depth += 1;
                        if depth == 1 {
                            expect_name = true;
                        }
                        k += 1;
                    }
                    '}' => {
                        depth -= 1;
                        k += 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        expect_name = true;
                        k += 1;
                    }
                    c if depth == 1 && expect_name && (c.is_alphabetic() || c == '_') => {
                        let (name, end) = ident_at(&s, k);
                        out.push((name, line));
                        expect_name = false;
                        k = end;
                    }
                    _ => k += 1,
                }
            }
            i = k;
        } else {
            let (name, end) = ident_at(&s, j);
            if !name.is_empty() {
                out.push((name, line));
            }
            i = end;
        }
    }
    out
}

type Graph = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// module -> (module it uses -> where: "src/x.rs:12").
fn dependencies() -> Graph {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(&src, f)).collect();
    let mut code: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut test_files: BTreeSet<PathBuf> = BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("a source file");
        let (c, tests) = without_tests(&code_only(&text));
        // `mod x;` in a/mod.rs or in a.rs is a/x.rs or a/x/mod.rs.
        let dir = match f.file_stem().and_then(|s| s.to_str()) {
            Some("mod" | "main" | "lib") => f.parent().map(Path::to_path_buf),
            _ => Some(f.with_extension("")),
        };
        for t in tests {
            if let Some(d) = &dir {
                test_files.insert(d.join(format!("{t}.rs")));
                test_files.insert(d.join(&t).join("mod.rs"));
            }
        }
        code.insert(f.clone(), c);
    }
    let mut g = Graph::new();
    for f in &files {
        let Some(m) = module_of(&src, f) else {
            continue;
        };
        let deps = g.entry(m.clone()).or_default();
        let in_test = |t: &PathBuf| {
            f == t || (t.ends_with("mod.rs") && t.parent().is_some_and(|d| f.starts_with(d)))
        };
        if test_files.iter().any(in_test) {
            continue;
        }
        let rel = f.strip_prefix(root()).unwrap_or(f).display().to_string();
        for (name, line) in crate_paths(&code[f]) {
            if name != m && modules.contains(&name) {
                deps.entry(name).or_default().push(format!("{rel}:{line}"));
            }
        }
    }
    g
}

struct Tarjan<'a> {
    g: &'a Graph,
    index: BTreeMap<&'a str, usize>,
    low: BTreeMap<&'a str, usize>,
    stack: Vec<&'a str>,
    on_stack: BTreeSet<&'a str>,
    next: usize,
    sccs: Vec<Vec<String>>,
}

impl<'a> Tarjan<'a> {
    fn visit(&mut self, v: &'a str) {
        self.index.insert(v, self.next);
        self.low.insert(v, self.next);
        self.next += 1;
        self.stack.push(v);
        self.on_stack.insert(v);
        if let Some(deps) = self.g.get(v) {
            for w in deps.keys() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
        }
        if self.low[v] == self.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack.remove(w);
                scc.push(w.to_string());
                if w == v {
                    break;
                }
            }
            scc.sort();
            self.sccs.push(scc);
        }
    }
}

/// Every group of modules that depend on each other, round the cycle.
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    let mut t = Tarjan {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        sccs: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.sccs.into_iter().filter(|c| c.len() > 1).collect()
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let g = dependencies();
    assert!(
        g.len() > 10,
        "found too few modules under src/ ({}): the scan is broken",
        g.len()
    );
    let found = cycles(&g);
    let mut report = String::new();
    for scc in &found {
        report.push_str(&format!("cycle among {{{}}}:\n", scc.join(", ")));
        for a in scc {
            for (b, at) in &g[a] {
                if scc.contains(b) {
                    report.push_str(&format!("  {a} -> {b} at {}\n", at.join(", ")));
                }
            }
        }
    }
    assert!(found.is_empty(), "import cycles in src/:\n{report}");
}

/// The low layers stay libraries: the kernel model and the read-back
/// library (`show`) know nothing of commands, options, reports or scripts,
/// so scripts (ping_all()), the REPL and the commands can all use them.
#[test]
fn libraries_do_not_reach_up_into_commands() {
    let g = dependencies();
    let upper = [
        "cli", "cmd", "diag", "opts", "repl", "script", "run", "drive", "report",
    ];
    for lib in ["kernel", "show", "op", "model"] {
        let deps = g
            .get(lib)
            .unwrap_or_else(|| panic!("no module {lib} in src/"));
        let bad: Vec<String> = deps
            .iter()
            .filter(|(d, _)| upper.contains(&d.as_str()))
            .map(|(d, at)| format!("{lib} -> {d} at {}", at.join(", ")))
            .collect();
        assert!(bad.is_empty(), "a library reaches up:\n{}", bad.join("\n"));
    }
}

#[test]
fn the_scan_sees_every_form_of_path() {
    let code = code_only(
        "use crate::a::X;\nuse crate::{b, c::{D, E}, d as f};\nlet x = crate::e::y();\n\
         // crate::g in a comment\nlet s = \"crate::h\";\nlet c = '\"'; crate::i::j();\n$crate::k",
    );
    let names: Vec<String> = crate_paths(&code).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["a", "b", "c", "d", "e", "i"]);
}

#[test]
fn test_modules_are_left_out() {
    let (code, files) = without_tests(
        "use crate::a;\n#[cfg(test)]\nmod tests;\n#[cfg(test)]\nmod inline {\n    use crate::b;\n    fn f() { if x { crate::c(); } }\n}\nuse crate::d;",
    );
    assert_eq!(files, ["tests"]);
    let names: Vec<String> = crate_paths(&code).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["a", "d"]);
    assert_eq!(code.lines().count(), 9, "lines are kept for the report");
}

#[test]
fn tarjan_finds_a_long_cycle_and_no_false_one() {
    let mut g = Graph::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("e", "d")] {
        g.entry(a.into())
            .or_default()
            .insert(b.into(), vec![String::new()]);
        g.entry(b.into()).or_default();
    }
    assert_eq!(cycles(&g), vec![vec!["a", "b", "c"]]);
    g.get_mut("c").map(|m| m.remove("a"));
    assert!(cycles(&g).is_empty());
}
