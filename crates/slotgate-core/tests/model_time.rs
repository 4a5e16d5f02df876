//! Time-focused property test: an independent reference model of SEMANTICS.md,
//! driven with commands that arrive late (deadlines passed, `handle_timeout`
//! not called), with `now` going backwards, with late `handle_timeout`s and
//! with many deadlines at one instant. After every step the engine and the
//! model are compared on: the command's answer (or refusal, with its data),
//! every org snapshot, every call's view, queue order, active calls, the
//! engine clock, `poll_timeout`, the events emitted (per org, in order;
//! only simultaneous endings of the same reason may come in any order), and
//! every list of calls (by state and agent) read page by page.
//!
//! The model has version 2's caps, burst and blocked calls (with the
//! org's burst time, integrated at every change of `N` or `L`), and the
//! random steps change caps, burst, limits and reservations.
//!
//! The model is written from SEMANTICS.md with linear scans only. Time rules
//! it encodes (the brief and DECISIONS.md):
//! - the clock is `max(last, now)`;
//! - before a command on an org, every deadline of that org at or before the
//!   clock is handled, one instant at a time, in order; at each instant:
//!   `max_wait` (timed_out), then holds (abandoned), then leases (expired),
//!   then one dispatch at that instant (admitted_at = that instant);
//! - ended calls are forgotten at `ended_at + retention` (at once with 0).
//!
//! It shares no code with `model.rs` on purpose: two models written apart
//! from the same text disagree where one of them misread it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use proptest::prelude::*;
use slotgate_core::{
    AcquireRequest, Acquired, AgentId, AgentView, BlockedReason, CallId, CallState, CallType,
    CallView, Caps, Config, EndReason, Engine, Error, Event, EventKind, IfBlocked, ListFilter,
    OrgId, OrgView, PerType, Reservations, Slot, Timestamp, WaitToken,
};

const ORGS: [&str; 2] = ["o1", "o2"];
const AGENTS: [&str; 3] = ["a", "b", "c"];
const IDS: usize = 6;
const TYPES: usize = 3; // webcall, chat, outbound: fewer types, more collisions

fn call_id(i: usize) -> String {
    format!("c{i}")
}

fn ts(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

// ---------------------------------------------------------------- coverage

/// What the random runs exercised (printed by `coverage`).
static STATS: [AtomicU64; 16] = [const { AtomicU64::new(0) }; 16];
const STAT_NAMES: [&str; 16] = [
    "commands arriving after a passed deadline (late)",
    "late catch-ups spanning 2+ instants",
    "instants with 2+ deadlines",
    "instants with a queued deadline and a lease",
    "steps with now going backwards",
    "timed_out",
    "abandoned",
    "expired",
    "admissions during catch-up",
    "idempotent acquire retries",
    "queue_full refusals",
    "heartbeats with a new lease_ttl on a queued call",
    "call_blocked refusals",
    "admissions into the burst",
    "calls queued blocked",
    "heartbeats that change a lease_ttl (call.lease_changed)",
];
fn stat(i: usize) {
    STATS[i].fetch_add(1, Relaxed);
}

// ---------------------------------------------------------------- the model

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Queued,
    Active,
    Ended,
}

#[derive(Debug, Clone)]
struct MCall {
    id: String,
    agent: usize,
    ty: usize,
    inst: u64,
    /// Its place in arrival order while queued; once active, in admission order.
    seq: u64,
    st: St,
    ttl: u64,
    slot: Option<Slot>,
    queued_at: Option<u64>,
    admitted_at: Option<u64>,
    lease: u64,
    waits: u32,
    /// Hold deadline; `None` while a wait is open.
    hold: Option<u64>,
    max_wait: Option<u64>,
    ended_at: Option<u64>,
    reason: Option<EndReason>,
}

#[derive(Debug, Clone)]
struct MOrg {
    name: &'static str,
    limit: u32,
    /// `B`.
    burst: u32,
    res: [[u32; 4]; 3],
    /// `c(a,t)`, `None`: no cap.
    caps: [[Option<u32>; 4]; 3],
    /// `C(a)`.
    cap_total: [Option<u32>; 3],
    calls: Vec<MCall>,
    next_seq: u64,
    ev_seq: u64,
    /// Burst time (slot-ms) up to `burst_since`.
    burst_ms: u64,
    burst_since: u64,
}

#[derive(Debug, Clone)]
struct Model {
    clock: u64,
    cap: usize,
    retention: u64,
    orgs: Vec<MOrg>,
    events: Vec<Event>,
    inst: u64,
    /// Set while a command (not `handle_timeout`) catches an org up.
    in_command: bool,
}

fn agent_id(a: usize) -> AgentId {
    AgentId::new(AGENTS[a]).unwrap()
}

fn caps(c: [Option<u32>; 4], total: Option<u32>) -> Caps {
    Caps {
        webcall: c[0],
        chat: c[1],
        outbound: c[2],
        inbound: c[3],
        total,
    }
}

fn reservations(r: [u32; 4]) -> Reservations {
    Reservations {
        webcall: r[0],
        chat: r[1],
        outbound: r[2],
        inbound: r[3],
    }
}

