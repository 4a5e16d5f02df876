//! `slotgate hold`: the shell's `flock`, with slots. Waits in the queue for a
//! slot, runs a command while holding it (heartbeating the lease), and gives
//! the slot back when the command ends, also on Ctrl-C or SIGTERM. If the
//! slot is lost, says so and stops the command.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use slotgate_client::{Acquire, Client};
use tokio::process::Command;

use super::output::{wait_text, Failure};

/// Exit status when the slot was lost while the command ran (EX_TEMPFAIL).
pub const LOST: u8 = 75;

/// Holds a slot of `org` around `command`; the command's exit status.
pub async fn run(
    client: &Client,
    org: &str,
    req: Acquire,
    command: &[String],
) -> Result<ExitCode, Failure> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| Failure::Other("give the command to run after `--`".into()))?;
    // Listened to from the start: a Ctrl-C between two waits is not lost.
    let mut interrupted = Interrupts::new();
    let terminal = std::io::stderr().is_terminal();
    // A client-made id, so that a Ctrl-C while queued can cancel the call.
    let id = req
        .id
        .clone()
        .unwrap_or_else(|| format!("hold_{}", crate::auth::random_hex(12)));
    let req = req.id(&id).on_queue(move |q| {
        let wait = wait_text(q.estimated_wait.map(|w| w.as_secs_f64()));
        let line = format!("queued: position {}, expected wait {wait}", q.position);
        if terminal {
            eprint!("\r{line:<60}");
        } else {
            eprintln!("{line}");
        }
    });
    let permit = tokio::select! {
        permit = client.acquire(org, req) => permit?,
        // Interrupted while queued: cancel the call (or free its slot, if it just got one).
        _ = interrupted.recv() => {
            client.release(org, &id).await?;
            return Ok(ExitCode::from(130));
        }
    };
    if terminal {
        eprintln!();
    }
    eprintln!(
        "holding a {} slot of {org} (call {}) for `{}`",
        permit.call().slot.map_or("?", |s| s.as_str()),
        permit.id(),
        command.join(" ")
    );
    let mut child = Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Failure::Other(format!("cannot run {program}: {e}")))?;
    let code = tokio::select! {
        status = child.wait() => {
            let status = status.map_err(|e| Failure::Other(format!("waiting for {program}: {e}")))?;
            ExitCode::from(exit_code(status))
        }
        ended = permit.lost() => {
            eprintln!(
                "slotgate: the slot was lost ({}); stopping `{program}`",
                ended.end_reason.map_or("ended", |r| r.as_str())
            );
            stop(&mut child).await;
            return Ok(ExitCode::from(LOST));
        }
        _ = interrupted.recv() => {
            stop(&mut child).await;
            permit.release().await?;
            return Ok(ExitCode::from(130));
        }
    };
    permit.release().await?;
    Ok(code)
}

/// The shell's view of an exit: the code, or 128 + the signal that ended it.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    #[cfg(unix)]
    if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return 128u8.saturating_add(sig as u8);
    }
    status.code().map_or(1, |c| c as u8)
}

/// Asks the command to stop (SIGTERM), and kills it if it has not within 5 s.
async fn stop(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}

/// Ctrl-C (SIGINT) and SIGTERM, listened to for as long as this lives.
struct Interrupts {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Interrupts {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Interrupts {
                int: signal(SignalKind::interrupt()).expect("SIGINT can be handled"),
                term: signal(SignalKind::terminate()).expect("SIGTERM can be handled"),
            }
        }
        #[cfg(not(unix))]
        Interrupts {}
    }

    /// Resolves on the next signal, or on one that came since the last call.
    async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
pub async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM can be handled");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
