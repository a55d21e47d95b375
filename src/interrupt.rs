//! The user asked to stop (Ctrl-C in the REPL). A flag, not a signal
//! handler's work: whoever is waiting (the script engine's progress callback,
//! a command run by `exec`) looks at it and stops cleanly.

use std::sync::atomic::{AtomicBool, Ordering};

static RAISED: AtomicBool = AtomicBool::new(false);

/// Async-signal-safe: only an atomic store.
pub fn raise() {
    RAISED.store(true, Ordering::SeqCst);
}

pub fn clear() {
    RAISED.store(false, Ordering::SeqCst);
}

pub fn raised() -> bool {
    RAISED.load(Ordering::SeqCst)
}