impl MOrg {
    fn n(&self, a: usize, t: usize) -> u32 {
        self.calls
            .iter()
            .filter(|c| c.st == St::Active && c.agent == a && c.ty == t)
            .count() as u32
    }
    fn q(&self, a: usize, t: usize) -> u32 {
        self.calls
            .iter()
            .filter(|c| c.st == St::Queued && c.agent == a && c.ty == t)
            .count() as u32
    }
    fn big_r(&self) -> u32 {
        self.res.iter().flatten().sum()
    }
    fn big_n(&self) -> u32 {
        self.calls.iter().filter(|c| c.st == St::Active).count() as u32
    }
    fn shared_in_use(&self) -> u32 {
        let mut s = 0;
        for a in 0..3 {
            for t in 0..4 {
                s += self.n(a, t).saturating_sub(self.res[a][t]);
            }
        }
        s
    }
    /// `n(a)`.
    fn n_agent(&self, a: usize) -> u32 {
        (0..4).map(|t| self.n(a, t)).sum()
    }
    /// SEMANTICS.md, "Admission, version 2", as written.
    fn admissible(&self, a: usize, t: usize) -> bool {
        let (n, l, b) = (self.big_n(), self.limit, self.burst);
        let s = l - self.big_r();
        let sh = self.shared_in_use();
        n < l + b
            && self.caps[a][t].is_none_or(|c| self.n(a, t) < c)
            && self.cap_total[a].is_none_or(|c| self.n_agent(a) < c)
            && (self.n(a, t) < self.res[a][t] || sh < s || (n >= l && sh < s + b))
    }
    /// SEMANTICS.md, "Blocked calls": refused even with `N = 0`, every `n = 0`.
    fn blocked(&self, a: usize, t: usize) -> Option<BlockedReason> {
        if self.limit + self.burst == 0 {
            Some(BlockedReason::LimitZero)
        } else if self.caps[a][t] == Some(0) || self.cap_total[a] == Some(0) {
            Some(BlockedReason::CapZero)
        } else if self.res[a][t] == 0 && self.limit == self.big_r() && self.limit > 0 {
            Some(BlockedReason::NoSharedCapacity)
        } else {
            None
        }
    }
    fn blocked_count(&self) -> u32 {
        self.calls
            .iter()
            .filter(|c| c.st == St::Queued && self.blocked(c.agent, c.ty).is_some())
            .count() as u32
    }
    fn burst_in_use(&self) -> u32 {
        self.big_n().saturating_sub(self.limit)
    }
    /// Burst time up to `at`.
    fn burst_ms_at(&self, at: u64) -> u64 {
        self.burst_ms + u64::from(self.burst_in_use()) * at.saturating_sub(self.burst_since)
    }
    /// Counts burst time up to `at`, before `N` or `L` changes.
    fn advance_burst(&mut self, at: u64) {
        if at > self.burst_since {
            self.burst_ms = self.burst_ms_at(at);
            self.burst_since = at;
        }
    }
    fn find(&self, id: &str) -> Option<usize> {
        self.calls.iter().position(|c| c.id == id)
    }
    fn queue(&self) -> Vec<usize> {
        let mut q: Vec<usize> = (0..self.calls.len())
            .filter(|&i| self.calls[i].st == St::Queued)
            .collect();
        q.sort_by_key(|&i| self.calls[i].seq);
        q
    }
    fn position(&self, i: usize) -> u64 {
        let s = self.calls[i].seq;
        1 + self
            .calls
            .iter()
            .filter(|c| c.st == St::Queued && c.seq < s)
            .count() as u64
    }
    fn view(&self, i: usize) -> CallView {
        let c = &self.calls[i];
        CallView {
            id: CallId::new(&c.id).unwrap(),
            agent: agent_id(c.agent),
            call_type: CallType::ALL[c.ty],
            state: match c.st {
                St::Queued => CallState::Queued,
                St::Active => CallState::Active,
                St::Ended => CallState::Ended,
            },
            slot: c.slot,
            position: (c.st == St::Queued).then(|| self.position(i)),
            // Not modelled: compared as `None` (see `no_estimate`).
            estimated_wait_ms: None,
            blocked: if c.st == St::Queued {
                self.blocked(c.agent, c.ty)
            } else {
                None
            },
            queued_at: c.queued_at.map(ts),
            admitted_at: c.admitted_at.map(ts),
            lease_expires_at: (c.st == St::Active).then(|| ts(c.lease)),
            hold_expires_at: if c.st == St::Queued {
                c.hold.map(ts)
            } else {
                None
            },
            max_wait_expires_at: if c.st == St::Queued {
                c.max_wait.map(ts)
            } else {
                None
            },
            lease_ttl_ms: c.ttl,
            ended_at: c.ended_at.map(ts),
            end_reason: c.reason,
        }
    }
    fn agent_view(&self, a: usize) -> AgentView {
        let r = self.res[a];
        let n = |t: usize| self.n(a, t);
        AgentView {
            id: agent_id(a),
            caps: caps(self.caps[a], self.cap_total[a]),
            reserved: reservations(r),
            active: PerType::from_fn(|t| n(t.index())),
            queued: PerType::from_fn(|t| self.q(a, t.index())),
            reserved_total: r.iter().sum(),
            reserved_in_use: (0..4).map(|t| n(t).min(r[t])).sum(),
            shared_in_use: (0..4).map(|t| n(t).saturating_sub(r[t])).sum(),
        }
    }
    /// The org's view, its burst time counted up to `clock`.
    fn org_view(&self, clock: u64) -> OrgView {
        // AGENTS are in id order already.
        let agents = (0..3)
            .filter(|&a| {
                self.cap_total[a].is_some()
                    || (0..4).any(|t| {
                        self.res[a][t] > 0
                            || self.n(a, t) > 0
                            || self.q(a, t) > 0
                            || self.caps[a][t].is_some()
                    })
            })
            .map(|a| self.agent_view(a))
            .collect();
        OrgView {
            id: OrgId::new(self.name).unwrap(),
            limit: self.limit,
            plan: slotgate_core::PlanLink::default(),
            reserved: self.big_r(),
            shared: self.limit - self.big_r(),
            burst: self.burst,
            active: self.big_n(),
            burst_in_use: self.burst_in_use(),
            burst_ms: self.burst_ms_at(clock),
            queued: self.calls.iter().filter(|c| c.st == St::Queued).count() as u32,
            blocked: self.blocked_count(),
            shared_in_use: self.shared_in_use(),
            agents,
        }
    }
    /// Live deadlines of the org's calls.
    fn deadlines(&self) -> impl Iterator<Item = u64> + '_ {
        self.calls.iter().flat_map(|c| -> Vec<u64> {
            match c.st {
                St::Queued => c.hold.into_iter().chain(c.max_wait).collect(),
                St::Active => vec![c.lease],
                St::Ended => vec![],
            }
        })
    }
}

impl Model {
    fn new(limits: [u32; 2], cap: u32, retention_ms: u64) -> Self {
        let orgs = (0..2)
            .map(|o| MOrg {
                name: ORGS[o],
                limit: limits[o],
                burst: 0,
                res: [[0; 4]; 3],
                caps: [[None; 4]; 3],
                cap_total: [None; 3],
                calls: Vec::new(),
                next_seq: 1,
                ev_seq: 0,
                burst_ms: 0,
                burst_since: 0,
            })
            .collect();
        Model {
            clock: 0,
            cap: cap as usize,
            retention: retention_ms,
            orgs,
            events: Vec::new(),
            inst: 0,
            in_command: false,
        }
    }

    fn tick(&mut self, now: u64) -> u64 {
        self.clock = self.clock.max(now);
        self.clock
    }

    fn emit(&mut self, o: usize, at: u64, kind: EventKind) {
        let org = &mut self.orgs[o];
        org.ev_seq += 1;
        self.events.push(Event {
            org: OrgId::new(org.name).unwrap(),
            seq: org.ev_seq,
            at: ts(at),
            kind,
        });
    }

    fn end(&mut self, o: usize, i: usize, reason: EndReason, at: u64) {
        self.orgs[o].advance_burst(at);
        let c = &mut self.orgs[o].calls[i];
        assert_ne!(c.st, St::Ended, "model: a call ends once");
        c.st = St::Ended;
        c.ended_at = Some(at);
        c.reason = Some(reason);
        match reason {
            EndReason::TimedOut => stat(5),
            EndReason::Abandoned => stat(6),
            EndReason::Expired => stat(7),
            _ => {}
        }
        c.hold = None;
        c.waits = 0;
        let kind = EventKind::CallEnded {
            call: CallId::new(&c.id).unwrap(),
            agent: agent_id(c.agent),
            call_type: CallType::ALL[c.ty],
            reason,
        };
        self.emit(o, at, kind);
    }

