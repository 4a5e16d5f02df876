//! Plans: operator-defined tiers of limit and burst, and putting an org on one.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use slotgate_api::{CreatePlan, Org, Plan, PlanEventPage, PlanList, SetPlan, UpdatePlan};

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, Auth};
use super::json::Json;
use super::query::{ApiQuery, PlanEventsQuery};
use crate::service::Service;

/// List plans, with how many orgs are on each (operator).
#[utoipa::path(get, path = "/v1/plans", operation_id = "list_plans",
    responses((status = 200, body = PlanList), (status = 403, description = "forbidden: operator only")))]
pub async fn list(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
) -> Result<Json<PlanList>, ApiError> {
    Ok(Json(s.plans(&p).await?))
}

/// Create a plan (operator).
#[utoipa::path(post, path = "/v1/plans", operation_id = "create_plan", request_body = CreatePlan,
    responses((status = 201, body = Plan), (status = 403, description = "forbidden: operator only"),
              (status = 409, description = "plan_exists: a plan with this id exists")))]
pub async fn create(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreatePlan>,
) -> Result<(StatusCode, Json<Plan>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.create_plan(&p, body).await?)))
}

/// One plan (operator).
#[utoipa::path(get, path = "/v1/plans/{plan}", operation_id = "get_plan",
    responses((status = 200, body = Plan), (status = 403, description = "forbidden: operator only"),
              (status = 404, description = "plan_not_found")))]
pub async fn get(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(plan): ApiPath<String>,
) -> Result<Json<Plan>, ApiError> {
    Ok(Json(s.get_plan(&p, &plan).await?))
}

/// Change a plan's limit or burst, and with it every org on it that takes
/// them, in one durable change; refused whole if the new limit would be
/// below any such org's reservations (operator).
#[utoipa::path(patch, path = "/v1/plans/{plan}", operation_id = "update_plan", request_body = UpdatePlan,
    responses((status = 200, body = Plan), (status = 403, description = "forbidden: operator only"),
              (status = 404, description = "plan_not_found"),
              (status = 409, description = "plan_below_reservations: the orgs in the way as `orgs` (the first ten) and `count`; nothing changed")))]
pub async fn update(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(plan): ApiPath<String>,
    ApiJson(body): ApiJson<UpdatePlan>,
) -> Result<Json<Plan>, ApiError> {
    Ok(Json(s.update_plan(&p, &plan, body).await?))
}

/// Delete a plan no org is on (operator).
#[utoipa::path(delete, path = "/v1/plans/{plan}", operation_id = "delete_plan",
    responses((status = 204, description = "deleted"), (status = 403, description = "forbidden: operator only"),
              (status = 404, description = "plan_not_found"),
              (status = 409, description = "plan_in_use: the orgs on it as `orgs` (the first ten) and `count`")))]
pub async fn delete(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(plan): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_plan(&p, &plan).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `plan.changed` events after a seq: plans created, changed and deleted (operator).
#[utoipa::path(get, path = "/v1/plan-events", operation_id = "list_plan_events", params(PlanEventsQuery),
    responses((status = 200, body = PlanEventPage), (status = 403, description = "forbidden: operator only")))]
pub async fn events(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<PlanEventsQuery>,
) -> Result<Json<PlanEventPage>, ApiError> {
    let limit = q.limit.unwrap_or(slotgate_api::limits::DEFAULT_PAGE_SIZE);
    Ok(Json(s.plan_events(&p, q.after.unwrap_or(0), limit).await?))
}

/// Put an org on a plan: it takes the plan's limit and burst (its own ones
/// are cleared), refused below its reservations; `null` takes it off
/// plans, keeping its limit and burst as its own (operator).
#[utoipa::path(put, path = "/v1/orgs/{org}/plan", operation_id = "set_org_plan", request_body = SetPlan,
    responses((status = 200, body = Org), (status = 403, description = "forbidden: operator only"),
              (status = 404, description = "org_not_found, plan_not_found"),
              (status = 409, description = "limit_below_reservations, with `reserved`")))]
pub async fn set_org_plan(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
    ApiJson(body): ApiJson<SetPlan>,
) -> Result<Json<Org>, ApiError> {
    Ok(Json(s.set_org_plan(&p, &org, body).await?))
}
