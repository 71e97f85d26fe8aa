//! A count of the steps fedgate takes over input-sized collections while it
//! parses, scans and canonicalizes a document (issue 15): every walk up a
//! chain of namespace bindings, every prefix an element considers for
//! rendering, every ID or attribute name checked for a repeat, every node
//! visited. It is what `it::hostile` asserts instead of wall time: for a
//! hostile shape of size n and 2n the steps must grow about twofold, never
//! fourfold. Thread-local (a `Cell`, no atomics), so parallel tests do not
//! see each other's work, and always on: one add per loop, not per byte.

use std::cell::Cell;

thread_local! {
    static STEPS: Cell<u64> = const { Cell::new(0) };
}

/// Count `n` steps on this thread.
#[inline]
pub(crate) fn add(n: usize) {
    STEPS.with(|s| s.set(s.get().wrapping_add(n as u64)));
}

/// The steps counted on this thread so far.
pub fn steps() -> u64 {
    STEPS.with(Cell::get)
}

/// Run `f` and return what it returned with the steps it took on this thread.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = steps();
    let out = f();
    (out, steps().wrapping_sub(before))
}