    fn admit(&mut self, o: usize, i: usize, at: u64) {
        self.orgs[o].advance_burst(at);
        let org = &self.orgs[o];
        let (a, t) = (org.calls[i].agent, org.calls[i].ty);
        assert!(
            org.big_n() < org.limit + org.burst,
            "model: N < L + B at admission"
        );
        let slot = if org.n(a, t) < org.res[a][t] {
            Slot::Reserved
        } else if org.shared_in_use() < org.limit - org.big_r() {
            Slot::Shared
        } else {
            stat(13);
            Slot::Burst
        };
        let admission = self.orgs[o].next_seq;
        self.orgs[o].next_seq += 1;
        let c = &mut self.orgs[o].calls[i];
        c.seq = admission;
        c.st = St::Active;
        c.slot = Some(slot);
        c.admitted_at = Some(at);
        c.lease = at + c.ttl;
        c.hold = None;
        c.max_wait = None;
        let kind = EventKind::CallAdmitted {
            call: CallId::new(&c.id).unwrap(),
            agent: agent_id(a),
            call_type: CallType::ALL[t],
            slot,
            waited_ms: c.queued_at.map_or(0, |q| at - q),
            lease_ttl_ms: c.ttl,
        };
        self.emit(o, at, kind);
    }

    /// While some queued call is admissible, admit the oldest admissible one.
    fn dispatch(&mut self, o: usize, at: u64) {
        loop {
            let org = &self.orgs[o];
            let next = org
                .queue()
                .into_iter()
                .find(|&i| org.admissible(org.calls[i].agent, org.calls[i].ty));
            match next {
                Some(i) => self.admit(o, i, at),
                None => break,
            }
        }
    }

    /// Handles every deadline of org `o` up to `now`, one instant at a time,
    /// then forgets ended calls past retention.
    fn catch_up(&mut self, o: usize, now: u64) {
        let mut instants = 0;
        while let Some(d) = self.orgs[o].deadlines().min().filter(|&d| d <= now) {
            instants += 1;
            {
                let org = &self.orgs[o];
                let due = |c: &MCall| match c.st {
                    St::Queued => c.hold == Some(d) || c.max_wait == Some(d),
                    St::Active => c.lease == d,
                    St::Ended => false,
                };
                let k = org.calls.iter().filter(|c| due(c)).count();
                if k >= 2 {
                    stat(2);
                }
                if org.calls.iter().any(|c| due(c) && c.st == St::Queued)
                    && org.calls.iter().any(|c| due(c) && c.st == St::Active)
                {
                    stat(3);
                }
            }
            let before = self.orgs[o].big_n();
            let ends = self.orgs[o]
                .calls
                .iter()
                .filter(|c| c.st == St::Ended)
                .count();
            let pick = |m: &Model, f: &dyn Fn(&MCall) -> bool| m.orgs[o].calls.iter().position(f);
            while let Some(i) = pick(self, &|c| c.st == St::Queued && c.max_wait == Some(d)) {
                self.end(o, i, EndReason::TimedOut, d);
            }
            while let Some(i) = pick(self, &|c| c.st == St::Queued && c.hold == Some(d)) {
                self.end(o, i, EndReason::Abandoned, d);
            }
            while let Some(i) = pick(self, &|c| c.st == St::Active && c.lease == d) {
                self.end(o, i, EndReason::Expired, d);
            }
            let ended = self.orgs[o]
                .calls
                .iter()
                .filter(|c| c.st == St::Ended)
                .count()
                - ends;
            self.dispatch(o, d);
            if self.orgs[o].big_n() + ended as u32 > before {
                stat(8);
            }
        }
        if instants >= 1 && self.in_command {
            stat(0);
        }
        if instants >= 2 && self.in_command {
            stat(1);
        }
        self.purge(o);
    }

    fn purge(&mut self, o: usize) {
        let (clock, retention) = (self.clock, self.retention);
        self.orgs[o]
            .calls
            .retain(|c| c.st != St::Ended || c.ended_at.unwrap() + retention > clock);
    }

    /// Every command: clamp the clock, then catch the org up.
    fn begin(&mut self, o: usize, now: u64) -> u64 {
        if now < self.clock {
            stat(4);
        }
        let now = self.tick(now);
        self.in_command = true;
        self.catch_up(o, now);
        self.in_command = false;
        now
    }

    fn handle_timeout(&mut self, now: u64) {
        let now = self.tick(now);
        for o in 0..2 {
            self.catch_up(o, now);
        }
    }

    fn next_deadline(&self) -> Option<u64> {
        let mut all: Vec<u64> = Vec::new();
        for org in &self.orgs {
            all.extend(org.deadlines());
            if self.retention > 0 {
                all.extend(
                    org.calls
                        .iter()
                        .filter(|c| c.st == St::Ended)
                        .map(|c| c.ended_at.unwrap() + self.retention),
                );
            }
        }
        all.into_iter().min()
    }

    fn set_limit(&mut self, o: usize, l: u32, now: u64) -> Result<OrgView, Error> {
        let now = self.begin(o, now);
        let org = &self.orgs[o];
        if l < org.big_r() {
            return Err(Error::LimitBelowReservations {
                reserved: org.big_r(),
            });
        }
        if l != org.limit {
            let old = org.limit;
            let blocked = org.blocked_count();
            self.orgs[o].advance_burst(now);
            self.orgs[o].limit = l;
            self.emit(o, now, EventKind::LimitChanged { old, new: l });
            self.reconfigured(o, blocked, now);
        }
        Ok(self.orgs[o].org_view(self.clock))
    }

    /// After a configuration change: dispatch, then `org.blocked_changed` if
    /// the number of blocked calls moved.
    fn reconfigured(&mut self, o: usize, blocked: u32, now: u64) {
        self.dispatch(o, now);
        let new = self.orgs[o].blocked_count();
        if new != blocked {
            self.emit(o, now, EventKind::BlockedChanged { old: blocked, new });
        }
    }

    fn set_burst(&mut self, o: usize, b: u32, now: u64) -> Result<OrgView, Error> {
        let now = self.begin(o, now);
        let org = &self.orgs[o];
        if b != org.burst {
            let (old, blocked) = (org.burst, org.blocked_count());
            self.orgs[o].burst = b;
            self.emit(o, now, EventKind::BurstChanged { old, new: b });
            self.reconfigured(o, blocked, now);
        }
        Ok(self.orgs[o].org_view(self.clock))
    }

