//! The simulator: an org's traffic through the real engine, replicated for confidence intervals.
//!
//! [`simulate`] takes a [`SimConfig`] (limit, reservations, arrivals per
//! agent and type, durations, patience) and returns a [`SimReport`]: per
//! agent and type, per type and for the org, the service level, wait
//! percentiles, abandonment and slot usage, each with a Student-t confidence
//! interval over independent replications. Replications run on threads
//! (`std::thread::scope`), each with its own engine and seed, so the answer
//! depends on the seed only, never on the thread count.
//!
//! [`wait_estimates`] runs the same org to check the engine's expected waits
//! against the waits calls really had.

mod alias;
mod config;
mod estimates;
mod report;
mod run;
mod tally;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

pub use config::{Arrivals, DurationDist, Patience, SimConfig, StreamSpec};
pub use estimates::{wait_estimates, WaitSample};
pub use report::{Metrics, SimReport, StreamReport, TypeReport};

use crate::cancel::Cancel;
use crate::error::Result;
use crate::rng::splitmix64;
use run::{replicate, Model};
use slotgate_core::CallType;
use tally::Tally;

/// The most calls the simulated org may have queued. A configuration far
/// below its traffic (a what-if with `limit: 0`) would otherwise queue every
/// call of the run, and the simulation's memory would grow with its length;
/// past the cap arrivals are turned away, counted in the report's
/// `queue_full_calls` (and as not admitted in the service level).
pub const MAX_SIMULATED_QUEUE: u32 = 20_000;

/// Runs `cfg.replications` independent replications of the org and reports
/// every measure with its confidence interval.
pub fn simulate(cfg: &SimConfig) -> Result<SimReport> {
    simulate_cancellable(cfg, &Cancel::new())
}

/// [`simulate`], stopping with [`Error::Cancelled`](crate::Error::Cancelled)
/// soon after `cancel` is set.
pub fn simulate_cancellable(cfg: &SimConfig, cancel: &Cancel) -> Result<SimReport> {
    cancel.check()?;
    let model = Model::new(cfg)?;
    let n = cfg.replications as usize;
    let threads = match cfg.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        t => t as usize,
    }
    .min(n);
    let results: Mutex<Vec<Option<Result<Vec<Tally>>>>> = Mutex::new(vec![None; n]);
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let out = replicate(&model, replication_seed(cfg.seed, i as u64), cancel);
                // Held only to store one finished replication.
                results.lock().expect("no replication panics while storing")[i] = Some(out);
            });
        }
    });
    let mut per_replication = Vec::with_capacity(n);
    for r in results.into_inner().expect("every thread has finished") {
        per_replication.push(r.expect("every replication ran")?);
    }
    Ok(summarise(cfg, &model, &per_replication))
}

/// Replication `i`'s seed: well apart from every other replication's.
pub(crate) fn replication_seed(seed: u64, i: u64) -> u64 {
    let mut x = seed ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03);
    splitmix64(&mut x)
}

fn summarise(cfg: &SimConfig, model: &Model, reps: &[Vec<Tally>]) -> SimReport {
    let window = model.window_ms();
    let level = cfg.confidence;
    let group = |pick: &dyn Fn(usize) -> bool| -> Vec<Tally> {
        reps.iter()
            .map(|rep| {
                let mut sum = Tally::default();
                for (_, t) in rep.iter().enumerate().filter(|(i, _)| pick(*i)) {
                    sum.merge(t);
                }
                sum
            })
            .collect()
    };
    let streams = cfg
        .streams
        .iter()
        .enumerate()
        .map(|(i, s)| StreamReport {
            agent: s.agent.clone(),
            call_type: s.call_type,
            reserved: s.reserved,
            metrics: report::metrics(&group(&|j| j == i), window, level),
        })
        .collect();
    let types = CallType::ALL
        .into_iter()
        .filter(|t| cfg.streams.iter().any(|s| s.call_type == *t))
        .map(|t| TypeReport {
            call_type: t,
            metrics: report::metrics(&group(&|j| cfg.streams[j].call_type == t), window, level),
        })
        .collect();
    let all = group(&|_| true);
    let org = report::metrics(&all, window, level);
    let occupancy: Vec<f64> = all
        .iter()
        .map(|t| {
            if model.limit == 0 {
                0.0
            } else {
                t.busy_ms / window / f64::from(model.limit)
            }
        })
        .collect();
    SimReport {
        limit: cfg.limit,
        replications: cfg.replications,
        confidence: level,
        service_level_within_s: cfg.service_level_within_s,
        streams,
        types,
        org,
        occupancy: crate::stats::Estimate::from_replications(&occupancy, level),
        lost_calls: all.iter().map(|t| t.lost).sum(),
        queue_full_calls: all.iter().map(|t| t.queue_full).sum(),
        queue_cap: MAX_SIMULATED_QUEUE,
    }
}
