//! The figures of a generated week of engine events against a brute-force
//! recount of the same events: counts exact, peaks exact (within one step
//! is what the issue asks), time at the limit and burst exact to the ms
//! (events fall on whole seconds, and the recount samples every second).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use slotgate_core::{AcquireRequest, AgentId, CallId, Config, Engine, Event, OrgId, Timestamp};

use super::*;

/// A small deterministic generator (xorshift), so a failure replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A week (from 17 minutes past an hour) of calls arriving at a 4-slot org
/// with a burst of 1, queueing, being released, cancelled, abandoned,
/// timing out and expiring, with the limit changed now and then. Every
/// event falls on a whole second.
fn generated_week(seed: u64) -> (u64, u64, Vec<Event>) {
    let start = 1_795_464_000_000 + 17 * 60_000;
    let end = start + 7 * 24 * HOUR_MS;
    let mut rng = Rng(seed);
    let mut engine = Engine::new(Config::default());
    let org = "acme";
    let mut now = start;
    engine
        .create_org(OrgId::new(org).unwrap(), 4, Timestamp::from_millis(now))
        .unwrap();
    engine
        .set_burst(org, 1, Timestamp::from_millis(now))
        .unwrap();
    let mut events: Vec<Event> = engine.drain_events().collect();
    let mut live: Vec<String> = Vec::new();
    let mut next_id = 0;
    while now < end {
        // Busy by day, quiet at night (UTC).
        let busy = (now / HOUR_MS) % 24 >= 8 && (now / HOUR_MS) % 24 < 18;
        now += 1000 * (1 + rng.below(if busy { 20 } else { 600 }));
        let at = Timestamp::from_millis(now);
        engine.handle_timeout(at);
        match rng.below(10) {
            0..=4 => {
                next_id += 1;
                let mut req = AcquireRequest::new(
                    CallId::new(&format!("c{next_id}")).unwrap(),
                    AgentId::new(&format!("agent-{}", rng.below(3))).unwrap(),
                    CallType::ALL[rng.below(4) as usize],
                );
                req.lease_ttl = Duration::from_secs(60 + rng.below(3000));
                req.max_wait = (rng.below(2) == 0).then(|| Duration::from_secs(5 + rng.below(600)));
                engine.acquire(org, req, at).unwrap();
                live.push(format!("c{next_id}"));
            }
            5..=8 if !live.is_empty() => {
                let id = live.swap_remove(rng.below(live.len() as u64) as usize);
                // Gone already (ended, then past the retention) is fine.
                let _ = engine.release(org, &id, at);
            }
            9 if rng.below(50) == 0 => {
                engine.set_limit(org, 2 + rng.below(5) as u32, at).unwrap();
            }
            9 if !live.is_empty() => {
                // A new lease length (`call.lease_changed`): no figure counts it.
                let id = &live[rng.below(live.len() as u64) as usize];
                let ttl = Duration::from_secs(60 + rng.below(3000));
                let _ = engine.heartbeat(org, id, Some(ttl), at);
            }
            _ => {}
        }
        events.extend(engine.drain_events());
    }
    // The last step may pass the week's end: the history ends there.
    let end = end.max(now);
    engine.handle_timeout(Timestamp::from_millis(end));
    events.extend(engine.drain_events());
    (start, end, events)
}

