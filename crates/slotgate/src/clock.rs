//! The server's clock: the wall clock, read as the engine's `now`.
//!
//! The engine never reads a clock; the server reads this one for every
//! command, the deadline driver and the history sampler. On PostgreSQL it
//! follows the database's clock ([`follow`]), so every server on the
//! database reads the same time whatever its own clock says.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use slotgate_core::Timestamp;

/// Milliseconds to add to this machine's clock to read the reference clock
/// (the database's; 0 with the embedded store).
static OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// Milliseconds this machine's clock is taken to be off by
/// ([`set_skew_ms`]; tests play a machine whose clock is wrong).
static SKEW_MS: AtomicI64 = AtomicI64::new(0);

/// The latest `now` given.
static LAST_MS: AtomicU64 = AtomicU64::new(0);

/// The wall clock now, as the engine counts time.
pub fn now() -> Timestamp {
    let ms = (system_ms() + OFFSET_MS.load(Ordering::Relaxed)).max(0) as u64;
    let last = LAST_MS.fetch_max(ms, Ordering::Relaxed);
    Timestamp::from_millis(ms.max(last))
}

/// This machine's wall clock, in milliseconds since the Unix epoch (plus the
/// skew set by [`set_skew_ms`]).
pub fn system_ms() -> i64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    ms + SKEW_MS.load(Ordering::Relaxed)
}

/// Reads this machine's clock as `skew_ms` off (`serve --clock-skew-ms`, a
/// hidden option for tests that play a machine whose clock is wrong).
pub fn set_skew_ms(skew_ms: i64) {
    SKEW_MS.store(skew_ms, Ordering::Relaxed);
}

/// Follows a reference clock that read `reference_ms` between `sent_ms` and
/// `received_ms` of [`system_ms`]: from now on `now` is this machine's clock
/// plus the difference at the midpoint. (A correction may step back by
/// the reading's uncertainty; between corrections `now` never goes back.)
pub fn follow(reference_ms: i64, sent_ms: i64, received_ms: i64) {
    let midpoint = sent_ms + (received_ms - sent_ms) / 2;
    OFFSET_MS.store(reference_ms - midpoint, Ordering::Relaxed);
    LAST_MS.store(0, Ordering::Relaxed);
}

/// An instant as the API writes it (RFC 3339 UTC, milliseconds).
pub fn rfc3339(t: Timestamp) -> slotgate_api::Time {
    slotgate_api::time::rfc3339(t.as_millis())
}
