//! How good the engine's expected waits are: every queued call's
//! `estimated_wait_ms` beside the wait it then had, from a simulation.
//!
//! [`wait_estimates`] runs the org as [`crate::simulate`] does (the real
//! engine on a simulated clock) and records, for each call that queued in
//! the measured window and was admitted, what the engine estimated when it
//! queued (the `call.queued` event's estimate) and when it reached the head
//! of the queue (position 1, read from the engine's queue at that instant),
//! and how long it then waited.

use std::collections::HashMap;

use serde::Serialize;
use slotgate_core::{Engine, Event, EventKind, Timestamp};

use crate::cancel::Cancel;
use crate::error::Result;
use crate::sim::run::{replicate_observed, Model, Observer, ORG};
use crate::sim::{replication_seed, SimConfig};

/// One queued call's expected waits and its real ones, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WaitSample {
    /// The stream (index in [`SimConfig::streams`]) of the call.
    pub stream: usize,
    /// Its position when it queued.
    pub position: u64,
    /// The estimate when it queued (`None`: too little history then).
    pub estimate_ms: Option<u64>,
    /// How long it waited from then until admitted.
    pub waited_ms: u64,
    /// The estimate when it reached position 1, if it was ever there before
    /// its admission (a call admitted through reserved slots may never be).
    pub at_head_estimate_ms: Option<u64>,
    /// How long it waited from reaching position 1 until admitted.
    pub at_head_waited_ms: Option<u64>,
}

/// A queued call being watched.
#[derive(Debug)]
struct Pending {
    stream: usize,
    position: u64,
    queued_ms: u64,
    estimate_ms: Option<u64>,
    /// When it reached position 1, and the estimate then.
    head: Option<(u64, Option<u64>)>,
}

/// The observer that collects [`WaitSample`]s of one replication.
#[derive(Debug)]
struct Collector<'m> {
    model: &'m Model,
    /// Watched calls by id: the simulator reuses an id only after its call
    /// ended, so an id names one live call.
    pending: HashMap<String, Pending>,
    /// The call at the head of the queue after the last step.
    head: Option<String>,
    samples: Vec<WaitSample>,
}

impl Observer for Collector<'_> {
    fn event(&mut self, event: &Event) {
        let at = event.at.as_millis();
        match &event.kind {
            EventKind::CallQueued {
                call,
                agent,
                call_type,
                position,
                estimated_wait_ms,
                ..
            } if at >= self.model.warmup_ms => {
                let stream = self
                    .model
                    .streams
                    .iter()
                    .position(|s| s.agent == *agent && s.call_type == *call_type)
                    .expect("every call is of a stream");
                let pending = Pending {
                    stream,
                    position: *position,
                    queued_ms: at,
                    estimate_ms: *estimated_wait_ms,
                    head: None,
                };
                self.pending.insert(call.to_string(), pending);
            }
            EventKind::CallAdmitted { call, .. } => {
                if let Some(p) = self.pending.remove(call.as_str()) {
                    self.samples.push(WaitSample {
                        stream: p.stream,
                        position: p.position,
                        estimate_ms: p.estimate_ms,
                        waited_ms: at - p.queued_ms,
                        at_head_estimate_ms: p.head.and_then(|(_, e)| e),
                        at_head_waited_ms: p.head.map(|(since, _)| at - since),
                    });
                }
            }
            EventKind::CallEnded { call, .. } => {
                self.pending.remove(call.as_str());
            }
            _ => {}
        }
    }

    fn settled(&mut self, engine: &Engine, now_ms: u64) {
        let now = Timestamp::from_millis(now_ms);
        let first = engine
            .queued_calls(ORG, now)
            .expect("the simulated org exists")
            .next();
        let id = first.as_ref().map(|c| c.id.to_string());
        if id == self.head {
            return;
        }
        if let (Some(view), Some(id)) = (first, &id) {
            if let Some(p) = self.pending.get_mut(id) {
                p.head.get_or_insert((now_ms, view.estimated_wait_ms));
            }
        }
        self.head = id;
    }
}

/// Runs `cfg`'s replications one after the other and returns every measured
/// queued call that was admitted, replication by replication, in admission order.
pub fn wait_estimates(cfg: &SimConfig) -> Result<Vec<WaitSample>> {
    let model = Model::new(cfg)?;
    let mut samples = Vec::new();
    for i in 0..u64::from(cfg.replications) {
        let collector = Collector {
            model: &model,
            pending: HashMap::new(),
            head: None,
            samples: Vec::new(),
        };
        let (_, collector) = replicate_observed(
            &model,
            replication_seed(cfg.seed, i),
            collector,
            &Cancel::new(),
        )?;
        samples.extend(collector.samples);
    }
    Ok(samples)
}
