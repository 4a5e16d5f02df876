//! Orgs, limits and reservations.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use slotgate_api::{
    Agent, CapsBody, CreateOrg, HistoryPage, Org, OrgList, OrgRate, ReservationsBody, SetBurst,
    SetLimit, SetOrgRate,
};

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, Auth};
use super::json::Json;
use super::query::{ApiQuery, PageQuery};
use crate::service::Service;

/// Create an org (operator).
#[utoipa::path(post, path = "/v1/orgs", operation_id = "create_org", request_body = CreateOrg,
    responses((status = 201, body = Org), (status = 403, description = "forbidden: operator only"),
              (status = 404, description = "plan_not_found: no plan of this id (`GET /v1/plans`)"),
              (status = 409, description = "org_exists: an org with this id exists")))]
pub async fn create(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreateOrg>,
) -> Result<(StatusCode, Json<Org>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.create_org(&p, body).await?)))
}

/// List orgs (operator).
#[utoipa::path(get, path = "/v1/orgs", operation_id = "list_orgs", params(PageQuery),
    responses((status = 200, body = OrgList), (status = 403, description = "forbidden: operator only")))]
pub async fn list(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<OrgList>, ApiError> {
    Ok(Json(s.orgs(&p, q.page()).await?))
}

/// An org's concurrency snapshot.
#[utoipa::path(get, path = "/v1/orgs/{org}", operation_id = "get_org", responses((status = 200, body = Org)))]
pub async fn get(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
) -> Result<Json<Org>, ApiError> {
    Ok(Json(s.org(&p, &org).await?))
}

/// Set an org's limit (operator).
#[utoipa::path(put, path = "/v1/orgs/{org}/limit", operation_id = "set_limit", request_body = SetLimit,
    responses((status = 200, body = Org), (status = 403, description = "forbidden: operator only"),
              (status = 409, description = "limit_below_reservations, with `reserved`; no_plan: null asks for the plan's limit, and the org is on no plan")))]
pub async fn set_limit(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
    ApiJson(body): ApiJson<SetLimit>,
) -> Result<Json<Org>, ApiError> {
    Ok(Json(s.set_limit(&p, &org, body).await?))
}

/// Set an org's burst: slots above its limit once the limit is in use (operator).
#[utoipa::path(put, path = "/v1/orgs/{org}/burst", operation_id = "set_burst", request_body = SetBurst,
    responses((status = 200, body = Org), (status = 403, description = "forbidden: operator only"),
              (status = 409, description = "no_plan: null asks for the plan's burst, and the org is on no plan")))]
pub async fn set_burst(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
    ApiJson(body): ApiJson<SetBurst>,
) -> Result<Json<Org>, ApiError> {
    Ok(Json(s.set_burst(&p, &org, body).await?))
}

/// The rate an org's keys are held to together, and where it comes from.
#[utoipa::path(get, path = "/v1/orgs/{org}/rate", operation_id = "get_org_rate",
    responses((status = 200, body = OrgRate)))]
pub async fn rate(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
) -> Result<Json<OrgRate>, ApiError> {
    Ok(Json(s.org_rate(&p, &org).await?))
}

/// Set an org's own request rate, for all its keys together (operator);
/// null: back to the server's setting.
#[utoipa::path(put, path = "/v1/orgs/{org}/rate", operation_id = "set_org_rate", request_body = SetOrgRate,
    responses((status = 200, body = OrgRate), (status = 403, description = "forbidden: operator only")))]
pub async fn set_rate(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
    ApiJson(body): ApiJson<SetOrgRate>,
) -> Result<Json<OrgRate>, ApiError> {
    Ok(Json(s.set_org_rate(&p, &org, body).await?))
}

/// Active and queued calls of the last 15 minutes, for charts.
#[utoipa::path(get, path = "/v1/orgs/{org}/history", operation_id = "get_history", responses((status = 200, body = HistoryPage)))]
pub async fn history(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
) -> Result<Json<HistoryPage>, ApiError> {
    Ok(Json(s.history(&p, &org).await?))
}

/// One agent (zeros if never seen).
#[utoipa::path(get, path = "/v1/orgs/{org}/agents/{agent}", operation_id = "get_agent", responses((status = 200, body = Agent)))]
pub async fn agent(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath((org, agent)): ApiPath<(String, String)>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(s.agent(&p, &org, &agent).await?))
}

/// Set an agent's reservations.
#[utoipa::path(put, path = "/v1/orgs/{org}/agents/{agent}/reservations", operation_id = "set_reservations",
    request_body = ReservationsBody,
    responses((status = 200, body = Agent), (status = 403, description = "forbidden: operator or org admin only"),
              (status = 409, description = "reservations_exceed_limit, with `available`; cap_below_reservation, with `reserved`")))]
pub async fn reserve(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath((org, agent)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<ReservationsBody>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(
        s.set_reservations(&p, &org, &agent, body.into()).await?,
    ))
}

/// Set an agent's caps, all five at once (null: no cap).
#[utoipa::path(put, path = "/v1/orgs/{org}/agents/{agent}/caps", operation_id = "set_caps",
    request_body = CapsBody,
    responses((status = 200, body = Agent), (status = 403, description = "forbidden: operator or org admin only"),
              (status = 409, description = "cap_below_reservation: a cap below the reservation it covers, with that reservation, the lowest allowed cap, as `reserved`")))]
pub async fn set_caps(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath((org, agent)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<CapsBody>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(s.set_caps(&p, &org, &agent, body.into()).await?))
}

/// Remove an agent's reservations: its slots return to the shared pool.
#[utoipa::path(delete, path = "/v1/orgs/{org}/agents/{agent}/reservations", operation_id = "remove_reservations",
    responses((status = 200, body = Agent), (status = 403, description = "forbidden: operator or org admin only")))]
pub async fn unreserve(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath((org, agent)): ApiPath<(String, String)>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(s.remove_reservations(&p, &org, &agent).await?))
}