    /// `c(a,t) >= r(a,t)` and `C(a) >= r(a)`, checked type by type, then the total.
    fn caps_cover(c: [Option<u32>; 4], total: Option<u32>, r: [u32; 4]) -> Result<(), Error> {
        for t in 0..4 {
            if c[t].is_some_and(|c| c < r[t]) {
                return Err(Error::CapBelowReservation {
                    call_type: Some(CallType::ALL[t]),
                    lowest: r[t],
                });
            }
        }
        let sum: u32 = r.iter().sum();
        if total.is_some_and(|c| c < sum) {
            return Err(Error::CapBelowReservation {
                call_type: None,
                lowest: sum,
            });
        }
        Ok(())
    }

    fn set_caps(
        &mut self,
        o: usize,
        a: usize,
        c: [Option<u32>; 4],
        total: Option<u32>,
        now: u64,
    ) -> Result<AgentView, Error> {
        let now = self.begin(o, now);
        let org = &self.orgs[o];
        Self::caps_cover(c, total, org.res[a])?;
        if (org.caps[a], org.cap_total[a]) != (c, total) {
            let old = caps(org.caps[a], org.cap_total[a]);
            let blocked = org.blocked_count();
            self.orgs[o].caps[a] = c;
            self.orgs[o].cap_total[a] = total;
            let kind = EventKind::CapsChanged {
                agent: agent_id(a),
                old,
                new: caps(c, total),
            };
            self.emit(o, now, kind);
            self.reconfigured(o, blocked, now);
        }
        Ok(self.orgs[o].agent_view(a))
    }

    fn set_res(&mut self, o: usize, a: usize, r: [u32; 4], now: u64) -> Result<AgentView, Error> {
        let now = self.begin(o, now);
        let org = &self.orgs[o];
        let others = org.big_r() - org.res[a].iter().sum::<u32>();
        if others + r.iter().sum::<u32>() > org.limit {
            return Err(Error::ReservationsExceedLimit {
                available: org.limit - others,
            });
        }
        Self::caps_cover(org.caps[a], org.cap_total[a], r)?;
        if org.res[a] != r {
            let old = org.res[a];
            let blocked = org.blocked_count();
            self.orgs[o].res[a] = r;
            self.emit(
                o,
                now,
                EventKind::ReservationsChanged {
                    agent: agent_id(a),
                    old: reservations(old),
                    new: reservations(r),
                },
            );
            self.reconfigured(o, blocked, now);
        }
        Ok(self.orgs[o].agent_view(a))
    }

