//! Ctrl-C while a statement runs. At the prompt rustyline keeps the terminal
//! in raw mode, so Ctrl-C arrives as a key and only clears the line; while a
//! statement runs the terminal is cooked and Ctrl-C is a SIGINT. The handler
//! only raises a flag: the engine's progress callback sees it and stops the
//! script, and the REPL rolls the statement back. Killing the process instead
//! would leave the statement half-applied.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static RUNNING: AtomicBool = AtomicBool::new(false);
static INTERACTIVE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    crate::interrupt::raise();
    if !RUNNING.load(Ordering::SeqCst) && !INTERACTIVE.load(Ordering::SeqCst) {
        // Reading statements from a pipe with none running: nothing is
        // half-done, so Ctrl-C ends the session as it would any filter.
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

pub fn install(interactive: bool) -> Result<(), nix::Error> {
    INTERACTIVE.store(interactive, Ordering::SeqCst);
    let act = SigAction::new(
        SigHandler::Handler(on_sigint),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only touches atomics and calls _exit, both
    // async-signal-safe.
    unsafe { sigaction(Signal::SIGINT, &act) }?;
    Ok(())
}

/// A statement starts: forget any earlier Ctrl-C.
pub fn begin() {
    crate::interrupt::clear();
    RUNNING.store(true, Ordering::SeqCst);
}

pub fn end() {
    RUNNING.store(false, Ordering::SeqCst);
}

/// Ctrl-C was pressed since `begin`.
pub fn interrupted() -> bool {
    crate::interrupt::raised()
}
