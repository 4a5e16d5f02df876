//! Observed traffic: what an org's recorded calls say about its arrivals, durations, waits and patience.
//!
//! [`observe`] reads the calls that arrived in a window (each as a
//! [`CallRecord`]: when it arrived, was admitted, ended and why) and reports,
//! per agent and type and per type:
//!
//! - the arrival rate over the window, and by hour of day (UTC);
//! - call durations (admission to end) of the calls that ended in the window;
//! - queue waits (arrival to admission) and the share of calls that queued;
//! - the share that gave up while queued (cancelled, abandoned or timed out)
//!   and after how long;
//! - the mean patience, by the standard estimate for exponential patience
//!   (Erlang A's model): the total time queued calls spent waiting divided by
//!   the number that gave up. Calls still queued, or admitted, count only
//!   their wait, so calls that never gave up are not mistaken for patient
//!   ones (the estimate is the maximum-likelihood one for censored waits).
//!
//! [`Traffic::specs`] turns the report into the planner's and the
//! simulator's input.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use slotgate_core::{CallType, EndReason};

use crate::plan::TrafficSpec;

/// One recorded call, as the store keeps it (times in ms since the Unix epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// Its agent.
    pub agent: String,
    /// Its type.
    pub call_type: CallType,
    /// When it arrived: queued, or admitted at once.
    pub arrived_ms: u64,
    /// When it was admitted, if it was.
    pub admitted_ms: Option<u64>,
    /// When it ended, if it has.
    pub ended_ms: Option<u64>,
    /// Why it ended, if it has.
    pub end_reason: Option<EndReason>,
}

/// The distribution of a duration, seconds; `None` fields mean no sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Summary {
    /// How many values.
    pub count: u64,
    /// Their mean.
    pub mean_s: f64,
    /// Their standard deviation.
    pub sd_s: f64,
    /// The median.
    pub p50_s: f64,
    /// The 90th percentile.
    pub p90_s: f64,
    /// The 99th percentile.
    pub p99_s: f64,
    /// The largest.
    pub max_s: f64,
}

/// What one group of calls (an agent and type, or a type) did in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Observed {
    /// Calls that arrived in the window.
    pub calls: u64,
    /// Mean arrivals per hour over the window.
    pub calls_per_hour: f64,
    /// Mean arrivals per hour for each hour of the day (UTC, hour 0 first);
    /// null for an hour the window does not cover.
    pub calls_per_hour_by_hour: Vec<Option<f64>>,
    /// Durations (admission to end) of the calls that arrived in the window and have ended; null if none.
    pub duration: Option<Summary>,
    /// Share of the calls that queued at all.
    pub waited: f64,
    /// Waits (arrival to admission) of the admitted calls, zeros included; null if none was admitted.
    pub wait: Option<Summary>,
    /// Share of the calls that gave up while queued (cancelled, abandoned or timed out).
    pub gave_up: f64,
    /// How long those calls had waited when they gave up; null if none did.
    pub gave_up_after: Option<Summary>,
    /// Mean patience in the queue, seconds (total waiting time / calls that
    /// gave up); null if none gave up: calls wait as long as it takes.
    pub patience_s: Option<f64>,
    /// Share of the calls admitted within the report's
    /// `service_level_within_s` (a call that gave up first, or has waited
    /// longer, counts against; one still queued for less is left out); null
    /// with no such call.
    pub service_level: Option<f64>,
}

/// One agent and type's traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamTraffic {
    /// The agent.
    pub agent: String,
    /// The call type.
    pub call_type: CallType,
    /// What its calls did.
    #[serde(flatten)]
    pub observed: Observed,
    /// Up to [`MAX_DURATION_SAMPLES`] of its durations, seconds, spread over
    /// their distribution: what simulations of this traffic draw from. Not
    /// part of the API's answer.
    #[serde(skip)]
    pub duration_samples_s: Vec<f64>,
}

/// The most observed durations a stream's traffic carries into a simulation
/// (its quantiles to 0.1%).
pub const MAX_DURATION_SAMPLES: usize = 1000;

/// One call type's traffic, all agents together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TypeTraffic {
    /// The call type.
    pub call_type: CallType,
    /// What its calls did.
    #[serde(flatten)]
    pub observed: Observed,
}