    /// A heartbeat (or a retry, with no `ttl`): a new `ttl` is `call.lease_changed`.
    fn renew(&mut self, o: usize, i: usize, ttl: Option<u64>, now: u64) {
        let c = &mut self.orgs[o].calls[i];
        let changed = ttl.filter(|&t| t != c.ttl);
        if let Some(t) = ttl {
            if c.st == St::Queued {
                stat(11);
            }
            c.ttl = t;
        }
        match c.st {
            St::Active => c.lease = now + c.ttl,
            St::Queued if c.waits == 0 => c.hold = Some(now + c.ttl),
            _ => {}
        }
        if let Some(t) = changed {
            stat(15);
            let kind = EventKind::CallLeaseChanged {
                call: CallId::new(&c.id).unwrap(),
                agent: agent_id(c.agent),
                call_type: CallType::ALL[c.ty],
                lease_ttl_ms: t,
            };
            self.emit(o, now, kind);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn acquire(
        &mut self,
        o: usize,
        id: &str,
        a: usize,
        t: usize,
        ttl: u64,
        max_wait: Option<u64>,
        refuse: bool,
        now: u64,
    ) -> Result<Acquired, Error> {
        let now = self.begin(o, now);
        if let Some(i) = self.orgs[o].find(id) {
            let c = &self.orgs[o].calls[i];
            if c.agent != a || c.ty != t {
                return Err(Error::CallIdConflict);
            }
            // DECISIONS.md: a retry counts as a heartbeat (same lease_ttl).
            stat(9);
            self.renew(o, i, None, now);
            return Ok(Acquired::Existing(self.orgs[o].view(i)));
        }
        let org = &self.orgs[o];
        let admit = org.admissible(a, t);
        let queued = org.calls.iter().filter(|c| c.st == St::Queued).count();
        if let Some(reason) = org.blocked(a, t).filter(|_| !admit && refuse) {
            stat(12);
            return Err(Error::CallBlocked { reason });
        }
        if !admit && queued >= self.cap {
            stat(10);
            return Err(Error::QueueFull {
                cap: self.cap as u32,
            });
        }
        self.inst += 1;
        let seq = self.orgs[o].next_seq;
        self.orgs[o].next_seq += 1;
        self.orgs[o].calls.push(MCall {
            id: id.to_string(),
            agent: a,
            ty: t,
            inst: self.inst,
            seq,
            st: St::Queued,
            ttl,
            slot: None,
            queued_at: None,
            admitted_at: None,
            lease: 0,
            waits: 0,
            hold: Some(now + ttl),
            max_wait: max_wait.map(|w| now + w),
            ended_at: None,
            reason: None,
        });
        let i = self.orgs[o].calls.len() - 1;
        if admit {
            self.admit(o, i, now);
            // The invariant holds after every operation: an admission that
            // fills the limit opens the burst to queued calls.
            self.dispatch(o, now);
            Ok(Acquired::Admitted(self.orgs[o].view(i)))
        } else {
            self.orgs[o].calls[i].queued_at = Some(now);
            let position = self.orgs[o].position(i);
            let kind = EventKind::CallQueued {
                call: CallId::new(id).unwrap(),
                agent: agent_id(a),
                call_type: CallType::ALL[t],
                position,
                estimated_wait_ms: None,
                lease_ttl_ms: ttl,
                max_wait_expires_at: max_wait.map(|w| ts(now + w)),
                blocked: self.orgs[o].blocked(a, t),
            };
            if self.orgs[o].blocked(a, t).is_some() {
                stat(14);
            }
            self.emit(o, now, kind);
            Ok(Acquired::Queued(self.orgs[o].view(i)))
        }
    }

    fn release(&mut self, o: usize, id: &str, now: u64) -> Result<CallView, Error> {
        let now = self.begin(o, now);
        let i = self.orgs[o].find(id).ok_or(Error::CallNotFound)?;
        let reason = match self.orgs[o].calls[i].st {
            St::Ended => return Ok(self.orgs[o].view(i)),
            St::Queued => EndReason::Cancelled,
            St::Active => EndReason::Released,
        };
        self.end(o, i, reason, now);
        let v = self.orgs[o].view(i);
        self.dispatch(o, now);
        self.purge(o);
        Ok(v)
    }

    fn heartbeat(
        &mut self,
        o: usize,
        id: &str,
        ttl: Option<u64>,
        now: u64,
    ) -> Result<CallView, Error> {
        let now = self.begin(o, now);
        let i = self.orgs[o].find(id).ok_or(Error::CallNotFound)?;
        if self.orgs[o].calls[i].st == St::Ended {
            return Err(Error::CallEnded {
                call: Box::new(self.orgs[o].view(i)),
            });
        }
        self.renew(o, i, ttl, now);
        Ok(self.orgs[o].view(i))
    }

    fn open_wait(&mut self, o: usize, id: &str, now: u64) -> Result<CallView, Error> {
        self.begin(o, now);
        let i = self.orgs[o].find(id).ok_or(Error::CallNotFound)?;
        let c = &mut self.orgs[o].calls[i];
        if c.st == St::Queued {
            c.waits += 1;
            c.hold = None;
        }
        Ok(self.orgs[o].view(i))
    }

    /// Closes a wait opened on instance `inst` of the id; a later call with
    /// the same id is not touched.
    fn close_wait(&mut self, o: usize, id: &str, inst: u64, now: u64) -> Result<CallView, Error> {
        let now = self.begin(o, now);
        let i = self.orgs[o].find(id).ok_or(Error::CallNotFound)?;
        let c = &mut self.orgs[o].calls[i];
        if c.st == St::Queued && c.inst == inst {
            c.waits = c.waits.saturating_sub(1);
            if c.waits == 0 {
                c.hold = Some(now + c.ttl);
            }
        }
        Ok(self.orgs[o].view(i))
    }
}

// ---------------------------------------------------------------- the driver

#[derive(Debug, Clone)]
enum Op {
    Acquire {
        o: usize,
        id: usize,
        agent: usize,
        ty: usize,
        ttl_s: u64,
        max_wait_ms: Option<u64>,
        /// `if_blocked: refuse`.
        refuse: bool,
    },
    Release(usize, usize),
    /// Acquire again with the agent and type the call has (an idempotent retry),
    /// a new lease_ttl and max_wait (which a retry does not change).
    Retry(usize, usize, u64),
    /// Heartbeat every call of the org the model knows (as live callers do).
    HeartbeatAll(usize),
    Heartbeat(usize, usize, Option<u64>),
    OpenWait(usize, usize),
    CloseWait(usize),
    SetLimit(usize, u32),
    SetRes(usize, usize, [u32; 4]),
    /// An agent's caps per type (the fourth type unused) and total.
    SetCaps(usize, usize, [Option<u32>; 4], Option<u32>),
    SetBurst(usize, u32),
    /// `handle_timeout(now)`.
    Handle,
    /// `handle_timeout(poll_timeout())`, moving `now` up to it if later.
    HandlePoll,
}

#[derive(Debug, Clone)]
struct Step {
    /// Added to the driver's `now` before the op (may be negative: clock steps back).
    dt: i64,
    op: Op,
}

fn op() -> impl Strategy<Value = Op> {
    let o = 0usize..2;
    let id = 0usize..IDS;
    let cap = || prop_oneof![3 => Just(None), 2 => (0u32..3).prop_map(Some)];
    prop_oneof![
        6 => (o.clone(), id.clone(), 0usize..3, 0usize..TYPES,
              prop_oneof![Just(5u64), Just(6), Just(10)],
              prop_oneof![2 => Just(None), 1 => (1u64..16).prop_map(|s| Some(s * 1000)), 1 => (1u64..16_000).prop_map(Some)],
              prop::bool::weighted(0.25))
            .prop_map(|(o, id, agent, ty, ttl_s, max_wait_ms, refuse)| Op::Acquire { o, id, agent, ty, ttl_s, max_wait_ms, refuse }),
        3 => (o.clone(), id.clone()).prop_map(|(o, i)| Op::Release(o, i)),
        2 => (o.clone(), id.clone(), 5u64..9).prop_map(|(o, i, t)| Op::Retry(o, i, t)),
        2 => o.clone().prop_map(Op::HeartbeatAll),
        4 => (o.clone(), id.clone(), prop_oneof![2 => Just(None), 1 => (5u64..12).prop_map(Some)])
            .prop_map(|(o, i, t)| Op::Heartbeat(o, i, t)),
        2 => (o.clone(), id.clone()).prop_map(|(o, i)| Op::OpenWait(o, i)),
        2 => (0usize..8).prop_map(Op::CloseWait),
        1 => (o.clone(), 0u32..5).prop_map(|(o, l)| Op::SetLimit(o, l)),
        2 => (o.clone(), 0usize..3, prop::array::uniform3(0u32..3))
            .prop_map(|(o, a, r)| Op::SetRes(o, a, [r[0], r[1], r[2], 0])),
        2 => (o.clone(), 0usize..3, [cap(), cap(), cap()], prop_oneof![2 => Just(None), 1 => (0u32..5).prop_map(Some)])
            .prop_map(|(o, a, c, total)| Op::SetCaps(o, a, [c[0], c[1], c[2], None], total)),
        1 => (o.clone(), 0u32..3).prop_map(|(o, b)| Op::SetBurst(o, b)),
        2 => Just(Op::Handle),
        2 => Just(Op::HandlePoll),
    ]
}

fn dt() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => Just(0i64),
        6 => (0i64..=6).prop_map(|k| k * 1000),
        2 => (0i64..=24).prop_map(|k| k * 500),
        1 => (-10i64..0).prop_map(|k| k * 500),
        1 => -2000i64..30_000,
        1 => prop_oneof![Just(-1i64), Just(1)],
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((dt(), op()).prop_map(|(dt, op)| Step { dt, op }), 1..60)
}

/// Everything on a 1 s grid with 5 s leases: deadlines collide as much as possible.
fn grid_steps() -> impl Strategy<Value = Vec<Step>> {
    let dt = prop_oneof![
        3 => Just(0i64),
        6 => (1i64..=5).prop_map(|k| k * 1000),
        1 => (-4i64..0).prop_map(|k| k * 1000),
        1 => (6i64..=20).prop_map(|k| k * 1000),
    ];
    let op = op().prop_map(|op| match op {
        Op::Acquire {
            o,
            id,
            agent,
            ty,
            max_wait_ms,
            refuse,
            ..
        } => Op::Acquire {
            o,
            id,
            agent,
            ty,
            ttl_s: 5,
            max_wait_ms: max_wait_ms.map(|w| (w / 1000 + 1) * 1000),
            refuse,
        },
        Op::Heartbeat(o, i, t) => Op::Heartbeat(o, i, t.map(|t| 5 + t % 2)),
        Op::Retry(o, i, _) => Op::Retry(o, i, 5),
        op => op,
    });
    prop::collection::vec((dt, op).prop_map(|(dt, op)| Step { dt, op }), 1..60)
}

/// Event as compared: (at, kind). Seqs are checked separately.
type Ev = (Timestamp, EventKind);

fn ended_reason(k: &EventKind) -> Option<(EndReason, String)> {
    match k {
        EventKind::CallEnded { reason, call, .. } => Some((*reason, call.as_str().to_string())),
        _ => None,
    }
}

/// Per org, in order; runs of consecutive `call.ended` with the same instant
/// and reason are sorted by call id (their order among themselves is free).
/// The model does not estimate waits (the simulator checks them, and
/// `wait.rs` its parts): a view is compared without its estimate, which only
/// a queued call may have.
fn no_estimate(v: CallView) -> CallView {
    assert!(
        v.estimated_wait_ms.is_none() || v.state == CallState::Queued,
        "an estimate on a call not queued: {v:?}"
    );
    CallView {
        estimated_wait_ms: None,
        ..v
    }
}

fn no_estimate_acquired(a: Result<Acquired, Error>) -> Result<Acquired, Error> {
    a.map(|a| match a {
        Acquired::Admitted(v) => Acquired::Admitted(no_estimate(v)),
        Acquired::Queued(v) => Acquired::Queued(no_estimate(v)),
        Acquired::Existing(v) => Acquired::Existing(no_estimate(v)),
    })
}

fn no_estimate_in(kind: EventKind) -> EventKind {
    match kind {
        EventKind::CallQueued {
            call,
            agent,
            call_type,
            position,
            lease_ttl_ms,
            max_wait_expires_at,
            blocked,
            ..
        } => EventKind::CallQueued {
            call,
            agent,
            call_type,
            position,
            estimated_wait_ms: None,
            lease_ttl_ms,
            max_wait_expires_at,
            blocked,
        },
        kind => kind,
    }
}

fn normalise(events: &[Event], org: &str) -> Vec<Ev> {
    let mut v: Vec<Ev> = events
        .iter()
        .filter(|e| e.org.as_str() == org)
        .map(|e| (e.at, no_estimate_in(e.kind.clone())))
        .collect();
    let mut i = 0;
    while i < v.len() {
        let Some((r, _)) = ended_reason(&v[i].1) else {
            i += 1;
            continue;
        };
        let at = v[i].0;
        let mut j = i + 1;
        while j < v.len() && v[j].0 == at && ended_reason(&v[j].1).is_some_and(|(r2, _)| r2 == r) {
            j += 1;
        }
        v[i..j].sort_by_key(|e| ended_reason(&e.1).unwrap().1);
        i = j;
    }
    v
}

struct Harness {
    e: Engine,
    m: Model,
    now: u64,
    last_seq: [u64; 2],
    /// Open waits: (org, id, model instance).
    waits: Vec<(usize, String, u64, WaitToken)>,
    log: Vec<String>,
}

impl Harness {
    fn new(limits: [u32; 2], cap: u32, retention_ms: u64, start: u64) -> Self {
        let mut e = Engine::new(Config {
            queue_cap: cap,
            ended_retention: Duration::from_millis(retention_ms),
        });
        let mut m = Model::new(limits, cap, retention_ms);
        for o in 0..2 {
            e.create_org(OrgId::new(ORGS[o]).unwrap(), limits[o], ts(start))
                .unwrap();
            m.tick(start);
            m.emit(o, start, EventKind::OrgCreated { limit: limits[o] });
        }
        let mut h = Harness {
            e,
            m,
            now: start,
            last_seq: [0; 2],
            waits: Vec::new(),
            log: Vec::new(),
        };
        h.check("create orgs");
        h
    }

