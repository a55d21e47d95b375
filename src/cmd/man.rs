//! `netplumb man`: manual pages made from the same clap definitions as
//! `--help`, so they cannot fall behind it. One page for netplumb, one per
//! command (`netplumb-up.1`, `netplumb-sandbox-start.1`, …); each command's
//! `after_help` examples become its EXAMPLES section.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use miette::Report;

use crate::cli::Cli;
use crate::diag;
use crate::opts::Opts;

/// A line of text as roff reads it back: a backslash is `\e`, a minus
/// stays a minus (`\-`, so a copied command still works), and a leading
/// `.` or `'` is not taken for a request.
fn roff_line(l: &str) -> String {
    let mut s = String::with_capacity(l.len() + 8);
    if l.starts_with(['.', '\'']) {
        s.push_str("\\&");
    }
    for c in l.chars() {
        match c {
            '\\' => s.push_str("\\e"),
            '-' => s.push_str("\\-"),
            _ => s.push(c),
        }
    }
    s
}

/// The examples (and notes after them) of a command's `after_help`.
fn examples(cmd: &clap::Command) -> Option<String> {
    let text = cmd.get_after_help()?.to_string();
    let body = text.strip_prefix("Examples:").unwrap_or(&text);
    let mut out = String::from(".SH EXAMPLES\n.nf\n");
    for l in body.trim_matches('\n').lines() {
        out.push_str(&roff_line(l));
        out.push('\n');
    }
    out.push_str(".fi\n");
    Some(out)
}

/// One page: clap_mangen's sections, the examples, and SEE ALSO.
fn page(cmd: &clap::Command, see_also: &[String]) -> std::io::Result<Vec<u8>> {
    // The examples are rendered here as EXAMPLES, not as clap_mangen's EXTRA.
    let plain = cmd.clone().after_help(None::<&str>);
    let man =
        clap_mangen::Man::new(plain).source(format!("netplumb {}", env!("CARGO_PKG_VERSION")));
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut buf)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut buf)?;
    }
    if let Some(ex) = examples(cmd) {
        buf.write_all(ex.as_bytes())?;
    }
    if !see_also.is_empty() {
        let refs: Vec<String> = see_also.iter().map(|p| format!("\\fB{p}\\fR(1)")).collect();
        writeln!(buf, ".SH \"SEE ALSO\"\n{}", refs.join(", "))?;
    }
    if cmd.get_version().is_some() {
        man.render_version_section(&mut buf)?;
    }
    Ok(buf)
}

/// Every page, by file stem: netplumb, then each visible command, depth first.
fn pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let mut all = Vec::new();
    collect(&root, "netplumb", None, &mut all)?;
    Ok(all)
}

fn collect(
    cmd: &clap::Command,
    stem: &str,
    parent: Option<&str>,
    all: &mut Vec<(String, Vec<u8>)>,
) -> std::io::Result<()> {
    let subs: Vec<&clap::Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    // Commands below are in SUBCOMMANDS already; point up the tree.
    let mut see: Vec<String> = parent.into_iter().map(str::to_string).collect();
    if parent.is_some_and(|p| p != "netplumb") {
        see.push("netplumb".to_string());
    }
    // clap_mangen titles a page by the command's display name.
    let named = cmd.clone().display_name(stem.to_string());
    all.push((stem.to_string(), page(&named, &see)?));
    for s in subs {
        collect(s, &format!("{stem}-{}", s.get_name()), Some(stem), all)?;
    }
    Ok(())
}

fn io_err(what: &Path, e: std::io::Error) -> Report {
    diag::plain(format!("cannot write {}: {e}", what.display()), None)
}

pub fn run(o: &Opts, dir: Option<&Path>) -> Result<i32, Report> {
    let all = pages().map_err(|e| io_err(Path::new("the pages"), e))?;
    let Some(dir) = dir else {
        if let Some((_, top)) = all.first() {
            crate::out::write(&String::from_utf8_lossy(top));
        }
        return Ok(0);
    };
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let mut written: Vec<PathBuf> = Vec::new();
    for (stem, body) in &all {
        let path = dir.join(format!("{stem}.1"));
        std::fs::write(&path, body).map_err(|e| io_err(&path, e))?;
        written.push(path);
    }
    if !o.quiet {
        eprintln!(
            "netplumb: wrote {} manual pages to {} (netplumb.1 and one per command)",
            written.len(),
            dir.display()
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_per_visible_command_with_its_examples() {
        let all = pages().unwrap();
        let stems: Vec<&str> = all.iter().map(|(s, _)| s.as_str()).collect();
        for want in [
            "netplumb",
            "netplumb-up",
            "netplumb-down",
            "netplumb-sandbox-start",
        ] {
            assert!(stems.contains(&want), "{stems:?}");
        }
        assert!(
            !stems
                .iter()
                .any(|s| s.ends_with("-hold") || s.ends_with("-help"))
        );
        let down = String::from_utf8(
            all.iter()
                .find(|(s, _)| s == "netplumb-down")
                .unwrap()
                .1
                .clone(),
        )
        .unwrap();
        assert!(down.contains("\n.TH netplumb-down 1 "), "{down}");
        assert!(
            down.contains(".SH EXAMPLES\n.nf\n  netplumb down lab.rhai"),
            "{down}"
        );
        assert!(down.contains("\n  netplumb down \\-\\-name lab "), "{down}");
        assert!(down.contains("\\fBnetplumb\\fR(1)"), "{down}");
    }

    #[test]
    fn roff_escapes() {
        assert_eq!(roff_line(".x -a \\n"), "\\&.x \\-a \\en");
    }
}
