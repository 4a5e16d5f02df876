//! Orgs, limits and reservations.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use slotgate_core::{AgentId, OrgId, Reservations};

use super::error::ApiError;
use super::extract::{ApiJson, Auth};
use super::{page, Page};
use crate::auth::{Action, Principal};
use crate::state::Shared;
use crate::wire;

/// `POST /v1/orgs` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    /// The new org's id.
    pub id: String,
    /// Its concurrency limit, 0 to 1,000,000.
    pub limit: u32,
}

/// `PUT /v1/orgs/{org}/limit` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetLimit {
    /// The new limit; not below the sum of reservations.
    pub limit: u32,
}

/// `PUT .../reservations` body; a missing type means 0.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetReservations {
    /// Reserved browser voice calls.
    #[serde(default)]
    pub webcall: u32,
    /// Reserved chats.
    #[serde(default)]
    pub chat: u32,
    /// Reserved outbound telephony calls.
    #[serde(default)]
    pub outbound: u32,
    /// Reserved inbound telephony calls.
    #[serde(default)]
    pub inbound: u32,
}

/// `GET /v1/orgs` answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct OrgList {
    /// The orgs, by id.
    pub orgs: Vec<wire::Org>,
    /// The cursor of the next page, null on the last.
    pub next_cursor: Option<String>,
}

fn operator_only(p: &Principal) -> Result<(), ApiError> {
    match p {
        Principal::Operator => Ok(()),
        Principal::Org { .. } => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only the operator key may do this",
        )),
    }
}

/// Parses an org id from the path.
pub fn org_id(org: &str) -> Result<OrgId, ApiError> {
    OrgId::new(org).map_err(ApiError::from)
}

fn agent_id(agent: &str) -> Result<AgentId, ApiError> {
    AgentId::new(agent).map_err(ApiError::from)
}

/// Create an org (operator).
#[utoipa::path(post, path = "/v1/orgs", request_body = CreateOrg,
    responses((status = 201, body = wire::Org), (status = 409, description = "org_exists")))]
pub async fn create(
    State(s): State<Arc<Shared>>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreateOrg>,
) -> Result<(StatusCode, Json<wire::Org>), ApiError> {
    operator_only(&p)?;
    // The body's field is `id`; the engine's error names the org.
    let id = OrgId::new(&body.id).map_err(|e| match e {
        slotgate_core::Error::Invalid { message, .. } => ApiError::invalid("id", message),
        other => other.into(),
    })?;
    let org = s
        .apply(Some(p.key_id()), |e, now| e.create_org(id, body.limit, now))
        .await??;
    Ok((StatusCode::CREATED, Json(wire::org(org))))
}

/// List orgs (operator).
#[utoipa::path(get, path = "/v1/orgs", responses((status = 200, body = OrgList)))]
pub async fn list(
    State(s): State<Arc<Shared>>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<OrgList>, ApiError> {
    operator_only(&p)?;
    let page_req = Page::parse(&q, &[])?;
    let orgs = s
        .read(|e| {
            let ids = e.org_ids();
            let (ids, next) = page(ids, &page_req);
            let orgs: Vec<wire::Org> = ids
                .iter()
                .filter_map(|id| e.org(id.as_str()).ok())
                .map(wire::org)
                .collect();
            (orgs, next)
        })
        .await?;
    Ok(Json(OrgList {
        orgs: orgs.0,
        next_cursor: orgs.1,
    }))
}

/// An org's concurrency snapshot.
#[utoipa::path(get, path = "/v1/orgs/{org}", responses((status = 200, body = wire::Org)))]
pub async fn get(
    State(s): State<Arc<Shared>>,
    Auth(p): Auth,
    Path(org): Path<String>,
) -> Result<Json<wire::Org>, ApiError> {
    p.check(&org, Action::Read)?;
    let view = s.read(|e| e.org(&org)).await??;
    Ok(Json(wire::org(view)))
}

/// Set an org's limit (operator).
#[utoipa::path(put, path = "/v1/orgs/{org}/limit", request_body = SetLimit,
    responses((status = 200, body = wire::Org), (status = 409, description = "limit_below_reservations")))]
