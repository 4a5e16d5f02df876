//! Usage by hour: each org's figures per UTC hour (peaks, time at the limit,
//! burst, calls admitted, waited and given up, a histogram of waits), per
//! call type and overall, derived from the engine's events.
//!
//! The store keeps one row per org and hour ([`Hour`], a small JSON body),
//! written by the group commit's writer in the transaction that stores the
//! events it is derived from (`store/usage_rows.rs`), so the figures cost no
//! fsync of their own and are exactly as durable as the events. A
//! [`Tracker`] follows one org: it is seeded from the store (the org's limit,
//! its active and queued calls, its latest stored hour) the first time a
//! batch touches the org, so after a restart or a takeover the current hour
//! continues from its stored row rather than from zero.
//!
//! What counts (docs/DECISIONS.md):
//! - *admitted*: a `call.admitted` event in the hour; *waited*: one of those
//!   that had been queued (a `call.queued` before it); its wait (`waited_ms`)
//!   goes into the hour's histogram.
//! - *gave up*: a call that ended while queued, whatever the reason
//!   (`cancelled`, `abandoned`, `timed_out`).
//! - *at the limit*: time with `N >= L` and `N > 0` (`N` active calls, `L`
//!   the limit); *burst*: the integral of `max(0, N - L)`, in slot-ms.
//! - Peaks: the most active (queued) calls after any event of the hour, and
//!   at its start.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use slotgate_api::{CallType, Step, UsageByType, UsageFigures, UsageStep};
use slotgate_core::{Event, EventKind};

use crate::clock;

/// One hour, in ms.
pub const HOUR_MS: u64 = 3_600_000;

/// Upper edges of the wait histogram's buckets, in ms: a 1-2-5 series from
/// 100 ms to 10,000 s. A wait lands in the first bucket whose edge is at
/// least the wait; a longer one in a last bucket, reported as the top edge.
/// A percentile is reported as the edge of its bucket: at most 2.5 times
/// the true figure, never below it.
pub const WAIT_EDGES_MS: [u64; 17] = [
    100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000,
    1_000_000, 2_000_000, 5_000_000, 10_000_000, 20_000_000,
];

/// The start of the UTC hour holding `ms`.
pub fn hour_of(ms: u64) -> u64 {
    ms - ms % HOUR_MS
}

/// The figures of one call type (or all of them) in one hour.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// The most active calls at once.
    pub peak_active: u32,
    /// The most queued calls at once.
    pub peak_queued: u32,
    /// Calls admitted.
    pub admitted: u64,
    /// Calls admitted after queueing.
    pub waited: u64,
    /// Calls that ended while queued.
    pub gave_up: u64,
    /// Waits of the calls that waited, counted per bucket of
    /// [`WAIT_EDGES_MS`] (one more for longer waits); empty while none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waits: Vec<u64>,
}

impl Tally {
    fn wait(&mut self, ms: u64) {
        if self.waits.is_empty() {
            self.waits = vec![0; WAIT_EDGES_MS.len() + 1];
        }
        let bucket = WAIT_EDGES_MS
            .iter()
            .position(|&edge| ms <= edge)
            .unwrap_or(WAIT_EDGES_MS.len());
        self.waits[bucket] += 1;
    }

    fn merge(&mut self, other: &Tally) {
        self.peak_active = self.peak_active.max(other.peak_active);
        self.peak_queued = self.peak_queued.max(other.peak_queued);
        self.admitted += other.admitted;
        self.waited += other.waited;
        self.gave_up += other.gave_up;
        if !other.waits.is_empty() {
            self.waits.resize(WAIT_EDGES_MS.len() + 1, 0);
            for (mine, theirs) in self.waits.iter_mut().zip(&other.waits) {
                *mine += theirs;
            }
        }
    }

    /// The `p`th percentile (0 to 100) of the waits, as a bucket's edge.
    pub fn wait_percentile(&self, p: u64) -> Option<u64> {
        let total: u64 = self.waits.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = (total * p).div_ceil(100).max(1);
        let mut seen = 0;
        for (i, n) in self.waits.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(WAIT_EDGES_MS[i.min(WAIT_EDGES_MS.len() - 1)]);
            }
        }
        None
    }

    /// As the API shows it.
    pub fn figures(&self) -> UsageFigures {
        UsageFigures {
            peak_active: self.peak_active,
            peak_queued: self.peak_queued,
            admitted: self.admitted,
            waited: self.waited,
            wait_p50_ms: self.wait_percentile(50),
            wait_p90_ms: self.wait_percentile(90),
            gave_up: self.gave_up,
        }
    }
}

