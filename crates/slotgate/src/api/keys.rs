//! Org keys: create (the secret is shown once), list, revoke.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use slotgate_api::{CreateKey, KeyInfo, KeyList, NewKey, UpdateKey};

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, Auth};
use super::json::Json;
use super::query::{ApiQuery, PageQuery};
use crate::service::Service;

/// Create an org key (operator or org admin).
#[utoipa::path(post, path = "/v1/orgs/{org}/keys", operation_id = "create_key", request_body = CreateKey,
    responses((status = 201, body = NewKey), (status = 403, description = "forbidden: operator or org admin only")))]
pub async fn create(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.create_key(&p, &org, body).await?),
    ))
}

/// List an org's keys (no secrets).
#[utoipa::path(get, path = "/v1/orgs/{org}/keys", operation_id = "list_keys", params(PageQuery),
    responses((status = 200, body = KeyList), (status = 403, description = "forbidden: operator or org admin only")))]
pub async fn list(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<KeyList>, ApiError> {
    Ok(Json(s.keys(&p, &org, q.page()).await?))
}

/// Change a key: its own rate limit (operator only).
#[utoipa::path(patch, path = "/v1/orgs/{org}/keys/{id}", operation_id = "update_key", request_body = UpdateKey,
    responses((status = 200, body = KeyInfo), (status = 403, description = "forbidden: the operator key only"),
              (status = 404, description = "key_not_found")))]
pub async fn update(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath((org, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UpdateKey>,
) -> Result<Json<KeyInfo>, ApiError> {
    Ok(Json(s.update_key(&p, &org, &id, body).await?))
}

/// Revoke a key: it stops working at once.
#[utoipa::path(delete, path = "/v1/orgs/{org}/keys/{id}", operation_id = "revoke_key",
    responses((status = 204, description = "revoked"), (status = 403, description = "forbidden: operator or org admin only"),
              (status = 404, description = "key_not_found")))]
pub async fn revoke(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath((org, id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.revoke_key(&p, &org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
