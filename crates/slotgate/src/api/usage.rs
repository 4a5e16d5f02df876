//! An org's usage by hour or by day.

use std::sync::Arc;

use axum::extract::State;
use serde::Deserialize;
use slotgate_api::Usage;
use utoipa::IntoParams;

use super::error::ApiError;
use super::extract::{ApiPath, Auth};
use super::json::Json;
use super::query::ApiQuery;
use crate::service::{Service, UsageAsked};

/// The range and step of a usage request.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// The start, RFC 3339 UTC (e.g. `2026-11-23T00:00:00Z`), rounded down
    /// to a step (default: a day before `to` with step 1h, a week with 1d).
    #[serde(default)]
    pub from: Option<String>,
    /// The end, RFC 3339 UTC, later than `from`, rounded up to a step
    /// (default: now). At most 31 days after `from` with step 1h, 366 with 1d.
    #[serde(default)]
    pub to: Option<String>,
    /// `1h` (default) or `1d`: UTC hours or UTC days.
    #[serde(default)]
    #[param(pattern = r"^1[hd]$")]
    pub step: Option<String>,
}

/// The org's usage by UTC hour or day: peak active and queued calls, time
/// at the limit, burst time, calls admitted, calls that waited, wait p50
/// and p90, calls that gave up; per call type and overall (org admin or
/// operator). Kept for `--usage-retention` (default 90 days).
#[utoipa::path(get, path = "/v1/orgs/{org}/usage", operation_id = "get_usage",
    params(UsageQuery),
    responses((status = 200, body = Usage),
              (status = 400, description = "invalid_request: `from`, `to` or `step` named"),
              (status = 403, description = "forbidden: org admin or operator only")))]
pub async fn usage(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<Json<Usage>, ApiError> {
    let asked = UsageAsked {
        from: q.from,
        to: q.to,
        step: q.step,
    };
    Ok(Json(s.usage(&p, &org, asked).await?))
}
