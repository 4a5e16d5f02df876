//! The API's number and id ranges, as named constants, and the one check of
//! each field against them. Handlers, the engine and clients use these; no
//! range is written anywhere else.

use std::time::Duration;

use crate::error::{FieldError, Result};

/// The highest org limit (0 to 1,000,000).
pub const MAX_LIMIT: u32 = 1_000_000;
/// The shortest lease a call may ask for.
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(5);
/// The longest lease a call may ask for.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(3600);
/// The lease a call gets when it does not ask.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(60);
/// The longest a queued call may ask to wait (`max_wait_s`): a week.
pub const MAX_MAX_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);
/// The highest rate limit of a key, in requests per second.
pub const MAX_RATE_PER_S: u32 = 1_000_000;

/// A key's own rate limit, if given: 1 to [`MAX_RATE_PER_S`].
pub fn rate_per_s(v: Option<u32>) -> Result<()> {
    match v {
        Some(r) if r == 0 || r > MAX_RATE_PER_S => Err(FieldError::new(
            "rate_per_s",
            format!("must be 1 to {MAX_RATE_PER_S} requests per second, got {r}"),
        )),
        _ => Ok(()),
    }
}

/// The longest one request may block (`wait_s` of acquire, get and events).
pub const MAX_REQUEST_WAIT: Duration = Duration::from_secs(60);
/// A list's page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: usize = 1000;
/// The largest page size.
pub const MAX_PAGE_SIZE: usize = 10_000;
/// The longest window of observed traffic (`window`).
pub const MAX_TRAFFIC_WINDOW: Duration = Duration::from_secs(400 * 24 * 3600);
/// The observed traffic's window when none is asked for: a week.
pub const DEFAULT_TRAFFIC_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest id (org, agent, call, key name).
pub const MAX_ID_LEN: usize = 128;

/// Checks an id (org, agent, call, key name): 1 to 128 characters of
/// `A-Z a-z 0-9 . _ : -`.
pub fn check_id(field: &'static str, s: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
    if s.is_empty() || s.len() > MAX_ID_LEN {
        let got = s.chars().count();
        return Err(FieldError::new(
            field,
            format!("must be 1 to {MAX_ID_LEN} characters, got {got}"),
        ));
    }
    match s.chars().find(|&c| !allowed(c)) {
        Some(bad) => Err(FieldError::new(
            field,
            format!("may only hold A-Z a-z 0-9 . _ : - (found {bad:?})"),
        )),
        None => Ok(()),
    }
}

/// A window of observed traffic (`window`): a whole number of
/// milliseconds, seconds, minutes, hours or days, at least 1 (`90s`, `12h`,
/// `7d`). The document declares this pattern, so any window it calls valid
/// is one the server takes.
pub const WINDOW_PATTERN: &str = r"^[1-9][0-9]{0,9}(ms|s|m|h|d)$";

/// A window of observed traffic (`window`, [`WINDOW_PATTERN`]); a week when
/// none is given. One longer than 400 days is 400 days, the longest kept
/// (as a window is never longer than the org's recorded past).
pub fn traffic_window(v: Option<&str>) -> Result<Duration> {
    let Some(v) = v else {
        return Ok(DEFAULT_TRAFFIC_WINDOW);
    };
    let refused = || {
        FieldError::new(
            "window",
            format!("must be a whole number of ms, s, m, h or d such as 7d, 12h or 90s, got {v:?}"),
        )
    };
    let digits_end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(digits_end);
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(refused()),
    };
    if digits.is_empty() || digits.len() > 10 || digits.starts_with('0') {
        return Err(refused());
    }
    let n: u64 = digits.parse().map_err(|_| refused())?;
    Ok(Duration::from_millis(n.saturating_mul(unit_ms)).min(MAX_TRAFFIC_WINDOW))
}

