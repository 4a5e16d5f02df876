//! The dashboard's browser test (`tests/browser/dashboard.test.mjs`, headless
//! Chromium) against a server of the test store: with
//! `SLOTGATE_TEST_STORE=replicas`, every page, stream and call of it goes
//! through a replica that forwards to the leading one (issue 10).
//!
//! It needs Chromium and the browser test's npm packages, so it is ignored
//! by a plain `cargo test`; `scripts/test.sh` installs both and runs it:
//! `SLOTGATE_TEST_STORE=replicas cargo test --test it -- --ignored dashboard::`.

use crate::support::{Server, OPERATOR_KEY};

#[tokio::test]
#[ignore = "needs Chromium and tests/browser's npm packages: scripts/test.sh runs it"]
async fn the_dashboard_works_through_the_test_stores_server() {
    let server = Server::start().await;
    let browser = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");
    let status = tokio::process::Command::new("node")
        .args(["--test", "dashboard.test.mjs"])
        .current_dir(browser)
        .env("SLOTGATE_URL", server.url(""))
        .env("SLOTGATE_OPERATOR_KEY", OPERATOR_KEY)
        .status()
        .await
        .expect("node runs (scripts/test.sh installs it)");
    assert!(
        status.success(),
        "the dashboard test failed against {} ({status}); the server said:\n{}",
        server.url(""),
        server.stderr()
    );
}
