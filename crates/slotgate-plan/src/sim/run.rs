//! One replication: one org's traffic driven through the real engine on a simulated clock.
//!
//! The simulator is the engine's driver, with simulated time: it calls
//! `acquire` when a call arrives, `release` when an admitted call's duration
//! is over, and `handle_timeout` when the engine's `poll_timeout` comes first
//! (a queued call's `max_wait`: its patience). Admissions, including those by
//! dispatch after a release, and give-ups are read from the engine's events,
//! so every admission follows the engine's own rules (reservations, shared
//! pool, FIFO dispatch), not a model of them.
//!
//! Leases are not part of the model: calls ask for the longest lease (1 h)
//! and every live call is heartbeated each half hour, so nothing ends but by
//! release or `max_wait`. The engine keeps no ended calls (retention 0), so
//! its memory stays proportional to the live calls.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use slotgate_core::{
    AcquireRequest, AgentId, CallId, Config, EndReason, Engine, Event, EventKind, IfBlocked, OrgId,
    Reservations, Timestamp, MAX_LEASE_TTL, MAX_MAX_WAIT,
};

use crate::cancel::Cancel;
use crate::error::Result;
use crate::rng::Rng;
use crate::sim::alias::Alias;
use crate::sim::config::{DurationDist, Patience, SimConfig};
use crate::sim::tally::Tally;
use crate::sim::MAX_SIMULATED_QUEUE;

/// The org's id inside the simulation's private engine.
pub(crate) const ORG: &str = "sim";
/// How often a live call is heartbeated: well inside its 1 h lease and hold.
const KEEPALIVE_MS: u64 = 30 * 60 * 1000;

/// A stream's fixed data, checked and prepared once for all replications.
#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) agent: AgentId,
    pub(crate) call_type: slotgate_core::CallType,
    duration: Sampler,
    patience_s: Option<f64>,
    /// The service level's `T`, ms.
    within_ms: u64,
}

/// How a duration is drawn.
#[derive(Debug)]
enum Sampler {
    Exponential {
        mean_s: f64,
    },
    /// `exp(mu + sigma·Z)`.
    LogNormal {
        mu: f64,
        sigma: f64,
    },
    Empirical {
        samples_s: Vec<f64>,
    },
}

impl Sampler {
    fn new(d: &DurationDist) -> Self {
        match d {
            DurationDist::Exponential { mean_s } => Sampler::Exponential { mean_s: *mean_s },
            DurationDist::LogNormal { mean_s, sd_s } => {
                // The log's parameters from the duration's own mean m and sd s:
                // σ² = ln(1 + s²/m²), μ = ln m - σ²/2.
                let sigma2 = (1.0 + (sd_s / mean_s).powi(2)).ln();
                Sampler::LogNormal {
                    mu: mean_s.ln() - sigma2 / 2.0,
                    sigma: sigma2.sqrt(),
                }
            }
            DurationDist::Empirical { samples_s } => Sampler::Empirical {
                samples_s: samples_s.clone(),
            },
        }
    }

    fn draw_s(&self, rng: &mut Rng) -> f64 {
        match self {
            Sampler::Exponential { mean_s } => rng.exponential(*mean_s),
            Sampler::LogNormal { mu, sigma } => (mu + sigma * rng.normal()).exp(),
            Sampler::Empirical { samples_s } => samples_s[rng.below(samples_s.len())],
        }
    }
}

/// Everything the replications share: the checked config in the form the loop wants.
#[derive(Debug)]
pub(crate) struct Model {
    pub(crate) limit: u32,
    pub(crate) streams: Vec<Stream>,
    reservations: Vec<(AgentId, Reservations)>,
    /// Per hour: total calls per second, and a table to pick which stream an
    /// arrival belongs to (`None` in an hour with no calls).
    hours: Vec<(f64, Option<Alias>)>,
    pub(crate) warmup_ms: u64,
    end_ms: u64,
}

