//! How much memory a script may make netplumb use.
//!
//! Rhai's own size limits (`set_max_string_size`, `set_max_array_size`,
//! `set_max_map_size`) cannot be used: once any of them is set, every
//! native call on a variable (`a.push(x)`, `a.len()`) and every assignment
//! into one re-measures the whole value, element by element, so filling an
//! array is quadratic (100,000 `push`es of integers take 5.7 s instead of
//! 0.1 s; 20,000 mappings 4 s instead of 0.03 s).
//!
//! Instead every allocation of the process is counted (a global allocator
//! around the system one: an atomic add per allocation), and the script
//! is stopped at its next operation once the heap has grown by more than
//! the budget since the session started ([`Budget::check`], run from
//! Rhai's progress callback): the error carries the line of that
//! operation. Within one operation a value can at most about double (`s +=
//! s`, `a += a`), so a doubling string or array stops at about three times
//! the budget. A single request so large that the heap would grow past
//! [`CEILING_FACTOR`] budgets (`"".pad(1 << 40, " ")`) cannot be stopped
//! with a line, and failing the allocation would abort the process: it ends
//! netplumb with a message and exit status 1 instead ([`refuse`]).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use rhai::Dynamic;

/// `--max-memory`'s default in MiB. Measured: 100,000 `dnat` mappings
/// declared take 20–40 MiB; an array of 100,000 mapping maps 40–60 MiB;
/// both, with a copy of the array and one more passed to `pm::apply`, about
/// 190 MiB. A doubling string stops with the process at about 400 MiB.
pub const DEFAULT_MAX_MEMORY_MIB: u64 = 256;

/// Past this many budgets of growth a single allocation ends the process.
pub const CEILING_FACTOR: usize = 4;

const MIB: usize = 1 << 20;

/// Bytes the process has allocated and not freed.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Live bytes no allocation may reach (`usize::MAX`: no limit).
static CEILING: AtomicUsize = AtomicUsize::new(usize::MAX);
/// The budget in MiB, for the message of [`refuse`].
static BUDGET_MIB: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counted.
pub struct Counting;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Refuse a request that would take the heap past the ceiling.
#[inline]
fn admit(size: usize) {
    let live = LIVE.load(Relaxed);
    if live.saturating_add(size) > CEILING.load(Relaxed) {
        refuse(size);
    }
}

/// End the process: the request cannot be failed without an abort. Nothing
/// here allocates (this runs inside the allocator).
#[cold]
fn refuse(size: usize) -> ! {
    let mut buf = [0u8; 256];
    let mut n = 0;
    let mut put = |b: &[u8]| {
        let k = b.len().min(buf.len() - n);
        buf[n..n + k].copy_from_slice(&b[..k]);
        n += k;
    };
    put(b"Error: the script asked for ");
    put(decimal(size.div_ceil(MIB) as u64).as_bytes());
    put(b" MiB of memory at once: stopped\n  help: its data may grow by ");
    put(decimal(BUDGET_MIB.load(Relaxed) as u64).as_bytes());
    put(b" MiB (raise --max-memory MIB if this is intended)\n");
    // SAFETY: writes `n` initialised bytes of `buf` to stderr, then ends the
    // process without running anything else (no destructor, no allocation).
    unsafe {
        libc::write(2, buf.as_ptr().cast(), n);
        libc::_exit(1)
    }
}

/// `n` in decimal, without allocating.
fn decimal(mut n: u64) -> Decimal {
    let mut d = Decimal([0; 20], 20);
    loop {
        d.1 -= 1;
        d.0[d.1] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return d;
        }
    }
}

/// `n` in decimal with its sign, without allocating (also what a script's
/// `to_string` of a number writes).
pub(super) fn signed_decimal(n: i64) -> Decimal {
    let mut d = decimal(n.unsigned_abs());
    // |i64::MIN| has 19 digits: the buffer keeps a place for the sign
    if n < 0 {
        d.1 -= 1;
        d.0[d.1] = b'-';
    }
    d
}

pub(super) struct Decimal([u8; 20], usize);

impl Decimal {
    fn as_bytes(&self) -> &[u8] {
        &self.0[self.1..]
    }

    pub(super) fn as_str(&self) -> &str {
        // only ASCII digits and '-' are ever written
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator, which
// meets GlobalAlloc's contract; the counting around it only reads and
// updates atomics (and `refuse` never returns).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        admit(layout.size());
        // SAFETY: the caller's layout, as GlobalAlloc::alloc requires.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        admit(layout.size());
        // SAFETY: as for alloc.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (so from System) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old {
            admit(new_size - old);
        }
        // SAFETY: `ptr` came from System with `layout`; the caller meets the
        // rest of realloc's contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size > old {
                LIVE.fetch_add(new_size - old, Relaxed);
            } else {
                LIVE.fetch_sub(old - new_size, Relaxed);
            }
        }
        p
    }
}

/// Bytes allocated and not yet freed, by the whole process.
pub fn live_bytes() -> usize {
    LIVE.load(Relaxed)
}

/// The token of the error that stops a script over its budget
/// (`EvalAltResult::ErrorTerminated`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    pub mib: u64,
}

/// A session's memory budget: the heap may grow this much past what it
/// was when the budget was set.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    base: usize,
    max: usize,
    mib: u64,
}

impl Budget {
    /// `mib` MiB of growth from now (0: no limit). Also sets the process's
    /// ceiling for single allocations (see the module doc): the last budget
    /// made is the one in force.
    pub fn new(mib: u64) -> Self {
        let base = live_bytes();
        let max = usize::try_from(mib)
            .ok()
            .and_then(|m| m.checked_mul(MIB))
            .filter(|_| mib > 0)
            .unwrap_or(usize::MAX);
        let ceiling = max
            .checked_mul(CEILING_FACTOR)
            .and_then(|c| c.checked_add(base))
            .unwrap_or(usize::MAX);
        CEILING.store(ceiling, Relaxed);
        BUDGET_MIB.store(usize::try_from(mib).unwrap_or(usize::MAX), Relaxed);
        Self { base, max, mib }
    }

    /// For Rhai's progress callback: the token that stops the script, once
    /// the heap has outgrown the budget.
    pub fn check(&self) -> Option<Dynamic> {
        (live_bytes().saturating_sub(self.base) > self.max)
            .then(|| Dynamic::from(OverBudget { mib: self.mib }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_digits() {
        assert_eq!(decimal(0).as_bytes(), b"0");
        assert_eq!(decimal(256).as_bytes(), b"256");
        assert_eq!(
            decimal(u64::MAX).as_bytes(),
            u64::MAX.to_string().as_bytes()
        );
        for n in [0, 7, -7, 10, -10, i64::MAX, i64::MIN, -1] {
            assert_eq!(signed_decimal(n).as_str(), n.to_string());
        }
    }

    #[test]
    fn the_heap_is_counted() {
        let v = vec![1u8; 64 * MIB];
        assert!(live_bytes() >= 64 * MIB);
        assert_eq!(v[64 * MIB - 1], 1);
    }
}
