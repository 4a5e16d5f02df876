//! The engine: many orgs, one clock passed in, one outbox of events.
//!
//! Every command takes `now` and returns its answer; the state changes it made
//! are queued as [`Event`]s for the driver to persist and publish
//! ([`Engine::drain_events`]). Deadlines (leases, queue holds, `max_wait`,
//! retention) are the engine's to track and the driver's to honour: the driver
//! sleeps until [`Engine::poll_timeout`] and then calls [`Engine::handle_timeout`].

use std::collections::BTreeSet;
use std::time::Duration;

pub use crate::command::{AcquireRequest, Acquired, CallPage, Config, ListFilter, WaitToken};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::id::{AgentId, IdMap, OrgId};
use crate::org::{Org, OrgConfig};
use crate::restore::RestoredCall;
use crate::time::Timestamp;
use crate::types::{Caps, Reservations};
use crate::view::{AgentTotals, AgentView, CallView, OrgView, PlanLink};

#[derive(Debug)]
struct Entry {
    org: Org,
    /// The org's key in `Engine::deadlines`, if it has a deadline.
    scheduled: Option<Timestamp>,
}

/// The admission engine for many orgs.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    orgs: IdMap<OrgId, Entry>,
    /// Each org's next deadline, so the engine's is the first one: O(log orgs).
    deadlines: BTreeSet<(Timestamp, OrgId)>,
    /// Events not yet drained by the driver.
    events: Vec<Event>,
    /// The latest `now` seen. Time never runs backwards inside the engine,
    /// even if the caller's clock does.
    clock: Timestamp,
}

impl Engine {
    /// An engine with no orgs.
    pub fn new(config: Config) -> Self {
        Engine {
            config,
            orgs: IdMap::default(),
            deadlines: BTreeSet::new(),
            events: Vec::new(),
            clock: Timestamp::default(),
        }
    }

    /// The engine's settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The engine's clock: the latest `now` it was given.
    pub fn now(&self) -> Timestamp {
        self.clock
    }

    fn tick(&mut self, now: Timestamp) -> Timestamp {
        self.clock = self.clock.max(now);
        self.clock
    }

    /// Creates an org with `limit` slots, no reservations and no calls.
    pub fn create_org(&mut self, id: OrgId, limit: u32, now: Timestamp) -> Result<OrgView> {
        let now = self.tick(now);
        if self.orgs.contains_key(&id) {
            return Err(Error::OrgExists);
        }
        let org = Org::new(id.clone(), limit, self.org_config(), now, &mut self.events)?;
        let view = org.view(now);
        self.orgs.insert(
            id,
            Entry {
                org,
                scheduled: None,
            },
        );
        Ok(view)
    }

    /// Sets an org's limit. Refused below the sum of its reservations.
    pub fn set_limit(&mut self, org: &str, limit: u32, now: Timestamp) -> Result<OrgView> {
        self.with_org(org, now, |o, now, out| {
            o.set_limit(limit, now, out)?;
            Ok(o.view(now))
        })
    }

    /// Sets an org's plan link, limit and burst at once (a plan change or a
    /// move to another plan): refused whole, changing nothing, if the limit
    /// is below the org's reservations. Lowering either ends no call.
    pub fn set_terms(
        &mut self,
        org: &str,
        link: PlanLink,
        limit: u32,
        burst: u32,
        now: Timestamp,
    ) -> Result<OrgView> {
        self.with_org(org, now, |o, now, out| {
            o.set_terms(link, limit, burst, now, out)?;
            Ok(o.view(now))
        })
    }

    /// Restores an org's plan link (no event).
    pub fn restore_plan(&mut self, org: &str, link: PlanLink) -> Result<()> {
        self.get_mut(org)?.restore_plan(link);
        Ok(())
    }

    /// Sets an org's burst `B`: slots it may use above its limit once the
    /// limit is in use. Lowering it ends no call.
    pub fn set_burst(&mut self, org: &str, burst: u32, now: Timestamp) -> Result<OrgView> {
        self.with_org(org, now, |o, now, out| {
            o.set_burst(burst, now, out)?;
            Ok(o.view(now))
        })
    }

    /// Sets an agent's caps (all five: a `None` removes one). Refused if a
    /// cap would be below the reservation it covers. Lowering a cap ends no call.
    pub fn set_caps(
        &mut self,
        org: &str,
        agent: &AgentId,
        caps: Caps,
        now: Timestamp,
    ) -> Result<AgentView> {
        self.with_org(org, now, |o, now, out| o.set_caps(agent, caps, now, out))
    }

    /// Sets an agent's four reservations. Refused if the org's sum would exceed its limit.
    pub fn set_reservations(
        &mut self,
        org: &str,
        agent: &AgentId,
        r: Reservations,
        now: Timestamp,
    ) -> Result<AgentView> {
        self.with_org(org, now, |o, now, out| {
            o.set_reservations(agent, r, now, out)
        })
    }

