//! Times on the wire: RFC 3339 UTC with milliseconds.

use std::time::{Duration, UNIX_EPOCH};

use crate::resources::Time;

/// `ms` since the Unix epoch as the API writes it, e.g. `2026-11-23T20:00:00.123Z`.
pub fn rfc3339(ms: u64) -> Time {
    let at = UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_millis(at).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_rfc3339_utc_with_millis() {
        assert_eq!(
            super::rfc3339(1_795_464_000_123),
            "2026-11-23T20:00:00.123Z"
        );
    }
}
