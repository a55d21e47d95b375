//! The validated names of a lab's records: a daemon's name, its ready
//! condition, a per-namespace file's path. Read back through these types,
//! a planted or damaged record is refused on load.

use serde::{Deserialize, Serialize};

/// A daemon's name: what its cgroup and log are called (letters, digits,
/// `-_.@`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DaemonName(String);

impl DaemonName {
    pub fn new(name: &str) -> Result<Self, String> {
        if crate::proc::cgroup::valid_name(name) {
            Ok(Self(name.to_string()))
        } else {
            Err(format!("'{name}' is not a daemon name"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DaemonName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::new(&s)
    }
}

impl From<DaemonName> for String {
    fn from(n: DaemonName) -> String {
        n.0
    }
}

/// A per-namespace file's path as a script names it: /etc/NAME.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EtcPath(String);

impl EtcPath {
    pub fn new(path: &str) -> Result<Self, String> {
        crate::proc::EtcFile::new("ns", path)
            .map(|_| Self(path.to_string()))
            .map_err(|e| e.to_string())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EtcPath {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::new(&s)
    }
}

impl From<EtcPath> for String {
    fn from(p: EtcPath) -> String {
        p.0
    }
}

/// A ready condition as `crate::proc::Ready` parses it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReadyText(String);

impl ReadyText {
    pub fn new(text: &str) -> Result<Self, String> {
        text.parse::<crate::proc::Ready>()
            .map(|_| Self(text.to_string()))
            .map_err(|e| e.to_string())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ReadyText {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::new(&s)
    }
}

impl From<ReadyText> for String {
    fn from(r: ReadyText) -> String {
        r.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Entry;

    #[test]
    fn daemon_records_are_validated_on_load() {
        let good = r#"{"type":"daemon","ns":{"Named":"app"},"name":"web","spec":{"name":"web","argv":["sleep","1"],"env":[],"cwd":null,"log":"/run/x.log"},"ready":"tcp:80","identity":{"pid":4242,"start_time":7,"boot_id":"a64b2fe9-4911-4df1-81a4-b844478b048a"}}"#;
        let e: Entry = serde_json::from_str(good).unwrap();
        assert!(matches!(e, Entry::Daemon { .. }));
        for (from, to) in [
            ("\"pid\":4242", "\"pid\":1"),
            ("\"pid\":4242", "\"pid\":-1"),
            ("\"name\":\"web\",\"spec", "\"name\":\"../x\",\"spec"),
            ("tcp:80", "tcp:0"),
            ("[\"sleep\",\"1\"]", "[]"),
            ("a64b2fe9", "not-hex!"),
        ] {
            let bad = good.replacen(from, to, 1);
            assert_ne!(bad, good);
            assert!(serde_json::from_str::<Entry>(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_records_stay_directly_in_etc() {
        assert!(EtcPath::new("/etc/hosts").is_ok());
        for p in [
            "/etc/ssh/sshd_config",
            "/etc/../shadow",
            "/tmp/x",
            "/etc/netns",
            "/etc/",
        ] {
            assert!(EtcPath::new(p).is_err(), "{p}");
        }
        let bad = r#"{"type":"file","ns":"app","path":"/etc/a/b"}"#;
        assert!(serde_json::from_str::<Entry>(bad).is_err());
    }
}
