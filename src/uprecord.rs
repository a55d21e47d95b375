//! How a topology was last brought up: the script, its `--set` values and
//! what it asked for (its intent keys). `check NAME` runs the same script
//! again; the next `up` tells edits from repairs by the intent.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ledger;
use crate::plan::Intent;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpRecord {
    pub script: PathBuf,
    pub set: Vec<(String, String)>,
    /// The topology name when `--name` gave one (not the file stem).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub intent: Intent,
    /// `--site NAME`: the site whose part this machine holds (issue 19).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

fn path(name: &str) -> PathBuf {
    ledger::state_dir().join(format!("{name}.up.json"))
}

impl UpRecord {
    pub fn new(
        script: &Path,
        set: &[(String, String)],
        name: Option<&str>,
        intent: Intent,
    ) -> Self {
        Self {
            script: script
                .canonicalize()
                .unwrap_or_else(|_| script.to_path_buf()),
            set: set.to_vec(),
            name: name.map(str::to_string),
            intent,
            site: None,
        }
    }

    pub fn load(name: &str) -> Option<Self> {
        ledger::check_topology_name(name).ok()?;
        // Not through a symlink planted in its place.
        let mut text = String::new();
        std::io::Read::read_to_string(&mut ledger::open_read(&path(name)).ok()?, &mut text).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Best effort: without it, `check NAME` says it cannot tell, and the
    /// next `up` counts every change as an edit.
    pub fn save(&self, name: &str) {
        if let Ok(text) = serde_json::to_vec(self) {
            let _ = ledger::write_atomic(&path(name), &text);
        }
    }

    pub fn forget(name: &str) {
        let _ = std::fs::remove_file(path(name));
    }

    /// The command that brings the topology up again as it was, quoted
    /// for a shell.
    pub fn up_command(&self, name: &str) -> String {
        let mut words = vec!["netplumb".to_string(), "up".to_string()];
        words.push(self.script.display().to_string());
        for (k, v) in &self.set {
            words.push("--set".into());
            words.push(format!("{k}={v}"));
        }
        let stem = self.script.file_stem().and_then(|s| s.to_str());
        if self.name.is_some() || stem != Some(name) {
            words.push("--name".into());
            words.push(name.to_string());
        }
        if let Some(s) = &self.site {
            words.push("--site".into());
            words.push(s.clone());
        }
        words
            .iter()
            .map(|w| crate::plan::shell_quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    }
}
