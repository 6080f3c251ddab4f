//! Where shoal-core's unit tests get an `Instant` to start virtual time from.
//!
//! The core never reads a clock: `now` is an argument of every call, and its tests pass
//! virtual times (`epoch + Duration`). They still need one real `Instant` to start from,
//! and `std` has no other way to make one than reading the clock; that read lives here, a
//! dev-dependency of the core only, as a runtime's reads live in the runtime.

use std::time::Instant;

/// An `Instant` to count virtual time from.
pub fn epoch() -> Instant {
    Instant::now()
}
