//! `serve --metrics-listen ADDR`: a second, plain-HTTP listener meant for a
//! private network, where Prometheus reads every org's series without a key,
//! while the main listener's `/metrics` keeps asking for one (with
//! `--metrics-auth`). Only `/metrics` and `/healthz` are served there.

use std::net::TcpListener;

use crate::support::Server;

/// A port nobody listens on now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding port 0");
    listener.local_addr().expect("a bound address").port()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_listener_serves_every_orgs_series_without_a_key_and_nothing_else() {
    let port = free_port();
    let at = format!("127.0.0.1:{port}");
    let s = Server::start_with(&["--metrics-auth", "--metrics-listen", &at]).await;
    s.create_org("acme", 2).await;
    s.acquire("acme", "c1", "A", slotgate_api::CallType::Chat)
        .await
        .ok(201);
    let private = reqwest::Client::new();
    let scrape = private
        .get(format!("http://{at}/metrics"))
        .send()
        .await
        .expect("the metrics listener answers");
    assert_eq!(scrape.status(), 200);
    let text = scrape.text().await.unwrap();
    assert!(
        text.contains("slotgate_org_active{org=\"acme\"} 1"),
        "every org's series, no key asked:\n{text}"
    );

    // The main listener still asks for a key (--metrics-auth).
    let public = s.anon.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 401);

    // Nothing but /metrics and /healthz is served there.
    let health = private
        .get(format!("http://{at}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    for path in ["/v1/orgs", "/v1/orgs/acme/calls", "/"] {
        let other = private
            .get(format!("http://{at}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            other.status(),
            404,
            "{path} is not served on the metrics listener"
        );
        let body = other.text().await.unwrap();
        assert!(
            body.contains("--metrics-listen"),
            "the 404 says where it is: {body}"
        );
    }
}

#[test]
fn a_metrics_address_in_use_is_refused_at_start_naming_the_option() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let at = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::serve_command("127.0.0.1:0", &dir.path().join("data"))
        .args(["--metrics-listen", &at])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("cannot listen on {at} (--metrics-listen)")),
        "{err}"
    );
}
