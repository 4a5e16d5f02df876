//! The engine's errors: every refusal a caller can get, with the data the API reports.

use crate::types::{BlockedReason, CallType};
use crate::view::CallView;

/// A refused engine operation. A refused operation changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument is out of its domain (bad id, number out of range).
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field, as the API names it.
        field: &'static str,
        /// What is wrong with it, for a person.
        message: String,
    },
    /// No org has this id.
    #[error("org not found")]
    OrgNotFound,
    /// An org with this id exists already.
    #[error("an org with this id exists already")]
    OrgExists,
    /// The org has no call with this id (or had one, but it left the retention window).
    #[error("call not found")]
    CallNotFound,
    /// The call has ended; it cannot be renewed. Carries the call as it ended.
    #[error("call has ended ({})", call.end_reason.map_or("?", |r| r.as_str()))]
    CallEnded {
        /// The call, as it ended.
        call: Box<CallView>,
    },
    /// The call id exists with another agent or call type.
    #[error("call id exists with another agent or type")]
    CallIdConflict,
    /// The new limit is below the sum of the org's reservations.
    #[error("limit is below the {reserved} slots reserved; remove reservations first")]
    LimitBelowReservations {
        /// The sum of the org's reservations.
        reserved: u32,
    },
    /// The reservations would make the org's sum exceed its limit.
    #[error("reservations would exceed the org limit: this agent can reserve at most {available} slots in total")]
    ReservationsExceedLimit {
        /// The most this agent could reserve in total now.
        available: u32,
    },
    /// A cap would be below the reservation it covers (`c(a,t) >= r(a,t)`,
    /// `C(a) >= r(a)`): refused, whether the cap or the reservation changed.
    #[error("the {} cap would be below the {lowest} slots reserved under it: the lowest allowed cap is {lowest}", call_type.map_or("total", |t| t.as_str()))]
    CapBelowReservation {
        /// The cap of this call type; `None`: the agent's total cap.
        call_type: Option<CallType>,
        /// The lowest value that cap may have: the reservation it covers.
        lowest: u32,
    },
    /// The call would queue blocked (it can never be admitted as the org is
    /// configured now) and the acquire asked to be refused instead; nothing was queued.
    #[error("the call would wait blocked ({reason}): nothing was queued")]
    CallBlocked {
        /// Why it is blocked.
        reason: BlockedReason,
    },
    /// The org's queue is at its cap; the call was not queued. This is "not now", not "never".
    #[error("the org's queue is full ({cap} calls waiting)")]
    QueueFull {
        /// The configured cap.
        cap: u32,
    },
}

impl Error {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<slotgate_api::FieldError> for Error {
    fn from(e: slotgate_api::FieldError) -> Self {
        Error::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
