//! Property tests: random sequences of every engine operation, time included,
//! run against a deliberately simple reference model of SEMANTICS.md written
//! here from the text (linear scans everywhere), and compared after every step:
//! results and refusals, org snapshots, every call's state, slot, position and
//! times, queue order, the next deadline, and the events emitted. Invariants
//! are checked on the way: `N <= L` at every admission, no queued call
//! admissible, event numbers contiguous, every call ended exactly once.
//!
//! Version 2 is in it too: per-agent caps (per type and total) and the org's
//! burst, changed at random like limits and reservations; `N <= L + B` at
//! every admission.
//!
//! Each property runs 1,024 random sequences of up to 80 steps in well under a
//! second; `PROPTEST_CASES=100000 cargo test -p slotgate-core --test model` runs more.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use proptest::prelude::*;
use slotgate_core::{
    AcquireRequest, Acquired, AgentId, CallId, CallState, CallType, Caps, Config, Engine, Error,
    EventKind, OrgId, PlanId, PlanLink, Reservations, Slot, Timestamp, WaitToken,
};

const ORGS: [&str; 2] = ["o1", "o2"];
const AGENTS: [&str; 3] = ["a", "b", "c"];
const MAX_LIMIT: u32 = 1_000_000;

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
    st: St,
    instance: u64,
    arrival: u64,
    slot: Option<Slot>,
    queued_at: Option<u64>,
    admitted_at: Option<u64>,
    lease: u64,
    hold: Option<u64>,
    waits: u32,
    max_wait: Option<u64>,
    ttl: u64,
    ended_at: Option<u64>,
    reason: Option<&'static str>,
}

#[derive(Debug, Default, Clone)]
struct MOrg {
    limit: u32,
    burst: u32,
    res: HashMap<(usize, usize), u32>,
    /// `c(a,t)` by `(a, t)`, and `C(a)` by `(a, 4)`; absent: no cap.
    caps: HashMap<(usize, usize), u32>,
    calls: Vec<MCall>,
    arrivals: u64,
    seq: u64,
}