    fn inst_of(&self, o: usize, id: &str) -> Option<u64> {
        self.m.orgs[o]
            .find(id)
            .map(|i| self.m.orgs[o].calls[i].inst)
    }

    fn step(&mut self, s: &Step) {
        self.now = (self.now as i64 + s.dt).max(0) as u64;
        let now = self.now;
        let t = ts(now);
        let label = format!("#{} at {now}ms: {:?}", self.log.len(), s.op);
        self.log.push(label.clone());
        let ctx = || self.log.join("\n");
        match s.op.clone() {
            Op::Acquire {
                o,
                id,
                agent,
                ty,
                ttl_s,
                max_wait_ms,
                refuse,
            } => {
                let mut req = AcquireRequest::new(
                    CallId::new(&call_id(id)).unwrap(),
                    agent_id(agent),
                    CallType::ALL[ty],
                );
                req.lease_ttl = Duration::from_secs(ttl_s);
                req.max_wait = max_wait_ms.map(Duration::from_millis);
                if refuse {
                    req.if_blocked = IfBlocked::Refuse;
                }
                let got = no_estimate_acquired(self.e.acquire(ORGS[o], req, t));
                let (ttl, mw) = (ttl_s * 1000, max_wait_ms);
                let want = self
                    .m
                    .acquire(o, &call_id(id), agent, ty, ttl, mw, refuse, now);
                assert_eq!(got, want, "acquire answer\n{}", ctx());
            }
            Op::Retry(o, id, ttl_s) => {
                let (agent, ty) = match self.m.orgs[o].find(&call_id(id)) {
                    Some(i) => (self.m.orgs[o].calls[i].agent, self.m.orgs[o].calls[i].ty),
                    None => (id % 3, id % TYPES),
                };
                let mut req = AcquireRequest::new(
                    CallId::new(&call_id(id)).unwrap(),
                    agent_id(agent),
                    CallType::ALL[ty],
                );
                req.lease_ttl = Duration::from_secs(ttl_s);
                req.max_wait = Some(Duration::from_secs(3));
                let got = no_estimate_acquired(self.e.acquire(ORGS[o], req, t));
                let want = self.m.acquire(
                    o,
                    &call_id(id),
                    agent,
                    ty,
                    ttl_s * 1000,
                    Some(3000),
                    false,
                    now,
                );
                assert_eq!(got, want, "acquire retry answer\n{}", ctx());
            }
            Op::HeartbeatAll(o) => {
                for id in 0..IDS {
                    let got = self
                        .e
                        .heartbeat(ORGS[o], &call_id(id), None, t)
                        .map(no_estimate);
                    let want = self.m.heartbeat(o, &call_id(id), None, now);
                    assert_eq!(got, want, "heartbeat (all) answer\n{}", ctx());
                }
            }
            Op::Release(o, id) => {
                let got = self.e.release(ORGS[o], &call_id(id), t).map(no_estimate);
                let want = self.m.release(o, &call_id(id), now);
                assert_eq!(got, want, "release answer\n{}", ctx());
            }
            Op::Heartbeat(o, id, ttl) => {
                let got = self
                    .e
                    .heartbeat(ORGS[o], &call_id(id), ttl.map(Duration::from_secs), t)
                    .map(no_estimate);
                let want = self
                    .m
                    .heartbeat(o, &call_id(id), ttl.map(|s| s * 1000), now);
                assert_eq!(got, want, "heartbeat answer\n{}", ctx());
            }
            Op::OpenWait(o, id) => {
                let got = self.e.open_wait(ORGS[o], &call_id(id), t);
                let token = got.as_ref().ok().map(|(_, token)| *token);
                let got = got.map(|(view, _)| no_estimate(view));
                let want = self.m.open_wait(o, &call_id(id), now);
                assert_eq!(got, want, "open_wait answer\n{}", ctx());
                if let Some(token) = token {
                    let inst = self.inst_of(o, &call_id(id)).unwrap();
                    self.waits.push((o, call_id(id), inst, token));
                }
            }
            Op::CloseWait(k) => {
                if !self.waits.is_empty() {
                    // Also late closes, of a call forgotten since and whose id a
                    // new call took: the token names the call the wait was on.
                    let (o, id, inst, token) = self.waits.remove(k % self.waits.len());
                    let got = self.e.close_wait(ORGS[o], &id, token, t).map(no_estimate);
                    let want = self.m.close_wait(o, &id, inst, now);
                    assert_eq!(got, want, "close_wait answer\n{}", ctx());
                }
            }
            Op::SetLimit(o, l) => {
                let got = self.e.set_limit(ORGS[o], l, t);
                let want = self.m.set_limit(o, l, now);
                assert_eq!(got, want, "set_limit answer\n{}", ctx());
            }
            Op::SetRes(o, a, r) => {
                let got = self
                    .e
                    .set_reservations(ORGS[o], &agent_id(a), reservations(r), t);
                let want = self.m.set_res(o, a, r, now);
                assert_eq!(got, want, "set_reservations answer\n{}", ctx());
            }
            Op::SetCaps(o, a, c, total) => {
                let got = self.e.set_caps(ORGS[o], &agent_id(a), caps(c, total), t);
                let want = self.m.set_caps(o, a, c, total, now);
                assert_eq!(got, want, "set_caps answer\n{}", ctx());
            }
            Op::SetBurst(o, b) => {
                let got = self.e.set_burst(ORGS[o], b, t);
                let want = self.m.set_burst(o, b, now);
                assert_eq!(got, want, "set_burst answer\n{}", ctx());
            }
            Op::Handle => {
                self.e.handle_timeout(t);
                self.m.handle_timeout(now);
            }
            Op::HandlePoll => {
                if let Some(p) = self.e.poll_timeout() {
                    self.e.handle_timeout(p);
                    self.m.handle_timeout(p.as_millis());
                    self.now = self.now.max(p.as_millis());
                }
            }
        }
        self.check(&label);
    }

