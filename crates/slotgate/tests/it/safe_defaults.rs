//! Safe defaults of the real `slotgate` binary on the embedded store: a weak
//! operator key is refused at start with how to make one; the data directory
//! is private (0700) and so are its files and an export (0600); a generated
//! operator key reaches a terminal only, never a log collector's pipe.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};

/// The permission bits of `path`.
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_weak_operator_key_is_refused_with_how_to_make_one_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let monotonous = "ab".repeat(20);
    for (key, why) in [
        ("a", "it has 1 characters, fewer than 32"),
        ("change-me", "it has 9 characters, fewer than 32"),
        (
            monotonous.as_str(),
            "only 2 distinct characters, fewer than 8",
        ),
    ] {
        let out = crate::support::serve_command("127.0.0.1:0", &data)
            .env("SLOTGATE_OPERATOR_KEY", key)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{key:?} is refused: {err}");
        assert!(
            err.contains("SLOTGATE_OPERATOR_KEY is too weak") && err.contains(why),
            "{err}"
        );
        assert!(err.contains("openssl rand -hex 32"), "says how: {err}");
        assert!(!data.exists(), "a refused start creates nothing");
    }
    assert!(!String::from_utf8_lossy(
        &crate::support::serve_command("127.0.0.1:0", &data)
            .env("SLOTGATE_OPERATOR_KEY", &monotonous)
            .output()
            .unwrap()
            .stderr
    )
    .contains(&monotonous));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_data_directory_is_private_and_a_generated_key_is_not_printed_to_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Standard output and error are pipes here, as under a service manager.
    let mut child =
        tokio::process::Command::from(crate::support::serve_command("127.0.0.1:0", &data))
            .env_remove("SLOTGATE_OPERATOR_KEY")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            log.push_str(&line);
            log.push('\n');
            if line.contains("slotgate ready on") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ready, Ok(true), "ready: {log}");

    let key_file = data.join("operator.key");
    let key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(key.len() >= 32, "a generated key is strong: {key}");
    assert!(
        log.contains(&format!("read it from {}", key_file.display())),
        "the log names the key file: {log}"
    );
    assert!(!log.contains(&key), "the key is not in the log: {log}");

    // The directory, the database (and its journal), the lock and the key.
    assert_eq!(mode(&data), 0o700, "the data directory");
    let files: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    for name in ["slotgate.db", "slotgate.lock", "operator.key"] {
        assert!(files.contains(&data.join(name)), "{name} in {files:?}");
    }
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }

    // `slotgate export` writes its file 0600, even over a wider one.
    let backup = dir.path().join("backup.json");
    std::fs::write(&backup, "old").unwrap();
    std::fs::set_permissions(&backup, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slotgate"))
        .args(["export", "--data-dir"])
        .arg(&data)
        .arg("-o")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&backup), 0o600, "the export");
    assert!(std::fs::read_to_string(&backup)
        .unwrap()
        .contains("\"orgs\""));

    child.start_kill().unwrap();
    let mut stdout = String::new();
    let mut pipe = child.stdout.take().unwrap();
    tokio::time::timeout(Duration::from_secs(30), pipe.read_to_string(&mut stdout))
        .await
        .unwrap()
        .unwrap();
    assert!(!stdout.contains(&key), "the key is not on stdout: {stdout}");
    child.wait().await.unwrap();
}
