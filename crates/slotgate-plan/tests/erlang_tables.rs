//! The Erlang formulas against published tables and worked examples, and
//! against independent computations (the factorial form; the exact
//! birth–death chain of Erlang A), plus property tests: more slots are never
//! worse, and the limits of no load and overload.

use proptest::prelude::*;
use slotgate_plan::{erlang_b, erlang_b_load, ErlangA, ErlangC, PoolTraffic};

/// `|got - want| <= rel · |want|`, with a message.
fn assert_close(got: f64, want: f64, rel: f64, what: &str) {
    assert!(
        (got - want).abs() <= rel * want.abs(),
        "{what}: got {got}, want {want} (relative tolerance {rel})"
    );
}

// Erlang B tables list, for each number of circuits, the traffic (erlangs)
// carried at a grade of service. The values at 1% blocking are the classic
// column of the published Erlang B tables (e.g. Siemens, *Telephone Traffic
// Theory Tables and Charts*, 1970; the table of Erlang's B-formula in
// Iversen, *Teletraffic Engineering Handbook*, ITU-D, 2005):
// 10 circuits 4.461 E, 20 → 12.031 E, 50 → 37.901 E, 100 → 84.064 E.
#[rustfmt::skip]
const ERLANG_B_AT_1_PERCENT: &[(u32, f64)] = &[
    // circuits, erlangs at B = 1 %
    (10,  4.461),
    (20,  12.031),
    (50,  37.901),
    (100, 84.064),
];

#[test]
fn erlang_b_reproduces_the_published_one_percent_table() {
    for &(n, table) in ERLANG_B_AT_1_PERCENT {
        let load = erlang_b_load(n, 0.01).unwrap();
        // The table is rounded to 3 decimals: at least 4 significant digits.
        assert!(
            (load - table).abs() <= 0.0005,
            "{n} circuits: {load} E, table {table} E"
        );
        assert_close(
            erlang_b(n, table).unwrap(),
            0.01,
            2e-3,
            "B at the table's load",
        );
    }
}

#[test]
fn erlang_b_matches_its_definition_on_small_cases() {
    // B(1, A) = A/(1+A); B(2, 1) = (1/2)/(1 + 1 + 1/2) = 0.2; B(3, 2) = (8/6)/(1+2+2+8/6).
    assert_close(erlang_b(1, 3.0).unwrap(), 0.75, 1e-15, "B(1,3)");
    assert_close(erlang_b(2, 1.0).unwrap(), 0.2, 1e-15, "B(2,1)");
    assert_close(
        erlang_b(3, 2.0).unwrap(),
        (8.0 / 6.0) / (5.0 + 8.0 / 6.0),
        1e-15,
        "B(3,2)",
    );
}

/// Erlang C from its textbook definition with factorials, for small pools:
/// an independent check of the recurrence-based implementation.
fn erlang_c_by_factorials(n: u32, a: f64) -> f64 {
    let mut sum = 0.0;
    let mut term = 1.0; // a^k / k!
    for k in 0..n {
        sum += term;
        term *= a / f64::from(k + 1);
    }
    let top = term * f64::from(n) / (f64::from(n) - a);
    top / (sum + top)
}

#[test]
fn erlang_c_matches_the_factorial_definition() {
    for n in 1..60u32 {
        for &rho in &[0.1, 0.5, 0.8, 0.95, 0.999] {
            let a = rho * f64::from(n);
            let q = ErlangC::new(n, a / 100.0, 100.0).unwrap();
            assert_close(
                q.prob_wait(),
                erlang_c_by_factorials(n, a),
                1e-11,
                "C(n, a)",
            );
        }
    }
}

