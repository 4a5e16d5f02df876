//! One org's slots: the counts of SEMANTICS.md's admission rule (version 2:
//! caps and burst) and the queue in arrival order, and which queued call
//! dispatch admits next.
//!
//! The pool keeps counts, never slot assignments: `n(a,t)`, `r(a,t)` and the
//! cap `c(a,t)` per (agent, type) group, `n(a)` and `C(a)` per agent, and the
//! derived totals `N`, `R` and `shared_in_use`, each updated by the delta of
//! the one group that changed. The admission rule reads only these, so every
//! decision is O(1) in the number of agents.
//!
//! The queue is a [`Ranked`] sequence of sequence numbers (positions in
//! O(log q)) plus each group's set of queued sequence numbers. A group below
//! its caps with a queued call is *open*; an open group with reserved room is
//! also *ready*. Both sets are ordered by each group's oldest call. So the
//! oldest admissible call is found in O(log q): the oldest open one when the
//! shared pool (or, with the limit in use, the burst) has room, else the
//! oldest ready one. A capped group's calls sit in neither set: younger calls
//! of other groups pass them, and their org-wide positions stay.
//!
//! A queued call is *blocked* when the rule would refuse it even in an idle
//! org (SEMANTICS.md, "Blocked calls"). That depends on the configuration
//! only, so the pool counts blocked calls as it counts the rest: by group,
//! the queued calls under a zero cap and those with no reservation.
//!
//! It also keeps how long each kind of slot is held (the shared pool, each
//! group's reserved slots: [`SlotUse`]), so a queued call's expected wait is
//! its place in the queues it waits in times the gap between frees.
//!
//! For lists, it keeps the active calls in admission order and each agent's
//! active and queued calls, ranked too: a page of any list is found by rank
//! in O(log n), not by walking the list.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use crate::error::{Error, Result};
use crate::id::{AgentId, CallId, IdMap};
use crate::ranked::Ranked;
use crate::time::Timestamp;
use crate::types::{
    BlockedReason, CallState, CallType, Caps, PerType, Reservations, Slot, MAX_LIMIT,
};
use crate::view::{AgentTotals, AgentView};
use crate::wait::{expected_wait_ms, Path, SlotUse};

/// An (agent, type) pair: the agent by its index in the org.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub(crate) struct GroupId {
    agent: u32,
    /// The type of the group's calls.
    pub(crate) call_type: CallType,
}

/// The calls of one agent and one type.
#[derive(Debug, Default)]
struct Group {
    /// `r(a,t)`: slots reserved for this group.
    reserved: u32,
    /// `n(a,t)`: active calls of this group.
    active: u32,
    /// `c(a,t)`: the most active calls this group may hold; `None`, no cap.
    cap: Option<u32>,
    /// Sequence numbers of this group's queued calls.
    queue: BTreeSet<u64>,
    /// The key under which this group sits in the open set, if it does.
    open_at: Option<u64>,
    /// The key under which this group sits in the ready set, if it does.
    ready_at: Option<u64>,
    /// For expected waits through its reserved slots, while (and only while)
    /// it has some. Boxed and kept apart: most groups reserve nothing, and an
    /// ranked set costs dispatch more than a `BTreeSet` does, so the others
    /// pay for neither.
    reserved_wait: Option<Box<ReservedWait>>,
}

/// What a group with reserved slots keeps for the expected wait through them.
#[derive(Debug)]
struct ReservedWait {
    /// The group's queued calls' seqs again, ranked: a call's place among
    /// them in O(log q).
    ranked: Ranked<()>,
    /// How long its reserved slots are held.
    slots: SlotUse,
}

/// What one group adds to the org's totals: the pool keeps each total as
/// the sum of these, updated by the difference when a group changes.
#[derive(Clone, Copy, Default)]
struct Share {
    reserved: u32,
    shared_in_use: u32,
    /// Its queued calls, if a zero cap (its own or its agent's) blocks them.
    queued_cap_zero: u32,
    /// Its queued calls, if it has no zero cap and reserves nothing: blocked
    /// while the org has no shared capacity.
    queued_unreserved: u32,
}

impl Group {
    /// What the group adds to the org's totals; `agent_cap_zero`: its
    /// agent's total cap is 0.
    fn share(&self, agent_cap_zero: bool) -> Share {
        let queued = self.queue.len() as u32;
        let cap_zero = agent_cap_zero || self.cap == Some(0);
        Share {
            reserved: self.reserved,
            shared_in_use: self.shared_in_use(),
            queued_cap_zero: if cap_zero { queued } else { 0 },
            queued_unreserved: if !cap_zero && self.reserved == 0 {
                queued
            } else {
                0
            },
        }
    }

