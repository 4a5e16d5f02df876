//! Replication: any number of replicas on one PostgreSQL database, one of
//! which leads and holds the orgs in memory; the others forward every
//! request to it. The store (`store/postgres.rs`) knows rows and
//! transactions; everything about who leads is here, and drives the
//! store's writer.
//!
//! # Layout
//!
//! - `replication/role.rs`: this replica's [`Role`] (single, leading until
//!   an instant, following a leader, unknown), published on a watch apart
//!   from the store's health;
//! - `replication/lease.rs`: the leader row, the election, renewals,
//!   following, and the database's clock;
//! - `replication/fence.rs`: the term check every commit of the leader
//!   begins with;
//! - `replication/replicated.rs`: the PostgreSQL writer wrapped with the
//!   lead for the write loop: it commits only while this replica leads,
//!   follows when it does not, and renews the lead when idle;
//! - `replication/forward.rs`: a follower's way to the leader (its proof,
//!   then the request); `replication/trust.rs`: the HMAC proofs with the
//!   replicas' secret. The tower layer around the API is `api/forward.rs`.

pub mod fence;
pub mod forward;
pub mod lease;
pub(crate) mod replicated;
pub mod role;
pub mod trust;

pub use role::{Leader, Role};
