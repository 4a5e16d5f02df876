//! One org: its counts, its queue, and the admission rule of SEMANTICS.md.
//!
//! The org keeps counts, never slot assignments: `n(a,t)` and `r(a,t)` per
//! (agent, type) group, and the derived totals `N`, `R` and `shared_in_use`,
//! each updated by the delta of the one group that changed. The admission rule
//! reads only these, so every decision is O(1) in the number of agents.
//!
//! The queue is an order-statistic tree of sequence numbers (positions in
//! O(log q)) plus one FIFO per group. A group with reserved room and a queued
//! call is *ready*; the ready set is ordered by each group's oldest call. So
//! dispatch finds the oldest admissible call in O(log q): the oldest queued call
//! of the org when the shared pool has room, else the oldest head of a ready group.
//!
//! Calls' life (acquire, end, heartbeat, deadlines) is in `org/lifecycle.rs`,
//! read views in `org/views.rs`, rebuilding from a store in `org/restore.rs`.

mod lifecycle;
mod restore;
mod views;

use std::collections::{BTreeSet, VecDeque};

use hashbrown::HashMap;

use slab::Slab;
use wabi_tree::OSBTreeMap;

use crate::call::{Call, Phase};
use crate::error::{Error, Result};
use crate::event::{Event, EventKind};
use crate::fifo::Fifo;
use crate::id::{AgentId, OrgId};
use crate::index::CallIndex;
use crate::time::Timestamp;
use crate::timers::Timers;
use crate::types::{CallType, Reservations, Slot, MAX_LIMIT};
use crate::view::AgentView;

/// An (agent, type) pair, as `agent index * 4 + type index`.
pub(crate) type GroupId = u32;

fn group_id(agent: u32, t: CallType) -> GroupId {
    agent * 4 + t.index() as u32
}

fn group_type(g: GroupId) -> CallType {
    CallType::ALL[(g % 4) as usize]
}

fn group_agent(g: GroupId) -> usize {
    (g / 4) as usize
}

/// The calls of one agent and one type.
#[derive(Debug, Default)]
pub(crate) struct Group {
    /// `r(a,t)`: slots reserved for this group.
    reserved: u32,
    /// `n(a,t)`: active calls of this group.
    active: u32,
    /// Queued calls of this group, `(seq, call key)`, oldest first.
    queue: Fifo,
    /// The key under which this group sits in the org's ready set, if it does.
    ready_at: Option<u64>,
}

impl Group {
    /// Active calls counted against the shared pool: `max(0, n - r)`.
    fn shared_in_use(&self) -> u32 {
        self.active.saturating_sub(self.reserved)
    }