    /// Active calls counted against the shared pool: `max(0, n - r)`.
    fn shared_in_use(&self) -> u32 {
        self.active.saturating_sub(self.reserved)
    }

    /// Active calls sitting in reserved slots: `min(n, r)`.
    fn reserved_in_use(&self) -> u32 {
        self.active.min(self.reserved)
    }

    fn has_reserved_room(&self) -> bool {
        self.active < self.reserved
    }

    fn enqueue(&mut self, seq: u64) {
        self.queue.insert(seq);
        if let Some(w) = &mut self.reserved_wait {
            w.ranked.push(seq, ());
        }
    }

    fn dequeue(&mut self, seq: u64) {
        self.queue.remove(&seq);
        if let Some(w) = &mut self.reserved_wait {
            w.ranked.remove(seq);
        }
    }

    /// Keeps `reserved_wait` while, and only while, the group reserves slots;
    /// its history starts at `now`.
    fn track_reserved_wait(&mut self, now: Timestamp) {
        match (self.reserved > 0, self.reserved_wait.is_some()) {
            (true, false) => {
                self.reserved_wait = Some(Box::new(ReservedWait {
                    ranked: self.queue.iter().map(|&seq| (seq, ())).collect(),
                    slots: SlotUse::starting(now),
                }));
            }
            (false, true) => self.reserved_wait = None,
            _ => {}
        }
    }

    /// The expected wait of its queued call `seq` through its reserved slots alone.
    fn reserved_path(&self, seq: u64, now: Timestamp) -> Option<Path> {
        let w = self.reserved_wait.as_ref()?;
        let gap_ms = w.slots.gap_ms(self.reserved_in_use(), now)?;
        let rank = w
            .ranked
            .rank(seq)
            .expect("a queued call is in its group's queue");
        Some(Path {
            needed: rank as u64 + 1,
            gap_ms,
        })
    }
}

/// An agent, its four groups (by [`CallType::index`]) and its live calls.
#[derive(Debug)]
struct Agent {
    id: AgentId,
    groups: [Group; 4],
    /// `n(a)`: its active calls over all types, for its total cap.
    active: u32,
    /// `C(a)`: the most active calls it may hold over all types; `None`, no cap.
    cap_total: Option<u32>,
    /// Admission seqs of its active calls: a page of them by rank.
    admitted: Ranked<()>,
    /// Arrival seqs of its queued calls: a page of them by rank.
    queued: Ranked<()>,
}

impl Agent {
    /// Whether group `t` may not take one more active call: it is at its
    /// cap, or the agent at its total cap.
    fn capped(&self, t: CallType) -> bool {
        let g = &self.groups[t.index()];
        g.cap.is_some_and(|c| g.active >= c) || self.cap_total.is_some_and(|c| self.active >= c)
    }

    /// The caps of its groups and its total.
    fn caps(&self) -> Caps {
        let cap = |t: CallType| self.groups[t.index()].cap;
        Caps {
            webcall: cap(CallType::Webcall),
            chat: cap(CallType::Chat),
            outbound: cap(CallType::Outbound),
            inbound: cap(CallType::Inbound),
            total: self.cap_total,
        }
    }

    /// Whether it is shown among the org's agents: it has a cap, a
    /// reservation, an active call or a queued call.
    fn listed(&self) -> bool {
        self.cap_total.is_some()
            || self
                .groups
                .iter()
                .any(|g| g.reserved > 0 || g.active > 0 || !g.queue.is_empty() || g.cap.is_some())
    }

    /// What its four groups add to the org's totals.
    fn shares(&self) -> [Share; 4] {
        let cap_zero = self.cap_total == Some(0);
        [0, 1, 2, 3].map(|i| self.groups[i].share(cap_zero))
    }
}

