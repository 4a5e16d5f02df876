//! `slotgate export` and `slotgate import`: a store's state as one JSON
//! document ([`Dump`]), read as one consistent snapshot, and loaded into a
//! new store in one transaction. A backup of either store, and the way from
//! the embedded store to PostgreSQL.

use std::io::{Read, Write as _};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use slotgate_core::Config;

use crate::auth::random_hex;
use crate::private_files;
use crate::replication::lease::Replica;
use crate::server::{lock_data_dir, StoreChoice};
use crate::store::postgres::{self, PostgresStore};
use crate::store::sqlite::{self, SqliteStore};
use crate::store::{Dump, Retention, Store, Tickets, Write, DUMP_FORMAT};

/// Retention while importing: nothing is purged in the few seconds it runs.
const KEEP: Retention = Retention {
    ended_calls: Duration::from_secs(24 * 3600),
    events: Duration::from_secs(24 * 3600),
    usage: Duration::from_secs(24 * 3600),
};

/// `slotgate export`: the document on stdout, or in `output`.
pub async fn export(
    store: &StoreChoice,
    data_dir: &Path,
    output: Option<&Path>,
) -> Result<(), String> {
    let dump = match store {
        StoreChoice::Sqlite => {
            let dir = data_dir.to_path_buf();
            tokio::task::spawn_blocking(move || sqlite::dump_dir(&dir))
                .await
                .map_err(|e| e.to_string())?
        }
        StoreChoice::Postgres(url) => postgres::dump_url(url).await,
    }
    .map_err(|e| e.to_string())?;
    let mut text = serde_json::to_string_pretty(&dump).map_err(|e| e.to_string())?;
    text.push('\n');
    let (orgs, calls, keys) = dump.counts();
    match output {
        Some(path) => {
            // A backup holds key hashes and every org's state: owner-only (0600).
            private_files::write(path, text.as_bytes())
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            eprintln!(
                "exported {orgs} orgs, {calls} calls and {keys} keys to {}",
                path.display()
            );
        }
        None => {
            std::io::stdout()
                .write_all(text.as_bytes())
                .map_err(|e| format!("writing to standard output: {e}"))?;
            eprintln!("exported {orgs} orgs, {calls} calls and {keys} keys");
        }
    }
    Ok(())
}

/// `slotgate import FILE`: into a new or empty store, all or nothing.
pub async fn import(store: &StoreChoice, data_dir: &Path, file: &Path) -> Result<(), String> {
    let dump = read(file)?;
    // Everything must restore into an engine before anything is written.
    dump.clone()
        .snapshot()
        .map_err(|e| format!("{}: {e}", file.display()))?
        .restore(Config {
            queue_cap: u32::MAX,
            ..Config::default()
        })
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let (_lock, store, tickets): (_, Arc<dyn Store>, _) = match store {
        StoreChoice::Sqlite => {
            let dir = data_dir;
            private_files::create_dir(dir)
                .map_err(|e| format!("creating {}: {e}", dir.display()))?;
            let lock = lock_data_dir(dir).map_err(|e| e.to_string())?;
            let (store, tickets) = SqliteStore::open(dir, KEEP).map_err(|e| e.to_string())?;
            (Some(lock), Arc::new(store), tickets)
        }
        StoreChoice::Postgres(url) => {
            // It takes the lead, as a server would: none may run meanwhile.
            let me = Replica {
                id: random_hex(16),
                url: String::new(),
            };
            let (store, tickets, role) = PostgresStore::open(url, KEEP, me)
                .await
                .map_err(|e| e.to_string())?;
            if !role.borrow().serves() {
                return Err(
                    "a slotgate server runs on this database: stop every replica first".into(),
                );
            }
            (None, Arc::new(store), tickets)
        }
    };
    let result = fill(&store, &tickets, dump).await;
    // Let a server take the lead at once, rather than once this one's lapses.
    let ticket = tickets.submit(Write::Resign);
    let resigned = tickets.durable(ticket).await.map_err(|e| e.to_string());
    result.and(resigned)
}

/// Writes `dump` into `store`, if the store is empty.
async fn fill(store: &Arc<dyn Store>, tickets: &Tickets, dump: Dump) -> Result<(), String> {
    let reader = store.clone();
    let existing = tokio::task::spawn_blocking(move || reader.dump(None))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if !existing.orgs.is_empty() || !existing.keys.is_empty() {
        return Err(format!(
            "the store already holds {} orgs and {} keys: import fills a new, empty store only",
            existing.orgs.len(),
            existing.keys.len()
        ));
    }
    let (orgs, calls, keys) = dump.counts();
    let ticket = tickets.submit(Write::Import(Box::new(dump)));
    tickets.durable(ticket).await.map_err(|e| e.to_string())?;
    eprintln!("imported {orgs} orgs, {calls} calls and {keys} keys");
    Ok(())
}

/// The document in `file` (`-`: standard input).
fn read(file: &Path) -> Result<Dump, String> {
    let text = if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("reading standard input: {e}"))?;
        text
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))?
    };
    let dump: Dump = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not an export of slotgate: {e}", file.display()))?;
    if dump.format != DUMP_FORMAT {
        return Err(format!(
            "{} is a {:?} document; this slotgate reads {DUMP_FORMAT:?}",
            file.display(),
            dump.format
        ));
    }
    Ok(dump)
}