    fn has_reserved_room(&self) -> bool {
        self.active < self.reserved
    }
}

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
    /// `L`.
    limit: u32,
    /// `R`: sum of all groups' `reserved`.
    reserved: u32,
    /// `N`: sum of all groups' `active`.
    active: u32,
    /// Sum of all groups' `shared_in_use()`.
    shared_in_use: u32,
    /// Agent ids by agent index; an agent's groups are `4 * index .. 4 * index + 4`.
    agents: Vec<AgentId>,
    agent_index: HashMap<AgentId, u32>,
    groups: Vec<Group>,
    /// Every call the org knows: queued, active, and ended within retention.
    calls: Slab<Call>,
    call_index: CallIndex,
    /// All queued calls, `seq -> call key`; ranks are positions.
    queue: OSBTreeMap<u64, u32>,
    /// Groups with reserved room and a queued call, by `(oldest seq, group)`.
    ready: BTreeSet<(u64, GroupId)>,
    /// The next queue sequence number.
    next_seq: u64,
    /// The seq of the last event emitted.
    event_seq: u64,
    /// Deadlines of queued and active calls.
    timers: Timers,
    /// Ended calls in the order they end, with the instant they are forgotten.
    retained: VecDeque<(Timestamp, u32)>,
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
        check_limit(limit)?;
        let mut org = Org {
            id,
            config,
            limit,
            reserved: 0,
            active: 0,
            shared_in_use: 0,
            agents: Vec::new(),
            agent_index: HashMap::new(),
            groups: Vec::new(),
            calls: Slab::new(),
            call_index: CallIndex::default(),
            queue: OSBTreeMap::new(),
            ready: BTreeSet::new(),
            next_seq: 1,
            event_seq: 0,
            timers: Timers::default(),
            retained: VecDeque::new(),
        };
        org.emit(now, EventKind::OrgCreated { limit }, out);
        Ok(org)
    }

    /// The org's id.
    pub(crate) fn id(&self) -> &OrgId {
        &self.id
    }

    /// `S = L - R`. Never negative: `R <= L` is kept by every change.
    fn shared_capacity(&self) -> u32 {
        self.limit - self.reserved
    }

    /// The admission rule: may a call of group `g` become active now?
    fn admissible(&self, g: Option<&Group>) -> bool {
        let reserved_room = g.is_some_and(Group::has_reserved_room);
        self.active < self.limit && (reserved_room || self.shared_in_use < self.shared_capacity())
    }

    /// Sets the limit. Refused below the sum of reservations; nothing changes then.
    pub(crate) fn set_limit(
        &mut self,
        limit: u32,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<()> {
        check_limit(limit)?;
        if limit < self.reserved {
            return Err(Error::LimitBelowReservations {
                reserved: self.reserved,
            });
        }
        let old = self.limit;
        if old != limit {
            self.limit = limit;
            self.emit(now, EventKind::LimitChanged { old, new: limit }, out);
            self.dispatch(now, out);
        }
        Ok(())
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
        let old = self.reservations_of(agent);
        let others = u64::from(self.reserved) - old.total();
        if others + new.total() > u64::from(self.limit) {
            return Err(Error::ReservationsExceedLimit {
                available: self.limit - others as u32,
            });
        }
        if old != new {
            let a = self.agent_or_insert(agent);
            for t in CallType::ALL {
                self.update_group(group_id(a, t), |g| g.reserved = new.get(t));
            }
            self.emit(
                now,
                EventKind::ReservationsChanged {
                    agent: agent.clone(),
                    old,
                    new,
                },
                out,
            );
            self.dispatch(now, out);
        }
        Ok(self.agent_view(agent))
    }

    fn reservations_of(&self, agent: &AgentId) -> Reservations {
        match self.agent_index.get(agent) {
            Some(&a) => Reservations::from_fn(|t| self.groups[group_id(a, t) as usize].reserved),
            None => Reservations::default(),
        }
    }

    /// The agent's index, creating the agent on first sight.
    fn agent_or_insert(&mut self, agent: &AgentId) -> u32 {
        match self.agent_index.get(agent) {
            Some(&a) => a,
            None => self.insert_agent(agent),
        }
    }

    /// Adds an agent never seen before, with no reservations.
    fn insert_agent(&mut self, agent: &AgentId) -> u32 {
        let a = u32::try_from(self.agents.len()).expect("fewer than 2^30 agents per org");
        self.agents.push(agent.clone());
        self.agent_index.insert(agent.clone(), a);
        self.groups.extend((0..4).map(|_| Group::default()));
        a
    }

    /// Changes one group and keeps every derived total and the ready set in step.
    /// All changes to `reserved`, `active` or a group's queue go through here.
    fn update_group(&mut self, g: GroupId, change: impl FnOnce(&mut Group)) {
        let group = &mut self.groups[g as usize];
        let (reserved, shared) = (group.reserved, group.shared_in_use());
        change(group);
        self.reserved = self.reserved - reserved + group.reserved;
        self.shared_in_use = self.shared_in_use - shared + group.shared_in_use();

        let want = if group.has_reserved_room() {
            group.queue.first().map(|(seq, _)| seq)
        } else {
            None
        };
        if want != group.ready_at {
            if let Some(seq) = group.ready_at {
                self.ready.remove(&(seq, g));
            }
            if let Some(seq) = want {
                self.ready.insert((seq, g));
            }
            group.ready_at = want;
        }
    }

    /// Admits queued calls while any is admissible, oldest admissible first.
    /// Runs after every operation that can free capacity.
    fn dispatch(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        while self.active < self.limit {
            let next = if self.shared_in_use < self.shared_capacity() {
                // Every queued call is admissible: the oldest of the org goes.
                self.queue.first_key_value().map(|(_, &key)| key)
            } else {
                // Only calls with reserved room are: the oldest of those goes.
                self.ready.first().map(|&(seq, g)| {
                    let (first, key) = self.groups[g as usize].queue.first().expect("ready");
                    debug_assert_eq!(first, seq, "a ready group is filed by its oldest call");
                    key
                })
            };
            let Some(key) = next else { break };
            self.admit_queued(key, now, out);
        }
    }

    /// Takes a queued call out of the queue and makes it active.
    fn admit_queued(&mut self, key: u32, now: Timestamp, out: &mut Vec<Event>) {
        let call = &self.calls[key as usize];
        let (g, seq) = (
            call.group,
            call.waiting().expect("dispatch picks queued calls").seq,
        );
        self.queue.remove(&seq);
        self.update_group(g, |group| {
            group.queue.remove(seq);
        });
        let slot = self.occupy(g);
        self.admitted(key, slot, now, out);
    }

    /// Counts one more active call in group `g`; returns the slot it takes:
    /// `reserved` if the group had reserved room just before, else `shared`.
    fn occupy(&mut self, g: GroupId) -> Slot {
        let slot = if self.groups[g as usize].has_reserved_room() {
            Slot::Reserved
        } else {
            Slot::Shared
        };
        self.update_group(g, |group| group.active += 1);
        self.active += 1;
        slot
    }

    /// Makes a counted call active: its lease starts now; emits `call.admitted`.
    fn admitted(&mut self, key: u32, slot: Slot, now: Timestamp, out: &mut Vec<Event>) {
        self.update_call(key, |call| {
            call.phase = Phase::Active {
                slot,
                admitted_at: now,
                lease_expires_at: now.add_millis(call.lease_ttl_ms()),
            }
        });
        self.emit_admitted(key, slot, now, out);
    }

    /// Emits `call.admitted` for a call just made active.
    fn emit_admitted(&mut self, key: u32, slot: Slot, now: Timestamp, out: &mut Vec<Event>) {
        let call = &self.calls[key as usize];
        let g = call.group;
        let kind = EventKind::CallAdmitted {
            call: call.id.clone(),
            agent: self.agents[group_agent(g)].clone(),
            call_type: group_type(g),
            slot,
            waited_ms: call.queued_at.map_or(0, |q| now.millis_since(q)),
            lease_ttl_ms: call.lease_ttl_ms(),
        };
        self.emit(now, kind, out);
    }

    /// Files a new call under `key` (the call table's vacant key) and `hash`
    /// (of its id), with its deadlines.
    fn insert_call(&mut self, key: u32, hash: u64, call: Call) {
        let deadlines = call.deadlines(key);
        let at = self.calls.insert(call);
        debug_assert_eq!(at, key as usize, "filed under the vacant key");
        self.timers
            .replace(&mut self.calls, [None, None], deadlines);
        self.call_index.insert(&self.calls, hash, key);
    }

    /// Changes one call and keeps the org's deadlines in step with it. All
    /// changes to a known call's phase or deadlines go through here.
    fn update_call<R>(&mut self, key: u32, change: impl FnOnce(&mut Call) -> R) -> R {
        let call = &mut self.calls[key as usize];
        let old = call.deadlines(key);
        let result = change(call);
        let new = call.deadlines(key);
        self.timers.replace(&mut self.calls, old, new);
        result
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

fn check_limit(limit: u32) -> Result<()> {
    if limit > MAX_LIMIT {
        return Err(Error::invalid(
            "limit",
            format!("must be 0 to {MAX_LIMIT}, got {limit}"),
        ));
    }
    Ok(())
}
