//! Security headers on every answer: the dashboard holds an admin's key, so
//! its page may run only its own script and style, talk only to its own API
//! and never be framed; API answers are never cached.
//!
//! One middleware, [`security`], so each rule is stated once and applies to
//! every route, the fallbacks and the errors alike.

use axum::extract::Request;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// The dashboard's policy: its own scripts, styles and API (`'self'`), no
/// inline script or style, no plugins, no `<base>` tricks, forms only to
/// itself, and no framing (clickjacking of the Remove button).
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Sets the security headers: the policy, `nosniff`, `no-referrer` and, for
/// older browsers that ignore `frame-ancestors`, `X-Frame-Options: DENY` on
/// every answer; `Cache-Control: no-store` on API answers (`/v1/...`), which
/// carry org state and keys that must not sit in a cache.
pub async fn security(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let api = path == "/v1" || path.starts_with("/v1/");
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if api {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
