//! The event log of an org: long-poll and server-sent events.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{Stream, StreamExt};
use slotgate_api::EventPage;

use super::error::ApiError;
use super::extract::{ApiPath, Auth};
use super::json::Json;
use super::query::{ApiQuery, EventsQuery, StreamQuery};
use crate::service::Service;

/// Events after a seq; with `wait_s`, waits for one when there are none.
#[utoipa::path(get, path = "/v1/orgs/{org}/events", operation_id = "list_events",
    params(EventsQuery),
    responses((status = 200, body = EventPage)))]
pub async fn list(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let after = q.after.unwrap_or(0);
    Ok(Json(s.events(&p, &org, after, q.limit, q.wait_s).await?))
}

/// The org's events as `text/event-stream`, from `after` (default: only new ones).
#[utoipa::path(get, path = "/v1/orgs/{org}/events/stream", operation_id = "stream_events",
    params(StreamQuery),
    responses((status = 200, description = "server-sent events, each an Event as its data", content_type = "text/event-stream", body = String)))]
pub async fn stream(
    State(s): State<Arc<Service>>,
    Auth(p): Auth,
    ApiPath(org): ApiPath<String>,
    ApiQuery(q): ApiQuery<StreamQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    // A reconnecting EventSource says where it stopped in `Last-Event-ID`.
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let after = q.after.or(resume);
    let events = s.event_stream(&p, &org, after).await?.map(|e| {
        let data = serde_json::to_string(&e).expect("an event renders to JSON");
        Ok(SseEvent::default()
            .id(e.seq.to_string())
            .event(e.kind.name())
            .data(data))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
