//! Limits of the real `slotgate serve` binary (issue 22): thousands of
//! silent connections never keep `/healthz` from answering, idle and slow
//! connections are closed, long-polls have a cap of their own; each key is
//! held to its rate (429 `rate_limited` with `Retry-After`, and nothing
//! done), a key's own rate overrides its role's, the keys of an org are
//! held together to `--rate-org` (or the org's own, `--rate-org-for`), and failed authentication
//! is throttled per client address, with `X-Forwarded-For` believed only
//! from a trusted proxy.

use std::time::{Duration, Instant};

use crate::support::{Answer, Server, OPERATOR_KEY};
use reqwest::Method;
use serde_json::json;
use slotgate_api::{ErrorCode, KeyInfo, KeyList, OrgRate, RateSource, Role};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Generous bound on anything that should happen within about a second.
const SOON: Duration = Duration::from_secs(5);

/// Raises this process's soft limit of open files to its hard one: the
/// test holds thousands of sockets.
fn raise_open_files() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// `GET /healthz` on a new connection, by hand (no pool to reuse a
/// connection): the time its 200 took, or why there was none.
async fn healthz(port: u16) -> Result<Duration, String> {
    let start = Instant::now();
    let answer = tokio::time::timeout(SOON, async {
        let mut tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: slotgate\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut text = Vec::new();
        tcp.read_to_end(&mut text)
            .await
            .map_err(|e| format!("read: {e}"))?;
        Ok::<_, String>(String::from_utf8_lossy(&text).into_owned())
    })
    .await
    .map_err(|_| format!("no answer within {SOON:?}"))??;
    if !answer.starts_with("HTTP/1.1 200") {
        return Err(format!("not a 200: {answer:?}"));
    }
    Ok(start.elapsed())
}