/// The same figures, recounted the plain way: counts per event, peaks after
/// each event, time at the limit and burst by sampling every second.
fn recount(events: &[Event], end: u64) -> HashMap<u64, Hour> {
    let mut hours: HashMap<u64, Hour> = HashMap::new();
    let mut queued: HashMap<String, CallType> = HashMap::new();
    let mut active = [0u32; 4];
    let mut limit = 0u32;
    let peak = |hours: &mut HashMap<u64, Hour>,
                at: u64,
                active: &[u32; 4],
                q: &HashMap<String, CallType>| {
        let h = hours.entry(hour_of(at)).or_default();
        let mut qn = [0u32; 4];
        for t in q.values() {
            qn[t.index()] += 1;
        }
        for i in 0..4 {
            h.types[i].peak_active = h.types[i].peak_active.max(active[i]);
            h.types[i].peak_queued = h.types[i].peak_queued.max(qn[i]);
        }
        h.overall.peak_active = h.overall.peak_active.max(active.iter().sum());
        h.overall.peak_queued = h.overall.peak_queued.max(qn.iter().sum());
    };
    let mut i = 0;
    let first = hour_of(events[0].at.as_millis());
    let mut second = events[0].at.as_millis();
    while second <= end {
        if second.is_multiple_of(HOUR_MS) {
            // The state carried into a new hour is its first peak.
            peak(&mut hours, second, &active, &queued);
        }
        while i < events.len() && events[i].at.as_millis() <= second {
            let e = &events[i];
            let h = hours.entry(hour_of(e.at.as_millis())).or_default();
            match &e.kind {
                EventKind::OrgCreated { limit: l } | EventKind::LimitChanged { new: l, .. } => {
                    limit = *l
                }
                EventKind::CallQueued {
                    call, call_type, ..
                } => {
                    queued.insert(call.as_str().into(), *call_type);
                }
                EventKind::CallAdmitted {
                    call,
                    call_type,
                    waited_ms,
                    ..
                } => {
                    active[call_type.index()] += 1;
                    let waited = queued.remove(call.as_str()).is_some();
                    for t in [&mut h.overall, &mut h.types[call_type.index()]] {
                        t.admitted += 1;
                        if waited {
                            t.waited += 1;
                            t.wait(*waited_ms);
                        }
                    }
                }
                EventKind::CallEnded {
                    call, call_type, ..
                } => {
                    if queued.remove(call.as_str()).is_some() {
                        h.overall.gave_up += 1;
                        h.types[call_type.index()].gave_up += 1;
                    } else {
                        active[call_type.index()] -= 1;
                    }
                }
                _ => {}
            }
            peak(&mut hours, e.at.as_millis(), &active, &queued);
            i += 1;
        }
        if second == end {
            break;
        }
        let n: u32 = active.iter().sum();
        let h = hours.entry(hour_of(second)).or_default();
        if n > 0 && n >= limit {
            h.at_limit_ms += 1000;
        }
        h.burst_ms += 1000 * u64::from(n.saturating_sub(limit));
        second += 1000;
    }
    assert!(first <= hour_of(end));
    hours.retain(|_, h| !h.is_idle());
    hours
}

/// Runs `events` through trackers, "restarting" (a new tracker seeded with
/// the state and the latest stored hour, as the store does) before each
/// event index in `restarts`; the stored hours by start.
fn tracked(events: &[Event], end: u64, restarts: &HashSet<usize>) -> HashMap<u64, Hour> {
    let mut stored: HashMap<u64, Hour> = HashMap::new();
    let mut tracker: Option<Tracker> = None;
    let mut state = State::default();
    for (i, e) in events.iter().enumerate() {
        if restarts.contains(&i) {
            tracker = None;
        }
        let t = tracker.get_or_insert_with(|| {
            let latest = stored.values().max_by_key(|h| h.start_ms).cloned();
            Tracker::new(state.clone(), latest, e.at.as_millis())
        });
        t.apply(e);
        // The store's copy of the state (what it reads back from its calls table).
        state = t.state.clone();
        for h in t.drain() {
            stored.insert(h.start_ms, h);
        }
    }
    let mut t = tracker.unwrap();
    t.advance(end);
    for h in t.drain() {
        stored.insert(h.start_ms, h);
    }
    for h in stored.values_mut() {
        h.until_ms = 0;
        h.start_ms = 0;
    }
    stored.retain(|_, h| !h.is_idle());
    stored
}

