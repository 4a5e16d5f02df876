//! Versioned schema migrations, safe when many replicas start at once.
//!
//! The schema's version is the number of migrations applied, one row each in
//! `slotgate_schema`. [`migrate`] applies the missing ones in one transaction
//! that first takes a transaction-scoped advisory lock, so replicas starting
//! together run the migrations one after another: the first applies them, the
//! others find them applied. The lock is released by the commit or rollback,
//! never held by a session, so a transaction-pooling PgBouncer in between
//! works.

use tokio_postgres::{Client, IsolationLevel};

/// The migrations, oldest first: `MIGRATIONS[i]` takes the schema from
/// version `i` to `i + 1`. Append only; a released migration never changes.
pub const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_tables.sql"),
    include_str!("migrations/0002_leader.sql"),
    include_str!("migrations/0003_key_rates.sql"),
    include_str!("migrations/0004_caps_burst.sql"),
    include_str!("migrations/0005_plans.sql"),
    include_str!("migrations/0006_usage.sql"),
    include_str!("migrations/0007_org_rates.sql"),
];

/// The newest schema version this binary knows.
pub const LATEST: i32 = MIGRATIONS.len() as i32;

/// The key of the advisory lock [`migrate`] holds: "slotgate" in ASCII, so
/// it is unlikely to be another application's key in a shared database.
pub const MIGRATION_LOCK: i64 = i64::from_be_bytes(*b"slotgate");

/// The migrations' own record, created before any of them.
const SCHEMA_TABLE: &str = "
CREATE TABLE IF NOT EXISTS slotgate_schema (
    version integer PRIMARY KEY CHECK (version > 0),
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// What [`migrate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The schema version it found (0 for a database without slotgate's schema).
    pub from: i32,
    /// The version now: [`LATEST`].
    pub to: i32,
}

/// Why [`migrate`] failed; the database is then as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The database was migrated by a newer slotgate: this one does not know
    /// its schema, so it must not read or write it.
    #[error(
        "the database's slotgate schema is version {found}, newer than version {known}, \
         the newest this slotgate knows: it was migrated by a newer slotgate; \
         run that version or a newer one against this database"
    )]
    Newer {
        /// The version the database has.
        found: i32,
        /// The newest version this binary knows ([`LATEST`]).
        known: i32,
    },
    /// The database failed or could not be reached.
    #[error("migrating the database schema: {0}")]
    Database(#[from] tokio_postgres::Error),
}

/// Brings the database's schema to [`LATEST`], or refuses a newer one
/// ([`MigrateError::Newer`]). Idempotent, and safe to call from many
/// connections at once: everything happens in one transaction holding
/// `pg_advisory_xact_lock(MIGRATION_LOCK)`, committed before it returns.
pub async fn migrate(client: &mut Client) -> Result<Migrated, MigrateError> {
    // Read committed, whatever the database's default: a migrator that waited
    // for the lock must see what the one before it committed.
    let txn = client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    txn.batch_execute(SCHEMA_TABLE).await?;
    let found: i32 = txn
        .query_one("SELECT COALESCE(max(version), 0) FROM slotgate_schema", &[])
        .await?
        .get(0);
    if found > LATEST {
        // Dropping the transaction rolls it back.
        return Err(MigrateError::Newer {
            found,
            known: LATEST,
        });
    }
    for (version, sql) in (1..).zip(MIGRATIONS).skip(found as usize) {
        txn.batch_execute(sql).await?;
        txn.execute(
            "INSERT INTO slotgate_schema (version) VALUES ($1)",
            &[&version],
        )
        .await?;
        tracing::info!(version, "applied schema migration");
    }
    txn.commit().await?;
    Ok(Migrated {
        from: found,
        to: LATEST,
    })
}
