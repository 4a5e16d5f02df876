//! `GET /v1/orgs/{org}/usage`: an org's usage by hour or by day (UTC), per
//! call type and overall.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::resources::Time;

/// The length of one step of a usage answer. Steps start on UTC hours or
/// UTC midnights.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Step {
    /// One hour.
    #[serde(rename = "1h")]
    Hour,
    /// One day (24 hours from UTC midnight).
    #[serde(rename = "1d")]
    Day,
}

impl Step {
    /// Its length in milliseconds.
    pub const fn millis(self) -> u64 {
        match self {
            Step::Hour => 3_600_000,
            Step::Day => 86_400_000,
        }
    }

    /// The API's name of the step.
    pub const fn as_str(self) -> &'static str {
        match self {
            Step::Hour => "1h",
            Step::Day => "1d",
        }
    }

    /// The longest range one answer covers with this step, in ms: 31 days
    /// of hours, 366 days of days.
    pub const fn max_range_ms(self) -> u64 {
        match self {
            Step::Hour => 31 * 86_400_000,
            Step::Day => 366 * 86_400_000,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Step {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, FieldError> {
        match s {
            "1h" => Ok(Step::Hour),
            "1d" => Ok(Step::Day),
            _ => Err(FieldError::new(
                "step",
                format!("must be 1h or 1d, got {s:?}"),
            )),
        }
    }
}

/// The figures of one step, for one call type or over all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageFigures {
    /// The most calls active at once during the step.
    pub peak_active: u32,
    /// The most calls queued at once during the step.
    pub peak_queued: u32,
    /// Calls admitted during the step (on arrival or after waiting).
    pub admitted: u64,
    /// Of those, the calls admitted after waiting in the queue.
    pub waited: u64,
    /// The median wait of the calls that waited, in ms, to the resolution
    /// of the wait histogram (the upper edge of a 1-2-5 bucket); `null`
    /// when no call waited.
    pub wait_p50_ms: Option<u64>,
    /// The 90th percentile of the same waits, likewise.
    pub wait_p90_ms: Option<u64>,
    /// Calls that left the queue without a slot during the step: cancelled,
    /// abandoned or timed out (`max_wait`) while queued.
    pub gave_up: u64,
}

/// The figures of one step per call type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageByType {
    /// `webcall` calls.
    pub webcall: UsageFigures,
    /// `chat` calls.
    pub chat: UsageFigures,
    /// `outbound` calls.
    pub outbound: UsageFigures,
    /// `inbound` calls.
    pub inbound: UsageFigures,
}

/// One step of an org's usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageStep {
    /// When the step starts (a UTC hour or midnight).
    pub start: Time,
    /// The highest limit in effect during the step; in a step with no
    /// activity, that of the step before (0 before the range's first
    /// activity).
    pub limit: u32,
    /// Seconds during which the org's active calls were at or above its
    /// limit (`N >= L`, with at least one call active).
    pub at_limit_seconds: f64,
    /// Burst used, in slot-seconds: the integral of `max(0, N - L)`.
    pub burst_seconds: f64,
    /// Over all call types.
    pub overall: UsageFigures,
    /// Per call type.
    pub types: UsageByType,
}

/// `GET /v1/orgs/{org}/usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    /// The org.
    pub org: String,
    /// The step.
    pub step: Step,
    /// The start of the first step (`from`, rounded down to a step).
    pub from: Time,
    /// The end of the last step (`to`, rounded up to a step).
    pub to: Time,
    /// Every step of the range, oldest first; a step with no activity has zeros.
    pub steps: Vec<UsageStep>,
}
