//! The embedded store's numbered migrations, on the real binary: a data
//! directory written by the release before them (`fixtures/store-v0`: an
//! org with reservations, a runtime key, active, queued and ended calls)
//! opens, keeps everything and works; a directory of a newer schema is
//! refused at start, naming its version and the directory.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::Server;
use reqwest::Method;
use slotgate_api::{CallState, CallType, Slot};

/// The runtime key the fixture's org was given (its hash is in the fixture).
const RUNTIME_KEY: &str = "sgk_8882b41b63738cd0_df1426b0dd4d7e491f647adea749d9854f7a00d755bf3d48";

/// The fixture: `slotgate.db` of a data directory written by the release
/// before numbered migrations, closed cleanly (no write-ahead log left).
fn fixture() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/store-v0/slotgate.db"
    ))
}

/// The schema version of the store in `dir`.
fn version(dir: &Path) -> i64 {
    let conn = rusqlite::Connection::open(dir.join("slotgate.db")).unwrap();
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// Replaces the stopped server's store with the fixture's.
fn put_fixture(dir: &Path) {
    for leftover in ["slotgate.db-wal", "slotgate.db-shm"] {
        let _ = std::fs::remove_file(dir.join(leftover));
    }
    std::fs::copy(fixture(), dir.join("slotgate.db")).unwrap();
}

#[tokio::test]
async fn a_data_directory_of_the_release_before_migrations_opens_with_everything_and_works() {
    // Ended calls of the fixture stay readable however old it grows.
    let mut s = Server::start_on(None, &["--ended-retention", "100years"]).await;
    assert!(s.terminate().await.success());
    put_fixture(s.data_dir());
    assert_eq!(version(s.data_dir()), 0, "the fixture predates migrations");
    s.restart().await;
    assert_eq!(
        version(s.data_dir()),
        i64::from(slotgate::store::sqlite::LATEST),
        "migrated at start"
    );

    let org = s.org("acme").await;
    assert_eq!((org.limit, org.reserved), (3, 2));
    let alice = s.agent("acme", "alice").await;
    assert_eq!((alice.reserved.chat, alice.reserved.inbound), (1, 1));
    let live: Vec<_> = s
        .all_calls("acme")
        .await
        .into_iter()
        .map(|c| (c.id, c.state, c.slot))
        .collect();
    assert_eq!(
        live,
        [
            ("c1".to_string(), CallState::Active, Some(Slot::Reserved)),
            ("c3".to_string(), CallState::Active, Some(Slot::Shared)),
            ("c4".to_string(), CallState::Queued, None),
            ("c6".to_string(), CallState::Queued, None),
        ]
    );
    for ended in ["c2", "c5"] {
        assert_eq!(s.get_call("acme", ended).await.state, CallState::Ended);
    }
    assert_eq!(
        s.get_ok("/orgs/acme/keys").await["keys"][0]["name"],
        "fixture"
    );
    let runtime = s
        .send(
            Some(RUNTIME_KEY),
            Method::GET,
            "/v1/orgs/acme/calls/c1",
            None,
        )
        .await;
    assert_eq!(runtime.status, 200, "the stored key still opens the org");
    assert!(
        s.all_events("acme").await.len() >= 11,
        "the event log is kept"
    );

    // It works: a release hands the slot to the queue's head, an acquire queues behind.
    let released = s.release("acme", "c3").await;
    assert_eq!(released.state, CallState::Ended);
    assert_eq!(s.get_call("acme", "c4").await.state, CallState::Active);
    let queued = s.acquire("acme", "c7", "frank", CallType::Inbound).await;
    assert_eq!(queued.brief(), (202, CallState::Queued, None, Some(2)));
    let ended = s.acquire("acme", "c2", "bob", CallType::Outbound).await;
    assert_eq!(ended.brief().1, CallState::Ended, "an ended id stays ended");

    // And all of it survives a restart on the migrated directory.
    assert!(s.terminate().await.success());
    s.restart().await;
    assert_eq!(s.get_call("acme", "c4").await.state, CallState::Active);
    assert_eq!(s.get_call("acme", "c7").await.state, CallState::Queued);
}

#[tokio::test]
async fn a_data_directory_of_a_newer_schema_is_refused_by_version_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    put_fixture(&data);
    let future = slotgate::store::sqlite::LATEST + 7;
    rusqlite::Connection::open(data.join("slotgate.db"))
        .unwrap()
        .pragma_update(None, "user_version", future)
        .unwrap();
    let run = tokio::process::Command::from(crate::support::serve_command("127.0.0.1:0", &data))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("refused within 30 s")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused: {stderr}");
    let says = format!(
        "the data directory {} holds a slotgate store of schema version {future}, newer than version {}",
        data.display(),
        slotgate::store::sqlite::LATEST
    );
    assert!(
        stderr.contains(&says),
        "names version and directory: {stderr}"
    );
    assert_eq!(
        version(&data),
        i64::from(future),
        "the newer store is left untouched"
    );
}
