//! The HTTP API of API.md: routes, paging, middleware, the OpenAPI document.
//!
//! Handlers only authenticate, parse, call one use case of the
//! [`Service`] and map its answer. They live by resource: `api/orgs.rs`
//! (orgs, limits, reservations), `api/calls.rs`, `api/keys.rs`,
//! `api/events.rs`, `api/planning.rs` (traffic, plan, simulate), `api/plans.rs` (plans, an org's plan), `api/usage.rs` (usage by hour), `api/ops.rs` (health, metrics, OpenAPI, dashboard).
//! Each route is declared once, below, with its handler's OpenAPI
//! operation ([`routes`]); `api/openapi.rs` completes the document they make.
//! `api/extract.rs` and `api/query.rs` read bodies, paths, keys and query
//! strings; `api/limits.rs` holds callers to their rates and long-polls to their cap; `api/headers.rs` sets the security headers every answer carries.
//! Errors become HTTP in `api/error.rs` only; `api/json.rs` writes every JSON answer.

pub mod calls;
pub mod error;
pub mod events;
pub mod extract;
pub mod forward;
pub mod headers;
pub mod json;
pub mod keys;
pub mod limits;
pub mod openapi;
pub mod ops;
pub mod orgs;
pub mod planning;
pub mod plans;
pub mod query;
pub mod usage;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use slotgate_api::ErrorCode;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::error::{ApiError, Refused};
pub use self::openapi::ApiDoc;
use crate::service::Service;

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The whole application, ready to serve.
///
/// What concerns every answer alike (the body limit, panics as 500s, the
/// security headers, forwarding to the leading replica) wraps the router
/// once, from outside. `Router::layer`
/// would wrap each route on its own instead, and axum then clones a route's
/// whole stack of boxed layers at each of its levels on every request: with
/// these three among them, about 28 allocations per request. Only `track`,
/// which needs the route the request matched, is a route layer.
pub fn router(state: Arc<Service>) -> impl crate::connections::App {
    let (routes, _) = routes().split_for_parts();
    let routes = routes
        .route("/", get(ops::dashboard))
        .route("/assets/{file}", get(ops::asset))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state.clone());
    ServiceBuilder::new()
        .layer_fn(headers::Secured)
        .layer(CatchPanicLayer::custom(panicked))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limits::cap_waits,
        ))
        .layer_fn(|inner| forward::Forward::new(inner, state.clone()))
        .service(routes)
}

/// Every operation of the API, each declared once: its route, its handler
/// and its OpenAPI operation (the handler's `#[utoipa::path]`) come from the
/// same line, so the document and the server cannot disagree on what exists.
/// Handlers of one path share a line.
pub fn routes() -> OpenApiRouter<Arc<Service>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(orgs::create, orgs::list))
        .routes(routes!(orgs::get))
        .routes(routes!(orgs::set_limit))
        .routes(routes!(orgs::set_burst))
        .routes(routes!(orgs::rate, orgs::set_rate))
        .routes(routes!(orgs::history))
        .routes(routes!(usage::usage))
        .routes(routes!(orgs::agent))
        .routes(routes!(orgs::reserve, orgs::unreserve))
        .routes(routes!(orgs::set_caps))
        .routes(routes!(plans::list, plans::create))
        .routes(routes!(plans::get, plans::update, plans::delete))
        .routes(routes!(plans::events))
        .routes(routes!(plans::set_org_plan))
        .routes(routes!(calls::acquire, calls::list))
        .routes(routes!(calls::get, calls::release))
        .routes(routes!(calls::heartbeat))
        .routes(routes!(keys::create, keys::list))
        .routes(routes!(keys::revoke, keys::update))
        .routes(routes!(events::list))
        .routes(routes!(events::stream))
        .routes(routes!(planning::traffic))
        .routes(routes!(planning::plan))
        .routes(routes!(planning::simulate))
        .routes(routes!(ops::openapi))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::metrics))
}

/// The private metrics listener's routes (`serve --metrics-listen`):
/// `GET /metrics` with every org's series and no key asked, for an address
/// only Prometheus reaches, and `GET /healthz` for the same probe. Nothing
/// else is served there; each replica answers for itself, as on the main
/// listener.
pub fn metrics_router(state: Arc<Service>) -> impl crate::connections::App {
    let routes = axum::Router::new()
        .route("/metrics", get(ops::private_metrics))
        .route("/healthz", get(ops::healthz))
        .fallback(not_found_here)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    ServiceBuilder::new()
        .layer_fn(headers::Secured)
        .layer(CatchPanicLayer::custom(panicked))
        .service(routes)
}

async fn not_found_here() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "this is the metrics listener (--metrics-listen): only /metrics and /healthz are here",
    )
}

async fn not_found() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "no such endpoint; see /v1/openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this endpoint does not take this method; see /v1/openapi.json",
    )
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("a request handler panicked").into_response()
}

/// Records latency per route and counts refusals.
async fn track(State(s): State<Arc<Service>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| {
            format!("{} {}", req.method(), p.as_str())
        });
    // Only the debug line below names the org: no copy of it otherwise.
    let org = tracing::enabled!(tracing::Level::DEBUG)
        .then(|| {
            req.uri()
                .path()
                .strip_prefix("/v1/orgs/")
                .and_then(|rest| rest.split('/').next())
                .map(str::to_string)
        })
        .flatten();
    let start = Instant::now();
    let response = next.run(req).await;
    let took = start.elapsed();
    s.metrics().request(&route, took);
    if let Some(Refused(code)) = response.extensions().get::<Refused>() {
        s.metrics().refused(code.as_str());
    }
    // Faults of the server are logged where they happen (warn/error); every
    // request, at debug. No header, so no key material.
    tracing::debug!(
        route,
        status = response.status().as_u16(),
        latency_ms = took.as_secs_f64() * 1000.0,
        org = org.as_deref().unwrap_or("-"),
        "request"
    );
    response
}