/// One org's counts and queue.
#[derive(Debug)]
pub(crate) struct Pool {
    /// `L`.
    limit: u32,
    /// `B`: slots the org may use above `L`.
    burst: u32,
    /// `R`: sum of all groups' `reserved`.
    reserved: u32,
    /// `N`: sum of all groups' `active`.
    active: u32,
    /// Sum of all groups' `shared_in_use()`.
    shared_in_use: u32,
    /// Queued calls blocked by a zero cap (sum of the groups' shares).
    queued_cap_zero: u32,
    /// Queued calls with no zero cap and no reservation for their type:
    /// blocked while `S = 0 < L` (sum of the groups' shares).
    queued_unreserved: u32,
    /// Every agent seen, by index; never removed (a removed agent has zeros).
    agents: Vec<Agent>,
    /// Agent id -> index in `agents`.
    agent_index: IdMap<AgentId, u32>,
    /// All queued calls, `seq -> (call, group)`; ranks are positions.
    queue: Ranked<(CallId, GroupId)>,
    /// All active calls, `admission seq -> call`, oldest admission first.
    admitted: Ranked<CallId>,
    /// Groups below their caps with a queued call, by `(oldest seq, group)`.
    open: BTreeSet<(u64, GroupId)>,
    /// Open groups with reserved room, by `(oldest seq, group)`.
    ready: BTreeSet<(u64, GroupId)>,
    /// How long shared slots are held, for expected waits.
    shared_use: SlotUse,
    /// The integral of `burst_in_use` over time: the org's burst time, for billing.
    burst_use: SlotUse,
}

impl Pool {
    /// A pool of `limit` slots with no agents. Refused above [`MAX_LIMIT`].
    pub(crate) fn new(limit: u32) -> Result<Pool> {
        check_limit("limit", limit)?;
        Ok(Pool {
            limit,
            burst: 0,
            reserved: 0,
            active: 0,
            shared_in_use: 0,
            queued_cap_zero: 0,
            queued_unreserved: 0,
            agents: Vec::new(),
            agent_index: IdMap::default(),
            queue: Ranked::default(),
            admitted: Ranked::default(),
            open: BTreeSet::new(),
            ready: BTreeSet::new(),
            shared_use: SlotUse::default(),
            burst_use: SlotUse::default(),
        })
    }

    /// `B`.
    pub(crate) fn burst(&self) -> u32 {
        self.burst
    }

    /// `burst_in_use = max(0, N - L)`.
    pub(crate) fn burst_in_use(&self) -> u32 {
        self.active.saturating_sub(self.limit)
    }

    /// The org's burst time up to `now`, in slot-milliseconds: the integral
    /// of `burst_in_use`, counted exactly at every change of `N` or `L`.
    pub(crate) fn burst_ms(&self, now: Timestamp) -> u64 {
        self.burst_use.busy_ms(self.burst_in_use(), now)
    }

    /// Queued calls that are blocked (see [`Pool::blocked_reason`]).
    pub(crate) fn blocked(&self) -> u32 {
        if self.limit + self.burst == 0 {
            self.queue.len() as u32
        } else if self.shared_capacity() == 0 && self.limit > 0 {
            self.queued_cap_zero + self.queued_unreserved
        } else {
            self.queued_cap_zero
        }
    }

    /// Why a queued call of group `g` (`None`: an agent never seen) is
    /// blocked, if it is: the rule would refuse it even with no active call
    /// in the org. The first that applies of `limit_zero` (`L + B = 0`),
    /// `cap_zero` (`c(a,t) = 0` or `C(a) = 0`), `no_shared_capacity`
    /// (`r(a,t) = 0`, `S = 0`, `L > 0`).
    pub(crate) fn blocked_reason(&self, g: Option<GroupId>) -> Option<BlockedReason> {
        let agent = g.map(|g| &self.agents[g.agent as usize]);
        let group = g.map(|g| self.group(g));
        if self.limit + self.burst == 0 {
            Some(BlockedReason::LimitZero)
        } else if agent.is_some_and(|a| a.cap_total == Some(0))
            || group.is_some_and(|g| g.cap == Some(0))
        {
            Some(BlockedReason::CapZero)
        } else if group.is_none_or(|g| g.reserved == 0)
            && self.shared_capacity() == 0
            && self.limit > 0
        {
            Some(BlockedReason::NoSharedCapacity)
        } else {
            None
        }
    }

    /// `L`.
    pub(crate) fn limit(&self) -> u32 {
        self.limit
    }

    /// `R`.
    pub(crate) fn reserved(&self) -> u32 {
        self.reserved
    }

    /// `N`.
    pub(crate) fn active(&self) -> u32 {
        self.active
    }

    /// Active calls counted against the shared pool.
    pub(crate) fn shared_in_use(&self) -> u32 {
        self.shared_in_use
    }

    /// `S = L - R`. Never negative: `R <= L` is kept by every change.
    pub(crate) fn shared_capacity(&self) -> u32 {
        self.limit - self.reserved
    }

    /// Queued calls.
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Sets the limit at `now`; returns the old one. Refused below the sum
    /// of reservations; nothing changes then.
    pub(crate) fn set_limit(&mut self, limit: u32, now: Timestamp) -> Result<u32> {
        check_limit("limit", limit)?;
        if limit < self.reserved {
            return Err(Error::LimitBelowReservations {
                reserved: self.reserved,
            });
        }
        self.burst_use.advance(self.burst_in_use(), now);
        Ok(std::mem::replace(&mut self.limit, limit))
    }

