//! The deadline driver: sleeps until the engine's next deadline, then lets the
//! engine expire leases, abandoned queue entries and `max_wait`s, so deadlines
//! pass even when no request arrives.
//!
//! It owns only its own state (the deadline it sleeps until, and the bell that
//! wakes it early); the service hands it the engine's next deadline and the
//! command to run, so this module knows nothing of the service.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use slotgate_core::Timestamp;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::clock;

/// The driver's state.
#[derive(Debug)]
pub struct Driver {
    /// Rings when a command files a deadline nearer than `target`.
    kick: Notify,
    /// The deadline the driver sleeps until, in ms (`u64::MAX` when none).
    target: AtomicU64,
}

impl Default for Driver {
    fn default() -> Self {
        Driver {
            kick: Notify::new(),
            target: AtomicU64::new(u64::MAX),
        }
    }
}

fn millis(t: Option<Timestamp>) -> u64 {
    t.map_or(u64::MAX, Timestamp::as_millis)
}

impl Driver {
    /// After a command, under the engine lock: wakes the driver if the
    /// engine's next deadline is nearer than the one it sleeps until.
    pub fn note(&self, next: Option<Timestamp>) {
        if millis(next) < self.target.load(Ordering::SeqCst) {
            self.kick.notify_one();
        }
    }

    /// Before sleeping, under the engine lock (where commands compare their
    /// deadlines with it): files the deadline the driver will sleep until.
    pub fn sleep_until(&self, next: Option<Timestamp>) {
        self.target.store(millis(next), Ordering::SeqCst);
    }

    /// Runs until `shutdown` resolves: `next` reads the engine's next deadline
    /// (calling [`Driver::sleep_until`] under the engine lock); `handle` runs
    /// the engine's timeouts and makes them durable. A store failure stops it.
    pub async fn run<Fut, E>(
        &self,
        next: impl Fn() -> Option<Timestamp>,
        handle: impl Fn() -> Fut,
        shutdown: impl Future<Output = ()>,
    ) where
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        tokio::pin!(shutdown);
        loop {
            let sleep = match next() {
                Some(at) => {
                    Duration::from_millis(at.as_millis().saturating_sub(clock::now().as_millis()))
                }
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = tokio::time::sleep_until(Instant::now() + sleep) => {
                    if let Err(e) = handle().await {
                        tracing::error!(error = %e, "deadline driver stops: the store failed");
                        return;
                    }
                }
                _ = self.kick.notified() => {}
                _ = &mut shutdown => return,
            }
        }
    }
}
