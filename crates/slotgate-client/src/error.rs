//! What can go wrong talking to slotgate.

use crate::types::Call;

/// The API's error codes (API.md), as a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 400: a field is malformed or out of range.
    InvalidRequest,
    /// 401: no key, or a key the server does not know.
    Unauthorized,
    /// 403: the key's role may not do this.
    Forbidden,
    /// 404: no such org (or not visible to this key).
    OrgNotFound,
    /// 409: an org with this id exists.
    OrgExists,
    /// 404: no such call.
    CallNotFound,
    /// 410: the call has ended; the error carries it.
    CallEnded,
    /// 409: the call id exists with another agent or type.
    CallIdConflict,
    /// 409: the limit would be below the reservations; carries `reserved`.
    LimitBelowReservations,
    /// 409: the reservations would exceed the limit; carries `available`.
    ReservationsExceedLimit,
    /// 429: the org's queue is full.
    QueueFull,
    /// 404: no such key.
    KeyNotFound,
    /// 503: the server's store failed.
    StoreUnavailable,
    /// Any other code.
    Other,
}

impl ErrorKind {
    fn of(code: &str) -> ErrorKind {
        match code {
            "invalid_request" => ErrorKind::InvalidRequest,
            "unauthorized" => ErrorKind::Unauthorized,
            "forbidden" => ErrorKind::Forbidden,
            "org_not_found" => ErrorKind::OrgNotFound,
            "org_exists" => ErrorKind::OrgExists,
            "call_not_found" => ErrorKind::CallNotFound,
            "call_ended" => ErrorKind::CallEnded,
            "call_id_conflict" => ErrorKind::CallIdConflict,
            "limit_below_reservations" => ErrorKind::LimitBelowReservations,
            "reservations_exceed_limit" => ErrorKind::ReservationsExceedLimit,
            "queue_full" => ErrorKind::QueueFull,
            "key_not_found" => ErrorKind::KeyNotFound,
            "store_unavailable" => ErrorKind::StoreUnavailable,
            _ => ErrorKind::Other,
        }
    }
}

/// A refusal from the server, with the API's code and fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The API's error code, e.g. `reservations_exceed_limit`.
    pub code: String,
    /// The server's message, for a person.
    pub message: String,
    /// `reservations_exceed_limit`: the most this agent could reserve now.
    pub available: Option<u32>,
    /// `limit_below_reservations`: the sum of the org's reservations.
    pub reserved: Option<u32>,
    /// `queue_full`: the queue's cap.
    pub cap: Option<u32>,
    /// `call_ended`: the call as it ended.
    pub call: Option<Box<Call>>,
}

impl ApiError {
    /// The code as a type.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::of(&self.code)
    }

    pub(crate) fn from_body(status: u16, body: &serde_json::Value) -> ApiError {
        let e = &body["error"];
        let num = |k: &str| {
            e.get(k)
                .and_then(serde_json::Value::as_u64)
                .map(|n| n as u32)
        };
        ApiError {
            status,
            code: e["code"].as_str().unwrap_or("unknown").to_string(),
            message: e["message"].as_str().unwrap_or("").to_string(),
            available: num("available"),
            reserved: num("reserved"),
            cap: num("cap"),
            call: body
                .get("call")
                .and_then(|c| serde_json::from_value(c.clone()).ok())
                .map(Box::new),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

/// A failed client call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server refused.
    #[error("{0}")]
    Api(ApiError),
    /// The request did not complete: connection refused, reset, timed out.
    #[error("request failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// The answer was not what the API promises.
    #[error("unexpected answer: {0}")]
    Decode(String),
    /// The call ended while waiting in the queue (e.g. `timed_out` after `max_wait_s`).
    #[error("the call ended while queued ({})", .0.end_reason.as_deref().unwrap_or("?"))]
    EndedWhileQueued(Box<Call>),
    /// `acquire` waited longer than its `timeout`; the call was cancelled.
    #[error("no slot within the timeout; the queued call was cancelled")]
    Timeout,
}

impl Error {
    /// The API error, if the server refused.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// Worth retrying the same request: the network failed or the server had
    /// a passing fault. Refusals (4xx) are permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            Error::Api(e) => e.status >= 500,
            _ => false,
        }
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
