//! `up` in the order things happened: a script's `print()` comes after the
//! change lines of what was applied before it ran. The kernel is changed
//! in flushes (before an `exec()`/`ping()` and at the end), so at each
//! print the runner's applied steps not yet reported are written first,
//! as one batch (compressed by kind when long), then the printed line;
//! the rest of the changes and the counts line come at the end.
//!
//! With `--json` stdout carries one document: prints go to stderr and are
//! recorded with how many changes preceded them.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::run::Runner;
use crate::script::Session;

use super::{Change, changes, lines};

/// A line the script printed, and how many of the run's changes had been
/// applied when it did.
#[derive(Debug, Clone, Serialize)]
pub struct Printed {
    pub text: String,
    pub after: usize,
}

#[derive(Debug, Default)]
struct State {
    json: bool,
    quiet: bool,
    verbose: bool,
    /// How many of the runner's applied steps are on stdout already.
    reported: usize,
    printed: Vec<Printed>,
}

impl State {
    fn print(&mut self, r: Option<&Runner>, text: &str) {
        let done = r.map_or(self.reported, |r| r.done.len());
        if self.json {
            self.printed.push(Printed {
                text: text.to_string(),
                after: done,
            });
            eprintln!("{text}");
            return;
        }
        if let Some(r) = r {
            self.reported = self.reported.min(done);
            if !self.quiet && done > self.reported {
                let now = r.intent();
                let batch = changes(r, &r.done[self.reported..], &now, Change::brief);
                crate::out::write(&lines(&batch, self.verbose));
            }
            self.reported = done;
        }
        crate::out::write(&format!("{text}\n"));
    }
}

/// Rhai's `debug()` writes to stdout by default, into a plan or a JSON
/// document: it is chatter, so it goes to stderr, with where it came from.
pub fn debug_to_stderr(engine: &mut rhai::Engine) {
    engine.on_debug(|text, source, pos| match (source, pos.line()) {
        (Some(src), Some(line)) => eprintln!("{src}:{line}: {text}"),
        (None, Some(line)) => eprintln!("line {line}: {text}"),
        _ => eprintln!("{text}"),
    });
}

/// The print hook's shared state; see the module comment.
#[derive(Clone, Default)]
pub struct Stream {
    state: Arc<Mutex<State>>,
}

impl Stream {
    /// Route the session's `print()` through the stream.
    pub fn install(session: &mut Session, json: bool, quiet: bool, verbose: bool) -> Self {
        let stream = Stream::default();
        {
            let mut st = stream.lock();
            st.json = json;
            st.quiet = quiet;
            st.verbose = verbose;
        }
        debug_to_stderr(&mut session.engine);
        let st = stream.clone();
        let runner = session.runner.clone();
        session.engine.on_print(move |text| {
            // A print from inside a call that holds the runner (none does
            // today) still prints, just without flushing change lines.
            match runner.try_lock() {
                Ok(r) => st.lock().print(Some(&r), text),
                Err(_) => st.lock().print(None, text),
            }
        });
        stream
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many changes are on stdout already.
    pub fn reported(&self) -> usize {
        self.lock().reported
    }

    /// The change lines not printed yet (`all`: every change of the run).
    pub fn rest(&self, all: &[Change]) -> String {
        let st = self.lock();
        let from = st.reported.min(all.len());
        lines(&all[from..], st.verbose)
    }

    /// What the script printed, in order (recorded with `--json` only).
    pub fn printed(&self) -> Vec<Printed> {
        self.lock().printed.clone()
    }
}
