//! Line-editor helper: tab completion of netplumb functions, methods,
//! properties, variables and meta commands, of namespace and link names
//! inside string literals, and of file names after `:save`/`:load`; hints
//! (a function's parameters, the rest of a unique name, or history).

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use super::resolve::lock;

pub const META: &[&str] = &[
    ":help", ":plan", ":show", ":save", ":load", ":down", ":quit",
];

const KEYWORDS: &[&str] = &[
    "let", "const", "fn", "for", "in", "if", "else", "while", "loop", "break", "continue",
    "return", "import", "as", "true", "false", "switch", "do", "until", "throw", "try", "catch",
    "print", "debug",
];

/// What completion can offer; the REPL refreshes it after every statement.
#[derive(Debug, Default)]
pub struct Known {
    /// netplumb's functions and the session's own, by name.
    pub functions: Vec<String>,
    /// Property names (`.name`, `.peer`, …).
    pub properties: Vec<String>,
    pub variables: Vec<String>,
    /// Link and namespace names in the session's model.
    pub links: Vec<String>,
    pub namespaces: Vec<String>,
    /// Parameter hints shown after `name(`: name → "a, b)".
    pub params: Vec<(String, String)>,
}

pub struct ReplHelper {
    pub known: Arc<Mutex<Known>>,
    files: FilenameCompleter,
    history: HistoryHinter,
}

impl ReplHelper {
    pub fn new(known: Arc<Mutex<Known>>) -> Self {
        Self {
            known,
            files: FilenameCompleter::new(),
            history: HistoryHinter::new(),
        }
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Start of the identifier that ends at the cursor.
fn word_start(before: &str) -> usize {
    before
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c))
        .last()
        .map_or(before.len(), |(i, _)| i)
}

/// If the cursor is inside a string literal, where its text starts.
fn string_start(before: &str) -> Option<usize> {
    let mut open: Option<usize> = None;
    let mut escaped = false;
    for (i, c) in before.char_indices() {
        match (c, open) {
            (_, Some(_)) if escaped => escaped = false,
            ('\\', Some(_)) => escaped = true,
            ('"', None) => open = Some(i + 1),
            ('"', Some(_)) => open = None,
            _ => {}
        }
    }
    open
}

/// Namespaces that exist now (`/run/netns`), as `ip netns` lists them.
fn kernel_namespaces() -> Vec<String> {
    names_in(crate::apply::netns::NETNS_DIR)
}

/// Devices of the namespace netplumb runs in.
fn host_links() -> Vec<String> {
    names_in("/sys/class/net")
}

fn names_in(dir: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn pairs(mut names: Vec<String>, prefix: &str) -> Vec<Pair> {
    names.retain(|n| n.starts_with(prefix));
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|n| Pair {
            display: n.clone(),
            replacement: n,
        })
        .collect()
}

impl ReplHelper {
    pub fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<Pair>) {
        let before = &line[..pos];
        let trimmed = before.trim_start();
        let k = lock(&self.known);
        if let Some(cmd) = trimmed.strip_prefix(':') {
            let lead = before.len() - trimmed.len();
            return match cmd.split_once(' ') {
                None => (
                    lead,
                    pairs(META.iter().map(|m| m.to_string()).collect(), trimmed),
                ),
                Some(("help", arg)) => {
                    let start = pos - arg.len();
                    let mut all = k.functions.clone();
                    all.extend(k.properties.iter().cloned());
                    all.extend(META.iter().map(|m| m.trim_start_matches(':').to_string()));
                    (start, pairs(all, arg.trim_start()))
                }
                Some(("save" | "load", _)) => {
                    drop(k);
                    // Like a shell: the path after the command.
                    self.files
                        .complete_path(line, pos)
                        .unwrap_or((pos, Vec::new()))
                }
                Some(_) => (pos, Vec::new()),
            };
        }
        if let Some(start) = string_start(before) {
            let mut names = kernel_namespaces();
            names.extend(k.namespaces.iter().cloned());
            names.extend(k.links.iter().cloned());
            names.extend(host_links());
            return (start, pairs(names, &before[start..]));
        }
        let start = word_start(before);
        let word = &before[start..];
        let after_dot = before[..start].trim_end().ends_with('.');
        let mut names = k.functions.clone();
        if after_dot {
            names.extend(k.properties.iter().cloned());
        } else {
            names.extend(k.variables.iter().cloned());
            names.extend(KEYWORDS.iter().map(|s| s.to_string()));
        }
        (start, pairs(names, word))
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        Ok(self.candidates(line, pos))
    }
}

