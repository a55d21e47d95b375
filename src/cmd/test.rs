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
    // `--junit -`: stdout is the report's; the change lines are left out.
    let to_stdout = junit == Some(Path::new("-"));
    let up_opts = Opts {
        quiet: o.quiet || to_stdout,
        ..o.clone()
    };
    let checked = match super::up::up(&up_opts, a, false) {
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
    let mut failed = super::up::say_asserts(o, &checked, keep);
    let mut cases: Vec<Case> = checked.iter().map(Case::of).collect();
    if let Some(c) = ping_all_case(&name) {
        if let Some((msg, text)) = &c.failure {
            failed += 1;
            eprintln!("netplumb: ping-all: {msg}:\n{text}");
        }
        cases.push(c);
    }
    if let Some(out) = junit {
        let xml = xml_for(&suite, &cases, None, t0.elapsed().as_secs_f64());
        write(out, &xml)?;
    }
    if !o.quiet {
        let line = format!(
            "{suite}: {} checks, {} passed, {failed} failed",
            cases.len(),
            cases.len() - failed
        );
        if to_stdout {
            eprintln!("{line}");
        } else {
            say!("{line}");
        }
    }
    if !keep {
        super::down::run(&up_opts, None, Some(name), false, false, false, None)?;
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

/// One JUnit testcase.
pub struct Case {
    pub name: String,
    /// (message, text) of a failure.
    pub failure: Option<(String, String)>,
    pub skipped: bool,
    pub seconds: f64,
}

impl Case {
    fn of(c: &Checked) -> Self {
        let a = &c.assertion;
        Case {
            name: format!("{}: {}", a.pos, a.call()),
            failure: (!c.passed).then(|| {
                (
                    c.detail.clone(),
                    format!("{} at {}: {}", a.call(), a.pos, c.detail),
                )
            }),
            skipped: c.not_run,
            seconds: c.seconds,
        }
    }
}

/// ping-all's expectations as one case: every pair that should reach does.
fn ping_all_case(topology: &str) -> Option<Case> {
    let t0 = std::time::Instant::now();
    let mut k = crate::apply::LinuxKernel::new().ok()?;
    let views = crate::show::views(&mut k, Some(topology)).ok()?;
    let mut failed = Vec::new();
    for v in &views {
        let m = crate::show::pingall::run(&mut k, v);
        for (from, to) in m.failures() {
            failed.push(format!(
                "{from} cannot reach {} ({}:{})",
                to.addr, to.ns, to.dev
            ));
        }
    }
    Some(Case {
        name: "ping-all: every pair that should reach does".into(),
        failure: (!failed.is_empty()).then(|| {
            (
                format!("{} pairs do not reach", failed.len()),
                failed.join("\n"),
            )
        }),
        skipped: false,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// One testsuite (the script), a testcase each; or one "up" case carrying
/// the error when the script did not come up.
pub fn xml_for(suite: &str, cases: &[Case], error: Option<&str>, secs: f64) -> String {
    let tests = cases.len() + usize::from(error.is_some());
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let errors = usize::from(error.is_some());
    let skipped = cases.iter().filter(|c| c.skipped).count();
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
    for c in cases {
        let _ = write!(
            x,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            esc(suite),
            esc(&c.name),
            c.seconds
        );
        if c.failure.is_none() && !c.skipped {
            x.push_str("/>\n");
            continue;
        }
        x.push_str(">\n");
        if c.skipped {
            x.push_str("      <skipped message=\"not run: no kernel was asked\"/>\n");
        } else if let Some((msg, text)) = &c.failure {
            let _ = writeln!(
                x,
                "      <failure message=\"{}\">{}</failure>",
                esc(msg),
                esc(text)
            );
        }
        x.push_str("    </testcase>\n");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}
