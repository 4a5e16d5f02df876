//! Request extractors that answer in the API's error shape: JSON bodies,
//! path parameters, keys (query strings: `query.rs`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use slotgate_api::ErrorCode;

use super::error::ApiError;
use crate::auth::Principal;
use crate::service::Service;

/// A JSON body the operation requires. Malformed JSON, unknown fields,
/// wrong types and out-of-range numbers are 400 `invalid_request` naming the
/// field; so is an empty body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::invalid(
                "body",
                "is empty; this operation takes a JSON object",
            ));
        }
        read_json(&bytes).map(ApiJson)
    }
}

/// A JSON body the operation may go without: an empty body reads as `T`'s
/// default, anything else (whitespace alone too, which is no JSON) as
/// [`ApiJson`] reads it.
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        if bytes.is_empty() {
            return Ok(OptionalJson(T::default()));
        }
        read_json(&bytes).map(OptionalJson)
    }
}

/// The whole body, within the size limit.
async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::PayloadTooLarge, e.body_text())
        } else {
            ApiError::invalid("body", e.body_text())
        }
    })
}

/// One JSON object and nothing after it, as a `T`. (serde would also read
/// a struct from a list of its fields' values: every body is an object.)
fn read_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.trim_ascii_start().first() == Some(&b'[') {
        return Err(ApiError::invalid(
            "body",
            "must be a JSON object, got a list",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut *de) {
        Ok(v) => match de.end() {
            Ok(()) => Ok(v),
            Err(e) => Err(not_json(format!(
                "unexpected data after the JSON value: {e}"
            ))),
        },
        Err(e) => {
            // Broken JSON is the body's fault; a bad value names its field.
            // serde_json reports a number too large for any type (`1e400`)
            // as a syntax error, but it is a bad value of the field it is in.
            let path = e.path().to_string();
            let out_of_range = e.inner().to_string().starts_with("number out of range");
            if (e.inner().is_syntax() && !out_of_range) || e.inner().is_eof() {
                return Err(not_json(e.into_inner()));
            }
            let field = if path == "." || path.contains('?') {
                "body".to_string()
            } else {
                path
            };
            Err(ApiError::invalid(&field, in_api_words(&e.into_inner())))
        }
    }
}

/// 400 for a body that is not JSON at all.
fn not_json(detail: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequest,
        format!("the body is not JSON: {detail}"),
    )
}

/// A JSON error in the API's words: `must be a whole number, got "20"`, not
/// serde's `invalid type: string "20", expected u32`.
pub fn in_api_words(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    // Drop serde_json's " at line 1 column 14": the field is named already.
    let text = text.split(" at line ").next().unwrap_or(&text);
    let Some(rest) = text
        .strip_prefix("invalid type: ")
        .or_else(|| text.strip_prefix("invalid value: "))
    else {
        return text.replace("u32", "whole number").replace("f64", "number");
    };
    let Some((got, expected)) = rest.split_once(", expected ") else {
        return text.to_string();
    };
    let wanted = match expected {
        "u32" | "u64" | "usize" => "a whole number",
        "f64" | "f32" => "a number",
        "a string" => "a string",
        e if e.starts_with("struct") || e.starts_with("a map") => "an object",
        e if e.starts_with("a sequence") => "a list",
        "a boolean" => "true or false",
        other => other,
    };
    let got = got
        .trim_start_matches("string ")
        .trim_start_matches("integer ")
        .trim_start_matches("floating point ")
        .trim_matches('`');
    format!("must be {wanted}, got {got}")
}

/// Path parameters. One that is not UTF-8 once percent-decoded is 400
/// `invalid_request` in the API's error body, like any other bad field.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(ApiPath(v)),
            Err(e) => Err(ApiError::invalid("path", e.body_text())),
        }
    }
}

/// The caller, from `Authorization: Bearer <key>`; 401 if missing or
/// unknown, 429 over its rate or after too many failures from its address
/// ([`super::limits::authorize`]).
#[derive(Debug)]
pub struct Auth(pub Principal);

impl FromRequestParts<Arc<Service>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<Service>) -> Result<Self, ApiError> {
        super::limits::authorize(parts, state).map(Auth)
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

#[cfg(test)]
mod tests {
    use super::in_api_words;

    #[test]
    fn json_errors_are_said_in_the_apis_words() {
        let said = |json: &str| {
            in_api_words(&serde_json::from_str::<slotgate_api::CreateOrg>(json).unwrap_err())
        };
        assert_eq!(
            said(r#"{"id": "a", "limit": "20"}"#),
            r#"must be a whole number 0 to 1000000, got "20""#
        );
        assert_eq!(
            said(r#"{"id": "a", "limit": -1}"#),
            "must be 0 to 1000000, got -1"
        );
        assert_eq!(said(r#"{"id": 7, "limit": 1}"#), "must be a string, got 7");
    }
}