/// One org's figures over one UTC hour (or, merged, over a longer step):
/// what the store keeps per org and hour.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hour {
    /// Its start, in ms since the Unix epoch.
    pub start_ms: u64,
    /// How far the integrals go: time from here to the hour's end is not
    /// counted yet (it is, at the org's current state, when read).
    pub until_ms: u64,
    /// The highest limit in effect.
    pub limit: u32,
    /// Time at the limit, in ms.
    pub at_limit_ms: u64,
    /// Burst used, in slot-ms.
    pub burst_ms: u64,
    /// Over all call types.
    pub overall: Tally,
    /// Per call type, in the order of [`CallType::ALL`].
    pub types: [Tally; 4],
}

impl Hour {
    /// Nothing happened and nothing was held: not worth a row.
    fn is_idle(&self) -> bool {
        self.at_limit_ms == 0 && self.overall == Tally::default()
    }

    /// Adds `other` (a later hour of the same step) into this one.
    pub fn merge(&mut self, other: &Hour) {
        self.until_ms = self.until_ms.max(other.until_ms);
        self.limit = self.limit.max(other.limit);
        self.at_limit_ms += other.at_limit_ms;
        self.burst_ms += other.burst_ms;
        self.overall.merge(&other.overall);
        for (mine, theirs) in self.types.iter_mut().zip(&other.types) {
            mine.merge(theirs);
        }
    }

    /// As the API shows it, as a step starting at `start_ms`.
    pub fn step(&self, start_ms: u64) -> UsageStep {
        let t = |c: CallType| self.types[c.index()].figures();
        UsageStep {
            start: clock::rfc3339(slotgate_core::Timestamp::from_millis(start_ms)),
            limit: self.limit,
            at_limit_seconds: self.at_limit_ms as f64 / 1000.0,
            burst_seconds: self.burst_ms as f64 / 1000.0,
            overall: self.overall.figures(),
            types: UsageByType {
                webcall: t(CallType::Webcall),
                chat: t(CallType::Chat),
                outbound: t(CallType::Outbound),
                inbound: t(CallType::Inbound),
            },
        }
    }
}

/// An org's state as the figures need it.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Its limit `L`.
    pub limit: u32,
    /// Active calls per type.
    pub active: [u32; 4],
    /// Queued calls: id and type (the ids tell a call that waited, or gave
    /// up, from one that did not).
    pub queued: HashMap<String, CallType>,
}

/// Follows one org's events and keeps its figures by hour.
#[derive(Debug, Clone)]
pub struct Tracker {
    state: State,
    /// Queued calls per type (kept apart from the ids: the read path
    /// knows only the counts).
    queued: [u32; 4],
    /// The hour being counted.
    open: Hour,
    /// Hours finished since the last [`Tracker::drain`].
    closed: Vec<Hour>,
}

impl Tracker {
    /// An org in `state` from `at_ms` on, continuing `stored` (its latest
    /// stored hour) if any.
    pub fn new(state: State, stored: Option<Hour>, at_ms: u64) -> Self {
        let queued = counts(&state.queued);
        Tracker::with_counts(state, queued, stored, at_ms)
    }

    /// [`Tracker::new`] with the queued calls counted per type only (for
    /// reading: it takes no events).
    pub fn with_counts(state: State, queued: [u32; 4], stored: Option<Hour>, at_ms: u64) -> Self {
        let mut tracker = Tracker {
            state,
            queued,
            open: Hour::default(),
            closed: Vec::new(),
        };
        tracker.open = match stored {
            Some(hour) => hour,
            None => tracker.opened(hour_of(at_ms)),
        };
        tracker.note_peaks();
        tracker
    }

    /// A new hour at `start_ms`, holding the state as it is.
    fn opened(&self, start_ms: u64) -> Hour {
        let mut hour = Hour {
            start_ms,
            until_ms: start_ms,
            limit: self.state.limit,
            ..Hour::default()
        };
        peaks(&mut hour, &self.state.active, &self.queued);
        hour
    }

    fn note_peaks(&mut self) {
        peaks(&mut self.open, &self.state.active, &self.queued);
    }