    /// Whether [`Pool::set_limit`] and [`Pool::set_burst`] would take
    /// these, without changing anything.
    pub(crate) fn check_terms(&self, limit: u32, burst: u32) -> Result<()> {
        check_limit("limit", limit)?;
        check_limit("burst", burst)?;
        if limit < self.reserved {
            return Err(Error::LimitBelowReservations {
                reserved: self.reserved,
            });
        }
        Ok(())
    }

    /// Sets the burst; returns the old one. Lowering it below what is in
    /// use ends no call: new calls wait until they fit.
    pub(crate) fn set_burst(&mut self, burst: u32) -> Result<u32> {
        check_limit("burst", burst)?;
        Ok(std::mem::replace(&mut self.burst, burst))
    }

    /// Sets an agent's four reservations at `now`; returns the old ones.
    /// Refused if the sum would exceed the limit; nothing changes then.
    pub(crate) fn set_reservations(
        &mut self,
        agent: &AgentId,
        new: Reservations,
        now: Timestamp,
    ) -> Result<Reservations> {
        let old = self.reservations_of(agent);
        let others = u64::from(self.reserved) - old.total();
        if others + new.total() > u64::from(self.limit) {
            return Err(Error::ReservationsExceedLimit {
                available: self.limit - others as u32,
            });
        }
        check_caps_cover(&self.caps_of(agent), &new)?;
        if old != new {
            let a = self.agent_or_insert(agent);
            for t in CallType::ALL {
                self.track_use(group(a, t), now);
            }
            self.update_agent(a, |agent| {
                for t in CallType::ALL {
                    let g = &mut agent.groups[t.index()];
                    g.reserved = new.get(t);
                    g.track_reserved_wait(now);
                }
            });
        }
        Ok(old)
    }

    /// Sets an agent's caps; returns the old ones. Refused (nothing changes)
    /// if a cap would be below the reservation it covers, or above [`MAX_LIMIT`].
    pub(crate) fn set_caps(&mut self, agent: &AgentId, new: Caps) -> Result<Caps> {
        for t in CallType::ALL {
            new.get(t).map_or(Ok(()), |c| check_limit(t.as_str(), c))?;
        }
        new.total.map_or(Ok(()), |c| check_limit("total", c))?;
        check_caps_cover(&new, &self.reservations_of(agent))?;
        let old = self.caps_of(agent);
        if old != new {
            let a = self.agent_or_insert(agent);
            self.update_agent(a, |agent| {
                for t in CallType::ALL {
                    agent.groups[t.index()].cap = new.get(t);
                }
                agent.cap_total = new.total;
            });
        }
        Ok(old)
    }

    fn caps_of(&self, agent: &AgentId) -> Caps {
        match self.agent_index.get(agent) {
            Some(&a) => self.agents[a as usize].caps(),
            None => Caps::default(),
        }
    }

    fn reservations_of(&self, agent: &AgentId) -> Reservations {
        match self.agent_index.get(agent) {
            Some(&a) => Reservations::from_fn(|t| self.group(group(a, t)).reserved),
            None => Reservations::default(),
        }
    }

    /// The group of `(agent, t)`, if the agent was ever seen.
    pub(crate) fn find_group(&self, agent: &AgentId, t: CallType) -> Option<GroupId> {
        self.agent_index.get(agent).map(|&a| group(a, t))
    }

    /// The group of `(agent, t)`, adding the agent on first sight.
    pub(crate) fn group_of(&mut self, agent: &AgentId, t: CallType) -> GroupId {
        group(self.agent_or_insert(agent), t)
    }

    fn agent_or_insert(&mut self, agent: &AgentId) -> u32 {
        if let Some(&a) = self.agent_index.get(agent) {
            return a;
        }
        let a = u32::try_from(self.agents.len()).expect("fewer than 2^32 agents per org");
        self.agents.push(Agent {
            id: agent.clone(),
            groups: Default::default(),
            active: 0,
            cap_total: None,
            admitted: Ranked::default(),
            queued: Ranked::default(),
        });
        self.agent_index.insert(agent.clone(), a);
        a
    }

    /// The agent of a group.
    pub(crate) fn agent_id(&self, g: GroupId) -> &AgentId {
        &self.agents[g.agent as usize].id
    }

    fn group(&self, g: GroupId) -> &Group {
        &self.agents[g.agent as usize].groups[g.call_type.index()]
    }

