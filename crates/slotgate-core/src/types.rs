//! The small vocabulary of the domain: call types, slots, states, end reasons,
//! and a value per call type.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The highest org limit accepted (API.md: 0 to 1,000,000).
pub const MAX_LIMIT: u32 = 1_000_000;

/// The kind of conversation. All four share the org's one pool.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum CallType {
    /// Browser voice call.
    Webcall,
    /// Text chat.
    Chat,
    /// Telephony the agent places.
    Outbound,
    /// Telephony the agent receives.
    Inbound,
}

impl CallType {
    /// The four types, in the API's order.
    pub const ALL: [CallType; 4] = [
        CallType::Webcall,
        CallType::Chat,
        CallType::Outbound,
        CallType::Inbound,
    ];

    /// The API's name of the type.
    pub const fn as_str(self) -> &'static str {
        match self {
            CallType::Webcall => "webcall",
            CallType::Chat => "chat",
            CallType::Outbound => "outbound",
            CallType::Inbound => "inbound",
        }
    }

    /// 0..4, in the order of [`CallType::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl FromStr for CallType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        CallType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "type",
                    format!("must be one of webcall, chat, outbound, inbound, got {s:?}"),
                )
            })
    }
}

impl fmt::Display for CallType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value per call type: reservations, counts of active or queued calls.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct PerType<T> {
    /// For `webcall` calls.
    pub webcall: T,
    /// For `chat` calls.
    pub chat: T,
    /// For `outbound` calls.
    pub outbound: T,
    /// For `inbound` calls.
    pub inbound: T,
}

impl<T: Copy> PerType<T> {
    /// Builds a value per type from `f`.
    pub fn from_fn(mut f: impl FnMut(CallType) -> T) -> Self {
        PerType {
            webcall: f(CallType::Webcall),
            chat: f(CallType::Chat),
            outbound: f(CallType::Outbound),
            inbound: f(CallType::Inbound),
        }
    }

    /// The value for `t`.
    pub fn get(&self, t: CallType) -> T {
        match t {
            CallType::Webcall => self.webcall,
            CallType::Chat => self.chat,
            CallType::Outbound => self.outbound,
            CallType::Inbound => self.inbound,
        }
    }
}

impl PerType<u32> {
    /// The sum over the four types.
    pub fn total(&self) -> u64 {
        CallType::ALL.iter().map(|&t| u64::from(self.get(t))).sum()
    }
}

/// An agent's reservation per call type.
pub type Reservations = PerType<u32>;

/// Which part of the pool an active call counts against, as reported when it was admitted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Slot {
    /// One of its agent's reserved slots for its type.
    Reserved,
    /// The shared pool.
    Shared,
}

impl Slot {
    /// The API's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Slot::Reserved => "reserved",
            Slot::Shared => "shared",
        }
    }
}

/// Where a call is in its life: `queued -> active -> ended`, or `queued -> ended`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CallState {
    /// Waiting for a slot.
    Queued,
    /// Holding a slot.
    Active,
    /// Over; kept for reads and idempotent retries during the retention window.
    Ended,
}

impl CallState {
    /// The API's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            CallState::Queued => "queued",
            CallState::Active => "active",
            CallState::Ended => "ended",
        }
    }
}

/// Why a call ended.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum EndReason {
    /// Released by its caller while active.
    Released,
    /// Cancelled by its caller while queued.
    Cancelled,
    /// Its lease was not renewed in time.
    Expired,
    /// Nobody held it in the queue for its `lease_ttl`.
    Abandoned,
    /// Its `max_wait` passed before a slot came.
    TimedOut,
}

impl EndReason {
    /// All reasons, for metrics and tests.
    pub const ALL: [EndReason; 5] = [
        EndReason::Released,
        EndReason::Cancelled,
        EndReason::Expired,
        EndReason::Abandoned,
        EndReason::TimedOut,
    ];

    /// The API's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            EndReason::Released => "released",
            EndReason::Cancelled => "cancelled",
            EndReason::Expired => "expired",
            EndReason::Abandoned => "abandoned",
            EndReason::TimedOut => "timed_out",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_types_round_trip_through_their_names() {
        for t in CallType::ALL {
            assert_eq!(t.as_str().parse::<CallType>().unwrap(), t);
            assert_eq!(CallType::ALL[t.index()], t);
        }
        assert!(matches!(
            "voice".parse::<CallType>(),
            Err(Error::Invalid { field: "type", .. })
        ));
    }

    #[test]
    fn per_type_totals_every_type() {
        let r = Reservations {
            webcall: 2,
            chat: 3,
            outbound: 4,
            inbound: 3,
        };
        assert_eq!(r.total(), 12);
        assert_eq!(PerType::from_fn(|t| r.get(t)), r);
    }
}