/// Whether the server closes `tcp` within `bound` (reading EOF or an error);
/// bytes it sends first are skipped.
async fn closed_within(tcp: &mut TcpStream, bound: Duration) -> bool {
    tokio::time::timeout(bound, async {
        let mut buf = [0u8; 1024];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_silent_connections_never_keep_healthz_from_answering() {
    const SILENT: usize = 3_000;
    let files = raise_open_files();
    assert!(
        files > SILENT as u64 + 200,
        "this test holds {SILENT} sockets; the limit of open files is {files}"
    );
    // The server may hold 2,048 files: fewer than the silent connections.
    // Its default cap stays below that.
    let s = Server::start_with_env(&[], &[(crate::support::RLIMIT_NOFILE, "2048")]).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", s.pid())).unwrap();
    let files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .nth(3)
        .unwrap();
    assert_eq!(files, "2048", "the server runs with 2,048 open files");
    s.create_org("acme", 2).await;
    // A long-poll open before the flood: a connection with a request in
    // progress, which the server must keep and answer.
    let after = s.all_events("acme").await.last().map_or(0, |e| e.seq);
    let poll = {
        let client = s.client.clone();
        let url = s.url(&format!("/v1/orgs/acme/events?after={after}&wait_s=30"));
        tokio::spawn(async move { client.get(url).send().await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut silent = Vec::with_capacity(SILENT);
    let mut slowest = Duration::ZERO;
    let mut probes = 0;
    while silent.len() < SILENT {
        for _ in 0..250 {
            match TcpStream::connect(("127.0.0.1", s.port)).await {
                Ok(tcp) => silent.push(tcp),
                Err(e) => panic!("connection {} refused: {e}", silent.len()),
            }
        }
        let took = healthz(s.port)
            .await
            .unwrap_or_else(|e| panic!("/healthz with {} silent connections: {e}", silent.len()));
        slowest = slowest.max(took);
        probes += 1;
    }
    // All of them open at once (those the server closed are closed on its side).
    for _ in 0..5 {
        let took = healthz(s.port).await.expect("/healthz after the flood");
        slowest = slowest.max(took);
        probes += 1;
    }
    eprintln!(
        "{SILENT} silent connections (2,048 open files, default cap): {probes} /healthz probes, slowest answer {} ms",
        slowest.as_millis()
    );
    // The long-poll held on: a change answers it.
    s.op(
        Method::PUT,
        "/v1/orgs/acme/limit",
        Some(&json!({"limit": 3})),
    )
    .await
    .ok(200);
    let answer = tokio::time::timeout(SOON, poll)
        .await
        .expect("the long-poll is answered once the org changes")
        .unwrap()
        .expect("the long-poll's connection was kept");
    assert_eq!(answer.status(), 200);
    let page: slotgate_api::EventPage = answer.json().await.unwrap();
    assert!(!page.events.is_empty(), "the long-poll got the new event");
    drop(silent);
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed_and_long_polls_are_not() {
    let s = Server::start_with(&["--idle-timeout", "1s", "--header-timeout", "1s"]).await;
    s.create_org("acme", 1).await;

    // Silent from the start.
    let mut silent = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    assert!(
        closed_within(&mut silent, SOON).await,
        "a silent connection is closed after the idle timeout"
    );

    // Kept alive after an answer, then idle.
    let mut kept = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: slotgate\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    kept.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    assert!(
        closed_within(&mut kept, SOON).await,
        "a keep-alive connection is closed once idle for the idle timeout"
    );

    // Headers sent a byte at a time: cut off after the header timeout,
    // though bytes keep coming.
    let mut slow = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    let header = b"GET /healthz HTTP/1.1\r\nHost: slotgate\r\nX-Slow: ".to_vec();
    let cut = tokio::time::timeout(Duration::from_secs(20), async {
        for byte in header.iter().chain(std::iter::repeat(&b'a')) {
            if slow.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut buf = [0u8; 64];
            // The server never answers a request it has not read: any
            // readiness here is the connection closing.
            if let Ok(Ok(0) | Err(_)) =
                tokio::time::timeout(Duration::from_millis(1), slow.read(&mut buf)).await
            {
                return;
            }
        }
    })
    .await;
    assert!(cut.is_ok(), "a slow header sender is cut off");

    // A long-poll outlasts the idle timeout: it is a request in progress.
    let started = Instant::now();
    let a = s
        .op(
            Method::GET,
            "/v1/orgs/acme/events?after=1000&wait_s=3",
            None,
        )
        .await
        .ok(200);
    assert!(a.text.contains("\"events\""), "{a}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the long-poll waited its wait_s, beyond the 1 s idle timeout"
    );
}

#[tokio::test]
async fn https_connections_get_the_same_timeouts() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = crate::support::tls::TestCa::new(tmp.path(), "limits");
    let (cert, key) = ca.issue("server", "slotgate", &["localhost", "127.0.0.1"]);
    let extra = [
        "--tls-cert".to_string(),
        cert.display().to_string(),
        "--tls-key".to_string(),
        key.display().to_string(),
        "--header-timeout".to_string(),
        "1s".to_string(),
        "--idle-timeout".to_string(),
        "1s".to_string(),
    ];
    let (_child, port, _stderr) =
        crate::support::spawn_with(&tmp.path().join("data"), &extra, &[]).await;

    // A client that never starts its TLS handshake is closed, as on HTTP.
    let mut silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    assert!(
        closed_within(&mut silent, SOON).await,
        "a silent connection to the HTTPS port is closed after the idle timeout"
    );

    // And the server still answers over TLS.
    let client = slotgate_client::Client::new(&format!("https://127.0.0.1:{port}"), OPERATOR_KEY)
        .with_ca_file(ca.cert_path())
        .unwrap();
    assert!(
        tokio::time::timeout(SOON, client.orgs())
            .await
            .unwrap()
            .is_ok(),
        "an HTTPS request is answered"
    );
}

#[tokio::test]
async fn long_polls_above_their_cap_get_503_naming_it() {
    let s = Server::start_with(&["--max-waits", "1"]).await;
    s.create_org("acme", 1).await;
    // A first long-poll holds the one place once it is open; a second,
    // sent while it is, is refused. (Should the second be served first, on
    // a slow machine, the first is the one refused: try again.)
    let mut refused = None;
    for _ in 0..5 {
        let first = {
            let client = s.client.clone();
            let url = s.url("/v1/orgs/acme/events?after=1000&wait_s=3");
            tokio::spawn(async move { client.get(url).send().await })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        let a = s
            .op(
                Method::GET,
                "/v1/orgs/acme/events?after=1000&wait_s=1",
                None,
            )
            .await;
        let first = first.await.unwrap().unwrap().status();
        if a.status == 503 {
            assert_eq!(first, 200, "the open long-poll is answered");
            refused = Some(a);
            break;
        }
    }
    let a = refused.expect("a second long-poll is refused while the first is open");
    assert_eq!(a.refusal(), (503, ErrorCode::TooManyWaits));
    assert_eq!(a.error().cap, Some(1));
    assert!(a.error().message.contains("--max-waits"), "{a}");
    assert_eq!(a.header("retry-after"), "1");
    // Reads without a wait are not long-polls.
    s.op(Method::GET, "/v1/orgs/acme/events?after=0", None)
        .await
        .ok(200);
}

/// Sends `n` acquires of new calls with `key` as fast as it can; the
/// answers in order, and the call id of each.
async fn acquires(s: &Server, key: &str, prefix: &str, n: usize) -> Vec<(String, Answer)> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("{prefix}-{i}");
        let body = json!({"id": id, "agent": "a", "type": "chat"});
        let a = s
            .send(Some(key), Method::POST, "/v1/orgs/acme/calls", Some(&body))
            .await;
        out.push((id, a));
    }
    out
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after_and_changes_nothing() {
    let s = Server::start_with(&["--rate-runtime", "5"]).await;
    s.create_org("acme", 1000).await;
    let runtime = s.new_key("acme", Role::Runtime, "ci").await;

    let answers = acquires(&s, &runtime.key, "slow", 40).await;
    let refused: Vec<_> = answers.iter().filter(|(_, a)| a.status == 429).collect();
    assert!(
        !refused.is_empty(),
        "40 requests at once exceed 5 per second"
    );
    for (id, a) in &refused {
        assert_eq!(a.refusal(), (429, ErrorCode::RateLimited));
        let retry: u64 = a.header("retry-after").parse().expect("whole seconds");
        assert!((1..=2).contains(&retry), "Retry-After {retry}");
        // Nothing was done: the call does not exist.
        let read = s
            .op(Method::GET, &format!("/v1/orgs/acme/calls/{id}"), None)
            .await;
        assert_eq!(read.refusal(), (404, ErrorCode::CallNotFound), "{id}");
    }
    // A retry of an admitted call's acquire counts too.
    let (done, _) = answers.iter().find(|(_, a)| a.status == 201).unwrap();
    let retry = json!({"id": done, "agent": "a", "type": "chat"});
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let a = s
            .send(
                Some(&runtime.key),
                Method::POST,
                "/v1/orgs/acme/calls",
                Some(&retry),
            )
            .await;
        statuses.push(a.status);
    }
    assert!(statuses.contains(&429), "retries count: {statuses:?}");
    // The operator key has its own bucket.
    s.op(Method::GET, "/v1/orgs/acme", None).await.ok(200);
    // Counted by role, without org names.
    let metrics = s.op(Method::GET, "/metrics", None).await.ok(200).text;
    let line = metrics
        .lines()
        .find(|l| l.starts_with(r#"slotgate_rate_limited_total{role="runtime",scope="key"}"#))
        .expect("the rate_limited counter");
    let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= refused.len() as u64, "{line}");
}

#[tokio::test]
async fn a_keys_own_rate_overrides_its_roles_and_survives_a_restart() {
    let mut s = Server::start_with(&["--rate-runtime", "5"]).await;
    s.create_org("acme", 1000).await;
    let body = json!({"role": "runtime", "name": "bulk", "rate_per_s": 1000});
    let bulk: slotgate_api::NewKey = s
        .op(Method::POST, "/v1/orgs/acme/keys", Some(&body))
        .await
        .ok(201)
        .json();
    assert_eq!(bulk.rate_per_s, Some(1000));
    let answers = acquires(&s, &bulk.key, "bulk", 40).await;
    assert!(
        answers.iter().all(|(_, a)| a.status == 201),
        "a key of 1000 per second is not held to its role's 5"
    );

    // Only the operator sets rates; out of range is 400 naming the field.
    let admin = s.new_key("acme", Role::Admin, "admin").await;
    let a = s
        .send(
            Some(&admin.key),
            Method::POST,
            "/v1/orgs/acme/keys",
            Some(&body),
        )
        .await;
    assert_eq!(a.refusal(), (403, ErrorCode::Forbidden));
    let path = format!("/v1/orgs/acme/keys/{}", bulk.id);
    let a = s
        .op(Method::PATCH, &path, Some(&json!({"rate_per_s": 0})))
        .await;
    assert_eq!(a.refusal(), (400, ErrorCode::InvalidRequest));
    assert!(a.error().message.starts_with("rate_per_s"), "{a}");

    // Lowered to 2 per second (2.0 is the whole number 2, as JSON Schema
    // reads it): held to it at once.
    let info: KeyInfo = s
        .op(Method::PATCH, &path, Some(&json!({"rate_per_s": 2.0})))
        .await
        .ok(200)
        .json();
    assert_eq!(info.rate_per_s, Some(2));
    let answers = acquires(&s, &bulk.key, "lowered", 10).await;
    assert!(answers.iter().any(|(_, a)| a.status == 429));

    s.terminate().await;
    s.restart().await;
    let keys: KeyList = s.get("/v1/orgs/acme/keys").await;
    let kept = keys.keys.iter().find(|k| k.id == bulk.id).unwrap();
    assert_eq!(kept.rate_per_s, Some(2), "the key's rate is stored");
    let ci = keys.keys.iter().find(|k| k.id == admin.id).unwrap();
    assert_eq!(ci.rate_per_s, None);
}

#[tokio::test]
async fn the_keys_of_an_org_together_are_held_to_the_org_rate_or_its_own() {
    let s = Server::start_with(&[
        "--rate-org",
        "5",
        "--rate-runtime",
        "1000",
        "--rate-org-for",
        "other=1000",
    ])
    .await;
    s.create_org("acme", 1000).await;
    s.create_org("other", 1000).await;
    let keys = [
        s.new_key("acme", Role::Runtime, "one").await.key,
        s.new_key("acme", Role::Runtime, "two").await.key,
    ];
    let other = s.new_key("other", Role::Runtime, "ci").await.key;

    // 40 acquires at once, in turn from two keys each well within its own rate.
    let mut refused = Vec::new();
    for i in 0..40 {
        let id = format!("c{i}");
        let body = json!({"id": id, "agent": "a", "type": "chat"});
        let a = s
            .send(
                Some(&keys[i % 2]),
                Method::POST,
                "/v1/orgs/acme/calls",
                Some(&body),
            )
            .await;
        match a.status {
            201 => {}
            _ => refused.push((id, a)),
        }
    }
    assert!(
        !refused.is_empty(),
        "40 requests at once exceed 5 per second"
    );
    for (id, a) in &refused {
        assert_eq!(a.refusal(), (429, ErrorCode::RateLimited), "{a}");
        let retry: u64 = a.header("retry-after").parse().expect("whole seconds");
        assert!((1..=2).contains(&retry), "Retry-After {retry}");
        assert!(a.error().message.contains("this org"), "{a}");
        let read = s
            .op(Method::GET, &format!("/v1/orgs/acme/calls/{id}"), None)
            .await;
        assert_eq!(read.refusal(), (404, ErrorCode::CallNotFound), "{id}");
    }
    // Another org has its own allowance, here its own rate (--rate-org-for),
    // and the operator key is not the org's.
    for i in 0..20 {
        let body = json!({"id": format!("o{i}"), "agent": "a", "type": "chat"});
        s.send(
            Some(&other),
            Method::POST,
            "/v1/orgs/other/calls",
            Some(&body),
        )
        .await
        .ok(201);
    }
    s.op(Method::GET, "/v1/orgs/acme", None).await.ok(200);
    // Counted apart from keys over their own rate, without org names.
    let metrics = s.op(Method::GET, "/metrics", None).await.ok(200).text;
    let line = metrics
        .lines()
        .find(|l| l.starts_with(r#"slotgate_rate_limited_total{role="runtime",scope="org"}"#))
        .expect("the org's rate_limited counter");
    let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= refused.len() as u64, "{line}");
    assert!(
        metrics.contains(r#"slotgate_rate_limited_total{role="runtime",scope="key"} 0"#),
        "no key was over its own rate"
    );
}

#[tokio::test]
async fn an_orgs_own_rate_is_set_at_runtime_by_the_operator_and_survives_a_restart() {
    let mut s = Server::start_with(&["--rate-org", "1000", "--rate-runtime", "1000"]).await;
    s.create_org("acme", 1000).await;
    let key = s.new_key("acme", Role::Runtime, "ci").await.key;
    let server = OrgRate {
        rate_per_s: None,
        effective_rate_per_s: 1000,
        source: RateSource::Server,
    };
    assert_eq!(s.get::<OrgRate>("/v1/orgs/acme/rate").await, server);
    let answers = acquires(&s, &key, "before", 20).await;
    assert!(answers.iter().all(|(_, a)| a.status == 201));

    // Only the operator sets it; a bad body is 400 naming the field and
    // changes nothing; an unknown org is 404.
    let admin = s.new_key("acme", Role::Admin, "admin").await.key;
    let two = json!({"rate_per_s": 2});
    let a = s
        .send(Some(&admin), Method::PUT, "/v1/orgs/acme/rate", Some(&two))
        .await;
    assert_eq!(a.refusal(), (403, ErrorCode::Forbidden));
    for bad in [
        json!({"rate_per_s": -1}),
        json!({"rate_per_s": 1_000_001}),
        json!({}),
    ] {
        let a = s.op(Method::PUT, "/v1/orgs/acme/rate", Some(&bad)).await;
        assert_eq!(a.refusal(), (400, ErrorCode::InvalidRequest), "{bad}");
        assert!(a.error().message.contains("rate_per_s"), "{a}");
    }
    assert_eq!(s.get::<OrgRate>("/v1/orgs/acme/rate").await, server);
    let a = s.op(Method::PUT, "/v1/orgs/nope/rate", Some(&two)).await;
    assert_eq!(a.refusal(), (404, ErrorCode::OrgNotFound));

    // 2 per second for all its keys together: held to it at once.
    let own: OrgRate = s
        .op(Method::PUT, "/v1/orgs/acme/rate", Some(&two))
        .await
        .ok(200)
        .json();
    let two_own = OrgRate {
        rate_per_s: Some(2),
        effective_rate_per_s: 2,
        source: RateSource::Org,
    };
    assert_eq!(own, two_own);
    let held = |answers: &[(String, Answer)]| {
        answers.iter().any(|(_, a)| {
            a.status == 429 && a.error().message.contains("2 requests per second together")
        })
    };
    assert!(held(&acquires(&s, &key, "lowered", 10).await));

    // Stored: a restart keeps it.
    s.terminate().await;
    s.restart().await;
    assert_eq!(s.get::<OrgRate>("/v1/orgs/acme/rate").await, two_own);
    assert!(held(&acquires(&s, &key, "restarted", 10).await));

    // null: back to the server's setting, at once.
    let back: OrgRate = s
        .op(
            Method::PUT,
            "/v1/orgs/acme/rate",
            Some(&json!({"rate_per_s": null})),
        )
        .await
        .ok(200)
        .json();
    assert_eq!(back, server);
    let answers = acquires(&s, &key, "after", 20).await;
    assert!(answers.iter().all(|(_, a)| a.status == 201));
}

/// A request with a wrong key, as if forwarded for `forwarded_for`.
async fn wrong_key(s: &Server, forwarded_for: &str) -> Answer {
    let r = s
        .anon
        .get(s.url("/v1/orgs"))
        .bearer_auth("sgk_0000000000000000_wrong")
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .expect("an answer");
    Answer::read(r).await.unwrap()
}

#[tokio::test]
async fn failed_authentication_is_throttled_per_address_and_x_forwarded_for_needs_a_trusted_proxy()
{
    // 127.0.0.1 is no trusted proxy: X-Forwarded-For is ignored, and every
    // request counts against the peer's address.
    let s = Server::start_with(&["--auth-failures", "3"]).await;
    for i in 0..3 {
        let a = wrong_key(&s, &format!("203.0.113.{i}")).await;
        assert_eq!(a.refusal(), (401, ErrorCode::Unauthorized));
    }
    let a = wrong_key(&s, "203.0.113.99").await;
    assert_eq!(a.refusal(), (429, ErrorCode::RateLimited), "{a}");
    assert!(a.header("retry-after").parse::<u64>().unwrap() >= 1);
    // Throttled whatever it sends now, the right key too.
    let a = s.op(Method::GET, "/v1/orgs", None).await;
    assert_eq!(a.refusal(), (429, ErrorCode::RateLimited));

    // Behind a trusted proxy, each client has its own allowance.
    let s = Server::start_with(&["--auth-failures", "3", "--trusted-proxy", "127.0.0.1"]).await;
    for _ in 0..3 {
        let a = wrong_key(&s, "203.0.113.1").await;
        assert_eq!(a.refusal(), (401, ErrorCode::Unauthorized));
    }
    let a = wrong_key(&s, "203.0.113.1").await;
    assert_eq!(a.refusal(), (429, ErrorCode::RateLimited));
    let a = wrong_key(&s, "203.0.113.2").await;
    assert_eq!(
        a.refusal(),
        (401, ErrorCode::Unauthorized),
        "another client"
    );
    let metrics = s
        .anon
        .get(s.url("/metrics"))
        .bearer_auth(OPERATOR_KEY)
        .header("x-forwarded-for", "203.0.113.3")
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l
            .starts_with(r#"slotgate_rate_limited_total{role="anonymous",scope="address"}"#)
            && !l.ends_with(" 0")),
        "failed authentication is counted"
    );
}
