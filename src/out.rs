//! Writing to stdout without dying of a closed pipe: `netplumb plan x |
//! head -1` must end quietly with status 0, and an `up` whose reader went
//! away must still finish (and roll back or commit) what it started.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Write `s` to stdout; once the reader is gone, write nothing more.
pub fn write(s: &str) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(s.as_bytes()).and_then(|_| out.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// `println!` for data on stdout, quiet on a closed pipe.
macro_rules! say {
    () => { $crate::out::write("\n") };
    ($($arg:tt)*) => { $crate::out::write(&format!("{}\n", format_args!($($arg)*))) };
}
pub(crate) use say;
