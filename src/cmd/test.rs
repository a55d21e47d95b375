//! `netplumb test FILE`: bring the script up, run its assertions, write
//! them as JUnit XML for CI (one testcase per assertion, a failure naming
//! its script line), and tear the topology down again unless `--keep`.

use std::fmt::Write as _;
use std::path::Path;

use miette::Report;

use crate::cli::ScriptArgs;
use crate::diag;
use crate::opts::{Opts, script_label, topology_name};
use crate::out::say;
use crate::run::Checked;

pub fn run(o: &Opts, a: &ScriptArgs, junit: Option<&Path>, keep: bool) -> Result<i32, Report> {
    let name = topology_name(&a.file, a.name.as_deref())?;
    let suite = script_label(&a.file);
    let t0 = std::time::Instant::now();
    let checked = match super::up::up(o, a, false) {
        Ok(c) => c,
        Err(report) => {
            // CI still gets a report: the run itself is the failed case.
            if let Some(out) = junit {
                let xml = xml_for(&suite, &[], Some(&report.to_string()), 0.0);
                write(out, &xml)?;
            }
            return Err(report);
        }
    };
    let failed = super::up::say_asserts(o, &checked, keep);
    if let Some(out) = junit {
        write(
            out,
            &xml_for(&suite, &checked, None, t0.elapsed().as_secs_f64()),
        )?;
    }
    if !o.quiet {
        say!(
            "{suite}: {} assertions, {} passed, {failed} failed",
            checked.len(),
            checked.len() - failed
        );
    }
    if !keep {
        super::down::run(o, None, Some(name), false, false, false)?;
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

fn write(out: &Path, xml: &str) -> Result<(), Report> {
    if out == Path::new("-") {
        crate::out::write(xml);
        return Ok(());
    }
    std::fs::write(out, xml).map_err(|e| {
        diag::plain(
            format!("cannot write the JUnit report {}: {e}", out.display()),
            None,
        )
    })
}

/// Text as XML character data or an attribute value.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' => out.push(c),
            // Not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

/// One testsuite (the script); a testcase per assertion, or one "up"
/// case carrying the error when the script did not come up.
pub fn xml_for(suite: &str, checked: &[Checked], error: Option<&str>, secs: f64) -> String {
    let tests = checked.len().max(usize::from(error.is_some()));
    let failures = checked.iter().filter(|c| !c.passed).count();
    let errors = usize::from(error.is_some());
    let skipped = checked.iter().filter(|c| c.not_run).count();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"netplumb\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{secs:.3}\">"
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{secs:.3}\">",
        esc(suite)
    );
    if let Some(e) = error {
        let _ = writeln!(
            x,
            "    <testcase classname=\"{}\" name=\"up\" time=\"0\">\n      <error message=\"the topology did not come up\">{}</error>\n    </testcase>",
            esc(suite),
            esc(e)
        );
    }
    for c in checked {
        let a = &c.assertion;
        let name = format!("{}: {}", a.pos, a.call());
        let _ = write!(
            x,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            esc(suite),
            esc(&name),
            c.seconds
        );
        if c.passed && !c.not_run {
            x.push_str("/>\n");
            continue;
        }
        x.push_str(">\n");
        if c.not_run {
            x.push_str("      <skipped message=\"not run: no kernel was asked\"/>\n");
        } else {
            let _ = writeln!(
                x,
                "      <failure message=\"{}\" type=\"{}\">{} at {}: {}</failure>",
                esc(&c.detail),
                if a.reach { "unreachable" } else { "reachable" },
                esc(&a.call()),
                a.pos,
                esc(&c.detail)
            );
        }
        x.push_str("    </testcase>\n");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}