    /// Every list of calls of `name` (by state, by agent), read page by page
    /// at several page sizes and from the middle, against `all` (the model's
    /// active calls in admission order, then its queue).
    fn check_pages(&self, name: &str, all: &[CallView], ctx: &str) {
        let nobody = AgentId::new("nobody").unwrap();
        let agents = [None, Some(agent_id(0)), Some(agent_id(2)), Some(nobody)];
        for state in [None, Some(CallState::Active), Some(CallState::Queued)] {
            for agent in &agents {
                let want: Vec<&CallView> = all
                    .iter()
                    .filter(|c| state.is_none_or(|s| c.state == s))
                    .filter(|c| agent.as_ref().is_none_or(|a| &c.agent == a))
                    .collect();
                let filter = ListFilter {
                    state,
                    agent: agent.clone(),
                };
                let page = |offset, limit| {
                    let page = self
                        .e
                        .calls_page(name, &filter, offset, limit, self.e.now());
                    let page = page.unwrap();
                    let calls: Vec<CallView> = page.calls.into_iter().map(no_estimate).collect();
                    (calls, page.next)
                };
                for limit in [1, 2, 1000] {
                    let (mut got, mut next) = (Vec::new(), Some(0));
                    while let Some(offset) = next {
                        assert!(got.len() <= all.len(), "pages never end\n{ctx}");
                        let (calls, after) = page(offset, limit);
                        assert!(calls.len() <= limit && after.is_none_or(|a| a == offset + limit));
                        got.extend(calls);
                        next = after;
                    }
                    let got: Vec<&CallView> = got.iter().collect();
                    assert_eq!(got, want, "{name} {state:?} {agent:?} by {limit}\n{ctx}");
                }
                let mid = want.len() / 2;
                let (calls, next) = page(mid, 2);
                let end = want.len().min(mid + 2);
                assert_eq!(calls.iter().collect::<Vec<_>>(), want[mid..end], "{ctx}");
                assert_eq!(next, (end < want.len()).then_some(end), "{ctx}");
                assert_eq!(page(want.len() + 5, 2), (vec![], None), "{ctx}");
            }
        }
    }

