//! The small vocabulary of the domain: call types, slots, states, end reasons,
//! and a value per call type. They are the API's own closed sets, defined
//! once in the contract crate (`slotgate-api`), so the engine, the wire and
//! every client spell them one way.

pub use slotgate_api::limits::MAX_LIMIT;
pub use slotgate_api::types::{
    BlockedReason, CallState, CallType, Caps, EndReason, IfBlocked, PerType, Reservations, Slot,
    Source,
};
