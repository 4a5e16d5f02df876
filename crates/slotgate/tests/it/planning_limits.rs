//! Planning cannot starve the server (issue 22): the budget counts what will
//! be simulated, runtime keys may not plan, one org's big job leaves other
//! orgs' planning free, a job whose request goes away is cancelled, and
//! SIGTERM stops the server whatever job runs.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use slotgate_api::{ErrorCode, Role};

use crate::support::{eventually, Server};

/// A simulation of `calls_per_hour` calls an hour lasting 36 s, with `what_ifs`
/// what-ifs, each check `horizon_s` long with 2 replications.
fn simulation(calls_per_hour: f64, horizon_s: f64, what_ifs: usize) -> Value {
    let what_if: Vec<Value> = (0..what_ifs)
        .map(|i| json!({"name": format!("limit {}", 900 + i), "limit": 900 + i}))
        .collect();
    json!({
        "traffic": [{"agent": "A", "call_type": "inbound",
                     "calls_per_hour": calls_per_hour, "mean_duration_s": 36}],
        "what_if": what_if,
        "check": {"horizon_s": horizon_s, "warmup_s": 0, "replications": 2}
    })
}

/// Within the budget, and minutes of work for the debug build: 2,000,000
/// calls in each of 4 scenarios.
fn big() -> Value {
    simulation(100_000.0, 36_000.0, 3)
}

/// A fraction of a second.
fn small() -> Value {
    simulation(10.0, 3_600.0, 0)
}

/// The number in the `/metrics` line that starts with `series `.
async fn metric(s: &Server, series: &str) -> u64 {
    let text = s.anon.get(s.url("/metrics")).send().await.unwrap();
    let text = text.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{series} ")))
        .unwrap_or_else(|| panic!("{series} in /metrics"))
        .parse()
        .unwrap()
}

async fn simulate(s: &Server, org: &str, body: &Value) -> crate::support::Answer {
    let path = format!("/v1/orgs/{org}/simulate");
    s.op(Method::POST, &path, Some(body)).await
}

#[tokio::test]
async fn hourly_rates_count_against_the_budget_and_runtime_keys_may_not_plan() {
    let s = Server::start().await;
    s.create_org("acme", 10).await;
    // The body: 1 call an hour overall, 200,000 in every hour.
    let mut body = simulation(1.0, 86_400.0, 0);
    body["traffic"][0]["calls_per_hour_by_hour"] = json!(vec![200_000.0; 24]);
    let a = simulate(&s, "acme", &body).await;
    assert_eq!(a.refusal(), (400, ErrorCode::InvalidRequest), "{a}");
    assert!(a.text.contains("horizon_s"), "names the field: {a}");

    // Many what-ifs, each within the budget, are over it together.
    let a = simulate(&s, "acme", &simulation(100_000.0, 36_000.0, 4)).await;
    assert_eq!(a.refusal(), (400, ErrorCode::InvalidRequest), "{a}");
    assert!(a.text.contains("what_if"), "names the field: {a}");

    let runtime = s.new_key("acme", Role::Runtime, "worker").await;
    let a = s
        .send(
            Some(&runtime.key),
            Method::POST,
            "/v1/orgs/acme/simulate",
            Some(&small()),
        )
        .await;
    assert_eq!(a.refusal(), (403, ErrorCode::Forbidden), "{a}");
    assert!(a.text.contains("admin"), "names the role needed: {a}");
    let admin = s.new_key("acme", Role::Admin, "planner").await;
    let a = s
        .send(
            Some(&admin.key),
            Method::POST,
            "/v1/orgs/acme/simulate",
            Some(&small()),
        )
        .await;
    assert_eq!(a.status, 200, "{a}");
}

#[tokio::test]
async fn a_big_job_leaves_other_orgs_free_and_sigterm_stops_it() {
    let mut s = Server::start().await;
    s.create_org("big", 1000).await;
    s.create_org("small", 10).await;
    let (client, url) = (s.client.clone(), s.url("/v1/orgs/big/simulate"));
    let job = tokio::spawn(async move { client.post(url).json(&big()).send().await });
    eventually(30, "the big job runs", || async {
        metric(&s, "slotgate_planning_jobs{state=\"running\"}").await == 1
    })
    .await;

    // The same org waits its turn; another org is answered meanwhile.
    let a = simulate(&s, "big", &small()).await;
    assert_eq!(a.refusal(), (429, ErrorCode::PlanningBusy), "{a}");
    let other = tokio::time::timeout(Duration::from_secs(60), simulate(&s, "small", &small()))
        .await
        .expect("another org's small simulation answers while the big one runs");
    assert_eq!(other.status, 200, "{other}");
    assert_eq!(
        metric(&s, "slotgate_planning_jobs{state=\"running\"}").await,
        1,
        "the big job still runs"
    );

    // SIGTERM: the job is cancelled and the server exits (terminate bounds it).
    let status = s.terminate().await;
    assert!(status.success(), "{status}");
    let answer = tokio::time::timeout(Duration::from_secs(10), job)
        .await
        .expect("the big job's request ends with the server")
        .unwrap();
    if let Ok(r) = answer {
        assert_eq!(
            r.status(),
            503,
            "a cancelled job answers planning_cancelled"
        );
    }
}

#[tokio::test]
async fn a_job_whose_request_goes_away_is_cancelled() {
    let s = Server::start().await;
    s.create_org("acme", 1000).await;
    let gone = s
        .client
        .post(s.url("/v1/orgs/acme/simulate"))
        .json(&big())
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(gone.is_err(), "the big job runs longer than 2 s");
    eventually(30, "the job is cancelled", || async {
        metric(&s, "slotgate_planning_jobs_total{outcome=\"gone\"}").await == 1
            && metric(&s, "slotgate_planning_jobs{state=\"running\"}").await == 0
    })
    .await;
    // The org's turn is free again: its next job runs at once.
    let a = simulate(&s, "acme", &small()).await;
    assert_eq!(a.status, 200, "{a}");
}

#[tokio::test]
async fn the_planning_deadline_is_a_setting() {
    let s = Server::start_with(&["--planning-deadline", "1s", "--planning-workers", "1"]).await;
    s.create_org("acme", 1000).await;
    // Minutes of work by default; the 1 s deadline stops it (the bound is
    // far below the default 60 s).
    let a = tokio::time::timeout(Duration::from_secs(30), simulate(&s, "acme", &big()))
        .await
        .expect("the job is stopped at its deadline");
    assert_eq!(a.refusal(), (503, ErrorCode::PlanningCancelled), "{a}");
    assert!(a.text.contains("within 1s"), "says the deadline: {a}");
    assert_eq!(
        metric(&s, "slotgate_planning_jobs_total{outcome=\"deadline\"}").await,
        1
    );
}

#[test]
fn bad_planning_settings_are_refused_at_start_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (args, option) in [
        (["--planning-workers", "0"], "--planning-workers"),
        (["--planning-workers", "65"], "--planning-workers"),
        (["--planning-deadline", "0s"], "--planning-deadline"),
        (["--planning-deadline", "soon"], "--planning-deadline"),
    ] {
        let out = crate::support::serve_command("127.0.0.1:0", &data)
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} is refused: {err}");
        assert!(err.contains(option), "{args:?} names {option}: {err}");
        assert!(!data.exists(), "a refused start creates nothing");
    }
}
