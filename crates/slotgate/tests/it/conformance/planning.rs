//! Capacity planning through the real server: observed traffic recovers a
//! known stream of calls, `plan` and `simulate` answer over HTTP and on the
//! command line, and bad input is refused naming the field.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use slotgate_client::api::{AcquireCall, ErrorBody};
use slotgate_client::plan::{ErlangC, PlanAnswer, SimulateAnswer, Traffic};
use slotgate_client::{CallState, CallType, Client, ErrorCode};

use crate::support::{cli, Server, OPERATOR_KEY as OP};

/// Starts `n` calls of `agent`/`t`, one every `every`, each held for `hold`,
/// then released; returns once all have ended.
async fn stream(
    c: &Client,
    org: &str,
    agent: &str,
    t: CallType,
    n: u32,
    every: Duration,
    hold: Duration,
) {
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let (c, org, agent) = (c.clone(), org.to_string(), agent.to_string());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start + every * i).await;
            let body = AcquireCall {
                id: Some(format!("{agent}-{t}-{i}")),
                ..AcquireCall::new(agent, t)
            };
            let (_, call) = c.start_call(&org, &body).await.unwrap();
            assert_eq!(call.state, CallState::Active);
            tokio::time::sleep(hold).await;
            c.release(&org, &call.id).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn traffic_recovers_the_rates_and_durations_of_a_known_stream() {
    let s = Server::start().await;
    let c = Client::new(&s.base, OP);
    c.create_org("acme", 50).await.unwrap();
    let began = Instant::now();
    // 10 inbound calls a second of 300 ms, and 5 chats a second of 500 ms, for 6 s.
    tokio::join!(
        stream(
            &c,
            "acme",
            "agent-a",
            CallType::Inbound,
            60,
            Duration::from_millis(100),
            Duration::from_millis(300)
        ),
        stream(
            &c,
            "acme",
            "agent-b",
            CallType::Chat,
            30,
            Duration::from_millis(200),
            Duration::from_millis(500)
        ),
    );
    // Half a second of margin: the server counts the window back from when
    // the request reaches it, which a loaded machine may delay.
    let window = format!("{}ms", began.elapsed().as_millis() + 500);
    let t: Traffic = c.traffic("acme", Some(&window)).await.unwrap();
    let secs = t.window_s;
    assert!((6.0..9.0).contains(&secs), "window {secs} s");
    let by = |agent: &str| {
        &t.streams
            .iter()
            .find(|s| s.agent == agent)
            .unwrap()
            .observed
    };
    for (agent, calls, hold_s) in [("agent-a", 60, 0.3), ("agent-b", 30, 0.5)] {
        let o = by(agent);
        assert_eq!(o.calls, calls, "{agent}");
        let expected_per_hour = calls as f64 / secs * 3600.0;
        assert!((o.calls_per_hour - expected_per_hour).abs() < 1e-6 * expected_per_hour);
        // The stream ran at 6 s; the window adds the last calls' hold and the requests' time.
        let designed = calls as f64 / 6.0 * 3600.0;
        assert!(
            o.calls_per_hour > 0.6 * designed && o.calls_per_hour <= designed,
            "{agent}: {}",
            o.calls_per_hour
        );
        let d = o.duration.expect("every call ended");
        assert_eq!(d.count, calls);
        assert!(
            d.mean_s >= hold_s && d.mean_s < hold_s + 0.15,
            "{agent}: mean {}",
            d.mean_s
        );
        assert!(d.p90_s < hold_s + 0.3, "{agent}: p90 {}", d.p90_s);
        assert_eq!((o.waited, o.gave_up, o.patience_s), (0.0, 0.0, None));
    }
    let types: Vec<CallType> = t.types.iter().map(|t| t.call_type).collect();
    assert_eq!(types, [CallType::Chat, CallType::Inbound]);
}

