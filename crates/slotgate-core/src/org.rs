//! One org: its calls' lives (arrival, holds, deadlines, one end each),
//! dispatch after every change that can free capacity, and its read views.
//!
//! The counts and the queue are the [`Pool`]'s, the deadlines the [`Timers`]';
//! the org owns the calls (`id -> record`) and keeps those two in step with
//! them. Rebuilding from a store (`restore_*`, then [`Org::resume`]) files
//! calls through the same steps as live commands, without events.

use std::collections::VecDeque;
use std::time::Duration;

use crate::call::{check_lease_ttl, check_max_wait, Call, Phase, Place, Waiting};
use crate::command::{AcquireRequest, Acquired, WaitToken};
use crate::command::{CallPage, ListFilter};
use crate::error::{Error, Result};
use crate::event::{Event, EventKind};
use crate::id::{AgentId, CallId, IdMap, OrgId};
use crate::pool::{Listed, Pool};
use crate::restore::{RestoredCall, RestoredState};
use crate::time::Timestamp;
use crate::timers::{TimerKind, Timers};
use crate::types::{CallState, Caps, EndReason, IfBlocked, Reservations, Slot};
use crate::view::{AgentTotals, AgentView, CallView, OrgView, PlanLink};

/// Settings an org takes from its engine.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OrgConfig {
    /// Most calls the org may have queued.
    pub(crate) queue_cap: u32,
    /// How long ended calls are kept, in ms.
    pub(crate) retention_ms: u64,
}

/// One org's complete admission state.
#[derive(Debug)]
pub(crate) struct Org {
    id: OrgId,
    config: OrgConfig,
    /// The counts, the admission rule and the queue.
    pool: Pool,
    /// Every call the org knows: queued, active, and ended within retention.
    /// Boxed, so the table's slots are small: a profile of acquire+release on
    /// 10,000 calls spent most of its time on cache misses in a table of
    /// 144-byte slots, and a freed box is the next one allocated.
    calls: IdMap<CallId, Box<Call>>,
    /// Deadlines of queued and active calls.
    timers: Timers,
    /// Ended calls in the order they end, with the instant they are forgotten.
    retained: VecDeque<(Timestamp, CallId)>,
    /// The next sequence number: queued calls' arrival order and active
    /// calls' admission order both count from it.
    next_seq: u64,
    /// The seq of the last event emitted.
    event_seq: u64,
    /// Its plan: a label the admission rule never reads.
    plan: PlanLink,
}

