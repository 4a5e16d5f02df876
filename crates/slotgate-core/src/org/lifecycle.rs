//! A call's life in its org: arrival, holds and heartbeats, deadlines, and its one end.

use std::time::Duration;

use super::{group_agent, group_id, group_type, Org};
use crate::call::{Call, Phase, Waiting, MAX_LEASE_TTL, MAX_MAX_WAIT, MIN_LEASE_TTL};
use crate::command::{AcquireRequest, Acquired, WaitToken};
use crate::error::{Error, Result};
use crate::event::{Event, EventKind};
use crate::time::Timestamp;
use crate::timers::TimerKind;
use crate::types::EndReason;
use crate::view::CallView;

impl Org {
    /// A call arrives: it is admitted if the rule allows, else queued. A known
    /// id is an idempotent retry (its current state) or a conflict.
    pub(crate) fn acquire(
        &mut self,
        req: AcquireRequest,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<Acquired> {
        let hash = self.call_index.hash(req.id.as_str());
        if let Some(key) = self.call_index.find(&self.calls, hash, req.id.as_str()) {
            let call = &self.calls[key as usize];
            let g = call.group;
            if self.agents[group_agent(g)] != req.agent || group_type(g) != req.call_type {
                return Err(Error::CallIdConflict);
            }
            // A retry is a sign of life: it holds a queued call like a heartbeat.
            self.renew(key, None, now);
            return Ok(Acquired::Existing(self.call_view_of(key)));
        }
        let lease_ttl_ms = check_lease_ttl(req.lease_ttl)?;
        let max_wait_at = match req.max_wait {
            Some(w) => now.add_millis(check_max_wait(w)?),
            None => Timestamp::NEVER,
        };

        let agent = self.agent_index.get(&req.agent).copied();
        let admit =
            self.admissible(agent.map(|a| &self.groups[group_id(a, req.call_type) as usize]));
        if !admit && self.queue.len() >= self.config.queue_cap as usize {
            return Err(Error::QueueFull {
                cap: self.config.queue_cap,
            });
        }

        let agent = agent.unwrap_or_else(|| self.insert_agent(&req.agent));
        let g = group_id(agent, req.call_type);
        let key = self.calls.vacant_key();
        let key32 = u32::try_from(key).expect("fewer than 2^32 calls per org");
        let phase = if admit {
            let slot = self.occupy(g);
            Phase::Active {
                slot,
                admitted_at: now,
                lease_expires_at: now.add_millis(u64::from(lease_ttl_ms)),
            }
        } else {
            let seq = self.next_seq;
            self.next_seq += 1;
            Phase::Queued(Waiting {
                seq,
                hold_until: now.add_millis(u64::from(lease_ttl_ms)),
                waits: 0,
                max_wait_at,
            })
        };
        let call = Call {
            id: req.id,
            group: g,
            lease_ttl_ms,
            queued_at: (!admit).then_some(now),
            phase,
            links: Default::default(),
        };
        self.insert_call(key32, hash, call);

        if let Phase::Active { slot, .. } = self.calls[key].phase {
            self.emit_admitted(key32, slot, now, out);
            return Ok(Acquired::Admitted(self.call_view_of(key32)));
        }
        let seq = self.calls[key].waiting().expect("just queued").seq;
        self.queue.insert(seq, key32);
        self.update_group(g, |group| {
            group.queue.push(seq, key32);
        });
        let position = self.queue.len() as u64;
        let call = &self.calls[key];
        let kind = EventKind::CallQueued {
            call: call.id.clone(),
            agent: self.agents[group_agent(g)].clone(),
            call_type: group_type(g),
            position,
            lease_ttl_ms: call.lease_ttl_ms(),
            max_wait_expires_at: max_wait_at.finite(),
        };
        self.emit(now, kind, out);
        Ok(Acquired::Queued(self.call_view_of(key32)))
    }

    /// The caller ends its call: `released` if active, `cancelled` if queued.
    /// An ended call is returned as it ended.
    pub(crate) fn end_by_caller(
        &mut self,
        id: &str,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<CallView> {
        let key = self.key_of(id)?;
        let reason = match self.calls[key as usize].phase {
            Phase::Queued(_) => EndReason::Cancelled,
            Phase::Active { .. } => EndReason::Released,
            Phase::Ended { .. } => return Ok(self.call_view_of(key)),
        };
        self.end(key, reason, now, out);
        let view = self.call_view_of(key);
        self.dispatch(now, out);
        self.forget_if_unretained(key);
        Ok(view)
    }

    /// Renews an active call's lease, or a queued call's hold; `lease_ttl` replaces the call's.
    pub(crate) fn heartbeat(
        &mut self,
        id: &str,
        lease_ttl: Option<Duration>,
        now: Timestamp,
    ) -> Result<CallView> {
        let key = self.key_of(id)?;
        let ttl = lease_ttl.map(check_lease_ttl).transpose()?;
        if matches!(self.calls[key as usize].phase, Phase::Ended { .. }) {
            return Err(Error::CallEnded {
                call: Box::new(self.call_view_of(key)),
            });
        }
        self.renew(key, ttl, now);
        Ok(self.call_view_of(key))
    }

    /// A wait (long-poll) opens on a call: while any is open, a queued call is
    /// held. The token names this call by its place in the queue's arrival
    /// order (0 when it is not queued: closing that wait changes nothing).
    pub(crate) fn open_wait(&mut self, id: &str) -> Result<(CallView, WaitToken)> {
        let key = self.key_of(id)?;
        let seq = self.update_call(key, |call| match &mut call.phase {
            Phase::Queued(w) => {
                w.waits += 1;
                w.hold_until = Timestamp::NEVER;
                w.seq
            }
            _ => 0,
        });
        Ok((self.call_view_of(key), WaitToken(seq)))
    }

    /// A wait closes. When the last one closes on a still queued call, its hold
    /// runs for one `lease_ttl` from `now`. A token of another call changes nothing.
    pub(crate) fn close_wait(
        &mut self,
        id: &str,
        token: WaitToken,
        now: Timestamp,
    ) -> Result<CallView> {
        let key = self.key_of(id)?;
        self.update_call(key, |call| {
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
        Ok(self.call_view_of(key))
    }

    /// Pushes the deadlines out: an active call's lease, or an unwaited queued call's hold.
    fn renew(&mut self, key: u32, ttl: Option<u32>, now: Timestamp) {
        self.update_call(key, |call| {
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

    /// Ends a live call once: frees its slot or its queue place, records the
    /// reason, emits `call.ended`. The caller dispatches afterwards.
    fn end(&mut self, key: u32, reason: EndReason, now: Timestamp, out: &mut Vec<Event>) {
        let call = &self.calls[key as usize];
        let g = call.group;
        let (slot, admitted_at) = match call.phase {
            Phase::Queued(Waiting { seq, .. }) => {
                self.queue.remove(&seq);
                self.update_group(g, |group| {
                    group.queue.remove(seq);
                });
                (None, None)
            }
            Phase::Active {
                slot, admitted_at, ..
            } => {
                self.update_group(g, |group| group.active -= 1);
                self.active -= 1;
                (Some(slot), Some(admitted_at))
            }
            Phase::Ended { .. } => unreachable!("a call ends once: callers check it is live"),
        };
        self.update_call(key, |call| {
            call.phase = Phase::Ended {
                slot,
                admitted_at,
                ended_at: now,
                reason,
            }
        });
        let call = &self.calls[key as usize];
        let kind = EventKind::CallEnded {
            call: call.id.clone(),
            agent: self.agents[group_agent(g)].clone(),
            call_type: group_type(g),
            reason,
        };
        self.emit(now, kind, out);
        if self.config.retention_ms > 0 {
            self.retained
                .push_back((now.add_millis(self.config.retention_ms), key));
        }
    }

    /// With no retention window, an ended call is forgotten at once.
    fn forget_if_unretained(&mut self, key: u32) {
        if self.config.retention_ms == 0 {
            self.forget(key);
        }
    }

    fn forget(&mut self, key: u32) {
        let call = self.calls.remove(key as usize);
        self.call_index
            .remove(self.call_index.hash(call.id.as_str()), key);
    }

    /// The next instant the org needs [`Org::handle_timeout`], if any.
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        let timer = self.timers.first().map(|t| t.at);
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
        while let Some(at) = self.timers.first().map(|t| t.at).filter(|&at| at <= now) {
            // Ending a call takes all its deadlines out, this one included.
            while let Some(t) = self.timers.first().filter(|t| t.at == at) {
                let reason = match t.kind {
                    TimerKind::MaxWait => EndReason::TimedOut,
                    TimerKind::Hold => EndReason::Abandoned,
                    TimerKind::Lease => EndReason::Expired,
                };
                self.end(t.call, reason, at, out);
                self.forget_if_unretained(t.call);
            }
            self.dispatch(at, out);
        }
        while let Some(&(at, key)) = self.retained.front() {
            if at > now {
                break;
            }
            self.retained.pop_front();
            self.forget(key);
        }
    }

    pub(crate) fn key_of(&self, id: &str) -> Result<u32> {
        let hash = self.call_index.hash(id);
        self.call_index
            .find(&self.calls, hash, id)
            .ok_or(Error::CallNotFound)
    }
}

fn check_lease_ttl(ttl: Duration) -> Result<u32> {
    if !(MIN_LEASE_TTL..=MAX_LEASE_TTL).contains(&ttl) {
        return Err(Error::invalid(
            "lease_ttl_s",
            format!(
                "must be {} to {} seconds, got {:?}",
                MIN_LEASE_TTL.as_secs(),
                MAX_LEASE_TTL.as_secs(),
                ttl
            ),
        ));
    }
    Ok(ttl.as_millis() as u32)
}

fn check_max_wait(w: Duration) -> Result<u64> {
    if w.is_zero() || w > MAX_MAX_WAIT {
        return Err(Error::invalid(
            "max_wait_s",
            format!(
                "must be more than 0 and at most {} seconds, got {:?}",
                MAX_MAX_WAIT.as_secs(),
                w
            ),
        ));
    }
    Ok(w.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AgentId, CallId, OrgId};
    use crate::org::OrgConfig;
    use crate::types::CallType;

    /// The deadlines every live call has now, counted from the calls themselves.
    fn live_deadlines(org: &Org) -> usize {
        org.calls
            .iter()
            .map(|(k, c)| c.deadlines(k as u32).iter().flatten().count())
            .sum()
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
                org.heartbeat(&format!("c{n}"), None, t(2 + round)).unwrap();
            }
        }
        assert_eq!(org.timers.len(), 10, "a thousand renewals add no entries");
        org.open_wait("c5").unwrap();
        assert_eq!(org.timers.len(), 9, "an open wait holds: no hold deadline");
        org.end_by_caller("c0", t(2_000), &mut out).unwrap();
        // c0 gone, c2 admitted: 1 + 1 leases, c3 and c4 with two each, c5 with its max_wait.
        assert_eq!((org.timers.len(), live_deadlines(&org)), (7, 7));
        assert_eq!(org.poll_timeout(), org.timers.first().map(|t| t.at));
    }
}