    /// Counts time up to `to_ms` at the current state, closing hours as
    /// they end. Time never goes back: an earlier `to_ms` counts nothing.
    pub fn advance(&mut self, to_ms: u64) {
        loop {
            let end = self.open.start_ms + HOUR_MS;
            if to_ms < end {
                self.integrate(to_ms);
                return;
            }
            self.integrate(end);
            let idle = self.state.active == [0; 4] && self.queued == [0; 4];
            // Idle hours in between are all zeros: skip to the hour of `to_ms`.
            let next = if idle { hour_of(to_ms) } else { end };
            let opened = self.opened(next);
            let done = std::mem::replace(&mut self.open, opened);
            if !done.is_idle() {
                self.closed.push(done);
            }
        }
    }

    fn integrate(&mut self, to_ms: u64) {
        let Some(dt) = to_ms.checked_sub(self.open.until_ms) else {
            return;
        };
        let n: u64 = self.state.active.iter().map(|&a| u64::from(a)).sum();
        let l = u64::from(self.state.limit);
        if n > 0 && n >= l {
            self.open.at_limit_ms += dt;
        }
        self.open.burst_ms += dt * n.saturating_sub(l);
        self.open.until_ms = to_ms;
    }

    /// Counts one event of the org (events come in order).
    pub fn apply(&mut self, e: &Event) {
        self.advance(e.at.as_millis());
        match &e.kind {
            EventKind::OrgCreated { limit } | EventKind::LimitChanged { new: limit, .. } => {
                self.state.limit = *limit;
                self.open.limit = self.open.limit.max(*limit);
            }
            EventKind::CallQueued {
                call, call_type, ..
            } => {
                self.state
                    .queued
                    .insert(call.as_str().to_string(), *call_type);
                self.queued[call_type.index()] += 1;
            }
            EventKind::CallAdmitted {
                call,
                call_type,
                waited_ms,
                ..
            } => {
                let t = call_type.index();
                let waited = self.state.queued.remove(call.as_str()).is_some();
                if waited {
                    self.queued[t] = self.queued[t].saturating_sub(1);
                }
                self.state.active[t] += 1;
                for tally in [&mut self.open.overall, &mut self.open.types[t]] {
                    tally.admitted += 1;
                    if waited {
                        tally.waited += 1;
                        tally.wait(*waited_ms);
                    }
                }
            }
            EventKind::CallEnded {
                call, call_type, ..
            } => {
                let t = call_type.index();
                if self.state.queued.remove(call.as_str()).is_some() {
                    self.queued[t] = self.queued[t].saturating_sub(1);
                    self.open.overall.gave_up += 1;
                    self.open.types[t].gave_up += 1;
                } else {
                    self.state.active[t] = self.state.active[t].saturating_sub(1);
                }
            }
            _ => {}
        }
        self.note_peaks();
    }

    /// The hours changed since the last call: those finished, then the
    /// one being counted (changed or not).
    pub fn drain(&mut self) -> Vec<Hour> {
        let mut hours = std::mem::take(&mut self.closed);
        hours.push(self.open.clone());
        hours
    }
}

fn counts(queued: &HashMap<String, CallType>) -> [u32; 4] {
    let mut n = [0; 4];
    for t in queued.values() {
        n[t.index()] += 1;
    }
    n
}

fn peaks(hour: &mut Hour, active: &[u32; 4], queued: &[u32; 4]) {
    for i in 0..4 {
        let tally = &mut hour.types[i];
        tally.peak_active = tally.peak_active.max(active[i]);
        tally.peak_queued = tally.peak_queued.max(queued[i]);
    }
    let all = |n: &[u32; 4]| n.iter().sum::<u32>();
    hour.overall.peak_active = hour.overall.peak_active.max(all(active));
    hour.overall.peak_queued = hour.overall.peak_queued.max(all(queued));
}

/// The steps of `step` from `from_ms` to `to_ms` (both on step
/// boundaries), each the merge of the `hours` (sorted by start) within it.
/// A step with no hour (nothing happened) has the limit of the step before.
pub fn steps(hours: &[Hour], from_ms: u64, to_ms: u64, step: Step) -> Vec<UsageStep> {
    let len = step.millis();
    let mut out = Vec::new();
    let mut hours = hours.iter().peekable();
    let mut start = from_ms;
    let mut limit = 0;
    while start < to_ms {
        let mut merged = Hour::default();
        let mut any = false;
        while let Some(h) = hours.next_if(|h| h.start_ms < start + len) {
            if h.start_ms >= start {
                merged.merge(h);
                any = true;
                limit = h.limit;
            }
        }
        if !any {
            merged.limit = limit;
        }
        out.push(merged.step(start));
        start += len;
    }
    out
}

#[cfg(test)]
mod tests;
