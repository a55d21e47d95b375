//! miette diagnostics: Rhai positions and op positions become source spans
//! with the script snippet and a caret.

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};
use rhai::EvalAltResult;

use crate::ledger::LedgerError;
use crate::run::{RunError, TeardownError};
use crate::script::limits::OverBudget;
use crate::script::{Session, innermost};
use crate::topo::{DeclError, Pos};

#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{msg}")]
pub struct AtScript {
    pub msg: String,
    #[source_code]
    pub src: NamedSource<String>,
    /// The refused line, and where two declarations clash, the first one.
    #[label(collection)]
    pub spans: Vec<LabeledSpan>,
    #[help]
    pub help: Option<String>,
}

#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{msg}")]
pub struct Plain {
    pub msg: String,
    #[help]
    pub help: Option<String>,
}

pub fn plain(msg: impl Into<String>, help: Option<&str>) -> miette::Report {
    miette::Report::new(Plain {
        msg: msg.into(),
        help: help.map(str::to_string),
    })
}

/// A ledger error with what to do about it.
pub fn ledger(e: LedgerError) -> miette::Report {
    let help = e.help();
    plain(e.to_string(), help.as_deref())
}

/// A failure whose rollback failed too: both, and each undo that failed.
pub fn with_rollback_errors(report: miette::Report, errs: &[TeardownError]) -> miette::Report {
    plain(
        format!(
            "{report:?}\nand rolling back failed too:\n  {}",
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n  ")
        ),
        None,
    )
}

/// Byte span of the statement at (line, col), 1-based, up to the end of the line.
fn span_at(text: &str, line: usize, col: usize) -> SourceSpan {
    let mut off = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let start = l
                .char_indices()
                .nth(col.saturating_sub(1))
                .map(|(b, _)| b)
                .unwrap_or(0);
            let body = l.trim_end_matches(['\n', '\r']);
            let end = body
                .trim_end()
                .trim_end_matches(';')
                .len()
                .max(start + 1)
                .min(body.len().max(start + 1));
            return SourceSpan::new((off + start).into(), end - start);
        }
        off += l.len();
    }
    SourceSpan::new(text.len().saturating_sub(1).into(), 1)
}

/// Rhai appends " (line N, position M)"; the snippet already shows where.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" (line ") {
        Some(i) if msg.ends_with(')') => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

/// An error at `pos`, shown with its snippet when the source is known.
pub fn at(
    session: &Session,
    pos: &Pos,
    msg: String,
    label: &str,
    help: Option<String>,
) -> miette::Report {
    at2(session, pos, None, msg, label, help)
}

/// An error at `pos` that also points at an earlier declaration `first`
/// (labelled in the same snippet when it is in the same file).
pub fn at2(
    session: &Session,
    pos: &Pos,
    first: Option<&Pos>,
    msg: String,
    label: &str,
    help: Option<String>,
) -> miette::Report {
    let key = pos.source.to_string();
    let display = if key.is_empty() {
        session.main_name.clone()
    } else {
        key.clone()
    };
    let msg = match &pos.called_from {
        Some((line, f)) if !key.is_empty() => {
            format!("{msg}\n  called from {}:{line} ({f})", session.main_name)
        }
        _ => msg,
    };
    match session.source_text(&key) {
        Some(text) if pos.line > 0 => {
            let mut spans = vec![LabeledSpan::new_with_span(
                Some(label.to_string()),
                span_at(&text, pos.line, pos.col),
            )];
            if let Some(f) = first
                && f.line > 0
                && *f.source == *pos.source
                && f.line != pos.line
            {
                spans.insert(
                    0,
                    LabeledSpan::new_with_span(
                        Some("first declared here".to_string()),
                        span_at(&text, f.line, f.col.max(1)),
                    ),
                );
            }
            miette::Report::new(AtScript {
                msg: format!("{msg}\n  at {display}:{}:{}", pos.line, pos.col),
                spans,
                src: NamedSource::new(display, text),
                help,
            })
        }
        _ => miette::Report::new(Plain { msg, help }),
    }
}

