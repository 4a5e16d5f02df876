//! The closed sets of the domain: call types, slots, states, end reasons and
//! key roles, and a value per call type. Each is one enum; its API name is its
//! serde name, so the wire, the engine and every client spell it one way.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

/// Defines a closed set: the enum, its API names, `ALL`, `Display` and `FromStr`.
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        $name:ident ($field:literal) { $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+ }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in the API's order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// The API's name of the value.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = FieldError;
            fn from_str(s: &str) -> Result<Self, FieldError> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let names: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    FieldError::new($field, format!("must be one of {}, got {s:?}", names.join(", ")))
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

closed_set! {
    /// The kind of conversation. All four share the org's one pool.
    CallType ("type") {
        /// Browser voice call.
        Webcall = "webcall",
        /// Text chat.
        Chat = "chat",
        /// Telephony the agent places.
        Outbound = "outbound",
        /// Telephony the agent receives.
        Inbound = "inbound",
    }
}

closed_set! {
    /// Which part of the pool an active call counts against, as reported when it was admitted.
    Slot ("slot") {
        /// One of its agent's reserved slots for its type.
        Reserved = "reserved",
        /// The shared pool.
        Shared = "shared",
        /// Above the org's limit, within its burst: only when the whole limit was in use.
        Burst = "burst",
    }
}

closed_set! {
    /// Why a queued call can never be admitted as the org is configured now:
    /// the admission rule would refuse it even in an org with no active call.
    BlockedReason ("blocked") {
        /// The org's limit and burst are both 0.
        LimitZero = "limit_zero",
        /// Its agent's cap for its type, or its agent's total cap, is 0.
        CapZero = "cap_zero",
        /// Its agent reserves nothing for its type and reservations take the whole limit.
        NoSharedCapacity = "no_shared_capacity",
    }
}

closed_set! {
    /// Where an org's limit (or burst) comes from: its plan's, or its own.
    Source ("source") {
        /// The org's plan's value: a change of the plan changes it.
        Plan = "plan",
        /// The org's own value, set on the org: it overrides its plan's.
        Org = "org",
    }
}

impl Default for Source {
    /// An org with no plan has its own limit and burst.
    fn default() -> Self {
        Source::Org
    }
}

closed_set! {
    /// What an acquire wants done with a call that would queue blocked.
    IfBlocked ("if_blocked") {
        /// Queue it anyway, saying it is blocked: a live change may unblock it.
        Queue = "queue",
        /// Refuse it (`call_blocked`) and queue nothing.
        Refuse = "refuse",
    }
}

closed_set! {
    /// Where a call is in its life: `queued -> active -> ended`, or `queued -> ended`.
    CallState ("state") {
        /// Waiting for a slot.
        Queued = "queued",
        /// Holding a slot.
        Active = "active",
        /// Over; kept for reads and idempotent retries during the retention window.
        Ended = "ended",
    }
}

closed_set! {
    /// Why a call ended.
    EndReason ("reason") {
        /// Released by its caller while active.
        Released = "released",
        /// Cancelled by its caller while queued.
        Cancelled = "cancelled",
        /// Its lease was not renewed in time.
        Expired = "expired",
        /// Nobody held it in the queue for its `lease_ttl`.
        Abandoned = "abandoned",
        /// Its `max_wait` passed before a slot came.
        TimedOut = "timed_out",
    }
}

closed_set! {
    /// What an org key may do (the operator key is not an org key).
    Role ("role") {
        /// Everything in its org but changing the limit and the burst.
        Admin = "admin",
        /// Calls in its org, and reading the org.
        Runtime = "runtime",
        /// `/metrics` only, with its org's series: for a Prometheus scraper.
        Metrics = "metrics",
    }
}

impl CallType {
    /// 0..4, in the order of [`CallType::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// One value per call type: reservations, counts of active or queued calls.
///
/// On the wire an object with one field per type; in a request a missing
/// type means the default (0).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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

    /// The value for `t`, to change.
    pub fn get_mut(&mut self, t: CallType) -> &mut T {
        match t {
            CallType::Webcall => &mut self.webcall,
            CallType::Chat => &mut self.chat,
            CallType::Outbound => &mut self.outbound,
            CallType::Inbound => &mut self.inbound,
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

/// An agent's caps: the most active calls it may hold of each type
/// (`c(a,t)`) and over all types (`C(a)`). `None` is no cap; a cap is never
/// below the reservation it covers.
///
/// On the wire one field per type and `total`; `null` or a missing field is no cap.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Caps {
    /// The most active `webcall` calls.
    pub webcall: Option<u32>,
    /// The most active `chat` calls.
    pub chat: Option<u32>,
    /// The most active `outbound` calls.
    pub outbound: Option<u32>,
    /// The most active `inbound` calls.
    pub inbound: Option<u32>,
    /// The most active calls over all four types.
    pub total: Option<u32>,
}

impl Caps {
    /// The cap of type `t`.
    pub fn get(&self, t: CallType) -> Option<u32> {
        match t {
            CallType::Webcall => self.webcall,
            CallType::Chat => self.chat,
            CallType::Outbound => self.outbound,
            CallType::Inbound => self.inbound,
        }
    }

    /// Whether no cap is set.
    pub fn is_empty(&self) -> bool {
        *self == Caps::default()
    }
}

/// The OpenAPI schema of a count per call type ([`PerType<u32>`] on the wire),
/// named `PerType`: the generic type itself has no derived schema.
#[cfg(feature = "openapi")]
#[derive(Debug, Default, utoipa::ToSchema)]
#[schema(as = PerType)]
#[serde(default, deny_unknown_fields)]
#[allow(dead_code)]
pub struct PerTypeSchema {
    /// For `webcall` calls (0 if absent in a request).
    webcall: u32,
    /// For `chat` calls (0 if absent in a request).
    chat: u32,
    /// For `outbound` calls (0 if absent in a request).
    outbound: u32,
    /// For `inbound` calls (0 if absent in a request).
    inbound: u32,
}