impl Org {
    /// A new org with no agents and no calls. Emits `org.created`.
    pub(crate) fn new(
        id: OrgId,
        limit: u32,
        config: OrgConfig,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<Self> {
        let mut org = Org {
            id,
            config,
            pool: Pool::new(limit)?,
            calls: IdMap::default(),
            timers: Timers::default(),
            retained: VecDeque::new(),
            next_seq: 1,
            event_seq: 0,
            plan: PlanLink::default(),
        };
        org.emit(now, EventKind::OrgCreated { limit }, out);
        Ok(org)
    }

    /// The org's id.
    pub(crate) fn id(&self) -> &OrgId {
        &self.id
    }

    /// Sets the limit. Refused below the sum of reservations; nothing changes then.
    pub(crate) fn set_limit(
        &mut self,
        limit: u32,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<()> {
        let blocked = self.pool.blocked();
        let old = self.pool.set_limit(limit, now)?;
        if old != limit {
            self.emit(now, EventKind::LimitChanged { old, new: limit }, out);
            self.reconfigured(blocked, now, out);
        }
        Ok(())
    }

    /// Sets the org's plan link, limit and burst at once: refused whole
    /// (nothing changes) if the limit is below the reservations. Emits
    /// `org.plan_changed` first if the link changed, then the limit and
    /// burst changes as [`Org::set_limit`] and [`Org::set_burst`] do.
    pub(crate) fn set_terms(
        &mut self,
        link: PlanLink,
        limit: u32,
        burst: u32,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<()> {
        self.pool.check_terms(limit, burst)?;
        if self.plan != link {
            let old = std::mem::replace(&mut self.plan, link.clone());
            self.emit(now, EventKind::PlanChanged { old, new: link }, out);
        }
        // The lowering first: the dispatch after each step then never
        // admits beyond what the final limit and burst allow.
        if burst < self.pool.burst() {
            self.set_burst(burst, now, out)?;
            self.set_limit(limit, now, out)
        } else {
            self.set_limit(limit, now, out)?;
            self.set_burst(burst, now, out)
        }
    }

    /// Restores the org's plan link (no event).
    pub(crate) fn restore_plan(&mut self, link: PlanLink) {
        self.plan = link;
    }

    /// Sets the burst. Lowering it ends no call.
    pub(crate) fn set_burst(
        &mut self,
        burst: u32,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<()> {
        let blocked = self.pool.blocked();
        let old = self.pool.set_burst(burst)?;
        if old != burst {
            self.emit(now, EventKind::BurstChanged { old, new: burst }, out);
            self.reconfigured(blocked, now, out);
        }
        Ok(())
    }

    /// Sets an agent's caps. Refused if a cap would be below the reservation
    /// it covers; nothing changes then. Lowering a cap ends no call.
    pub(crate) fn set_caps(
        &mut self,
        agent: &AgentId,
        new: Caps,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<AgentView> {
        let blocked = self.pool.blocked();
        let old = self.pool.set_caps(agent, new)?;
        if old != new {
            let agent = agent.clone();
            self.emit(now, EventKind::CapsChanged { agent, old, new }, out);
            self.reconfigured(blocked, now, out);
        }
        Ok(self.pool.agent_view(agent))
    }

    /// After a configuration change: dispatch, then `org.blocked_changed` if
    /// the number of blocked queued calls is no longer `blocked_before`.
    fn reconfigured(&mut self, blocked_before: u32, now: Timestamp, out: &mut Vec<Event>) {
        self.dispatch(now, out);
        let blocked = self.pool.blocked();
        if blocked != blocked_before {
            let kind = EventKind::BlockedChanged {
                old: blocked_before,
                new: blocked,
            };
            self.emit(now, kind, out);
        }
    }

    /// Sets an agent's four reservations. Refused if the org's sum would exceed
    /// the limit; nothing changes then.
    pub(crate) fn set_reservations(
        &mut self,
        agent: &AgentId,
        new: Reservations,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<AgentView> {
        let blocked = self.pool.blocked();
        let old = self.pool.set_reservations(agent, new, now)?;
        if old != new {
            let agent = agent.clone();
            self.emit(now, EventKind::ReservationsChanged { agent, old, new }, out);
            self.reconfigured(blocked, now, out);
        }
        Ok(self.pool.agent_view(agent))
    }

    /// A call arrives: it is admitted if the rule allows, else queued. A known
    /// id is an idempotent retry (its current state) or a conflict.
    pub(crate) fn acquire(
        &mut self,
        req: AcquireRequest,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<Acquired> {
        if let Some(call) = self.calls.get(req.id.as_str()) {
            let g = call.group;
            if *self.pool.agent_id(g) != req.agent || g.call_type != req.call_type {
                return Err(Error::CallIdConflict);
            }
            // A retry is a sign of life: it holds a queued call like a heartbeat.
            self.renew(req.id.as_str(), None, now);
            return Ok(Acquired::Existing(self.view_of(req.id.as_str(), now)));
        }
        let lease_ttl_ms = check_lease_ttl(req.lease_ttl)?;
        let max_wait_at = match req.max_wait {
            Some(w) => now.add_millis(check_max_wait(w)?),
            None => Timestamp::NEVER,
        };
        let group = self.pool.find_group(&req.agent, req.call_type);
        let admit = self.pool.admissible(group);
        if !admit && req.if_blocked == IfBlocked::Refuse {
            if let Some(reason) = self.pool.blocked_reason(group) {
                return Err(Error::CallBlocked { reason });
            }
        }
        if !admit && self.pool.queued() >= self.config.queue_cap as usize {
            return Err(Error::QueueFull {
                cap: self.config.queue_cap,
            });
        }

        let g = group.unwrap_or_else(|| self.pool.group_of(&req.agent, req.call_type));
        let lease_until = now.add_millis(u64::from(lease_ttl_ms));
        if admit {
            let seq = self.take_seq();
            let slot = self.pool.occupy(g, seq, &req.id, now);
            let phase = Phase::Active {
                seq,
                slot,
                admitted_at: now,
                lease_expires_at: lease_until,
            };
            let call = Call::new(req.id, g, lease_ttl_ms, None, phase);
            let view = call.view(&req.agent, None);
            let kind = admitted_event(&call, &req.agent, slot, now);
            self.insert_call(call);
            self.emit(now, kind, out);
            if self.pool.burst() > 0 {
                // With a burst the rule is not monotone in `N`: filling the
                // limit opens the burst to queued calls with no reserved room.
                self.dispatch(now, out);
            }
            return Ok(Acquired::Admitted(view));
        }
        let phase = Phase::Queued(Waiting {
            seq: self.take_seq(),
            hold_until: lease_until,
            waits: 0,
            max_wait_at,
        });
        let call = Call::new(req.id.clone(), g, lease_ttl_ms, Some(now), phase);
        self.insert_call(call);
        let view = self.view_of(req.id.as_str(), now);
        let kind = EventKind::CallQueued {
            call: req.id,
            agent: req.agent,
            call_type: req.call_type,
            position: view.position.expect("a queued call has a position"),
            estimated_wait_ms: view.estimated_wait_ms,
            lease_ttl_ms: u64::from(lease_ttl_ms),
            max_wait_expires_at: max_wait_at.finite(),
            blocked: view.blocked,
        };
        self.emit(now, kind, out);
        Ok(Acquired::Queued(view))
    }

    /// The caller ends its call: `released` if active, `cancelled` if queued.
    /// An ended call is returned as it ended.
    pub(crate) fn end_by_caller(
        &mut self,
        id: &str,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<CallView> {
        let reason = match self.get(id)?.phase {
            Phase::Queued(_) => EndReason::Cancelled,
            Phase::Active { .. } => EndReason::Released,
            Phase::Ended { .. } => return Ok(self.view_of(id, now)),
        };
        let view = self.end(id, reason, now, out);
        self.dispatch(now, out);
        Ok(view)
    }

    /// Renews an active call's lease, or a queued call's hold; `lease_ttl`
    /// replaces the call's, and emits `call.lease_changed` if it differs.
    pub(crate) fn heartbeat(
        &mut self,
        id: &str,
        lease_ttl: Option<Duration>,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<CallView> {
        let call = self.get(id)?;
        let ttl = lease_ttl.map(check_lease_ttl).transpose()?;
        if call.state() == CallState::Ended {
            return Err(Error::CallEnded {
                call: Box::new(self.view_of(id, now)),
            });
        }
        let changed =
            ttl.filter(|&ttl| ttl != call.lease_ttl_ms)
                .map(|ttl| EventKind::CallLeaseChanged {
                    call: call.id.clone(),
                    agent: self.pool.agent_id(call.group).clone(),
                    call_type: call.group.call_type,
                    lease_ttl_ms: u64::from(ttl),
                });
        self.renew(id, ttl, now);
        if let Some(kind) = changed {
            self.emit(now, kind, out);
        }
        Ok(self.view_of(id, now))
    }

    /// A wait (long-poll) opens on a call: while any is open, a queued call is
    /// held. The token names this call by its place in the queue's arrival
    /// order (0 when it is not queued: closing that wait changes nothing).
    pub(crate) fn open_wait(&mut self, id: &str, now: Timestamp) -> Result<(CallView, WaitToken)> {
        self.get(id)?;
        let seq = self.update_call(id, |call| match &mut call.phase {
            Phase::Queued(w) => {
                w.waits += 1;
                w.hold_until = Timestamp::NEVER;
                w.seq
            }
            _ => 0,
        });
        Ok((self.view_of(id, now), WaitToken(seq)))
    }

    /// A wait closes. When the last one closes on a still queued call, its hold
    /// runs for one `lease_ttl` from `now`. A token of another call changes nothing.
    pub(crate) fn close_wait(
        &mut self,
        id: &str,
        token: WaitToken,
        now: Timestamp,
    ) -> Result<CallView> {
        self.get(id)?;
        self.update_call(id, |call| {
            let at = now.add_millis(call.lease_ttl_ms());
            match &mut call.phase {
                Phase::Queued(w) if w.seq == token.0 => {
                    w.waits = w.waits.saturating_sub(1);
                    if w.waits == 0 {
                        w.hold_until = at;
                    }
                }
                _ => {}
            }
        });
        Ok(self.view_of(id, now))
    }

    /// The next instant the org needs [`Org::handle_timeout`], if any.
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        let timer = self.timers.first().map(|(d, _)| d.at);
        let purge = self.retained.front().map(|&(at, _)| at);
        match (timer, purge) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Handles every deadline up to `now`, one instant at a time and in order:
    /// at each instant, queued calls' deadlines, then leases, then one dispatch
    /// at that instant. Then forgets ended calls past retention.
    pub(crate) fn handle_timeout(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        while let Some(at) = self
            .timers
            .first()
            .map(|(d, _)| d.at)
            .filter(|&at| at <= now)
        {
            // Ending a call takes all its deadlines out, this one included.
            while let Some((d, id)) = self.timers.first().filter(|(d, _)| d.at == at) {
                let id = id.clone();
                let reason = match d.kind {
                    TimerKind::MaxWait => EndReason::TimedOut,
                    TimerKind::Hold => EndReason::Abandoned,
                    TimerKind::Lease => EndReason::Expired,
                };
                self.end(id.as_str(), reason, at, out);
            }
            self.dispatch(at, out);
        }
        while let Some((at, _)) = self.retained.front() {
            if *at > now {
                break;
            }
            let (_, id) = self.retained.pop_front().expect("just looked");
            self.calls.remove(id.as_str());
        }
    }

    // ---- Rebuilding from a store: no events, no dispatch until resumed. ----

    /// Sets where the org's event numbering resumes.
    pub(crate) fn restore_event_seq(&mut self, last_seq: u64) {
        self.event_seq = self.event_seq.max(last_seq);
    }

    /// Restores an agent's reservations, refused (unchanged) if they would exceed the limit.
    pub(crate) fn restore_reservations(
        &mut self,
        agent: &AgentId,
        r: Reservations,
        now: Timestamp,
    ) -> Result<()> {
        self.pool.set_reservations(agent, r, now).map(drop)
    }

    /// Restores the org's burst.
    pub(crate) fn restore_burst(&mut self, burst: u32) -> Result<()> {
        self.pool.set_burst(burst).map(drop)
    }

    /// Restores an agent's caps, refused (unchanged) below its reservations:
    /// restore reservations first.
    pub(crate) fn restore_caps(&mut self, agent: &AgentId, caps: Caps) -> Result<()> {
        self.pool.set_caps(agent, caps).map(drop)
    }

    /// Restores one call. Queued calls must come in queue order, ended calls in
    /// the order they ended. Leases and holds start when the org is resumed;
    /// only a `max_wait` runs already. `now` is the engine's clock, where the
    /// history of slot use (for expected waits) starts.
    pub(crate) fn restore_call(&mut self, c: RestoredCall, now: Timestamp) -> Result<()> {
        if self.calls.contains_key(c.id.as_str()) {
            return Err(Error::CallIdConflict);
        }
        let lease_ttl_ms = u32::try_from(c.lease_ttl.as_millis())
            .map_err(|_| Error::invalid("lease_ttl_s", "too long"))?;
        let g = self.pool.group_of(&c.agent, c.call_type);
        let id = c.id.clone();
        let call = |phase| Call::new(c.id, g, lease_ttl_ms, c.queued_at, phase);
        match c.state {
            RestoredState::Queued {
                max_wait_expires_at,
            } => {
                let phase = Phase::Queued(Waiting {
                    seq: self.take_seq(),
                    hold_until: Timestamp::NEVER,
                    waits: 0,
                    max_wait_at: max_wait_expires_at.unwrap_or(Timestamp::NEVER),
                });
                self.insert_call(call(phase));
            }
            RestoredState::Active { slot, admitted_at } => {
                // The slot is the one reported at admission; the counts are
                // today's. Filed in the order restored; `resume` sorts them.
                let seq = self.take_seq();
                self.pool.occupy(g, seq, &id, now);
                self.insert_call(call(Phase::Active {
                    seq,
                    slot,
                    admitted_at,
                    lease_expires_at: Timestamp::NEVER,
                }));
            }
            RestoredState::Ended {
                slot,
                admitted_at,
                ended_at,
                reason,
            } => self.retain(Box::new(call(Phase::Ended {
                slot,
                admitted_at,
                ended_at,
                reason,
            }))),
        }
        Ok(())
    }

    /// Starts the restored org's clocks at `now`: every active lease and every
    /// queue hold runs one `lease_ttl` from now; `max_wait`s keep their instant.
    /// Files active calls again oldest admission first (ties in the order
    /// restored), as the list of active calls shows them. Then dispatches,
    /// in case the restored state left room.
    pub(crate) fn resume(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        let mut active: Vec<(Timestamp, u64, CallId)> = self
            .calls
            .values()
            .filter_map(|call| match call.phase {
                Phase::Active {
                    seq, admitted_at, ..
                } => Some((admitted_at, seq, call.id.clone())),
                _ => None,
            })
            .collect();
        active.sort_unstable();
        for (_, old, id) in active {
            let new = self.take_seq();
            let call = self.calls.get_mut(&id).expect("just listed");
            self.pool.refile_admitted(call.group, old, new);
            if let Phase::Active { seq, .. } = &mut call.phase {
                *seq = new;
            }
        }
        let ids: Vec<CallId> = self.calls.keys().cloned().collect();
        for id in ids {
            self.update_call(id.as_str(), |call| {
                let at = now.add_millis(call.lease_ttl_ms());
                match &mut call.phase {
                    Phase::Active {
                        lease_expires_at, ..
                    } => *lease_expires_at = at,
                    Phase::Queued(w) => {
                        w.hold_until = at;
                        w.waits = 0;
                    }
                    Phase::Ended { .. } => {}
                }
            });
        }
        self.dispatch(now, out);
    }

    // ---- Read views. ----

    /// The org's concurrency snapshot, its burst time counted to `now`.
    pub(crate) fn view(&self, now: Timestamp) -> OrgView {
        self.view_with(now, self.pool.agent_views())
    }

    /// The org's snapshot with only its `busiest` busiest agents, and the
    /// others summed: O(1) when `busiest` is 0, one pass over the agents
    /// otherwise (no view of the others is built).
    pub(crate) fn summary(&self, now: Timestamp, busiest: usize) -> (OrgView, AgentTotals) {
        let (agents, others) = self.pool.busiest_agents(busiest);
        (self.view_with(now, agents), others)
    }

    fn view_with(&self, now: Timestamp, agents: Vec<AgentView>) -> OrgView {
        OrgView {
            id: self.id.clone(),
            limit: self.pool.limit(),
            plan: self.plan.clone(),
            reserved: self.pool.reserved(),
            shared: self.pool.shared_capacity(),
            burst: self.pool.burst(),
            active: self.pool.active(),
            burst_in_use: self.pool.burst_in_use(),
            burst_ms: self.pool.burst_ms(now),
            queued: self.pool.queued() as u32,
            blocked: self.pool.blocked(),
            shared_in_use: self.pool.shared_in_use(),
            agents,
        }
    }

    /// One agent's view; an agent never seen has zeros everywhere.
    pub(crate) fn agent_view(&self, agent: &AgentId) -> AgentView {
        self.pool.agent_view(agent)
    }

    /// One call by id, as of `now`.
    pub(crate) fn call_view(&self, id: &str, now: Timestamp) -> Result<CallView> {
        self.get(id)?;
        Ok(self.view_of(id, now))
    }

    /// Queued calls in queue order, as of `now`.
    pub(crate) fn queued_calls(&self, now: Timestamp) -> impl Iterator<Item = CallView> + '_ {
        (1..)
            .zip(self.pool.listed_from(Listed::Queued, None, 0))
            .map(move |(position, id)| {
                let call = &self.calls[id];
                let place = self.place(call, position, now);
                call.view(self.pool.agent_id(call.group), place)
            })
    }

    /// Active calls, oldest admission first (ties in admission order).
    pub(crate) fn active_calls(&self) -> impl Iterator<Item = CallView> + '_ {
        self.pool.listed_from(Listed::Active, None, 0).map(|id| {
            let call = &self.calls[id];
            call.view(self.pool.agent_id(call.group), None)
        })
    }

    /// A page of live calls as of `now`: `limit` of those `filter` keeps from
    /// `offset` on, active ones (oldest admission first) before queued ones
    /// (in queue order). O(log n) to the page, then O(log n) per call.
    pub(crate) fn calls_page(
        &self,
        filter: &ListFilter,
        offset: usize,
        limit: usize,
        now: Timestamp,
    ) -> CallPage {
        let agent = filter.agent.as_ref();
        let lists = [Listed::Active, Listed::Queued]
            .into_iter()
            .filter(|list| filter.state.is_none_or(|s| s == list.state()));
        let (mut calls, mut skip, mut total) = (Vec::new(), offset, 0);
        for list in lists {
            let len = self.pool.listed_len(list, agent);
            total += len;
            if skip >= len {
                skip -= len;
                continue;
            }
            let room = limit - calls.len();
            let ids = self.pool.listed_from(list, agent, skip).take(room);
            calls.extend(ids.map(|id| self.view_of(id.as_str(), now)));
            skip = 0;
        }
        let end = offset + calls.len();
        CallPage {
            calls,
            next: (end < total).then_some(end),
        }
    }

    /// A known call's view as of `now`, with its queue position and
    /// expected wait if queued: O(log q).
    fn view_of(&self, id: &str, now: Timestamp) -> CallView {
        let call = &self.calls[id];
        let place = match &call.phase {
            Phase::Queued(w) => self.place(call, self.pool.position(w.seq), now),
            _ => None,
        };
        call.view(self.pool.agent_id(call.group), place)
    }

    /// Where a queued call at `position` stands as of `now`; `None` if it is not queued.
    fn place(&self, call: &Call, position: u64, now: Timestamp) -> Option<Place> {
        let Phase::Queued(w) = &call.phase else {
            return None;
        };
        Some(Place {
            position,
            estimated_wait_ms: self.pool.expected_wait_ms(w.seq, call.group, position, now),
            blocked: self.pool.blocked_reason(Some(call.group)),
        })
    }

    /// Whether the org holds a call with this id (queued, active, or ended
    /// within the retention).
    pub(crate) fn has_call(&self, id: &str) -> bool {
        self.calls.contains_key(id)
    }

    // ---- The steps every command is made of. ----

    fn get(&self, id: &str) -> Result<&Call> {
        self.calls.get(id).map(|c| &**c).ok_or(Error::CallNotFound)
    }

    /// The next queue sequence number.
    fn take_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq - 1
    }

    /// Files a new call: its deadlines, its place in the queue if it is
    /// queued, and the call table.
    fn insert_call(&mut self, mut call: Call) {
        call.refile(&mut self.timers);
        if let Phase::Queued(w) = &call.phase {
            self.pool.enqueue(w.seq, call.id.clone(), call.group);
        }
        let previous = self.calls.insert(call.id.clone(), Box::new(call));
        debug_assert!(previous.is_none(), "a new id");
    }

    /// Changes one known call and keeps its deadlines in step. All changes to a
    /// known call's phase or deadlines go through here.
    fn update_call<R>(&mut self, id: &str, change: impl FnOnce(&mut Call) -> R) -> R {
        let call = self.calls.get_mut(id).expect("the call is known");
        let result = change(call);
        call.refile(&mut self.timers);
        result
    }

    /// Pushes the deadlines out: an active call's lease, or an unwaited queued call's hold.
    fn renew(&mut self, id: &str, ttl: Option<u32>, now: Timestamp) {
        self.update_call(id, |call| {
            if let Some(ttl) = ttl {
                call.lease_ttl_ms = ttl;
            }
            let at = now.add_millis(call.lease_ttl_ms());
            match &mut call.phase {
                Phase::Active {
                    lease_expires_at, ..
                } => *lease_expires_at = at,
                Phase::Queued(w) if w.waits == 0 => w.hold_until = at,
                Phase::Queued(_) | Phase::Ended { .. } => {}
            }
        });
    }

    /// Admits queued calls while any is admissible, oldest admissible first.
    /// Runs after every operation that can free capacity.
    fn dispatch(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        while let Some(seq) = self.pool.next_admissible() {
            let id = self.pool.dequeue(seq);
            let admitted = self.take_seq();
            let call = self.calls.get_mut(&id).expect("a queued call is known");
            let slot = self.pool.occupy(call.group, admitted, &id, now);
            call.phase = Phase::Active {
                seq: admitted,
                slot,
                admitted_at: now,
                lease_expires_at: now.add_millis(call.lease_ttl_ms()),
            };
            call.refile(&mut self.timers);
            let kind = admitted_event(call, self.pool.agent_id(call.group), slot, now);
            self.emit(now, kind, out);
        }
    }

    /// Ends a live call once: frees its slot or its queue place, records the
    /// reason, emits `call.ended`, and keeps the call for the retention window
    /// or forgets it. Returns the call as it ended. The caller dispatches afterwards.
    fn end(
        &mut self,
        id: &str,
        reason: EndReason,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> CallView {
        let mut call = self.calls.remove(id).expect("a live call is known");
        let g = call.group;
        let (slot, admitted_at) = match call.phase {
            Phase::Queued(Waiting { seq, .. }) => {
                self.pool.dequeue(seq);
                (None, None)
            }
            Phase::Active {
                seq,
                slot,
                admitted_at,
                ..
            } => {
                self.pool.vacate(g, seq, now);
                (Some(slot), Some(admitted_at))
            }
            Phase::Ended { .. } => unreachable!("a call ends once: callers check it is live"),
        };
        call.phase = Phase::Ended {
            slot,
            admitted_at,
            ended_at: now,
            reason,
        };
        call.refile(&mut self.timers);
        let agent = self.pool.agent_id(g);
        let view = call.view(agent, None);
        let kind = EventKind::CallEnded {
            call: call.id.clone(),
            agent: agent.clone(),
            call_type: g.call_type,
            reason,
        };
        self.emit(now, kind, out);
        self.retain(call);
        view
    }

    /// Keeps an ended call readable for the retention window from its end;
    /// with no window, it is forgotten at once.
    fn retain(&mut self, call: Box<Call>) {
        let Phase::Ended { ended_at, .. } = call.phase else {
            unreachable!("only ended calls are retained")
        };
        if self.config.retention_ms > 0 {
            let until = ended_at.add_millis(self.config.retention_ms);
            self.retained.push_back((until, call.id.clone()));
            self.calls.insert(call.id.clone(), call);
        }
    }

    /// Appends an event with the org's next seq.
    fn emit(&mut self, at: Timestamp, kind: EventKind, out: &mut Vec<Event>) {
        self.event_seq += 1;
        out.push(Event {
            org: self.id.clone(),
            seq: self.event_seq,
            at,
            kind,
        });
    }
}

/// `call.admitted` for `call`, just made active in `slot`.
fn admitted_event(call: &Call, agent: &AgentId, slot: Slot, now: Timestamp) -> EventKind {
    EventKind::CallAdmitted {
        call: call.id.clone(),
        agent: agent.clone(),
        call_type: call.group.call_type,
        slot,
        waited_ms: call.queued_at.map_or(0, |q| now.millis_since(q)),
        lease_ttl_ms: call.lease_ttl_ms(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::CallType;

    /// The deadlines every live call has now, counted from the calls themselves.
    fn live_deadlines(org: &Org) -> usize {
        org.calls
            .values()
            .map(|c| c.deadlines().iter().flatten().count())
            .sum()
    }

    #[test]
    fn a_page_of_calls_is_taken_by_rank_from_each_list() {
        let config = OrgConfig {
            queue_cap: 1_000,
            retention_ms: 0,
        };
        let (mut out, now) = (Vec::new(), Timestamp::from_millis(1));
        let mut org = Org::new(OrgId::new("o").unwrap(), 2, config, now, &mut out).unwrap();
        // c0 (a), c1 (b) active; c2 (a), c3 (b), c4 (a) queued.
        for (n, agent) in ["a", "b", "a", "b", "a"].into_iter().enumerate() {
            let id = CallId::new(&format!("c{n}")).unwrap();
            let req = AcquireRequest::new(id, AgentId::new(agent).unwrap(), CallType::Chat);
            org.acquire(req, now, &mut out).unwrap();
        }
        org.end_by_caller("c0", now, &mut out).unwrap(); // c2 takes its slot
        let page = |state, agent: Option<&str>, offset, limit| {
            let filter = ListFilter {
                state,
                agent: agent.map(|a| AgentId::new(a).unwrap()),
            };
            let page = org.calls_page(&filter, offset, limit, now);
            let calls = page.calls.iter().map(|c| (c.id.to_string(), c.position));
            (calls.collect::<Vec<_>>(), page.next)
        };
        let call = |id: &str, position| (id.to_string(), position);
        assert_eq!(
            page(None, None, 1, 2),
            (vec![call("c2", None), call("c3", Some(1))], Some(3))
        );
        assert_eq!(page(None, None, 3, 2), (vec![call("c4", Some(2))], None));
        assert_eq!(
            page(Some(CallState::Queued), Some("a"), 0, 5),
            (vec![call("c4", Some(2))], None)
        );
        assert_eq!(
            page(None, Some("a"), 0, 1),
            (vec![call("c2", None)], Some(1))
        );
        assert_eq!(page(Some(CallState::Ended), None, 0, 5), (vec![], None));
        assert_eq!(page(None, Some("nobody"), 0, 5), (vec![], None));
        assert_eq!(page(None, None, 9, 5), (vec![], None));
    }

    #[test]
    fn renewals_admissions_and_ends_leave_exactly_the_current_deadlines() {
        let config = OrgConfig {
            queue_cap: 1_000,
            retention_ms: 0,
        };
        let mut out = Vec::new();
        let t = Timestamp::from_millis;
        let mut org = Org::new(OrgId::new("o").unwrap(), 2, config, t(1), &mut out).unwrap();
        for n in 0..6 {
            let mut req = AcquireRequest::new(
                CallId::new(&format!("c{n}")).unwrap(),
                AgentId::new("a").unwrap(),
                CallType::Chat,
            );
            req.max_wait = Some(Duration::from_secs(600));
            org.acquire(req, t(1), &mut out).unwrap();
        }
        // 2 leases, 4 queued calls with a hold and a max_wait each.
        assert_eq!((org.timers.len(), live_deadlines(&org)), (10, 10));
        for round in 0..1_000 {
            for n in 0..6 {
                org.heartbeat(&format!("c{n}"), None, t(2 + round), &mut out)
                    .unwrap();
            }
        }
        assert_eq!(org.timers.len(), 10, "a thousand renewals add no entries");
        org.open_wait("c5", t(2_000)).unwrap();
        assert_eq!(org.timers.len(), 9, "an open wait holds: no hold deadline");
        org.end_by_caller("c0", t(2_000), &mut out).unwrap();
        // c0 gone, c2 admitted: 1 + 1 leases, c3 and c4 with two each, c5 with its max_wait.
        assert_eq!((org.timers.len(), live_deadlines(&org)), (7, 7));
        assert_eq!(org.poll_timeout(), org.timers.first().map(|(d, _)| d.at));
    }
}
