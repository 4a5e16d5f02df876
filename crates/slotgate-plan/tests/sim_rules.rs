//! The simulator follows the engine's rules where no formula applies:
//! reservations protect their calls, a type with no room is stranded, arrivals
//! by hour and log-normal durations come out at their rates, and a seed gives
//! the same report whatever the thread count.

use slotgate_core::CallType;
use slotgate_plan::sim::{Arrivals, DurationDist, Patience, SimConfig, StreamSpec};
use slotgate_plan::simulate;

fn stream(agent: &str, t: CallType, reserved: u32, per_hour: f64, mean_s: f64) -> StreamSpec {
    StreamSpec {
        agent: agent.into(),
        call_type: t,
        reserved,
        arrivals: Arrivals::Poisson {
            calls_per_hour: per_hour,
        },
        duration: DurationDist::Exponential { mean_s },
        patience: Patience::Exponential { mean_s: 120.0 },
        service_level_within_s: None,
    }
}

fn config(limit: u32, streams: Vec<StreamSpec>) -> SimConfig {
    SimConfig {
        limit,
        streams,
        horizon_s: 86_400.0,
        warmup_s: 1_800.0,
        replications: 6,
        seed: 7,
        service_level_within_s: 20.0,
        confidence: 0.99,
        threads: 0,
    }
}

#[test]
fn a_reservation_protects_its_calls_from_a_flood() {
    // A: 3 erlangs of inbound; B: 12 erlangs of outbound into a limit of 10.
    let run = |reserved: u32| {
        let cfg = config(
            10,
            vec![
                stream("agent-a", CallType::Inbound, reserved, 180.0, 60.0),
                stream("agent-b", CallType::Outbound, 0, 720.0, 60.0),
            ],
        );
        simulate(&cfg).unwrap()
    };
    let (open, guarded) = (run(0), run(5));
    let (a_open, a_guarded) = (&open.streams[0].metrics, &guarded.streams[0].metrics);
    let b_guarded = &guarded.streams[1].metrics;
    assert!(
        a_guarded.service_level.mean - a_guarded.service_level.half_width
            > a_open.service_level.mean + a_open.service_level.half_width,
        "reserving 5 raises A's service level: {:?} vs {:?}",
        a_guarded.service_level,
        a_open.service_level
    );
    // At least what 5 slots of its own would give it (Erlang A): the shared pool can only add.
    let own = slotgate_plan::ErlangA::new(5, 180.0 / 3600.0, 60.0, 120.0).unwrap();
    assert!(
        a_guarded.service_level.mean + a_guarded.service_level.half_width
            >= own.service_level(20.0),
        "{:?} vs {}",
        a_guarded.service_level,
        own.service_level(20.0)
    );
    assert!(b_guarded.abandoned.mean > a_guarded.abandoned.mean);
    // The limit holds: never more than 10 busy on average.
    assert!(guarded.org.busy_slots.mean <= 10.0 + 1e-9);
    assert_eq!(guarded.lost_calls, 0);
}

#[test]
fn calls_with_no_room_anywhere_are_stranded_not_lost() {
    // L = R = 2, all of it A's: B has no reservation and no shared pool.
    let mut b = stream("agent-b", CallType::Chat, 0, 60.0, 60.0);
    b.patience = Patience::Unlimited;
    let mut cfg = config(
        2,
        vec![stream("agent-a", CallType::Inbound, 2, 30.0, 60.0), b],
    );
    cfg.horizon_s = 4.0 * 3600.0;
    let report = simulate(&cfg).unwrap();
    let b = &report.streams[1].metrics;
    assert_eq!(b.stranded.mean, 1.0, "every B call waits for ever");
    assert_eq!(b.service_level.mean, 0.0);
    assert_eq!(b.busy_slots.mean, 0.0);
    assert!(report.streams[0].metrics.service_level.mean > 0.7);
}

#[test]
fn arrivals_by_hour_and_log_normal_durations_come_out_at_their_rates() {
    // Office hours only: 9:00-17:00 at 600 calls/h; log-normal durations, mean 90 s, sd 120 s.
    let mut hourly = vec![0.0; 24];
    hourly[9..17].iter_mut().for_each(|r| *r = 600.0);
    let spec = StreamSpec {
        agent: "agent-a".into(),
        call_type: CallType::Webcall,
        reserved: 0,
        arrivals: Arrivals::Hourly {
            calls_per_hour: hourly,
        },
        duration: DurationDist::LogNormal {
            mean_s: 90.0,
            sd_s: 120.0,
        },
        patience: Patience::Unlimited,
        service_level_within_s: None,
    };
    let mut cfg = config(1_000, vec![spec]);
    cfg.warmup_s = 0.0;
    cfg.horizon_s = 2.0 * 86_400.0;
    let report = simulate(&cfg).unwrap();
    let m = &report.org;
    let calls = 2.0 * 8.0 * 600.0;
    assert!(m.calls.contains(calls), "{:?} vs {calls}", m.calls);
    // Nobody waits with 1,000 slots; busy slots = offered load averaged over the day (Little).
    assert_eq!(m.prob_wait.mean, 0.0);
    let load = calls * 90.0 / cfg.horizon_s;
    assert!(m.busy_slots.contains(load), "{:?} vs {load}", m.busy_slots);
}

#[test]
fn empirical_durations_are_drawn_from_the_sample() {
    // Durations 30 s or 90 s, equally often: mean 60 s. Ample slots: busy = λ · 60 s.
    let mut spec = stream("agent-a", CallType::Chat, 0, 600.0, 1.0);
    spec.duration = DurationDist::Empirical {
        samples_s: vec![30.0, 90.0],
    };
    let report = simulate(&config(100, vec![spec])).unwrap();
    let m = &report.org;
    assert!(
        m.busy_slots.contains(600.0 / 3600.0 * 60.0),
        "{:?}",
        m.busy_slots
    );
    assert_eq!(m.prob_wait.mean, 0.0);
}

#[test]
fn a_seed_gives_the_same_report_on_any_number_of_threads() {
    let mut cfg = config(
        5,
        vec![
            stream("agent-a", CallType::Inbound, 2, 120.0, 60.0),
            stream("agent-b", CallType::Chat, 0, 200.0, 45.0),
        ],
    );
    cfg.horizon_s = 6.0 * 3600.0;
    cfg.threads = 1;
    let one = simulate(&cfg).unwrap();
    cfg.threads = 3;
    assert_eq!(simulate(&cfg).unwrap(), one);
    cfg.seed += 1;
    assert_ne!(simulate(&cfg).unwrap(), one);
}

#[test]
fn bad_configurations_are_refused() {
    let ok = config(
        5,
        vec![stream("agent-a", CallType::Inbound, 2, 120.0, 60.0)],
    );
    let mut over = ok.clone();
    over.streams[0].reserved = 6;
    assert!(
        matches!(simulate(&over), Err(slotgate_plan::Error::Engine(_))),
        "reservations above the limit"
    );
    let mut twice = ok.clone();
    twice.streams.push(twice.streams[0].clone());
    assert!(matches!(
        simulate(&twice),
        Err(slotgate_plan::Error::Invalid {
            field: "streams",
            ..
        })
    ));
    let mut hourly = ok.clone();
    hourly.streams[0].arrivals = Arrivals::Hourly {
        calls_per_hour: vec![1.0; 23],
    };
    assert!(matches!(
        simulate(&hourly),
        Err(slotgate_plan::Error::Invalid { .. })
    ));
    let mut zero = ok;
    zero.replications = 0;
    assert!(simulate(&zero).is_err());
}
