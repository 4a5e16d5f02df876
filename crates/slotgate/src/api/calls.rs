//! Calls: acquire (with an optional wait), read (with an optional wait), heartbeat, release, list.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use slotgate_core::{
    AcquireRequest, Acquired, AgentId, CallId, CallState, CallType, CallView, OrgId, WaitToken,
};

use super::error::ApiError;
use super::extract::{only_params, query_param, seconds, ApiJson, Auth};
use super::orgs::org_id;
use super::{page, Page};
use crate::auth::{random_hex, Action};
use crate::state::Shared;
use crate::wire;

/// The longest a request may block waiting for admission.
const MAX_WAIT_S: f64 = 60.0;

/// `POST /v1/orgs/{org}/calls` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Acquire {
    /// The call's id; give one to retry safely. Made up by the server if absent.
    pub id: Option<String>,
    /// The agent the call is for.
    pub agent: String,
    /// `webcall`, `chat`, `outbound` or `inbound`.
    #[serde(rename = "type")]
    pub call_type: String,
    /// Lease length, 5 to 3600 s (default 60), renewed by heartbeats.
    pub lease_ttl_s: Option<f64>,
    /// Longest time to wait in the queue before ending `timed_out`.
    pub max_wait_s: Option<f64>,
    /// How long this request may block for admission, 0 to 60 s (default 0).
    pub wait_s: Option<f64>,
}

/// `POST .../heartbeat` body (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// A new lease length, 5 to 3600 s.
    pub lease_ttl_s: Option<f64>,
}

/// `GET /v1/orgs/{org}/calls` answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CallList {
    /// Active calls (oldest admission first), then queued calls in queue order.
    pub calls: Vec<wire::Call>,
    /// The cursor of the next page, null on the last.
    pub next_cursor: Option<String>,
}

/// Acquire a slot for a call: 201 active, 202 queued, 200 existing.
#[utoipa::path(post, path = "/v1/orgs/{org}/calls", request_body = Acquire,
    responses((status = 201, body = wire::Call), (status = 202, body = wire::Call), (status = 200, body = wire::Call),
              (status = 409, description = "call_id_conflict"), (status = 429, description = "queue_full")))]
pub async fn acquire(
    State(s): State<Arc<Shared>>,
    Auth(p): Auth,
    Path(org): Path<String>,
    ApiJson(body): ApiJson<Acquire>,
) -> Result<(StatusCode, Json<wire::Call>), ApiError> {
    p.check(&org, Action::Calls)?;
    let id = match &body.id {
        Some(id) => CallId::new(id)?,
        None => CallId::new(&format!("call_{}", random_hex(12)))?,
    };
    let mut req = AcquireRequest::new(
        id,
        AgentId::new(&body.agent)?,
        body.call_type.parse::<CallType>()?,
    );
    if let Some(ttl) = body.lease_ttl_s {
        req.lease_ttl = seconds("lease_ttl_s", ttl, 5.0, 3600.0)?;
    }
    if let Some(w) = body.max_wait_s {
        req.max_wait = Some(seconds(
            "max_wait_s",
            w,
            0.001,
            slotgate_core::MAX_MAX_WAIT.as_secs_f64(),
        )?);
    }
    let wait = seconds("wait_s", body.wait_s.unwrap_or(0.0), 0.0, MAX_WAIT_S)?;
    let outcome = s.apply(None, |e, now| e.acquire(&org, req, now)).await??;
    let (status, call) = match outcome {
        Acquired::Admitted(c) => (StatusCode::CREATED, c),
        Acquired::Queued(c) => (StatusCode::ACCEPTED, c),
        Acquired::Existing(c) => (StatusCode::OK, c),
    };
    if call.state != CallState::Queued || wait.is_zero() {
        return Ok((status, Json(wire::call(call))));
    }
    let call = wait_while_queued(&s, &org_id(&org)?, call.id, wait).await?;
    let status = match (status, call.state) {
        (StatusCode::ACCEPTED, CallState::Active) => StatusCode::CREATED,
        (status, _) => status,
    };
    Ok((status, Json(wire::call(call))))
}

/// An open wait on a call. If the request goes away first (the client hung
/// up), dropping this closes the wait, so the call's hold starts running and
/// an unheld call is abandoned in time.
struct OpenWait {
    s: Arc<Shared>,
    org: OrgId,
    call: CallId,
    /// The engine's token while the wait is open.
    open: Option<WaitToken>,
}

impl Drop for OpenWait {
    fn drop(&mut self) {
        if let Some(token) = self.open {
            let (s, org, call) = (self.s.clone(), self.org.clone(), self.call.clone());
            tokio::spawn(async move {
                let _ = s
                    .apply(None, |e, now| {
                        e.close_wait(org.as_str(), call.as_str(), token, now)
                    })
                    .await;
            });
        }
    }
}

