//! One write loop for both stores: it takes what the group-commit front
//! hands it (`group_commit.rs`), has the backend commit each batch in one
//! transaction, says what is durable, and has old rows purged now and then.
//! A backend ([`Backend`]) commits its rows in transactions; with several
//! replicas, the backend is replication's (`replication/replicated.rs`),
//! which wraps the PostgreSQL writer with the lease: whether it may write
//! at all, which it waits for in [`Backend::ready`].

use std::future::Future;
use std::time::Duration;

use super::group_commit::{last_ticket, Writer};
use super::{StoreError, Stored, Write};

/// How long the loop waits for writes before the backend checks its
/// connection ([`Backend::idle`]).
pub(crate) const IDLE: Duration = Duration::from_secs(1);

/// What a store's writer does for the loop.
pub(crate) trait Backend {
    /// Waits until it can commit (a replica follows the leader until it
    /// leads, and the service has reloaded); `false`: never again, stop.
    fn ready(&mut self, writer: &mut Writer) -> impl Future<Output = bool> + Send;

    /// Commits `batch` in one transaction: the events it stored.
    fn commit(
        &mut self,
        batch: &[(u64, Write)],
    ) -> impl Future<Output = Result<Vec<Stored>, StoreError>> + Send;

    /// Nothing came for [`IDLE`]: checks the connection (a leader renews
    /// its lead).
    fn idle(&mut self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes what is past its retention; a failure that matters is the
    /// backend's to report to `writer`.
    fn purge(&mut self, writer: &Writer) -> impl Future<Output = ()> + Send;

    /// A commit or a check failed: the store is down, and what the backend
    /// remembers of the database may be wrong.
    fn failed(&mut self);

    /// A batch with [`Write::Resign`] was committed: whether to stop (the
    /// lead is given up; the server shuts down).
    fn resigned(&mut self) -> bool;
}

/// Runs `backend`'s writer until every request end is gone (or it stops
/// for good): batches, one transaction and one commit per batch.
pub(crate) async fn write_loop<B: Backend>(mut backend: B, mut writer: Writer) {
    let mut batch = Vec::new();
    while backend.ready(&mut writer).await {
        let up = match writer.next_batch(&mut batch, IDLE).await {
            Some(0) => return, // the server is gone
            None => match backend.idle().await {
                Ok(()) => true,
                Err(e) => writer.finish(0, Err(e)),
            },
            Some(_) if batch.is_empty() => true,
            Some(_) => {
                let last = last_ticket(&batch);
                let result = backend.commit(&batch).await;
                let resigned = batch.iter().any(|(_, w)| matches!(w, Write::Resign));
                batch.clear();
                let up = writer.finish(last, result);
                if up && resigned && backend.resigned() {
                    return; // the server shuts down
                }
                up
            }
        };
        if !up {
            backend.failed();
        } else if writer.purge_due() {
            backend.purge(&writer).await;
        }
    }
}
