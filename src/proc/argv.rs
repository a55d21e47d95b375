//! A command line split into words the way a shell splits them, but with no
//! shell behind it: quotes and backslashes only, nothing expanded. What would
//! need a shell (pipes, redirections, `$VAR`, `;`) is refused rather than
//! passed on as a literal argument nobody meant.

use std::ffi::CString;
use std::fmt;

/// Why a command line could not be split into words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgvError {
    #[error("the command is empty")]
    Empty,
    #[error("the command's first word (the program) is empty")]
    EmptyProgram,
    #[error("unterminated {0} quote in the command")]
    Unterminated(&'static str),
    #[error("the command ends with a lone backslash")]
    TrailingBackslash,
    #[error(
        "'{0}' at byte {1} needs a shell, and none runs here: quote it, or write the command as [\"sh\", \"-c\", \"...\"]"
    )]
    NeedsShell(char, usize),
    #[error("word {0} of the command contains a NUL byte")]
    Nul(usize),
}

/// A program and its arguments, checked: at least one word, a non-empty
/// program, no NUL byte anywhere (they could not reach execve).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Argv(Vec<String>);

impl Argv {
    /// Split a command string: `python3 -m http.server 8080 --bind '10.0.0.1'`.
    pub fn parse(line: &str) -> Result<Self, ArgvError> {
        Self::from_words(split_words(line)?)
    }

    /// The array form: every element is one word, taken as it is.
    pub fn from_words(words: Vec<String>) -> Result<Self, ArgvError> {
        let Some(first) = words.first() else {
            return Err(ArgvError::Empty);
        };
        if first.is_empty() {
            return Err(ArgvError::EmptyProgram);
        }
        if let Some(i) = words.iter().position(|w| w.contains('\0')) {
            return Err(ArgvError::Nul(i));
        }
        Ok(Self(words))
    }

    pub fn program(&self) -> &str {
        &self.0[0]
    }

    pub fn words(&self) -> &[String] {
        &self.0
    }

    pub(crate) fn to_cstrings(&self) -> Vec<CString> {
        // No NUL inside: checked at construction.
        self.0
            .iter()
            .filter_map(|w| CString::new(w.as_bytes()).ok())
            .collect()
    }
}

impl TryFrom<Vec<String>> for Argv {
    type Error = ArgvError;
    fn try_from(v: Vec<String>) -> Result<Self, ArgvError> {
        Self::from_words(v)
    }
}

impl From<Argv> for Vec<String> {
    fn from(a: Argv) -> Self {
        a.0
    }
}

/// Shell-quoted, so that what `ps` prints can be pasted back into a shell
/// and means the same words.
impl fmt::Display for Argv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, w) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            let plain = !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%".contains(&b) || b >= 0x80);
            if plain {
                f.write_str(w)?;
            } else {
                write!(f, "'{}'", w.replace('\'', r"'\''"))?;
            }
        }
        Ok(())
    }
}

/// Characters that change a command's structure in a shell. Globs (`*`, `?`)
/// and `~` stay literal: they are common in arguments and harmless.
const SHELL_ONLY: &[char] = &['|', '&', ';', '<', '>', '(', ')', '`', '$'];

