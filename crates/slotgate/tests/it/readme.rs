//! The README's shell blocks, run as pasted, in order, against a real server:
//! a new user's first hour must hold no surprise. Blocks that build or test
//! the project (`cargo ...`, `scripts/test.sh`) are left out; the server's
//! address is the test server's instead of the default port.

use std::process::Command;

use crate::support::{Server, OPERATOR_KEY};

/// The ```sh blocks of the README, in order.
fn shell_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), l) => {
                block.push_str(l);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[tokio::test(flavor = "multi_thread")]
async fn every_readme_shell_block_runs_as_pasted() {
    let readme = include_str!("../../../../README.md");
    let blocks: Vec<String> = shell_blocks(readme)
        .into_iter()
        .filter(|b| !b.contains("cargo ") && !b.contains("scripts/test.sh"))
        .collect();
    assert!(blocks.len() >= 2, "the curl and the CLI blocks: {blocks:?}");
    let s = Server::start().await;
    // The user's directory: the server's key file, and `slotgate` on the PATH.
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join("slotgate-data")).unwrap();
    std::fs::write(home.path().join("slotgate-data/operator.key"), OPERATOR_KEY).unwrap();
    let bin = home.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_slotgate"), bin.join("slotgate")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let addr = s.base.trim_start_matches("http://").to_string();
    for block in blocks {
        let script = block.replace("127.0.0.1:7878", &addr);
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(home.path())
            .env("PATH", &path)
            .env("SLOTGATE_URL", &s.base)
            .env_remove("SLOTGATE_KEY")
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{block}\nfailed:\n{stdout}\n{stderr}");
        assert!(
            !stdout.contains("\"error\""),
            "{block}\nanswered an error:\n{stdout}"
        );
    }
}
