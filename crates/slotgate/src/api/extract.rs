//! Request extractors that answer in the API's error shape: JSON bodies, keys, ids.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use slotgate_api::ErrorCode;

use super::error::ApiError;
use crate::auth::Principal;
use crate::service::Service;

/// A JSON body. Malformed JSON, unknown fields, wrong types and out-of-range
/// numbers are 400 `invalid_request` naming the field; an empty body reads as `{}`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::PayloadTooLarge, e.body_text())
            } else {
                ApiError::invalid("body", e.body_text())
            }
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        match serde_path_to_error::deserialize(&mut *de) {
            // One JSON value and nothing after it.
            Ok(v) => match de.end() {
                Ok(()) => Ok(ApiJson(v)),
                Err(e) => Err(ApiError::invalid(
                    "body",
                    format!("unexpected data after the JSON value: {e}"),
                )),
            },
            Err(e) => {
                // Broken JSON is the body's fault; a bad value names its field.
                // serde_json reports a number too large for any type (`1e400`)
                // as a syntax error, but it is a bad value of the field it is in.
                let path = e.path().to_string();
                let out_of_range = e.inner().to_string().starts_with("number out of range");
                let broken = (e.inner().is_syntax() && !out_of_range) || e.inner().is_eof();
                let field = if broken || path == "." || path.contains('?') {
                    "body".to_string()
                } else {
                    path
                };
                Err(ApiError::invalid(&field, e.into_inner()))
            }
        }
    }
}

/// The caller, from `Authorization: Bearer <key>`; 401 if missing or unknown.
#[derive(Debug)]
pub struct Auth(pub Principal);

impl FromRequestParts<Arc<Service>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<Service>) -> Result<Self, ApiError> {
        caller(&parts.headers, state)
            .map(Auth)
            .ok_or_else(ApiError::unauthorized)
    }
}

/// Who sends these headers' `Authorization: Bearer <key>`, if anybody.
pub fn caller(headers: &axum::http::HeaderMap, service: &Service) -> Option<Principal> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))?;
    service.authenticate(token.trim())
}

/// Parses a query parameter, naming it on failure.
pub fn query_param<T: std::str::FromStr>(
    q: &std::collections::HashMap<String, String>,
    name: &str,
) -> Result<Option<T>, ApiError>
where
    T::Err: std::fmt::Display,
{
    q.get(name)
        .map(|v| {
            v.parse::<T>()
                .map_err(|e| ApiError::invalid(name, format!("{e} (got {v:?})")))
        })
        .transpose()
}

/// Refuses query parameters the endpoint does not know.
pub fn only_params(
    q: &std::collections::HashMap<String, String>,
    known: &[&str],
) -> Result<(), ApiError> {
    match q.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid(
            k,
            format!(
                "unknown parameter; this endpoint takes {}",
                known.join(", ")
            ),
        )),
        None => Ok(()),
    }
}
