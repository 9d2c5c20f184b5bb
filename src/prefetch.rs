//! Cache prefetch hints for the hot path, where each event lands on a random entry of a
//! table much larger than the caches (a log in time order: consecutive events belong to
//! different subscribers). Asking for an entry's cache lines a few rows before they are
//! needed lets the processor fetch many at once instead of waiting on one at a time.

/// Bytes per cache line on the processors this runs on.
const LINE: usize = 64;

/// Asks the processor to bring every cache line of `value` into its caches, without
/// waiting for them. A hint only: nothing is read and nothing can fault; on processors
/// other than x86_64 it does nothing.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    let start = value as *const T as usize;
    let mut line = start & !(LINE - 1);
    while line < start + std::mem::size_of::<T>().max(1) {
        hint(line);
        line += LINE;
    }
}

#[inline(always)]
fn hint(address: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` only hints the cache: it does not dereference its pointer
    // (an address within, or at the line start of, a live reference) and cannot fault;
    // it needs only SSE, which every x86_64 processor has.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(address as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}
