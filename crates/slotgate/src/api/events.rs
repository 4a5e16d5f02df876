//! The event log of an org: long-poll and server-sent events.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{Stream, StreamExt};
use slotgate_api::EventPage;

use super::error::ApiError;
use super::extract::{only_params, query_param, ApiPath, Auth};
use super::json::Json;
use crate::service::Service;

/// Events after a seq; with `wait_s`, waits for one when there are none.
#[utoipa::path(get, path = "/v1/orgs/{org}/events", operation_id = "list_events",
    params(("after" = Option<u64>, Query, minimum = 0, description = "return events with a larger seq (default 0)"),
           ("limit" = Option<usize>, Query, minimum = 1, maximum = 10000, description = "at most this many (default 1000)"),
           ("wait_s" = Option<f64>, Query, minimum = 0, maximum = 60, description = "long-poll up to this many seconds when none are newer (default 0)")),
    responses((status = 200, body = EventPage)))]
pub async fn list(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<EventPage>, ApiError> {
    only_params(&q, &["after", "limit", "wait_s"])?;
    let after = query_param::<u64>(&q, "after")?.unwrap_or(0);
    let limit = query_param::<usize>(&q, "limit")?;
    let wait_s = query_param::<f64>(&q, "wait_s")?;
    Ok(Json(s.events(&p, &org, after, limit, wait_s).await?))
}

/// The org's events as `text/event-stream`, from `after` (default: only new ones).
#[utoipa::path(get, path = "/v1/orgs/{org}/events/stream", operation_id = "stream_events",
    params(("after" = Option<u64>, Query, minimum = 0, description = "replay events with a larger seq first (or send Last-Event-ID)")),
    responses((status = 200, description = "server-sent events, each an Event as its data", content_type = "text/event-stream", body = String)))]
pub async fn stream(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    only_params(&q, &["after"])?;
    // A reconnecting EventSource says where it stopped in `Last-Event-ID`.
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let after = query_param::<u64>(&q, "after")?.or(resume);
    let events = s.event_stream(&p, &org, after).await?.map(|e| {
        let data = serde_json::to_string(&e).expect("an event renders to JSON");
        Ok(SseEvent::default()
            .id(e.seq.to_string())
            .event(e.kind.name())
            .data(data))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
