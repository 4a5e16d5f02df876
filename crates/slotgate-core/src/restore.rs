//! What a store hands back to rebuild the engine after a restart.

use std::time::Duration;

use crate::id::{AgentId, CallId};
use crate::time::Timestamp;
use crate::types::{CallState, CallType, EndReason, Slot};
use crate::view::CallView;

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

impl RestoredCall {
    /// An ended call as the engine shows it while it keeps it: for a store
    /// that keeps ended calls longer than the engine (`Config::ended_retention`).
    /// `None` for a call that has not ended.
    pub fn ended_view(&self) -> Option<CallView> {
        let RestoredState::Ended {
            slot,
            admitted_at,
            ended_at,
            reason,
        } = self.state
        else {
            return None;
        };
        Some(CallView {
            id: self.id.clone(),
            agent: self.agent.clone(),
            call_type: self.call_type,
            state: CallState::Ended,
            slot,
            position: None,
            estimated_wait_ms: None,
            blocked: None,
            queued_at: self.queued_at,
            admitted_at,
            lease_expires_at: None,
            hold_expires_at: None,
            max_wait_expires_at: None,
            lease_ttl_ms: u64::try_from(self.lease_ttl.as_millis()).unwrap_or(u64::MAX),
            ended_at: Some(ended_at),
            end_reason: Some(reason),
        })
    }
}
