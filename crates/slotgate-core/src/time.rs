//! Time as the engine sees it: a number the caller passes in.
//!
//! The engine never reads a clock. Every command takes `now`, and the engine
//! tells its driver when it next needs to be woken ([`crate::Engine::poll_timeout`]).
//! Tests drive it with made-up instants; the server passes wall-clock time.

use std::fmt;
use std::num::NonZeroU64;
use std::ops::Add;
use std::time::Duration;

/// An instant, in milliseconds since the Unix epoch (UTC).
///
/// Stored as `ms + 1` in a `NonZeroU64`, so that `Option<Timestamp>` takes 8
/// bytes, not 16: views and calls carry several.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(NonZeroU64);

impl Default for Timestamp {
    fn default() -> Self {
        Timestamp::from_millis(0)
    }
}

impl Timestamp {
    /// A deadline that never comes.
    pub const NEVER: Timestamp = Timestamp(NonZeroU64::MAX);

    /// The instant `ms` milliseconds after the Unix epoch.
    pub const fn from_millis(ms: u64) -> Self {
        match NonZeroU64::new(ms.saturating_add(1)) {
            Some(n) => Timestamp(n),
            None => Timestamp::NEVER,
        }
    }

    /// `None` for [`Timestamp::NEVER`], else the instant.
    pub(crate) fn finite(self) -> Option<Timestamp> {
        (self != Self::NEVER).then_some(self)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0.get() - 1
    }

    /// This instant plus `ms` milliseconds, saturating.
    pub(crate) const fn add_millis(self, ms: u64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`, 0 if `earlier` is later.
    pub const fn millis_since(self, earlier: Timestamp) -> u64 {
        self.0.get().saturating_sub(earlier.0.get())
    }
}

/// This instant plus `d`, saturating at the end of time.
impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        self.add_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}ms", self.as_millis())
    }
}
