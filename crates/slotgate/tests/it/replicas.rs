//! Several replicas of the real binary on one PostgreSQL database (issue 10):
//! one leads, the others forward to it, and together they answer exactly as
//! one server would, through a replica's death, a hand-over at shutdown and
//! clocks minutes apart.
//!
//! The database's own failures (stopped and started under load, a primary
//! failover) are in `tests/it/postgres.rs`, with three replicas too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::pg::PgCluster;
use crate::support::{eventually, Answer, Server};
use reqwest::Method;
use serde_json::{json, Value};
use slotgate_api::{Call, CallState, CallType, ErrorCode, EventKind, Org};

/// `n` replicas on `db`, each with its environment from `env(i)`; the first
/// leads (it starts first and finds the lead free).
async fn replicas(
    db: &PgCluster,
    n: usize,
    env: impl Fn(usize) -> Vec<(&'static str, String)>,
) -> Vec<Server> {
    replicas_with(db, n, env, |_| Vec::new()).await
}

/// [`replicas`], replica `i` started with the `serve` options `args(i)` too.
async fn replicas_with(
    db: &PgCluster,
    n: usize,
    env: impl Fn(usize) -> Vec<(&'static str, String)>,
    args: impl Fn(usize) -> Vec<String>,
) -> Vec<Server> {
    let url = db.url();
    let mut out = Vec::new();
    for i in 0..n {
        let env = env(i);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let args = args(i);
        let args: Vec<&str> = ["--store", url.as_str()]
            .into_iter()
            .chain(args.iter().map(String::as_str))
            .collect();
        out.push(Server::start_on_with_env(None, &args, &env).await);
    }
    out
}

async fn healthz(s: &Server) -> (u16, String) {
    match s.anon.get(s.url("/healthz")).send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

/// A small deterministic generator, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// An answer as comparable across servers: its status and its body without
/// what depends on when it ran (times, waits, estimates).
fn comparable(a: &Answer) -> (u16, Value) {
    (a.status, timeless(a.value()))
}

fn timeless(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| {
                    k != "at" && !k.ends_with("_at") && k != "waited_ms" && k != "estimated_wait_s"
                })
                .map(|(k, v)| (k, timeless(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(timeless).collect()),
        other => other,
    }
}

/// One random operation of the API: (method, path, body).
fn random_op(rng: &mut Rng) -> (Method, String, Option<Value>) {
    let org = ["o1", "o2"][rng.below(2) as usize];
    let id = format!("c{}", rng.below(10));
    let agent = ["a", "b"][rng.below(2) as usize];
    let types = ["webcall", "chat", "outbound", "inbound"];
    let kind = types[rng.below(4) as usize];
    match rng.below(20) {
        0..=8 => (
            Method::POST,
            format!("/v1/orgs/{org}/calls"),
            Some(json!({"id": id, "agent": agent, "type": kind, "lease_ttl_s": 600})),
        ),
        9..=13 => (Method::DELETE, format!("/v1/orgs/{org}/calls/{id}"), None),
        14 => (
            Method::POST,
            format!("/v1/orgs/{org}/calls/{id}/heartbeat"),
            None,
        ),
        15 => (
            Method::PUT,
            format!("/v1/orgs/{org}/limit"),
            Some(json!({"limit": rng.below(5)})),
        ),
        16 => (
            Method::PUT,
            format!("/v1/orgs/{org}/agents/{agent}/reservations"),
            Some(json!({kind: rng.below(3)})),
        ),
        17 => (Method::GET, format!("/v1/orgs/{org}/calls/{id}"), None),
        18 => (Method::GET, format!("/v1/orgs/{org}"), None),
        _ => (Method::GET, format!("/v1/orgs/{org}/calls?limit=100"), None),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_answer_every_request_as_one_server_would() {
    let db = PgCluster::start().await;
    let three = replicas(&db, 3, |_| Vec::new()).await;
    // The reference: one server on the embedded store, sent the same requests.
    let one = Server::start_on(None, &[]).await;
    for s in [&one, &three[0]] {
        s.create_org("o1", 3).await;
        s.create_org("o2", 2).await;
    }
    let mut rng = Rng(0x5eed_1234_abcd);
    for step in 0..240 {
        let (method, path, body) = random_op(&mut rng);
        let replica = rng.below(3) as usize;
        let want = one.op(method.clone(), &path, body.as_ref()).await;
        let got = three[replica]
            .op(method.clone(), &path, body.as_ref())
            .await;
        assert_eq!(
            comparable(&got),
            comparable(&want),
            "step {step}: {method} {path} {body:?} through replica {replica}\n one server: {want}\n replicas: {got}"
        );
    }
    // Every replica shows the same orgs, calls and event log as the one server.
    for org in ["o1", "o2"] {
        let want_org: Org = one.org(org).await;
        let want_calls = timeless(serde_json::to_value(one.all_calls(org).await).unwrap());
        let want_events = timeless(serde_json::to_value(one.all_events(org).await).unwrap());
        for (i, s) in three.iter().enumerate() {
            assert_eq!(s.org(org).await, want_org, "org {org} on replica {i}");
            let calls = timeless(serde_json::to_value(s.all_calls(org).await).unwrap());
            assert_eq!(calls, want_calls, "calls of {org} on replica {i}");
            let events = timeless(serde_json::to_value(s.all_events(org).await).unwrap());
            assert_eq!(events, want_events, "events of {org} on replica {i}");
        }
    }
    // One leads; the others say whom they forward to, and keep metrics of their own.
    assert_eq!(healthz(&three[0]).await, (200, "ok\n".into()));
    let metrics = |s: &Server| {
        let url = s.url("/metrics");
        let http = s.client.clone();
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let leader = metrics(&three[0]).await;
    assert!(leader.contains("slotgate_replica_leads 1"), "{leader}");
    assert!(leader.contains("slotgate_store_up 1"), "{leader}");
    assert!(
        leader.contains("slotgate_org_limit{org=\"o1\"}"),
        "{leader}"
    );
    for s in &three[1..] {
        let (status, text) = healthz(s).await;
        assert_eq!(status, 200);
        assert!(text.contains(&three[0].base), "{text}");
        let own = metrics(s).await;
        assert!(own.contains("slotgate_replica_leads 0"), "{own}");
        // Its database works, though another replica leads.
        assert!(own.contains("slotgate_store_up 1"), "{own}");
        assert!(!own.contains("slotgate_org_limit{"), "{own}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_on_one_replica_is_answered_when_a_call_ends_through_another() {
    let db = PgCluster::start().await;
    let r = replicas(&db, 3, |_| Vec::new()).await;
    r[0].create_org("acme", 1).await;
    r[1].acquire("acme", "first", "A", CallType::Chat)
        .await
        .ok(201);
    let queued = r[2]
        .acquire("acme", "second", "A", CallType::Chat)
        .await
        .ok(202);
    assert_eq!(queued.json::<Call>().position, Some(1));

    // A long-poll held on replica 1 (a follower) ...
    let waiter = Arc::new(r.into_iter().collect::<Vec<_>>());
    let w = waiter.clone();
    let poll = tokio::spawn(async move {
        let a = w[1]
            .op(Method::GET, "/v1/orgs/acme/calls/second?wait_s=30", None)
            .await;
        (a, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !poll.is_finished(),
        "the long-poll waits while the call is queued"
    );
    // ... is answered when the first call ends through replica 2.
    let released = Instant::now();
    waiter[2].release("acme", "first").await;
    let (a, answered) = poll.await.expect("the long-poll ran");
    let call: Call = a.ok(200).json();
    assert_eq!(call.state, CallState::Active);
    let took = answered.saturating_duration_since(released);
    eprintln!("long-poll on a follower answered {took:?} after the release was sent to another");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_held_through_a_replica_that_dies_runs_out_as_if_the_client_hung_up() {
    let db = PgCluster::start().await;
    let mut r = replicas(&db, 3, |_| Vec::new()).await;
    r[0].create_org("acme", 0).await;
    // A queued call, held by a long-poll of 30 s sent through replica 1.
    let body = json!({"id": "q1", "agent": "A", "type": "chat", "lease_ttl_s": 5, "wait_s": 30});
    let url = r[1].url("/v1/orgs/acme/calls");
    let http = r[1].client.clone();
    let poll = tokio::spawn(async move { http.post(url).json(&body).send().await });
    eventually(10, "q1 is queued", || async {
        let a = r[2].op(Method::GET, "/v1/orgs/acme/calls/q1", None).await;
        a.status == 200 && a.json::<Call>().state == CallState::Queued
    })
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        r[2].get_call("acme", "q1").await.state,
        CallState::Queued,
        "held by the open wait beyond its lease_ttl"
    );

    r[1].kill9().await;
    assert!(
        poll.await.expect("the poll ran").is_err(),
        "its replica died"
    );
    eventually(20, "q1 is abandoned", || async {
        r[2].get_call("acme", "q1").await.state == CallState::Ended
    })
    .await;
    let q1 = r[0].get_call("acme", "q1").await;
    assert_eq!(
        q1.end_reason.map(|e| e.as_str()),
        Some("abandoned"),
        "{q1:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_runs_out_with_no_traffic_ends_once_and_admits_the_next_call() {
    let db = PgCluster::start().await;
    let r = replicas(&db, 3, |_| Vec::new()).await;
    r[0].create_org("acme", 1).await;
    let body = json!({"id": "lost", "agent": "A", "type": "chat", "lease_ttl_s": 5});
    r[1].op(Method::POST, "/v1/orgs/acme/calls", Some(&body))
        .await
        .ok(201);
    let deadline = Instant::now() + Duration::from_secs(5);
    let body = json!({"id": "next", "agent": "A", "type": "chat", "lease_ttl_s": 600});
    r[2].op(Method::POST, "/v1/orgs/acme/calls", Some(&body))
        .await
        .ok(202);
    // Keep `next` held with a heartbeat; nothing else is sent.
    tokio::time::sleep(Duration::from_secs(4)).await;
    r[1].op(Method::POST, "/v1/orgs/acme/calls/next/heartbeat", None)
        .await
        .ok(200);
    // How long after its deadline the lease is seen ended (issue 10: within
    // 1 s, aim 250 ms); printed, not asserted, as a timing.
    while r[0].get_call("acme", "lost").await.state != CallState::Ended {
        assert!(
            Instant::now() < deadline + Duration::from_secs(30),
            "the lease never ran out"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "the lease was seen ended {:?} after its deadline (as the client's clock has it)",
        Instant::now().saturating_duration_since(deadline)
    );

    for (i, s) in r.iter().enumerate() {
        assert_eq!(
            s.get_call("acme", "lost").await.state,
            CallState::Ended,
            "replica {i}"
        );
        assert_eq!(
            s.get_call("acme", "next").await.state,
            CallState::Active,
            "replica {i}"
        );
    }
    let events = r[2].all_events("acme").await;
    let ended: Vec<_> = events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::CallEnded { call, .. } if call == "lost"))
        .collect();
    let admitted: Vec<_> = events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::CallAdmitted { call, .. } if call == "next"))
        .collect();
    assert_eq!(
        (ended.len(), admitted.len()),
        (1, 1),
        "once each: {events:?}"
    );
    assert!(
        matches!(&ended[0].kind, EventKind::CallEnded { reason, .. } if reason.as_str() == "expired"),
        "{:?}",
        ended[0]
    );
}

/// Acquires new ids, each on the next replica in turn, until `stop`; on a
/// 503 or no answer, retries the same id on the next replica. Returns the
/// ids acknowledged and every id ever sent.
async fn acquire_round_robin(
    r: Arc<Vec<Server>>,
    live: Vec<usize>,
    stop: Arc<AtomicBool>,
) -> (Vec<String>, Vec<String>) {
    let (mut acked, mut sent) = (Vec::new(), Vec::new());
    let mut turn = 0;
    for i in 1.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let id = format!("c{i}");
        sent.push(id.clone());
        let body = json!({"id": id, "agent": "A", "type": "chat", "lease_ttl_s": 600}).to_string();
        loop {
            let s = &r[live[turn % live.len()]];
            turn += 1;
            let a = s
                .try_send(
                    Some(crate::support::OPERATOR_KEY),
                    Method::POST,
                    "/v1/orgs/acme/calls",
                    Some(body.clone()),
                )
                .await;
            match a {
                // 200: a retry of a call whose first answer was lost with the leader.
                Ok(a)
                    if a.status == 201
                        || (a.status == 200 && a.json::<Call>().state == CallState::Active) =>
                {
                    acked.push(id.clone());
                    break;
                }
                Ok(a) if a.status == 503 => {
                    assert_eq!(a.refusal().1, ErrorCode::StoreUnavailable, "{a}");
                }
                Ok(a) => panic!("neither admitted nor store_unavailable: {a}"),
                Err(_) => {}
            }
            if stop.load(Ordering::SeqCst) {
                return (acked, sent);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (acked, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_killed_mid_stream_loses_no_acknowledged_change_and_skewed_clocks_change_nothing(
) {
    let db = PgCluster::start().await;
    // The followers' clocks are ten minutes off, either way: whoever leads
    // keeps the database's time.
    let skew = |i: usize| match i {
        0 => Vec::new(),
        1 => vec!["--clock-skew-ms=600000".to_string()],
        _ => vec!["--clock-skew-ms=-600000".to_string()],
    };
    let r = replicas_with(&db, 3, |_| Vec::new(), skew).await;
    r[0].create_org("acme", 100_000).await;
    let r = Arc::new(r);
    let stop = Arc::new(AtomicBool::new(false));
    // The stream goes through the followers, whose forwards fail while nobody leads.
    let load = tokio::spawn(acquire_round_robin(r.clone(), vec![1, 2], stop.clone()));
    tokio::time::sleep(Duration::from_millis(800)).await;

    let pid = r[0].pid();
    let killed = Instant::now();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill(1) runs");
    eventually(30, "a follower leads", || async {
        healthz(&r[1]).await == (200, "ok\n".into()) || healthz(&r[2]).await == (200, "ok\n".into())
    })
    .await;
    let took_over = killed.elapsed();
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::SeqCst);
    let (acked, sent) = load.await.expect("the load ran");

    // Every acknowledged call is there, and nothing that was never sent.
    let calls = r[1].all_calls("acme").await;
    let held: Vec<&str> = calls.iter().map(|c| c.id.as_str()).collect();
    for id in &acked {
        assert!(held.contains(&id.as_str()), "acknowledged {id} is lost");
    }
    for id in &held {
        assert!(sent.iter().any(|s| s == id), "{id} was never sent");
    }
    assert!(
        acked.len() > 10,
        "the stream ran: {} acknowledged",
        acked.len()
    );
    // The times are the database's, whichever replica decided.
    let client = db.connect().await;
    let now: i64 = client
        .query_one(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
            &[],
        )
        .await
        .expect("the database's clock")
        .get(0);
    for c in &calls {
        let at =
            humantime::parse_rfc3339(c.admitted_at.as_deref().expect("active")).expect("a time");
        let at = at
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!(
            (now - at).abs() < 60_000,
            "{} admitted at {at}, the database says {now}",
            c.id
        );
    }
    eprintln!(
        "leader killed: a follower led {took_over:?} later; {} acknowledged of {} sent",
        acked.len(),
        sent.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_with_sigterm_hands_over_at_once() {
    let db = PgCluster::start().await;
    let mut r = replicas(&db, 2, |_| Vec::new()).await;
    r[0].create_org("acme", 5).await;
    r[1].acquire("acme", "c1", "A", CallType::Chat)
        .await
        .ok(201);
    let stopped = Instant::now();
    assert!(r[0].terminate().await.success());
    eventually(10, "the other replica leads", || async {
        healthz(&r[1]).await == (200, "ok\n".into())
    })
    .await;
    eprintln!(
        "SIGTERM to the leader: the other replica led {:?} later",
        stopped.elapsed()
    );
    assert!(
        r[0].stderr().contains("gave up the lead"),
        "{}",
        r[0].stderr()
    );
    assert_eq!(r[1].get_call("acme", "c1").await.state, CallState::Active);
    r[1].acquire("acme", "c2", "A", CallType::Chat)
        .await
        .ok(201);
}

/// A follower is ready only while the leader it forwards to answers: one
/// that cannot reach it (here the leader advertises an address nobody
/// listens on) says so on `/healthz`, and answers its requests 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_cannot_reach_the_leader_is_not_ready() {
    let db = PgCluster::start().await;
    let nobody = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let r = replicas(&db, 2, |i| match i {
        0 => vec![("SLOTGATE_ADVERTISE_URL", nobody.clone())],
        _ => Vec::new(),
    })
    .await;
    assert_eq!(healthz(&r[0]).await, (200, "ok\n".into()));
    let (status, body) = healthz(&r[1]).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains(&nobody),
        "names the leader it cannot reach: {body}"
    );
    let a = r[1].op(Method::GET, "/v1/orgs", None).await;
    assert_eq!(a.status, 503, "{a}");
    // Through the leader itself, all is well.
    r[0].op(Method::GET, "/v1/orgs", None).await.ok(200);
}

/// A replica that loses the lead while it holds a wait (here it is paused
/// beyond its lease, as a stalled machine would be) answers that wait as
/// soon as it runs again and finds another leads, so the client's next poll
/// opens its wait on the new leader and the queued call stays held there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_on_a_replica_that_loses_the_lead_moves_to_the_new_leader() {
    let db = PgCluster::start().await;
    let r = replicas(&db, 2, |_| Vec::new()).await;
    r[0].create_org("acme", 0).await;
    // A client that polls through replica 1 until admitted, as the clients
    // do: 202 (still queued) polls again, 503 retries.
    let body = json!({"id": "q1", "agent": "A", "type": "chat", "lease_ttl_s": 5, "wait_s": 30});
    let url = r[1].url("/v1/orgs/acme/calls");
    let http = r[1].client.clone();
    let client = tokio::spawn(async move {
        loop {
            match http.post(&url).json(&body).send().await {
                Ok(a) if a.status() == 202 || a.status() == 503 => {}
                Ok(a) => return a.status().as_u16(),
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    eventually(10, "q1 is queued", || async {
        let a = r[1].op(Method::GET, "/v1/orgs/acme/calls/q1", None).await;
        a.status == 200 && a.json::<Call>().state == CallState::Queued
    })
    .await;

    // And an event stream read from the leader itself.
    let stream = r[0]
        .client
        .get(r[0].url("/v1/orgs/acme/events/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let stream = tokio::spawn(stream.bytes());

    let signal = |name: &str| {
        let pid = r[0].pid().to_string();
        let ok = std::process::Command::new("kill")
            .args([name, pid.as_str()])
            .status()
            .expect("kill runs");
        assert!(ok.success(), "kill {name} {pid}");
    };
    signal("-STOP");
    eventually(20, "replica 1 leads", || async {
        healthz(&r[1]).await == (200, "ok\n".into())
    })
    .await;
    signal("-CONT");
    // Beyond q1's lease_ttl from the takeover: only a wait open on the new
    // leader holds it.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let q1 = r[1].get_call("acme", "q1").await;
    assert_eq!(q1.state, CallState::Queued, "{q1:?}");
    assert!(!client.is_finished(), "the client still polls");
    client.abort();
    // The stream on the replica that lost the lead has ended (its client
    // reconnects, through any replica, with Last-Event-ID).
    let ended = tokio::time::timeout(Duration::from_secs(30), stream).await;
    assert!(ended.is_ok(), "the event stream on the old leader ended");
}

/// Takeover after `kill -9` of the leader, measured: ten times, three
/// replicas, a stream of acquires through the others; from the kill to the
/// first 2xx through a replica that was following. Prints the median and
/// the worst (BENCHMARKS.md, "Takeover after kill -9"); asserts only that
/// nothing acknowledged is lost. Run it with
/// `cargo test -p slotgate --test it -- --ignored --nocapture replicas::takeover`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it by name"]
async fn takeover_after_kill_9_measured() {
    let db = PgCluster::start().await;
    let mut r = replicas(&db, 3, |_| Vec::new()).await;
    r[0].create_org("acme", 1_000_000).await;
    let mut took = Vec::new();
    let mut n = 0;
    for round in 0..10 {
        // Who leads: the one whose /healthz says "ok" alone, once the
        // others forward to it (a follower that has not yet read the new
        // leader row still forwards to the replica killed last round).
        let asked = Instant::now();
        let leader = loop {
            let mut said = Vec::new();
            for s in &r {
                said.push(healthz(s).await);
            }
            let leader = said.iter().position(|h| *h == (200, "ok\n".into()));
            if let Some(leader) = leader.filter(|_| said.iter().all(|(status, _)| *status == 200)) {
                break leader;
            }
            assert!(
                asked.elapsed() < Duration::from_secs(30),
                "one replica leads and the others forward to it: {said:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
        // A few acquires through the followers, then the kill, then acquires
        // through them until one is acknowledged.
        for _ in 0..5 {
            n += 1;
            r[others[n % 2]]
                .acquire("acme", &format!("c{n}"), "A", CallType::Chat)
                .await
                .ok(201);
        }
        r[leader].kill9().await;
        let killed = Instant::now();
        n += 1;
        let id = format!("c{n}");
        let body = json!({"id": id, "agent": "A", "type": "chat", "lease_ttl_s": 600}).to_string();
        let mut turn = 0;
        loop {
            assert!(
                killed.elapsed() < Duration::from_secs(30),
                "nobody took over"
            );
            turn += 1;
            let a = r[others[turn % 2]]
                .try_send(
                    Some(crate::support::OPERATOR_KEY),
                    Method::POST,
                    "/v1/orgs/acme/calls",
                    Some(body.clone()),
                )
                .await;
            match a {
                Ok(a) if a.status == 201 || a.status == 200 => break,
                Ok(a) => assert_eq!(a.refusal().1, ErrorCode::StoreUnavailable, "{a}"),
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let t = killed.elapsed();
        eprintln!(
            "kill {}: a follower acknowledged a change {t:?} after the kill",
            round + 1
        );
        took.push(t);
        r[leader].restart().await;
    }
    // Nothing acknowledged is lost.
    let held = r[0].all_calls("acme").await;
    assert_eq!(held.len(), n, "every acknowledged call is there");
    took.sort();
    eprintln!(
        "takeover after kill -9, 10 kills: median {:?}, worst {:?}",
        (took[4] + took[5]) / 2,
        took[9]
    );
}

/// The leader row rewritten (by anyone who can write to the database) to a
/// listener of the test's own, which answers everything as a leader's
/// `/healthz` would: the follower sends it a proof request only, never a
/// client's request or key, answers 503 `store_unavailable` saying why, and
/// so does its `/healthz`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_forwards_nothing_to_a_leader_that_does_not_prove_it_is_a_replica() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = PgCluster::start().await;
    let r = replicas(&db, 2, |_| Vec::new()).await;
    r[0].create_org("acme", 1).await;
    let fake = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_url = format!("http://{}", fake.local_addr().unwrap());
    let got = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let heard = got.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = fake.accept().await {
            let heard = heard.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let read = Duration::from_secs(2);
                while let Ok(Ok(n @ 1..)) = tokio::time::timeout(read, sock.read(&mut buf)).await {
                    heard.lock().unwrap().extend_from_slice(&buf[..n]);
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";
                    if sock.write_all(ok).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    db.connect()
        .await
        .execute("UPDATE slotgate_leader SET url = $1", &[&fake_url])
        .await
        .expect("the leader row rewritten");
    eventually(10, "the follower refuses to forward", || async {
        r[1].op(Method::GET, "/v1/orgs/acme", None).await.status == 503
    })
    .await;
    let body = json!({"id": "c1", "agent": "A", "type": "chat"});
    let a = r[1]
        .op(Method::POST, "/v1/orgs/acme/calls", Some(&body))
        .await;
    assert_eq!(a.refusal().1, ErrorCode::StoreUnavailable, "{a}");
    let said = a.to_string();
    assert!(
        said.contains(&fake_url) && said.contains("did not prove"),
        "{said}"
    );
    let (status, text) = healthz(&r[1]).await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("did not prove"), "{text}");
    let heard = String::from_utf8_lossy(&got.lock().unwrap()).into_owned();
    assert!(
        heard.contains("/internal/replica/proof"),
        "asked for a proof: {heard}"
    );
    assert!(
        !heard.contains(crate::support::OPERATOR_KEY),
        "a key reached it: {heard}"
    );
    assert!(!heard.to_lowercase().contains("authorization"), "{heard}");
    assert!(
        !heard.contains("/v1/"),
        "a client's request reached it: {heard}"
    );
}

/// A replica whose secret is not the leader's forwards nothing: 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_with_another_secret_forwards_nothing() {
    let db = PgCluster::start().await;
    let other = "another-replica-secret-0123456789abcdefghij".to_string();
    let r = replicas(&db, 2, |i| match i {
        0 => Vec::new(),
        _ => vec![("SLOTGATE_REPLICA_SECRET", other.clone())],
    })
    .await;
    r[0].create_org("acme", 1).await;
    let a = r[1].op(Method::GET, "/v1/orgs/acme", None).await;
    assert_eq!(a.refusal().1, ErrorCode::StoreUnavailable, "{a}");
    assert!(a.to_string().contains("did not prove"), "{a}");
    assert_eq!(healthz(&r[1]).await.0, 503);
    r[0].op(Method::GET, "/v1/orgs/acme", None).await.ok(200);
}

/// The leader believes a follower about the client's address only with the
/// follower's proof (the replicas' secret): failed authentications through
/// a follower count against the address the follower saw (here from
/// `X-Forwarded-For`, which only the follower believes), not against the
/// follower; a request that says it was forwarded, sent to the leader
/// without a replica's proof or with one already taken (a replay), is
/// refused 403 and nothing is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_believes_only_a_proven_follower_about_the_client() {
    let db = PgCluster::start().await;
    let r = replicas(&db, 2, |i| {
        let mut env = vec![("SLOTGATE_AUTH_FAILURES", "3".to_string())];
        if i == 1 {
            env.push(("SLOTGATE_TRUSTED_PROXY", "127.0.0.1".to_string()));
        }
        env
    })
    .await;
    let through_follower = |from: &'static str| {
        let req = r[1]
            .anon
            .get(r[1].url("/v1/orgs"))
            .bearer_auth("not-a-key-anybody-issued")
            .header("x-forwarded-for", from);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(through_follower("203.0.113.9").await);
    }
    assert_eq!(seen[0], 401, "{seen:?}");
    assert_eq!(seen[4], 429, "throttled after 3 failures: {seen:?}");
    assert_eq!(
        through_follower("203.0.113.10").await,
        401,
        "another client through the same follower is not throttled"
    );

    let body = json!({"id": "forged", "limit": 1}).to_string();
    for proof in [
        None,
        Some(format!(
            "1 0123456789abcdef0123456789abcdef 198.51.100.7 {}",
            "0".repeat(64)
        )),
    ] {
        let mut req = r[0]
            .anon
            .post(r[0].url("/v1/orgs"))
            .bearer_auth(crate::support::OPERATOR_KEY)
            .header("content-type", "application/json")
            .header("x-slotgate-forwarded", "1")
            .body(body.clone());
        if let Some(p) = proof {
            req = req.header("x-slotgate-replica", p);
        }
        let a = Answer::read(req.send().await.unwrap()).await.unwrap();
        assert_eq!(a.refusal(), (403, ErrorCode::Forbidden), "{a}");
        assert!(a.to_string().contains("replica proof"), "{a}");
    }
    let a = r[0].op(Method::GET, "/v1/orgs/forged", None).await;
    assert_eq!(a.refusal().1, ErrorCode::OrgNotFound, "{a}");

    // A valid proof, as a follower makes it, is taken once: the same proof
    // sent again (as by someone who captured it, with another body) is
    // refused 403 and nothing is done.
    let term: i64 = db
        .connect()
        .await
        .query_one("SELECT term FROM slotgate_leader WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    let proof = slotgate::replication::trust::Trust::new(crate::support::REPLICA_SECRET, "")
        .prove_request(
            term,
            slotgate::clock::system_ms(),
            "198.51.100.7".parse().unwrap(),
            "POST",
            "/v1/orgs",
        );
    let forwarded = |id: &str| {
        r[0].anon
            .post(r[0].url("/v1/orgs"))
            .bearer_auth(crate::support::OPERATOR_KEY)
            .header("content-type", "application/json")
            .header("x-slotgate-forwarded", "1")
            .header("x-slotgate-replica", &proof)
            .body(json!({"id": id, "limit": 1}).to_string())
            .send()
    };
    let a = Answer::read(forwarded("proven").await.unwrap())
        .await
        .unwrap();
    assert_eq!(a.status, 201, "a proven forwarded request is served: {a}");
    let a = Answer::read(forwarded("replayed").await.unwrap())
        .await
        .unwrap();
    assert_eq!(a.refusal(), (403, ErrorCode::Forbidden), "{a}");
    let a = r[0].op(Method::GET, "/v1/orgs/replayed", None).await;
    assert_eq!(a.refusal().1, ErrorCode::OrgNotFound, "{a}");
}

/// Usage by hour goes on through a takeover: the new leader's writer seeds
/// the org from the stored hour (`store/usage_rows.rs`), not from zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_goes_on_from_the_stored_hour_after_a_takeover() {
    let db = PgCluster::start().await;
    let mut r = replicas(&db, 2, |_| Vec::new()).await;
    r[0].create_org("acme", 1).await;
    r[1].acquire("acme", "c1", "A", CallType::Chat)
        .await
        .ok(201);
    r[1].acquire("acme", "c2", "A", CallType::Inbound)
        .await
        .ok(202);
    r[1].acquire("acme", "c3", "A", CallType::Chat)
        .await
        .ok(202);
    r[1].release("acme", "c3").await;
    r[1].release("acme", "c1").await;
    // Admitted, waited, gave up: summed over the hours (the test may cross one's end).
    let counts = |u: slotgate_api::Usage| {
        u.steps.iter().fold((0, 0, 0), |(a, w, g), s| {
            let f = s.overall;
            (a + f.admitted, w + f.waited, g + f.gave_up)
        })
    };
    assert_eq!(counts(r[1].get("/v1/orgs/acme/usage").await), (2, 1, 1));

    r[0].kill9().await;
    eventually(15, "the other replica leads", || async {
        healthz(&r[1]).await == (200, "ok\n".into())
    })
    .await;
    r[1].acquire("acme", "c4", "A", CallType::Chat)
        .await
        .ok(202);
    r[1].release("acme", "c2").await;
    assert_eq!(
        counts(r[1].get("/v1/orgs/acme/usage").await),
        (3, 2, 1),
        "counted on from the stored hour"
    );
}

/// HTTPS between replicas (issue 21): replicas serving HTTPS advertise
/// `https://` URLs, and a follower forwards to the leader over HTTPS,
/// checking its certificate against `--replica-ca`; a follower that does
/// not trust it (another CA) answers 503 `store_unavailable` saying why,
/// and the leader gets nothing from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_https_forward_over_https_only_to_a_certificate_they_trust() {
    use crate::support::tls::TestCa;
    let db = PgCluster::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(tmp.path(), "replicas");
    let other = TestCa::new(tmp.path(), "other");
    let (cert, key) = ca.issue("replica", "slotgate", &["127.0.0.1", "localhost"]);
    let url = db.url();
    let mut replicas = Vec::new();
    for (i, trusted) in [&ca, &ca, &other].into_iter().enumerate() {
        let args: Vec<String> = [
            "--store",
            &url,
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--replica-ca",
            trusted.cert_path().to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec();
        let dir = tmp.path().join(format!("data{i}"));
        let (child, port, log) = crate::support::spawn_with(&dir, &args, &[]).await;
        replicas.push((child, format!("https://127.0.0.1:{port}"), log));
    }
    let roots = {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_file_iter(ca.cert_path()).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        roots
    };
    #[allow(deprecated)] // ring, as the server's
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let http = crate::support::http_builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let send = |i: usize, method: Method, path: &str, body: Option<Value>| {
        let mut req = http
            .request(method, format!("{}{path}", replicas[i].1))
            .bearer_auth(crate::support::OPERATOR_KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move { Answer::read(req.send().await.unwrap()).await.unwrap() }
    };
    let healthz = |i: usize| {
        let req = http.get(format!("{}/healthz", replicas[i].1));
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(healthz(0).await, (200, "ok\n".into()), "the first leads");
    let leader = &replicas[0].1;
    let (status, text) = healthz(1).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains(leader),
        "forwards to the https:// URL: {text}"
    );

    // Through the follower that trusts the leader's certificate.
    let body = json!({"id": "acme", "limit": 1});
    send(1, Method::POST, "/v1/orgs", Some(body)).await.ok(201);
    send(0, Method::GET, "/v1/orgs/acme", None).await.ok(200);

    // The follower that trusts another CA forwards nothing, and says why.
    let body = json!({"id": "untrusted", "limit": 1});
    let a = send(2, Method::POST, "/v1/orgs", Some(body)).await;
    assert_eq!(a.refusal(), (503, ErrorCode::StoreUnavailable), "{a}");
    assert!(
        a.to_string().contains("UnknownIssuer") && a.to_string().contains("--replica-ca"),
        "says why: {a}"
    );
    let (status, text) = healthz(2).await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
    let a = send(0, Method::GET, "/v1/orgs/untrusted", None).await;
    assert_eq!(
        a.refusal().1,
        ErrorCode::OrgNotFound,
        "nothing reached the leader: {a}"
    );

    // A --replica-ca that holds no certificate: serve refuses to start, naming it.
    let missing = tmp.path().join("no-such-ca.pem");
    let out = crate::support::serve_command("127.0.0.1:0", &tmp.path().join("data9"))
        .args(["--store", &url, "--replica-ca", missing.to_str().unwrap()])
        .output()
        .expect("slotgate runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--replica-ca") && err.contains("no-such-ca.pem"),
        "{err}"
    );
}
