//! A call's record inside its org: its phase, its deadlines, and its view.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::id::{AgentId, CallId};
use crate::pool::GroupId;
use crate::time::Timestamp;
use crate::timers::{Filed, TimerKind, Timers, Wanted};
use crate::types::{BlockedReason, CallState, EndReason, Slot};
use crate::view::CallView;

/// The shortest lease a call may ask for (API.md: `lease_ttl_s` 5 to 3600).
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(5);
/// The longest lease a call may ask for.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(3600);
/// The longest `max_wait` a call may ask for: one week.
pub const MAX_MAX_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// One call, in whatever phase it is.
#[derive(Debug)]
pub(crate) struct Call {
    /// Its id: the key it is filed under in the org and in its deadlines.
    pub(crate) id: CallId,
    /// Its (agent, type) group, whose counts it moves.
    pub(crate) group: GroupId,
    /// The lease length, in ms: an active call's lease, and how long a queued call may go unheld.
    pub(crate) lease_ttl_ms: u32,
    /// When it joined the queue; `None` if admitted on arrival.
    pub(crate) queued_at: Option<Timestamp>,
    /// Where it is in its life.
    pub(crate) phase: Phase,
    /// The entries it has in the org's deadlines, so they can be removed exactly.
    pub(crate) filed: Filed,
}

/// A call's phase, with the data only that phase has.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Waiting for a slot.
    Queued(Waiting),
    /// Holding a slot.
    Active {
        /// Its place in the org's admission order (from the same counter as
        /// queued calls' seqs): where the list of active calls files it.
        seq: u64,
        /// The part of the pool it was admitted to.
        slot: Slot,
        /// When it was admitted.
        admitted_at: Timestamp,
        /// When it expires unless renewed.
        lease_expires_at: Timestamp,
    },
    /// Over. Kept for reads and idempotent retries until the retention window passes.
    Ended {
        /// The slot it had, if it was ever admitted.
        slot: Option<Slot>,
        /// When it was admitted, if it was.
        admitted_at: Option<Timestamp>,
        /// When it ended.
        ended_at: Timestamp,
        /// Why it ended.
        reason: EndReason,
    },
}

/// The state of a queued call.
#[derive(Debug)]
pub(crate) struct Waiting {
    /// Its place in the org's arrival order.
    pub(crate) seq: u64,
    /// When it is abandoned unless held again; `NEVER` while a wait is open on it.
    pub(crate) hold_until: Timestamp,
    /// Open waits (long-polls) holding it.
    pub(crate) waits: u32,
    /// When it times out: `NEVER` without a `max_wait`.
    pub(crate) max_wait_at: Timestamp,
}

impl Call {
    /// A new call with no deadlines filed yet.
    pub(crate) fn new(
        id: CallId,
        group: GroupId,
        lease_ttl_ms: u32,
        queued_at: Option<Timestamp>,
        phase: Phase,
    ) -> Call {
        Call {
            id,
            group,
            lease_ttl_ms,
            queued_at,
            phase,
            filed: [None, None],
        }
    }

    /// Queued, active or ended.
    pub(crate) fn state(&self) -> CallState {
        match self.phase {
            Phase::Queued(_) => CallState::Queued,
            Phase::Active { .. } => CallState::Active,
            Phase::Ended { .. } => CallState::Ended,
        }
    }

    /// The deadlines this call has now, by slot (see [`Wanted`]).
    pub(crate) fn deadlines(&self) -> Wanted {
        let at = |at: Timestamp, kind| (at != Timestamp::NEVER).then_some((at, kind));
        match &self.phase {
            Phase::Active {
                lease_expires_at, ..
            } => [at(*lease_expires_at, TimerKind::Lease), None],
            Phase::Queued(w) => [
                at(w.max_wait_at, TimerKind::MaxWait),
                at(w.hold_until, TimerKind::Hold),
            ],
            Phase::Ended { .. } => [None, None],
        }
    }

    /// Brings the call's entries in `timers` in line with its phase.
    pub(crate) fn refile(&mut self, timers: &mut Timers) {
        let wanted = self.deadlines();
        timers.refile(&self.id, &mut self.filed, wanted);
    }

    /// The lease length.
    pub(crate) fn lease_ttl_ms(&self) -> u64 {
        u64::from(self.lease_ttl_ms)
    }

    /// The call as the API shows it; `place` is its place if queued.
    pub(crate) fn view(&self, agent: &AgentId, place: Option<Place>) -> CallView {
        let mut view = CallView {
            id: self.id.clone(),
            agent: agent.clone(),
            call_type: self.group.call_type,
            state: self.state(),
            slot: None,
            position: None,
            estimated_wait_ms: None,
            blocked: None,
            queued_at: self.queued_at,
            admitted_at: None,
            lease_expires_at: None,
            hold_expires_at: None,
            max_wait_expires_at: None,
            lease_ttl_ms: self.lease_ttl_ms(),
            ended_at: None,
            end_reason: None,
        };
        match &self.phase {
            Phase::Queued(w) => {
                if let Some(place) = place {
                    view.position = Some(place.position);
                    view.estimated_wait_ms = place.estimated_wait_ms;
                    view.blocked = place.blocked;
                }
                view.hold_expires_at = w.hold_until.finite();
                view.max_wait_expires_at = w.max_wait_at.finite();
            }
            Phase::Active {
                slot,
                admitted_at,
                lease_expires_at,
                ..
            } => {
                view.slot = Some(*slot);
                view.admitted_at = Some(*admitted_at);
                view.lease_expires_at = Some(*lease_expires_at);
            }
            Phase::Ended {
                slot,
                admitted_at,
                ended_at,
                reason,
            } => {
                view.slot = *slot;
                view.admitted_at = *admitted_at;
                view.ended_at = Some(*ended_at);
                view.end_reason = Some(*reason);
            }
        }
        view
    }
}

/// Where a queued call stands: its place in the org's queue and its expected wait.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Place {
    /// 1-based place in the org's queue.
    pub(crate) position: u64,
    /// Expected wait in ms, if there is enough history.
    pub(crate) estimated_wait_ms: Option<u64>,
    /// Why it can never be admitted as the org is configured now, if so.
    pub(crate) blocked: Option<BlockedReason>,
}

/// Checks a requested lease length; returns it in ms.
pub fn check_lease_ttl(ttl: Duration) -> Result<u32> {
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

/// Checks a requested `max_wait`; returns it in ms.
pub(crate) fn check_max_wait(w: Duration) -> Result<u64> {
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
