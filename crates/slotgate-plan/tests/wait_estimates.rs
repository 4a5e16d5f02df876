//! The engine's expected waits (`estimated_wait_s`) against the waits calls
//! really had, through the real engine on the simulator's clock: Poisson
//! arrivals, exponential durations, steady state (one hour of warm-up), at
//! loads where most calls queue (occupancy about 0.96).
//!
//! What is compared, over every call that queued in the measured window and
//! was admitted (no call gives up: patience is unlimited):
//!
//! - (a), (b): `median |estimate - wait|` against `median wait`, both over the
//!   same calls, where `estimate` is the `call.queued` event's estimate and
//!   `wait` the time from queueing to admission. Calls queued while there
//!   was too little history (no estimate) are counted apart and must be few.
//! - (c): for calls at position 1, `median |estimate - wait|` against the mean
//!   time between two releases of the slots they wait for (the pool's mean
//!   duration over its slots). Both calls that queued at position 1 and
//!   calls that moved up to it (estimate and remaining wait read the moment
//!   it became first in the queue) are checked.
//!
//! `cargo test -p slotgate-plan --test wait_estimates -- --nocapture` prints the figures.

use slotgate_core::CallType;
use slotgate_plan::sim::{
    wait_estimates, Arrivals, DurationDist, Patience, SimConfig, StreamSpec, WaitSample,
};

const MEAN_S: f64 = 60.0;

fn stream(agent: &str, call_type: CallType, reserved: u32, erlangs: f64) -> StreamSpec {
    StreamSpec {
        agent: agent.into(),
        call_type,
        reserved,
        arrivals: Arrivals::Poisson {
            calls_per_hour: erlangs / MEAN_S * 3600.0,
        },
        duration: DurationDist::Exponential { mean_s: MEAN_S },
        patience: Patience::Unlimited,
        service_level_within_s: None,
    }
}

fn org(limit: u32, streams: Vec<StreamSpec>, seed: u64) -> SimConfig {
    SimConfig {
        limit,
        streams,
        horizon_s: 2.0 * 86_400.0,
        warmup_s: 3_600.0,
        replications: 1,
        seed,
        service_level_within_s: 20.0,
        confidence: 0.95,
        threads: 1,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    assert!(!v.is_empty(), "no samples");
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median absolute error and median of the real values, seconds, over the
/// pairs `(estimate, real)` in ms.
fn errors(pairs: impl Iterator<Item = (u64, u64)>) -> (f64, f64, usize) {
    let (abs, real): (Vec<f64>, Vec<f64>) = pairs
        .map(|(e, w)| ((e as f64 - w as f64).abs() / 1000.0, w as f64 / 1000.0))
        .unzip();
    let n = abs.len();
    (median(abs), median(real), n)
}

/// Checks (a)/(b) and (c) on `samples` of calls whose slots free every `gap_s` on average.
fn check(what: &str, samples: &[WaitSample], gap_s: f64) {
    let without = samples.iter().filter(|s| s.estimate_ms.is_none()).count();
    let (err, wait, n) = errors(
        samples
            .iter()
            .filter_map(|s| Some((s.estimate_ms?, s.waited_ms))),
    );
    let mean_pos = samples.iter().map(|s| s.position as f64).sum::<f64>() / samples.len() as f64;
    eprintln!(
        "{what}: {n} queued calls (mean position {mean_pos:.1}; {without} without estimate): \
         median |estimate - wait| {err:.2} s, median wait {wait:.2} s, ratio {:.3}",
        err / wait
    );
    assert!(
        without * 100 <= samples.len(),
        "{what}: too many calls without estimate"
    );
    assert!(n >= 5_000, "{what}: too few queued calls to judge ({n})");
    assert!(
        err <= 0.25 * wait,
        "{what}: median error {err:.2} s > 25% of {wait:.2} s"
    );

    let (err1, wait1, n1) = errors(
        samples
            .iter()
            .filter(|s| s.position == 1)
            .filter_map(|s| Some((s.estimate_ms?, s.waited_ms))),
    );
    let (err_h, wait_h, n_h) = errors(
        samples
            .iter()
            .filter_map(|s| Some((s.at_head_estimate_ms?, s.at_head_waited_ms?))),
    );
    eprintln!(
        "{what}: position 1 on queueing: {n1} calls, median |estimate - wait| {err1:.2} s \
         (median wait {wait1:.2} s); at reaching position 1: {n_h} calls, median error \
         {err_h:.2} s (median wait {wait_h:.2} s); mean time between releases {gap_s:.2} s"
    );
    assert!(
        err1 <= gap_s,
        "{what}: position 1 error {err1:.2} s > {gap_s:.2} s"
    );
    assert!(
        err_h <= gap_s,
        "{what}: head error {err_h:.2} s > {gap_s:.2} s"
    );
}

#[test]
fn shared_pool_only() {
    // M/M/20 at 19.2 erlangs (occupancy 0.96): a release every 3 s when full.
    let cfg = org(20, vec![stream("agent-a", CallType::Inbound, 0, 19.2)], 11);
    let samples = wait_estimates(&cfg).unwrap();
    check("shared pool", &samples, MEAN_S / 20.0);
}

#[test]
fn reservations_beside_a_shared_pool() {
    // 20 slots: agent-a reserves 4 inbound, agent-b 4 chat, 12 shared; both
    // overflow into the shared pool, which agent-c uses alone too.
    let cfg = org(
        20,
        vec![
            stream("agent-a", CallType::Inbound, 4, 5.0),
            stream("agent-b", CallType::Chat, 4, 5.0),
            stream("agent-c", CallType::Outbound, 0, 9.2),
        ],
        12,
    );
    let samples = wait_estimates(&cfg).unwrap();
    check("with reservations", &samples, MEAN_S / 20.0);
    for (i, name) in ["agent-a inbound", "agent-b chat", "agent-c outbound"]
        .iter()
        .enumerate()
    {
        let (err, wait, n) = errors(
            samples
                .iter()
                .filter(|s| s.stream == i)
                .filter_map(|s| Some((s.estimate_ms?, s.waited_ms))),
        );
        eprintln!("  {name}: {n} queued, median error {err:.2} s, median wait {wait:.2} s");
    }
}
