//! The PostgreSQL store of issue 10, for many replicas on one database.
//!
//! Foundations of issue 10: migrations; the store itself comes next. What
//! exists is [`migrate`], which creates and upgrades the schema (versioned
//! migrations under a transaction-scoped lock) and refuses a database whose
//! schema is newer than this binary knows. `slotgate serve` does not use it yet.

mod migrate;

pub use migrate::{migrate, MigrateError, Migrated, LATEST, MIGRATIONS, MIGRATION_LOCK};
