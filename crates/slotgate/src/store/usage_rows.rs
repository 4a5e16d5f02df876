//! Usage by hour in the store (`usage.rs` counts it): the group commit's
//! writer keeps a [`Tracker`] per org it has written, feeds it the events of
//! each batch, and writes the hours they changed in the batch's own
//! transaction: no fsync of its own, and exactly as durable as the events.
//!
//! An org the writer has not seen (after a start, a failure, or a lead
//! taken over) is seeded from the store in the batch's transaction before
//! its events are written: its limit, its active and queued calls, and its
//! latest stored hour, which the figures then continue.

use std::collections::{HashMap, HashSet};

use slotgate_api::CallType;

use super::Write;
use crate::usage::{Hour, State, Tracker};

/// An org's stored hours in a range, oldest first, and its latest stored hour.
pub type StoredUsage = (Vec<Hour>, Option<Hour>);

/// Stored bodies as hours (one this slotgate cannot read is left out).
pub(super) fn parse(rows: Vec<String>, latest: Option<String>) -> StoredUsage {
    let hour = |b: String| serde_json::from_str::<Hour>(&b).ok();
    (
        rows.into_iter().filter_map(hour).collect(),
        latest.and_then(hour),
    )
}

/// What a store reads to seed one org: its limit, its live calls as (id,
/// type, state) and its latest stored hour's body.
#[derive(Debug, Default)]
pub(super) struct Seed {
    /// Its limit (0 if the org is not stored yet).
    pub(super) limit: u32,
    /// Its queued and active calls: id, type, `queued` or `active`.
    pub(super) calls: Vec<(String, String, String)>,
    /// The body of its latest stored hour.
    pub(super) latest: Option<String>,
}

/// The writer's trackers, by org.
#[derive(Debug, Default)]
pub(super) struct Book {
    orgs: HashMap<String, Entry>,
}

#[derive(Debug)]
enum Entry {
    /// Read from the store; tracked from its first event on.
    Seeded(State, Option<Hour>),
    Tracking(Tracker),
}

impl Book {
    /// Forgets every org (after a failed commit, a lost lead or an import:
    /// the store is the truth, read again when next needed).
    pub(super) fn clear(&mut self) {
        self.orgs.clear();
    }

    /// The orgs with events in `batch` that need a [`Seed`].
    pub(super) fn unseeded(&self, batch: &[(u64, Write)]) -> Vec<String> {
        let mut missing = HashSet::new();
        for (_, write) in batch {
            for (e, _) in write.engine_events() {
                if !self.orgs.contains_key(e.org.as_str()) {
                    missing.insert(e.org.as_str().to_string());
                }
            }
        }
        missing.into_iter().collect()
    }

    /// Seeds `org` from what the store read (before the batch).
    pub(super) fn seed(&mut self, org: String, seed: Seed) {
        let mut state = State {
            limit: seed.limit,
            ..State::default()
        };
        for (id, call_type, call_state) in seed.calls {
            let Ok(t) = call_type.parse::<CallType>() else {
                continue;
            };
            match call_state.as_str() {
                "queued" => {
                    state.queued.insert(id, t);
                }
                _ => state.active[t.index()] += 1,
            }
        }
        // A body this slotgate cannot read starts the hour afresh.
        let latest = seed.latest.and_then(|b| serde_json::from_str(&b).ok());
        self.orgs.insert(org, Entry::Seeded(state, latest));
    }

    /// Counts the events of `batch`; the rows to write: (org, hour start,
    /// body), the orgs' changed hours.
    pub(super) fn apply(&mut self, batch: &[(u64, Write)]) -> Vec<(String, i64, String)> {
        let mut touched = HashSet::new();
        for (_, write) in batch {
            for (e, _) in write.engine_events() {
                let entry = self
                    .orgs
                    .entry(e.org.as_str().to_string())
                    .or_insert_with(|| Entry::Seeded(State::default(), None));
                if let Entry::Seeded(state, latest) = entry {
                    let state = std::mem::take(state);
                    *entry = Entry::Tracking(Tracker::new(state, latest.take(), e.at.as_millis()));
                }
                if let Entry::Tracking(tracker) = entry {
                    tracker.apply(e);
                }
                touched.insert(e.org.as_str());
            }
        }
        let mut rows = Vec::new();
        for org in touched {
            if let Some(Entry::Tracking(tracker)) = self.orgs.get_mut(org) {
                for hour in tracker.drain() {
                    let body = serde_json::to_string(&hour).expect("an hour renders to JSON");
                    rows.push((org.to_string(), hour.start_ms as i64, body));
                }
            }
        }
        rows
    }
}
