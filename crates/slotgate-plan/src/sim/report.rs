//! What a simulation answers: per (agent, type), per type and for the org, each measure with its confidence interval.

use serde::{Deserialize, Serialize};
use slotgate_core::CallType;

use crate::sim::tally::Tally;
use crate::stats::Estimate;

/// The measures of one group of calls (a stream, a type, or the whole org),
/// each the mean over replications with its confidence interval.
///
/// "Calls" are those that arrived in the measured window. A call's wait runs
/// from its arrival to its admission, or to its giving up (`max_wait`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Metrics {
    /// Calls per replication.
    pub calls: Estimate,
    /// Share of calls admitted within the service-level time (a call that
    /// gives up counts as not admitted).
    pub service_level: Estimate,
    /// Share of calls that queued at all.
    pub prob_wait: Estimate,
    /// Mean wait of all calls, seconds.
    pub mean_wait_s: Estimate,
    /// Median wait of all calls, seconds (to within 1.6%).
    pub wait_p50_s: Estimate,
    /// 90th percentile of the wait, seconds.
    pub wait_p90_s: Estimate,
    /// 99th percentile of the wait, seconds.
    pub wait_p99_s: Estimate,
    /// Share of calls that gave up waiting.
    pub abandoned: Estimate,
    /// Share of calls still waiting when the run ended with no slot they can
    /// use ever freeing (e.g. a type with no reservation and no shared pool).
    pub stranded: Estimate,
    /// Mean slots these calls held over the window.
    pub busy_slots: Estimate,
}

/// One (agent, type)'s results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamReport {
    /// The agent.
    pub agent: String,
    /// The call type.
    pub call_type: CallType,
    /// Its reservation, as simulated.
    pub reserved: u32,
    /// Its measures.
    pub metrics: Metrics,
}

/// One call type's results, all agents together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TypeReport {
    /// The call type.
    pub call_type: CallType,
    /// Its measures.
    pub metrics: Metrics,
}

/// A simulation's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SimReport {
    /// The limit simulated.
    pub limit: u32,
    /// Replications run.
    pub replications: u32,
    /// The confidence level of every interval.
    pub confidence: f64,
    /// The service level's `T`, seconds.
    pub service_level_within_s: f64,
    /// Per (agent, type), in the order of the config's streams.
    pub streams: Vec<StreamReport>,
    /// Per call type with traffic, in the API's order.
    pub types: Vec<TypeReport>,
    /// The whole org. Its service level counts each call against its own
    /// stream's time, so with different times per type it is a blend.
    pub org: Metrics,
    /// Mean busy slots over the limit.
    pub occupancy: Estimate,
    /// Calls the engine ended by lease or hold expiry: 0 unless the simulator
    /// itself is wrong (it keeps every call held).
    pub lost_calls: u64,
    /// Calls turned away, all replications together, because the simulated
    /// queue held `queue_cap` calls already: more than 0 means the
    /// configuration is far below its traffic and the queue was cut short
    /// (these calls count as not admitted; waits are understated).
    pub queue_full_calls: u64,
    /// The most calls the simulated queue holds.
    pub queue_cap: u32,
}

/// One replication's value of each measure, for one group.
fn point(t: &Tally, window_ms: f64) -> [f64; 10] {
    let n = t.offered as f64;
    let share = |k: u64| if t.offered == 0 { 0.0 } else { k as f64 / n };
    [
        n,
        if t.offered == 0 {
            1.0
        } else {
            t.within as f64 / n
        },
        share(t.queued),
        if t.offered == 0 {
            0.0
        } else {
            t.wait_sum_ms / n / 1000.0
        },
        t.waits.quantile_ms(0.50) / 1000.0,
        t.waits.quantile_ms(0.90) / 1000.0,
        t.waits.quantile_ms(0.99) / 1000.0,
        share(t.abandoned),
        share(t.stranded),
        t.busy_ms / window_ms,
    ]
}

/// The measures of one group, from its tally in each replication.
pub(crate) fn metrics(per_replication: &[Tally], window_ms: f64, level: f64) -> Metrics {
    let points: Vec<[f64; 10]> = per_replication
        .iter()
        .map(|t| point(t, window_ms))
        .collect();
    let est = |i: usize| {
        let v: Vec<f64> = points.iter().map(|p| p[i]).collect();
        Estimate::from_replications(&v, level)
    };
    Metrics {
        calls: est(0),
        service_level: est(1),
        prob_wait: est(2),
        mean_wait_s: est(3),
        wait_p50_s: est(4),
        wait_p90_s: est(5),
        wait_p99_s: est(6),
        abandoned: est(7),
        stranded: est(8),
        busy_slots: est(9),
    }
}