    fn group_mut(&mut self, g: GroupId) -> &mut Group {
        &mut self.agents[g.agent as usize].groups[g.call_type.index()]
    }

    /// The admission rule, version 2: may a call of group `g` (`None`: an
    /// agent never seen, so no reservation and no cap) become active now?
    ///
    /// `N < L + B`, below its caps, and room in its reservation, in the
    /// shared pool, or (the limit in use) in the burst.
    pub(crate) fn admissible(&self, g: Option<GroupId>) -> bool {
        let (capped, reserved_room) = match g {
            Some(g) => (
                self.agents[g.agent as usize].capped(g.call_type),
                self.group(g).has_reserved_room(),
            ),
            None => (false, false),
        };
        self.active < self.limit + self.burst && !capped && (reserved_room || self.shared_room())
    }

    /// Whether a call with no reserved room fits: `shared_in_use < S`, or
    /// `N >= L` and `shared_in_use < S + B`. (`N < L + B` is checked apart.)
    fn shared_room(&self) -> bool {
        let s = self.shared_capacity();
        self.shared_in_use < s || (self.active >= self.limit && self.shared_in_use < s + self.burst)
    }

    /// Counts one more active call in group `g` from `now`, call `id` admitted
    /// under `seq`, above every admission before; returns the slot it takes:
    /// `reserved` if the group had reserved room just before, else `shared`
    /// if the shared pool had room, else `burst`.
    pub(crate) fn occupy(&mut self, g: GroupId, seq: u64, id: &CallId, now: Timestamp) -> Slot {
        let slot = if self.group(g).has_reserved_room() {
            Slot::Reserved
        } else if self.shared_in_use < self.shared_capacity() {
            Slot::Shared
        } else {
            Slot::Burst
        };
        self.admitted.push(seq, id.clone());
        let agent = &mut self.agents[g.agent as usize];
        agent.admitted.push(seq, ());
        agent.active += 1;
        self.track_use(g, now);
        self.update_group(g, |group| group.active += 1);
        self.active += 1;
        slot
    }

    /// Counts one fewer active call in group `g` (the one admitted under
    /// `seq`) from `now`, and a free of the slot it leaves: shared if the
    /// group had calls above its reservation, else one of its reserved slots.
    pub(crate) fn vacate(&mut self, g: GroupId, seq: u64, now: Timestamp) {
        self.admitted
            .remove(seq)
            .expect("an active call is filed under its admission seq");
        let agent = &mut self.agents[g.agent as usize];
        agent.admitted.remove(seq);
        agent.active -= 1;
        self.track_use(g, now);
        let group = self.group_mut(g);
        match &mut group.reserved_wait {
            Some(w) if group.active <= group.reserved => w.slots.freed(),
            _ => self.shared_use.freed(),
        }
        self.update_group(g, |group| group.active -= 1);
        self.active -= 1;
    }

    /// Counts the use of the shared pool, of the burst and of `g`'s reserved
    /// slots up to `now`, before a change to `g`'s counts.
    fn track_use(&mut self, g: GroupId, now: Timestamp) {
        self.shared_use.advance(self.shared_in_use, now);
        self.burst_use.advance(self.burst_in_use(), now);
        let group = self.group_mut(g);
        let in_use = group.reserved_in_use();
        if let Some(w) = &mut group.reserved_wait {
            w.slots.advance(in_use, now);
        }
    }

    /// The expected wait of the queued call `seq` of group `g`, at `position`
    /// in the org's queue, as of `now`: O(log q). `None` while neither kind
    /// of slot it can take has enough history (see [`crate::wait`]).
    pub(crate) fn expected_wait_ms(
        &self,
        seq: u64,
        g: GroupId,
        position: u64,
        now: Timestamp,
    ) -> Option<u64> {
        // Every call ahead in the org takes a shared free first, and slots in
        // use above the shared capacity (after a change) must free before any;
        // with no shared capacity, no shared free ever admits it.
        let over = self.shared_in_use.saturating_sub(self.shared_capacity());
        let shared = self
            .shared_use
            .gap_ms(self.shared_in_use, now)
            .filter(|_| self.shared_capacity() > 0)
            .map(|gap_ms| Path {
                needed: position + u64::from(over),
                gap_ms,
            });
        // Only the calls ahead in its own group take its group's reserved frees.
        let reserved = self.group(g).reserved_path(seq, now);
        expected_wait_ms([shared, reserved])
    }

