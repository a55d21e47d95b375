//! The script `:save` writes: `--set` parameters, then each successful
//! statement of the session in order.

use std::fmt::Write as _;

/// A Rhai literal for a `--set` value, as `param_value` typed it.
fn literal(v: &str) -> String {
    if v.parse::<i64>().is_ok() || v.parse::<f64>().is_ok() || v.parse::<bool>().is_ok() {
        v.to_string()
    } else {
        format!("{v:?}")
    }
}

/// One saved input: its text, ended so the next one parses after it.
fn terminated(text: &str) -> String {
    let t = text.trim_end();
    if t.ends_with(';') || t.ends_with('}') {
        return t.to_string();
    }
    match t.lines().last() {
        // A trailing comment would swallow a `;` on the same line.
        Some(l) if l.contains("//") => format!("{t}\n;"),
        _ => format!("{t};"),
    }
}

pub struct SavedInput<'a> {
    pub text: &'a str,
    /// The file it came from (`repl FILE`, `:load`), if any.
    pub file: Option<&'a str>,
}

/// The session as a script: `--set` parameters (overridable again with
/// `--set`), then each successful statement in order.
pub fn script(topology: &str, params: &[(String, String)], inputs: &[SavedInput]) -> String {
    let mut out = format!(
        "// Saved from `netplumb repl` (topology '{topology}'): `netplumb up` on this file\n\
         // rebuilds what the session had built.\n"
    );
    for (k, v) in params {
        let _ = writeln!(
            out,
            "const {k} = if is_def_var(\"{k}\") {{ {k} }} else {{ {} }};",
            literal(v)
        );
    }
    for i in inputs {
        if let Some(f) = i.file {
            let _ = writeln!(out, "// from {f}");
        }
        let _ = writeln!(out, "{}", terminated(i.text));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhai::Engine;

    #[test]
    fn saved_inputs_parse_one_after_another() {
        let s = script(
            "repl",
            &[("n".into(), "3".into()), ("who".into(), "lab".into())],
            &[
                SavedInput {
                    text: "let a = 1",
                    file: None,
                },
                SavedInput {
                    text: "a + 1 // two",
                    file: None,
                },
                SavedInput {
                    text: "for i in 0..n {\n  print(i);\n}",
                    file: None,
                },
                SavedInput {
                    text: "fn f(x) { x }\nf(who)",
                    file: Some("x.rhai"),
                },
            ],
        );
        assert!(Engine::new().compile(&s).is_ok(), "{s}");
        assert!(s.contains("const who = if is_def_var(\"who\") { who } else { \"lab\" };"));
    }
}