/// Holds a queued call with an open wait until it leaves the queue or `wait` passes.
async fn wait_while_queued(
    s: &Arc<Shared>,
    org: &OrgId,
    call: CallId,
    wait: Duration,
) -> Result<CallView, ApiError> {
    let guard = s.waiters.register(org.clone(), call.clone());
    let notified = guard.notify.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let ran = s.run(None, |e, now| e.open_wait(org.as_str(), call.as_str(), now));
    let mut hold = OpenWait {
        s: s.clone(),
        org: org.clone(),
        call: call.clone(),
        open: ran.result.as_ref().ok().map(|(_, token)| *token),
    };
    s.store.durable(ran.ticket).await?;
    let (view, token) = ran.result?;
    if view.state == CallState::Queued {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = notified => {}
            _ = s.shutting_down() => {}
        }
    }
    // Close the wait whatever happened: it starts the call's hold if still queued.
    hold.open = None;
    let view = s
        .apply(None, |e, now| {
            e.close_wait(org.as_str(), call.as_str(), token, now)
        })
        .await??;
    Ok(view)
}

/// Read a call; with `wait_s`, block while it is queued (the wait holds it).
#[utoipa::path(get, path = "/v1/orgs/{org}/calls/{id}", params(("wait_s" = Option<f64>, Query, description = "block up to this many seconds while queued")),
    responses((status = 200, body = wire::Call), (status = 404, description = "call_not_found")))]
pub async fn get(
    State(s): State<Arc<Shared>>,
    Auth(p): Auth,
    Path((org, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<wire::Call>, ApiError> {
    p.check(&org, Action::Calls)?;
    only_params(&q, &["wait_s"])?;
    let wait = seconds(
        "wait_s",
        query_param::<f64>(&q, "wait_s")?.unwrap_or(0.0),
        0.0,
        MAX_WAIT_S,
    )?;
    let call = s.read(|e| e.call(&org, &id)).await??;
    if call.state != CallState::Queued || wait.is_zero() {
        return Ok(Json(wire::call(call)));
    }
    let call = wait_while_queued(&s, &org_id(&org)?, call.id, wait).await?;
    Ok(Json(wire::call(call)))
}

/// Renew a call's lease (or a queued call's hold). 410 if it ended.
#[utoipa::path(post, path = "/v1/orgs/{org}/calls/{id}/heartbeat", request_body = Heartbeat,
    responses((status = 200, body = wire::Call), (status = 410, description = "call_ended, with the call"), (status = 404, description = "call_not_found")))]
pub async fn heartbeat(
    State(s): State<Arc<Shared>>,
    Auth(p): Auth,
    Path((org, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Heartbeat>,
) -> Result<Json<wire::Call>, ApiError> {
    p.check(&org, Action::Calls)?;
    let ttl = body
        .lease_ttl_s
        .map(|t| seconds("lease_ttl_s", t, 5.0, 3600.0))
        .transpose()?;
    let call = s
        .apply(None, |e, now| e.heartbeat(&org, &id, ttl, now))
        .await??;
    Ok(Json(wire::call(call)))
}

/// End a call: `released` if active, `cancelled` if queued; an ended call answers as it ended.
#[utoipa::path(delete, path = "/v1/orgs/{org}/calls/{id}", responses((status = 200, body = wire::Call), (status = 404, description = "call_not_found")))]
pub async fn release(
    State(s): State<Arc<Shared>>,
    Auth(p): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<wire::Call>, ApiError> {
    p.check(&org, Action::Calls)?;
    let call = s.apply(None, |e, now| e.release(&org, &id, now)).await??;
    Ok(Json(wire::call(call)))
}

/// List live calls, optionally by state and agent.
#[utoipa::path(get, path = "/v1/orgs/{org}/calls",
    params(("state" = Option<String>, Query, description = "active or queued"), ("agent" = Option<String>, Query, description = "an agent id"),
           ("limit" = Option<usize>, Query, description = "page size, default 1000, at most 10000"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = CallList)))]
pub async fn list(
    State(s): State<Arc<Shared>>,
    Auth(p): Auth,
    Path(org): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<CallList>, ApiError> {
    p.check(&org, Action::Calls)?;
    let page_req = Page::parse(&q, &["state", "agent"])?;
    let state = match q.get("state").map(String::as_str) {
        None => None,
        Some("active") => Some(CallState::Active),
        Some("queued") => Some(CallState::Queued),
        Some(other) => {
            return Err(ApiError::invalid(
                "state",
                format!("must be active or queued, got {other:?}"),
            ))
        }
    };
    let agent = q.get("agent").map(|a| AgentId::new(a)).transpose()?;
    let (calls, next_cursor) = s
        .read(|e| -> Result<_, slotgate_core::Error> {
            let mut calls = Vec::new();
            if state != Some(CallState::Queued) {
                calls.extend(e.active_calls(&org)?);
            }
            if state != Some(CallState::Active) {
                calls.extend(e.queued_calls(&org)?);
            }
            calls.retain(|c| agent.as_ref().is_none_or(|a| &c.agent == a));
            Ok(page(calls, &page_req))
        })
        .await??;
    Ok(Json(CallList {
        calls: calls.into_iter().map(wire::call).collect(),
        next_cursor,
    }))
}
