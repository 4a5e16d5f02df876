//! What a store hands back to rebuild the engine after a restart.

use std::time::Duration;

use crate::id::{AgentId, CallId};
use crate::time::Timestamp;
use crate::types::{CallType, EndReason, Slot};

/// One call as a store kept it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredCall {
    /// Its id.
    pub id: CallId,
    /// Its agent.
    pub agent: AgentId,
    /// Its type.
    pub call_type: CallType,
    /// When it was queued, if it ever was.
    pub queued_at: Option<Timestamp>,
    /// Its lease length.
    pub lease_ttl: Duration,
    /// Where it was.
    pub state: RestoredState,
}

/// A restored call's phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoredState {
    /// Waiting; restored calls keep the order they are given in.
    Queued {
        /// When its `max_wait` runs out, if it has one.
        max_wait_expires_at: Option<Timestamp>,
    },
    /// Holding a slot.
    Active {
        /// The slot it was admitted to.
        slot: Slot,
        /// When.
        admitted_at: Timestamp,
    },
    /// Over, within the retention window.
    Ended {
        /// The slot it had, if it was admitted.
        slot: Option<Slot>,
        /// When it was admitted, if it was.
        admitted_at: Option<Timestamp>,
        /// When it ended.
        ended_at: Timestamp,
        /// Why.
        reason: EndReason,
    },
}
