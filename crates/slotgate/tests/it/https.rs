//! HTTPS (issue 21): `slotgate serve --tls-cert --tls-key` with a CA made by
//! the test; the CLI (`--ca-file`, `SLOTGATE_CA_FILE`) and the Rust client
//! (`Client::with_ca_file`) speak to it, a client that does not trust the CA
//! is refused, and a renewed certificate is served after SIGHUP or when its
//! files change.

use std::path::Path;
use std::time::Duration;

use crate::support::tls::TestCa;
use crate::support::{eventually, spawn_with, OPERATOR_KEY};
use slotgate::tls::with_causes as chain;
use slotgate_client::{Acquire, CallType, Client};

/// The CLI against `url`, with `args`; (exit code, stdout, stderr).
fn cli(url: &str, env: &[(&str, &Path)], args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slotgate"))
        .args(args)
        .env("SLOTGATE_URL", url)
        .env("SLOTGATE_KEY", OPERATOR_KEY)
        .env_remove("SLOTGATE_CA_FILE")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the CLI runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether a client trusting `ca` (and the system's roots) gets an answer.
async fn trusted(base: &str, ca: &Path) -> Result<(), String> {
    let client = Client::new(base, OPERATOR_KEY)
        .with_ca_file(ca)
        .map_err(|e| e.to_string())?
        .with_retry(slotgate_client::Retry {
            attempts: 1,
            backoff: Duration::from_millis(10),
        });
    client.orgs().await.map(|_| ()).map_err(|e| chain(&e))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_and_the_client_speak_https_and_a_renewed_certificate_is_served_after_sighup() {
    let tmp = tempfile::tempdir().unwrap();
    let first = TestCa::new(tmp.path(), "first");
    let (cert, key) = first.issue("server", "slotgate", &["localhost", "127.0.0.1"]);
    let data = tmp.path().join("data");
    let extra = [
        "--tls-cert".to_string(),
        cert.display().to_string(),
        "--tls-key".to_string(),
        key.display().to_string(),
    ];
    let (child, port, stderr) = spawn_with(&data, &extra, &[]).await;
    let base = format!("https://127.0.0.1:{port}");
    assert!(
        stderr
            .lock()
            .unwrap()
            .contains(&format!("slotgate ready on {base}")),
        "the ready line names https"
    );

    // The Rust client, trusting the test CA: a whole acquire and release.
    let client = Client::new(&base, OPERATOR_KEY)
        .with_ca_file(first.cert_path())
        .unwrap();
    client.create_org("acme", 1).await.unwrap();
    let permit = client
        .acquire("acme", Acquire::new("agent-a", CallType::Chat).id("c1"))
        .await
        .unwrap();
    assert_eq!(client.org("acme").await.unwrap().active, 1);
    permit.release().await.unwrap();

    // Without the CA, the certificate is refused, and the error says why.
    let refused = Client::new(&base, OPERATOR_KEY)
        .with_retry(slotgate_client::Retry {
            attempts: 1,
            backoff: Duration::from_millis(10),
        })
        .orgs()
        .await
        .unwrap_err();
    assert!(
        chain(&refused).contains("UnknownIssuer"),
        "{}",
        chain(&refused)
    );
    let missing = Client::new(&base, OPERATOR_KEY).with_ca_file(tmp.path().join("nope.pem"));
    assert!(missing.unwrap_err().to_string().contains("nope.pem"));

    // The CLI: --ca-file, SLOTGATE_CA_FILE, and neither.
    let ca = first.cert_path();
    let (code, out, err) = cli(
        &base,
        &[],
        &["--ca-file", ca.to_str().unwrap(), "org", "show", "acme"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("acme"), "{out}");
    let (code, out, err) = cli(
        &base,
        &[("SLOTGATE_CA_FILE", &ca)],
        &["--json", "org", "list"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"acme\""), "{out}");
    let (code, _, err) = cli(&base, &[], &["org", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid peer certificate"), "{err}");
    // Plain HTTP to the HTTPS port gets no answer.
    let (code, _, err) = cli(&format!("http://127.0.0.1:{port}"), &[], &["org", "list"]);
    assert_eq!(code, 1, "{err}");

    // Renewed (here by another CA) in place, then SIGHUP: new connections
    // get the new certificate.
    let second = TestCa::new(tmp.path(), "second");
    let (new_cert, new_key) = second.issue("server", "slotgate", &["localhost", "127.0.0.1"]);
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    let pid = child.id().expect("the server runs").to_string();
    let hup = || {
        let sent = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status();
        assert!(sent.unwrap().success(), "kill -HUP");
    };
    hup();
    eventually(10, "the renewed certificate is served", || async {
        trusted(&base, &second.cert_path()).await.is_ok()
    })
    .await;
    let old = trusted(&base, &first.cert_path()).await.unwrap_err();
    assert!(old.contains("UnknownIssuer"), "{old}");
    assert!(stderr.lock().unwrap().contains("TLS certificate reloaded"));

    // A broken file on SIGHUP: the server says so and keeps the certificate it has.
    std::fs::write(&cert, "not a certificate").unwrap();
    hup();
    eventually(10, "the failed reload is logged", || async {
        stderr
            .lock()
            .unwrap()
            .contains("TLS certificate not reloaded")
    })
    .await;
    trusted(&base, &second.cert_path()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_refuses_to_start_on_an_unusable_certificate_and_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(tmp.path(), "ca");
    let (cert, _) = ca.issue("server", "slotgate", &["localhost"]);
    let (_, other_key) = ca.issue("other", "slotgate", &["localhost"]);
    let empty = tmp.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let serve = |cert: &Path, key: &Path| {
        crate::support::serve_command("127.0.0.1:0", &tmp.path().join("data"))
            .args([
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
            ])
            .output()
            .expect("slotgate runs")
    };
    let out = serve(&cert, &other_key);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("does not serve the certificate"), "{err}");
    let out = serve(&empty, &other_key);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("empty.pem holds no PEM certificate"), "{err}");
    assert!(!tmp.path().join("data").exists(), "nothing is created");
}

/// The certificate is read again when its files change (`--tls-watch`),
/// with no signal: a renewed pair is served to new connections, and a
/// broken one is logged and the certificate in use kept.
#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_renewed_in_place_is_served_without_a_signal() {
    let tmp = tempfile::tempdir().unwrap();
    let first = TestCa::new(tmp.path(), "first");
    let (cert, key) = first.issue("server", "slotgate", &["localhost", "127.0.0.1"]);
    let extra = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--tls-watch",
        "200ms",
    ]
    .map(String::from);
    let (_child, port, stderr) = spawn_with(&tmp.path().join("data"), &extra, &[]).await;
    let base = format!("https://127.0.0.1:{port}");
    trusted(&base, &first.cert_path()).await.unwrap();

    let second = TestCa::new(tmp.path(), "second");
    let (new_cert, new_key) = second.issue("server", "slotgate", &["localhost", "127.0.0.1"]);
    // As a renewal tool does: a new file renamed over the old one.
    for (from, to) in [(&new_key, &key), (&new_cert, &cert)] {
        let staged = to.with_extension("new");
        std::fs::copy(from, &staged).unwrap();
        std::fs::rename(&staged, to).unwrap();
    }
    eventually(10, "the renewed certificate is served", || async {
        trusted(&base, &second.cert_path()).await.is_ok()
    })
    .await;
    assert!(
        stderr
            .lock()
            .unwrap()
            .contains("TLS certificate reloaded (its files changed)"),
        "{}",
        stderr.lock().unwrap()
    );

    std::fs::write(&cert, "not a certificate").unwrap();
    eventually(10, "the failed reload is logged", || async {
        stderr
            .lock()
            .unwrap()
            .contains("TLS certificate not reloaded (its files changed)")
    })
    .await;
    trusted(&base, &second.cert_path()).await.unwrap();
}
