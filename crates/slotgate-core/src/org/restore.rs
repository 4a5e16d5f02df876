//! Rebuilding an org from what a store kept: no events, no dispatch until resumed.
//!
//! A store persists the org's configuration and its calls (from the events);
//! after a restart the driver feeds them back here, then resumes the org, which
//! grants every lease and queue hold one `lease_ttl` of grace from that moment
//! (SEMANTICS.md, "Leases and liveness").

use super::{group_id, Org};
use crate::call::{Call, Phase, Waiting};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::id::AgentId;
use crate::restore::{RestoredCall, RestoredState};
use crate::time::Timestamp;
use crate::types::{CallType, Reservations};

impl Org {
    /// Sets where the org's event numbering resumes.
    pub(crate) fn restore_event_seq(&mut self, last_seq: u64) {
        self.event_seq = self.event_seq.max(last_seq);
    }

    /// Restores an agent's reservations, refused (unchanged) if they would exceed the limit.
    pub(crate) fn restore_reservations(&mut self, agent: &AgentId, r: Reservations) -> Result<()> {
        let others = u64::from(self.reserved) - self.reservations_of(agent).total();
        if others + r.total() > u64::from(self.limit) {
            return Err(Error::ReservationsExceedLimit {
                available: self.limit - others as u32,
            });
        }
        let a = self.agent_or_insert(agent);
        for t in CallType::ALL {
            self.update_group(group_id(a, t), |g| g.reserved = r.get(t));
        }
        Ok(())
    }

    /// Restores one call. Queued calls must come in queue order, ended calls in
    /// the order they ended. Deadlines start when the org is resumed.
    pub(crate) fn restore_call(&mut self, c: RestoredCall) -> Result<()> {
        let hash = self.call_index.hash(c.id.as_str());
        if self
            .call_index
            .find(&self.calls, hash, c.id.as_str())
            .is_some()
        {
            return Err(Error::CallIdConflict);
        }
        let lease_ttl_ms = u32::try_from(c.lease_ttl.as_millis())
            .map_err(|_| Error::invalid("lease_ttl_s", "too long"))?;
        let g = group_id(self.agent_or_insert(&c.agent), c.call_type);
        let key = self.calls.vacant_key();
        let key32 = u32::try_from(key).expect("fewer than 2^32 calls per org");
        let phase = match c.state {
            RestoredState::Queued {
                max_wait_expires_at,
            } => {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.queue.insert(seq, key32);
                Phase::Queued(Waiting {
                    seq,
                    hold_until: Timestamp::NEVER,
                    waits: 0,
                    max_wait_at: max_wait_expires_at.unwrap_or(Timestamp::NEVER),
                })
            }
            RestoredState::Active { slot, admitted_at } => {
                self.update_group(g, |group| group.active += 1);
                self.active += 1;
                Phase::Active {
                    slot,
                    admitted_at,
                    lease_expires_at: Timestamp::NEVER,
                }
            }
            RestoredState::Ended {
                slot,
                admitted_at,
                ended_at,
                reason,
            } => {
                if self.config.retention_ms > 0 {
                    self.retained
                        .push_back((ended_at.add_millis(self.config.retention_ms), key32));
                }
                Phase::Ended {
                    slot,
                    admitted_at,
                    ended_at,
                    reason,
                }
            }
        };
        if let Phase::Queued(w) = &phase {
            let seq = w.seq;
            self.update_group(g, |group| {
                group.queue.push(seq, key32);
            });
        }
        let call = Call {
            id: c.id,
            group: g,
            lease_ttl_ms,
            queued_at: c.queued_at,
            phase,
            links: Default::default(),
        };
        // Only a `max_wait` runs already; leases and holds start at resume.
        self.insert_call(key32, hash, call);
        Ok(())
    }

    /// Starts the restored org's clocks at `now`: every active lease and every
    /// queue hold runs one `lease_ttl` from now; `max_wait`s keep their instant.
    /// Then dispatches, in case the restored state left room.
    pub(crate) fn resume(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        let keys: Vec<u32> = self.calls.iter().map(|(key, _)| key as u32).collect();
        for key in keys {
            self.update_call(key, |call| {
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
}