/// A Rhai error (syntax, type, a netplumb function's refusal).
pub fn script_error(session: &Session, e: &EvalAltResult) -> miette::Report {
    let (inner, p, source) = innermost(e);
    let decl = match inner {
        EvalAltResult::ErrorRuntime(d, _) => d.clone().try_cast::<DeclError>(),
        _ => None,
    };
    let msg = match inner {
        EvalAltResult::ErrorRuntime(_, _) if decl.is_some() => {
            decl.as_ref().map(|d| d.to_string()).unwrap_or_default()
        }
        EvalAltResult::ErrorRuntime(d, _) => d.to_string(),
        EvalAltResult::ErrorParsing(p, _) => format!("syntax error: {p}"),
        EvalAltResult::ErrorModuleNotFound(m, _) => {
            format!("module '{m}' not found beside the script nor in netplumb's stdlib")
        }
        EvalAltResult::ErrorTooManyOperations(_) => {
            "the script ran too many operations: stopped (raise --max-ops if this is intended)"
                .to_string()
        }
        EvalAltResult::ErrorTerminated(t, _) if t.is::<OverBudget>() => {
            let mib = t.clone_cast::<OverBudget>().mib;
            format!("the script used more than {mib} MiB of memory: stopped")
        }
        EvalAltResult::ErrorStackOverflow(_) => {
            "the script recursed too deeply: stopped (is a function calling itself without end?)"
                .to_string()
        }
        EvalAltResult::ErrorFunctionNotFound(sig, _) => {
            format!(
                "no function {}",
                crate::script::registry::plain_types(&session.engine, sig)
            )
        }
        other => strip_position(&other.to_string()),
    };
    let help = match inner {
        EvalAltResult::ErrorFunctionNotFound(..) => {
            Some("check the function's name and its arguments' types (see docs/dsl.md)".to_string())
        }
        EvalAltResult::ErrorTerminated(t, _) if t.is::<OverBudget>() => Some(
            "raise --max-memory MIB if this is intended; a string or array that doubles \
             in a loop never fits"
                .to_string(),
        ),
        _ => decl.as_ref().and_then(|d| d.help()).map(str::to_string),
    };
    // An error inside a module (the bundled stdlib, say) also names the
    // line of the user's script that called into it.
    let msg = match (&source, e) {
        (Some(_), EvalAltResult::ErrorInFunctionCall(f, _, _, at)) if !at.is_none() => {
            let main = if session.main_name.is_empty() {
                "the script"
            } else {
                &session.main_name
            };
            format!(
                "{msg}\n  called from {main}:{} ({f})",
                at.line().unwrap_or(0)
            )
        }
        _ => msg,
    };
    let pos = Pos {
        source: source.unwrap_or_default().into(),
        line: p.line().unwrap_or(0),
        col: p.position().unwrap_or(1),
        called_from: None,
    };
    let pos = if session.source_text(&pos.source).is_some() {
        pos
    } else {
        Pos {
            source: "".into(),
            ..pos
        }
    };
    let first = decl.as_ref().and_then(|d| d.first());
    at2(session, &pos, first, msg, "here", help)
}

pub fn run_error(session: &Session, e: &RunError) -> miette::Report {
    match e {
        RunError::Diff(d) => at2(
            session,
            &d.pos,
            d.other.as_deref(),
            d.msg.clone(),
            "declared here",
            d.help.clone(),
        ),
        RunError::Apply(a) => at(
            session,
            &a.pos,
            format!("cannot {} (netns {}): {}", a.what, a.ns, a.err),
            "from here",
            a.help.clone(),
        ),
        RunError::Ledger(l) => plain(l.to_string(), l.help().as_deref()),
        RunError::Teardown(t) => plain(crate::run::describe_teardown(t), None),
        RunError::Site(s) => plain(s.to_string(), None),
    }
}
