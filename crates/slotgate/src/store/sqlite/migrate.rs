//! Numbered schema migrations of the embedded store, as the PostgreSQL
//! store numbers its own (`postgres/migrate.rs`): an older data directory is
//! brought up to date at start, and one written by a newer slotgate is
//! refused by name, never read or written.
//!
//! The schema's version is SQLite's `user_version` in the database header
//! (0 in a new file, and in every data directory written before numbered
//! migrations). [`migrate`] applies the missing migrations and sets the
//! version in one immediate transaction: a crash leaves the file as it was
//! or fully migrated, and one server runs per directory (its lock file).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, TransactionBehavior};

/// The migrations, oldest first: `MIGRATIONS[i]` takes the schema from
/// version `i` to `i + 1`. Append only; a released migration never changes.
pub const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_tables.sql"),
    include_str!("migrations/0002_key_rates.sql"),
    include_str!("migrations/0003_caps_burst.sql"),
    include_str!("migrations/0004_plans.sql"),
    include_str!("migrations/0005_usage.sql"),
    include_str!("migrations/0006_org_rates.sql"),
];

/// The newest schema version this binary knows.
pub const LATEST: u32 = MIGRATIONS.len() as u32;

/// What [`migrate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The schema version it found (0 for a new file or one written before numbered migrations).
    pub from: u32,
    /// The version now: [`LATEST`].
    pub to: u32,
}

/// Why [`migrate`] failed; the file is then as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The data directory was written by a newer slotgate: this one does not
    /// know its schema, so it must not read or write it.
    #[error(
        "the data directory {dir} holds a slotgate store of schema version {found}, newer than \
         version {known}, the newest this slotgate knows: it was written by a newer slotgate; \
         run that version or a newer one on this directory"
    )]
    Newer {
        /// The data directory.
        dir: PathBuf,
        /// The version its store has.
        found: u32,
        /// The newest version this binary knows ([`LATEST`]).
        known: u32,
    },
    /// SQLite failed.
    #[error("migrating the store in {dir}: {source}")]
    Database {
        /// The data directory.
        dir: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
}

/// The schema version of the store `conn` opened (in `dir`), refused if newer than [`LATEST`].
pub(super) fn version(conn: &Connection, dir: &Path) -> Result<u32, MigrateError> {
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|source| MigrateError::Database {
            dir: dir.to_path_buf(),
            source,
        })?;
    let found = u32::try_from(found).unwrap_or(u32::MAX);
    if found > LATEST {
        return Err(MigrateError::Newer {
            dir: dir.to_path_buf(),
            found,
            known: LATEST,
        });
    }
    Ok(found)
}

/// Brings the store of `dir`, opened as `conn`, to [`LATEST`], or refuses a
/// newer one ([`MigrateError::Newer`]). Idempotent.
pub fn migrate(conn: &mut Connection, dir: &Path) -> Result<Migrated, MigrateError> {
    let failed = |source| MigrateError::Database {
        dir: dir.to_path_buf(),
        source,
    };
    // Immediate: the version is read under the write lock it is set under.
    let txn = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    let from = version(&txn, dir)?;
    for (version, sql) in (1..).zip(MIGRATIONS).skip(from as usize) {
        txn.execute_batch(sql).map_err(failed)?;
        // The header's version is written by this transaction, with the migration.
        txn.pragma_update(None, "user_version", version)
            .map_err(failed)?;
        tracing::info!(version, "applied schema migration");
    }
    txn.commit().map_err(failed)?;
    Ok(Migrated { from, to: LATEST })
}
