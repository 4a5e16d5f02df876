//! JSON answers: serialized once, straight into the body, ending with a
//! newline as text tools expect (`curl` output then ends its line).

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A JSON answer: `T` as JSON and a newline, `Content-Type: application/json`.
#[derive(Debug, Clone, Copy)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(256);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => {
                body.push(b'\n');
                let mut response = Response::new(Body::from(body));
                // Room at once for every header the answer gets (its type and
                // length, the security headers): the map then never grows.
                let headers = response.headers_mut();
                headers.reserve(8);
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            }
            // Only a map with non-string keys fails, and the API has none.
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("an answer failed to serialize: {e}\n"),
            )
                .into_response(),
        }
    }
}
