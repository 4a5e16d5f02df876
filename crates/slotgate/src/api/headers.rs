//! Security headers on every answer: the dashboard holds an admin's key, so
//! its page may run only its own script and style, talk only to its own API
//! and never be framed; API answers are never cached.
//!
//! One service, [`Secured`], around the whole application, so each rule is
//! stated once and applies to every route, the fallbacks and the errors alike.
//! It is a plain service rather than a `from_fn` middleware: that one boxes
//! a future of about 1 kB and the rest of the stack for every request.

use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::response::Response;
use axum::BoxError;
use futures_util::future::{MapOk, TryFutureExt};

/// The dashboard's policy: its own scripts, styles and API (`'self'`), no
/// inline script or style, no plugins, no `<base>` tricks, forms only to
/// itself, and no framing (clickjacking of the Remove button).
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `S` with the security headers on its answers: the policy, `nosniff`,
/// `no-referrer` and, for older browsers that ignore `frame-ancestors`,
/// `X-Frame-Options: DENY` on every answer; `Cache-Control: no-store` on API
/// answers (`/v1/...`), which carry org state and keys that must not sit in
/// a cache.
#[derive(Debug, Clone)]
pub struct Secured<S>(pub S);

impl<S, B> tower::Service<Request> for Secured<S>
where
    S: tower::Service<Request, Response = axum::http::Response<B>>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = MapOk<S::Future, fn(axum::http::Response<B>) -> Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let path = req.uri().path();
        let secure: fn(axum::http::Response<B>) -> Response =
            if path == "/v1" || path.starts_with("/v1/") {
                api_answer
            } else {
                answer
            };
        self.0.call(req).map_ok(secure)
    }
}

/// Any answer, with the headers every answer carries.
fn answer<B>(response: axum::http::Response<B>) -> Response
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut response = response.map(Body::new);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// An API answer: never cached.
fn api_answer<B>(response: axum::http::Response<B>) -> Response
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut response = answer(response);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
