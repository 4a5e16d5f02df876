//! Group commit, as both stores do it: requests submit writes through a
//! channel without blocking and get a ticket; one writer takes everything
//! waiting, commits it in one transaction, then publishes the stored events
//! and the highest ticket now durable.
//!
//! When a commit fails, every write not yet committed fails with it (its
//! request answers 503), the store is [`Health::Down`] and the writer's
//! [`Gate`] is [`Gate::Shut`]. The gate is apart from the health: it also
//! shuts while another replica leads, whose database works. When the writer
//! can commit again (the database is [`Health::Back`], or this replica
//! takes the lead in a new term), the gate asks for a reload
//! ([`Gate::Reload`]), and the writer commits nothing until the service,
//! having reloaded its state from the store, calls [`Tickets::resume`] with
//! that reload's generation: writes made before that came from state that
//! may differ from the store's, so they are dropped.
//!
//! [`Tickets`], the requests' side, is one concrete type that the service
//! owns ([`crate::service::Storage`]); [`Writer`] is the backend's side.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, watch};

use super::{Durable, Health, StoreError, Stored, Write};
use crate::metrics::Commits;

/// How often the writer purges what is past its retention.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Most writes in one transaction.
pub(crate) const MAX_BATCH: usize = 4096;

/// What both ends see.
#[derive(Debug)]
struct Shared {
    /// The highest ticket durable, or why the store is down.
    durable: watch::Sender<Result<u64, StoreError>>,
    /// Whether the database works.
    health: watch::Sender<Health>,
    /// Whether the writer commits what is submitted.
    gate: watch::Sender<Gate>,
    /// The tickets the last failure dropped: never committed. Its start is
    /// set at the failure, its end at [`Tickets::resume`].
    dropped: Mutex<Range<u64>>,
    /// Stored events, for live streams.
    published: broadcast::Sender<Stored>,
    /// The last reload's generation ([`Gate::Reload`]).
    generation: AtomicU64,
    /// Sizes and durations of the committed batches, for `/metrics`.
    commits: Commits,
}

impl Shared {
    fn dropped(&self) -> std::sync::MutexGuard<'_, Range<u64>> {
        self.dropped
            .lock()
            .expect("the dropped range's lock is never poisoned")
    }
}

/// Whether the writer commits what the service submits. Either cause of a
/// reload opens the same one: the database reachable again after a failure
/// ([`Health::Back`]), or a lead taken in a new term (`crate::replication`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// It commits.
    Open,
    /// It commits nothing: every write fails (the store failed, or another
    /// replica leads).
    Shut,
    /// It commits again once the service has reloaded its state from the
    /// store and called [`Tickets::resume`] with this generation; a newer
    /// reload or a shut gate overtakes it.
    Reload(u64),
}

/// The requests' side of group commit: tickets, waiting for durability,
/// the stream of stored events, the store's health.
#[derive(Debug)]
pub struct Tickets {
    /// Where writes go, in ticket order: a ticket is taken and its write
    /// sent under this lock (a `std` one: no `.await` under it), so a batch
    /// never holds a ticket whose predecessor has not been sent, and a
    /// batch's last ticket is durable only once every earlier one is.
    tx: Mutex<mpsc::UnboundedSender<(u64, Write)>>,
    /// The last ticket given; changed only under `tx`'s lock.
    submitted: AtomicU64,
    shared: Arc<Shared>,
}

/// The writer's side: the writes to take, and where to say what is durable.
#[derive(Debug)]
pub(crate) struct Writer {
    /// The writes, in ticket order.
    rx: mpsc::UnboundedReceiver<(u64, Write)>,
    shared: Arc<Shared>,
    last_purge: Instant,
    /// When the batch being committed was taken: its commit's duration ends at [`Writer::finish`].
    taken: Instant,
}

/// A new pair of ends.
pub(crate) fn channel() -> (Tickets, Writer) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        durable: watch::channel(Ok(0)).0,
        health: watch::channel(Health::Up).0,
        gate: watch::channel(Gate::Open).0,
        dropped: Mutex::new(0..0),
        published: broadcast::channel(4096).0,
        generation: AtomicU64::new(0),
        commits: Commits::default(),
    });
    let tickets = Tickets {
        tx: Mutex::new(tx),
        submitted: AtomicU64::new(0),
        shared: shared.clone(),
    };
    let writer = Writer {
        rx,
        shared,
        last_purge: Instant::now(),
        taken: Instant::now(),
    };
    (tickets, writer)
}

impl Tickets {
    /// Queues a write; never blocks. Returns its ticket: writes are numbered in
    /// submission order, which must be the order the changes happened.
    pub fn submit(&self, write: Write) -> u64 {
        // Callers submit under their org's lock, so each org's tickets
        // follow the order of its changes.
        let tx = self.sender();
        let ticket = self.submitted.fetch_add(1, Ordering::SeqCst) + 1;
        // A closed channel means the writer stopped; `durable` then reports its error.
        let _ = tx.send((ticket, write));
        ticket
    }

