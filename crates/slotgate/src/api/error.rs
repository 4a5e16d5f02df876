//! The one place errors become HTTP: the status of the code, and the API's
//! error body (`slotgate_api::ErrorBody`) with the code's extras inside `error`.

use super::json::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use slotgate_api::{ErrorBody, ErrorCode, FieldError};

use crate::auth::Denied;
use crate::service;
use crate::store::StoreError;

/// An error answer, and its `Retry-After` in seconds, if it has one.
#[derive(Debug)]
pub struct ApiError(slotgate_api::ApiError, Option<u64>);

/// Marks a response as a refusal, for the metrics middleware.
#[derive(Debug, Clone, Copy)]
pub struct Refused(pub ErrorCode);

impl ApiError {
    /// An error with a code and a message; its status is the code's.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError(slotgate_api::ApiError::new(code, message), None)
    }

    /// 400 `invalid_request`, naming the field.
    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::InvalidRequest, format!("{field}: {message}"))
    }

    /// 401: no key, or a key nobody issued.
    pub fn unauthorized() -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            "send a valid key as `Authorization: Bearer <key>`",
        )
    }

    /// 404 for an org the caller may not see, exactly as for one that does not exist.
    pub fn org_not_found() -> Self {
        Self::new(ErrorCode::OrgNotFound, "org not found")
    }

    /// 500: a fault of the server. The detail goes to the log, never to the caller.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    /// Says when to try again: `Retry-After`, in seconds.
    pub fn retry_after(self, seconds: u64) -> Self {
        ApiError(self.0, Some(seconds))
    }

    /// With `error.cap`: the cap that refused the request.
    pub fn with_cap(mut self, cap: usize) -> Self {
        self.0.cap = Some(u32::try_from(cap).unwrap_or(u32::MAX));
        self
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError(e.into(), None)
    }
}

impl From<slotgate_core::Error> for ApiError {
    fn from(e: slotgate_core::Error) -> Self {
        use slotgate_core::Error as E;
        let message = e.to_string();
        let error = |code| slotgate_api::ApiError::new(code, message.clone());
        let error = match e {
            E::Invalid { field, message } => return ApiError::invalid(field, message),
            E::OrgNotFound => return ApiError::org_not_found(),
            E::OrgExists => error(ErrorCode::OrgExists),
            E::CallNotFound => error(ErrorCode::CallNotFound),
            E::CallEnded { call } => slotgate_api::ApiError {
                call: Some(Box::new((*call).into())),
                ..error(ErrorCode::CallEnded)
            },
            E::CallIdConflict => error(ErrorCode::CallIdConflict),
            E::LimitBelowReservations { reserved } => slotgate_api::ApiError {
                reserved: Some(reserved),
                ..error(ErrorCode::LimitBelowReservations)
            },
            E::ReservationsExceedLimit { available } => slotgate_api::ApiError {
                available: Some(available),
                ..error(ErrorCode::ReservationsExceedLimit)
            },
            E::CapBelowReservation { lowest, .. } => slotgate_api::ApiError {
                reserved: Some(lowest),
                ..error(ErrorCode::CapBelowReservation)
            },
            E::CallBlocked { reason } => slotgate_api::ApiError {
                blocked: Some(reason),
                ..error(ErrorCode::CallBlocked)
            },
            E::QueueFull { cap } => slotgate_api::ApiError {
                cap: Some(cap),
                ..error(ErrorCode::QueueFull)
            },
            other => return ApiError::internal(other),
        };
        ApiError(error, None)
    }
}

impl From<service::Error> for ApiError {
    fn from(e: service::Error) -> Self {
        use service::Error as E;
        match e {
            E::Refused(e) => e.into(),
            E::Invalid(e) => e.into(),
            E::Denied(d) => d.into(),
            E::OperatorOnly => {
                ApiError::new(ErrorCode::Forbidden, "only the operator key may do this")
            }
            E::KeyNotFound => {
                ApiError::new(ErrorCode::KeyNotFound, "no key with this id in this org")
            }
            E::NoTraffic => ApiError::new(ErrorCode::NoTraffic, E::NoTraffic.to_string()),
            E::Revoked => ApiError::new(
                ErrorCode::Unauthorized,
                "this key was revoked while the request waited",
            ),
            E::RoleNeeded(why) => ApiError::new(ErrorCode::Forbidden, why),
            E::PlanningBusy => ApiError::new(ErrorCode::PlanningBusy, E::PlanningBusy.to_string()),
            E::PlanningCancelled(why) => ApiError::new(ErrorCode::PlanningCancelled, why),
            E::PlanNotFound(_) => ApiError::new(ErrorCode::PlanNotFound, e.to_string()),
            E::PlanExists(_) => ApiError::new(ErrorCode::PlanExists, e.to_string()),
            E::NoPlan(_) => ApiError::new(ErrorCode::NoPlan, e.to_string()),
            E::PlanInUse {
                ref orgs, count, ..
            } => {
                let orgs = orgs.clone();
                let mut error = ApiError::new(ErrorCode::PlanInUse, e.to_string());
                error.0.orgs = Some(orgs);
                error.0.count = Some(u32::try_from(count).unwrap_or(u32::MAX));
                error
            }
            E::PlanBelowReservations {
                ref orgs, count, ..
            } => {
                let orgs = orgs.iter().map(|(o, _)| o.clone()).collect();
                let mut error = ApiError::new(ErrorCode::PlanBelowReservations, e.to_string());
                error.0.orgs = Some(orgs);
                error.0.count = Some(u32::try_from(count).unwrap_or(u32::MAX));
                error
            }
            E::Store(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Hidden => ApiError::org_not_found(),
            Denied::Forbidden => {
                ApiError::new(ErrorCode::Forbidden, "this key's role may not do this")
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        ApiError::new(
            ErrorCode::StoreUnavailable,
            "the store failed; the change was not acknowledged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code;
        let status = StatusCode::from_u16(code.status())
            .expect("every error code's status is a valid HTTP status");
        // API.md: a 503 of the store, and a busy or stopped plan, say when
        // to try again.
        let retry_after = self.1.or(matches!(
            code,
            ErrorCode::StoreUnavailable | ErrorCode::PlanningBusy | ErrorCode::PlanningCancelled
        )
        .then_some(1));
        let mut response = (status, Json(ErrorBody { error: self.0 })).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response.extensions_mut().insert(Refused(code));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_failure_is_503_with_retry_after_and_the_error_body() {
        let response = ApiError::from(StoreError("disk full".into())).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "1");
        let response = ApiError::from(crate::service::Error::KeyNotFound).into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(response.headers().get("retry-after").is_none());
    }

    #[test]
    fn version_2_refusals_are_409_with_their_extras() {
        use slotgate_core::types::{BlockedReason, CallType};
        let e = ApiError::from(slotgate_core::Error::CapBelowReservation {
            call_type: Some(CallType::Chat),
            lowest: 3,
        });
        assert_eq!(
            (e.code(), e.0.reserved),
            (ErrorCode::CapBelowReservation, Some(3))
        );
        assert!(e.0.message.contains("chat cap"), "{}", e.0.message);
        assert_eq!(e.into_response().status(), StatusCode::CONFLICT);
        let e = ApiError::from(slotgate_core::Error::CallBlocked {
            reason: BlockedReason::NoSharedCapacity,
        });
        assert_eq!(
            (e.code(), e.0.blocked),
            (
                ErrorCode::CallBlocked,
                Some(BlockedReason::NoSharedCapacity)
            )
        );
        assert_eq!(e.into_response().status(), StatusCode::CONFLICT);
    }
}
