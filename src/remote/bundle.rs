//! A script bundle: the main script and the local modules it imports, as
//! one stream on stdin, so that `ssh host netplumb up -` needs nothing on
//! the far side but netplumb itself. The format:
//!
//! ```text
//! #!netplumb-bundle 1
//! @@ file lab.rhai 120
//! <120 bytes>
//! @@ file lib/nets.rhai 42
//! <42 bytes>
//! @@ end
//! ```
//!
//! Entry 0 is the main script; the others are found by `import` as if they
//! were beside it. Lengths are in bytes, so a file may hold any line. What
//! follows `@@ end` is left unread on stdin (for `--hold`'s COMMIT/ABORT).

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Component, Path};

pub const HEADER: &str = "#!netplumb-bundle 1";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("reading the script from stdin: {0}")]
    Io(#[from] std::io::Error),
    #[error("bundle on stdin, entry {n}: expected `@@ file PATH LENGTH` or `@@ end`, got {line:?}")]
    BadLine { n: usize, line: String },
    #[error("bundle on stdin: {path:?} is not a relative path inside the script's directory")]
    BadPath { path: String },
    #[error("bundle on stdin: {path} comes twice")]
    Duplicate { path: String },
    #[error("bundle on stdin: {path} is cut short (the stream ended inside it)")]
    Truncated { path: String },
    #[error("bundle on stdin: {path} is not UTF-8 text")]
    NotUtf8 { path: String },
    #[error("bundle on stdin: no `@@ end` line (the stream ended after {n} entries)")]
    NoEnd { n: usize },
    #[error("bundle on stdin has no script (no `@@ file` entry)")]
    Empty,
    #[error(
        "the script {script} imports {module} by a path outside its directory: a bundle carries only modules beside the script (or below it)"
    )]
    Outside { script: String, module: String },
}

/// A main script and its local modules, by path relative to the main
/// script's directory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bundle {
    /// (relative path, text); entry 0 is the main script.
    pub files: Vec<(String, String)>,
}

/// Only plain relative paths: nothing that climbs out or is absolute.
fn relative_ok(p: &str) -> bool {
    !p.is_empty()
        && !p.contains('\n')
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

impl Bundle {
    /// The bundle of a script and the modules it loaded (import key →
    /// text, keys relative to the script's directory).
    pub fn of(main: &str, text: &str, modules: &[(String, String)]) -> Result<Self, BundleError> {
        let mut files = vec![(main.to_string(), text.to_string())];
        for (k, t) in modules {
            if !relative_ok(k) {
                return Err(BundleError::Outside {
                    script: main.to_string(),
                    module: k.clone(),
                });
            }
            if !files.iter().any(|(p, _)| p == k) {
                files.push((k.clone(), t.clone()));
            }
        }
        Ok(Self { files })
    }

    pub fn main(&self) -> (&str, &str) {
        // `read` and `of` never make an empty bundle.
        self.files
            .first()
            .map(|(p, t)| (p.as_str(), t.as_str()))
            .unwrap_or(("-", ""))
    }

    /// The modules (every entry but the main script), for the resolver.
    pub fn modules(&self) -> HashMap<String, String> {
        self.files.iter().skip(1).cloned().collect()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("{HEADER}\n").into_bytes();
        for (p, t) in &self.files {
            out.extend_from_slice(format!("@@ file {p} {}\n", t.len()).as_bytes());
            out.extend_from_slice(t.as_bytes());
            out.push(b'\n');
        }
        out.extend_from_slice(b"@@ end\n");
        out
    }

    /// Read what follows the header line up to and including `@@ end`.
    fn read_entries(r: &mut impl BufRead) -> Result<Self, BundleError> {
        let mut files: Vec<(String, String)> = Vec::new();
        loop {
            let n = files.len();
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line)? == 0 {
                return Err(BundleError::NoEnd { n });
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            let bad = || BundleError::BadLine {
                n,
                line: line.trim_end_matches('\n').to_string(),
            };
            if line == "@@ end\n" {
                break;
            }
            let rest = line
                .strip_prefix("@@ file ")
                .and_then(|l| l.strip_suffix('\n'))
                .ok_or_else(bad)?;
            let (path, len) = rest.rsplit_once(' ').ok_or_else(bad)?;
            let len: usize = len.parse().map_err(|_| bad())?;
            if !relative_ok(path) {
                return Err(BundleError::BadPath { path: path.into() });
            }
            if files.iter().any(|(p, _)| p == path) {
                return Err(BundleError::Duplicate { path: path.into() });
            }
            // The length, then the newline that ends the entry.
            let mut body = vec![0; len + 1];
            r.read_exact(&mut body).map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => BundleError::Truncated { path: path.into() },
                _ => BundleError::Io(e),
            })?;
            if body.pop() != Some(b'\n') {
                return Err(BundleError::Truncated { path: path.into() });
            }
            let text =
                String::from_utf8(body).map_err(|_| BundleError::NotUtf8 { path: path.into() })?;
            files.push((path.to_string(), text));
        }
        if files.is_empty() {
            return Err(BundleError::Empty);
        }
        Ok(Self { files })
    }
}

