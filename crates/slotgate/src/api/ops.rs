//! Operations: health, metrics, the OpenAPI document, the dashboard page.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::Json;
use utoipa::OpenApi;

use super::error::ApiError;
use crate::auth::Principal;
use crate::state::Shared;

/// 200 once the server is serving.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "serving")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Prometheus metrics; with `--metrics-auth`, for the operator key only.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text exposition"), (status = 401, description = "with --metrics-auth, no operator key")))]
pub async fn metrics(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if s.metrics_auth {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !matches!(
            token.and_then(|t| s.keys.authenticate(t.trim())),
            Some(Principal::Operator)
        ) {
            return Err(ApiError::unauthorized());
        }
    }
    let text = s.read(|e| s.metrics.render(e)).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

/// This API, as OpenAPI 3, generated from the handlers.
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(super::ApiDoc::openapi())
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
        "app.css" => (
            include_str!("../../assets/app.css"),
            "text/css; charset=utf-8",
        ),
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such asset",
            ))
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    ))
}
