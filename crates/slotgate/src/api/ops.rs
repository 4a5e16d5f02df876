//! Operations: health, metrics, the OpenAPI document, the dashboard page.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::Json;
use utoipa::OpenApi;

use crate::state::Shared;

/// 200 once the server is serving.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "serving")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text exposition")))]
pub async fn metrics(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    let text = s.read(|e| s.metrics.render(e)).await.unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// This API, as OpenAPI 3, generated from the handlers.
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(super::ApiDoc::openapi())
}

/// The dashboard.
pub async fn dashboard() -> Html<&'static str> {
    Html(include_str!("../../assets/index.html"))
}