/// What came on stdin: a bundle, or one plain script read to EOF.
#[derive(Debug, PartialEq)]
pub enum Stdin {
    Bundle(Bundle),
    Plain(String),
}

/// Read stdin's script: a bundle when its first line is the header (the
/// rest of stdin is left unread), else the whole stream as one script.
pub fn read(r: &mut impl BufRead) -> Result<Stdin, BundleError> {
    let mut first = Vec::new();
    r.read_until(b'\n', &mut first)?;
    if first == format!("{HEADER}\n").as_bytes() {
        return Bundle::read_entries(r).map(Stdin::Bundle);
    }
    let mut all = first;
    r.read_to_end(&mut all)?;
    let text = String::from_utf8(all).map_err(|_| BundleError::NotUtf8 {
        path: "stdin".into(),
    })?;
    Ok(Stdin::Plain(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b() -> Bundle {
        Bundle::of(
            "lab.rhai",
            "import \"lib/nets\" as n;\nn::make();\n",
            &[(
                "lib/nets.rhai".into(),
                "fn make() {}\n@@ end\nno newline".into(),
            )],
        )
        .unwrap()
    }

    #[test]
    fn encode_then_read_gives_the_same_files_and_leaves_the_rest() {
        let mut bytes = b().encode();
        bytes.extend_from_slice(b"COMMIT\n");
        let mut r = std::io::Cursor::new(bytes);
        assert_eq!(read(&mut r).unwrap(), Stdin::Bundle(b()));
        let mut rest = String::new();
        r.read_line(&mut rest).unwrap();
        assert_eq!(rest, "COMMIT\n");
    }

    #[test]
    fn no_header_is_one_plain_script() {
        let mut r = std::io::Cursor::new(b"netns(\"a\");\n@@ end\n".to_vec());
        assert_eq!(
            read(&mut r).unwrap(),
            Stdin::Plain("netns(\"a\");\n@@ end\n".into())
        );
    }

    #[test]
    fn bad_bundles_are_refused_with_what_is_wrong() {
        let cases: [(&[u8], &str); 6] = [
            (b"#!netplumb-bundle 1\n@@ end\n", "no script"),
            (b"#!netplumb-bundle 1\n@@ file a.rhai 10\nabc", "cut short"),
            (
                b"#!netplumb-bundle 1\n@@ file ../a.rhai 1\nx\n@@ end\n",
                "not a relative path",
            ),
            (
                b"#!netplumb-bundle 1\n@@ file /a.rhai 1\nx\n@@ end\n",
                "not a relative path",
            ),
            (b"#!netplumb-bundle 1\n@@ file a.rhai 1\nx\n", "no `@@ end`"),
            (
                b"#!netplumb-bundle 1\n@@ fil a.rhai 1\nx\n@@ end\n",
                "expected `@@ file",
            ),
        ];
        for (input, want) in cases {
            let e = read(&mut std::io::Cursor::new(input.to_vec())).unwrap_err();
            assert!(e.to_string().contains(want), "{e} (wanted {want})");
        }
    }

    #[test]
    fn a_module_outside_the_script_directory_cannot_be_bundled() {
        let e = Bundle::of("lab.rhai", "", &[("/etc/x.rhai".into(), String::new())]).unwrap_err();
        assert!(e.to_string().contains("/etc/x.rhai"), "{e}");
    }
}
