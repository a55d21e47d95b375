//! What every command needs before it starts: the global options, the root
//! check, the topology's name and the script's text and directory.

use std::path::{Path, PathBuf};

use miette::Report;

use crate::diag;
use crate::ledger;

#[derive(Debug, Clone, Default)]
pub struct Opts {
    pub verbose: bool,
    pub quiet: bool,
    pub sandbox: bool,
    pub json: bool,
}

pub fn require_root(o: &Opts) -> Result<(), Report> {
    if !o.sandbox && !nix::unistd::geteuid().is_root() {
        return Err(diag::plain(
            "needs root: this command changes the kernel's network configuration",
            Some("run as root or add --sandbox"),
        ));
    }
    Ok(())
}

/// A topology's name: `--name`, else the script's file stem.
pub fn topology_name(file: &Path, name: Option<&str>) -> Result<String, Report> {
    let n = match name {
        Some(n) => n.to_string(),
        None => file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("topology")
            .to_string(),
    };
    ledger::check_topology_name(&n)
        .map_err(|e| diag::plain(e.to_string(), Some("use --name to choose one")))?;
    Ok(n)
}

pub fn read_script(file: &Path) -> Result<String, Report> {
    std::fs::read_to_string(file).map_err(|e| {
        diag::plain(
            format!("cannot read script {}: {e}", file.display()),
            Some("check the path; scripts end in .rhai"),
        )
    })
}

pub fn script_dir(file: &Path) -> Option<PathBuf> {
    file.parent().map(|p| {
        if p.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            p.to_path_buf()
        }
    })
}

/// The script's file name, as other topologies' errors name it.
pub fn script_label(file: &Path) -> String {
    file.file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("the script")
        .to_string()
}
