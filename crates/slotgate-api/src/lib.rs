//! slotgate's HTTP API contract (API.md) as Rust types: the one definition
//! the server, the CLI and the Rust client compile against, so a renamed
//! field is a compile error rather than a surprise at run time.
//!
//! It holds no I/O and no async runtime: shapes, names, ranges and the check
//! of each field. With the `openapi` feature every type carries its OpenAPI
//! schema, from which the server publishes `/v1/openapi.json`.
//!
//! ```
//! use slotgate_api::{AcquireCall, CallType, ErrorBody, ErrorCode};
//!
//! let body: AcquireCall = serde_json::from_str(r#"{"agent": "agent-a", "type": "inbound"}"#)?;
//! assert_eq!(body.call_type, CallType::Inbound);
//! assert_eq!(body.lease_ttl().unwrap().as_secs(), 60);
//!
//! let refused: ErrorBody = serde_json::from_str(
//!     r#"{"error": {"code": "reservations_exceed_limit", "message": "...", "available": 3}}"#)?;
//! assert_eq!((refused.error.code, refused.error.available), (ErrorCode::ReservationsExceedLimit, Some(3)));
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! # Layout
//!
//! - [`types`]: the closed sets (call type, slot, state, end reason, role) and a value per call type.
//! - [`limits`]: every range of the API as a constant, and the check of each field.
//! - [`number`]: whole numbers read as JSON Schema means them (`7.0` is 7), each refused with its range.
//! - [`requests`]: request bodies; [`resources`]: answers and list pages; [`events`]: the event stream.
//! - [`error`]: error codes with their statuses, and the error body.
//! - [`time`]: times as the API writes them.
//! - [`usage`]: an org's usage by hour or by day.

#![forbid(unsafe_code)]

pub mod error;
pub mod events;
pub mod limits;
pub mod number;
pub mod requests;
pub mod resources;
pub mod time;
pub mod types;
pub mod usage;

pub use error::{ApiError, ErrorBody, ErrorCode, FieldError};
pub use events::{Event, EventKind, EventPage};
pub use requests::{
    AcquireCall, CapsBody, CreateKey, CreateOrg, CreatePlan, Heartbeat, ReservationsBody, SetBurst,
    SetCaps, SetLimit, SetOrgRate, SetPlan, SetReservations, UpdateKey, UpdatePlan,
};
pub use resources::{
    Agent, Call, CallList, HistoryPage, KeyInfo, KeyList, NewKey, Org, OrgList, OrgRate, Plan,
    PlanEvent, PlanEventPage, PlanList, PlanTerms, RateSource, Sample, Time,
};
pub use types::{
    BlockedReason, CallState, CallType, Caps, EndReason, IfBlocked, PerType, Reservations, Role,
    Slot, Source,
};
pub use usage::{Step, Usage, UsageByType, UsageFigures, UsageStep};