/// Split `line` into words: blanks separate words; `'…'` keeps everything
/// literally; `"…"` keeps everything but `\"`, `\\`, `\$`, `` \` `` and
/// backslash-newline; outside quotes a backslash takes the next character
/// literally (backslash-newline joins lines). `''` and `""` make an empty
/// word.
pub fn split_words(line: &str) -> Result<Vec<String>, ArgvError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    // A word has started even if it is still empty (after `''`).
    let mut in_word = false;
    let mut chars = line.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => match chars.next() {
                Some((_, '\n')) => {}
                Some((_, n)) => {
                    cur.push(n);
                    in_word = true;
                }
                None => return Err(ArgvError::TrailingBackslash),
            },
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, n)) => cur.push(n),
                        None => return Err(ArgvError::Unterminated("single")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.peek() {
                            Some((_, n @ ('"' | '\\' | '$' | '`'))) => {
                                cur.push(*n);
                                chars.next();
                            }
                            Some((_, '\n')) => {
                                chars.next();
                            }
                            Some(_) => cur.push('\\'),
                            None => return Err(ArgvError::Unterminated("double")),
                        },
                        Some((_, n)) => cur.push(n),
                        None => return Err(ArgvError::Unterminated("double")),
                    }
                }
            }
            c if SHELL_ONLY.contains(&c) => return Err(ArgvError::NeedsShell(c, at)),
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(line: &str) -> Vec<String> {
        split_words(line).unwrap()
    }

    #[test]
    fn blanks_separate_words() {
        assert_eq!(
            w("  python3 -m\thttp.server   8080\n"),
            ["python3", "-m", "http.server", "8080"]
        );
        assert!(w("").is_empty());
        assert!(w(" \t ").is_empty());
    }

    #[test]
    fn single_quotes_keep_everything() {
        assert_eq!(
            w(r#"sh -c 'echo $HOME | wc; "x" \n'"#),
            ["sh", "-c", r#"echo $HOME | wc; "x" \n"#]
        );
        assert_eq!(w("a'b c'd"), ["ab cd"]);
    }

    #[test]
    fn double_quotes_unescape_only_their_four() {
        assert_eq!(w(r#""a \"b\" \\ \$x \` \n""#), [r#"a "b" \ $x ` \n"#]);
        assert_eq!(w("\"one\\\ntwo\""), ["onetwo"]);
        assert_eq!(w(r#""it's""#), ["it's"]);
    }

    #[test]
    fn backslash_outside_quotes_takes_the_next_char() {
        assert_eq!(w(r"a\ b c\\d \'x"), ["a b", r"c\d", "'x"]);
        assert_eq!(w("one\\\ntwo three"), ["onetwo", "three"]);
        assert_eq!(w(r"\|"), ["|"]);
    }

    #[test]
    fn empty_quotes_are_an_empty_word() {
        assert_eq!(w("prog '' \"\" x"), ["prog", "", "", "x"]);
        assert_eq!(w("''"), [""]);
    }

    #[test]
    fn nothing_is_expanded() {
        assert_eq!(w("ls *.txt ~/x a?b"), ["ls", "*.txt", "~/x", "a?b"]);
        assert_eq!(w("echo '$HOME' \"${x}\""), ["echo", "$HOME", "${x}"]);
    }

    #[test]
    fn unicode_words_survive() {
        assert_eq!(w("echo 'héllo wörld' ünï"), ["echo", "héllo wörld", "ünï"]);
    }

    #[test]
    fn errors_are_precise() {
        assert_eq!(
            split_words("echo 'abc"),
            Err(ArgvError::Unterminated("single"))
        );
        assert_eq!(
            split_words("echo \"abc"),
            Err(ArgvError::Unterminated("double"))
        );
        assert_eq!(
            split_words("echo \"abc\\"),
            Err(ArgvError::Unterminated("double"))
        );
        assert_eq!(split_words("echo \\"), Err(ArgvError::TrailingBackslash));
        assert_eq!(
            split_words("server > /tmp/log"),
            Err(ArgvError::NeedsShell('>', 7))
        );
        assert_eq!(
            split_words("a | b").unwrap_err().to_string(),
            "'|' at byte 2 needs a shell, and none runs here: quote it, or write the command as [\"sh\", \"-c\", \"...\"]"
        );
        for bad in [
            "a;b",
            "a && b",
            "sleep 1 &",
            "echo $HOME",
            "echo `id`",
            "(x)",
            "a<b",
        ] {
            assert!(
                matches!(split_words(bad), Err(ArgvError::NeedsShell(..))),
                "{bad}"
            );
        }
    }

    #[test]
    fn argv_checks_program_and_nul() {
        assert_eq!(Argv::parse(""), Err(ArgvError::Empty));
        assert_eq!(Argv::parse("'' x"), Err(ArgvError::EmptyProgram));
        assert_eq!(
            Argv::from_words(vec!["a".into(), "b\0c".into()]),
            Err(ArgvError::Nul(1))
        );
        let a = Argv::parse("python3 -m http.server").unwrap();
        assert_eq!(a.program(), "python3");
        assert_eq!(a.to_cstrings().len(), 3);
    }

    #[test]
    fn display_quotes_so_that_splitting_gives_the_same_words() {
        let words = vec![
            "sh".to_string(),
            "-c".to_string(),
            "echo 'hi' $X | wc".to_string(),
            String::new(),
            "plain-arg=1".to_string(),
        ];
        let a = Argv::from_words(words.clone()).unwrap();
        let shown = a.to_string();
        assert_eq!(shown, r#"sh -c 'echo '\''hi'\'' $X | wc' '' plain-arg=1"#);
        assert_eq!(split_words(&shown).unwrap(), words);
    }

    #[test]
    fn serde_round_trip_validates() {
        let a = Argv::parse("sleep 5").unwrap();
        let j = serde_json::to_string(&a).unwrap();
        assert_eq!(j, r#"["sleep","5"]"#);
        assert_eq!(serde_json::from_str::<Argv>(&j).unwrap(), a);
        assert!(serde_json::from_str::<Argv>("[]").is_err());
    }
}