    fn sender(&self) -> std::sync::MutexGuard<'_, mpsc::UnboundedSender<(u64, Write)>> {
        self.tx
            .lock()
            .expect("the sender's lock is never poisoned: nothing panics under it")
    }

    /// The ticket of the last write submitted (0 if none).
    pub fn last(&self) -> u64 {
        self.submitted.load(Ordering::SeqCst)
    }

    /// Resolves once every write up to `ticket` is durable, or fails if the
    /// store failed before it was.
    pub fn durable(&self, ticket: u64) -> Durable {
        let shared = self.shared.clone();
        Box::pin(async move {
            let mut rx = shared.durable.subscribe();
            rx.wait_for(|d| !matches!(d, Ok(n) if *n < ticket))
                .await
                .map_err(|_| StoreError("the store writer stopped".into()))?
                .clone()?;
            if shared.dropped().contains(&ticket) {
                return Err(StoreError(
                    "the store failed before this change was committed".into(),
                ));
            }
            Ok(())
        })
    }

    /// The stream of stored events.
    pub fn subscribe(&self) -> broadcast::Receiver<Stored> {
        self.shared.published.subscribe()
    }

    /// Whether the database works.
    pub fn health(&self) -> watch::Receiver<Health> {
        self.shared.health.subscribe()
    }

    /// Whether the writer commits, or waits for a reload.
    pub fn gate(&self) -> watch::Receiver<Gate> {
        self.shared.gate.subscribe()
    }

    /// Once the caller's state is reloaded from the store, as the gate
    /// asked ([`Gate::Reload`]): drops every write submitted so far and
    /// commits the next ones; a database [`Health::Back`] is up again. The
    /// caller holds whatever orders its submissions (every org's lock).
    ///
    /// Only if the gate still asks for the reload of `generation` (read
    /// before the reload began): a reload that a newer failure or a newer
    /// lead overtook must not resume, since what it loaded may be older
    /// than the store. Returns whether it resumed.
    pub fn resume(&self, generation: u64) -> bool {
        let shared = &self.shared;
        // Checked and set under the gate's own lock, which the writer takes
        // to shut it or to ask for another reload: nothing slips between.
        let resumed = shared.gate.send_if_modified(|gate| {
            if *gate != Gate::Reload(generation) {
                return false;
            }
            // A ticket of its own marks the reload: reads from now on wait
            // for it (durable at once), and every ticket before it that was
            // not committed is dropped.
            let _order = self.sender();
            let reload = self.submitted.fetch_add(1, Ordering::SeqCst) + 1;
            shared.dropped().end = reload;
            let _ = shared.durable.send_replace(Ok(reload));
            *gate = Gate::Open;
            true
        });
        if resumed {
            shared.health.send_if_modified(|health| {
                let back = *health == Health::Back;
                if back {
                    *health = Health::Up;
                }
                back
            });
        }
        resumed
    }

    /// Sizes and durations of the committed batches.
    pub fn commits(&self) -> &Commits {
        &self.shared.commits
    }

    /// The generation to pass to [`Tickets::resume`] while the gate asks
    /// for a reload, read before reloading.
    pub fn reload_asked(&self) -> Option<u64> {
        match *self.shared.gate.borrow() {
            Gate::Reload(generation) => Some(generation),
            Gate::Open | Gate::Shut => None,
        }
    }
}

impl Writer {
    /// Takes the waiting writes (at least one, waiting for it up to `idle`),
    /// without those a failure dropped. `None` when nothing came within
    /// `idle`; `Some(empty)` when every request end is gone (stop then).
    pub(crate) async fn next_batch(
        &mut self,
        batch: &mut Vec<(u64, Write)>,
        idle: Duration,
    ) -> Option<usize> {
        let n = tokio::time::timeout(idle, self.rx.recv_many(batch, MAX_BATCH))
            .await
            .ok()?;
        self.taken = Instant::now();
        self.drop_failed(batch);
        Some(n)
    }

    fn drop_failed(&self, batch: &mut Vec<(u64, Write)>) {
        let dropped = self.shared.dropped().clone();
        batch.retain(|(t, _)| !dropped.contains(t));
    }

    /// Says whether the database works ([`Health::Down`] while it cannot
    /// be reached, [`Health::Back`] once it can after a failure), if that
    /// is news.
    pub(crate) fn announce(&self, health: Health) {
        self.shared.health.send_if_modified(|now| {
            let news = *now != health;
            *now = health;
            news
        });
    }

    /// Whether the database works, as last announced.
    pub(crate) fn health(&self) -> Health {
        self.shared.health.borrow().clone()
    }

    /// The writer can commit again (the database is back, or this replica
    /// took the lead): asks the service to reload ([`Gate::Reload`] with a
    /// new generation); it commits again once the service has resumed.
    pub(crate) fn ask_reload(&self) {
        let generation = self.shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.shared.gate.send_replace(Gate::Reload(generation));
    }

