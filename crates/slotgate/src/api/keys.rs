//! Org keys: create (the secret is shown once), list, revoke.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use slotgate_core::ids::validate_id;

use super::error::ApiError;
use super::extract::{ApiJson, Auth};
use super::orgs::org_id;
use super::{page, Page};
use crate::auth::{new_key, Action, Role};
use crate::state::Shared;
use crate::store::Write;
use crate::wire;

/// `POST /v1/orgs/{org}/keys` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// `admin` or `runtime`.
    pub role: String,
    /// A name for people, 1 to 128 characters of `A-Z a-z 0-9 . _ : -`.
    pub name: String,
}

pub use slotgate_client::types::{KeyInfo, NewKey};

/// `GET .../keys` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    /// The org's keys, oldest first.
    pub keys: Vec<KeyInfo>,
    /// The cursor of the next page, null on the last.
    pub next_cursor: Option<String>,
}

/// Create an org key (operator or org admin).
#[utoipa::path(post, path = "/v1/orgs/{org}/keys", request_body = CreateKey, responses((status = 201, body = NewKey)))]
pub async fn create(
    State(s): State<Arc<Shared>>,
    Auth(p): Auth,
    Path(org): Path<String>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    p.check(&org, Action::Configure)?;
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::invalid(
            "role",
            format!("must be admin or runtime, got {:?}", body.role),
        )
    })?;
    validate_id("name", &body.name)?;
    s.read(|e| e.org(&org)).await??;
    let (record, secret) = new_key(org_id(&org)?, body.name, role, wire::now());
    s.write(Write::PutKey(record.clone())).await?;
    let answer = NewKey {
        id: record.id.clone(),
        name: record.name.clone(),
        role: role.as_str().into(),
        key: secret,
    };
    s.keys.insert(record);
    Ok((StatusCode::CREATED, Json(answer)))
}

/// List an org's keys (no secrets).
#[utoipa::path(get, path = "/v1/orgs/{org}/keys", responses((status = 200, body = KeyList)))]
pub async fn list(
    State(s): State<Arc<Shared>>,
    Auth(p): Auth,
    Path(org): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<KeyList>, ApiError> {
    p.check(&org, Action::Configure)?;
    let page_req = Page::parse(&q, &[])?;
    s.read(|e| e.org(&org)).await??;
    let keys = s.keys.of_org(&org).into_iter().map(|k| KeyInfo {
        id: k.id,
        name: k.name,
        role: k.role.as_str().into(),
        created_at: Some(wire::rfc3339(k.created_at)),
    });
    let (keys, next_cursor) = page(keys.collect(), &page_req);
    Ok(Json(KeyList { keys, next_cursor }))
}

/// Revoke a key: it stops working at once.
#[utoipa::path(delete, path = "/v1/orgs/{org}/keys/{id}", responses((status = 204), (status = 404, description = "key_not_found")))]
pub async fn revoke(
    State(s): State<Arc<Shared>>,
    Auth(p): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    p.check(&org, Action::Configure)?;
    if !s.keys.contains(&org, &id) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "key_not_found",
            "no key with this id in this org",
        ));
    }
    s.write(Write::DeleteKey { id: id.clone() }).await?;
    s.keys.remove(&org, &id);
    Ok(StatusCode::NO_CONTENT)
}
