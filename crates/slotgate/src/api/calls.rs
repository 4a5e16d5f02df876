//! Calls: acquire (with an optional wait), read (with an optional wait), heartbeat, release, list.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use slotgate_api::{limits, AcquireCall, Call, CallList, Heartbeat};

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, Auth, OptionalJson};
use super::json::Json;
use super::query::{ApiQuery, CallListQuery, WaitQuery};
use crate::service::{Admission, CallFilter, Service};

/// Acquire a slot for a call: 201 active, 202 queued, 200 existing.
#[utoipa::path(post, path = "/v1/orgs/{org}/calls", operation_id = "acquire_call", request_body = AcquireCall,
    responses((status = 201, body = Call, description = "admitted"), (status = 202, body = Call, description = "queued, with its position"),
              (status = 200, body = Call, description = "the id exists with this agent and type: its current state"),
              (status = 409, description = "call_id_conflict: the id exists with another agent or type; call_blocked: the call would wait blocked and `if_blocked` is `refuse` (nothing queued), with the reason as `blocked`"),
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
    params(WaitQuery),
    responses((status = 200, body = Call), (status = 404, description = "call_not_found")))]
pub async fn get(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath((org, id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> Result<Json<Call>, ApiError> {
    Ok(Json(s.call(&p, &org, &id, q.wait_s).await?))
}

/// Renew a call's lease (or a queued call's hold). 410 if it ended.
#[utoipa::path(post, path = "/v1/orgs/{org}/calls/{id}/heartbeat", operation_id = "heartbeat_call", request_body = Option<Heartbeat>,
    responses((status = 200, body = Call), (status = 410, description = "call_ended, with the call as it ended under `call`"),
              (status = 404, description = "call_not_found")))]
pub async fn heartbeat(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath((org, id)): ApiPath<(String, String)>,
    OptionalJson(body): OptionalJson<Heartbeat>,
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
    params(CallListQuery),
    responses((status = 200, body = CallList)))]
pub async fn list(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
    ApiQuery(q): ApiQuery<CallListQuery>,
) -> Result<Json<CallList>, ApiError> {
    if let Some(agent) = &q.agent {
        limits::check_id("agent", agent)?;
    }
    let page = q.page();
    let filter = CallFilter {
        state: q.state.map(Into::into),
        agent: q.agent,
    };
    Ok(Json(s.calls(&p, &org, filter, page).await?))
}
