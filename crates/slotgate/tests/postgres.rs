//! The PostgreSQL store's schema migrations (issue 10) against a real,
//! throwaway PostgreSQL cluster of each test's own (`support/postgres.rs`),
//! and that cluster itself.

#[path = "support/postgres.rs"]
mod pg;

use std::sync::Arc;

use pg::PgCluster;
use slotgate::store::postgres::{migrate, MigrateError, Migrated, LATEST};
use tokio::sync::Barrier;

/// The tables migration 1 creates, and the migrations' own record.
const TABLES: &[&str] = &[
    "slotgate_calls",
    "slotgate_events",
    "slotgate_keys",
    "slotgate_orgs",
    "slotgate_reservations",
    "slotgate_schema",
];

/// What migrating a database without slotgate's schema does.
const FRESH: Migrated = Migrated {
    from: 0,
    to: LATEST,
};

/// What migrating an up-to-date database does: nothing.
const UP_TO_DATE: Migrated = Migrated {
    from: LATEST,
    to: LATEST,
};

/// The schema versions recorded, in order.
async fn versions(client: &tokio_postgres::Client) -> Vec<i32> {
    let rows = client
        .query("SELECT version FROM slotgate_schema ORDER BY version", &[])
        .await
        .expect("slotgate_schema reads");
    rows.iter().map(|r| r.get(0)).collect()
}

/// The tables of the public schema, sorted.
async fn tables(client: &tokio_postgres::Client) -> Vec<String> {
    let rows = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' ORDER BY table_name",
            &[],
        )
        .await
        .expect("information_schema reads");
    rows.iter().map(|r| r.get(0)).collect()
}

/// Every version from 1 to [`LATEST`].
fn all_versions() -> Vec<i32> {
    (1..=LATEST).collect()
}

#[tokio::test]
async fn migrating_a_fresh_database_creates_the_schema() {
    let db = PgCluster::start().await;
    let mut client = db.connect().await;
    assert!(tables(&client).await.is_empty());

    let done = migrate(&mut client)
        .await
        .expect("a fresh database migrates");
    assert_eq!(done, FRESH);
    assert_eq!(tables(&client).await, TABLES);
    assert_eq!(versions(&client).await, all_versions());

    // The event log is ordered per org: one row per (org, seq), and a second
    // append of the same seq (two replicas racing) is refused.
    let append = "INSERT INTO slotgate_events (org, seq, at, body) VALUES ($1, $2, 0, '{}')";
    client.execute(append, &[&"acme", &1i64]).await.unwrap();
    client.execute(append, &[&"other", &1i64]).await.unwrap();
    let again = client.execute(append, &[&"acme", &1i64]).await;
    let code = again.expect_err("a seq is appended once").code().cloned();
    assert_eq!(
        code,
        Some(tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
    );
}

#[tokio::test]
async fn migrating_twice_changes_nothing() {
    let db = PgCluster::start().await;
    let mut client = db.connect().await;
    migrate(&mut client).await.expect("the first migration");
    client
        .execute(
            "INSERT INTO slotgate_orgs (id, lim) VALUES ('acme', 3)",
            &[],
        )
        .await
        .unwrap();

    let again = migrate(&mut client).await.expect("the second migration");
    assert_eq!(again, UP_TO_DATE);
    assert_eq!(versions(&client).await, all_versions());
    let orgs = client
        .query("SELECT id, lim FROM slotgate_orgs", &[])
        .await
        .unwrap();
    let orgs: Vec<(String, i32)> = orgs.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(orgs, [("acme".to_string(), 3)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrators_started_together_on_a_fresh_database_do_not_race() {
    let db = PgCluster::start().await;
    migrate_together(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrators_do_not_race_where_transactions_default_to_serializable() {
    // A migrator that waited for the lock must still see what the one before
    // it committed, whatever the database's default isolation level.
    let db = PgCluster::start().await;
    let admin = db.connect().await;
    let serializable = "ALTER DATABASE slotgate SET default_transaction_isolation = 'serializable'";
    admin.batch_execute(serializable).await.unwrap();
    migrate_together(&db).await;
}

/// Four migrators on four connections to a fresh database, released at once
/// as replicas starting together: all succeed, exactly one applies the
/// migrations, and each version is recorded once.
async fn migrate_together(db: &PgCluster) {
    const MIGRATORS: usize = 4;
    // Connected first, then released together, as replicas starting at once.
    let start = Arc::new(Barrier::new(MIGRATORS));
    let mut tasks = Vec::new();
    for _ in 0..MIGRATORS {
        let mut client = db.connect().await;
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            migrate(&mut client).await
        }));
    }
    let mut from = Vec::new();
    for task in tasks {
        let done = task.await.unwrap().expect("every migrator succeeds");
        assert_eq!(done.to, LATEST);
        from.push(done.from);
    }
    // Exactly one applied the migrations; the others found them applied.
    from.sort_unstable();
    let mut want = vec![LATEST; MIGRATORS];
    want[0] = 0;
    assert_eq!(from, want);

    let client = db.connect().await;
    assert_eq!(versions(&client).await, all_versions());
    assert_eq!(tables(&client).await, TABLES);
}

#[tokio::test]
async fn a_database_with_a_newer_schema_is_refused_with_both_versions() {
    let db = PgCluster::start().await;
    let mut client = db.connect().await;
    migrate(&mut client).await.expect("the first migration");
    // What a newer slotgate would leave behind: a version this one does not know.
    let newer = LATEST + 3;
    client
        .execute(
            "INSERT INTO slotgate_schema (version) VALUES ($1)",
            &[&newer],
        )
        .await
        .unwrap();

    let refused = migrate(&mut client)
        .await
        .expect_err("a newer schema is refused");
    assert!(
        matches!(refused, MigrateError::Newer { found, known } if found == newer && known == LATEST),
        "{refused:?}"
    );
    let message = refused.to_string();
    assert!(
        message.contains(&format!("version {newer}, newer than version {LATEST}")),
        "{message}"
    );
    // Nothing was changed, and the connection is still usable.
    let mut want = all_versions();
    want.push(newer);
    assert_eq!(versions(&client).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_stops_and_starts_again_keeping_its_data() {
    let db = PgCluster::start().await;
    let mut client = db.connect().await;
    migrate(&mut client).await.expect("the first migration");

    db.stop();
    let down = client.query("SELECT 1", &[]).await;
    assert!(down.is_err(), "a query answered with the server stopped");
    assert!(
        pg::connect(&db.url()).await.is_err(),
        "a connection opened with the server stopped"
    );

    db.start_again();
    let mut client = db.connect().await;
    assert_eq!(versions(&client).await, all_versions());
    let again = migrate(&mut client)
        .await
        .expect("migrating after a restart");
    assert_eq!(again, UP_TO_DATE);
}

#[tokio::test]
async fn dropping_the_cluster_stops_it_and_removes_its_directory() {
    let db = PgCluster::start().await;
    let url = db.url();
    let dir = db.dir().to_path_buf();
    assert!(dir.join("data").is_dir());
    drop(db);
    assert!(!dir.exists(), "{} is left behind", dir.display());
    assert!(
        pg::connect(&url).await.is_err(),
        "the server still answers at {url}"
    );
}
