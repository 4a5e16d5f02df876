//! End to end: the real `slotgate serve` binary on a free port with a fresh
//! data directory, driven over HTTP as a user would (see `support/mod.rs`).
//! Killed with -9, or stopped with SIGTERM, and restarted where durability is
//! the point. No assertion depends on wall-clock timing; waits are generous.
//! Answers are read as the API's types (`slotgate_api`); raw JSON is read only
//! where the wire format itself is the point, and says so.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::support::{eventually, q, Answer, Server, OPERATOR_KEY};
use reqwest::Method;
use serde_json::{json, Value};
use slotgate_api::{Call, CallState, CallType, EndReason, ErrorBody, ErrorCode, EventKind};
use slotgate_api::{KeyList, NewKey, Org, PerType, Role, Slot};

use CallState::{Active, Ended, Queued};
use CallType::{Chat, Inbound, Outbound, Webcall};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `[limit, reserved, shared, active, queued, shared_in_use]` of an org snapshot.
fn figures(o: &Org) -> [u32; 6] {
    [
        o.limit,
        o.reserved,
        o.shared,
        o.active,
        o.queued,
        o.shared_in_use,
    ]
}

/// `[active, queued, shared_in_use]` of an org snapshot.
fn load(o: &Org) -> [u32; 3] {
    [o.active, o.queued, o.shared_in_use]
}

/// The fields of a call that an idempotent answer must repeat exactly.
fn stable(mut c: Call) -> Call {
    // A retry counts as a sign of life and may renew the lease or the hold.
    c.lease_expires_at = None;
    c.hold_expires_at = None;
    c
}

// ---------------------------------------------------------------------------
// 1. The seed scenario of SEMANTICS.md, step by step
// ---------------------------------------------------------------------------

/// acme with limit 20; A reserves 12 (2 webcall, 3 chat, 4 outbound, 3 inbound), B 5.
async fn seed_org(s: &Server) {
    s.create_org("acme", 20).await;
    let a = json!({"webcall": 2, "chat": 3, "outbound": 4, "inbound": 3});
    assert_eq!(s.reserve("acme", "A", a).await.reserved_total, 12);
    let b = json!({"webcall": 1, "chat": 1, "outbound": 2, "inbound": 1});
    assert_eq!(s.reserve("acme", "B", b).await.reserved_total, 5);
    assert_eq!(figures(&s.org("acme").await), [20, 17, 3, 0, 0, 0]);
}

/// Steps 1 to 3: reserved slots first, then shared, and a reservation holds
/// even when shared is full.
async fn seed_fill(s: &Server) {
    // 1. A's 12 calls, one per reserved slot of their type: all reserved.
    //    a1-a2 webcall, a3-a5 chat, a6-a9 outbound, a10-a12 inbound.
    let mut n = 0;
    for (t, count) in [(Webcall, 2), (Chat, 3), (Outbound, 4), (Inbound, 3)] {
        for _ in 0..count {
            n += 1;
            let r = s.acquire("acme", &format!("a{n}"), "A", t).await;
            let want = (201, Active, Some(Slot::Reserved), None);
            assert_eq!(r.brief(), want, "a{n}: {r}");
        }
    }
    assert_eq!(load(&s.org("acme").await), [12, 0, 0], "step 1");

    // 2. Three more inbound calls of A: shared.
    for i in 13..=15 {
        let r = s.acquire("acme", &format!("a{i}"), "A", Inbound).await;
        let want = (201, Active, Some(Slot::Shared), None);
        assert_eq!(r.brief(), want, "a{i}: {r}");
    }
    assert_eq!(load(&s.org("acme").await), [15, 0, 3], "step 2");
    let a = s.agent("acme", "A").await;
    let a_use = [a.reserved_total, a.reserved_in_use, a.shared_in_use];
    assert_eq!(a_use, [12, 12, 3]);
    let active = PerType {
        webcall: 2,
        chat: 3,
        outbound: 4,
        inbound: 6,
    };
    assert_eq!(a.active, active);

    // 3. B's five calls matching its reservation: reserved, although shared is full.
    for (i, t) in [Webcall, Chat, Outbound, Outbound, Inbound]
        .into_iter()
        .enumerate()
    {
        let r = s.acquire("acme", &format!("b{}", i + 1), "B", t).await;
        let want = (201, Active, Some(Slot::Reserved), None);
        assert_eq!(r.brief(), want, "b{}: {r}", i + 1);
    }
    assert_eq!(load(&s.org("acme").await), [20, 0, 3], "step 3");
}

/// Step 4: the org is at 20: any further call of A, B or C queues.
async fn seed_queue(s: &Server) {
    let calls = [
        ("c1", "C", Chat),
        ("b6", "B", Webcall),
        ("a16", "A", Chat),
        ("a17", "A", Chat),
    ];
    for (i, (id, agent, t)) in calls.into_iter().enumerate() {
        let r = s.acquire("acme", id, agent, t).await;
        let want = (202, Queued, None, Some(i as u64 + 1));
        assert_eq!(r.brief(), want, "{id}: {r}");
    }
    assert_eq!(load(&s.org("acme").await), [20, 4, 3], "step 4");
    let want = q(&["c1", "b6", "a16", "a17"]);
    assert_eq!(s.queue("acme").await, want, "step 4");
}

/// Step 5: a freed slot goes to the call the rules name.
async fn seed_hand_on(s: &Server) {
    // An inbound call of A above its reservation ends (6 active, 3 reserved):
    // the shared slot goes to the oldest queued call of the org, C's.
    let ended = s.release("acme", "a13").await;
    assert_eq!(
        (ended.state, ended.end_reason),
        (Ended, Some(EndReason::Released))
    );
    let c1 = s.get_call("acme", "c1").await;
    assert_eq!((c1.state, c1.slot), (Active, Some(Slot::Shared)), "{c1:?}");
    assert_eq!(load(&s.org("acme").await), [20, 3, 3], "step 5");
    assert_eq!(s.queue("acme").await, q(&["b6", "a16", "a17"]), "step 5");

    // One of A's reserved chat calls ends (3 active, 3 reserved): only the
    // oldest queued call of (A, chat) may take it, not the older b6.
    s.release("acme", "a4").await;
    let a16 = s.get_call("acme", "a16").await;
    let want = (Active, Some(Slot::Reserved));
    assert_eq!((a16.state, a16.slot), want, "{a16:?}");
    assert_eq!(load(&s.org("acme").await), [20, 2, 3], "step 5b");
    assert_eq!(s.queue("acme").await, q(&["b6", "a17"]), "step 5b");
}