/// An expected event: (org, kind, call or agent, detail).
type Ev = (String, &'static str, String, String);

struct Model {
    orgs: BTreeMap<String, MOrg>,
    clock: u64,
    cap: usize,
    retention: u64,
    instances: u64,
    events: Vec<Ev>,
}

impl MOrg {
    fn n(&self, a: usize, t: usize) -> u32 {
        self.calls
            .iter()
            .filter(|c| c.st == St::Active && c.agent == a && c.ty == t)
            .count() as u32
    }
    fn r(&self, a: usize, t: usize) -> u32 {
        self.res.get(&(a, t)).copied().unwrap_or(0)
    }
    fn active(&self) -> u32 {
        self.calls.iter().filter(|c| c.st == St::Active).count() as u32
    }
    fn reserved(&self) -> u32 {
        self.res.values().sum()
    }
    fn shared_in_use(&self) -> u32 {
        let mut s = 0;
        for a in 0..AGENTS.len() {
            for t in 0..4 {
                s += self.n(a, t).saturating_sub(self.r(a, t));
            }
        }
        s
    }
    fn admissible(&self, a: usize, t: usize) -> bool {
        let n_a: u32 = (0..4).map(|t| self.n(a, t)).sum();
        let below = |key, n| self.caps.get(&key).is_none_or(|&c| n < c);
        let s = self.limit - self.reserved();
        let sh = self.shared_in_use();
        self.active() < self.limit + self.burst
            && below((a, t), self.n(a, t))
            && below((a, 4), n_a)
            && (self.n(a, t) < self.r(a, t)
                || sh < s
                || (self.active() >= self.limit && sh < s + self.burst))
    }
    fn queued(&self) -> Vec<&MCall> {
        let mut q: Vec<&MCall> = self.calls.iter().filter(|c| c.st == St::Queued).collect();
        q.sort_by_key(|c| c.arrival);
        q
    }
    fn position(&self, c: &MCall) -> u64 {
        self.calls
            .iter()
            .filter(|o| o.st == St::Queued && o.arrival < c.arrival)
            .count() as u64
            + 1
    }
    fn find(&self, id: &str) -> Option<usize> {
        self.calls.iter().position(|c| c.id == id)
    }
}

fn reason_of(e: &Error) -> String {
    match e {
        Error::Invalid { field, .. } => format!("invalid {field}"),
        Error::LimitBelowReservations { reserved } => format!("limit_below {reserved}"),
        Error::ReservationsExceedLimit { available } => format!("exceed {available}"),
        Error::QueueFull { cap } => format!("queue_full {cap}"),
        Error::CapBelowReservation { call_type, lowest } => {
            format!("cap_below {} {lowest}", call_type.map_or(4, |t| t.index()))
        }
        Error::CallEnded { .. } => "call_ended".into(),
        other => format!("{other:?}"),
    }
}

impl Model {
    fn emit(&mut self, org: &str, kind: &'static str, who: &str, detail: String) {
        self.orgs.get_mut(org).unwrap().seq += 1;
        self.events
            .push((org.to_string(), kind, who.to_string(), detail));
    }

    fn tick(&mut self, now: u64) -> u64 {
        self.clock = self.clock.max(now);
        self.clock
    }

    fn end(&mut self, org: &str, i: usize, reason: &'static str, at: u64) {
        let o = self.orgs.get_mut(org).unwrap();
        let c = &mut o.calls[i];
        assert_ne!(c.st, St::Ended, "model: a call ends once");
        c.st = St::Ended;
        c.ended_at = Some(at);
        c.reason = Some(reason);
        let id = c.id.clone();
        self.emit(org, "ended", &id, reason.into());
        if self.retention == 0 {
            self.orgs.get_mut(org).unwrap().calls.remove(i);
        }
    }

    fn admit(&mut self, org: &str, i: usize, at: u64) {
        let o = self.orgs.get_mut(org).unwrap();
        assert!(
            o.active() < o.limit + o.burst,
            "N < L + B at every admission"
        );
        let (a, t) = (o.calls[i].agent, o.calls[i].ty);
        let slot = if o.n(a, t) < o.r(a, t) {
            Slot::Reserved
        } else if o.shared_in_use() < o.limit - o.reserved() {
            Slot::Shared
        } else {
            Slot::Burst
        };
        let c = &mut o.calls[i];
        c.st = St::Active;
        c.slot = Some(slot);
        c.admitted_at = Some(at);
        c.lease = at + c.ttl;
        c.hold = None;
        let id = c.id.clone();
        self.emit(org, "admitted", &id, slot.as_str().into());
    }

    fn dispatch(&mut self, org: &str, at: u64) {
        loop {
            let o = &self.orgs[org];
            let next = o
                .calls
                .iter()
                .enumerate()
                .filter(|(_, c)| c.st == St::Queued && o.admissible(c.agent, c.ty))
                .min_by_key(|(_, c)| c.arrival)
                .map(|(i, _)| i);
            match next {
                Some(i) => self.admit(org, i, at),
                None => break,
            }
        }
    }

    fn set_limit(&mut self, org: &str, limit: u32, now: u64) -> Result<(), String> {
        let now = self.tick(now);
        let o = self.orgs.get_mut(org).ok_or("OrgNotFound")?;
        if limit > MAX_LIMIT {
            return Err("invalid limit".into());
        }
        if limit < o.reserved() {
            return Err(format!("limit_below {}", o.reserved()));
        }
        if o.limit != limit {
            o.limit = limit;
            self.emit(org, "limit", "", limit.to_string());
            self.dispatch(org, now);
        }
        Ok(())
    }

    fn reserve(&mut self, org: &str, a: usize, r: [u32; 4], now: u64) -> Result<(), String> {
        let now = self.tick(now);
        let o = self.orgs.get_mut(org).ok_or("OrgNotFound")?;
        let own: u32 = (0..4).map(|t| o.r(a, t)).sum();
        let others = o.reserved() - own;
        let total: u64 = r.iter().map(|&x| u64::from(x)).sum();
        if u64::from(others) + total > u64::from(o.limit) {
            return Err(format!("exceed {}", o.limit - others));
        }
        for (t, &rt) in r.iter().enumerate() {
            if o.caps.get(&(a, t)).is_some_and(|&c| c < rt) {
                return Err(format!("cap_below {t} {rt}"));
            }
        }
        let sum: u32 = r.iter().sum();
        if o.caps.get(&(a, 4)).is_some_and(|&c| c < sum) {
            return Err(format!("cap_below 4 {sum}"));
        }
        let old: Vec<u32> = (0..4).map(|t| o.r(a, t)).collect();
        if old != r {
            for (t, &n) in r.iter().enumerate() {
                if n == 0 {
                    o.res.remove(&(a, t));
                } else {
                    o.res.insert((a, t), n);
                }
            }
            self.emit(org, "reservations", AGENTS[a], format!("{r:?}"));
            self.dispatch(org, now);
        }
        Ok(())
    }

    fn set_burst(&mut self, org: &str, b: u32, now: u64) -> Result<(), String> {
        let now = self.tick(now);
        let o = self.orgs.get_mut(org).ok_or("OrgNotFound")?;
        if o.burst != b {
            o.burst = b;
            self.emit(org, "burst", "", b.to_string());
            self.dispatch(org, now);
        }
        Ok(())
    }

    /// A plan change reaching one org: its limit and burst together,
    /// refused whole below its reservations, the lowering of the two first
    /// (so the dispatch after each step never admits beyond the final
    /// `L + B`).
    fn set_terms(&mut self, org: &str, limit: u32, burst: u32, now: u64) -> Result<(), String> {
        let o = self.orgs.get(org).ok_or("OrgNotFound")?;
        if limit > MAX_LIMIT {
            return Err("invalid limit".into());
        }
        if limit < o.reserved() {
            return Err(format!("limit_below {}", o.reserved()));
        }
        if burst < o.burst {
            self.set_burst(org, burst, now)?;
            self.set_limit(org, limit, now)
        } else {
            self.set_limit(org, limit, now)?;
            self.set_burst(org, burst, now)
        }
    }

    /// Caps by type index, then the total at index 4.
    fn set_caps(
        &mut self,
        org: &str,
        a: usize,
        c: [Option<u32>; 5],
        now: u64,
    ) -> Result<(), String> {
        let now = self.tick(now);
        let o = self.orgs.get_mut(org).ok_or("OrgNotFound")?;
        for t in 0..4 {
            if c[t].is_some_and(|c| c < o.r(a, t)) {
                return Err(format!("cap_below {t} {}", o.r(a, t)));
            }
        }
        let sum: u32 = (0..4).map(|t| o.r(a, t)).sum();
        if c[4].is_some_and(|c| c < sum) {
            return Err(format!("cap_below 4 {sum}"));
        }
        let old: Vec<Option<u32>> = (0..5).map(|k| o.caps.get(&(a, k)).copied()).collect();
        if old != c {
            for (k, c) in c.iter().enumerate() {
                match c {
                    Some(c) => o.caps.insert((a, k), *c),
                    None => o.caps.remove(&(a, k)),
                };
            }
            self.emit(org, "caps", AGENTS[a], format!("{c:?}"));
            self.dispatch(org, now);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn acquire(
        &mut self,
        org: &str,
        id: &str,
        a: usize,
        t: usize,
        ttl_s: u64,
        max_wait_s: Option<u64>,
        now: u64,
    ) -> Result<(String, St), String> {
        let now = self.tick(now);
        let o = self.orgs.get_mut(org).ok_or("OrgNotFound")?;
        if let Some(i) = o.find(id) {
            let c = &mut o.calls[i];
            if c.agent != a || c.ty != t {
                return Err("CallIdConflict".into());
            }
            // A retry is a sign of life, like a heartbeat.
            match c.st {
                St::Active => c.lease = now + c.ttl,
                St::Queued if c.waits == 0 => c.hold = Some(now + c.ttl),
                _ => {}
            }
            return Ok(("existing".into(), c.st));
        }
        if !(5..=3600).contains(&ttl_s) {
            return Err("invalid lease_ttl_s".into());
        }
        if max_wait_s == Some(0) {
            return Err("invalid max_wait_s".into());
        }
        let admit = o.admissible(a, t);
        if !admit && o.queued().len() >= self.cap {
            return Err(format!("queue_full {}", self.cap));
        }
        self.instances += 1;
        o.arrivals += 1;
        let ttl = ttl_s * 1000;
        o.calls.push(MCall {
            id: id.into(),
            agent: a,
            ty: t,
            st: St::Queued,
            instance: self.instances,
            arrival: o.arrivals,
            slot: None,
            queued_at: (!admit).then_some(now),
            admitted_at: None,
            lease: 0,
            hold: Some(now + ttl),
            waits: 0,
            max_wait: max_wait_s.map(|w| now + w * 1000),
            ttl,
            ended_at: None,
            reason: None,
        });
        let i = o.calls.len() - 1;
        if admit {
            self.admit(org, i, now);
            // Filling the limit may open the burst to queued calls.
            self.dispatch(org, now);
            Ok(("admitted".into(), St::Active))
        } else {
            self.emit(org, "queued", id, String::new());
            Ok(("queued".into(), St::Queued))
        }
    }

    fn release(&mut self, org: &str, id: &str, now: u64) -> Result<St, String> {
        let now = self.tick(now);
        let o = self.orgs.get_mut(org).ok_or("OrgNotFound")?;
        let i = o.find(id).ok_or("CallNotFound")?;
        let reason = match o.calls[i].st {
            St::Ended => return Ok(St::Ended),
            St::Queued => "cancelled",
            St::Active => "released",
        };
        self.end(org, i, reason, now);
        self.dispatch(org, now);
        Ok(St::Ended)
    }

    fn heartbeat(
        &mut self,
        org: &str,
        id: &str,
        ttl_s: Option<u64>,
        now: u64,
    ) -> Result<(), String> {
        let now = self.tick(now);
        let o = self.orgs.get_mut(org).ok_or("OrgNotFound")?;
        let i = o.find(id).ok_or("CallNotFound")?;
        if ttl_s.is_some_and(|t| !(5..=3600).contains(&t)) {
            return Err("invalid lease_ttl_s".into());
        }
        let c = &mut o.calls[i];
        if c.st == St::Ended {
            return Err("call_ended".into());
        }
        let changed = ttl_s.map(|t| t * 1000).filter(|&t| t != c.ttl);
        if let Some(t) = ttl_s {
            c.ttl = t * 1000;
        }
        match c.st {
            St::Active => c.lease = now + c.ttl,
            St::Queued if c.waits == 0 => c.hold = Some(now + c.ttl),
            _ => {}
        }
        if let Some(t) = changed {
            let id = c.id.clone();
            self.emit(org, "lease", &id, t.to_string());
        }
        Ok(())
    }

    fn open_wait(&mut self, org: &str, id: &str) -> Result<St, String> {
        let o = self.orgs.get_mut(org).ok_or("OrgNotFound")?;
        let i = o.find(id).ok_or("CallNotFound")?;
        let c = &mut o.calls[i];
        if c.st == St::Queued {
            c.waits += 1;
            c.hold = None;
        }
        Ok(c.st)
    }

    /// Closes a wait opened on instance `inst` of the id: a later call that
    /// reuses the id is not touched.
    fn close_wait(&mut self, org: &str, id: &str, inst: u64, now: u64) -> Result<St, String> {
        let now = self.tick(now);
        let o = self.orgs.get_mut(org).ok_or("OrgNotFound")?;
        let i = o.find(id).ok_or("CallNotFound")?;
        let c = &mut o.calls[i];
        if c.st == St::Queued && c.instance == inst {
            c.waits = c.waits.saturating_sub(1);
            if c.waits == 0 {
                c.hold = Some(now + c.ttl);
            }
        }
        Ok(c.st)
    }

    /// Every deadline of one org, and its retention purges.
    fn deadlines(&self, o: &MOrg) -> Vec<u64> {
        let mut d = Vec::new();
        for c in &o.calls {
            match c.st {
                St::Queued => d.extend(c.hold.into_iter().chain(c.max_wait)),
                St::Active => d.push(c.lease),
                St::Ended => d.push(c.ended_at.unwrap() + self.retention),
            }
        }
        d
    }

    fn next_deadline(&self) -> Option<u64> {
        self.orgs.values().flat_map(|o| self.deadlines(o)).min()
    }

    fn advance(&mut self, now: u64) {
        let now = self.tick(now);
        let names: Vec<String> = self.orgs.keys().cloned().collect();
        for org in names {
            loop {
                let o = &self.orgs[&org];
                let t = o
                    .calls
                    .iter()
                    .flat_map(|c| match c.st {
                        St::Queued => c.hold.into_iter().chain(c.max_wait).collect::<Vec<_>>(),
                        St::Active => vec![c.lease],
                        St::Ended => vec![],
                    })
                    .min();
                let Some(t) = t.filter(|&t| t <= now) else {
                    break;
                };
                // At one instant: max_wait, then holds, then leases; then one dispatch.
                let pick = |o: &MOrg, f: &dyn Fn(&MCall) -> bool| o.calls.iter().position(f);
                while let Some(i) = pick(&self.orgs[&org], &|c| {
                    c.st == St::Queued && c.max_wait == Some(t)
                }) {
                    self.end(&org, i, "timed_out", t);
                }
                while let Some(i) = pick(&self.orgs[&org], &|c| {
                    c.st == St::Queued && c.hold == Some(t)
                }) {
                    self.end(&org, i, "abandoned", t);
                }
                while let Some(i) = pick(&self.orgs[&org], &|c| c.st == St::Active && c.lease == t)
                {
                    self.end(&org, i, "expired", t);
                }
                self.dispatch(&org, t);
            }
            let retention = self.retention;
            self.orgs
                .get_mut(&org)
                .unwrap()
                .calls
                .retain(|c| c.st != St::Ended || c.ended_at.unwrap() + retention > now);
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    CreateOrg(usize, u32),
    SetLimit(usize, u32),
    Reserve(usize, usize, [u32; 4]),
    Remove(usize, usize),
    SetBurst(usize, u32),
    /// A plan's limit and burst reaching an org on it (`Engine::set_terms`).
    SetTerms(usize, u32, u32),
    /// Caps per type, then the total.
    SetCaps(usize, usize, [Option<u32>; 5]),
    Acquire {
        org: usize,
        id: u8,
        agent: usize,
        ty: usize,
        ttl_s: u64,
        max_wait_s: Option<u64>,
    },
    Release(usize, u8),
    Heartbeat(usize, u8, Option<u64>),
    OpenWait(usize, u8),
    CloseWait(usize),
    Advance(u64),
    ToDeadline,
}

fn op() -> impl Strategy<Value = Op> {
    let org = 0..ORGS.len();
    let id = 0u8..12;
    prop_oneof![
        1 => (org.clone(), 0u32..6).prop_map(|(o, l)| Op::CreateOrg(o, l)),
        1 => (org.clone(), prop_oneof![0u32..8, Just(MAX_LIMIT + 1)]).prop_map(|(o, l)| Op::SetLimit(o, l)),
        2 => (org.clone(), 0..AGENTS.len(), prop::array::uniform4(0u32..3)).prop_map(|(o, a, r)| Op::Reserve(o, a, r)),
        1 => (org.clone(), 0..AGENTS.len()).prop_map(|(o, a)| Op::Remove(o, a)),
        1 => (org.clone(), 0u32..3).prop_map(|(o, b)| Op::SetBurst(o, b)),
        1 => (org.clone(), prop_oneof![0u32..8, Just(MAX_LIMIT + 1)], 0u32..3).prop_map(|(o, l, b)| Op::SetTerms(o, l, b)),
        2 => (org.clone(), 0..AGENTS.len(), prop::array::uniform5(prop_oneof![3 => Just(None), 2 => (0u32..4).prop_map(Some)]))
            .prop_map(|(o, a, c)| Op::SetCaps(o, a, c)),
        8 => (org.clone(), id.clone(), 0..AGENTS.len(), 0usize..4, prop_oneof![4 => 5u64..31, 1 => Just(4u64)],
              prop_oneof![3 => Just(None), 2 => (0u64..40).prop_map(Some)])
            .prop_map(|(org, id, agent, ty, ttl_s, max_wait_s)| Op::Acquire { org, id, agent, ty, ttl_s, max_wait_s }),
        4 => (org.clone(), id.clone()).prop_map(|(o, i)| Op::Release(o, i)),
        3 => (org.clone(), id.clone(), prop_oneof![3 => Just(None), 1 => (3u64..40).prop_map(Some)]).prop_map(|(o, i, t)| Op::Heartbeat(o, i, t)),
        2 => (org.clone(), id).prop_map(|(o, i)| Op::OpenWait(o, i)),
        2 => (0usize..8).prop_map(Op::CloseWait),
        4 => prop_oneof![0u64..2_000, 2_000u64..40_000].prop_map(Op::Advance),
        2 => Just(Op::ToDeadline),
    ]
}

fn call_id(i: u8) -> String {
    format!("c{i}")
}

fn state_of(s: CallState) -> St {
    match s {
        CallState::Queued => St::Queued,
        CallState::Active => St::Active,
        CallState::Ended => St::Ended,
    }
}

/// Engine events of one step, as comparable tuples.
fn engine_events(e: &mut Engine, seqs: &mut HashMap<String, u64>) -> Vec<Ev> {
    let mut out: Vec<Ev> = Vec::new();
    for ev in e.drain_events() {
        let org = ev.org.to_string();
        let last = seqs.entry(org.clone()).or_insert(0);
        assert_eq!(ev.seq, *last + 1, "event numbers are contiguous");
        *last = ev.seq;
        out.push(match ev.kind {
            EventKind::OrgCreated { .. } => continue,
            EventKind::CallQueued { call, .. } => (org, "queued", call.to_string(), String::new()),
            EventKind::CallAdmitted { call, slot, .. } => {
                (org, "admitted", call.to_string(), slot.as_str().into())
            }
            EventKind::CallEnded { call, reason, .. } => {
                (org, "ended", call.to_string(), reason.as_str().into())
            }
            EventKind::CallLeaseChanged {
                call, lease_ttl_ms, ..
            } => (org, "lease", call.to_string(), lease_ttl_ms.to_string()),
            EventKind::LimitChanged { new, .. } => (org, "limit", String::new(), new.to_string()),
            EventKind::BurstChanged { new, .. } => (org, "burst", String::new(), new.to_string()),
            EventKind::CapsChanged { agent, new, .. } => (
                org,
                "caps",
                agent.to_string(),
                format!(
                    "{:?}",
                    [new.webcall, new.chat, new.outbound, new.inbound, new.total]
                ),
            ),
            EventKind::ReservationsChanged { agent, new, .. } => (
                org,
                "reservations",
                agent.to_string(),
                format!("{:?}", [new.webcall, new.chat, new.outbound, new.inbound]),
            ),
            _ => continue,
        });
    }
    out
}

fn m_has_cap(o: &MOrg, a: usize, k: usize) -> bool {
    o.caps.contains_key(&(a, k))
}

fn compare(e: &Engine, m: &Model, step: &str) {
    assert_eq!(e.org_ids().len(), m.orgs.len(), "{step}: orgs");
    for (name, o) in &m.orgs {
        let v = e.org(name).unwrap();
        let s = o.limit - o.reserved();
        assert_eq!(
            (
                v.limit,
                v.reserved,
                v.shared,
                v.active,
                v.queued,
                v.shared_in_use,
                v.burst,
                v.burst_in_use
            ),
            (
                o.limit,
                o.reserved(),
                s,
                o.active(),
                o.queued().len() as u32,
                o.shared_in_use(),
                o.burst,
                o.active().saturating_sub(o.limit)
            ),
            "{step}: snapshot of {name}"
        );
        for a in &v.agents {
            let ai = AGENTS.iter().position(|x| *x == a.id.as_str()).unwrap();
            let cap = |k| o.caps.get(&(ai, k)).copied();
            let c = a.caps;
            assert_eq!(
                [c.webcall, c.chat, c.outbound, c.inbound, c.total],
                [cap(0), cap(1), cap(2), cap(3), cap(4)],
                "{step}: caps of {}",
                a.id
            );
            for t in CallType::ALL {
                let ti = t.index();
                let q = o
                    .queued()
                    .iter()
                    .filter(|c| c.agent == ai && c.ty == ti)
                    .count() as u32;
                assert_eq!(
                    (a.reserved.get(t), a.active.get(t), a.queued.get(t)),
                    (o.r(ai, ti), o.n(ai, ti), q),
                    "{step}: agent {} {t}",
                    a.id
                );
            }
        }
        let listed = (0..AGENTS.len())
            .filter(|&a| {
                (0..5).any(|k| m_has_cap(o, a, k))
                    || (0..4).any(|t| {
                        o.r(a, t) > 0
                            || o.n(a, t) > 0
                            || o.calls
                                .iter()
                                .any(|c| c.st == St::Queued && c.agent == a && c.ty == t)
                    })
            })
            .count();
        assert_eq!(v.agents.len(), listed, "{step}: agents listed in {name}");

        let queue: Vec<String> = e
            .queued_calls(name, e.now())
            .unwrap()
            .map(|c| c.id.to_string())
            .collect();
        let model_queue: Vec<String> = o.queued().iter().map(|c| c.id.clone()).collect();
        assert_eq!(queue, model_queue, "{step}: queue of {name}");

        for i in 0..12u8 {
            let id = call_id(i);
            match (
                o.calls.iter().find(|c| c.id == id),
                e.call(name, &id, e.now()),
            ) {
                (None, Err(Error::CallNotFound)) => {}
                (Some(c), Ok(view)) => {
                    let ms = |t: Option<Timestamp>| t.map(Timestamp::as_millis);
                    assert_eq!(state_of(view.state), c.st, "{step}: state of {name}/{id}");
                    assert_eq!(view.slot, c.slot, "{step}: slot of {name}/{id}");
                    assert_eq!(
                        view.position,
                        (c.st == St::Queued).then(|| o.position(c)),
                        "{step}: position of {name}/{id}"
                    );
                    assert!(
                        c.st == St::Queued || view.estimated_wait_ms.is_none(),
                        "{step}: an estimate on {name}/{id}, not queued"
                    );
                    assert_eq!(
                        ms(view.queued_at),
                        c.queued_at,
                        "{step}: queued_at of {name}/{id}"
                    );
                    assert_eq!(
                        ms(view.admitted_at),
                        c.admitted_at,
                        "{step}: admitted_at of {name}/{id}"
                    );
                    assert_eq!(
                        ms(view.ended_at),
                        c.ended_at,
                        "{step}: ended_at of {name}/{id}"
                    );
                    assert_eq!(
                        view.end_reason.map(|r| r.as_str()),
                        c.reason,
                        "{step}: reason of {name}/{id}"
                    );
                    if c.st == St::Active {
                        assert_eq!(
                            ms(view.lease_expires_at),
                            Some(c.lease),
                            "{step}: lease of {name}/{id}"
                        );
                    }
                    if c.st == St::Queued {
                        assert_eq!(
                            ms(view.hold_expires_at),
                            c.hold,
                            "{step}: hold of {name}/{id}"
                        );
                        assert_eq!(
                            ms(view.max_wait_expires_at),
                            c.max_wait,
                            "{step}: max_wait of {name}/{id}"
                        );
                    }
                }
                (model, engine) => {
                    panic!("{step}: {name}/{id}: model {model:?}, engine {engine:?}")
                }
            }
        }
        // No queued call is admissible after any operation.
        for c in o.queued() {
            assert!(
                !o.admissible(c.agent, c.ty),
                "{step}: {name}/{} is admissible but queued",
                c.id
            );
        }
    }
    assert_eq!(
        e.poll_timeout().map(Timestamp::as_millis),
        m.next_deadline(),
        "{step}: next deadline"
    );
}

fn run(limits: [u32; 2], mut ops: Vec<Op>, cap: u32, retention_s: u64) {
    // Both orgs exist from the start, so that most steps do something.
    ops.splice(
        0..0,
        [Op::CreateOrg(0, limits[0]), Op::CreateOrg(1, limits[1])],
    );
    let mut e = Engine::new(Config {
        queue_cap: cap,
        ended_retention: Duration::from_secs(retention_s),
    });
    let mut m = Model {
        orgs: BTreeMap::new(),
        clock: 0,
        cap: cap as usize,
        retention: retention_s * 1000,
        instances: 0,
        events: Vec::new(),
    };
    let mut now = 1_000_000u64;
    let mut seqs = HashMap::new();
    let mut waits: Vec<(usize, String, u64, WaitToken)> = Vec::new();
    let mut ended_instances: HashMap<u64, u32> = HashMap::new();
    for (n, op) in ops.into_iter().enumerate() {
        let step = format!("step {n} {op:?} at {now}");
        let t = Timestamp::from_millis(now);
        let org = |o: usize| ORGS[o];
        match op {
            Op::CreateOrg(o, l) => {
                let got = e
                    .create_org(OrgId::new(org(o)).unwrap(), l, t)
                    .map(|_| ())
                    .map_err(|e| reason_of(&e));
                let want = if m.orgs.contains_key(org(o)) {
                    Err("OrgExists".to_string())
                } else {
                    m.orgs.insert(
                        org(o).into(),
                        MOrg {
                            limit: l,
                            ..Default::default()
                        },
                    );
                    m.tick(now);
                    Ok(())
                };
                assert_eq!(got, want, "{step}");
            }
            Op::SetLimit(o, l) => {
                let got = e
                    .set_limit(org(o), l, t)
                    .map(|_| ())
                    .map_err(|e| reason_of(&e));
                assert_eq!(got, m.set_limit(org(o), l, now), "{step}");
            }
            Op::Reserve(o, a, r) => {
                let res = Reservations {
                    webcall: r[0],
                    chat: r[1],
                    outbound: r[2],
                    inbound: r[3],
                };
                let got = e
                    .set_reservations(org(o), &AgentId::new(AGENTS[a]).unwrap(), res, t)
                    .map(|_| ())
                    .map_err(|e| reason_of(&e));
                assert_eq!(got, m.reserve(org(o), a, r, now), "{step}");
            }
            Op::Remove(o, a) => {
                let got = e
                    .remove_agent(org(o), &AgentId::new(AGENTS[a]).unwrap(), t)
                    .map(|_| ())
                    .map_err(|e| reason_of(&e));
                // Removing an agent removes its caps, then its reservations.
                let want = m
                    .set_caps(org(o), a, [None; 5], now)
                    .and_then(|()| m.reserve(org(o), a, [0; 4], now));
                assert_eq!(got, want, "{step}");
            }
            Op::SetBurst(o, b) => {
                let got = e
                    .set_burst(org(o), b, t)
                    .map(|_| ())
                    .map_err(|e| reason_of(&e));
                assert_eq!(got, m.set_burst(org(o), b, now), "{step}");
            }
            Op::SetTerms(o, l, b) => {
                let tier = PlanLink::on(PlanId::new("tier").unwrap());
                let got = e
                    .set_terms(org(o), tier, l, b, t)
                    .map(|_| ())
                    .map_err(|e| reason_of(&e));
                assert_eq!(got, m.set_terms(org(o), l, b, now), "{step}");
            }
            Op::SetCaps(o, a, c) => {
                let caps = Caps {
                    webcall: c[0],
                    chat: c[1],
                    outbound: c[2],
                    inbound: c[3],
                    total: c[4],
                };
                let got = e
                    .set_caps(org(o), &AgentId::new(AGENTS[a]).unwrap(), caps, t)
                    .map(|_| ())
                    .map_err(|e| reason_of(&e));
                assert_eq!(got, m.set_caps(org(o), a, c, now), "{step}");
            }
            Op::Acquire {
                org: o,
                id,
                agent,
                ty,
                ttl_s,
                max_wait_s,
            } => {
                let mut req = AcquireRequest::new(
                    CallId::new(&call_id(id)).unwrap(),
                    AgentId::new(AGENTS[agent]).unwrap(),
                    CallType::ALL[ty],
                );
                req.lease_ttl = Duration::from_secs(ttl_s);
                req.max_wait = max_wait_s.map(Duration::from_secs);
                let got = e
                    .acquire(org(o), req, t)
                    .map_err(|e| reason_of(&e))
                    .map(|a| match a {
                        Acquired::Admitted(c) => ("admitted".to_string(), state_of(c.state)),
                        Acquired::Queued(c) => ("queued".to_string(), state_of(c.state)),
                        Acquired::Existing(c) => ("existing".to_string(), state_of(c.state)),
                    });
                assert_eq!(
                    got,
                    m.acquire(org(o), &call_id(id), agent, ty, ttl_s, max_wait_s, now),
                    "{step}"
                );
            }
            Op::Release(o, id) => {
                let got = e
                    .release(org(o), &call_id(id), t)
                    .map(|c| state_of(c.state))
                    .map_err(|e| reason_of(&e));
                assert_eq!(got, m.release(org(o), &call_id(id), now), "{step}");
            }
            Op::Heartbeat(o, id, ttl) => {
                let got = e
                    .heartbeat(org(o), &call_id(id), ttl.map(Duration::from_secs), t)
                    .map(|_| ())
                    .map_err(|e| reason_of(&e));
                assert_eq!(got, m.heartbeat(org(o), &call_id(id), ttl, now), "{step}");
            }
            Op::OpenWait(o, id) => {
                let got = e.open_wait(org(o), &call_id(id), t);
                let token = got.as_ref().ok().map(|(_, token)| *token);
                let got = got
                    .map(|(c, _)| state_of(c.state))
                    .map_err(|e| reason_of(&e));
                let want = m.open_wait(org(o), &call_id(id));
                assert_eq!(got, want, "{step}");
                if let Some(token) = token {
                    let inst = m.orgs[org(o)]
                        .calls
                        .iter()
                        .find(|c| c.id == call_id(id))
                        .unwrap()
                        .instance;
                    waits.push((o, call_id(id), inst, token));
                }
            }
            Op::CloseWait(k) => {
                if waits.is_empty() {
                    continue;
                }
                // Also late closes: of a call that ended, or was forgotten and
                // whose id a new call took since.
                let (o, id, inst, token) = waits.remove(k % waits.len());
                let got = e
                    .close_wait(org(o), &id, token, t)
                    .map(|c| state_of(c.state))
                    .map_err(|e| reason_of(&e));
                assert_eq!(got, m.close_wait(org(o), &id, inst, now), "{step}");
            }
            Op::Advance(ms) => {
                now += ms;
                e.handle_timeout(Timestamp::from_millis(now));
                m.advance(now);
            }
            Op::ToDeadline => {
                if let Some(d) = e.poll_timeout() {
                    now = now.max(d.as_millis());
                    e.handle_timeout(Timestamp::from_millis(now));
                    m.advance(now);
                }
            }
        }
        let mut got = engine_events(&mut e, &mut seqs);
        let mut want = std::mem::take(&mut m.events);
        // Within a step, simultaneous endings may come in any order; the set must match.
        got.sort();
        want.sort();
        assert_eq!(got, want, "{step}: events");
        for ev in &got {
            if ev.1 == "ended" {
                let o = &m.orgs[&ev.0];
                if let Some(c) = o.calls.iter().find(|c| c.id == ev.2) {
                    *ended_instances.entry(c.instance).or_default() += 1;
                    assert_eq!(
                        ended_instances[&c.instance], 1,
                        "{step}: {} ended twice",
                        ev.2
                    );
                }
            }
        }
        compare(&e, &m, &step);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn the_engine_matches_the_model(limits in prop::array::uniform2(0u32..6), ops in prop::collection::vec(op(), 1..80)) {
        run(limits, ops, 5, 30);
    }

    #[test]
    fn the_engine_matches_the_model_without_retention(limits in prop::array::uniform2(0u32..6), ops in prop::collection::vec(op(), 1..80)) {
        run(limits, ops, 3, 0);
    }
}
