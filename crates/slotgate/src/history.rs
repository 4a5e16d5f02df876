//! The recent past of each org, for the dashboard's chart: active and queued
//! calls sampled every [`INTERVAL`], kept for [`WINDOW`]. In memory only: a
//! restart starts a fresh chart.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

pub use slotgate_api::Sample;
use slotgate_core::Timestamp;

use crate::clock;

/// How often orgs are sampled.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// How far back samples are kept.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Samples per org. `std` mutex: pushes and copies only, no await.
#[derive(Debug, Default)]
pub struct History {
    orgs: Mutex<HashMap<String, VecDeque<Sample>>>,
}

impl History {
    fn orgs(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Sample>>> {
        self.orgs
            .lock()
            .expect("the history lock is never poisoned")
    }

    /// Records one sample per org at `now`, dropping those older than the window.
    pub fn record(&self, now: Timestamp, samples: Vec<(String, u32, u32)>) {
        let cutoff = now.as_millis().saturating_sub(WINDOW.as_millis() as u64);
        let mut orgs = self.orgs();
        for (org, active, queued) in samples {
            let series = orgs.entry(org).or_default();
            series.push_back(Sample {
                at_ms: now.as_millis(),
                active,
                queued,
            });
            while series.front().is_some_and(|s| s.at_ms < cutoff) {
                series.pop_front();
            }
        }
    }

    /// An org's samples, oldest first.
    pub fn of(&self, org: &str) -> Vec<Sample> {
        self.orgs()
            .get(org)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Samples every org every [`INTERVAL`] until `shutdown` resolves;
    /// `sample` reads each org's (id, active, queued).
    pub async fn run<Fut>(
        &self,
        sample: impl Fn() -> Fut,
        shutdown: impl std::future::Future<Output = ()>,
    ) where
        Fut: std::future::Future<Output = Vec<(String, u32, u32)>>,
    {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let samples = sample().await;
                    self.record(clock::now(), samples);
                }
                _ = &mut shutdown => return,
            }
        }
    }
}
