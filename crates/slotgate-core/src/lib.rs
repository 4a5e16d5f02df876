//! slotgate's admission engine: which calls are active, which wait, and in what order.
//!
//! This crate is the whole of the admission rules of `SEMANTICS.md`, for many
//! orgs at once, and nothing else. It contains **no networking, no storage, no
//! async runtime and no clock**: every command takes `now` as an argument, the
//! engine says when it next needs to run ([`Engine::poll_timeout`]) and does
//! that work when told ([`Engine::handle_timeout`]). State changes come back as
//! [`Event`]s for the caller to persist and publish. The server, the stores and
//! the tests all drive this same code.
//!
//! ```
//! use slotgate_core::{AcquireRequest, Acquired, AgentId, CallId, CallType, Config, Engine, OrgId, Reservations, Timestamp};
//!
//! let t0 = Timestamp::from_millis(0);
//! let mut engine = Engine::new(Config::default());
//! engine.create_org(OrgId::new("acme")?, 1, t0)?;
//! let agent = AgentId::new("agent-a")?;
//!
//! let first = AcquireRequest::new(CallId::new("c1")?, agent.clone(), CallType::Chat);
//! assert!(matches!(engine.acquire("acme", first, t0)?, Acquired::Admitted(_)));
//!
//! let second = AcquireRequest::new(CallId::new("c2")?, agent, CallType::Chat);
//! let Acquired::Queued(call) = engine.acquire("acme", second, t0)? else { panic!() };
//! assert_eq!(call.position, Some(1));
//!
//! engine.release("acme", "c1", t0)?; // the queued call takes the freed slot
//! assert_eq!(engine.org("acme")?.active, 1);
//! # Ok::<(), slotgate_core::Error>(())
//! ```
//!
//! # Layout
//!
//! - [`engine`]: the multi-org engine, its commands and its clock handling;
//!   `command`: what those commands take and answer ([`Config`],
//!   [`AcquireRequest`], [`Acquired`], [`WaitToken`], [`ListFilter`], [`CallPage`]).
//! - `org`: one org's calls, their lives and deadlines, dispatch, read views,
//!   and rebuilding from a store.
//! - `pool`: an org's counts, the admission rule and the queue (which call
//!   dispatch admits next, positions), and its lists of calls by rank;
//!   `ranked`: the ranked sequence those are made of; `timers`: an org's deadlines, earliest
//!   first; `call`: a call's record and phases; `wait`: how long slots are
//!   held, and a queued call's expected wait from that.
//! - [`ids`] (checks; the types in `id`), [`types`] (the API's closed sets,
//!   from `slotgate-api`), [`time`]: validated domain values.
//! - [`view`], [`event`]: what the engine reports, and `contract`: the same in the
//!   API's shapes (`slotgate-api`); [`restore`]: what a store gives back.
//! - [`error`]: every refusal.
//!
//! Modules depend one way: the vocabulary (`time`, `id`, `types`) first, then
//! `view`, `error` and the checks (`ids`), then `command`, the org's parts
//! (`ranked`, `pool`, `timers`, `call`) and `org`, `contract`, and `engine` last.

#![forbid(unsafe_code)]

mod call;
mod command;
mod contract;
pub mod engine;
pub mod error;
pub mod event;
mod id;
pub mod ids;
mod org;
mod pool;
mod ranked;
pub mod restore;
pub mod time;
mod timers;
pub mod types;
pub mod view;
mod wait;

pub use call::{check_lease_ttl, MAX_LEASE_TTL, MAX_MAX_WAIT, MIN_LEASE_TTL};
pub use command::{AcquireRequest, Acquired, CallPage, Config, ListFilter, WaitToken};
pub use engine::Engine;
pub use error::{Error, Result};
pub use event::{Event, EventKind};
pub use ids::{AgentId, CallId, OrgId, PlanId};
pub use restore::{RestoredCall, RestoredState};
pub use time::Timestamp;
pub use types::{
    BlockedReason, CallState, CallType, Caps, EndReason, IfBlocked, PerType, Reservations, Slot,
    Source, MAX_LIMIT,
};
pub use view::{AgentTotals, AgentView, CallView, OrgView, PlanLink};
pub use wait::{FREES_KEPT, MIN_FREES};
