//! The deadline driver: sleeps until the engine's next deadline, then lets the
//! engine expire leases, abandoned queue entries and `max_wait`s.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::state::Shared;
use crate::wire;

/// Runs until `shutdown` resolves.
pub async fn run(s: Arc<Shared>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        // Filed under the engine lock, where commands compare their deadlines with it.
        let next = s.read_now(|e| {
            let next = e.poll_timeout();
            s.driver_target
                .store(next.map_or(u64::MAX, |t| t.as_millis()), Ordering::SeqCst);
            next
        });
        let sleep = match next {
            Some(at) => {
                Duration::from_millis(at.as_millis().saturating_sub(wire::now().as_millis()))
            }
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = tokio::time::sleep_until(Instant::now() + sleep) => {
                if let Err(e) = s.apply(None, |e, now| e.handle_timeout(now)).await {
                    tracing::error!(error = %e, "deadline driver stops: the store failed");
                    return;
                }
            }
            _ = s.driver_kick.notified() => {}
            _ = &mut shutdown => return,
        }
    }
}