impl Model {
    pub(crate) fn new(cfg: &SimConfig) -> Result<Self> {
        cfg.validate()?;
        let ms = to_ms;
        let mut streams = Vec::with_capacity(cfg.streams.len());
        let mut reservations: Vec<(AgentId, Reservations)> = Vec::new();
        for s in &cfg.streams {
            let agent = AgentId::new(&s.agent)?;
            streams.push(Stream {
                agent: agent.clone(),
                call_type: s.call_type,
                duration: Sampler::new(&s.duration),
                patience_s: match s.patience {
                    Patience::Unlimited => None,
                    Patience::Exponential { mean_s } => Some(mean_s),
                },
                within_ms: ms(s
                    .service_level_within_s
                    .unwrap_or(cfg.service_level_within_s)),
            });
            let i = match reservations.iter().position(|(a, _)| *a == agent) {
                Some(i) => i,
                None => {
                    reservations.push((agent, Reservations::default()));
                    reservations.len() - 1
                }
            };
            let r = &mut reservations[i].1;
            *r = Reservations::from_fn(|t| {
                if t == s.call_type {
                    s.reserved
                } else {
                    r.get(t)
                }
            });
        }
        let hours = (0..24)
            .map(|h| {
                let rates: Vec<f64> = cfg
                    .streams
                    .iter()
                    .map(|s| s.arrivals.rate_per_s(h))
                    .collect();
                let total: f64 = rates.iter().sum();
                (total, (total > 0.0).then(|| Alias::new(&rates)))
            })
            .collect();
        Ok(Model {
            limit: cfg.limit,
            streams,
            reservations,
            hours,
            warmup_ms: ms(cfg.warmup_s),
            end_ms: ms(cfg.warmup_s + cfg.horizon_s),
        })
    }

    /// The measured window's length, ms.
    pub(crate) fn window_ms(&self) -> f64 {
        (self.end_ms - self.warmup_ms) as f64
    }
}

/// A live call, by its key (which is also its id in the engine).
#[derive(Debug)]
struct Live {
    id: CallId,
    stream: u32,
    arrived_ms: u64,
    measured: bool,
    /// Counts reuses of this key, so a stale keep-alive entry is recognised.
    generation: u32,
    /// Queued or active.
    live: bool,
    /// It queued on arrival.
    queued: bool,
    /// It has been admitted.
    admitted: bool,
}

/// The Poisson arrivals of all streams together, with the rate of each hour.
struct Arrivals<'m> {
    model: &'m Model,
    /// Seconds since midnight of day 0 of the next arrival.
    next_s: f64,
}

impl Arrivals<'_> {
    /// Moves to the next arrival. Within an hour the superposed process is
    /// Poisson at the hour's total rate; at an hour's end it restarts at the
    /// next hour's rate (exact: the exponential is memoryless).
    fn advance(&mut self, rng: &mut Rng) {
        let mut t = self.next_s;
        loop {
            let hour_end = ((t / 3600.0).floor() + 1.0) * 3600.0;
            let rate = self.model.hours[(t / 3600.0) as usize % 24].0;
            if rate > 0.0 {
                let next = t + rng.exponential(1.0 / rate);
                if next < hour_end {
                    self.next_s = next;
                    return;
                }
            }
            t = hour_end;
            if t * 1000.0 >= self.model.end_ms as f64 {
                self.next_s = t;
                return;
            }
        }
    }

    /// The stream the current arrival belongs to, drawn in proportion to the
    /// streams' rates in its hour.
    fn pick_stream(&self, rng: &mut Rng) -> u32 {
        let (_, table) = &self.model.hours[(self.next_s / 3600.0) as usize % 24];
        table
            .as_ref()
            .expect("arrivals happen only in hours with calls")
            .draw(rng)
    }
}

/// What watches a replication besides its tallies: a hook to measure the
/// engine itself (e.g. its expected waits against the real ones). `()` watches nothing.
pub(crate) trait Observer {
    /// Every event the engine emits, in order, as the simulator reads it.
    fn event(&mut self, _event: &Event) {}
    /// The engine after each step of the simulation, at `now_ms`.
    fn settled(&mut self, _engine: &Engine, _now_ms: u64) {}
}

impl Observer for () {}

/// The simulator's own state in one replication.
struct Run<'m, O> {
    model: &'m Model,
    engine: Engine,
    rng: Rng,
    calls: Vec<Live>,
    free: Vec<u32>,
    /// Admitted calls' release instants.
    releases: BinaryHeap<Reverse<(u64, u32)>>,
    /// Heartbeat instants of live calls, in time order (pushed in time order).
    keepalive: VecDeque<(u64, u32, u32)>,
    tallies: Vec<Tally>,
    /// Measured calls not yet admitted nor given up.
    unresolved: u64,
    /// Queued calls that have a `max_wait` (and so will leave on their own).
    queued_with_patience: u64,
    observer: O,
}

/// Runs one replication with `seed`; returns each stream's tally.
pub(crate) fn replicate(model: &Model, seed: u64, cancel: &Cancel) -> Result<Vec<Tally>> {
    replicate_observed(model, seed, (), cancel).map(|(tallies, ())| tallies)
}

/// How many steps the loop takes between two looks at the cancellation
/// flag: a fraction of a millisecond of work.
const STEPS_PER_CANCEL_CHECK: u32 = 4096;

