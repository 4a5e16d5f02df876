//! slotgate's capacity planner: how many slots an org needs, and where to reserve them.
//!
//! Three parts, all pure (no I/O, no clock; threads only to run independent
//! simulation replications side by side):
//!
//! - [`erlang`]: Erlang B, C and A for one pool, with their formulas and
//!   sources, stable for pools of 10,000 slots.
//!
//! # Layout
//!
//! - [`erlang`]: closed forms and sizing for one pool.
//! - [`error`]: every refusal.

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

pub mod erlang;
pub mod error;

pub use erlang::{erlang_b, erlang_b_load, ErlangA, ErlangC, PoolTraffic};
pub use error::{Error, Result};