pub async fn set_limit(
    State(s): State<Arc<Shared>>,
    Auth(p): Auth,
    Path(org): Path<String>,
    ApiJson(body): ApiJson<SetLimit>,
) -> Result<Json<wire::Org>, ApiError> {
    p.check(&org, Action::SetLimit)?;
    let view = s
        .apply(Some(p.key_id()), |e, now| {
            e.set_limit(&org, body.limit, now)
        })
        .await??;
    Ok(Json(wire::org(view)))
}

/// `GET /v1/orgs/{org}/history` answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct HistoryPage {
    /// Seconds between samples.
    pub interval_s: u64,
    /// Active and queued calls over the last 15 minutes, oldest first (since the server started).
    pub samples: Vec<crate::history::Sample>,
}

/// Active and queued calls of the last 15 minutes, for charts.
#[utoipa::path(get, path = "/v1/orgs/{org}/history", responses((status = 200, body = HistoryPage)))]
pub async fn history(
    State(s): State<Arc<Shared>>,
    Auth(p): Auth,
    Path(org): Path<String>,
) -> Result<Json<HistoryPage>, ApiError> {
    p.check(&org, Action::Read)?;
    s.read(|e| e.org(&org)).await??;
    Ok(Json(HistoryPage {
        interval_s: crate::history::INTERVAL.as_secs(),
        samples: s.history.of(&org),
    }))
}

/// One agent (zeros if never seen).
#[utoipa::path(get, path = "/v1/orgs/{org}/agents/{agent}", responses((status = 200, body = wire::Agent)))]
pub async fn agent(
    State(s): State<Arc<Shared>>,
    Auth(p): Auth,
    Path((org, agent)): Path<(String, String)>,
) -> Result<Json<wire::Agent>, ApiError> {
    p.check(&org, Action::Read)?;
    let agent = agent_id(&agent)?;
    let view = s.read(|e| e.agent(&org, &agent)).await??;
    Ok(Json(wire::agent(view)))
}

/// Set an agent's reservations.
#[utoipa::path(put, path = "/v1/orgs/{org}/agents/{agent}/reservations", request_body = SetReservations,
    responses((status = 200, body = wire::Agent), (status = 409, description = "reservations_exceed_limit")))]
pub async fn reserve(
    State(s): State<Arc<Shared>>,
    Auth(p): Auth,
    Path((org, agent)): Path<(String, String)>,
    ApiJson(body): ApiJson<SetReservations>,
) -> Result<Json<wire::Agent>, ApiError> {
    p.check(&org, Action::Configure)?;
    let agent = agent_id(&agent)?;
    let r = Reservations {
        webcall: body.webcall,
        chat: body.chat,
        outbound: body.outbound,
        inbound: body.inbound,
    };
    let view = s
        .apply(Some(p.key_id()), |e, now| {
            e.set_reservations(&org, &agent, r, now)
        })
        .await??;
    Ok(Json(wire::agent(view)))
}

/// Remove an agent's reservations: its slots return to the shared pool.
#[utoipa::path(delete, path = "/v1/orgs/{org}/agents/{agent}/reservations", responses((status = 200, body = wire::Agent)))]
pub async fn unreserve(
    State(s): State<Arc<Shared>>,
    Auth(p): Auth,
    Path((org, agent)): Path<(String, String)>,
) -> Result<Json<wire::Agent>, ApiError> {
    p.check(&org, Action::Configure)?;
    let agent = agent_id(&agent)?;
    let view = s
        .apply(Some(p.key_id()), |e, now| e.remove_agent(&org, &agent, now))
        .await??;
    Ok(Json(wire::agent(view)))
}