#[tokio::test(flavor = "multi_thread")]
async fn traffic_counts_waits_and_give_ups() {
    let s = Server::start().await;
    let c = Client::new(&s.base, OP);
    c.create_org("busy", 1).await.unwrap();
    let call = |id: &str, max_wait_s: Option<f64>| AcquireCall {
        id: Some(id.into()),
        max_wait_s,
        ..AcquireCall::new("agent-a", CallType::Outbound)
    };
    c.start_call("busy", &call("holder", None)).await.unwrap();
    for id in ["q1", "q2", "q3"] {
        let (status, _) = c.start_call("busy", &call(id, Some(1.0))).await.unwrap();
        assert_eq!(status, 202);
    }
    let (_, waiter) = c.start_call("busy", &call("q4", None)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await; // q1 to q3 time out
    c.release("busy", "holder").await.unwrap(); // q4 takes the slot
    let q4 = c
        .call_info("busy", &waiter.id, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(q4.state, CallState::Active);
    let t = c.traffic("busy", Some("1h")).await.unwrap();
    // The window starts when the org was created, not an hour ago: rates are not diluted.
    assert!(t.window_s < 60.0, "{}", t.window_s);
    let o = &t.streams[0].observed;
    assert_eq!(o.calls, 5);
    assert_eq!((o.waited, o.gave_up), (0.8, 0.6));
    let gave_up = o.gave_up_after.expect("three gave up");
    assert!((1.0..1.5).contains(&gave_up.mean_s), "{gave_up:?}");
    let wait = o.wait.expect("two admitted");
    assert_eq!(wait.count, 2);
    assert!(wait.max_s >= 1.5, "{wait:?}");
    // Patience: the queued calls' waits (3 x ~1 s + ~1.5 s) over 3 give-ups.
    let p = o.patience_s.expect("some gave up");
    assert!((1.4..2.2).contains(&p), "{p}");
}

async fn acme_with_limit_20() -> Server {
    let s = Server::start().await;
    let (status, _) = s
        .call(
            Method::POST,
            "/orgs",
            Some(&json!({"id": "acme", "limit": 20})),
        )
        .await;
    assert_eq!(status, 201);
    s
}

fn ten_erlangs() -> serde_json::Value {
    json!([{"agent": "agent-a", "call_type": "inbound", "calls_per_hour": 300.0, "mean_duration_s": 120.0}])
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_and_simulate_answer_over_http_and_change_nothing() {
    let s = acme_with_limit_20().await;
    let check = json!({"horizon_s": 21600.0, "warmup_s": 1800.0, "replications": 4});
    let body = json!({"traffic": ten_erlangs(), "check": check,
        "targets": [{"call_type": "inbound", "service_level": 0.8, "within_s": 20.0}]});
    let (status, v) = s.call(Method::POST, "/orgs/acme/plan", Some(&body)).await;
    assert_eq!(status, 200, "{v}");
    let a: PlanAnswer = serde_json::from_value(v).unwrap();
    // 10 erlangs, 80% within 20 s: the fewest slots Erlang C says meet it.
    let level = |c| {
        ErlangC::new(c, 300.0 / 3600.0, 120.0)
            .unwrap()
            .service_level(20.0)
    };
    let erlang = a.plan.erlang_limit;
    assert!(level(erlang) >= 0.8 && level(erlang - 1) < 0.8, "{erlang}");
    assert!(
        a.plan.limit.abs_diff(erlang) <= 1,
        "{} vs {erlang}",
        a.plan.limit
    );
    assert_eq!(a.current.limit, 20);
    let limits: Vec<u32> = a.plan.alternatives.iter().map(|x| x.limit).collect();
    assert!(limits.contains(&a.plan.limit));
    let body = json!({"traffic": ten_erlangs(), "check": check,
        "what_if": [{"name": "limit 11", "limit": 11}]});
    let (status, v) = s
        .call(Method::POST, "/orgs/acme/simulate", Some(&body))
        .await;
    assert_eq!(status, 200, "{v}");
    let sim: SimulateAnswer = serde_json::from_value(v).unwrap();
    let names: Vec<(&str, u32)> = sim
        .scenarios
        .iter()
        .map(|x| (x.name.as_str(), x.config.limit))
        .collect();
    assert_eq!(names, [("current", 20), ("limit 11", 11)]);
    let wait = |i: usize| sim.scenarios[i].report.org.mean_wait_s.mean;
    assert!(wait(1) > wait(0), "{} vs {}", wait(1), wait(0));
    // Planning changed nothing.
    assert_eq!(s.get_ok("/orgs/acme").await["limit"], 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_planning_input_is_400_naming_the_field() {
    let s = acme_with_limit_20().await;
    let target = json!([{"call_type": "inbound", "service_level": 0.8, "within_s": 20.0}]);
    let cases = [
        (
            "GET",
            "/orgs/acme/traffic?window=soon",
            json!(null),
            "window",
        ),
        ("GET", "/orgs/acme/traffic?days=7", json!(null), "days"),
        (
            "POST",
            "/orgs/acme/plan",
            json!({"traffic": ten_erlangs(), "targets": []}),
            "targets",
        ),
        (
            "POST",
            "/orgs/acme/plan",
            json!({"traffic": ten_erlangs(), "window": "7d", "targets": target}),
            "window",
        ),
        (
            "POST",
            "/orgs/acme/plan",
            json!({"traffic": ten_erlangs(), "targets": target, "check": {"horizon_s": 1e9}}),
            "check.horizon_s",
        ),
        (
            "POST",
            "/orgs/acme/simulate",
            json!({"traffic": ten_erlangs(), "check": {"replications": 1}}),
            "check.replications",
        ),
        (
            "POST",
            "/orgs/acme/simulate",
            json!({"traffic": ten_erlangs(), "what_if": [{"name": "x", "limit": 20,
            "reservations": [{"agent": "a", "call_type": "chat", "reserved": 21}]}]}),
            "what_if",
        ),
        (
            "POST",
            "/orgs/acme/simulate",
            json!({"traffic": [{"agent": "a", "call_type": "inbound", "calls_per_hour": -1.0, "mean_duration_s": 60.0}]}),
            "calls_per_hour",
        ),
    ];
    for (method, path, body, field) in cases {
        let method: Method = method.parse().unwrap();
        let body = (!body.is_null()).then_some(&body);
        let (status, v) = s.call(method, path, body).await;
        assert_eq!(status, 400, "{path} {body:?}: {v}");
        let e: ErrorBody = serde_json::from_value(v).unwrap();
        assert_eq!(e.error.code, ErrorCode::InvalidRequest);
        assert!(
            e.error.message.starts_with(field),
            "{path}: {}",
            e.error.message
        );
    }
    let (status, _) = s.call(Method::GET, "/orgs/nobody/traffic", None).await;
    assert_eq!(status, 404);
    // Without traffic, an org with no recorded calls has nothing to learn
    // from: that is its state, not a bad request.
    for path in ["/orgs/acme/plan", "/orgs/acme/simulate"] {
        let (status, v) = s
            .call(Method::POST, path, Some(&json!({"targets": target})))
            .await;
        assert_eq!(status, 409, "{path}: {v}");
        assert_eq!(v["error"]["code"], "no_traffic", "{path}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_plans_simulates_and_shows_traffic() {
    let s = acme_with_limit_20().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("traffic.json");
    std::fs::write(&file, ten_erlangs().to_string()).unwrap();
    let file = file.to_str().unwrap();
    let quick = ["--horizon", "6h", "--replications", "4"];
    let mut args = vec![
        "plan",
        "acme",
        "--traffic",
        file,
        "--target",
        "inbound=80%/20s",
    ];
    args.extend(quick);
    let (code, out, err) = cli(&s, &args);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(now 20); a pure shared pool needs "), "{out}");
    assert!(out.contains("<- recommended"), "{out}");
    let mut args = vec![
        "simulate",
        "acme",
        "--traffic",
        file,
        "--limit",
        "12",
        "--reserve",
        "agent-a:inbound=2",
    ];
    args.extend(quick);
    let (code, out, err) = cli(&s, &args);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("current") && out.contains("limit 12, agent-a inbound 2"),
        "{out}"
    );
    let (code, out, _) = cli(&s, &["traffic", "acme", "--window", "1h"]);
    // The org is seconds old: the window is its life, not the hour asked.
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("traffic of acme over the last ") && lines[0].ends_with('s'),
        "{out}"
    );
    assert!(!lines[0].ends_with("1h"), "{out}");
    assert_eq!(lines[1..], ["AGENT            TYPE      CALLS  PER HOUR  DURATION MEAN  P90     WAITED  WAIT P90  GAVE UP  PATIENCE", "no calls in the window"]);
    let (code, _, err) = cli(&s, &["plan", "acme", "--target", "inbound=80%"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("TYPE=SHARE/TIME"), "{err}");
}
