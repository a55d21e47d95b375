use std::fmt;

use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// Linux's IFNAMSIZ is 16 including the terminating NUL.
const IFNAME_MAX: usize = 15;

fn check_chars(kind: &'static str, name: &str) -> Result<(), InvalidValue> {
    if name.is_empty() {
        return Err(InvalidValue::Empty { kind });
    }
    let bad = |what| {
        Err(InvalidValue::BadChar {
            kind,
            name: name.to_string(),
            what,
        })
    };
    if name.contains('/') {
        return bad("'/'");
    }
    if name.chars().any(char::is_whitespace) {
        return bad("whitespace");
    }
    if name.chars().any(char::is_control) {
        return bad("a control character");
    }
    if name == "." || name == ".." {
        return Err(InvalidValue::Reserved {
            kind,
            name: name.to_string(),
        });
    }
    // Names end up as words of the `ip` lines `plan` prints and of paths
    // under /run/netns: only what needs no quoting anywhere.
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        return Err(InvalidValue::BadChar {
            kind,
            name: name.to_string(),
            what: char_name(c),
        });
    }
    Ok(())
}

/// A character as the error names it.
fn char_name(c: char) -> &'static str {
    match c {
        '$' => "'$'",
        ';' => "';'",
        '`' => "'`'",
        '\'' => "a quote",
        '"' => "a quote",
        '\\' => "'\\'",
        '|' => "'|'",
        '&' => "'&'",
        '(' | ')' => "a parenthesis",
        '*' | '?' | '[' | ']' => "a wildcard character",
        '<' | '>' => "a redirection character",
        '#' => "'#'",
        '~' => "'~'",
        '!' => "'!'",
        '{' | '}' => "a brace",
        '@' => "'@'",
        '%' => "'%'",
        '=' => "'='",
        '+' => "'+'",
        ',' => "','",
        _ => "a character other than letters, digits, '-', '_' and '.'",
    }
}

/// A network interface name as the kernel accepts it (`dev_valid_name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IfName(String);

impl IfName {
    pub fn new(name: &str) -> Result<Self, InvalidValue> {
        check_chars("interface", name)?;
        if name.len() > IFNAME_MAX {
            return Err(InvalidValue::IfNameTooLong(name.to_string(), name.len()));
        }
        if name.contains(':') {
            return Err(InvalidValue::BadChar {
                kind: "interface",
                name: name.to_string(),
                what: "':'",
            });
        }
        Ok(Self(name.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A named network namespace: a file under the netns directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NsName(String);

impl NsName {
    pub fn new(name: &str) -> Result<Self, InvalidValue> {
        check_chars("namespace", name)?;
        if name.len() > 255 {
            return Err(InvalidValue::NsNameTooLong(name.to_string()));
        }
        Ok(Self(name.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for IfName {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::new(&s)
    }
}

impl From<IfName> for String {
    fn from(n: IfName) -> String {
        n.0
    }
}

impl TryFrom<String> for NsName {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::new(&s)
    }
}

impl From<NsName> for String {
    fn from(n: NsName) -> String {
        n.0
    }
}

/// Where an object lives: the namespace netplumb runs in, or a named one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NsRef {
    Host,
    Named(NsName),
}

impl NsRef {
    /// `ip` prefix for commands in this namespace, e.g. `ip -n foons `.
    pub fn ip_prefix(&self) -> String {
        match self {
            NsRef::Host => "ip".to_string(),
            NsRef::Named(n) => format!("ip -n {n}"),
        }
    }
}

impl fmt::Display for NsRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NsRef::Host => f.write_str("host"),
            NsRef::Named(n) => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifname_limits() {
        assert!(IfName::new("eth0").is_ok());
        assert!(IfName::new("a23456789012345").is_ok());
        assert_eq!(
            IfName::new("a234567890123456").unwrap_err().to_string(),
            "interface name 'a234567890123456' is 16 bytes: interface names are at most 15 bytes"
        );
        for bad in ["", "a/b", "a b", ".", "..", "a:b", "a\tb"] {
            assert!(IfName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn records_are_validated_on_load() {
        let bad: Result<NsName, _> = serde_json::from_str("\"../../tmp/x/f\"");
        assert!(bad.is_err());
        let ok: NsName = serde_json::from_str("\"foons\"").unwrap();
        assert_eq!(ok.as_str(), "foons");
        let bad: Result<IfName, _> = serde_json::from_str("\"a-very-long-interface\"");
        assert!(bad.is_err());
    }

    #[test]
    fn nsname_limits() {
        assert!(NsName::new("foons").is_ok());
        assert!(NsName::new(&"x".repeat(255)).is_ok());
        for bad in [
            "",
            "a/b",
            "a b",
            ".",
            "..",
            "x$(touch${IFS}PWNED)",
            "a;b",
            "a`b`",
            "a'b",
        ] {
            assert!(NsName::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(NsName::new(&"x".repeat(256)).is_err());
    }
}
