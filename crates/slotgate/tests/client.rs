//! The Rust client and the `slotgate` CLI against the real server binary.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slotgate_client::{
    Acquire, CallState, CallType, Client, EndReason, ErrorCode, EventKind, PerType, Slot,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod common;

use common::{Server, OP};

async fn server() -> Server {
    Server::start().await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permit_waits_in_the_queue_and_dropping_one_hands_the_slot_on() {
    let s = server().await;
    let c = Client::new(&s.url, OP);
    c.create_org("acme", 1).await.unwrap();
    let first = c
        .acquire("acme", Acquire::new("a", CallType::Chat).id("first"))
        .await
        .unwrap();
    assert_eq!(first.call().state, CallState::Active);

    let positions = Arc::new(Mutex::new(Vec::new()));
    let seen = positions.clone();
    let c2 = c.clone();
    let second = tokio::spawn(async move {
        c2.acquire(
            "acme",
            Acquire::new("b", CallType::Inbound)
                .id("second")
                .on_position(move |p| seen.lock().unwrap().push(p)),
        )
        .await
    });
    while positions.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        c.call_info("acme", "second", Duration::ZERO)
            .await
            .unwrap()
            .state,
        CallState::Queued
    );

    drop(first);
    let second = second.await.unwrap().unwrap();
    assert_eq!(
        (second.id(), second.call().state),
        ("second", CallState::Active)
    );
    assert_eq!(*positions.lock().unwrap(), vec![1]);
    let first = c.call_info("acme", "first", Duration::ZERO).await.unwrap();
    assert_eq!(first.end_reason, Some(EndReason::Released));

    let ended = second.release().await.unwrap();
    assert_eq!(ended.end_reason, Some(EndReason::Released));
    assert_eq!(c.org("acme").await.unwrap().active, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permit_whose_heartbeats_stop_loses_its_slot_and_says_so() {
    let s = server().await;
    let c = Client::new(&s.url, OP);
    c.create_org("acme", 1).await.unwrap();
    // Heartbeats come later than the lease lasts: the lease runs out first.
    let permit = c
        .acquire(
            "acme",
            Acquire::new("a", CallType::Chat)
                .lease_ttl(Duration::from_secs(5))
                .heartbeat_every(Duration::from_secs(7)),
        )
        .await
        .unwrap();
    let waiter = c.clone();
    let next = tokio::spawn(async move {
        waiter
            .acquire("acme", Acquire::new("b", CallType::Chat))
            .await
    });
    let lost = tokio::time::timeout(Duration::from_secs(30), permit.lost())
        .await
        .expect("the loss is reported");
    assert_eq!(lost.end_reason, Some(EndReason::Expired));
    assert!(permit.is_lost());
    let next = next.await.unwrap().unwrap();
    assert_eq!(
        next.call().state,
        CallState::Active,
        "the expired slot went to the waiter"
    );
}

/// A proxy that forwards the first connection's request, then hangs up before
/// the answer comes back; later connections pass through untouched.
async fn flaky_proxy(upstream: String, connections: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = upstream.trim_start_matches("http://").to_string();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            connections.fetch_add(1, Ordering::SeqCst);
            let mut server = TcpStream::connect(&upstream).await.unwrap();
            if std::mem::take(&mut first) {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let n = client.read(&mut buf).await.unwrap();
                    server.write_all(&buf[..n]).await.unwrap();
                    // The server has the request; wait until it answers, then drop both sides.
                    let _ = server.read(&mut buf).await;
                });
            } else {
                tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_acquire_retried_after_a_dropped_connection_takes_one_slot() {
    let s = server().await;
    let direct = Client::new(&s.url, OP);
    direct.create_org("acme", 5).await.unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let proxied = Client::new(&flaky_proxy(s.url.clone(), connections.clone()).await, OP);
    let permit = proxied
        .acquire("acme", Acquire::new("a", CallType::Chat).id("CA1"))
        .await
        .unwrap();
    assert_eq!(permit.call().state, CallState::Active);
    let org = direct.org("acme").await.unwrap();
    assert_eq!(
        org.active, 1,
        "the retry found the call the lost answer had admitted"
    );
    let calls = direct.calls("acme", &Default::default()).await.unwrap();
    assert_eq!(calls.len(), 1);
    permit.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_typed_and_not_retried() {
    let s = server().await;
    let c = Client::new(&s.url, OP);
    c.create_org("acme", 4).await.unwrap();
    let e = c
        .set_reservations(
            "acme",
            "a",
            PerType {
                chat: 9,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    let api = e.api().unwrap();
    assert_eq!(
        (api.code, api.available),
        (ErrorCode::ReservationsExceedLimit, Some(4))
    );
    assert!(!e.is_transient());
    let e = Client::new(&s.url, "wrong").org("acme").await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Unauthorized));
    let timeout = c
        .acquire("acme", Acquire::new("a", CallType::Chat).id("x"))
        .await
        .unwrap();
    let e = c
        .acquire("acme", Acquire::new("b", CallType::Chat).id("x"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::CallIdConflict));
    drop(timeout);
}

/// Runs the CLI against the server; returns (exit code, stdout, stderr).
fn cli(s: &Server, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_slotgate"))
        .args(args)
        .env("SLOTGATE_URL", &s.url)
        .env("SLOTGATE_KEY", OP)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_cli_subcommand_as_a_process() {
    let s = server().await;
    let ok = |args: &[&str]| {
        let (code, out, err) = cli(&s, args);
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };
    assert!(
        ok(&["org", "create", "acme", "--limit", "20"]).contains("created org acme with limit 20")
    );
    assert!(ok(&["org", "list"]).contains("acme"));
    assert!(ok(&[
        "reserve",
        "acme",
        "agent-a",
        "--webcall",
        "2",
        "--chat",
        "3",
        "--outbound",
        "4",
        "--inbound",
        "3"
    ])
    .contains("agent-a reserves 12"));
    let (code, _, err) = cli(&s, &["reserve", "acme", "agent-b", "--inbound", "9"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("reservations_exceed_limit") && err.contains("available: 8"),
        "{err}"
    );
    let (code, _, err) = cli(&s, &["org", "limit", "acme", "5"]);
    assert_eq!(code, 1);
    assert!(err.contains("limit_below_reservations"), "{err}");
    assert!(ok(&["org", "limit", "acme", "30"]).contains("limit 30"));

    let c = Client::new(&s.url, OP);
    let _held = c
        .acquire("acme", Acquire::new("agent-a", CallType::Chat).id("c1"))
        .await
        .unwrap();
    let calls = ok(&["calls", "acme", "--state", "active", "--agent", "agent-a"]);
    assert!(
        calls.contains("c1") && calls.contains("reserved") && calls.contains("1 calls"),
        "{calls}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["org", "show", "acme", "--json"])).unwrap();
    assert_eq!(
        (json["limit"].clone(), json["active"].clone()),
        (serde_json::json!(30), serde_json::json!(1))
    );
    let status = ok(&["status", "acme"]);
    assert!(
        status.contains("limit 30 · reserved 12 · shared 18 · active 1"),
        "{status}"
    );
    assert!(status.contains("A agent-a 1/12"), "{status}");
    assert!(ok(&["release", "acme", "c1"]).contains("call c1 ended: released"));
    assert!(ok(&["unreserve", "acme", "agent-a"]).contains("no reservations"));

    let created = ok(&[
        "keys", "create", "acme", "--role", "runtime", "--name", "ci",
    ]);
    let secret = created.lines().last().unwrap().trim().to_string();
    assert!(secret.starts_with("sgk_"), "{created}");
    let id = secret.split('_').nth(1).unwrap().to_string();
    assert!(ok(&["keys", "list", "acme"]).contains(&id));
    let (code, out, _) = cli(&s, &["--key", &secret, "org", "show", "acme"]);
    assert_eq!(code, 0, "the new runtime key works: {out}");
    assert!(ok(&["keys", "revoke", "acme", &id]).contains("revoked"));
    let (code, _, err) = cli(&s, &["--key", &secret, "org", "show", "acme"]);
    assert_eq!(code, 1);
    assert!(err.contains("unauthorized"), "{err}");
    let (code, _, err) = cli(&s, &["--url", "http://127.0.0.1:1", "org", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach slotgate"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn events_health_metrics_and_openapi_through_the_client() {
    let s = server().await;
    let c = Client::new(&s.url, OP);
    assert!(c.healthy().await.unwrap());
    c.create_org("acme", 1).await.unwrap();
    let mut stream = c.event_stream("acme", Some(0)).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(
        (first.seq, first.kind),
        (
            1,
            EventKind::OrgCreated {
                limit: 1,
                by: Some("operator".into())
            }
        )
    );
    let permit = c
        .acquire("acme", Acquire::new("a", CallType::Chat).id("e1"))
        .await
        .unwrap();
    let admitted = stream.next().await.unwrap().unwrap();
    assert!(
        matches!(
            &admitted.kind,
            EventKind::CallAdmitted { call, slot: Slot::Shared, call_type: CallType::Chat, .. } if call == "e1"
        ),
        "{admitted:?}"
    );
    permit.release().await.unwrap();
    let ended = stream.next().await.unwrap().unwrap();
    assert!(
        matches!(
            ended.kind,
            EventKind::CallEnded {
                reason: EndReason::Released,
                ..
            }
        ),
        "{ended:?}"
    );

    let page = c.events("acme", 1, Duration::ZERO).await.unwrap();
    assert_eq!(
        page.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(page.next, 3);
    assert!(c
        .metrics()
        .await
        .unwrap()
        .contains("slotgate_ends_total{org=\"acme\",reason=\"released\"} 1"));
    assert!(c.openapi().await.unwrap()["paths"]
        .get("/v1/orgs/{org}/calls")
        .is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn status_watch_redraws_until_interrupted() {
    let s = server().await;
    Client::new(&s.url, OP).create_org("acme", 4).await.unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_slotgate"))
        .args(["status", "acme", "--watch"])
        .env("SLOTGATE_URL", &s.url)
        .env("SLOTGATE_KEY", OP)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let text = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        // Two frames: the screen is cleared before each.
        while text.matches("\x1b[2J").count() < 2 {
            let n = out.read(&mut buf).unwrap();
            assert!(n > 0, "status --watch stopped early: {text}");
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        text
    })
    .await
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        text.contains("acme  limit 4 · reserved 0 · shared 4 · active 0 · queued 0"),
        "{text}"
    );
    assert!(text.contains("Ctrl-C to stop"));
}
