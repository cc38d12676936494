//! The pipeline's execution log while it runs: `(action, details, milliseconds)` per step.

use std::time::Instant;

/// The steps logged so far, in order: action, details, duration in milliseconds.
pub(crate) type Steps = Vec<(String, String, u64)>;

/// Milliseconds since `t`.
pub(crate) fn ms(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}