/// Checks a number of seconds against `min..=max` and makes it a duration.
pub fn seconds(field: &'static str, v: f64, min: Duration, max: Duration) -> Result<Duration> {
    let (lo, hi) = (min.as_secs_f64(), max.as_secs_f64());
    if !v.is_finite() || v < lo || v > hi {
        return Err(FieldError::new(
            field,
            format!("must be {lo} to {hi} seconds, got {v}"),
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

/// A lease length in seconds (`lease_ttl_s`): 5 to 3600.
pub fn lease_ttl(v: f64) -> Result<Duration> {
    seconds("lease_ttl_s", v, MIN_LEASE_TTL, MAX_LEASE_TTL)
}

/// The shortest `max_wait` the engine keeps: a millisecond, its resolution.
pub const MIN_MAX_WAIT: Duration = Duration::from_millis(1);

/// The longest a call may stay queued (`max_wait_s`): more than 0, at most a
/// week. A wait shorter than a millisecond (down to `5e-324`) is a
/// millisecond: the engine counts in milliseconds, and "more than 0" is all
/// the document promises.
pub fn max_wait(v: f64) -> Result<Duration> {
    if v <= 0.0 {
        return Err(FieldError::new(
            "max_wait_s",
            format!("must be more than 0 seconds, got {v}"),
        ));
    }
    seconds("max_wait_s", v, Duration::ZERO, MAX_MAX_WAIT).map(|w| w.max(MIN_MAX_WAIT))
}

/// How long a request may block (`wait_s`): 0 to 60.
pub fn request_wait(v: f64) -> Result<Duration> {
    seconds("wait_s", v, Duration::ZERO, MAX_REQUEST_WAIT)
}

/// An org limit: 0 to 1,000,000.
pub fn limit(v: u32) -> Result<u32> {
    if v > MAX_LIMIT {
        return Err(FieldError::new(
            "limit",
            format!("must be 0 to {MAX_LIMIT}, got {v}"),
        ));
    }
    Ok(v)
}

/// A list's page size (`limit` of a list): 1 to 10,000.
pub fn page_size(v: usize) -> Result<usize> {
    if v == 0 || v > MAX_PAGE_SIZE {
        return Err(FieldError::new(
            "limit",
            format!("must be 1 to {MAX_PAGE_SIZE}, got {v}"),
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_take_the_api_alphabet_and_length() {
        assert!(check_id("agent", "agent-a.b_c:1").is_ok());
        assert!(check_id("agent", &"a".repeat(128)).is_ok());
        assert_eq!(check_id("agent", "").unwrap_err().field, "agent");
        assert!(check_id("agent", &"a".repeat(129)).is_err());
        assert!(check_id("org", "a b").is_err());
        assert!(check_id("org", "é").is_err());
    }

    #[test]
    fn seconds_are_checked_against_their_range() {
        assert_eq!(lease_ttl(5.0).unwrap(), MIN_LEASE_TTL);
        assert_eq!(lease_ttl(4.9).unwrap_err().field, "lease_ttl_s");
        assert!(lease_ttl(f64::NAN).is_err());
        assert!(max_wait(0.0).is_err());
        assert!(max_wait(0.001).is_ok());
        assert_eq!(max_wait(5e-324).unwrap(), MIN_MAX_WAIT);
        assert!(request_wait(60.0).is_ok());
        assert!(request_wait(60.5).is_err());
        assert!(limit(MAX_LIMIT).is_ok() && limit(MAX_LIMIT + 1).is_err());
        assert!(page_size(0).is_err() && page_size(MAX_PAGE_SIZE).is_ok());
    }

    #[test]
    fn windows_are_a_whole_number_of_one_unit_and_at_most_400_days() {
        let w = |v: &str| traffic_window(Some(v));
        assert_eq!(w("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(w("12h").unwrap(), Duration::from_secs(12 * 3600));
        assert_eq!(w("7d").unwrap(), DEFAULT_TRAFFIC_WINDOW);
        assert_eq!(w("9999999999d").unwrap(), MAX_TRAFFIC_WINDOW);
        assert_eq!(w("6805ms").unwrap(), Duration::from_millis(6805));
        for bad in [
            "", "0s", "07d", "7", "d", "1.5h", "7 d", "1h30m", "7days", "é", "7é",
        ] {
            assert_eq!(w(bad).unwrap_err().field, "window", "{bad:?}");
        }
        assert_eq!(traffic_window(None).unwrap(), DEFAULT_TRAFFIC_WINDOW);
    }
}
