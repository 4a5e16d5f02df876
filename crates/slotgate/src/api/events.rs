//! The event log of an org: long-poll and server-sent events.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Json;
use futures_util::stream::{self, Stream};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::extract::{only_params, query_param, seconds, Auth};
use crate::auth::Action;
use crate::state::Shared;

/// `GET .../events` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventPage {
    /// Events after `after`, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
    /// The seq to pass as `after` next time.
    pub next: u64,
}

/// Reads stored events off the async threads (SQLite blocks).
async fn stored(
    s: &Arc<Shared>,
    org: &str,
    after: u64,
    limit: usize,
) -> Result<Vec<serde_json::Value>, ApiError> {
    let (s, org) = (s.clone(), org.to_string());
    tokio::task::spawn_blocking(move || s.store.events(&org, after, limit))
        .await
        .map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        })?
        .map_err(ApiError::from)
}

fn seq_of(v: &serde_json::Value) -> u64 {
    v.get("seq")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

/// Events after a seq; with `wait_s`, waits for one when there are none.
#[utoipa::path(get, path = "/v1/orgs/{org}/events",
    params(("after" = Option<u64>, Query, description = "return events with a larger seq"), ("limit" = Option<usize>, Query, description = "at most this many (default 1000, at most 10000)"),
           ("wait_s" = Option<f64>, Query, description = "long-poll up to this many seconds when none are newer")),
    responses((status = 200, body = EventPage)))]
pub async fn list(
    State(s): State<Arc<Shared>>,
    Auth(p): Auth,
    Path(org): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<EventPage>, ApiError> {
    p.check(&org, Action::Read)?;
    only_params(&q, &["after", "limit", "wait_s"])?;
    let after = query_param::<u64>(&q, "after")?.unwrap_or(0);
    let limit = query_param::<usize>(&q, "limit")?.unwrap_or(1000);
    if limit == 0 || limit > 10_000 {
        return Err(ApiError::invalid(
            "limit",
            format!("must be 1 to 10000, got {limit}"),
        ));
    }
    let wait = seconds(
        "wait_s",
        query_param::<f64>(&q, "wait_s")?.unwrap_or(0.0),
        0.0,
        60.0,
    )?;
    s.read(|e| e.org(&org)).await??;
    let mut live = s.store.subscribe();
    let mut events = stored(&s, &org, after, limit).await?;
    if events.is_empty() && !wait.is_zero() {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout_at(deadline, live.recv()) => next,
                _ = s.shutting_down() => break,
            };
            match next {
                Ok(Ok(e)) if e.is_news(&org, after) => break,
                Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) => continue,
                Ok(Err(RecvError::Closed)) | Err(_) => break,
            }
        }
        events = stored(&s, &org, after, limit).await?;
    }
    let next = events.last().map_or(after, seq_of);
    Ok(Json(EventPage { events, next }))
}

/// The org's events as `text/event-stream`, from `after` (default: only new ones).
#[utoipa::path(get, path = "/v1/orgs/{org}/events/stream",
    params(("after" = Option<u64>, Query, description = "replay events with a larger seq first (or send Last-Event-ID)")),
    responses((status = 200, description = "text/event-stream of events")))]
pub async fn stream(
    State(s): State<Arc<Shared>>,
    Auth(p): Auth,
    Path(org): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    p.check(&org, Action::Read)?;
    only_params(&q, &["after"])?;
    s.read(|e| e.org(&org)).await??;
    let live = s.store.subscribe();
    // A reconnecting EventSource says where it stopped in `Last-Event-ID`.
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let after = match query_param::<u64>(&q, "after")?.or(resume) {
        Some(a) => a,
        // Only new events: start after the newest one stored.
        None => s.store.last_event(&org)?,
    };
    let state = (s, org, after, live, Vec::<serde_json::Value>::new());
    let events = stream::unfold(
        state,
        |(s, org, mut last, mut live, mut backlog)| async move {
            loop {
                if let Some(e) = backlog.pop() {
                    last = seq_of(&e);
                    let sse = SseEvent::default()
                        .id(last.to_string())
                        .event(e.get("type").and_then(|t| t.as_str()).unwrap_or("event"))
                        .data(e.to_string());
                    return Some((Ok(sse), (s, org, last, live, backlog)));
                }
                // Catch up from the store, newest last; then wait for the next live one.
                match stored(&s, &org, last, 1000).await {
                    Ok(mut more) if !more.is_empty() => {
                        more.reverse();
                        backlog = more;
                        continue;
                    }
                    Ok(_) => {}
                    Err(_) => return None,
                }
                loop {
                    let next = tokio::select! {
                        next = live.recv() => next,
                        _ = s.shutting_down() => return None,
                    };
                    match next {
                        Ok(e) if e.is_news(&org, last) => break,
                        Ok(_) => continue,
                        Err(RecvError::Lagged(_)) => break,
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