/// Step 6: B goes idle (its queued call cancelled, its five released): five
/// free reserved slots, shared full. C's next call queues; B's slots stay B's.
async fn seed_b_idle(s: &Server) {
    let b6 = s.release("acme", "b6").await;
    assert_eq!(b6.end_reason, Some(EndReason::Cancelled), "{b6:?}");
    for i in 1..=5 {
        s.release("acme", &format!("b{i}")).await;
    }
    assert_eq!(load(&s.org("acme").await), [15, 1, 3], "B idle");
    let r = s.acquire("acme", "c2", "C", Chat).await;
    assert_eq!(r.brief(), (202, Queued, None, Some(2)), "c2: {r}");
    let snap = s.org("acme").await;
    let want = [20, 17, 3, 15, 2, 3];
    assert_eq!(figures(&snap), want, "step 6: {snap:?}");
    assert_eq!(s.queue("acme").await, q(&["a17", "c2"]), "step 6");
    let b = s.agent("acme", "B").await;
    let b_use = [b.reserved_total, b.reserved_in_use, b.shared_in_use];
    assert_eq!(b_use, [5, 0, 0], "{b:?}");
    let agents: Vec<&str> = snap.agents.iter().map(|a| a.id.as_str()).collect();
    for id in ["A", "B", "C"] {
        assert!(agents.contains(&id), "{id} is listed: {snap:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_scenario_walk_through_over_http() {
    let s = Server::start().await;
    seed_org(&s).await;
    seed_fill(&s).await;
    seed_queue(&s).await;
    seed_hand_on(&s).await;
    seed_b_idle(&s).await;
}

// ---------------------------------------------------------------------------
// 2. Lease expiry hands the slot to a long-polling waiter
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn lease_expiry_hands_the_slot_to_a_long_polling_waiter() {
    let s = Server::start().await;
    s.create_org("acme", 1).await;
    let body = json!({"id": "a1", "agent": "A", "type": "chat", "lease_ttl_s": 5});
    let r = s.op(Method::POST, "/v1/orgs/acme/calls", Some(&body)).await;
    assert_eq!(r.status, 201, "{r}");
    assert_eq!(r.json::<Call>().state, Active);
    let r = s.acquire("acme", "q1", "B", Chat).await;
    assert_eq!(r.brief(), (202, Queued, None, Some(1)), "{r}");

    // Nobody heartbeats a1. q1's long-poll holds it and returns once it is admitted.
    let path = "/v1/orgs/acme/calls/q1?wait_s=20";
    let r = s.op(Method::GET, path, None).await.ok(200);
    let q1: Call = r.json();
    assert_eq!(
        (q1.state, q1.slot, q1.position),
        (Active, Some(Slot::Shared), None),
        "the long-poll returns q1 admitted: {r}"
    );

    let a1 = s.get_call("acme", "a1").await;
    let want = (Ended, Some(EndReason::Expired));
    assert_eq!((a1.state, a1.end_reason), want, "{a1:?}");
    let path = "/v1/orgs/acme/calls/a1/heartbeat";
    let r = s.op(Method::POST, path, None).await;
    assert_eq!(r.refusal(), (410, ErrorCode::CallEnded), "{r}");
    let call = r.error().call.expect("a 410 carries the call");
    assert_eq!(call.id, "a1", "{r}");
    assert_eq!((call.state, call.end_reason), want, "{r}");
    // The wire format: the call sits inside `error` and nowhere else in the body.
    assert!(
        r.value().get("call").is_none(),
        "the call sits inside `error` only: {r}"
    );
    assert_eq!(load(&s.org("acme").await), [1, 0, 1]);
}

// ---------------------------------------------------------------------------
// 3. A long-poll woken by a release
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn an_acquire_long_poll_is_woken_by_a_release() {
    let s = Arc::new(Server::start().await);
    s.create_org("acme", 1).await;
    let r = s.acquire("acme", "a1", "A", Chat).await;
    assert_eq!(r.status, 201, "{r}");

    let waiter = {
        let s = s.clone();
        let body = json!({"id": "q1", "agent": "B", "type": "chat", "wait_s": 30});
        tokio::spawn(async move { s.op(Method::POST, "/v1/orgs/acme/calls", Some(&body)).await })
    };
    // q1 is queued (its acquire is waiting) before a1 is released.
    eventually(20, "q1 is queued", || {
        let s = s.clone();
        async move {
            let r = s.op(Method::GET, "/v1/orgs/acme/calls/q1", None).await;
            r.status == 200 && r.json::<Call>().state == Queued
        }
    })
    .await;
    s.release("acme", "a1").await;

    let r = tokio::time::timeout(Duration::from_secs(60), waiter)
        .await
        .expect("the long-poll returns")
        .expect("the waiter task");
    assert_eq!(
        r.brief(),
        (201, Active, Some(Slot::Shared), None),
        "the acquire returns q1 admitted: {r}"
    );
    let a1 = s.get_call("acme", "a1").await;
    assert_eq!(a1.end_reason, Some(EndReason::Released));
}

// ---------------------------------------------------------------------------
// 4. kill -9 in the middle of a stream of requests
// ---------------------------------------------------------------------------

/// What the clients sent and what they were told.
#[derive(Default)]
struct Ledger {
    /// Every call id ever sent in an acquire.
    sent: HashSet<String>,
    /// Acquires answered 2xx, with the state answered.
    acquired: HashMap<String, CallState>,
    /// Releases sent (answered or not).
    release_sent: HashSet<String>,
    /// Releases answered 200.
    released: HashSet<String>,
    /// Per call task, the next id it would have sent (never sent).
    unsent: Vec<String>,
    /// Per agent, the chat reservations in the order sent, and whether answered 200.
    reservations: HashMap<String, Vec<(u32, bool)>>,
    /// Limits in the order sent, and whether answered 200.
    limits: Vec<(u32, bool)>,
    /// Org keys created with an answer: name -> (id, secret).
    keys: HashMap<String, (String, String)>,
    /// Key names sent in a create.
    key_names_sent: HashSet<String>,
    /// Key ids whose revocation was sent, and those answered 204.
    revoke_sent: HashSet<String>,
    revoked: HashSet<String>,
    /// Answers that are not 2xx (none expected: the server was killed, it did not refuse).
    refusals: Vec<String>,
}

impl Ledger {
    /// An agent's chat reservation was sent, not yet answered.
    fn reservation_sent(&mut self, agent: &str, chat: u32) {
        let history = self.reservations.entry(agent.to_string()).or_default();
        history.push((chat, false));
    }

    /// The agent's last reservation sent was answered 200.
    fn reservation_acked(&mut self, agent: &str) {
        let last = self.reservations.get_mut(agent).and_then(|h| h.last_mut());
        last.expect("recorded when sent").1 = true;
    }
}

/// The values that may be stored: the last acknowledged one (or `initial`),
/// or one sent after it without an answer.
fn allowed(history: &[(u32, bool)], initial: u32) -> Vec<u32> {
    let last_ack = history.iter().rposition(|(_, ok)| *ok);
    let mut ok = vec![last_ack.map_or(initial, |i| history[i].0)];
    ok.extend(
        history[last_ack.map_or(0, |i| i + 1)..]
            .iter()
            .map(|(v, _)| *v),
    );
    ok
}

/// One client of the stream, with the ledger they all write to.
#[derive(Clone)]
struct StreamClient {
    http: reqwest::Client,
    base: String,
    ledger: Arc<Mutex<Ledger>>,
}

impl StreamClient {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap()
    }

    /// Sends one request to `/v1{path}` with the operator key. `None` when the
    /// server is gone (no answer, or one cut short) or answered other than
    /// `want` (recorded as a refusal of `what`): either way the client stops.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Value,
        want: &[u16],
        what: &str,
    ) -> Option<Answer> {
        let mut req = self.http.request(method, format!("{}/v1{path}", self.base));
        if !body.is_null() {
            req = req.json(&body);
        }
        let answer = Answer::read(req.send().await.ok()?).await.ok()?;
        if !want.contains(&answer.status) {
            self.ledger().refusals.push(format!("{what}: {answer}"));
            return None;
        }
        Some(answer)
    }

    /// [`StreamClient::send`]: whether it was answered `want`.
    async fn answered(
        &self,
        method: Method,
        path: &str,
        body: Value,
        want: u16,
        what: &str,
    ) -> bool {
        let want = [want];
        let answer = self.send(method, path, body, &want, what);
        answer.await.is_some()
    }

    /// Acquires calls `t{task}-0`, `-1`, ... and releases every other one.
    async fn calls(self, task: usize) {
        for i in 0usize.. {
            let id = format!("t{task}-{i}");
            self.ledger().sent.insert(id.clone());
            let body = json!({
                "id": id, "agent": format!("agent{task}"), "type": CallType::ALL[i % 4], "lease_ttl_s": 600,
            });
            let what = format!("acquire {id}");
            let want = [200, 201, 202];
            let Some(a) = self
                .send(Method::POST, "/orgs/acme/calls", body, &want, &what)
                .await
            else {
                break;
            };
            let state = a.json::<Call>().state;
            self.ledger().acquired.insert(id.clone(), state);
            if i % 2 == 0 {
                self.ledger().release_sent.insert(id.clone());
                let path = format!("/orgs/acme/calls/{id}");
                let what = format!("release {id}");
                if !self
                    .answered(Method::DELETE, &path, Value::Null, 200, &what)
                    .await
                {
                    break;
                }
                self.ledger().released.insert(id);
            }
        }
        // The id this task would have sent next: it must not exist.
        let mut l = self.ledger();
        let next = (0..)
            .map(|i| format!("t{task}-{i}"))
            .find(|id| !l.sent.contains(id))
            .unwrap();
        l.unsent.push(next);
    }

    /// Reservations of r0..r2 (chat) and the limit, in turn.
    async fn admin(self) {
        for i in 0u32.. {
            let agent = format!("r{}", i % 3);
            let chat = (i / 3 + 1) % 3;
            self.ledger().reservation_sent(&agent, chat);
            let path = format!("/orgs/acme/agents/{agent}/reservations");
            let what = format!("reserve {agent}={chat}");
            let body = json!({"chat": chat});
            if !self.answered(Method::PUT, &path, body, 200, &what).await {
                break;
            }
            self.ledger().reservation_acked(&agent);
            let limit = 8 + i % 5;
            self.ledger().limits.push((limit, false));
            let (body, what) = (json!({"limit": limit}), format!("limit {limit}"));
            if !self
                .answered(Method::PUT, "/orgs/acme/limit", body, 200, &what)
                .await
            {
                break;
            }
            self.ledger().limits.last_mut().unwrap().1 = true;
        }
    }

    /// Creates runtime keys and revokes every other one.
    async fn keys(self) {
        for i in 0usize.. {
            let name = format!("k{i}");
            self.ledger().key_names_sent.insert(name.clone());
            let body = json!({"role": Role::Runtime, "name": name});
            let what = format!("key {name}");
            let Some(a) = self
                .send(Method::POST, "/orgs/acme/keys", body, &[201], &what)
                .await
            else {
                break;
            };
            let key: NewKey = a.json();
            let id = key.id.clone();
            self.ledger().keys.insert(name, (key.id, key.key));
            if i % 2 == 1 {
                continue;
            }
            self.ledger().revoke_sent.insert(id.clone());
            let path = format!("/orgs/acme/keys/{id}");
            let what = format!("revoke {id}");
            if !self
                .answered(Method::DELETE, &path, Value::Null, 204, &what)
                .await
            {
                break;
            }
            self.ledger().revoked.insert(id);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_stream_loses_no_acknowledged_change_and_invents_none() {
    let mut s = Server::start().await;
    s.create_org("acme", 8).await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let client = StreamClient {
        http: s.client.clone(),
        base: s.base.clone(),
        ledger: ledger.clone(),
    };
    // Four clients acquire and release; one admin changes reservations and the
    // limit; one key manager creates and revokes keys.
    let mut tasks: Vec<_> = (0..4)
        .map(|task| tokio::spawn(client.clone().calls(task)))
        .collect();
    tasks.push(tokio::spawn(client.clone().admin()));
    tasks.push(tokio::spawn(client.keys()));

    // Let the stream run until plenty has been acknowledged, then kill -9
    // mid-stream. (A bound for a loaded 2-core machine: through replicas, a
    // lead lost under load is taken over again before the stream goes on.)
    {
        let ledger = ledger.clone();
        eventually(90, "400 acquires acknowledged", move || {
            let n = ledger.lock().unwrap().acquired.len();
            async move { n >= 400 }
        })
        .await;
    }
    s.kill9().await;
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("every client stops once the server is gone")
            .expect("client task");
    }
    // Every client has stopped: the ledger is final.
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    assert!(ledger.refusals.is_empty(), "{:?}", ledger.refusals);
    assert!(
        ledger.limits.iter().filter(|(_, ok)| *ok).count() >= 2,
        "the admin stream was running: {:?}",
        ledger.limits
    );

    // Shown only if the test fails: how much the stream had done.
    eprintln!(
        "at the kill: {} acquires sent, {} answered; {} releases sent, {} answered; {} keys, {} revoked; {} limit changes",
        ledger.sent.len(),
        ledger.acquired.len(),
        ledger.release_sent.len(),
        ledger.released.len(),
        ledger.keys.len(),
        ledger.revoked.len(),
        ledger.limits.len()
    );
    s.restart().await;

    let listed = check_calls(&s, &ledger).await;
    check_snapshot(&s, &ledger, &listed).await;
    check_keys(&s, &ledger).await;
    check_events(&s, &ledger).await;

    // And the restarted server carries on.
    let r = s.acquire("acme", "after-restart", "agent9", Chat).await;
    assert!(matches!(r.status, 201 | 202), "{r}");
}

/// Every acknowledged acquire exists, in a state consistent with what was
/// answered or later; nothing that was never sent exists. Returns every live
/// call, as listed.
async fn check_calls(s: &Server, ledger: &Ledger) -> Vec<Call> {
    for (id, answered) in &ledger.acquired {
        let call = s.get_call("acme", id).await;
        if ledger.released.contains(id) {
            assert_eq!(call.state, Ended, "acknowledged release of {id}: {call:?}");
            let reason = call.end_reason;
            assert!(
                matches!(reason, Some(EndReason::Released | EndReason::Cancelled)),
                "{id}: {call:?}"
            );
        } else if !ledger.release_sent.contains(id) {
            assert_ne!(call.state, Ended, "{id} was never released: {call:?}");
            if *answered == Active {
                assert_eq!(call.state, Active, "{id} was answered active: {call:?}");
            }
        }
    }
    for id in &ledger.unsent {
        let path = format!("/v1/orgs/acme/calls/{id}");
        let r = s.op(Method::GET, &path, None).await;
        let want = (404, ErrorCode::CallNotFound);
        assert_eq!(r.refusal(), want, "{id} was never sent: {r}");
    }
    let listed = s.all_calls("acme").await;
    for c in &listed {
        assert!(ledger.sent.contains(&c.id), "a call nobody sent: {c:?}");
    }
    // Every acknowledged call never released is listed (it is live).
    let listed_ids: HashSet<&str> = listed.iter().map(|c| c.id.as_str()).collect();
    for id in ledger.acquired.keys() {
        if !ledger.release_sent.contains(id) {
            assert!(listed_ids.contains(id.as_str()), "{id} is live and listed");
        }
    }
    listed
}

/// The snapshot agrees with the list; the queue's positions are 1..n in order;
/// no queued call is admissible; the limit and reservations are ones sent.
async fn check_snapshot(s: &Server, ledger: &Ledger, listed: &[Call]) {
    let snap = s.org("acme").await;
    let count = |f: &dyn Fn(&Call) -> bool| listed.iter().filter(|c| f(c)).count() as u32;
    let active = count(&|c| c.state == Active);
    let queued: Vec<u64> = listed
        .iter()
        .filter(|c| c.state == Queued)
        .map(|c| c.position.expect("a queued call has a position"))
        .collect();
    let want = [active, queued.len() as u32];
    assert_eq!([snap.active, snap.queued], want, "{snap:?}");
    assert_eq!(
        queued,
        (1..=queued.len() as u64).collect::<Vec<_>>(),
        "positions are 1..n in list order"
    );
    for agent in &snap.agents {
        for t in CallType::ALL {
            for (state, counts) in [(Active, &agent.active), (Queued, &agent.queued)] {
                let n = count(&|c| c.agent == agent.id && c.call_type == t && c.state == state);
                assert_eq!(counts.get(t), n, "{} {state} {t}: {snap:?}", agent.id);
            }
        }
    }
    // The calling agents have no reservations: a queued call is admissible iff
    // N < L and shared_in_use < S. None may be.
    assert!(
        queued.is_empty() || !(snap.active < snap.limit && snap.shared_in_use < snap.shared),
        "a queued call is admissible after the restart: {snap:?}"
    );
    let limit = snap.limit;
    assert!(
        allowed(&ledger.limits, 8).contains(&limit),
        "limit {limit} vs sent {:?}",
        ledger.limits
    );
    for (agent, history) in &ledger.reservations {
        let chat = s.agent("acme", agent).await.reserved.chat;
        assert!(
            allowed(history, 0).contains(&chat),
            "{agent}: chat reservation {chat} vs sent {history:?}"
        );
    }
}

/// Acknowledged keys work, acknowledged revocations hold, no key was invented.
async fn check_keys(s: &Server, ledger: &Ledger) {
    for (name, (id, secret)) in &ledger.keys {
        let r = s
            .send(Some(secret), Method::GET, "/v1/orgs/acme", None)
            .await;
        if ledger.revoked.contains(id) {
            assert_eq!(r.status, 401, "revoked key {name} is refused: {r}");
        } else if !ledger.revoke_sent.contains(id) {
            assert_eq!(r.status, 200, "acknowledged key {name} works: {r}");
        }
    }
    let keys: KeyList = s.get("/v1/orgs/acme/keys").await;
    for k in &keys.keys {
        let sent = ledger.key_names_sent.contains(&k.name);
        assert!(sent, "a key nobody made: {k:?}");
    }
}

/// The event log: contiguous, and only about calls that were sent; every
/// acknowledged acquire and release is in it.
async fn check_events(s: &Server, ledger: &Ledger) {
    let events = s.all_events("acme").await;
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "event seqs are 1..n"
    );
    let mut arrived = HashSet::new();
    let mut ended = HashSet::new();
    for e in &events {
        let Some(call) = e.kind.call() else {
            continue;
        };
        let sent = ledger.sent.contains(call);
        assert!(sent, "an event about a call nobody sent: {e:?}");
        match e.kind {
            EventKind::CallQueued { .. } | EventKind::CallAdmitted { .. } => {
                arrived.insert(call.to_string());
            }
            EventKind::CallEnded { .. } => {
                assert!(ended.insert(call.to_string()), "ended twice: {e:?}")
            }
            _ => {}
        }
    }
    for id in ledger.acquired.keys() {
        let seen = arrived.contains(id);
        assert!(seen, "no event for acknowledged acquire {id}");
    }
    for id in &ledger.released {
        assert!(ended.contains(id), "no event for acknowledged release {id}");
    }
}

// ---------------------------------------------------------------------------
// 5. Auth matrix
// ---------------------------------------------------------------------------

/// The secrets of the keys the auth tests use.
struct Keys {
    admin: String,
    runtime: String,
    other_runtime: String,
}

/// Orgs acme and other (limit 5 each); an admin and a runtime key of acme,
/// a runtime key of other.
async fn auth_setup(s: &Server) -> Keys {
    s.create_org("acme", 5).await;
    s.create_org("other", 5).await;
    let new_key = |org, role, name| async move {
        let k = s.new_key(org, role, name).await;
        assert_eq!(k.role, role);
        k.key
    };
    Keys {
        admin: new_key("acme", Role::Admin, "admin-1").await,
        runtime: new_key("acme", Role::Runtime, "runtime-1").await,
        other_runtime: new_key("other", Role::Runtime, "runtime-other").await,
    }
}

/// One row of the matrix: key, method, path (under `/v1`), body, status, error code.
type Case<'a> = (
    Option<&'a str>,
    Method,
    &'a str,
    Option<Value>,
    u16,
    Option<ErrorCode>,
);

