//! A hint to the processor: start loading some memory into the cache now, because it will
//! be read soon.
//!
//! The simulator's events touch state scattered over hundreds of megabytes (a link, an
//! engine's peer slot); reading the next event's state while the current one runs hides
//! part of each miss. A plain read would do it only when nothing waits on it: a load that
//! misses holds back the instructions after it once the processor's window is full, a
//! prefetch does not.

/// Asks for the cache lines of `value` (at most four) to be loaded. No effect on the
/// program's results, only on its speed; a no-op off x86-64.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start: *const u8 = (value as *const T).cast();
        let lines = std::mem::size_of::<T>().div_ceil(64).clamp(1, 4);
        for line in 0..lines {
            // SAFETY: a prefetch never faults, even at an address the program could not
            // read, and changes no state the program can see. SSE is part of the x86-64
            // baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.cast::<i8>().wrapping_add(line * 64)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
