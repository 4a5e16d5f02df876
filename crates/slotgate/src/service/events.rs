//! The event log of an org: pages (with a long-poll) and a live stream.

use std::sync::Arc;

use futures_util::stream::{self, Stream, StreamExt};
use slotgate_api::{limits, Event, EventPage};
use tokio::sync::broadcast::error::RecvError;

use super::{blocking, Result, Service};
use crate::auth::{Action, Principal};

impl Service {
    /// Events after `after`, oldest first, at most `limit` (1 to 10,000,
    /// default 1,000). With `wait_s` (0 to 60 s) and none newer, waits for
    /// the next one to become durable.
    pub async fn events(
        self: &Arc<Self>,
        p: &Principal,
        org: &str,
        after: u64,
        limit: Option<usize>,
        wait_s: Option<f64>,
    ) -> Result<EventPage> {
        p.check(org, Action::Read)?;
        let limit = limits::page_size(limit.unwrap_or(limits::DEFAULT_PAGE_SIZE))?;
        let wait = limits::request_wait(wait_s.unwrap_or(0.0))?;
        self.observe(org, |e| e.org(org)).await??;
        let mut live = self.tickets.subscribe();
        let mut events = self.stored(org, after, limit).await?;
        if events.is_empty() && !wait.is_zero() {
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                let next = tokio::select! {
                    next = tokio::time::timeout_at(deadline, live.recv()) => next,
                    _ = self.interrupted() => break,
                    () = self.keys.revoked(p) => return Err(super::Error::Revoked),
                };
                match next {
                    Ok(Ok(e)) if e.is_news(org, after) => break,
                    Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) => continue,
                    Ok(Err(RecvError::Closed)) | Err(_) => break,
                }
            }
            events = self.stored(org, after, limit).await?;
        }
        let next = events.last().map_or(after, |e| e.seq);
        Ok(EventPage { events, next })
    }

    /// The org's events as they become durable, after `after` (none: only
    /// new ones). The stream ends when the server shuts down or stops serving
    /// ([`Service::interrupted`]); a client resumes it with `Last-Event-ID`.
    pub async fn event_stream(
        self: &Arc<Self>,
        p: &Principal,
        org: &str,
        after: Option<u64>,
    ) -> Result<impl Stream<Item = Event> + Send + 'static> {
        p.check(org, Action::Read)?;
        self.observe(org, |e| e.org(org)).await??;
        let live = self.tickets.subscribe();
        let after = match after {
            Some(a) => a,
            // Only new events: start after the newest one stored.
            None => {
                let (s, org) = (self.clone(), org.to_string());
                blocking(move || s.store.last_event(&org)).await?
            }
        };
        let state = (
            self.clone(),
            org.to_string(),
            after,
            live,
            Vec::<Event>::new(),
        );
        // Ends as soon as the caller's key is revoked, whatever it waits for.
        let (s, p) = (self.clone(), p.clone());
        let revoked = Box::pin(async move { s.keys.revoked(&p).await });
        Ok(stream::unfold(
            state,
            |(s, org, mut last, mut live, mut backlog)| async move {
                loop {
                    if let Some(e) = backlog.pop() {
                        last = e.seq;
                        return Some((e, (s, org, last, live, backlog)));
                    }
                    // Catch up from the store, newest last; then wait for the next live one.
                    match s.stored(&org, last, 1000).await {
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
                            _ = s.interrupted() => return None,
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
        )
        .take_until(revoked))
    }

    /// Reads stored events off the async threads (the store's reads block).
    async fn stored(self: &Arc<Self>, org: &str, after: u64, limit: usize) -> Result<Vec<Event>> {
        let (s, org) = (self.clone(), org.to_string());
        blocking(move || s.store.events(&org, after, limit)).await
    }
}
