//! Errors on the wire: every error code with its HTTP status, the error body,
//! and the refusal of one bad field.

use serde::{Deserialize, Serialize};

use crate::resources::Call;
use crate::types::BlockedReason;

/// A field of a request that is not acceptable: the API answers 400
/// `invalid_request` with `"{field}: {message}"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The offending field, as the API names it.
    pub field: &'static str,
    /// What is wrong with it, in the API's words.
    pub message: String,
}

impl FieldError {
    /// A refusal of `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field,
            message: message.into(),
        }
    }
}

/// The result of a validation.
pub type Result<T, E = FieldError> = std::result::Result<T, E>;

/// Every error code the API answers with (`error.code`), each with its status.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: a field is malformed or out of range; the message names it.
    InvalidRequest,
    /// 401: no key, or a key nobody issued.
    Unauthorized,
    /// 403: the key's role may not do this.
    Forbidden,
    /// 404: no such endpoint.
    NotFound,
    /// 404: no such org, or one this key may not see.
    OrgNotFound,
    /// 404: no such call (or it left the retention window).
    CallNotFound,
    /// 404: no such key in this org.
    KeyNotFound,
    /// 404: no such plan.
    PlanNotFound,
    /// 405: the endpoint does not take this method.
    MethodNotAllowed,
    /// 409: an org with this id exists.
    OrgExists,
    /// 409: the call id exists with another agent or type.
    CallIdConflict,
    /// 409: the limit would be below the reservations; `error.reserved` says by how much.
    LimitBelowReservations,
    /// 409: the reservations would exceed the limit; `error.available` is the most this agent could reserve.
    ReservationsExceedLimit,
    /// 409: a cap would be below the reservation it covers (`c(a,t) >= r(a,t)`,
    /// `C(a) >= r(a)`), whether the cap or the reservation changed;
    /// `error.reserved` is that reservation: the lowest value the cap may have.
    CapBelowReservation,
    /// 409: the call would queue blocked and the acquire asked
    /// `if_blocked: "refuse"`; nothing was queued. `error.blocked` says why.
    CallBlocked,
    /// 409: a plan with this id exists.
    PlanExists,
    /// 409: orgs are on the plan, so it cannot be deleted; `error.orgs`
    /// names the first ten, `error.count` says how many in all.
    PlanInUse,
    /// 409: the plan's new limit would be below the reservations of orgs on
    /// it that take its limit; `error.orgs` names the first ten,
    /// `error.count` says how many in all. Nothing changed.
    PlanBelowReservations,
    /// 409: a limit or burst of null (back to the plan's) for an org on no plan.
    NoPlan,
    /// 409: a plan or simulation of observed traffic, for an org with no
    /// ended calls in the window to learn from (give `traffic`, or a longer `window`).
    NoTraffic,
    /// 410: the call has ended; `error.call` is the call as it ended.
    CallEnded,
    /// 413: the body is over the size limit.
    PayloadTooLarge,
    /// 429: the org's queue is at its cap (`error.cap`); nothing was queued. Not now, not never.
    QueueFull,
    /// 429: a plan or simulation of this org is already running (one at a
    /// time per org); retry after `Retry-After`, once it has answered.
    PlanningBusy,
    /// 503: the plan or simulation was stopped before it answered: it passed
    /// the server's planning deadline (ask for less), or the server is
    /// shutting down; the message says which.
    PlanningCancelled,
    /// 503: the store cannot take the change now; retry after `Retry-After`.
    StoreUnavailable,
    /// 429: this key (or, for failed authentication, this client address)
    /// is over its rate; nothing was done. Retry after `Retry-After` seconds.
    RateLimited,
    /// 503: the server holds as many long-polls and event streams as it
    /// may (`error.cap`, `--max-waits`); retry after `Retry-After` seconds.
    TooManyWaits,
    /// 500: a fault of the server (logged; no detail is given).
    Internal,
    /// A code this version does not know (a newer server).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The HTTP status this code is answered with.
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound
            | ErrorCode::OrgNotFound
            | ErrorCode::CallNotFound
            | ErrorCode::KeyNotFound
            | ErrorCode::PlanNotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::OrgExists
            | ErrorCode::CallIdConflict
            | ErrorCode::LimitBelowReservations
            | ErrorCode::ReservationsExceedLimit
            | ErrorCode::CapBelowReservation
            | ErrorCode::CallBlocked
            | ErrorCode::PlanExists
            | ErrorCode::PlanInUse
            | ErrorCode::PlanBelowReservations
            | ErrorCode::NoPlan
            | ErrorCode::NoTraffic => 409,
            ErrorCode::CallEnded => 410,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::QueueFull | ErrorCode::RateLimited | ErrorCode::PlanningBusy => 429,
            ErrorCode::StoreUnavailable
            | ErrorCode::TooManyWaits
            | ErrorCode::PlanningCancelled => 503,
            ErrorCode::Internal | ErrorCode::Unknown => 500,
        }
    }

    /// The API's name of the code, e.g. `queue_full`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::OrgNotFound => "org_not_found",
            ErrorCode::CallNotFound => "call_not_found",
            ErrorCode::KeyNotFound => "key_not_found",
            ErrorCode::PlanNotFound => "plan_not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::OrgExists => "org_exists",
            ErrorCode::CallIdConflict => "call_id_conflict",
            ErrorCode::LimitBelowReservations => "limit_below_reservations",
            ErrorCode::ReservationsExceedLimit => "reservations_exceed_limit",
            ErrorCode::CapBelowReservation => "cap_below_reservation",
            ErrorCode::CallBlocked => "call_blocked",
            ErrorCode::PlanExists => "plan_exists",
            ErrorCode::PlanInUse => "plan_in_use",
            ErrorCode::PlanBelowReservations => "plan_below_reservations",
            ErrorCode::NoPlan => "no_plan",
            ErrorCode::NoTraffic => "no_traffic",
            ErrorCode::CallEnded => "call_ended",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::QueueFull => "queue_full",
            ErrorCode::PlanningBusy => "planning_busy",
            ErrorCode::PlanningCancelled => "planning_cancelled",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManyWaits => "too_many_waits",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// The body of every error answer: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ApiError,
}

