//! Group commit, as both stores do it: requests submit writes through a
//! channel without blocking and get a ticket; one writer takes everything
//! waiting, commits it in one transaction, then publishes the stored events
//! and the highest ticket now durable.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, watch};

use super::{Durable, StoreError, Stored, Write};

/// How often the writer purges what is past its retention.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Most writes in one transaction.
pub(super) const MAX_BATCH: usize = 4096;

/// The requests' side: tickets, waiting for durability, the stream of stored events.
#[derive(Debug)]
pub(super) struct Tickets {
    tx: mpsc::UnboundedSender<(u64, Write)>,
    submitted: AtomicU64,
    durable: watch::Receiver<Result<u64, StoreError>>,
    published: broadcast::Sender<Stored>,
}

/// The writer's side: the writes to take, and where to say what is durable.
#[derive(Debug)]
pub(super) struct Writer {
    /// The writes, in ticket order.
    pub(super) rx: mpsc::UnboundedReceiver<(u64, Write)>,
    durable: watch::Sender<Result<u64, StoreError>>,
    published: broadcast::Sender<Stored>,
    last_purge: Instant,
}

/// A new pair of ends.
pub(super) fn channel() -> (Tickets, Writer) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (durable_tx, durable) = watch::channel(Ok(0));
    let (published, _) = broadcast::channel(4096);
    let tickets = Tickets {
        tx,
        submitted: AtomicU64::new(0),
        durable,
        published: published.clone(),
    };
    let writer = Writer {
        rx,
        durable: durable_tx,
        published,
        last_purge: Instant::now(),
    };
    (tickets, writer)
}

impl Tickets {
    /// Queues a write; see [`super::Store::submit`].
    pub(super) fn submit(&self, write: Write) -> u64 {
        // Callers submit under the engine lock, so tickets follow the order of changes.
        let ticket = self.submitted.fetch_add(1, Ordering::SeqCst) + 1;
        // A closed channel means the writer stopped; `durable` then reports its error.
        let _ = self.tx.send((ticket, write));
        ticket
    }

    /// The last ticket given.
    pub(super) fn last(&self) -> u64 {
        self.submitted.load(Ordering::SeqCst)
    }

    /// Resolves once every write up to `ticket` is durable.
    pub(super) fn durable(&self, ticket: u64) -> Durable {
        let mut rx = self.durable.clone();
        Box::pin(async move {
            let seen = rx
                .wait_for(|d| !matches!(d, Ok(n) if *n < ticket))
                .await
                .map_err(|_| StoreError("the store writer stopped".into()))?;
            seen.clone().map(|_| ())
        })
    }

    /// The stream of stored events.
    pub(super) fn subscribe(&self) -> broadcast::Receiver<Stored> {
        self.published.subscribe()
    }
}

impl Writer {
    /// Says how the batch up to ticket `last` ended. Committed: publishes its
    /// events, then acknowledges, so that whoever was acknowledged finds its
    /// events in the stream already. Failed: reports the error to every
    /// waiting request and returns `false`: the writer stops, since memory
    /// and the store would disagree from then on.
    pub(super) fn finish(&self, last: u64, result: Result<Vec<Stored>, StoreError>) -> bool {
        match result {
            Ok(published) => {
                for event in published {
                    let _ = self.published.send(event);
                }
                let _ = self.durable.send_replace(Ok(last));
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "store write failed; no further change will be acknowledged");
                let _ = self.durable.send_replace(Err(e));
                false
            }
        }
    }

    /// Whether it is time to purge (then not again for a while).
    pub(super) fn purge_due(&mut self) -> bool {
        let due = self.last_purge.elapsed() > PURGE_EVERY;
        if due {
            self.last_purge = Instant::now();
        }
        due
    }
}

/// The ticket of a batch's last write.
pub(super) fn last_ticket(batch: &[(u64, Write)]) -> u64 {
    batch.last().map_or(0, |(t, _)| *t)
}

/// Each org's newest seq among `stored` (which come in seq order): the
/// version to record on the org's row, once per batch.
pub(super) fn newest_seqs(stored: &[Stored]) -> HashMap<&str, u64> {
    stored.iter().map(|e| (e.org.as_str(), e.seq)).collect()
}