/// Who may do what, in order (the calls `rt1` and `ad1` are made on the way).
fn auth_cases<'a>(k: &'a Keys, bad_secret: &'a str) -> Vec<Case<'a>> {
    use ErrorCode::{Forbidden as F, OrgNotFound as NF, Unauthorized as U};
    use Method as M;
    let (admin, runtime, other) = (Some(&*k.admin), Some(&*k.runtime), Some(&*k.other_runtime));
    let op = Some(OPERATOR_KEY);
    let res = || Some(json!({"chat": 1}));
    let call = |id: &str| Some(json!({"id": id, "agent": "a", "type": "chat"}));
    let anon_call = || Some(json!({"agent": "a", "type": "chat"}));
    let limit = || Some(json!({"limit": 9}));
    #[rustfmt::skip]
    let cases = vec![
        // Missing or unknown key: 401.
        (None, M::GET, "/orgs/acme", None, 401, Some(U)),
        (None, M::POST, "/orgs/acme/calls", anon_call(), 401, Some(U)),
        (Some("nope"), M::GET, "/orgs/acme", None, 401, Some(U)),
        (Some(bad_secret), M::GET, "/orgs/acme", None, 401, Some(U)),
        // Another org's key: 404 as if it did not exist.
        (runtime, M::GET, "/orgs/other", None, 404, Some(NF)),
        (runtime, M::POST, "/orgs/other/calls", anon_call(), 404, Some(NF)),
        (other, M::GET, "/orgs/acme", None, 404, Some(NF)),
        (admin, M::PUT, "/orgs/other/agents/a/reservations", res(), 404, Some(NF)),
        // Runtime: calls and reading, nothing else.
        (runtime, M::PUT, "/orgs/acme/agents/a/reservations", res(), 403, Some(F)),
        (runtime, M::DELETE, "/orgs/acme/agents/a/reservations", None, 403, Some(F)),
        (runtime, M::PUT, "/orgs/acme/limit", limit(), 403, Some(F)),
        (runtime, M::POST, "/orgs/acme/keys", Some(json!({"role": "admin", "name": "x"})), 403, Some(F)),
        (runtime, M::GET, "/orgs/acme", None, 200, None),
        (runtime, M::GET, "/orgs/acme/agents/a", None, 200, None),
        (runtime, M::POST, "/orgs/acme/calls", call("rt1"), 201, None),
        (runtime, M::GET, "/orgs/acme/calls/rt1", None, 200, None),
        (runtime, M::POST, "/orgs/acme/calls/rt1/heartbeat", None, 200, None),
        (runtime, M::GET, "/orgs/acme/calls", None, 200, None),
        (runtime, M::DELETE, "/orgs/acme/calls/rt1", None, 200, None),
        // Admin: everything in its org but the limit.
        (admin, M::PUT, "/orgs/acme/limit", limit(), 403, Some(F)),
        (admin, M::POST, "/orgs", Some(json!({"id": "mine", "limit": 1})), 403, Some(F)),
        (admin, M::GET, "/orgs", None, 403, Some(F)),
        (admin, M::PUT, "/orgs/acme/agents/a/reservations", res(), 200, None),
        (admin, M::POST, "/orgs/acme/keys", Some(json!({"role": "runtime", "name": "by-admin"})), 201, None),
        (admin, M::GET, "/orgs/acme/keys", None, 200, None),
        (admin, M::POST, "/orgs/acme/calls", call("ad1"), 201, None),
        // Operator: everything, everywhere.
        (op, M::POST, "/orgs", Some(json!({"id": "third", "limit": 1})), 201, None),
        (op, M::GET, "/orgs", None, 200, None),
        (op, M::PUT, "/orgs/other/limit", Some(json!({"limit": 7})), 200, None),
        (op, M::PUT, "/orgs/other/agents/b/reservations", res(), 200, None),
        (op, M::POST, "/orgs/other/calls", Some(json!({"id": "op1", "agent": "b", "type": "chat"})), 201, None),
        (op, M::POST, "/orgs/other/keys", Some(json!({"role": "admin", "name": "by-op"})), 201, None),
        (op, M::DELETE, "/orgs/other/agents/b/reservations", None, 200, None),
    ];
    cases
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_matrix() {
    let s = Server::start().await;
    let keys = auth_setup(&s).await;
    let runtime = &keys.runtime;
    let bad_secret = format!("{}x", &runtime[..runtime.len() - 1]);
    for (key, method, path, body, status, err) in auth_cases(&keys, &bad_secret) {
        let who = key.map_or("no key".to_string(), |k| k.chars().take(10).collect());
        let what = format!("{who} {method} {path}");
        let path = format!("/v1{path}");
        let answer = s.send(key, method, &path, body.as_ref()).await;
        // A success carries no error body; a refusal carries its code.
        let code = answer.value().get("error").map(|_| answer.error().code);
        assert_eq!((answer.status, code), (status, err), "{what}: {answer}");
    }

    // The refused changes changed nothing; the allowed ones did.
    let acme = s.org("acme").await;
    assert_eq!([acme.limit, acme.reserved, acme.active], [5, 1, 1]);
    assert_eq!(s.org("other").await.limit, 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn another_org_looks_exactly_like_a_missing_one() {
    let s = Server::start().await;
    let keys = auth_setup(&s).await;
    let runtime = Some(keys.runtime.as_str());
    let s = &s;
    let answer = |key, path| async move {
        let a = s.send(key, Method::GET, path, None).await;
        (a.status, a.json::<ErrorBody>())
    };
    let hidden = answer(runtime, "/v1/orgs/other").await;
    let missing = answer(runtime, "/v1/orgs/nowhere").await;
    assert_eq!(hidden, missing);
    assert_eq!(
        answer(Some(OPERATOR_KEY), "/v1/orgs/nowhere").await,
        missing,
        "the operator's 404 for a missing org is the same"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_key_is_refused_at_once() {
    let s = Server::start().await;
    let keys = auth_setup(&s).await;
    let k = s.new_key("acme", Role::Runtime, "doomed").await;
    assert_eq!(k.role, Role::Runtime);
    let (kid, doomed) = (k.id, Some(k.key.as_str()));
    let r = s.send(doomed, Method::GET, "/v1/orgs/acme", None).await;
    assert_eq!(r.status, 200, "{r}");
    let path = format!("/v1/orgs/acme/keys/{kid}");
    let r = s.send(Some(&keys.admin), Method::DELETE, &path, None).await;
    assert_eq!(r.status, 204, "an admin revokes a key: {r}");
    let r = s.send(doomed, Method::GET, "/v1/orgs/acme", None).await;
    assert_eq!(r.refusal(), (401, ErrorCode::Unauthorized), "{r}");
    let call = json!({"agent": "a", "type": "chat"});
    let r = s
        .send(doomed, Method::POST, "/v1/orgs/acme/calls", Some(&call))
        .await;
    assert_eq!(r.refusal(), (401, ErrorCode::Unauthorized), "{r}");
    let r = s.op(Method::GET, "/v1/orgs/acme/keys", None).await.ok(200);
    let listed: KeyList = r.json();
    assert!(
        listed.keys.iter().all(|k| k.id != kid),
        "the revoked key is gone: {r}"
    );
    // The wire format: no listed key carries a `key` field (a secret), which
    // the typed `KeyInfo` has no field for.
    let raw = r.value();
    assert!(
        raw["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("key").is_none()),
        "no secret is listed: {r}"
    );
}

// ---------------------------------------------------------------------------
// 6. Bad inputs
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn bad_inputs_are_400_naming_the_field_and_change_nothing() {
    let s = Server::start().await;
    s.create_org("acme", 5).await;
    s.reserve("acme", "A", json!({"chat": 1})).await;
    assert_eq!(s.acquire("acme", "live", "A", Chat).await.status, 201);
    let before = (s.org("acme").await, s.all_calls("acme").await);

    let long_id = "x".repeat(129);
    let long_body = format!(r#"{{"id": "{long_id}", "agent": "a", "type": "chat"}}"#);
    #[rustfmt::skip]
    let table: Vec<(Method, &str, &str, &str)> = vec![
        // Malformed JSON.
        (Method::PUT, "/orgs/acme/limit", r#"{"limit": "#, "body"),
        (Method::POST, "/orgs/acme/calls", r#"{"agent": "a", "type": "chat""#, "body"),
        // Unknown fields.
        (Method::PUT, "/orgs/acme/limit", r#"{"limit": 5, "plan": "x"}"#, "plan"),
        (Method::POST, "/orgs/acme/calls", r#"{"agent": "a", "type": "chat", "priority": 1}"#, "priority"),
        (Method::PUT, "/orgs/acme/agents/A/reservations", r#"{"chat": 1, "sms": 1}"#, "sms"),
        // Wrong types.
        (Method::PUT, "/orgs/acme/limit", r#"{"limit": "5"}"#, "limit"),
        (Method::POST, "/orgs/acme/calls", r#"{"agent": 7, "type": "chat"}"#, "agent"),
        (Method::PUT, "/orgs/acme/agents/A/reservations", r#"{"chat": "2"}"#, "chat"),
        // Out of range.
        (Method::PUT, "/orgs/acme/limit", r#"{"limit": -1}"#, "limit"),
        (Method::PUT, "/orgs/acme/limit", r#"{"limit": 1000001}"#, "limit"),
        (Method::POST, "/orgs", r#"{"id": "big", "limit": 1000001}"#, "limit"),
        (Method::POST, "/orgs/acme/calls", r#"{"agent": "a", "type": "chat", "lease_ttl_s": 4}"#, "lease_ttl_s"),
        (Method::POST, "/orgs/acme/calls", r#"{"agent": "a", "type": "chat", "lease_ttl_s": 3601}"#, "lease_ttl_s"),
        (Method::POST, "/orgs/acme/calls", r#"{"agent": "a", "type": "chat", "wait_s": 61}"#, "wait_s"),
        (Method::POST, "/orgs/acme/calls/live/heartbeat", r#"{"lease_ttl_s": 4}"#, "lease_ttl_s"),
        // Bad enums and ids.
        (Method::POST, "/orgs/acme/calls", r#"{"agent": "a", "type": "sms"}"#, "type"),
        (Method::POST, "/orgs/acme/calls", r#"{"id": "a b", "agent": "a", "type": "chat"}"#, "id"),
        (Method::POST, "/orgs/acme/calls", &long_body, "id"),
        (Method::POST, "/orgs/acme/calls", r#"{"agent": "a/b", "type": "chat"}"#, "agent"),
        // Query parameters.
        (Method::GET, "/orgs/acme/calls?sort=id", "", "sort"),
        (Method::GET, "/orgs/acme/calls?state=bogus", "", "state"),
        (Method::GET, "/orgs/acme/calls?limit=0", "", "limit"),
        (Method::GET, "/orgs/acme/calls/live?wait_s=61", "", "wait_s"),
    ];
    for (method, path, body, field) in table {
        let what = format!("{method} {path} {}", &body[..body.len().min(60)]);
        let r = s.op_text(method, &format!("/v1{path}"), body).await;
        assert_eq!(r.refusal(), (400, ErrorCode::InvalidRequest), "{what}: {r}");
        // The message reads `FIELD: what is wrong`, or says that the body
        // is not JSON at all.
        let start = match field {
            "body" => "the body is not JSON: ".to_owned(),
            _ => format!("{field}: "),
        };
        assert!(
            r.error().message.starts_with(&start),
            "{what}: the message names {field}: {r}"
        );
    }

    // Over 64 KiB: 413, whatever the endpoint.
    let pad = "x".repeat(70 * 1024);
    let limit = format!(r#"{{"limit": 3, "pad": "{pad}"}}"#);
    let call = format!(r#"{{"id": "big", "agent": "a", "type": "chat", "pad": "{pad}"}}"#);
    for (method, path, body) in [
        (Method::PUT, "/v1/orgs/acme/limit", limit),
        (Method::POST, "/v1/orgs/acme/calls", call),
    ] {
        let r = s.op_text(method.clone(), path, &body).await;
        let want = (413, ErrorCode::PayloadTooLarge);
        assert_eq!(r.refusal(), want, "{method} {path}: {r}");
    }

    let after = (s.org("acme").await, s.all_calls("acme").await);
    assert_eq!(after, before, "nothing changed");
    let r = s.op(Method::GET, "/v1/orgs/big", None).await;
    assert_eq!(r.refusal(), (404, ErrorCode::OrgNotFound));
    let r = s.op(Method::GET, "/v1/orgs/acme/calls/big", None).await;
    assert_eq!(r.refusal(), (404, ErrorCode::CallNotFound));
}

// ---------------------------------------------------------------------------
// 7. Idempotency
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn acquire_and_release_are_idempotent() {
    let s = Server::start().await;
    s.create_org("acme", 1).await;
    s.create_org("globex", 1).await;

    // Active: the same acquire again is 200 with the same call.
    let first = s.acquire("acme", "c1", "A", Chat).await;
    assert_eq!(first.status, 201, "{first}");
    let again = s.acquire("acme", "c1", "A", Chat).await;
    assert_eq!(again.status, 200, "{again}");
    let first: Call = first.json();
    assert_eq!(stable(again.json()), stable(first.clone()));

    // Queued: 200, still queued, same position; nothing queued twice.
    let q1 = s.acquire("acme", "q1", "B", Chat).await;
    assert_eq!(q1.brief(), (202, Queued, None, Some(1)), "{q1}");
    let q2 = s.acquire("acme", "q2", "B", Chat).await;
    assert_eq!(q2.brief(), (202, Queued, None, Some(2)), "{q2}");
    let q1_again = s.acquire("acme", "q1", "B", Chat).await;
    assert_eq!(q1_again.status, 200, "{q1_again}");
    assert_eq!(stable(q1_again.json()), stable(q1.json()));
    assert_eq!(load(&s.org("acme").await), [1, 2, 1]);
    assert_eq!(s.queue("acme").await, q(&["q1", "q2"]));

    // The same id with another agent or type: 409, nothing changes.
    for (agent, t) in [("Z", Chat), ("A", Webcall)] {
        let r = s.acquire("acme", "c1", agent, t).await;
        assert_eq!(r.refusal(), (409, ErrorCode::CallIdConflict), "{r}");
    }
    assert_eq!(stable(s.get_call("acme", "c1").await), stable(first));

    // DELETE twice: 200 both times, the second answer unchanged.
    let d1 = s.release("acme", "c1").await;
    assert_eq!(
        (d1.state, d1.end_reason),
        (Ended, Some(EndReason::Released))
    );
    let d2 = s.release("acme", "c1").await;
    assert_eq!(d2, d1, "a second release answers the call as it ended");
    // The release admitted q1 (once): q2 moves up.
    assert_eq!(s.get_call("acme", "q1").await.state, Active);
    assert_eq!(s.queue("acme").await, q(&["q2"]));
    // Cancelling a queued call twice is idempotent too.
    let c1 = s.release("acme", "q2").await;
    assert_eq!(c1.end_reason, Some(EndReason::Cancelled), "{c1:?}");
    assert_eq!(s.release("acme", "q2").await, c1);
    // An ended id is still idempotent: 200, ended, not a new call.
    let r = s.acquire("acme", "c1", "A", Chat).await;
    assert_eq!((r.status, r.json::<Call>().state), (200, Ended), "{r}");
    assert_eq!(load(&s.org("acme").await), [1, 0, 1]);

    // The same id in two orgs: independent calls, no conflict.
    let x = s.acquire("globex", "c1", "Z", Webcall).await;
    assert_eq!(x.brief(), (201, Active, Some(Slot::Shared), None), "{x}");
    let x = s.release("globex", "c1").await;
    assert_eq!(x.end_reason, Some(EndReason::Released));
    let acme_c1 = s.get_call("acme", "c1").await;
    assert_eq!(acme_c1, d1, "acme's c1 is untouched");
    let y = s.acquire("globex", "y", "Z", Webcall).await;
    assert_eq!(
        y.status, 201,
        "globex's slot was freed by its own release: {y}"
    );
}

/// Ended calls stay in the engine's memory a short while only (a minute; here
/// 300 ms); for the rest of `--ended-retention` reads and retries are
/// answered from the store, exactly as before.
#[tokio::test(flavor = "multi_thread")]
async fn calls_ended_longer_ago_than_memory_keeps_them_are_answered_from_the_store() {
    let s = Server::start_with(&["--ended-in-memory=300ms"]).await;
    s.create_org("acme", 1).await;
    s.acquire("acme", "c1", "A", Chat).await.ok(201);
    s.acquire("acme", "c2", "A", Chat).await.ok(202);
    let c1 = s.release("acme", "c1").await; // released; c2 admitted
    let c2 = s.release("acme", "c2").await;
    let q = s.acquire("acme", "q1", "B", Inbound).await.ok(201);
    assert_eq!(q.json::<Call>().state, Active);
    let q1 = s.release("acme", "q1").await;
    assert_eq!(
        (c1.end_reason, c2.end_reason),
        (Some(EndReason::Released), Some(EndReason::Released))
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;

    for ended in [&c1, &c2, &q1] {
        let id = ended.id.as_str();
        assert_eq!(&s.get_call("acme", id).await, ended, "GET {id}");
        let path = format!("/v1/orgs/acme/calls/{id}?wait_s=30");
        let polled = s.op(Method::GET, &path, None).await.ok(200);
        assert_eq!(&polled.json::<Call>(), ended, "a long-poll answers at once");
        assert_eq!(&s.release("acme", id).await, ended, "release again");
        let beat = format!("/v1/orgs/acme/calls/{id}/heartbeat");
        let r = s.op(Method::POST, &beat, None).await;
        assert_eq!(r.refusal(), (410, ErrorCode::CallEnded), "{r}");
    }
    let retry = s.acquire("acme", "c1", "A", Chat).await;
    assert_eq!(
        (retry.status, retry.json::<Call>()),
        (200, c1.clone()),
        "{retry}"
    );
    let other = s.acquire("acme", "c1", "B", Chat).await;
    assert_eq!(other.refusal(), (409, ErrorCode::CallIdConflict), "{other}");
    let r = s.op(Method::GET, "/v1/orgs/acme/calls/never", None).await;
    assert_eq!(r.refusal().1, ErrorCode::CallNotFound, "{r}");
    // Nothing came back to life, and new calls are admitted as ever.
    assert_eq!(load(&s.org("acme").await), [0, 0, 0]);
    s.acquire("acme", "c3", "A", Chat).await.ok(201);
}

// ---------------------------------------------------------------------------
// 8. One server per data directory (several on one PostgreSQL database: tests/it/replicas.rs)
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_second_server_on_the_same_data_dir_refuses_to_start() {
    if crate::support::on_postgres() {
        return; // a second server on the database follows the first: tests/it/replicas.rs
    }
    let s = Server::start().await;
    s.create_org("acme", 3).await;
    let out =
        tokio::process::Command::from(crate::support::serve_command("127.0.0.1:0", s.data_dir()))
            .args(s.store_args())
            .kill_on_drop(true)
            .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("the second server exits instead of serving")
        .expect("the binary runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "non-zero exit: {:?}\n{err}",
        out.status
    );
    let dir = s.data_dir().display().to_string();
    let pid = s.pid().to_string();
    assert!(err.contains(&dir), "stderr names {dir}: {err}");
    assert!(err.contains(&pid), "stderr names pid {pid}: {err}");
    // The first one is unaffected.
    assert_eq!(s.org("acme").await.limit, 3);
}

// ---------------------------------------------------------------------------
// 9. SIGTERM
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_exits_0_and_everything_is_there_after_restart() {
    let mut s = Server::start().await;
    s.create_org("acme", 3).await;
    s.reserve("acme", "A", json!({"chat": 1, "inbound": 1}))
        .await;
    let runtime = s.new_key("acme", Role::Runtime, "rt").await.key;
    for (id, agent, t, status) in [
        ("a1", "A", Chat, 201),
        ("b1", "B", Chat, 201),
        ("b2", "B", Webcall, 202),
        ("c1", "C", Chat, 202),
        ("e1", "C", Chat, 202),
    ] {
        assert_eq!(s.acquire("acme", id, agent, t).await.status, status, "{id}");
    }
    s.release("acme", "e1").await;
    let before = s.org("acme").await;
    let calls_before: Vec<Call> = s.all_calls("acme").await.into_iter().map(stable).collect();

    let status = s.terminate().await;
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0: {status}");

    s.restart().await;
    assert_eq!(s.org("acme").await, before);
    let calls_after: Vec<Call> = s.all_calls("acme").await.into_iter().map(stable).collect();
    assert_eq!(calls_after, calls_before);
    assert_eq!(s.queue("acme").await, q(&["b2", "c1"]));
    let e1 = s.get_call("acme", "e1").await;
    assert_eq!(e1.end_reason, Some(EndReason::Cancelled), "{e1:?}");
    let r = s
        .send(Some(&runtime), Method::GET, "/v1/orgs/acme", None)
        .await;
    assert_eq!(r.status, 200, "the org key survives the restart: {r}");
}

/// A restart says in one line what it recovered: orgs, active and queued
/// calls, and how long loading took.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_logs_what_it_recovered() {
    let mut s = Server::start().await;
    s.create_org("acme", 2).await;
    s.create_org("globex", 1).await;
    for (org, id, status) in [
        ("acme", "a1", 201),
        ("acme", "a2", 201),
        ("acme", "a3", 202),
        ("globex", "g1", 201),
        ("globex", "g2", 202),
        ("globex", "g3", 202),
    ] {
        assert_eq!(s.acquire(org, id, "A", Chat).await.status, status, "{id}");
    }
    s.release("globex", "g3").await; // ended: not recovered as live
    s.kill9().await;
    s.restart().await;
    let want = "2 orgs, 3 active calls, 2 queued calls";
    eventually(10, "the recovery line", || async {
        s.stderr().lines().any(|l| {
            l.contains("recovered from the store in ") && l.contains(" ms: ") && l.contains(want)
        })
    })
    .await;
}

/// The `call.lease_changed` events of an org's log: the call and its new length.
async fn lease_changes(s: &Server) -> Vec<(String, u64)> {
    let events = s.all_events("acme").await;
    let changes = events.into_iter().filter_map(|e| match e.kind {
        EventKind::CallLeaseChanged {
            call, lease_ttl_ms, ..
        } => Some((call, lease_ttl_ms)),
        _ => None,
    });
    changes.collect()
}

/// A restart gives every lease one `lease_ttl` from then, so the length a
/// heartbeat set must be as durable as its 200: it is an event, in the
/// org's log like every other change.
#[tokio::test(flavor = "multi_thread")]
async fn a_lease_length_set_by_a_heartbeat_is_an_event_and_survives_a_crash() {
    let mut s = Server::start().await;
    s.create_org("acme", 2).await;
    for id in ["short", "long"] {
        let body = json!({"id": id, "agent": "A", "type": "chat", "lease_ttl_s": 5});
        s.op(Method::POST, "/v1/orgs/acme/calls", Some(&body))
            .await
            .ok(201);
    }
    let heartbeat = |body: Option<Value>| {
        let s = &s;
        async move {
            let path = "/v1/orgs/acme/calls/long/heartbeat";
            s.op(Method::POST, path, body.as_ref()).await.ok(200)
        }
    };
    // No body, or the length the call has: a renewal, not an event.
    heartbeat(None).await;
    heartbeat(Some(json!({"lease_ttl_s": 5}))).await;
    let before = s.all_events("acme").await.len();
    let long: Call = heartbeat(Some(json!({"lease_ttl_s": 600}))).await.json();
    assert_eq!(long.lease_ttl_s, 600.0);
    heartbeat(Some(json!({"lease_ttl_s": 600}))).await;
    let events = s.all_events("acme").await;
    assert_eq!(events.len(), before + 1, "one event: {events:?}");
    let last = events.last().unwrap();
    assert_eq!(
        last.kind,
        EventKind::CallLeaseChanged {
            call: "long".into(),
            agent: "A".into(),
            call_type: Chat,
            lease_ttl_ms: 600_000,
        }
    );
    // On the wire: one flat object, named as the other call events.
    let page: Value = s
        .get(&format!("/v1/orgs/acme/events?after={}", last.seq - 1))
        .await;
    let wire = &page["events"][0];
    assert_eq!(
        (&wire["type"], &wire["call"], &wire["lease_ttl_ms"]),
        (
            &json!("call.lease_changed"),
            &json!("long"),
            &json!(600_000)
        )
    );

    s.kill9().await;
    s.restart().await;
    eventually(30, "short's lease of 5 s runs out", || async {
        s.get_call("acme", "short").await.state == Ended
    })
    .await;
    let long = s.get_call("acme", "long").await;
    assert_eq!(long.state, Active, "its lease is 600 s: {long:?}");
    assert_eq!(long.lease_ttl_s, 600.0);
    assert_eq!(lease_changes(&s).await, [("long".to_string(), 600_000)]);
}

// ---------------------------------------------------------------------------
// 10. A long-poll whose client hangs up stops holding its call
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_long_poll_whose_client_hangs_up_stops_holding_the_call() {
    let s = Server::start().await;
    s.create_org("acme", 0).await;
    // The client gives up after 1 s on a wait of 30 s: its connection closes mid-wait.
    let impatient = crate::support::http_builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let body = json!({"id": "q1", "agent": "A", "type": "chat", "lease_ttl_s": 5, "wait_s": 30});
    let r = impatient
        .post(s.url("/v1/orgs/acme/calls"))
        .bearer_auth(OPERATOR_KEY)
        .json(&body)
        .send()
        .await;
    assert!(r.is_err(), "the client timed out");
    assert_eq!(s.get_call("acme", "q1").await.state, Queued);

    // Unheld once the server sees the hang-up: abandoned one lease_ttl later, not held for 30 s.
    eventually(20, "q1 is abandoned", || async {
        s.get_call("acme", "q1").await.state == Ended
    })
    .await;
    let q1 = s.get_call("acme", "q1").await;
    assert_eq!(q1.end_reason, Some(EndReason::Abandoned));
}

// ---------------------------------------------------------------------------
// Shutdown with requests that never end by themselves, and input edge cases.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_exits_promptly_while_streams_and_long_polls_are_open() {
    let mut s = Server::start().await;
    s.create_org("acme", 1).await;
    assert_eq!(s.acquire("acme", "holder", "a", Chat).await.status, 201);
    let stream = s
        .client
        .get(s.url("/v1/orgs/acme/events/stream"))
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(stream.status(), 200);
    // A queued acquire and an events long-poll, each willing to wait 60 s.
    let waiting = {
        let (client, url) = (s.client.clone(), s.url("/v1/orgs/acme/calls"));
        tokio::spawn(async move {
            let body = json!({"id": "waiter", "agent": "a", "type": "chat", "wait_s": 60});
            Answer::read(client.post(url).json(&body).send().await?).await
        })
    };
    let polling = {
        let url = s.url("/v1/orgs/acme/events?after=1000&wait_s=60");
        let client = s.client.clone();
        tokio::spawn(async move { client.get(url).send().await.map(|r| r.status().as_u16()) })
    };
    eventually(20, "the waiter is queued", || async {
        let r = s.op(Method::GET, "/v1/orgs/acme/calls/waiter", None).await;
        r.status == 200 && r.json::<Call>().state == Queued
    })
    .await;
    // `terminate` gives up (and fails the test) after 30 s: the long-polls
    // must answer at once rather than run out their 60 s.
    let status = s.terminate().await;
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0: {status}");
    let r = waiting
        .await
        .unwrap()
        .expect("the queued acquire is answered");
    assert_eq!((r.status, r.json::<Call>().state), (202, Queued), "{r}");
    assert_eq!(
        polling.await.unwrap().expect("the long-poll is answered"),
        200
    );
    drop(stream);
}

#[tokio::test(flavor = "multi_thread")]
async fn trailing_garbage_after_a_json_body_is_refused() {
    let s = Server::start().await;
    s.create_org("acme", 5).await;
    for body in [r#"{"limit": 6}garbage"#, r#"{"limit": 7} {"limit": 8}"#] {
        let r = s.op_text(Method::PUT, "/v1/orgs/acme/limit", body).await;
        assert_eq!(r.refusal(), (400, ErrorCode::InvalidRequest), "{body}: {r}");
    }
    assert_eq!(s.org("acme").await.limit, 5, "nothing changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_method_gets_the_error_body() {
    let s = Server::start().await;
    s.create_org("acme", 1).await;
    let r = s.op(Method::PATCH, "/v1/orgs/acme", None).await;
    assert_eq!(
        r.refusal(),
        (405, ErrorCode::MethodNotAllowed),
        "an error body with a code: {r}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_400_names_the_offending_body_field() {
    let s = Server::start().await;
    s.create_org("acme", 1).await;
    for (path, body, field) in [
        ("/v1/orgs", r#"{"id": "a b", "limit": 1}"#, "id:"),
        ("/v1/orgs", r#"{"id": "ok", "limit": 1e400}"#, "limit:"),
        (
            "/v1/orgs/acme/calls",
            r#"{"agent": "a", "type": "chat", "lease_ttl_s": 1e400}"#,
            "lease_ttl_s:",
        ),
    ] {
        let r = s.op_text(Method::POST, path, body).await;
        assert_eq!(r.refusal(), (400, ErrorCode::InvalidRequest), "{body}: {r}");
        let named = r.error().message.starts_with(field);
        assert!(named, "{body}: names {field}: {r}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_port_creates_nothing_and_logs_fit_files_and_collectors() {
    let s = Server::start().await;
    assert!(
        !s.stderr().contains('\x1b'),
        "no colour codes in a log file: {:?}",
        s.stderr()
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = |listen: &str, extra: &[&str]| {
        let mut c = crate::support::serve_command(listen, &data);
        c.args(extra).env_remove("SLOTGATE_OPERATOR_KEY");
        c
    };
    let out = serve(&format!("127.0.0.1:{}", s.port), &[])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("cannot listen on"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("operator key"));
    assert!(
        !data.exists(),
        "a server that cannot listen creates no data directory"
    );
    // Log lines are not API answers: they are read as JSON, field by field.
    let mut json = serve("127.0.0.1:0", &["--log-format", "json"])
        .env("RUST_LOG", "info,slotgate::api=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = std::io::BufRead::lines(std::io::BufReader::new(json.stderr.take().unwrap()));
    let mut next_line = || -> Value {
        let line = log.next().unwrap().unwrap();
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("a JSON log line: {line}"))
    };
    // The new store's schema migrations, what the start recovered from the
    // (empty) store, then the ready line.
    let mut recovered = next_line();
    while recovered["fields"]["message"] == "applied schema migration" {
        recovered = next_line();
    }
    let said = recovered["fields"]["message"].as_str().unwrap_or("");
    assert!(
        said.starts_with("recovered from the store in ") && said.contains(": 0 orgs, "),
        "{recovered}"
    );
    // No operator key was given: one is made, and the log says where it is
    // (and never what it is: the log is not a terminal).
    let generated = next_line();
    let key = std::fs::read_to_string(data.join("operator.key")).unwrap();
    assert!(
        generated["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("operator.key"))
            && !generated.to_string().contains(key.trim()),
        "{generated}"
    );
    let ready = next_line();
    let message = ready["fields"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let base = message
        .split("ready on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next());
    let base = base.unwrap_or_else(|| panic!("the ready line: {ready}"));
    let secret = "not-a-key-but-secret";
    let status = crate::support::http_builder()
        .build()
        .unwrap()
        .get(format!("{base}/v1/orgs/nope"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let request = next_line();
    json.kill().unwrap();
    json.wait().unwrap();
    let fields = &request["fields"];
    assert_eq!(
        (&fields["route"], &fields["status"], &fields["org"]),
        (&json!("GET /v1/orgs/{org}"), &json!(401), &json!("nope")),
        "{request}"
    );
    assert!(
        !request.to_string().contains(secret),
        "no key material in logs"
    );
}

/// The wire format itself (a trailing newline, the exact error object), so
/// these answers are read as text and raw JSON, not as the API's types.
#[tokio::test(flavor = "multi_thread")]
async fn json_answers_and_errors_end_with_a_newline_and_keep_extras_inside_error() {
    let s = Server::start().await;
    let s = &s;
    let text = |body: Value| async move {
        let r = s.op(Method::PUT, "/v1/orgs/acme/limit", Some(&body)).await;
        r.text
    };
    s.create_org("acme", 2).await;
    let ok = text(json!({"limit": 3})).await;
    assert!(ok.ends_with("}\n"), "{ok:?}");
    s.reserve("acme", "a", json!({"chat": 3})).await;
    let refused = text(json!({"limit": 1})).await;
    assert!(refused.ends_with("}\n"), "{refused:?}");
    let body: Value = serde_json::from_str(&refused).unwrap();
    assert_eq!(
        body,
        json!({"error": {"code": "limit_below_reservations", "message": body["error"]["message"], "reserved": 3}})
    );
    let bad = text(json!({"limit": "20"})).await;
    let body: Value = serde_json::from_str(&bad).unwrap();
    assert_eq!(
        body["error"]["message"], "limit: must be a whole number 0 to 1000000, got \"20\"",
        "in the API's words, no Rust type names"
    );
}
