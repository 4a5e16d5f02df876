//! The one place errors become HTTP: status, `{"error": {"code", "message"}}`, extra fields.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::auth::Denied;
use crate::store::StoreError;
use crate::wire;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Fields the API adds for this error (`available`, `reserved`, `call`, ...).
    extra: Map<String, Value>,
}

/// Marks a response as a refusal, for the metrics middleware.
#[derive(Debug, Clone, Copy)]
pub struct Refused(pub &'static str);

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            extra: Map::new(),
        }
    }

    /// 400 `invalid_request`, naming the field.
    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("{field}: {message}"),
        )
    }

    /// 401: no key, or a key nobody issued.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send a valid key as `Authorization: Bearer <key>`",
        )
    }

    /// 404 for an org the caller may not see, exactly as for one that does not exist.
    pub fn org_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "org_not_found", "org not found")
    }

    fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_string(), value);
        self
    }

    /// The error code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl From<slotgate_core::Error> for ApiError {
    fn from(e: slotgate_core::Error) -> Self {
        use slotgate_core::Error as E;
        let message = e.to_string();
        match e {
            E::Invalid { field, message } => ApiError::invalid(field, message),
            E::OrgNotFound => ApiError::org_not_found(),
            E::OrgExists => ApiError::new(StatusCode::CONFLICT, "org_exists", message),
            E::CallNotFound => ApiError::new(StatusCode::NOT_FOUND, "call_not_found", message),
            E::CallEnded { call } => ApiError::new(StatusCode::GONE, "call_ended", message)
                .with("call", json!(wire::call(*call))),
            E::CallIdConflict => ApiError::new(StatusCode::CONFLICT, "call_id_conflict", message),
            E::LimitBelowReservations { reserved } => {
                ApiError::new(StatusCode::CONFLICT, "limit_below_reservations", message)
                    .with("reserved", json!(reserved))
            }
            E::ReservationsExceedLimit { available } => {
                ApiError::new(StatusCode::CONFLICT, "reservations_exceed_limit", message)
                    .with("available", json!(available))
            }
            E::QueueFull { cap } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "queue_full", message)
                    .with("cap", json!(cap))
            }
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                other.to_string(),
            ),
        }
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Hidden => ApiError::org_not_found(),
            Denied::Forbidden => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this key's role may not do this",
            ),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the store failed; the change was not acknowledged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = Map::new();
        error.insert("code".into(), json!(self.code));
        error.insert("message".into(), json!(self.message));
        // Extra fields sit in the error object and, for clients that read them
        // there, beside it at the top level too.
        let mut body = self.extra.clone();
        error.extend(self.extra);
        body.insert("error".into(), Value::Object(error));
        let mut response = (self.status, Json(Value::Object(body))).into_response();
        response.extensions_mut().insert(Refused(self.code));
        response
    }
}