// The worked example of Call Centre Helper, "Erlang C Formula – Made Simple
// With an Easy Worked Example": 100 calls per half hour, average handling time
// 180 s, so A = 10 erlangs; target answer time 20 s. With N = 11 agents the
// article finds the probability that a call waits P(w) = 68.21 % and an
// average speed of answer of 122.8 s.
#[test]
fn erlang_c_reproduces_the_call_centre_helper_worked_example() {
    let q = ErlangC::new(11, 100.0 / 1800.0, 180.0).unwrap();
    assert_close(q.load(), 10.0, 1e-12, "traffic intensity");
    assert_close(q.prob_wait(), 0.6821, 1e-4 / 0.6821, "P(w), N = 11");
    assert_close(q.mean_wait_s(), 122.8, 0.05 / 122.8, "ASA, N = 11");
    // Service level: 1 - P(w) e^{-(N - A) T / AHT}, by the article's own formula.
    let want = 1.0 - q.prob_wait() * (-(11.0 - 10.0) * 20.0 / 180.0f64).exp();
    assert_close(q.service_level(20.0), want, 1e-12, "service level, N = 11");
    assert_close(q.occupancy(), 10.0 / 11.0, 1e-12, "occupancy, N = 11");
}

/// Erlang A's measures from the birth–death chain itself, truncated far in
/// the tail: `(P(wait), P(abandon), mean wait, service level within t)`. The
/// service level sums, over the state an arrival sees, the probability that a
/// call with `j` calls ahead is admitted within `t` before giving up, found by
/// uniformising the tagged call's own chain (ahead `j -> j-1` at `cμ + jθ`,
/// abandon at `θ`): nothing shared with the closed form under test.
fn erlang_a_by_chain(c: u32, lambda: f64, mu: f64, theta: f64, t: f64) -> (f64, f64, f64, f64) {
    let k_max = 4000usize;
    let mut pi = vec![1.0f64; k_max];
    for n in 1..k_max {
        let death = f64::from(c.min(n as u32)) * mu + (n as f64 - f64::from(c)).max(0.0) * theta;
        pi[n] = pi[n - 1] * lambda / death;
    }
    let total: f64 = pi.iter().sum();
    pi.iter_mut().for_each(|p| *p /= total);
    let c = c as usize;
    let wait: f64 = pi[c..].iter().sum();
    let queue: f64 = pi[c..].iter().enumerate().map(|(j, p)| j as f64 * p).sum();
    let abandon = theta * queue / lambda;
    let mean_wait = queue / lambda;

    // The tagged call: p[j] = P(j calls ahead, still waiting); served accumulates.
    let ahead = 400usize;
    let mut p: Vec<f64> = pi[c..c + ahead].to_vec();
    let big = c as f64 * mu + (ahead as f64 + 1.0) * theta;
    let mut served = 0.0;
    let mut within = 0.0;
    // Poisson(big·t) weights of the uniformised steps.
    let m = big * t;
    let mut weight = (-m).exp();
    // Poisson(m) has no mass worth a 1e-15 beyond m + 12√m + 50.
    let steps = (m + 12.0 * m.sqrt() + 50.0) as usize;
    for step in 1..=steps {
        within += weight * served;
        let mut next = vec![0.0; ahead];
        let mut to_service = 0.0;
        for j in 0..ahead {
            let down = c as f64 * mu + j as f64 * theta;
            let stay = 1.0 - (down + theta) / big;
            next[j] += p[j] * stay;
            if j == 0 {
                to_service += p[0] * down / big;
            } else {
                next[j - 1] += p[j] * down / big;
            }
        }
        p = next;
        served += to_service;
        weight *= m / step as f64;
    }
    let level = (1.0 - wait) + within;
    (wait, abandon, mean_wait, level)
}