    /// Queues call `id` of group `g` under `seq`, above every seq queued before.
    pub(crate) fn enqueue(&mut self, seq: u64, id: CallId, g: GroupId) {
        self.queue.push(seq, (id, g));
        self.agents[g.agent as usize].queued.push(seq, ());
        self.update_group(g, |group| group.enqueue(seq));
    }

    /// Takes the queued call with `seq` out of the queue; returns its id.
    pub(crate) fn dequeue(&mut self, seq: u64) -> CallId {
        let (id, g) = self.queue.remove(seq).expect("a queued call is queued");
        self.agents[g.agent as usize].queued.remove(seq);
        self.update_group(g, |group| group.dequeue(seq));
        id
    }

    /// The seq of the queued call dispatch admits next: the oldest admissible one.
    pub(crate) fn next_admissible(&self) -> Option<u64> {
        if self.active >= self.limit + self.burst {
            None
        } else if self.shared_room() {
            // Every call below its caps is admissible: the oldest of those goes.
            self.open.first().map(|&(seq, _)| seq)
        } else {
            // Only calls with reserved room are: the oldest of those goes.
            self.ready.first().map(|&(seq, _)| seq)
        }
    }

    /// 1 + the number of queued calls that arrived before `seq`: O(log q).
    pub(crate) fn position(&self, seq: u64) -> u64 {
        let rank = self.queue.rank(seq).expect("a queued call is in the queue");
        rank as u64 + 1
    }

    /// Files the active call admitted under `old` again under `new`, above
    /// every admission before: for calls restored out of admission order.
    pub(crate) fn refile_admitted(&mut self, g: GroupId, old: u64, new: u64) {
        let id = self
            .admitted
            .remove(old)
            .expect("an active call is filed under its admission seq");
        let agent = &mut self.agents[g.agent as usize];
        agent.admitted.remove(old);
        agent.admitted.push(new, ());
        self.admitted.push(new, id);
    }

    /// How many calls `list` holds: the org's, or one agent's (none for an
    /// agent never seen).
    pub(crate) fn listed_len(&self, list: Listed, agent: Option<&AgentId>) -> usize {
        match (list, agent.map(|a| self.agent_index.get(a))) {
            (Listed::Active, None) => self.admitted.len(),
            (Listed::Queued, None) => self.queue.len(),
            (_, Some(None)) => 0,
            (Listed::Active, Some(Some(&a))) => self.agents[a as usize].admitted.len(),
            (Listed::Queued, Some(Some(&a))) => self.agents[a as usize].queued.len(),
        }
    }