    /// Sets an agent's four reservations to 0 and removes its caps; its
    /// slots return to the shared pool.
    pub fn remove_agent(
        &mut self,
        org: &str,
        agent: &AgentId,
        now: Timestamp,
    ) -> Result<AgentView> {
        self.with_org(org, now, |o, now, out| {
            o.set_caps(agent, Caps::default(), now, out)?;
            o.set_reservations(agent, Reservations::default(), now, out)
        })
    }

    /// A call arrives: admitted, queued, or (known id) its current state.
    pub fn acquire(&mut self, org: &str, req: AcquireRequest, now: Timestamp) -> Result<Acquired> {
        self.with_org(org, now, |o, now, out| o.acquire(req, now, out))
    }

    /// The caller ends a call: `released` if active, `cancelled` if queued;
    /// an ended call is returned unchanged.
    pub fn release(&mut self, org: &str, call: &str, now: Timestamp) -> Result<CallView> {
        self.with_org(org, now, |o, now, out| o.end_by_caller(call, now, out))
    }

    /// Renews an active call's lease or a queued call's hold, optionally with a new `lease_ttl`
    /// (a new one emits `call.lease_changed`; a heartbeat that changes no length emits nothing).
    /// An ended call answers [`Error::CallEnded`].
    pub fn heartbeat(
        &mut self,
        org: &str,
        call: &str,
        lease_ttl: Option<Duration>,
        now: Timestamp,
    ) -> Result<CallView> {
        self.with_org(org, now, |o, now, out| {
            o.heartbeat(call, lease_ttl, now, out)
        })
    }

    /// A wait (long-poll) opens on a call; while one is open, a queued call is held.
    /// Every successful `open_wait` must be paired with one [`Engine::close_wait`]
    /// given the [`WaitToken`] it returned.
    pub fn open_wait(
        &mut self,
        org: &str,
        call: &str,
        now: Timestamp,
    ) -> Result<(CallView, WaitToken)> {
        self.with_org(org, now, |o, now, _| o.open_wait(call, now))
    }

    /// A wait closes; when none is left on a queued call, its hold runs one
    /// `lease_ttl` from now. A token of an earlier call with the same id (one
    /// that ended and was forgotten) changes nothing.
    pub fn close_wait(
        &mut self,
        org: &str,
        call: &str,
        token: WaitToken,
        now: Timestamp,
    ) -> Result<CallView> {
        self.with_org(org, now, |o, now, _| o.close_wait(call, token, now))
    }

    /// Restores an org from a store, with no events: its limit and the seq of
    /// its last event. Follow with its burst, reservations, caps and calls,
    /// then [`Engine::resume`].
    pub fn restore_org(&mut self, id: OrgId, limit: u32, last_event_seq: u64) -> Result<()> {
        if self.orgs.contains_key(&id) {
            return Err(Error::OrgExists);
        }
        let config = self.org_config();
        let mut org = Org::new(id.clone(), limit, config, self.clock, &mut Vec::new())?;
        org.restore_event_seq(last_event_seq);
        self.orgs.insert(
            id,
            Entry {
                org,
                scheduled: None,
            },
        );
        Ok(())
    }

    /// Restores an agent's reservations (no event).
    pub fn restore_reservations(
        &mut self,
        org: &str,
        agent: &AgentId,
        r: Reservations,
    ) -> Result<()> {
        let now = self.clock;
        self.get_mut(org)?.restore_reservations(agent, r, now)
    }

    /// Restores an org's burst (no event).
    pub fn restore_burst(&mut self, org: &str, burst: u32) -> Result<()> {
        self.get_mut(org)?.restore_burst(burst)
    }

    /// Restores an agent's caps (no event); after its reservations.
    pub fn restore_caps(&mut self, org: &str, agent: &AgentId, caps: Caps) -> Result<()> {
        self.get_mut(org)?.restore_caps(agent, caps)
    }

    /// Restores one call (no event). Queued calls in queue order, ended calls in the order they ended.
    pub fn restore_call(&mut self, org: &str, call: RestoredCall) -> Result<()> {
        let now = self.clock;
        self.get_mut(org)?.restore_call(call, now)
    }

    /// Starts the restored engine at `now`: leases and queue holds get one
    /// `lease_ttl` of grace from now; then every deadline already past is handled.
    pub fn resume(&mut self, now: Timestamp) {
        let now = self.tick(now);
        for id in self.org_ids() {
            self.with_org(id.as_str(), now, |o, now, out| {
                o.resume(now, out);
                Ok(())
            })
            .expect("the org was just listed");
        }
        self.handle_timeout(now);
    }

