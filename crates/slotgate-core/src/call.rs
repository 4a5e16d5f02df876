//! A call's record inside its org.

use std::time::Duration;

use crate::id::CallId;
use crate::time::Timestamp;
use crate::timers::{Deadlines, Link, Nodes, Timer, TimerKind};
use crate::types::{CallState, EndReason, Slot};

/// The shortest lease a call may ask for (API.md: `lease_ttl_s` 5 to 3600).
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(5);
/// The longest lease a call may ask for.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(3600);
/// The longest `max_wait` a call may ask for: one week.
pub const MAX_MAX_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// One call, in whatever phase it is.
#[derive(Debug)]
pub(crate) struct Call {
    /// Its id, also the key of the org's call index.
    pub(crate) id: CallId,
    /// Its (agent, type) group: see `org::GroupId`.
    pub(crate) group: u32,
    /// The lease length, in ms: an active call's lease, and how long a queued call may go unheld.
    pub(crate) lease_ttl_ms: u32,
    /// When it joined the queue; `None` if admitted on arrival.
    pub(crate) queued_at: Option<Timestamp>,
    /// Where it is in its life.
    pub(crate) phase: Phase,
    /// Its places in the org's deadline lists (see `timers.rs`).
    pub(crate) links: [Link; 2],
}

/// A call's phase, with the data only that phase has.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Waiting for a slot.
    Queued(Waiting),
    /// Holding a slot.
    Active {
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
    /// Queued, active or ended.
    pub(crate) fn state(&self) -> CallState {
        match self.phase {
            Phase::Queued(_) => CallState::Queued,
            Phase::Active { .. } => CallState::Active,
            Phase::Ended { .. } => CallState::Ended,
        }
    }

    /// The queue state, if queued.
    pub(crate) fn waiting(&self) -> Option<&Waiting> {
        match &self.phase {
            Phase::Queued(w) => Some(w),
            _ => None,
        }
    }

    /// The deadlines this call has now, as the org's timers must hold them
    /// (`key` is its key in the org's call table).
    pub(crate) fn deadlines(&self, key: u32) -> Deadlines {
        let timer = |at: Timestamp, kind, span| {
            (at != Timestamp::NEVER).then_some(Timer {
                at,
                kind,
                call: key,
                span,
            })
        };
        let ttl = self.lease_ttl_ms();
        match &self.phase {
            Phase::Active {
                lease_expires_at, ..
            } => [timer(*lease_expires_at, TimerKind::Lease, ttl), None],
            Phase::Queued(w) => {
                let max_wait = self.queued_at.map_or(0, |q| w.max_wait_at.millis_since(q));
                [
                    timer(w.max_wait_at, TimerKind::MaxWait, max_wait),
                    timer(w.hold_until, TimerKind::Hold, ttl),
                ]
            }
            Phase::Ended { .. } => [None, None],
        }
    }

    /// The lease length.
    pub(crate) fn lease_ttl_ms(&self) -> u64 {
        u64::from(self.lease_ttl_ms)
    }
}

/// The org's deadline lists run through its call table.
impl Nodes for slab::Slab<Call> {
    fn links(&mut self, call: u32) -> &mut [Link; 2] {
        &mut self[call as usize].links
    }

    fn at(&self, call: u32, slot: usize) -> u64 {
        let deadline = self[call as usize].deadlines(call)[slot];
        deadline
            .expect("a linked deadline is current")
            .at
            .as_millis()
    }
}