/// Runs one replication with `seed`, shown to `observer`; returns each
/// stream's tally and the observer. Stops with `Cancelled` soon after
/// `cancel` is set.
pub(crate) fn replicate_observed<O: Observer>(
    model: &Model,
    seed: u64,
    observer: O,
    cancel: &Cancel,
) -> Result<(Vec<Tally>, O)> {
    let mut engine = Engine::new(Config {
        queue_cap: MAX_SIMULATED_QUEUE,
        ended_retention: Duration::ZERO,
    });
    let t0 = Timestamp::from_millis(0);
    engine.create_org(OrgId::new(ORG)?, model.limit, t0)?;
    for (agent, r) in &model.reservations {
        engine.set_reservations(ORG, agent, *r, t0)?;
    }
    engine.drain_events().for_each(drop);
    let mut run = Run {
        model,
        engine,
        rng: Rng::new(seed),
        calls: Vec::new(),
        free: Vec::new(),
        releases: BinaryHeap::new(),
        keepalive: VecDeque::new(),
        tallies: vec![Tally::default(); model.streams.len()],
        unresolved: 0,
        queued_with_patience: 0,
        observer,
    };
    let mut arrivals = Arrivals { model, next_s: 0.0 };
    arrivals.advance(&mut run.rng);
    let mut steps = 0u32;
    loop {
        steps = steps.wrapping_add(1);
        if steps.is_multiple_of(STEPS_PER_CANCEL_CHECK) {
            cancel.check()?;
        }
        // Each source's next instant, u64::MAX for none (plain integers: this
        // loop runs once per event, ten million times a simulated week).
        const NONE: u64 = u64::MAX;
        let arrival = to_ms(arrivals.next_s);
        let arrival = if arrival < model.end_ms {
            arrival
        } else {
            NONE
        };
        let release = run.releases.peek().map_or(NONE, |Reverse((at, _))| *at);
        let timeout = run.engine.poll_timeout().map_or(NONE, Timestamp::as_millis);
        let keepalive = run.keepalive.front().map_or(NONE, |&(at, _, _)| at);
        if arrival == NONE
            && (run.unresolved == 0 || release == NONE && run.queued_with_patience == 0)
        {
            break;
        }
        // Earliest first; at a tie: releases, then the engine's deadlines, heartbeats, arrivals.
        let next = release.min(timeout).min(keepalive).min(arrival);
        debug_assert!(
            next != NONE,
            "an arrival, a release or a queued call with patience remains"
        );
        if release == next {
            let Reverse((at, key)) = run.releases.pop().expect("peeked");
            run.release(key, at)?;
        } else if timeout == next {
            run.engine.handle_timeout(Timestamp::from_millis(next));
            run.absorb_events();
        } else if keepalive == next {
            let (at, key, generation) = run.keepalive.pop_front().expect("peeked");
            run.keep_alive(key, generation, at);
        } else {
            let stream = arrivals.pick_stream(&mut run.rng);
            run.arrive(stream, next)?;
            arrivals.advance(&mut run.rng);
        }
        run.observer.settled(&run.engine, next);
    }
    run.strand_the_rest();
    Ok((run.tallies, run.observer))
}