/// An org's observed traffic over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Traffic {
    /// The window's start, ms since the Unix epoch.
    pub from_ms: u64,
    /// The window's end, ms since the Unix epoch.
    pub to_ms: u64,
    /// The window's length, seconds.
    pub window_s: f64,
    /// The time of the service levels: admitted within this many seconds.
    pub service_level_within_s: f64,
    /// Per agent and type, by agent then type.
    pub streams: Vec<StreamTraffic>,
    /// Per type with calls.
    pub types: Vec<TypeTraffic>,
}

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// The traffic of `calls` between `from_ms` and `to_ms`: only calls that
/// arrived in the window count; events after `to_ms` are ignored. Service
/// levels count calls admitted within `within_s` seconds.
pub fn observe(
    calls: impl IntoIterator<Item = CallRecord>,
    from_ms: u64,
    to_ms: u64,
    within_s: f64,
) -> Traffic {
    let to_ms = to_ms.max(from_ms);
    let within_ms = (within_s.max(0.0) * 1000.0) as u64;
    let mut streams: BTreeMap<(String, CallType), Tally> = BTreeMap::new();
    for c in calls {
        if c.arrived_ms < from_ms || c.arrived_ms >= to_ms {
            continue;
        }
        let key = (c.agent.clone(), c.call_type);
        streams.entry(key).or_default().add(&c, to_ms, within_ms);
    }
    let mut types: BTreeMap<CallType, Tally> = BTreeMap::new();
    for ((_, t), tally) in &streams {
        types.entry(*t).or_default().merge(tally);
    }
    let covered = hour_coverage(from_ms, to_ms);
    Traffic {
        from_ms,
        to_ms,
        window_s: (to_ms - from_ms) as f64 / 1000.0,
        service_level_within_s: within_ms as f64 / 1000.0,
        streams: streams
            .into_iter()
            .map(|((agent, call_type), mut t)| StreamTraffic {
                agent,
                call_type,
                duration_samples_s: spread(&mut t.durations, MAX_DURATION_SAMPLES),
                observed: t.finish(from_ms, to_ms, &covered),
            })
            .collect(),
        types: CallType::ALL
            .into_iter()
            .filter_map(|t| {
                types.remove(&t).map(|tally| TypeTraffic {
                    call_type: t,
                    observed: tally.finish(from_ms, to_ms, &covered),
                })
            })
            .collect(),
    }
}

impl Traffic {
    /// The planner's input: each (agent, type) with arrivals and at least one
    /// ended call, as Poisson arrivals at the observed rate (by hour of day
    /// when the window covers every hour), the observed durations (their
    /// mean and deviation for the formulas), and the observed patience.
    pub fn specs(&self) -> Vec<TrafficSpec> {
        self.streams
            .iter()
            .filter_map(|s| {
                let d = s.observed.duration?;
                (s.observed.calls_per_hour > 0.0 && d.mean_s > 0.0).then(|| TrafficSpec {
                    agent: s.agent.clone(),
                    call_type: s.call_type,
                    calls_per_hour: s.observed.calls_per_hour,
                    mean_duration_s: d.mean_s,
                    duration_sd_s: (d.sd_s > 0.0).then_some(d.sd_s),
                    patience_s: s.observed.patience_s,
                    calls_per_hour_by_hour: s
                        .observed
                        .calls_per_hour_by_hour
                        .iter()
                        .copied()
                        .collect(),
                    duration_samples_s: Some(s.duration_samples_s.clone()),
                })
            })
            .collect()
    }
}

/// Milliseconds of the window in each hour of the day.
fn hour_coverage(from_ms: u64, to_ms: u64) -> [u64; 24] {
    let mut covered = [0u64; 24];
    let mut t = from_ms;
    while t < to_ms {
        let hour_end = (t / HOUR_MS + 1) * HOUR_MS;
        let end = hour_end.min(to_ms);
        covered[((t % DAY_MS) / HOUR_MS) as usize] += end - t;
        t = end;
    }
    covered
}

/// One group's raw figures, in ms.
#[derive(Debug, Default, Clone)]
struct Tally {
    calls: u64,
    by_hour: [u64; 24],
    queued: u64,
    durations: Vec<u64>,
    waits: Vec<u64>,
    gave_up_after: Vec<u64>,
    /// Total time queued calls spent waiting, up to admission, giving up or the window's end.
    waiting_ms: u64,
    /// Calls whose service level is known, and those admitted in time.
    judged: u64,
    in_time: u64,
}