/// An error as the API reports it: a code, a message for a person, and the
/// extra fields of its code. Extras live here and nowhere else in the body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[error("{message} ({code})")]
pub struct ApiError {
    /// Which error.
    pub code: ErrorCode,
    /// For a person; an `invalid_request` message starts with the field's name.
    pub message: String,
    /// `reservations_exceed_limit`: the most this agent could reserve in total now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<u32>,
    /// `limit_below_reservations`: the sum of the org's reservations;
    /// `cap_below_reservation`: the reservation the cap covers, which is the
    /// lowest value the cap may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<u32>,
    /// `queue_full`: the queue's cap; `too_many_waits`: how many long-polls
    /// and event streams the server holds at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<u32>,
    /// `call_ended`: the call as it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<Box<Call>>,
    /// `call_blocked`: why the call would have waited blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<BlockedReason>,
    /// `plan_below_reservations`, `plan_in_use`: the first ten orgs in the way, by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orgs: Option<Vec<String>>,
    /// `plan_below_reservations`, `plan_in_use`: how many orgs in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

impl ApiError {
    /// An error with a code and a message and no extras.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            available: None,
            reserved: None,
            cap: None,
            call: None,
            blocked: None,
            orgs: None,
            count: None,
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::new(ErrorCode::InvalidRequest, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_names_and_unknown_ones_still_parse() {
        for code in [ErrorCode::QueueFull, ErrorCode::ReservationsExceedLimit] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        let e: ErrorCode = serde_json::from_str("\"brand_new\"").unwrap();
        assert_eq!(e, ErrorCode::Unknown);
    }

    #[test]
    fn extras_sit_inside_the_error_object_only() {
        let mut e = ApiError::new(ErrorCode::ReservationsExceedLimit, "too many");
        e.available = Some(3);
        let body = serde_json::to_value(ErrorBody { error: e }).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "reservations_exceed_limit", "message": "too many", "available": 3}})
        );
    }
}