    fn check(&mut self, label: &str) {
        let ctx = format!("after {label}\nlog:\n{}", self.log.join("\n"));
        // Events, per org.
        let got: Vec<Event> = self.e.drain_events().collect();
        let want = std::mem::take(&mut self.m.events);
        for (o, name) in ORGS.iter().enumerate() {
            for ev in got.iter().filter(|e| e.org.as_str() == *name) {
                self.last_seq[o] += 1;
                assert_eq!(ev.seq, self.last_seq[o], "event seq not contiguous\n{ctx}");
            }
            assert_eq!(
                normalise(&got, name),
                normalise(&want, name),
                "events of {name}\n{ctx}"
            );
        }
        assert_eq!(self.e.now(), ts(self.m.clock), "clock\n{ctx}");
        for (o, org) in self.m.orgs.iter().enumerate() {
            let name = ORGS[o];
            assert_eq!(
                self.e.org(name).unwrap(),
                org.org_view(self.m.clock),
                "org view {name}\n{ctx}"
            );
            for id in 0..IDS {
                let id = call_id(id);
                let want = org
                    .find(&id)
                    .map(|i| org.view(i))
                    .ok_or(Error::CallNotFound);
                let got = self.e.call(name, &id, self.e.now()).map(no_estimate);
                assert_eq!(got, want, "call {name}/{id}\n{ctx}");
            }
            let q: Vec<CallView> = self
                .e
                .queued_calls(name, self.e.now())
                .unwrap()
                .map(no_estimate)
                .collect();
            let wq: Vec<CallView> = org.queue().into_iter().map(|i| org.view(i)).collect();
            assert_eq!(q, wq, "queue of {name}\n{ctx}");
            let mut wa: Vec<usize> = (0..org.calls.len())
                .filter(|&i| org.calls[i].st == St::Active)
                .collect();
            wa.sort_by_key(|&i| org.calls[i].seq);
            let wa: Vec<CallView> = wa.into_iter().map(|i| org.view(i)).collect();
            assert_eq!(
                self.e.active_calls(name).unwrap().collect::<Vec<_>>(),
                wa,
                "active of {name}\n{ctx}"
            );
            let all: Vec<CallView> = wa.into_iter().chain(wq).collect();
            self.check_pages(name, &all, &ctx);
            // Invariant (only meaningful once caught up): no queued call admissible.
            if org.deadlines().all(|d| d > self.m.clock) {
                for i in org.queue() {
                    let c = &org.calls[i];
                    assert!(
                        !org.admissible(c.agent, c.ty),
                        "model: admissible queued call\n{ctx}"
                    );
                }
            }
        }
        assert_eq!(
            self.e.poll_timeout(),
            self.m.next_deadline().map(ts),
            "poll_timeout\n{ctx}"
        );
    }
}

fn run(limits: [u32; 2], cap: u32, retention_ms: u64, steps: &[Step]) {
    let mut h = Harness::new(limits, cap, retention_ms, 10_000);
    for s in steps {
        h.step(s);
    }
    // Finally: a late handle_timeout far ahead must leave both in the same state.
    h.step(&Step {
        dt: 200_000,
        op: Op::Handle,
    });
}

proptest! {
    // A failure is reported with its shrunk input, not saved to a file
    // (PROPTEST_CASES overrides `cases`).
    #![proptest_config(ProptestConfig {
        cases: 2000,
        max_shrink_iters: 20_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_matches_time_model(
        limits in prop::array::uniform2(0u32..5),
        cap in 1u32..5,
        retention_ms in prop_oneof![Just(0u64), Just(7_000), Just(30_000)],
        steps in steps(),
    ) {
        run(limits, cap, retention_ms, &steps);
    }

    #[test]
    fn engine_matches_time_model_on_a_grid(
        limits in prop::array::uniform2(0u32..4),
        cap in 1u32..5,
        retention_ms in prop_oneof![Just(0u64), Just(5_000), Just(20_000)],
        steps in grid_steps(),
    ) {
        run(limits, cap, retention_ms, &steps);
    }
}

/// Runs random cases outside the proptest macro and prints what they exercised;
/// fails if a time path the property is about was never taken.
#[test]
fn coverage() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strat = (
        prop::array::uniform2(0u32..5),
        1u32..5,
        prop_oneof![Just(0u64), Just(7_000), Just(30_000)],
        steps(),
    );
    for _ in 0..500 {
        let (limits, cap, retention, steps) = strat.new_tree(&mut runner).unwrap().current();
        run(limits, cap, retention, &steps);
    }
    let grid = (
        prop::array::uniform2(0u32..4),
        1u32..5,
        prop_oneof![Just(0u64), Just(5_000), Just(20_000)],
        grid_steps(),
    );
    for _ in 0..500 {
        let (limits, cap, retention, steps) = grid.new_tree(&mut runner).unwrap().current();
        run(limits, cap, retention, &steps);
    }
    for (name, n) in STAT_NAMES.iter().zip(&STATS) {
        let n = n.load(Relaxed);
        println!("{n:>8}  {name}");
        assert!(n > 0, "never exercised: {name}");
    }
}

// ------------------------------------------------------- deterministic tests

fn engine(limit: u32, retention_ms: u64) -> Engine {
    let mut e = Engine::new(Config {
        queue_cap: 10,
        ended_retention: Duration::from_millis(retention_ms),
    });
    e.create_org(OrgId::new("o").unwrap(), limit, ts(0))
        .unwrap();
    e
}

fn req(id: &str, agent: &str, ttl_s: u64) -> AcquireRequest {
    let mut r = AcquireRequest::new(
        CallId::new(id).unwrap(),
        AgentId::new(agent).unwrap(),
        CallType::Chat,
    );
    r.lease_ttl = Duration::from_secs(ttl_s);
    r
}

/// A command arriving after deadlines passed, with no `handle_timeout` in
/// between, sees the state those deadlines made, instant by instant: q1's hold
/// (t=5000) and a1's lease (t=5000) coincide, so q1 is abandoned first and q2
/// takes the slot at 5000; q2's lease then runs from 5000, not from the command.
#[test]
fn late_command_replays_deadlines_instant_by_instant() {
    let mut e = engine(1, 0);
    e.acquire("o", req("a1", "a", 5), ts(0)).unwrap();
    e.acquire("o", req("q1", "a", 5), ts(0)).unwrap();
    e.acquire("o", req("q2", "b", 10), ts(2000)).unwrap();
    // Driver asleep; a heartbeat for q2 arrives late at 11_000 (q2's hold was 12_000).
    let q2 = e.heartbeat("o", "q2", None, ts(11_000)).unwrap();
    assert_eq!(q2.state, CallState::Active);
    assert_eq!(q2.admitted_at, Some(ts(5000)));
    assert_eq!(q2.lease_expires_at, Some(ts(21_000)));
    let ended: Vec<(String, EndReason, Timestamp)> = e
        .drain_events()
        .filter_map(|ev| match ev.kind {
            EventKind::CallEnded { call, reason, .. } => Some((call.to_string(), reason, ev.at)),
            _ => None,
        })
        .collect();
    assert_eq!(
        ended,
        vec![
            ("q1".into(), EndReason::Abandoned, ts(5000)),
            ("a1".into(), EndReason::Expired, ts(5000)),
        ]
    );
    // A clock stepping back changes nothing: the engine keeps 11_000.
    let q2 = e.heartbeat("o", "q2", None, ts(1000)).unwrap();
    assert_eq!(q2.lease_expires_at, Some(ts(21_000)));
    assert_eq!(e.poll_timeout(), Some(ts(21_000)));
}

/// A wait opened on an earlier call with the same id (forgotten at once with
/// retention 0, then re-acquired) must not close a wait of the new call, or the
/// new call would be abandoned while its own wait is still open (SEMANTICS.md:
/// "A queued call must be held by its caller: a heartbeat or an open wait
/// counts."). Found by this model; fixed by wait tokens.
#[test]
fn a_stale_wait_of_a_reused_id_does_not_unhold_the_new_call() {
    let mut e = engine(0, 0);
    e.acquire("o", req("c1", "a", 5), ts(0)).unwrap(); // queued (L = 0)
    let (_, w1) = e.open_wait("o", "c1", ts(0)).unwrap(); // wait W1 on the first c1
    e.release("o", "c1", ts(1000)).unwrap(); // cancelled, forgotten (retention 0)
    e.acquire("o", req("c1", "a", 5), ts(1000)).unwrap(); // a new c1, queued
    e.open_wait("o", "c1", ts(1000)).unwrap(); // wait W2 on the new c1
    e.close_wait("o", "c1", w1, ts(1000)).unwrap(); // W1 returns late
    e.handle_timeout(ts(6000));
    let c1 = e.call("o", "c1", ts(6000));
    assert!(
        matches!(&c1, Ok(c) if c.state == CallState::Queued),
        "the new c1 ended although wait W2 is still open: {c1:?}"
    );
}