impl<O: Observer> Run<'_, O> {
    /// A call of `stream` arrives at `at`.
    fn arrive(&mut self, stream: u32, at: u64) -> Result<()> {
        let measured = at >= self.model.warmup_ms;
        let key = match self.free.pop() {
            Some(k) => k,
            None => {
                let k = u32::try_from(self.calls.len()).expect("fewer than 2^32 live calls");
                self.calls.push(Live {
                    id: CallId::new(&k.to_string())?,
                    stream: 0,
                    arrived_ms: 0,
                    measured: false,
                    generation: 0,
                    live: false,
                    queued: false,
                    admitted: false,
                });
                k
            }
        };
        let call = &mut self.calls[key as usize];
        call.stream = stream;
        call.arrived_ms = at;
        call.measured = measured;
        call.generation = call.generation.wrapping_add(1);
        call.live = true;
        call.queued = false;
        call.admitted = false;
        let s = &self.model.streams[stream as usize];
        if measured {
            self.tallies[stream as usize].offered += 1;
            self.unresolved += 1;
        }
        let max_wait = s.patience_s.map(|mean| {
            let ms = to_ms(self.rng.exponential(mean));
            Duration::from_millis(ms.max(1)).min(MAX_MAX_WAIT)
        });
        let req = AcquireRequest {
            id: call.id.clone(),
            agent: s.agent.clone(),
            call_type: s.call_type,
            lease_ttl: MAX_LEASE_TTL,
            max_wait,
            if_blocked: IfBlocked::Queue,
        };
        match self.engine.acquire(ORG, req, Timestamp::from_millis(at)) {
            Ok(_) => {}
            Err(slotgate_core::Error::QueueFull { .. }) => {
                // Turned away: never queued, never admitted.
                self.calls[key as usize].live = false;
                self.free.push(key);
                let t = &mut self.tallies[stream as usize];
                t.queue_full += 1;
                if measured {
                    self.unresolved -= 1;
                }
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        let generation = self.calls[key as usize].generation;
        self.keepalive
            .push_back((at + KEEPALIVE_MS, key, generation));
        self.absorb_events();
        Ok(())
    }

    /// An admitted call's duration is over.
    fn release(&mut self, key: u32, at: u64) -> Result<()> {
        let call = &mut self.calls[key as usize];
        call.live = false;
        match self
            .engine
            .release(ORG, call.id.as_str(), Timestamp::from_millis(at))
        {
            // Only if the engine ended it first (counted as lost).
            Ok(_) | Err(slotgate_core::Error::CallNotFound) => {}
            Err(e) => return Err(e.into()),
        }
        self.free.push(key);
        self.absorb_events();
        Ok(())
    }

    /// Renews a live call's lease or queue hold.
    fn keep_alive(&mut self, key: u32, generation: u32, at: u64) {
        let call = &self.calls[key as usize];
        if !call.live || call.generation != generation {
            return;
        }
        // Cannot fail for a live call; an error would only mean it ended, which
        // the events report.
        let _ = self
            .engine
            .heartbeat(ORG, call.id.as_str(), None, Timestamp::from_millis(at));
        self.keepalive
            .push_back((at + KEEPALIVE_MS, key, generation));
        self.absorb_events();
    }

    /// Reads what the engine did: queued, admitted (now or by dispatch), ended.
    fn absorb_events(&mut self) {
        let (model, calls, tallies) = (self.model, &mut self.calls, &mut self.tallies);
        for event in self.engine.drain_events() {
            self.observer.event(&event);
            let at = event.at.as_millis();
            match event.kind {
                EventKind::CallQueued { call, .. } => {
                    let c = &mut calls[key_of(&call)];
                    c.queued = true;
                    let s = &model.streams[c.stream as usize];
                    if c.measured {
                        tallies[c.stream as usize].queued += 1;
                    }
                    if s.patience_s.is_some() {
                        self.queued_with_patience += 1;
                    }
                }
                EventKind::CallAdmitted {
                    call, waited_ms, ..
                } => {
                    let key = key_of(&call);
                    let c = &mut calls[key];
                    c.admitted = true;
                    let s = &model.streams[c.stream as usize];
                    let t = &mut tallies[c.stream as usize];
                    if c.queued && s.patience_s.is_some() {
                        self.queued_with_patience -= 1;
                    }
                    if c.measured {
                        self.unresolved -= 1;
                        t.record_wait(waited_ms);
                        if waited_ms <= s.within_ms {
                            t.within += 1;
                        }
                    }
                    let duration = to_ms(s.duration.draw_s(&mut self.rng));
                    let end = at + duration;
                    let overlap = end
                        .min(model.end_ms)
                        .saturating_sub(at.max(model.warmup_ms));
                    t.busy_ms += overlap as f64;
                    self.releases.push(Reverse((end, key as u32)));
                }
                EventKind::CallEnded { call, reason, .. } if reason != EndReason::Released => {
                    let key = key_of(&call);
                    let c = &mut calls[key];
                    c.live = false;
                    let s = &model.streams[c.stream as usize];
                    let t = &mut tallies[c.stream as usize];
                    if c.queued && !c.admitted && s.patience_s.is_some() {
                        self.queued_with_patience -= 1;
                    }
                    if reason == EndReason::TimedOut {
                        if c.measured {
                            self.unresolved -= 1;
                            t.abandoned += 1;
                            t.record_wait(at - c.arrived_ms);
                        }
                    } else {
                        // Leases and holds are kept alive: this never happens.
                        t.lost += 1;
                        if c.measured && !c.admitted {
                            self.unresolved -= 1;
                        }
                        if c.admitted {
                            continue; // its pending release frees the key
                        }
                    }
                    self.free.push(key as u32);
                }
                _ => {}
            }
        }
    }

    /// Calls still queued when no slot can ever come (arrivals over, no
    /// admitted call left, no patience to end them): counted as stranded,
    /// waiting until now.
    fn strand_the_rest(&mut self) {
        let end = self.engine.now().as_millis().max(self.model.end_ms);
        for c in &self.calls {
            if c.live && c.measured && !c.admitted {
                let t = &mut self.tallies[c.stream as usize];
                t.stranded += 1;
                t.record_wait(end - c.arrived_ms);
            }
        }
    }
}

/// Seconds (non-negative) to the nearest millisecond; cheaper than `round`.
fn to_ms(s: f64) -> u64 {
    (s * 1000.0 + 0.5) as u64
}

/// A call's key, from its id (the key in decimal).
fn key_of(id: &CallId) -> usize {
    id.as_str()
        .bytes()
        .fold(0usize, |k, b| k * 10 + usize::from(b - b'0'))
}
