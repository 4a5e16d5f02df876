//! What the engine's commands take and answer: its settings, an acquire
//! request and its outcome, the token of an open wait, and a page of calls.
//!
//! These sit below both [`crate::engine`] and the org, so the org reads a
//! request without depending on the engine that owns it.

use std::time::Duration;

use crate::id::{AgentId, CallId};
use crate::types::{CallState, CallType, IfBlocked};
use crate::view::CallView;

/// Engine-wide settings.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Most calls one org may have queued; beyond it acquire answers
    /// [`crate::Error::QueueFull`] and queues nothing.
    pub queue_cap: u32,
    /// How long an ended call stays readable and its id idempotent.
    pub ended_retention: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            queue_cap: 100_000,
            ended_retention: Duration::from_secs(24 * 3600),
        }
    }
}

/// A call asking for a slot.
#[derive(Debug, Clone)]
pub struct AcquireRequest {
    /// The call's id: retries with the same id are idempotent.
    pub id: CallId,
    /// The agent it is for.
    pub agent: AgentId,
    /// Its type.
    pub call_type: CallType,
    /// The lease length (5 s to 1 h), renewed by heartbeats; also how long it may sit unheld in the queue.
    pub lease_ttl: Duration,
    /// The longest it may wait in the queue; `None` waits as long as it is held.
    pub max_wait: Option<Duration>,
    /// Whether a call that would queue blocked queues anyway (saying so) or
    /// is refused with [`crate::Error::CallBlocked`].
    pub if_blocked: IfBlocked,
}

impl AcquireRequest {
    /// The API's default lease length.
    pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(60);

    /// A request with the default lease, no `max_wait`, queued even if blocked.
    pub fn new(id: CallId, agent: AgentId, call_type: CallType) -> Self {
        AcquireRequest {
            id,
            agent,
            call_type,
            lease_ttl: Self::DEFAULT_LEASE_TTL,
            max_wait: None,
            if_blocked: IfBlocked::Queue,
        }
    }
}

/// Names the one call a wait was opened on, so that closing the wait cannot
/// touch a later call that reuses the id. Returned by [`crate::Engine::open_wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitToken(pub(crate) u64);

/// The outcome of an acquire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// A new call, admitted at once.
    Admitted(CallView),
    /// A new call, queued.
    Queued(CallView),
    /// The id exists with the same agent and type: its current state.
    Existing(CallView),
}

impl Acquired {
    /// The call, whatever the outcome.
    pub fn call(&self) -> &CallView {
        match self {
            Acquired::Admitted(c) | Acquired::Queued(c) | Acquired::Existing(c) => c,
        }
    }
}

/// Which live calls a page of calls keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only active or only queued calls (both when `None`; none for `Ended`:
    /// ended calls are not listed).
    pub state: Option<CallState>,
    /// Only this agent's calls.
    pub agent: Option<AgentId>,
}

/// A page of live calls, from [`crate::Engine::calls_page`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallPage {
    /// The calls: active ones (oldest admission first), then queued ones (in queue order).
    pub calls: Vec<CallView>,
    /// The offset of the next page; `None` on the last.
    pub next: Option<usize>,
}