    /// The ids of `list` (the org's, or one agent's) in its order, from rank
    /// `rank` on: O(log n) to the first, then O(1) each (see [`Ranked`]).
    pub(crate) fn listed_from<'a>(
        &'a self,
        list: Listed,
        agent: Option<&AgentId>,
        rank: usize,
    ) -> Box<dyn Iterator<Item = &'a CallId> + 'a> {
        let queued = |seq| {
            &self
                .queue
                .get(seq)
                .expect("an agent's queued call is queued")
                .0
        };
        let admitted = |seq| {
            self.admitted
                .get(seq)
                .expect("an agent's active call is filed")
        };
        match (list, agent.map(|a| self.agent_index.get(a))) {
            (Listed::Active, None) => Box::new(self.admitted.iter_from(rank).map(|(_, id)| id)),
            (Listed::Queued, None) => Box::new(self.queue.iter_from(rank).map(|(_, (id, _))| id)),
            (_, Some(None)) => Box::new(std::iter::empty()),
            (Listed::Active, Some(Some(&a))) => Box::new(
                self.agents[a as usize]
                    .admitted
                    .iter_from(rank)
                    .map(move |(seq, _)| admitted(seq)),
            ),
            (Listed::Queued, Some(Some(&a))) => Box::new(
                self.agents[a as usize]
                    .queued
                    .iter_from(rank)
                    .map(move |(seq, _)| queued(seq)),
            ),
        }
    }

    /// Changes one group and keeps every derived total and the open and
    /// ready sets in step. All changes to a group's `active` or queue go
    /// through here; changes to caps and reservations go through
    /// [`Pool::update_agent`].
    fn update_group(&mut self, g: GroupId, change: impl FnOnce(&mut Group)) {
        let agent = &mut self.agents[g.agent as usize];
        let cap_zero = agent.cap_total == Some(0);
        let group = &mut agent.groups[g.call_type.index()];
        let has_total_cap = agent.cap_total.is_some();
        let before = group.share(cap_zero);
        change(group);
        let after = group.share(cap_zero);
        self.add_share(before, after);
        if has_total_cap {
            // Its agent's total may have reached (or left) its cap: every
            // group of the agent may open or close.
            self.refile_agent(g.agent);
        } else {
            self.refile(g);
        }
    }

    /// Changes one agent's groups (caps, reservations) and keeps every
    /// derived total and the open and ready sets in step.
    fn update_agent(&mut self, a: u32, change: impl FnOnce(&mut Agent)) {
        let agent = &mut self.agents[a as usize];
        let before = agent.shares();
        change(agent);
        let after = agent.shares();
        for (b, a) in before.into_iter().zip(after) {
            self.add_share(b, a);
        }
        self.refile_agent(a);
    }

    /// Replaces one group's share of the totals, `before`, with `after`.
    fn add_share(&mut self, before: Share, after: Share) {
        self.reserved = self.reserved - before.reserved + after.reserved;
        self.shared_in_use = self.shared_in_use - before.shared_in_use + after.shared_in_use;
        self.queued_cap_zero =
            self.queued_cap_zero - before.queued_cap_zero + after.queued_cap_zero;
        self.queued_unreserved =
            self.queued_unreserved - before.queued_unreserved + after.queued_unreserved;
    }

    fn refile_agent(&mut self, a: u32) {
        for t in CallType::ALL {
            self.refile(group(a, t));
        }
    }

    /// Files group `g` in the open and ready sets as its counts now say:
    /// open if below its caps with a queued call, ready if also with reserved room.
    fn refile(&mut self, g: GroupId) {
        let agent = &mut self.agents[g.agent as usize];
        let head = if agent.capped(g.call_type) {
            None
        } else {
            agent.groups[g.call_type.index()].queue.first().copied()
        };
        let group = &mut agent.groups[g.call_type.index()];
        let ready = head.filter(|_| group.has_reserved_room());
        refile_in(&mut self.open, &mut group.open_at, head, g);
        refile_in(&mut self.ready, &mut group.ready_at, ready, g);
    }

    /// One agent's view; an agent never seen has zeros everywhere.
    pub(crate) fn agent_view(&self, agent: &AgentId) -> AgentView {
        match self.agent_index.get(agent) {
            Some(&a) => self.agent_view_of(&self.agents[a as usize]),
            None => AgentView {
                id: agent.clone(),
                caps: Caps::default(),
                reserved: PerType::default(),
                active: PerType::default(),
                queued: PerType::default(),
                reserved_total: 0,
                reserved_in_use: 0,
                shared_in_use: 0,
            },
        }
    }

    /// Every agent with a reservation, an active call or a queued call, by id.
    pub(crate) fn agent_views(&self) -> Vec<AgentView> {
        let mut views: Vec<AgentView> = self
            .agents
            .iter()
            .filter(|a| a.listed())
            .map(|a| self.agent_view_of(a))
            .collect();
        views.sort_by(|x, y| x.id.cmp(&y.id));
        views
    }

    /// The views of the `n` busiest listed agents (most active and queued
    /// calls, then most reserved slots, then the agent met first), by id,
    /// and the other listed agents summed. One pass over the agents, none
    /// when `n` is 0: each agent is compared with the least busy of the `n`
    /// kept so far by three numbers, and only the `n` kept get a view. (A
    /// tie broken by id instead reads each agent's id from elsewhere in
    /// memory: a scrape of 100,000 agents took 10 ms under the org's lock
    /// rather than 3.)
    pub(crate) fn busiest_agents(&self, n: usize) -> (Vec<AgentView>, AgentTotals) {
        if n == 0 {
            return (Vec::new(), AgentTotals::default());
        }
        // Smaller is busier: the heap's top is the least busy kept.
        let mut kept = BinaryHeap::with_capacity(n.min(self.agents.len()) + 1);
        let mut all = AgentTotals::default();
        for (i, a) in self.agents.iter().enumerate().filter(|(_, a)| a.listed()) {
            all.agents += 1;
            let (mut calls, mut reserved) = (0, 0);
            for t in CallType::ALL {
                let g = &a.groups[t.index()];
                let queued = g.queue.len() as u32;
                calls += g.active + queued;
                reserved += g.reserved;
                *all.active.get_mut(t) += g.active;
                *all.queued.get_mut(t) += queued;
                *all.reserved.get_mut(t) += g.reserved;
            }
            let busy = (Reverse(calls), Reverse(reserved), i);
            if kept.len() < n {
                kept.push(busy);
            } else if kept.peek().is_some_and(|top| busy < *top) {
                kept.pop();
                kept.push(busy);
            }
        }
        let mut views: Vec<AgentView> = kept
            .into_iter()
            .map(|(.., i)| self.agent_view_of(&self.agents[i]))
            .collect();
        views.sort_by(|x, y| x.id.cmp(&y.id));
        // The others: all of them but those named.
        let mut others = all;
        for v in &views {
            others.agents -= 1;
            for t in CallType::ALL {
                *others.active.get_mut(t) -= v.active.get(t);
                *others.queued.get_mut(t) -= v.queued.get(t);
                *others.reserved.get_mut(t) -= v.reserved.get(t);
            }
        }
        (views, others)
    }

    fn agent_view_of(&self, agent: &Agent) -> AgentView {
        let group = |t: CallType| &agent.groups[t.index()];
        let sum = |f: &dyn Fn(&Group) -> u32| agent.groups.iter().map(f).sum::<u32>();
        AgentView {
            id: agent.id.clone(),
            caps: agent.caps(),
            reserved: PerType::from_fn(|t| group(t).reserved),
            active: PerType::from_fn(|t| group(t).active),
            queued: PerType::from_fn(|t| group(t).queue.len() as u32),
            reserved_total: sum(&|g| g.reserved),
            reserved_in_use: sum(&|g| g.active.min(g.reserved)),
            shared_in_use: sum(&Group::shared_in_use),
        }
    }
}