fn same_hours(seed: u64, restarts: HashSet<usize>) {
    let (start, end, events) = generated_week(seed);
    let expected = recount(&events, end);
    let got = tracked(&events, end, &restarts);
    // Lease lengths are no usage: without their events, the same hours.
    let (leases, rest): (Vec<Event>, Vec<Event>) = events
        .iter()
        .cloned()
        .partition(|e| matches!(e.kind, EventKind::CallLeaseChanged { .. }));
    assert!(leases.len() > 100, "the week changes lease lengths");
    assert_eq!(
        tracked(&rest, end, &HashSet::new()),
        tracked(&events, end, &HashSet::new())
    );
    let mut starts: Vec<&u64> = expected.keys().chain(got.keys()).collect();
    starts.sort();
    starts.dedup();
    assert!(
        starts.len() > 100,
        "a week of traffic fills most hours: {}",
        starts.len()
    );
    let sum = |f: fn(&Hour) -> u64| expected.values().map(f).sum::<u64>();
    assert!(
        sum(|h| h.overall.waited) > 100
            && sum(|h| h.overall.gave_up) > 100
            && sum(|h| h.burst_ms) > 0
            && sum(|h| h.at_limit_ms) > 0,
        "the week has waits, give-ups, burst and time at the limit to count"
    );
    for s in starts {
        let (e, g) = (expected.get(s), got.get(s));
        let mut e = e.cloned().unwrap_or_default();
        e.limit = g.map_or(0, |g| g.limit);
        assert_eq!(
            Some(&e),
            g,
            "hour {} of the week (seed {seed})",
            (s - hour_of(start)) / HOUR_MS
        );
    }
}

#[test]
fn a_generated_week_matches_a_recount() {
    for seed in [1, 7, 2026] {
        same_hours(seed, HashSet::new());
    }
}

#[test]
fn a_week_with_restarts_matches_a_recount() {
    let restarts: HashSet<usize> = (0..4000).map(|i| i * 37 + 1).collect();
    same_hours(11, restarts);
}

#[test]
fn days_roll_up_hours() {
    let (start, end, events) = generated_week(5);
    let mut tracker = Tracker::new(State::default(), None, start);
    let mut hours = Vec::new();
    for e in &events {
        tracker.apply(e);
    }
    tracker.advance(end);
    hours.extend(tracker.drain());
    hours.retain(|h| !h.is_idle());
    let day = Step::Day.millis();
    let from = start - start % day;
    let to = end.div_ceil(day) * day;
    let days = steps(&hours, from, to, Step::Day);
    assert_eq!(days.len() as u64, (to - from) / day);
    let admitted: u64 = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::CallAdmitted { .. }))
        .count() as u64;
    assert_eq!(
        days.iter().map(|d| d.overall.admitted).sum::<u64>(),
        admitted
    );
    for d in &days {
        let in_day: Vec<&Hour> = hours
            .iter()
            .filter(|h| {
                clock::rfc3339(Timestamp::from_millis(h.start_ms - h.start_ms % day)) == d.start
            })
            .collect();
        let peak = in_day
            .iter()
            .map(|h| h.overall.peak_active)
            .max()
            .unwrap_or(0);
        assert_eq!(d.overall.peak_active, peak);
        let gave_up: u64 = in_day.iter().map(|h| h.overall.gave_up).sum();
        assert_eq!(d.overall.gave_up, gave_up);
    }
}

#[test]
fn percentiles_come_from_the_histogram() {
    let mut t = Tally::default();
    assert_eq!(t.wait_percentile(50), None);
    for ms in [
        50, 150, 150, 900, 4_000, 4_000, 4_000, 4_000, 9_000, 30_000_000,
    ] {
        t.wait(ms);
    }
    assert_eq!(t.wait_percentile(50), Some(5_000));
    assert_eq!(t.wait_percentile(90), Some(10_000));
    assert_eq!(t.wait_percentile(100), Some(20_000_000));
    assert_eq!(t.wait_percentile(10), Some(100));
}