#[test]
fn erlang_a_matches_the_exact_birth_death_chain() {
    // (slots, load in erlangs, mean duration s, mean patience s, T s)
    #[rustfmt::skip]
    let cases: &[(u32, f64, f64, f64, f64)] = &[
        (1,  0.5,  60.0, 30.0, 10.0),
        (5,  4.0,  180.0, 60.0, 20.0),
        (10, 9.0,  180.0, 120.0, 20.0),
        (10, 12.0, 180.0, 60.0, 20.0),   // overloaded: fine with abandonment
        (20, 19.0, 300.0, 600.0, 30.0),
        (30, 45.0, 120.0, 30.0, 5.0),
    ];
    for &(c, load, h, patience, t) in cases {
        let lambda = load / h;
        let q = ErlangA::new(c, lambda, h, patience).unwrap();
        let (wait, abandon, mean_wait, level) =
            erlang_a_by_chain(c, lambda, 1.0 / h, 1.0 / patience, t);
        let what = format!("c={c} load={load} patience={patience}");
        assert_close(q.prob_wait(), wait, 1e-9, &format!("{what}: P(wait)"));
        assert_close(
            q.prob_abandon(),
            abandon,
            1e-9,
            &format!("{what}: P(abandon)"),
        );
        assert_close(
            q.mean_wait_s(),
            mean_wait,
            1e-9,
            &format!("{what}: mean wait"),
        );
        assert_close(
            q.service_level(t),
            level,
            1e-7,
            &format!("{what}: service level"),
        );
    }
}

#[test]
fn erlang_a_with_endless_patience_is_erlang_c() {
    let c = ErlangC::new(11, 100.0 / 1800.0, 180.0).unwrap();
    let a = ErlangA::new(11, 100.0 / 1800.0, 180.0, 1e9).unwrap();
    assert_close(a.prob_wait(), c.prob_wait(), 1e-5, "P(wait)");
    assert_close(a.mean_wait_s(), c.mean_wait_s(), 1e-4, "mean wait");
    assert_close(
        a.service_level(20.0),
        c.service_level(20.0),
        1e-5,
        "service level",
    );
    assert!(a.prob_abandon() < 1e-6);
}

#[test]
fn pools_of_ten_thousand_slots_stay_finite_and_sensible() {
    for &load in &[5_000.0, 9_800.0, 9_999.0, 12_000.0, 50_000.0] {
        let c = ErlangC::new(10_000, load / 180.0, 180.0).unwrap();
        let a = ErlangA::new(10_000, load / 180.0, 180.0, 60.0).unwrap();
        for v in [
            c.prob_wait(),
            c.service_level(20.0),
            a.prob_wait(),
            a.prob_abandon(),
            a.service_level(20.0),
        ] {
            assert!((0.0..=1.0).contains(&v), "load {load}: {v}");
        }
        assert!(a.mean_wait_s().is_finite() && a.mean_wait_s() >= 0.0);
        if load > 10_000.0 {
            // Fluid limit: the slots serve about c μ, the rest gives up.
            let fluid = 1.0 - 10_000.0 / load;
            assert!(
                (a.prob_abandon() - fluid).abs() < 0.01,
                "load {load}: {} vs {fluid}",
                a.prob_abandon()
            );
        }
    }
    let b = erlang_b(10_000, 9_500.0).unwrap();
    assert!(b > 0.0 && b < 0.01);
}