    /// After [`Writer::ask_reload`]: whether the service has reloaded and
    /// called [`Tickets::resume`] within `limit`. Writes submitted before
    /// are dropped then.
    pub(crate) async fn resumed(&self, limit: Duration) -> bool {
        let mut gate = self.shared.gate.subscribe();
        tokio::time::timeout(limit, gate.wait_for(|g| *g == Gate::Open))
            .await
            .is_ok_and(|open| open.is_ok())
    }

    /// Drops the writes waiting (while the store is down: they fail).
    pub(crate) fn drop_waiting(&mut self) {
        while self.rx.try_recv().is_ok() {}
    }

    /// Says how the batch up to ticket `last` ended. Committed: publishes its
    /// events, then acknowledges, so that whoever was acknowledged finds its
    /// events in the stream already. Failed: reports the error to every
    /// waiting request, marks the store down and returns `false`: memory and
    /// the store may disagree from then on, so nothing more is committed
    /// until the service has reloaded.
    pub(crate) fn finish(&self, last: u64, result: Result<Vec<Stored>, StoreError>) -> bool {
        match result {
            Ok(published) => {
                self.shared
                    .commits
                    .record(published.len(), self.taken.elapsed());
                for event in published {
                    let _ = self.shared.published.send(event);
                }
                let _ = self.shared.durable.send_replace(Ok(last));
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "store write failed; no change is acknowledged until it is back");
                self.announce(Health::Down(e.0.clone()));
                self.stop(e);
                false
            }
        }
    }

    /// Fails every write not yet committed with `e`, and every one after
    /// until [`Tickets::resume`]: memory and the store may disagree from
    /// then on (a failure), or this replica's writes are not the ones the
    /// database takes (another replica leads). Shuts the gate; the
    /// database's health is the caller's to say.
    pub(crate) fn stop(&self, e: StoreError) {
        let shared = &self.shared;
        // Under the gate's lock, as [`Tickets::resume`] is.
        shared.gate.send_modify(|gate| {
            let committed = shared.durable.borrow().clone().unwrap_or(0);
            // Up to the reload: until then, nothing more is committed.
            *shared.dropped() = committed + 1..u64::MAX;
            let _ = shared.durable.send_replace(Err(e));
            *gate = Gate::Shut;
        });
    }

    /// Whether it is time to purge (then not again for a while).
    pub(crate) fn purge_due(&mut self) -> bool {
        let due = self.last_purge.elapsed() > PURGE_EVERY;
        if due {
            self.last_purge = Instant::now();
        }
        due
    }
}

/// The ticket of a batch's last write.
pub(crate) fn last_ticket(batch: &[(u64, Write)]) -> u64 {
    batch.last().map_or(0, |(t, _)| *t)
}

/// Each org's newest seq among `stored` (which come in seq order): the
/// version to record on the org's row, once per batch.
pub(crate) fn newest_seqs(stored: &[Stored]) -> HashMap<&str, u64> {
    stored.iter().map(|e| (e.org.as_str(), e.seq)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reload_resumes_only_the_generation_it_was_asked_for() {
        let (tickets, writer) = channel();
        // The database fails: writes fail until a reload.
        writer.announce(Health::Down("gone".into()));
        writer.stop(StoreError("gone".into()));
        let before = tickets.submit(Write::Resign);
        assert_eq!(tickets.reload_asked(), None);
        // Back, and a reload asked; a new term asks another before the
        // service resumed: the first reload may have loaded too early.
        writer.announce(Health::Back);
        writer.ask_reload();
        let first = tickets.reload_asked().expect("a reload is asked");
        writer.ask_reload();
        assert!(!tickets.resume(first));
        let second = tickets.reload_asked().expect("a reload is asked");
        assert!(tickets.resume(second));
        assert_eq!(*tickets.gate().borrow(), Gate::Open);
        assert_eq!(*tickets.health().borrow(), Health::Up);
        assert!(tickets.durable(before).await.is_err(), "dropped");
        assert!(!tickets.resume(second), "once");
    }

    #[tokio::test]
    async fn a_lead_taken_with_the_database_up_reloads_without_a_failure() {
        let (tickets, writer) = channel();
        // A follower: its database works, its writer commits nothing.
        writer.stop(StoreError("another replica leads".into()));
        assert_eq!(*tickets.health().borrow(), Health::Up);
        assert_eq!(*tickets.gate().borrow(), Gate::Shut);
        // It takes the lead: a reload, and the health never moved.
        writer.ask_reload();
        let generation = tickets.reload_asked().expect("a reload is asked");
        assert!(tickets.resume(generation));
        assert_eq!(*tickets.health().borrow(), Health::Up);
        let after = tickets.submit(Write::Resign);
        assert!(writer.resumed(Duration::ZERO).await);
        drop(writer);
        // The writer is gone: the write is never durable, but it was not
        // dropped by the reload.
        assert!(!tickets.shared.dropped().contains(&after));
    }
}