    /// The next instant at which [`Engine::handle_timeout`] has work, if any.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Ends every call whose deadline is at or before `now` and dispatches the
    /// freed slots; forgets ended calls past retention.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let now = self.tick(now);
        while let Some((at, org)) = self.deadlines.first().cloned() {
            if at > now {
                break;
            }
            self.with_org(org.as_str(), now, |o, now, out| {
                o.handle_timeout(now, out);
                Ok(())
            })
            .expect("a scheduled org exists");
        }
    }

    /// Takes the events emitted since the last call, in order.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    /// An org's snapshot, its burst time counted to the engine's clock.
    pub fn org(&self, org: &str) -> Result<OrgView> {
        Ok(self.get(org)?.view(self.clock))
    }

    /// An org's snapshot for metrics: `agents` holds only its `busiest`
    /// busiest agents (most active and queued calls, then most reserved
    /// slots, then the agent the org met first), and the others come summed. Cheap under a
    /// lock: O(1) when `busiest` is 0, else one pass over the org's agents
    /// building `busiest` views.
    pub fn org_summary(&self, org: &str, busiest: usize) -> Result<(OrgView, AgentTotals)> {
        Ok(self.get(org)?.summary(self.clock, busiest))
    }

    /// Ids of all orgs, sorted.
    pub fn org_ids(&self) -> Vec<OrgId> {
        let mut ids: Vec<OrgId> = self.orgs.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// One agent of an org (zeros if never seen).
    pub fn agent(&self, org: &str, agent: &AgentId) -> Result<AgentView> {
        Ok(self.get(org)?.agent_view(agent))
    }

    /// One call of an org, as of `now` (a queued call's expected wait
    /// counts to then; never earlier than the engine's clock).
    pub fn call(&self, org: &str, call: &str, now: Timestamp) -> Result<CallView> {
        self.get(org)?.call_view(call, self.clock.max(now))
    }

    /// Whether the engine holds this call (queued, active, or ended within
    /// its retention); `false` for an unknown org.
    pub fn has_call(&self, org: &str, call: &str) -> bool {
        self.get(org).is_ok_and(|o| o.has_call(call))
    }

    /// An org's queued calls, in queue order, as of `now` (as [`Engine::call`]).
    pub fn queued_calls(
        &self,
        org: &str,
        now: Timestamp,
    ) -> Result<impl Iterator<Item = CallView> + '_> {
        Ok(self.get(org)?.queued_calls(self.clock.max(now)))
    }

    /// An org's active calls, oldest admission first (ties in admission order).
    pub fn active_calls(&self, org: &str) -> Result<impl Iterator<Item = CallView> + '_> {
        Ok(self.get(org)?.active_calls())
    }

    /// A page of an org's live calls as of `now` (as [`Engine::call`]): at
    /// most `limit` of those `filter` keeps, from the `offset`th on, active
    /// ones (oldest admission first) before queued ones (in queue order).
    /// Found by rank: O(log n) to the page and O(log n) per call on it,
    /// however many calls the org has.
    pub fn calls_page(
        &self,
        org: &str,
        filter: &ListFilter,
        offset: usize,
        limit: usize,
        now: Timestamp,
    ) -> Result<CallPage> {
        let now = self.clock.max(now);
        Ok(self.get(org)?.calls_page(filter, offset, limit, now))
    }

    fn org_config(&self) -> OrgConfig {
        OrgConfig {
            queue_cap: self.config.queue_cap,
            retention_ms: u64::try_from(self.config.ended_retention.as_millis())
                .unwrap_or(u64::MAX),
        }
    }

    fn get_mut(&mut self, org: &str) -> Result<&mut Org> {
        self.orgs
            .get_mut(org)
            .map(|e| &mut e.org)
            .ok_or(Error::OrgNotFound)
    }

    fn get(&self, org: &str) -> Result<&Org> {
        self.orgs.get(org).map(|e| &e.org).ok_or(Error::OrgNotFound)
    }

    /// Runs one command on one org, then re-files the org's next deadline.
    fn with_org<R>(
        &mut self,
        org: &str,
        now: Timestamp,
        command: impl FnOnce(&mut Org, Timestamp, &mut Vec<Event>) -> Result<R>,
    ) -> Result<R> {
        let now = self.tick(now);
        let entry = self.orgs.get_mut(org).ok_or(Error::OrgNotFound)?;
        // Deadlines already past come first: a command arriving late (before the
        // driver woke) sees the state those deadlines made, not a stale one.
        if entry.scheduled.is_some_and(|at| at <= now) {
            entry.org.handle_timeout(now, &mut self.events);
        }
        let result = command(&mut entry.org, now, &mut self.events);
        let next = entry.org.poll_timeout();
        if next != entry.scheduled {
            if let Some(at) = entry.scheduled {
                self.deadlines.remove(&(at, entry.org.id().clone()));
            }
            if let Some(at) = next {
                self.deadlines.insert((at, entry.org.id().clone()));
            }
            entry.scheduled = next;
        }
        result
    }
}
