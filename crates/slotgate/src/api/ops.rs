//! Operations: health, metrics, the OpenAPI document, the dashboard page.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse};

use super::error::ApiError;
use super::extract::caller;
use super::json::Json;
use crate::auth::{Principal, Role};
use crate::metrics::Scope;
use crate::service::Service;
use slotgate_api::ErrorCode;

/// 200 once the server is serving (or, with several replicas, forwarding to
/// the one that leads); 503 while its store cannot commit.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz",
    responses((status = 200, description = "serving (`ok`), or forwarding every request to the leading replica (`ok: forwarding to URL, the leading replica`)", content_type = "text/plain", body = String),
              (status = 503, description = "store_unavailable: the store cannot commit, or the leading replica does not answer this follower; the server recovers by itself when it can", body = slotgate_api::ErrorBody)))]
pub async fn healthz(State(s): State<Arc<Service>>) -> Result<String, ApiError> {
    if let Some(leader) = s.leader() {
        return Ok(format!(
            "ok: forwarding to {}, the leading replica\n",
            leader.url
        ));
    }
    if !s.store_up() {
        return Err(ApiError::new(
            ErrorCode::StoreUnavailable,
            "the store cannot commit; the server recovers by itself when it can",
        ));
    }
    Ok("ok\n".to_string())
}

/// Prometheus metrics. Without a key, the server's own series only (no org
/// or agent names; with `--metrics-auth`, 401); with the operator key,
/// every org's; with an org's `metrics` key, that org's too. Other org keys
/// get 403.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
              (status = 401, description = "unauthorized: with --metrics-auth, no key", body = slotgate_api::ErrorBody),
              (status = 403, description = "forbidden: an org key whose role is not `metrics`", body = slotgate_api::ErrorBody),
              (status = 503, description = "store_unavailable", body = slotgate_api::ErrorBody)))]
pub async fn metrics(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let who = caller(&headers, &s);
    let scope = match &who {
        Some(Principal::Operator) => Scope::Everything,
        Some(Principal::Org {
            role: Role::Metrics,
            org,
            ..
        }) => Scope::Org(org.as_str()),
        Some(Principal::Org { .. }) => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "/metrics takes a key of the `metrics` role (or the operator key, or none for the server's own series)",
            ))
        }
        None if s.metrics_need_operator() => return Err(ApiError::unauthorized()),
        None => Scope::NoOrgs,
    };
    Ok(exposition(s.metrics_text(scope).await?))
}

/// `/metrics` on the private metrics listener (`serve --metrics-listen`):
/// every org's series, no key asked; the address is meant for a network
/// only Prometheus reaches.
pub async fn private_metrics(State(s): State<Arc<Service>>) -> Result<impl IntoResponse, ApiError> {
    Ok(exposition(s.metrics_text(Scope::Everything).await?))
}

/// A scrape's answer: Prometheus's text format.
fn exposition(text: String) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// This API, as OpenAPI 3, generated from the handlers.
#[utoipa::path(get, path = "/v1/openapi.json", operation_id = "openapi",
    responses((status = 200, description = "this document", content_type = "application/json", body = Object)))]
pub async fn openapi() -> Json<serde_json::Value> {
    Json(super::openapi::document())
}

/// The dashboard's page. Its assets are compiled into the binary.
pub async fn dashboard() -> Html<&'static str> {
    Html(include_str!("../../assets/index.html"))
}

/// The dashboard's script and style.
pub async fn asset(Path(file): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let (body, kind) = match file.as_str() {
        "app.js" => (
            include_str!("../../assets/app.js"),
            "text/javascript; charset=utf-8",
        ),
        "usage.js" => (
            include_str!("../../assets/usage.js"),
            "text/javascript; charset=utf-8",
        ),
        "app.css" => (
            include_str!("../../assets/app.css"),
            "text/css; charset=utf-8",
        ),
        _ => return Err(ApiError::new(ErrorCode::NotFound, "no such asset")),
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    ))
}
