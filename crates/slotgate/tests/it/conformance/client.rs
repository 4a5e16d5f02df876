//! The Rust client and the `slotgate` CLI against the real server binary.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slotgate_client::{
    Acquire, BlockedReason, CallState, CallType, Caps, Client, EndReason, ErrorCode, EventKind,
    PerType, Slot,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{Server, OPERATOR_KEY as OP};

async fn server() -> Server {
    Server::start().await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permit_waits_in_the_queue_and_dropping_one_hands_the_slot_on() {
    let s = server().await;
    let c = Client::new(&s.base, OP);
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
    let c = Client::new(&s.base, OP);
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
    let direct = Client::new(&s.base, OP);
    direct.create_org("acme", 5).await.unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let proxied = Client::new(&flaky_proxy(s.base.clone(), connections.clone()).await, OP);
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
    let c = Client::new(&s.base, OP);
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
    let e = Client::new(&s.base, "wrong").org("acme").await.unwrap_err();
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

#[tokio::test(flavor = "multi_thread")]
async fn events_health_metrics_and_openapi_through_the_client() {
    let s = server().await;
    let c = Client::new(&s.base, OP);
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
    // As two replicas, the leader's metrics show the orgs (crate::support::Server::url).
    let leader = Client::new(s.metrics_base("/metrics"), OP);
    assert!(leader
        .metrics()
        .await
        .unwrap()
        .contains("slotgate_ends_total{org=\"acme\",reason=\"released\"} 1"));
    // The OpenAPI document is not one of the API's types: it stays JSON.
    assert!(c.openapi().await.unwrap()["paths"]
        .get("/v1/orgs/{org}/calls")
        .is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_permit_hears_its_position_move_as_calls_ahead_leave() {
    let s = server().await;
    let c = Client::new(&s.base, OP);
    c.create_org("acme", 1).await.unwrap();
    let _first = c
        .acquire("acme", Acquire::new("a", CallType::Chat).id("first"))
        .await
        .unwrap();
    let queue = |id: &'static str, seen: Arc<Mutex<Vec<u64>>>| {
        let c = c.clone();
        tokio::spawn(async move {
            let req = Acquire::new("b", CallType::Chat)
                .id(id)
                .on_position(move |p| seen.lock().unwrap().push(p));
            c.acquire("acme", req).await
        })
    };
    let (second, third) = (Arc::default(), Arc::new(Mutex::new(Vec::new())));
    let _second = queue("second", second);
    while c.call_info("acme", "second", Duration::ZERO).await.is_err() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _third = queue("third", third.clone());
    while third.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c.release("acme", "second").await.unwrap();
    // Well before the third's long-poll (20 s) returns: the event watcher tells it.
    tokio::time::timeout(Duration::from_secs(10), async {
        while third.lock().unwrap().len() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the new position is reported while the call still waits");
    assert_eq!(*third.lock().unwrap(), vec![2, 1]);
}

/// Version 2 through the client: caps and the burst set, a blocked call
/// refused when asked, and a permit that waits blocked hearing why until a
/// change of the configuration admits it.
#[tokio::test(flavor = "multi_thread")]
async fn caps_burst_and_a_blocked_permit_through_the_client() {
    let s = server().await;
    let c = Client::new(&s.base, OP);
    c.create_org("acme", 2).await.unwrap();
    c.set_reservations(
        "acme",
        "a",
        PerType {
            chat: 2,
            ..PerType::default()
        },
    )
    .await
    .unwrap();
    let chat_1 = Caps {
        chat: Some(1),
        ..Caps::default()
    };
    let refused = c.set_caps("acme", "a", chat_1).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::CapBelowReservation));
    assert_eq!(refused.api().and_then(|e| e.reserved), Some(2));
    let caps = Caps {
        chat: Some(2),
        total: Some(4),
        ..Caps::default()
    };
    assert_eq!(c.set_caps("acme", "a", caps).await.unwrap().caps, caps);
    assert_eq!(c.set_burst("acme", 1).await.unwrap().burst, 1);

    let blocked = Acquire::new("y", CallType::Chat).id("y0");
    let refused = c
        .acquire("acme", blocked.refuse_if_blocked())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::CallBlocked));
    let reason = refused.api().and_then(|e| e.blocked);
    assert_eq!(reason, Some(BlockedReason::NoSharedCapacity));
    assert_eq!(c.org("acme").await.unwrap().queued, 0, "nothing queued");

    let heard = Arc::new(Mutex::new(Vec::new()));
    let seen = heard.clone();
    let c2 = c.clone();
    let waiting = tokio::spawn(async move {
        let req = Acquire::new("y", CallType::Chat)
            .id("y1")
            .on_queue(move |q| seen.lock().unwrap().push(q.blocked));
        c2.acquire("acme", req).await
    });
    let c3 = c.clone();
    crate::support::eventually(10, "the permit hears it is queued", || {
        let heard = heard.clone();
        async move { !heard.lock().unwrap().is_empty() }
    })
    .await;
    assert_eq!(
        heard.lock().unwrap()[0],
        Some(BlockedReason::NoSharedCapacity)
    );
    // A smaller reservation leaves a shared slot: the call is admitted.
    c3.set_reservations(
        "acme",
        "a",
        PerType {
            chat: 1,
            ..PerType::default()
        },
    )
    .await
    .unwrap();
    let permit = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("admitted once unblocked")
        .unwrap()
        .unwrap();
    assert_eq!(permit.call().slot, Some(Slot::Shared));
    permit.release().await.unwrap();
}
