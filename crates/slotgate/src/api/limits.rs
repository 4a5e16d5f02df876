//! The caller limits over HTTP (`limits.rs` keeps them): each key's rate,
//! each org's, and throttled failed authentication, checked where the key is read
//! ([`authorize`]), and the cap on open long-polls and event streams
//! ([`cap_waits`]), with the answers a client sees above them.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use http_body_util::BodyExt as _;
use slotgate_api::ErrorCode;

use super::error::ApiError;
use super::extract::caller;
use crate::auth::Principal;
use crate::limits::{ForwardedClient, Over, Throttled};
use crate::service::Service;

/// The caller of a request, once its key is known and within its rate.
///
/// - The client's address (the peer's, or from `X-Forwarded-For` when the
///   peer is a `--trusted-proxy`, or the one a follower that proved the
///   replicas' secret forwarded the request from) that failed to authenticate too often
///   lately is answered 429 `rate_limited`, whatever key it sends now.
/// - No key or an unknown key: 401, counted against the address.
/// - A key over its rate, or the keys of its org over the org's
///   (`--rate-org`): 429 `rate_limited`; nothing was done.
pub fn authorize(parts: &Parts, s: &Service) -> Result<Principal, ApiError> {
    let limits = s.limits();
    let forwarded = parts.extensions.get::<ForwardedClient>();
    let client = forwarded.map(|f| f.0).or_else(|| {
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| limits.client(*peer, &parts.headers))
    });
    if let Some(ip) = client {
        limits.may_authenticate(ip).map_err(|t| {
            rate_limited(
                t,
                "too many failed authentications from this address; wait before trying again",
            )
        })?;
    }
    let Some(principal) = caller(&parts.headers, s) else {
        if let Some(ip) = client {
            limits.failed_authentication(ip).map_err(|t| {
                rate_limited(
                    t,
                    "too many failed authentications from this address; wait before trying again",
                )
            })?;
        }
        return Err(ApiError::unauthorized());
    };
    let rate = s.rate_of(&principal);
    limits.admit(&principal, rate).map_err(|t| {
        let message = match (t.over, &principal) {
            (Over::Org, Principal::Org { org, .. }) => format!(
                "the keys of this org may send {} requests per second together; nothing was done",
                limits.org_rate(org)
            ),
            _ => format!("this key may send {rate} requests per second; nothing was done"),
        };
        rate_limited(t, message)
    })?;
    Ok(principal)
}

/// 429 `rate_limited` with `Retry-After` in seconds.
fn rate_limited(t: Throttled, message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::RateLimited, message).retry_after(t.retry_after_s())
}

/// Is this request a long-poll (`wait_s` above 0 on a call or on the
/// events) or an event stream?
fn waits(req: &Request) -> bool {
    if req.method() != Method::GET {
        return false;
    }
    let path = req.uri().path();
    if !path.starts_with("/v1/orgs/") {
        return false;
    }
    if path.ends_with("/events/stream") {
        return true;
    }
    let query = req.uri().query().unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .any(|(k, v)| k == "wait_s" && v.trim().parse::<f64>().is_ok_and(|w| w > 0.0))
}

/// Holds a place among the open long-polls and event streams for as long
/// as the answer lasts (to the end of a stream); above `--max-waits`,
/// 503 `too_many_waits` naming the cap, with `Retry-After`.
pub async fn cap_waits(State(s): State<Arc<Service>>, req: Request, next: Next) -> Response {
    if !waits(&req) {
        return next.run(req).await;
    }
    let Some(place) = s.limits().wait() else {
        let cap = s.limits().settings().max_waits;
        return ApiError::new(
            ErrorCode::TooManyWaits,
            format!(
                "this server holds {cap} long-polls and event streams at most (--max-waits), and all are open: retry later, or read without wait_s"
            ),
        )
        .with_cap(cap)
        .retry_after(1)
        .into_response();
    };
    next.run(req).await.map(|body| {
        Body::new(body.map_frame(move |frame| {
            let _ = &place;
            frame
        }))
    })
}