#[test]
fn sizing_finds_the_smallest_pool_that_meets_the_target() {
    let traffic = PoolTraffic {
        arrivals_per_s: 100.0 / 1800.0,
        mean_duration_s: 180.0,
        mean_patience_s: None,
    };
    let n = traffic.min_servers(0.8, 20.0, 1000).unwrap().unwrap();
    assert!(traffic.service_level(n, 20.0).unwrap() >= 0.8);
    assert!(traffic.service_level(n - 1, 20.0).unwrap() < 0.8);
    let big = PoolTraffic {
        arrivals_per_s: 9_000.0 / 180.0,
        mean_duration_s: 180.0,
        mean_patience_s: Some(60.0),
    };
    let n = big.min_servers(0.9, 20.0, 20_000).unwrap().unwrap();
    assert!(
        big.service_level(n, 20.0).unwrap() >= 0.9 && big.service_level(n - 1, 20.0).unwrap() < 0.9
    );
    assert_eq!(
        traffic.min_servers(0.8, 20.0, 5).unwrap(),
        None,
        "10 erlangs never fit in 5 slots"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn more_slots_are_never_worse(
        c in 1u32..300,
        rho in 0.05f64..1.5,
        h in 10.0f64..600.0,
        patience in 5.0f64..900.0,
        t in 0.0f64..120.0,
    ) {
        let load = rho * f64::from(c);
        let eps = 1e-12;
        prop_assert!(erlang_b(c + 1, load).unwrap() <= erlang_b(c, load).unwrap() + eps);
        let (c0, c1) = (ErlangC::new(c, load / h, h).unwrap(), ErlangC::new(c + 1, load / h, h).unwrap());
        prop_assert!(c1.prob_wait() <= c0.prob_wait() + eps);
        prop_assert!(c1.service_level(t) >= c0.service_level(t) - eps);
        prop_assert!(c1.mean_wait_s() <= c0.mean_wait_s() * (1.0 + eps) || c0.mean_wait_s().is_infinite());
        let (a0, a1) = (ErlangA::new(c, load / h, h, patience).unwrap(), ErlangA::new(c + 1, load / h, h, patience).unwrap());
        prop_assert!(a1.prob_wait() <= a0.prob_wait() + 1e-9);
        prop_assert!(a1.prob_abandon() <= a0.prob_abandon() + 1e-9);
        prop_assert!(a1.mean_wait_s() <= a0.mean_wait_s() * (1.0 + 1e-9) + 1e-12);
        prop_assert!(a1.service_level(t) >= a0.service_level(t) - 1e-9);
        // More patience never raises abandonment.
        let patient = ErlangA::new(c, load / h, h, patience * 2.0).unwrap();
        prop_assert!(patient.prob_abandon() <= a0.prob_abandon() + 1e-9);
    }

    #[test]
    fn no_load_never_waits_and_overload_always_does(c in 1u32..2_000, h in 1.0f64..600.0, t in 0.0f64..100.0) {
        let idle = ErlangC::new(c, 0.0, h).unwrap();
        prop_assert_eq!(idle.prob_wait(), 0.0);
        prop_assert_eq!(idle.service_level(t), 1.0);
        let idle_a = ErlangA::new(c, 0.0, h, 60.0).unwrap();
        prop_assert_eq!(idle_a.prob_abandon(), 0.0);
        prop_assert_eq!(idle_a.service_level(t), 1.0);
        prop_assert_eq!(erlang_b(c, 0.0).unwrap(), 0.0);

        let over = ErlangC::new(c, 1.01 * f64::from(c) / h, h).unwrap();
        prop_assert_eq!(over.prob_wait(), 1.0);
        prop_assert_eq!(over.service_level(t), 0.0);
        prop_assert!(over.mean_wait_s().is_infinite());
        // With abandonment an overload is stable: waits stay finite, most still get in.
        let over_a = ErlangA::new(c, 1.01 * f64::from(c) / h, h, 60.0).unwrap();
        prop_assert!(over_a.mean_wait_s().is_finite());
        prop_assert!(over_a.prob_abandon() > 0.0 && over_a.prob_abandon() < 1.0);
        // Far past the limit, Erlang B blocks nearly everything that exceeds c.
        let b = erlang_b(c, 100.0 * f64::from(c)).unwrap();
        prop_assert!(b >= 0.99 - 1e-9);
    }

    #[test]
    fn service_level_grows_with_the_answer_time(c in 1u32..200, rho in 0.1f64..1.3, t in 0.0f64..100.0, dt in 0.0f64..100.0) {
        let load = rho * f64::from(c);
        let a = ErlangA::new(c, load / 120.0, 120.0, 45.0).unwrap();
        prop_assert!(a.service_level(t + dt) >= a.service_level(t) - 1e-12);
        prop_assert!(a.prob_wait_longer(t + dt) <= a.prob_wait_longer(t) + 1e-12);
        prop_assert!(a.service_level(t) <= 1.0 - a.prob_abandon() + 1e-12, "never above those who stay");
    }
}
