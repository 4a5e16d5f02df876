//! The server's clock: the wall clock, read as the engine's `now`.
//!
//! The engine never reads a clock; the server reads this one for every
//! command, the deadline driver and the history sampler.

use std::time::{SystemTime, UNIX_EPOCH};

use slotgate_core::Timestamp;

/// The wall clock now, as the engine counts time.
pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Timestamp::from_millis(ms)
}

/// An instant as the API writes it (RFC 3339 UTC, milliseconds).
pub fn rfc3339(t: Timestamp) -> slotgate_api::Time {
    slotgate_api::time::rfc3339(t.as_millis())
}
