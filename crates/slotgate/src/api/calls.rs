//! Calls: acquire (with an optional wait), read (with an optional wait), heartbeat, release, list.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use slotgate_api::{AcquireCall, Call, CallList, CallState, Heartbeat};

use super::error::ApiError;
use super::extract::{only_params, query_param, ApiJson, ApiPath, Auth};
use super::json::Json;
use super::openapi::{ListedState, PageParams};
use super::page_param;
use crate::service::{Admission, CallFilter, Service};

/// Acquire a slot for a call: 201 active, 202 queued, 200 existing.
#[utoipa::path(post, path = "/v1/orgs/{org}/calls", operation_id = "acquire_call", request_body = AcquireCall,
    responses((status = 201, body = Call, description = "admitted"), (status = 202, body = Call, description = "queued, with its position"),
              (status = 200, body = Call, description = "the id exists with this agent and type: its current state"),
              (status = 409, description = "call_id_conflict: the id exists with another agent or type"),
              (status = 429, description = "queue_full: the org's queue is at its cap, with `cap`")))]
pub async fn acquire(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
    ApiJson(body): ApiJson<AcquireCall>,
) -> Result<(StatusCode, Json<Call>), ApiError> {
    let (admission, call) = s.acquire(&p, &org, body).await?;
    let status = match admission {
        Admission::Admitted => StatusCode::CREATED,
        Admission::Queued => StatusCode::ACCEPTED,
        // 202 means queued: a call that ended while it waited answers 200 with its end.
        Admission::Existing | Admission::EndedWhileWaiting => StatusCode::OK,
    };
    Ok((status, Json(call)))
}

/// Read a call; with `wait_s`, block while it is queued (the wait holds it).
#[utoipa::path(get, path = "/v1/orgs/{org}/calls/{id}", operation_id = "get_call",
    params(("wait_s" = Option<f64>, Query, minimum = 0, maximum = 60, description = "block up to this many seconds while queued (default 0)")),
    responses((status = 200, body = Call), (status = 404, description = "call_not_found")))]
pub async fn get(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath((org, id)): ApiPath<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Call>, ApiError> {
    only_params(&q, &["wait_s"])?;
    let wait_s = query_param::<f64>(&q, "wait_s")?;
    Ok(Json(s.call(&p, &org, &id, wait_s).await?))
}

/// Renew a call's lease (or a queued call's hold). 410 if it ended.
#[utoipa::path(post, path = "/v1/orgs/{org}/calls/{id}/heartbeat", operation_id = "heartbeat_call", request_body = Option<Heartbeat>,
    responses((status = 200, body = Call), (status = 410, description = "call_ended, with the call as it ended under `call`"),
              (status = 404, description = "call_not_found")))]
pub async fn heartbeat(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath((org, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<Heartbeat>,
) -> Result<Json<Call>, ApiError> {
    Ok(Json(s.heartbeat(&p, &org, &id, body).await?))
}

/// End a call: `released` if active, `cancelled` if queued; an ended call answers as it ended.
#[utoipa::path(delete, path = "/v1/orgs/{org}/calls/{id}", operation_id = "release_call",
    responses((status = 200, body = Call), (status = 404, description = "call_not_found")))]
pub async fn release(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath((org, id)): ApiPath<(String, String)>,
) -> Result<Json<Call>, ApiError> {
    Ok(Json(s.release(&p, &org, &id).await?))
}

/// List live calls, optionally by state and agent.
#[utoipa::path(get, path = "/v1/orgs/{org}/calls", operation_id = "list_calls",
    params(("state" = inline(Option<ListedState>), Query, description = "only active or only queued calls"),
           ("agent" = Option<String>, Query, pattern = r"^[A-Za-z0-9._:-]{1,128}$", description = "only this agent's calls"),
           PageParams),
    responses((status = 200, body = CallList)))]
pub async fn list(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
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
