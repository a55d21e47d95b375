//! When is an input complete? Rhai's own parser decides: an input whose only
//! problem is that it stops too early (an open block, call, array, map or
//! backtick string) continues on the next line; any other syntax error is
//! reported at once.

use rhai::{Engine, LexError, ParseErrorType, Position};

/// Byte offset of a 1-based (line, column) Rhai position; the column may be
/// one past the end of its line.
fn offset(text: &str, pos: Position) -> Option<usize> {
    let line = pos.line()?;
    let col = pos.position().unwrap_or(1);
    let mut off = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let body = l.trim_end_matches(['\n', '\r']);
            return Some(
                off + body
                    .char_indices()
                    .nth(col.saturating_sub(1))
                    .map_or(body.len(), |(b, _)| b),
            );
        }
        off += l.len();
    }
    // A position on the line after the last one: the end of the text.
    Some(text.len())
}

/// True when `text` is a prefix of a valid input: more lines may finish it.
pub fn is_incomplete(engine: &Engine, text: &str) -> bool {
    let Err(e) = engine.compile(text) else {
        return false;
    };
    let Some(at) = offset(text, e.1) else {
        return false;
    };
    let rest_blank = text.get(at..).is_none_or(|r| r.trim().is_empty());
    match *e.0 {
        // The parser ran out of input where it needed more.
        ParseErrorType::MissingToken(..) | ParseErrorType::UnexpectedEOF => rest_blank,
        // Only backtick strings may span lines.
        ParseErrorType::BadInput(LexError::UnterminatedString) => {
            text.get(at..).is_some_and(|r| r.starts_with('`'))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_constructs_continue() {
        let e = Engine::new();
        for t in [
            "for i in 0..3 {",
            "for i in 0..3 {\n  let x = i;",
            "for i in 0..3 {\n\n",
            "let a = netns(",
            "let a = [1,",
            "let m = #{ a: 1,",
            "fn f(x) {",
            "let x = 1 +",
            "let s = `abc",
            "if x { // open",
        ] {
            assert!(is_incomplete(&e, t), "{t:?} should continue");
        }
    }

    #[test]
    fn complete_or_wrong_inputs_do_not_continue() {
        let e = Engine::new();
        for t in [
            "let x = 1;",
            "let x = 1",
            "for i in 0..3 {\n}",
            "}",
            "foo(1 2)",
            "let s = \"abc",
            "x.",
            "let let",
        ] {
            assert!(!is_incomplete(&e, t), "{t:?} should not continue");
        }
    }
}