/// The two lists of live calls, in the order a list of calls shows them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Listed {
    /// Active calls, oldest admission first.
    Active,
    /// Queued calls, in queue order.
    Queued,
}

impl Listed {
    /// The state of the calls it lists.
    pub(crate) fn state(self) -> CallState {
        match self {
            Listed::Active => CallState::Active,
            Listed::Queued => CallState::Queued,
        }
    }
}

fn group(agent: u32, call_type: CallType) -> GroupId {
    GroupId { agent, call_type }
}

/// Moves `g`'s entry in `set` from `*at` to `want`.
fn refile_in(
    set: &mut BTreeSet<(u64, GroupId)>,
    at: &mut Option<u64>,
    want: Option<u64>,
    g: GroupId,
) {
    if want != *at {
        if let Some(seq) = *at {
            set.remove(&(seq, g));
        }
        if let Some(seq) = want {
            set.insert((seq, g));
        }
        *at = want;
    }
}

/// Checks a count of slots (a limit, a burst, a cap) named `field`.
fn check_limit(field: &'static str, n: u32) -> Result<()> {
    if n > MAX_LIMIT {
        return Err(Error::invalid(
            field,
            format!("must be 0 to {MAX_LIMIT}, got {n}"),
        ));
    }
    Ok(())
}

/// Checks that every cap covers the reservation under it: `c(a,t) >= r(a,t)`
/// and `C(a) >= r(a)`. The refusal names the cap and its lowest allowed value.
fn check_caps_cover(caps: &Caps, r: &Reservations) -> Result<()> {
    for t in CallType::ALL {
        if caps.get(t).is_some_and(|c| c < r.get(t)) {
            return Err(Error::CapBelowReservation {
                call_type: Some(t),
                lowest: r.get(t),
            });
        }
    }
    let total = u32::try_from(r.total()).expect("reservations sum to at most the limit");
    if caps.total.is_some_and(|c| c < total) {
        return Err(Error::CapBelowReservation {
            call_type: None,
            lowest: total,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservation_made_while_calls_wait_ranks_them_for_the_reserved_path() {
        let t = Timestamp::from_millis;
        let agent = AgentId::new("r").unwrap();
        let mut pool = Pool::new(2).unwrap();
        let g = pool.group_of(&agent, CallType::Chat);
        let active = CallId::new("a").unwrap();
        pool.occupy(g, 10, &active, t(0));
        pool.occupy(g, 11, &active, t(0));
        for seq in [1, 2] {
            pool.enqueue(seq, CallId::new(&format!("q{seq}")).unwrap(), g);
        }
        // All 2 slots reserved for the group that waits: no shared path left.
        let chat = Reservations {
            chat: 2,
            ..Default::default()
        };
        pool.set_reservations(&agent, chat, t(0)).unwrap();
        pool.enqueue(3, CallId::new("q3").unwrap(), g);
        // Its reserved slots free one a second, each held 2 s.
        for s in 1..=crate::MIN_FREES as u64 {
            pool.vacate(g, 9 + s, t(s * 1000));
            pool.occupy(g, 11 + s, &active, t(s * 1000));
        }
        let now = t(crate::MIN_FREES as u64 * 1000);
        let waits: Vec<_> = (1..=3)
            .map(|seq| pool.expected_wait_ms(seq, g, seq, now))
            .collect();
        assert_eq!(waits, [Some(1000), Some(2000), Some(3000)]);
    }
}
