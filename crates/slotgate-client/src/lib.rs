//! A Rust client for [slotgate](https://github.com/slotgate/slotgate): hold a
//! call slot as easily and safely as a `tokio::sync::Semaphore` permit.
//!
//! [`Client::acquire`] waits through the org's queue (long-polling, which
//! holds the queue entry), reports its place in the queue if asked (position
//! and expected wait, [`QueueStatus`]), and returns a [`Permit`]. The permit
//! heartbeats its lease in the background and gives the slot back when
//! dropped or on [`Permit::release`]. If the lease is lost
//! anyway (the caller was partitioned longer than the lease), [`Permit::lost`]
//! says so instead of failing silently. Every acquire carries a call id, so a
//! request retried after a timeout never takes a second slot; transient
//! failures are retried with backoff, refusals are not.
//!
//! ```no_run
//! # async fn run() -> Result<(), slotgate_client::Error> {
//! use std::time::Duration;
//! use slotgate_client::{Acquire, CallType, Client};
//!
//! let client = Client::new("http://127.0.0.1:7878", "sgk_...runtime key...");
//! let permit = client
//!     .acquire("acme", Acquire::new("agent-a", CallType::Inbound).id("CA123").lease_ttl(Duration::from_secs(30))
//!         .on_queue(|q| println!("queued, position {}, about {:?} to wait", q.position, q.estimated_wait)))
//!     .await?;
//! println!("admitted to a {} slot", permit.call().slot.map_or("?", |s| s.as_str()));
//! tokio::select! {
//!     _ = tokio::time::sleep(Duration::from_secs(5)) => {}          // the conversation
//!     ended = permit.lost() => eprintln!("slot lost: {:?}", ended.end_reason),
//! }
//! permit.release().await?; // or just drop it
//! # Ok(()) }
//! ```
//!
//! The example needs a running server (`cargo run --release -- serve`); see
//! `examples/hold_a_slot.rs` for a complete program.
//!
//! # Layout
//!
//! - [`client`]: one method per endpoint of the API, with retries.
//! - [`permit`]: waiting through the queue and holding a slot.
//! - [`error`]: what can fail, with the API's codes and fields.
//! - `tls`: HTTPS with rustls, the system's roots and an optional CA file.
//! - The API's shapes come from `slotgate-api`, the contract the server
//!   compiles against too, re-exported here.

#![forbid(unsafe_code)]

/// The README's Rust code, compiled as a doctest so that it stays true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub mod client;
pub mod error;
pub mod permit;
mod tls;

pub use client::{CallFilter, Client, EventStream, Retry};
pub use error::{ApiError, Error, ErrorCode, Result};
pub use permit::{Acquire, Permit, QueueStatus};
pub use slotgate_api as api;
pub use slotgate_api::{
    Agent, BlockedReason, Call, CallState, CallType, Caps, EndReason, Event, EventKind, EventPage,
    IfBlocked, KeyInfo, NewKey, Org, PerType, Plan, Reservations, Role, Slot, Source,
};
pub use slotgate_plan as plan;