impl ReplHelper {
    /// The parameters after `name(`, or the rest of a name only one
    /// function has, typed at the end of the line.
    pub fn code_hint(&self, line: &str) -> Option<String> {
        let k = lock(&self.known);
        if let Some(head) = line.strip_suffix('(') {
            let name = &head[word_start(head)..];
            return k
                .params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| p.clone());
        }
        let word = &line[word_start(line)..];
        if word.len() < 2 || line.trim_start().starts_with(':') || string_start(line).is_some() {
            return None;
        }
        let mut matches = k.functions.iter().filter(|f| f.starts_with(word));
        match (matches.next(), matches.next()) {
            (Some(f), None) if f.len() > word.len() => Some(f[word.len()..].to_string()),
            _ => None,
        }
    }
}

impl Hinter for ReplHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, ctx: &Context<'_>) -> Option<String> {
        if pos < line.len() {
            return None;
        }
        self.code_hint(line)
            .or_else(|| self.history.hint(line, pos, ctx))
    }
}

impl Highlighter for ReplHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        // Dim, so a hint is not mistaken for typed text.
        Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }
}

impl Validator for ReplHelper {}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn helper() -> ReplHelper {
        let known = Known {
            functions: vec![
                "netns".into(),
                "veth".into(),
                "bridge".into(),
                "next".into(),
            ],
            properties: vec!["name".into(), "peer".into()],
            variables: vec!["lab".into()],
            links: vec!["veth0".into()],
            namespaces: vec!["foons".into()],
            params: vec![("netns".into(), "name)".into())],
        };
        ReplHelper::new(Arc::new(Mutex::new(known)))
    }

    fn names(h: &ReplHelper, line: &str) -> (usize, Vec<String>) {
        let (s, p) = h.candidates(line, line.len());
        (s, p.into_iter().map(|p| p.replacement).collect())
    }

    #[test]
    fn completes_functions_variables_and_keywords() {
        let h = helper();
        assert_eq!(names(&h, "let n = net"), (8, vec!["netns".to_string()]));
        assert_eq!(names(&h, "la"), (0, vec!["lab".to_string()]));
        assert_eq!(names(&h, "le"), (0, vec!["let".to_string()]));
    }

    #[test]
    fn after_a_dot_offers_methods_and_properties() {
        let h = helper();
        assert_eq!(names(&h, "v.pe").1, vec!["peer".to_string()]);
        assert_eq!(names(&h, "ns.br").1, vec!["bridge".to_string()]);
    }

    #[test]
    fn inside_a_string_offers_namespace_and_link_names() {
        let h = helper();
        assert_eq!(names(&h, "netns(\"fo"), (7, vec!["foons".to_string()]));
        assert!(names(&h, "x.link(\"vet").1.contains(&"veth0".to_string()));
        // A closed string is not completed into.
        assert!(
            !names(&h, "netns(\"a\") + fo")
                .1
                .contains(&"foons".to_string())
        );
    }

    #[test]
    fn meta_commands() {
        let h = helper();
        assert_eq!(names(&h, ":he"), (0, vec![":help".to_string()]));
        assert_eq!(names(&h, ":help ve"), (6, vec!["veth".to_string()]));
    }

    #[test]
    fn hints() {
        let h = helper();
        assert_eq!(h.code_hint("let n = netns(").as_deref(), Some("name)"));
        assert_eq!(h.code_hint("let n = bri").as_deref(), Some("dge"));
        assert_eq!(h.code_hint("ne"), None, "two functions start with ne");
    }
}
