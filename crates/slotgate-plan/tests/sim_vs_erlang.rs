//! The simulator against the formulas where both apply: one pool without
//! reservations, Poisson arrivals and exponential durations is exactly M/M/c
//! (Erlang C), and with exponential patience M/M/c+M (Erlang A). The formula's
//! value must fall inside the simulation's 99% confidence interval, and the
//! interval must be narrow enough for that to mean something.
//!
//! Seeds are fixed, so runs are repeatable; the assertions are against the
//! intervals, never against numbers this simulator produced before. Each of
//! the ~27 checks is at 99%, so for arbitrary seeds about one run in four has
//! one value just outside its interval (seen once while writing this, with
//! seed 202 for load 10/patience 180, and not with seeds 1 to 4): after a
//! change, a lone failure deserves a look with other seeds before it is
//! either believed or dismissed.
//! `cargo test -p slotgate-plan --test sim_vs_erlang -- --nocapture` prints the table.

use slotgate_core::CallType;
use slotgate_plan::sim::{Arrivals, DurationDist, Patience, SimConfig, StreamSpec};
use slotgate_plan::{simulate, ErlangA, ErlangC, Estimate};

const SLOTS: u32 = 10;
const MEAN_S: f64 = 60.0;
const WITHIN_S: f64 = 20.0;

fn one_pool(load: f64, patience: Patience, seed: u64) -> SimConfig {
    SimConfig {
        limit: SLOTS,
        streams: vec![StreamSpec {
            agent: "agent-a".into(),
            call_type: CallType::Inbound,
            reserved: 0,
            arrivals: Arrivals::Poisson {
                calls_per_hour: load / MEAN_S * 3600.0,
            },
            duration: DurationDist::Exponential { mean_s: MEAN_S },
            patience,
            service_level_within_s: None,
        }],
        horizon_s: 4.0 * 86_400.0,
        warmup_s: 3_600.0,
        replications: 10,
        seed,
        service_level_within_s: WITHIN_S,
        confidence: 0.99,
        threads: 0,
    }
}

/// Checks `formula` lies in `sim`'s interval, and that the interval is at
/// most `max_rel` of the value wide (so the check has teeth).
fn agrees(what: &str, sim: Estimate, formula: f64, max_rel: f64) {
    eprintln!(
        "{what:<34} formula {formula:>9.5}  sim {:>9.5} ± {:<8.5} ({:+.2}%)",
        sim.mean,
        sim.half_width,
        100.0 * (sim.mean - formula) / formula
    );
    assert!(
        sim.contains(formula),
        "{what}: formula {formula} outside {:?}",
        sim
    );
    assert!(
        sim.half_width <= max_rel * formula,
        "{what}: interval too wide to test: {:?}",
        sim
    );
}

#[test]
fn one_pool_without_patience_is_erlang_c() {
    for (i, &load) in [5.0, 8.0, 9.0].iter().enumerate() {
        let report = simulate(&one_pool(load, Patience::Unlimited, 1 + i as u64)).unwrap();
        let q = ErlangC::new(SLOTS, load / MEAN_S, MEAN_S).unwrap();
        let m = &report.org;
        assert_eq!(report.lost_calls, 0);
        let tag = |s: &str| format!("C load {load}: {s}");
        agrees(&tag("P(wait)"), m.prob_wait, q.prob_wait(), 0.25);
        agrees(&tag("mean wait s"), m.mean_wait_s, q.mean_wait_s(), 0.35);
        agrees(
            &tag("service level 20 s"),
            m.service_level,
            q.service_level(WITHIN_S),
            0.1,
        );
        agrees(&tag("busy slots"), m.busy_slots, q.load(), 0.05);
        if q.prob_wait() > 0.2 {
            agrees(
                &tag("p90 wait s"),
                m.wait_p90_s,
                q.wait_quantile_s(0.9),
                0.35,
            );
        }
    }
}

#[test]
fn one_pool_with_patience_is_erlang_a() {
    for (i, &(load, patience)) in [(9.0, 60.0), (12.0, 60.0), (10.0, 180.0)]
        .iter()
        .enumerate()
    {
        let cfg = one_pool(
            load,
            Patience::Exponential { mean_s: patience },
            1 + i as u64,
        );
        let report = simulate(&cfg).unwrap();
        let q = ErlangA::new(SLOTS, load / MEAN_S, MEAN_S, patience).unwrap();
        let m = &report.org;
        assert_eq!(report.lost_calls, 0);
        let tag = |s: &str| format!("A load {load} patience {patience}: {s}");
        agrees(&tag("P(wait)"), m.prob_wait, q.prob_wait(), 0.1);
        agrees(&tag("P(abandon)"), m.abandoned, q.prob_abandon(), 0.25);
        agrees(&tag("mean wait s"), m.mean_wait_s, q.mean_wait_s(), 0.2);
        agrees(
            &tag("service level 20 s"),
            m.service_level,
            q.service_level(WITHIN_S),
            0.1,
        );
        agrees(
            &tag("busy slots"),
            m.busy_slots,
            q.occupancy() * f64::from(SLOTS),
            0.05,
        );
    }
}