impl Tally {
    fn add(&mut self, c: &CallRecord, to_ms: u64, within_ms: u64) {
        self.calls += 1;
        self.by_hour[((c.arrived_ms % DAY_MS) / HOUR_MS) as usize] += 1;
        let ended = c.ended_ms.filter(|&e| e <= to_ms);
        let admitted = c.admitted_ms.filter(|&a| a <= to_ms);
        if let Some(a) = admitted {
            let wait = a.saturating_sub(c.arrived_ms);
            self.waits.push(wait);
            self.judged += 1;
            self.in_time += u64::from(wait <= within_ms);
            if wait > 0 {
                self.queued += 1;
                self.waiting_ms += wait;
            }
            if let Some(e) = ended {
                self.durations.push(e.saturating_sub(a));
            }
        } else {
            // Still queued at the window's end, or gave up.
            self.queued += 1;
            let gave_up = ended.is_some()
                && matches!(
                    c.end_reason,
                    Some(EndReason::Cancelled | EndReason::Abandoned | EndReason::TimedOut)
                );
            let until = if gave_up { ended } else { None }.unwrap_or(to_ms);
            let waited = until.saturating_sub(c.arrived_ms);
            self.waiting_ms += waited;
            self.judged += u64::from(gave_up || waited > within_ms);
            if gave_up {
                self.gave_up_after.push(waited);
            }
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.calls += other.calls;
        for (a, b) in self.by_hour.iter_mut().zip(other.by_hour) {
            *a += b;
        }
        self.queued += other.queued;
        self.durations.extend_from_slice(&other.durations);
        self.waits.extend_from_slice(&other.waits);
        self.gave_up_after.extend_from_slice(&other.gave_up_after);
        self.waiting_ms += other.waiting_ms;
        self.judged += other.judged;
        self.in_time += other.in_time;
    }

    fn finish(mut self, from_ms: u64, to_ms: u64, covered: &[u64; 24]) -> Observed {
        let per_hour = |n: u64, ms: u64| n as f64 * HOUR_MS as f64 / ms as f64;
        let share = |n: u64| {
            if self.calls == 0 {
                0.0
            } else {
                n as f64 / self.calls as f64
            }
        };
        let gave_up = self.gave_up_after.len() as u64;
        Observed {
            calls: self.calls,
            calls_per_hour: if to_ms > from_ms {
                per_hour(self.calls, to_ms - from_ms)
            } else {
                0.0
            },
            calls_per_hour_by_hour: (0..24)
                .map(|h| (covered[h] > 0).then(|| per_hour(self.by_hour[h], covered[h])))
                .collect(),
            waited: share(self.queued),
            gave_up: share(gave_up),
            patience_s: (gave_up > 0).then(|| self.waiting_ms as f64 / 1000.0 / gave_up as f64),
            service_level: (self.judged > 0).then(|| self.in_time as f64 / self.judged as f64),
            duration: summary(&mut self.durations),
            wait: summary(&mut self.waits),
            gave_up_after: summary(&mut self.gave_up_after),
        }
    }
}

/// At most `n` of `ms`, in seconds, evenly spread over their sorted order
/// (so their quantiles are kept).
fn spread(ms: &mut [u64], n: usize) -> Vec<f64> {
    ms.sort_unstable();
    let step = ms.len().div_ceil(n).max(1);
    ms.iter()
        .step_by(step)
        .map(|&v| v as f64 / 1000.0)
        .collect()
}

/// Mean, deviation and nearest-rank percentiles of `ms`, in seconds.
fn summary(ms: &mut [u64]) -> Option<Summary> {
    if ms.is_empty() {
        return None;
    }
    ms.sort_unstable();
    let n = ms.len();
    let s = |v: u64| v as f64 / 1000.0;
    let mean = ms.iter().map(|&v| s(v)).sum::<f64>() / n as f64;
    let var = ms.iter().map(|&v| (s(v) - mean).powi(2)).sum::<f64>() / n as f64;
    let rank = |p: f64| ms[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
    Some(Summary {
        count: n as u64,
        mean_s: mean,
        sd_s: var.sqrt(),
        p50_s: s(rank(0.5)),
        p90_s: s(rank(0.9)),
        p99_s: s(rank(0.99)),
        max_s: s(ms[n - 1]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(agent: &str, t: CallType, arrived: u64, admitted: Option<u64>) -> CallRecord {
        CallRecord {
            agent: agent.into(),
            call_type: t,
            arrived_ms: arrived,
            admitted_ms: admitted,
            ended_ms: None,
            end_reason: None,
        }
    }

    fn ended(mut c: CallRecord, at: u64, why: EndReason) -> CallRecord {
        c.ended_ms = Some(at);
        c.end_reason = Some(why);
        c
    }

    #[test]
    fn rates_durations_waits_and_patience_come_from_the_records() {
        let h = HOUR_MS;
        let calls = vec![
            // Admitted at once, 60 s and 120 s long.
            ended(
                call("a", CallType::Inbound, 0, Some(0)),
                60_000,
                EndReason::Released,
            ),
            ended(
                call("a", CallType::Inbound, h, Some(h)),
                h + 120_000,
                EndReason::Released,
            ),
            // Waited 10 s, then 30 s long.
            ended(
                call("a", CallType::Inbound, 2 * h, Some(2 * h + 10_000)),
                2 * h + 40_000,
                EndReason::Released,
            ),
            // Gave up after 20 s.
            ended(
                call("a", CallType::Inbound, 3 * h, None),
                3 * h + 20_000,
                EndReason::TimedOut,
            ),
            // Another agent, another type; and one call before the window.
            call("b", CallType::Chat, 3 * h, Some(3 * h)),
            call("a", CallType::Inbound, 5 * h, Some(5 * h)),
        ];
        let t = observe(calls, 0, 4 * h, 5.0);
        assert_eq!(t.streams.len(), 2);
        let a = &t.streams[0].observed;
        assert_eq!((a.calls, t.streams[0].agent.as_str()), (4, "a"));
        assert_eq!(a.calls_per_hour, 1.0);
        assert_eq!(
            &a.calls_per_hour_by_hour[..5],
            &[Some(1.0), Some(1.0), Some(1.0), Some(1.0), None]
        );
        let d = a.duration.expect("three calls ended");
        assert_eq!(
            (d.count, d.mean_s, d.p50_s, d.max_s),
            (3, 70.0, 60.0, 120.0)
        );
        assert_eq!((a.waited, a.gave_up), (0.5, 0.25));
        let w = a.wait.expect("three admitted");
        assert_eq!((w.count, w.max_s), (3, 10.0));
        // 10 s + 20 s of waiting, one giving up.
        assert_eq!(a.patience_s, Some(30.0));
        // Admitted within 5 s: the two admitted at once, of four (one waited 10 s, one gave up).
        assert_eq!(a.service_level, Some(0.5));
        assert_eq!(a.gave_up_after.map(|g| g.mean_s), Some(20.0));
        // Chat's call is still active: no duration, no spec.
        assert_eq!(t.streams[1].observed.duration, None);
        let specs = t.specs();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].duration_samples_s, Some(vec![30.0, 60.0, 120.0]));
        // Four hours of the day observed: no rate for the others, so none by hour.
        assert_eq!(specs[0].calls_per_hour_by_hour, None);
        assert_eq!(
            (
                specs[0].calls_per_hour,
                specs[0].mean_duration_s,
                specs[0].patience_s
            ),
            (1.0, 70.0, Some(30.0))
        );
        assert_eq!(
            t.types.iter().map(|x| x.call_type).collect::<Vec<_>>(),
            [CallType::Chat, CallType::Inbound]
        );
    }

    #[test]
    fn a_call_still_queued_counts_its_wait_so_far_and_no_give_up() {
        let t = observe(
            [call("a", CallType::Outbound, 1_000, None)],
            0,
            11_000,
            20.0,
        );
        let o = &t.streams[0].observed;
        // Queued 10 s, less than 20: not judged yet.
        assert_eq!(o.service_level, None);
        assert_eq!((o.waited, o.gave_up, o.patience_s), (1.0, 0.0, None));
        assert_eq!(o.wait, None);
    }

    #[test]
    fn a_day_gives_rates_by_hour_and_many_durations_are_spread_over_their_quantiles() {
        let calls = (0..2400u64).map(|i| {
            let at = i * 36_000; // every 36 s for a day
            ended(
                call("a", CallType::Chat, at, Some(at)),
                at + 1000 + i,
                EndReason::Released,
            )
        });
        let specs = observe(calls, 0, DAY_MS, 20.0).specs();
        assert_eq!(specs[0].calls_per_hour_by_hour, Some(vec![100.0; 24]));
        let samples = specs[0].duration_samples_s.as_ref().unwrap();
        assert_eq!(samples.len(), 800); // every third of 2400
        assert_eq!((samples[0], samples[799]), (1.0, 3.397));
    }

    #[test]
    fn hours_are_covered_in_part_and_wrap_at_midnight() {
        let c = hour_coverage(23 * HOUR_MS + 1_800_000, DAY_MS + 900_000);
        assert_eq!((c[23], c[0], c[1]), (1_800_000, 900_000, 0));
    }
}
