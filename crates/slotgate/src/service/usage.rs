//! Usage by hour or by day (`usage.rs` counts it, the store keeps it).

use slotgate_api::{FieldError, Step, Usage};
use slotgate_core::Timestamp;

use super::{blocking, Result, Service};
use crate::auth::{Action, Principal};
use crate::clock;
use crate::usage::{self, State, Tracker};

/// What a usage request asks for, as sent (each checked by [`Service::usage`]).
#[derive(Debug, Default, Clone)]
pub struct UsageAsked {
    /// `from`, RFC 3339 UTC.
    pub from: Option<String>,
    /// `to`, RFC 3339 UTC.
    pub to: Option<String>,
    /// `step`: `1h` or `1d`.
    pub step: Option<String>,
}

/// A time field as ms since the Unix epoch.
fn instant(field: &'static str, text: &str) -> std::result::Result<u64, FieldError> {
    let at = humantime::parse_rfc3339_weak(text).map_err(|_| {
        FieldError::new(
            field,
            format!("must be an RFC 3339 UTC time such as 2026-11-23T20:00:00Z, got {text:?}"),
        )
    })?;
    at.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .map_err(|_| FieldError::new(field, "must be after 1970"))
}

impl UsageAsked {
    /// The range (rounded out to whole steps, UTC) and the step, as of `now`.
    /// `to` defaults to now, `from` to a day before `to` (a week with `1d`)
    /// once `to` is rounded up.
    pub fn range(&self, now: u64) -> std::result::Result<(u64, u64, Step), FieldError> {
        let step = match &self.step {
            Some(s) => s.parse()?,
            None => Step::Hour,
        };
        let len = step.millis();
        let asked_to = match &self.to {
            Some(t) => instant("to", t)?,
            None => now,
        };
        // Whole steps, so that the defaults make exactly a day (a week) of steps.
        let to = asked_to.div_ceil(len).saturating_mul(len);
        let default_span = match step {
            Step::Hour => 24 * usage::HOUR_MS,
            Step::Day => 7 * Step::Day.millis(),
        };
        let asked_from = match &self.from {
            Some(f) => instant("from", f)?,
            None => to.saturating_sub(default_span),
        };
        if asked_to <= asked_from {
            return Err(FieldError::new("to", "must be later than from"));
        }
        let from = asked_from - asked_from % len;
        if to - from > step.max_range_ms() {
            let most = match step {
                Step::Hour => "31 days with step 1h (use step 1d for longer)",
                Step::Day => "366 days with step 1d",
            };
            return Err(FieldError::new(
                "from",
                format!("the range may span at most {most}"),
            ));
        }
        Ok((from, to, step))
    }
}

impl Service {
    /// An org's usage by step (UTC hours or days): peaks, time at the limit,
    /// burst, calls admitted, waited and given up, wait percentiles, per
    /// call type and overall (org admins and the operator). The current
    /// hour counts up to now. Reads what is durable.
    pub async fn usage(&self, p: &Principal, org: &str, asked: UsageAsked) -> Result<Usage> {
        p.check(org, Action::Plan)?;
        let (live, now) = self
            .observe_at(org, |e, now| {
                e.org_summary(org, 0).map(|(view, all)| {
                    let state = State {
                        limit: view.limit,
                        active: slotgate_api::CallType::ALL.map(|t| all.active.get(t)),
                        queued: Default::default(),
                    };
                    let queued = slotgate_api::CallType::ALL.map(|t| all.queued.get(t));
                    ((view.id, state, queued), now.as_millis())
                })
            })
            .await??;
        let (from, to, step) = asked.range(now)?;
        let (id, state, queued) = live;
        let store = self.store.clone();
        let name = id.to_string();
        let (mut hours, latest) = blocking(move || store.usage(&name, from, to)).await?;
        // The latest stored hour counts up to its last event: from there to
        // now nothing changed, so the org's state now carries it on.
        if let Some(latest) = latest.filter(|h| h.until_ms < now && h.start_ms < to) {
            let mut tracker = Tracker::with_counts(state, queued, Some(latest), now);
            tracker.advance(now.min(to));
            for hour in tracker.drain() {
                if (from..to).contains(&hour.start_ms) {
                    hours.retain(|h| h.start_ms != hour.start_ms);
                    hours.push(hour);
                }
            }
            hours.sort_by_key(|h| h.start_ms);
        }
        Ok(Usage {
            org: id.to_string(),
            step,
            from: clock::rfc3339(Timestamp::from_millis(from)),
            to: clock::rfc3339(Timestamp::from_millis(to)),
            steps: usage::steps(&hours, from, to, step),
        })
    }
}
