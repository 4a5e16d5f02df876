//! Capacity planning: observed traffic, the plan, what-if simulations.

use std::sync::Arc;

use axum::extract::State;
use slotgate_plan::{PlanAnswer, PlanBody, SimulateAnswer, SimulateBody, Traffic};

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, Auth};
use super::json::Json;
use super::query::{ApiQuery, TrafficQuery};
use crate::service::Service;

/// The org's observed traffic per agent and type: arrival rates (overall and
/// by hour of day, UTC), call durations, queue waits and give-ups.
#[utoipa::path(get, path = "/v1/orgs/{org}/traffic", operation_id = "get_traffic",
    params(TrafficQuery),
    responses((status = 200, body = Traffic)))]
pub async fn traffic(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
    ApiQuery(q): ApiQuery<TrafficQuery>,
) -> Result<Json<Traffic>, ApiError> {
    let window = q.window.as_deref();
    Ok(Json(s.traffic(&p, &org, window, q.within_s).await?))
}

/// Recommend the org's limit and reservations for service-level targets per
/// call type, checked by simulation, with the alternatives around it. Changes nothing.
#[utoipa::path(post, path = "/v1/orgs/{org}/plan", operation_id = "plan_org", request_body = PlanBody,
    responses((status = 200, body = PlanAnswer),
              (status = 409, description = "no_traffic: no `traffic` given, and the org has no ended calls in the window to learn from")))]
pub async fn plan(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
    ApiJson(body): ApiJson<PlanBody>,
) -> Result<Json<PlanAnswer>, ApiError> {
    Ok(Json(s.plan(&p, &org, body).await?))
}

/// Simulate the org as configured now and with what-if changes, side by
/// side on the same traffic. Changes nothing.
#[utoipa::path(post, path = "/v1/orgs/{org}/simulate", operation_id = "simulate_org", request_body = SimulateBody,
    responses((status = 200, body = SimulateAnswer),
              (status = 409, description = "no_traffic: no `traffic` given, and the org has no ended calls in the window to learn from")))]
pub async fn simulate(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
    ApiJson(body): ApiJson<SimulateBody>,
) -> Result<Json<SimulateAnswer>, ApiError> {
    Ok(Json(s.simulate(&p, &org, body).await?))
}
