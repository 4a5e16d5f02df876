//! Calls: acquire (with an optional wait), read (with an optional wait), heartbeat, release, list.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use slotgate_api::{AcquireCall, Call, CallList, CallState, Heartbeat};

use super::error::ApiError;
use super::extract::{only_params, query_param, ApiJson, Auth};
use super::page_param;
use crate::service::{Admission, CallFilter, Service};

/// Acquire a slot for a call: 201 active, 202 queued, 200 existing.
#[utoipa::path(post, path = "/v1/orgs/{org}/calls", request_body = AcquireCall,
    responses((status = 201, body = Call), (status = 202, body = Call), (status = 200, body = Call),
              (status = 409, description = "call_id_conflict"), (status = 429, description = "queue_full")))]
pub async fn acquire(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    Path(org): Path<String>,
    ApiJson(body): ApiJson<AcquireCall>,
) -> Result<(StatusCode, Json<Call>), ApiError> {
    let (admission, call) = s.acquire(&p, &org, body).await?;
    let status = match admission {
        Admission::Admitted => StatusCode::CREATED,
        Admission::Queued => StatusCode::ACCEPTED,
        Admission::Existing => StatusCode::OK,
    };
    Ok((status, Json(call)))
}

/// Read a call; with `wait_s`, block while it is queued (the wait holds it).
#[utoipa::path(get, path = "/v1/orgs/{org}/calls/{id}", params(("wait_s" = Option<f64>, Query, description = "block up to this many seconds while queued")),
    responses((status = 200, body = Call), (status = 404, description = "call_not_found")))]
pub async fn get(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    Path((org, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Call>, ApiError> {
    only_params(&q, &["wait_s"])?;
    let wait_s = query_param::<f64>(&q, "wait_s")?;
    Ok(Json(s.call(&p, &org, &id, wait_s).await?))
}

/// Renew a call's lease (or a queued call's hold). 410 if it ended.
#[utoipa::path(post, path = "/v1/orgs/{org}/calls/{id}/heartbeat", request_body = Heartbeat,
    responses((status = 200, body = Call), (status = 410, description = "call_ended, with the call"), (status = 404, description = "call_not_found")))]
pub async fn heartbeat(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    Path((org, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Heartbeat>,
) -> Result<Json<Call>, ApiError> {
    Ok(Json(s.heartbeat(&p, &org, &id, body).await?))
}

/// End a call: `released` if active, `cancelled` if queued; an ended call answers as it ended.
#[utoipa::path(delete, path = "/v1/orgs/{org}/calls/{id}", responses((status = 200, body = Call), (status = 404, description = "call_not_found")))]
pub async fn release(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<Call>, ApiError> {
    Ok(Json(s.release(&p, &org, &id).await?))
}

/// List live calls, optionally by state and agent.
#[utoipa::path(get, path = "/v1/orgs/{org}/calls",
    params(("state" = Option<String>, Query, description = "active or queued"), ("agent" = Option<String>, Query, description = "an agent id"),
           ("limit" = Option<usize>, Query, description = "page size, default 1000, at most 10000"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = CallList)))]
pub async fn list(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    Path(org): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<CallList>, ApiError> {
    let page = page_param(&q, &["state", "agent"])?;
    let state = match q.get("state").map(|s| s.parse::<CallState>()).transpose()? {
        Some(CallState::Ended) => {
            return Err(ApiError::invalid(
                "state",
                "must be active or queued, got \"ended\" (ended calls are not listed)",
            ))
        }
        state => state,
    };
    let filter = CallFilter {
        state,
        agent: q.get("agent").cloned(),
    };
    Ok(Json(s.calls(&p, &org, filter, page).await?))
}
