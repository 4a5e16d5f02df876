//! Capacity planning: observed traffic, the plan, what-if simulations.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use slotgate_plan::{PlanAnswer, PlanBody, SimulateAnswer, SimulateBody, Traffic};

use super::error::ApiError;
use super::extract::{only_params, query_param, ApiJson, ApiPath, Auth};
use super::json::Json;
use crate::service::Service;

/// The org's observed traffic per agent and type: arrival rates (overall and
/// by hour of day, UTC), call durations, queue waits and give-ups.
#[utoipa::path(get, path = "/v1/orgs/{org}/traffic", operation_id = "get_traffic",
    params(("window" = Option<String>, Query, description = "how far back, e.g. 7d, 12h, 90s (1s to 400d; default 7d)"),
           ("within_s" = Option<f64>, Query, minimum = 0, maximum = 604800, description = "service levels count calls admitted within this many seconds (default 20)")),
    responses((status = 200, body = Traffic)))]
pub async fn traffic(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Traffic>, ApiError> {
    only_params(&q, &["window", "within_s"])?;
    let window = q.get("window").map(String::as_str);
    let within_s = query_param::<f64>(&q, "within_s")?;
    Ok(Json(s.traffic(&p, &org, window, within_s).await?))
}

/// Recommend the org's limit and reservations for service-level targets per
/// call type, checked by simulation, with the alternatives around it. Changes nothing.
#[utoipa::path(post, path = "/v1/orgs/{org}/plan", operation_id = "plan_org", request_body = PlanBody,
    responses((status = 200, body = PlanAnswer)))]
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
    responses((status = 200, body = SimulateAnswer)))]
pub async fn simulate(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
    ApiJson(body): ApiJson<SimulateBody>,
) -> Result<Json<SimulateAnswer>, ApiError> {
    Ok(Json(s.simulate(&p, &org, body).await?))
}
