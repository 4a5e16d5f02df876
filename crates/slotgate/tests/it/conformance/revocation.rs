//! Revoking a key reaches what it has open: its event stream ends and its
//! long-poll answers 401 at once. Run through a follower too
//! (`SLOTGATE_TEST_STORE=replicas` in scripts/test.sh), which forwards the
//! stream and the long-poll to the leader, where the key is revoked.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use slotgate_api::{CallType, Role};

use crate::support::Server;

#[tokio::test]
async fn a_revoked_key_loses_its_open_stream_and_long_poll_at_once() {
    let s = Server::start().await;
    s.create_org("acme", 1).await;
    let key = s.new_key("acme", Role::Runtime, "worker").await;
    // The one slot is taken: the key's call will queue and wait.
    s.acquire("acme", "holder", "A", CallType::Chat)
        .await
        .ok(201);

    let mut stream = s
        .anon
        .get(s.url("/v1/orgs/acme/events/stream"))
        .bearer_auth(&key.key)
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(stream.status(), 200);

    let (base, secret) = (s.base.clone(), key.key.clone());
    let long_poll = tokio::spawn(async move {
        let body = json!({"agent": "B", "type": "chat", "wait_s": 60});
        let r = reqwest::Client::new()
            .post(format!("{base}/v1/orgs/acme/calls"))
            .bearer_auth(&secret)
            .json(&body)
            .send()
            .await
            .expect("the long-poll answers");
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    });
    // The long-poll is waiting once its call is queued.
    crate::support::eventually(30, "the key's call queues", || async {
        s.org("acme").await.queued == 1
    })
    .await;

    let path = format!("/v1/orgs/acme/keys/{}", key.id);
    s.op(Method::DELETE, &path, None).await.ok(204);

    let (status, text) = tokio::time::timeout(Duration::from_secs(10), long_poll)
        .await
        .expect("the long-poll answers within 10 s of the revocation, not after its 60 s")
        .unwrap();
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("revoked"), "{text}");

    // The stream ends (its body finishes) rather than follow the org's events.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.chunk().await {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the stream ends within 10 s of the revocation"
    );

    // And the key opens nothing new.
    let again = s
        .anon
        .get(s.url("/v1/orgs/acme/events/stream"))
        .bearer_auth(&key.key)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
}
