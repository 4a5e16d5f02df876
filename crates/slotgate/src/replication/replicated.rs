//! The PostgreSQL writer as replication drives it, for the write loop
//! (`store/write_loop.rs`): [`Replicated`] wraps the store's rows and
//! transactions (`store::postgres::PostgresWriter`) with this replica's
//! lead. It commits while this replica leads, each transaction fenced by
//! the term (`fence.rs`), and renews the lead when idle. When a commit or a
//! renewal fails (the database is gone, or another replica took over), it
//! follows until it can lead again, then waits for the service to reload
//! and resume (`lease.rs`).

use std::time::Instant;

use tokio::sync::watch;

use super::lease::{Leadership, Replica};
use super::Role;
use crate::store::group_commit::Writer;
use crate::store::postgres::{within, PostgresWriter, PING_TIMEOUT};
use crate::store::write_loop::{write_loop, Backend};
use crate::store::{StoreError, Stored, Write};

/// The PostgreSQL writer, and this replica's claim to lead.
struct Replicated {
    lead: Leadership,
    rows: PostgresWriter,
}

/// Takes the lead on the database at `url` if nobody holds it (else
/// shuts `writer`'s gate and follows), and starts the write loop of `rows`
/// under the lead: this replica's role, as it changes.
pub(crate) async fn start(
    url: &str,
    me: Replica,
    rows: PostgresWriter,
    writer: Writer,
) -> Result<watch::Receiver<Role>, StoreError> {
    let mut lead = Leadership::new(url, me);
    let conn = rows
        .connection()
        .ok_or_else(|| StoreError("not connected to the database".into()))?;
    lead.start(conn, &writer).await?;
    let role = lead.role();
    tokio::spawn(write_loop(Replicated { lead, rows }, writer));
    Ok(role)
}

fn not_leading() -> StoreError {
    StoreError("this replica does not lead".into())
}

impl Backend for Replicated {
    async fn ready(&mut self, writer: &mut Writer) -> bool {
        if self.lead.term.is_none() || self.rows.connection().is_none() {
            let conn = self.lead.follow(self.rows.take_connection(), writer).await;
            self.rows.connected_on(conn);
        }
        true
    }

    async fn commit(&mut self, batch: &[(u64, Write)]) -> Result<Vec<Stored>, StoreError> {
        let Some(term) = self.lead.term else {
            return Err(not_leading());
        };
        let sent = Instant::now();
        let result = self.rows.commit(batch, term).await;
        if result.is_ok() {
            self.lead.renewed(term, sent);
        }
        result
    }

    /// Renews the lead, which checks the connection and follows the database's clock.
    async fn idle(&mut self) -> Result<(), StoreError> {
        let (Some(term), Some(live)) = (self.lead.term, self.rows.connection()) else {
            return Err(not_leading());
        };
        within(PING_TIMEOUT, self.lead.renew(live, term)).await
    }

    async fn purge(&mut self, writer: &Writer) {
        if let Err(e) = self.rows.purge().await {
            tracing::warn!(error = %e, "purging old calls and events failed");
            if !writer.finish(0, Err(e)) {
                self.lead.step_down();
                self.rows.disconnect();
            }
        }
    }

    fn failed(&mut self) {
        self.rows.failed();
        self.lead.step_down();
    }

    fn resigned(&mut self) -> bool {
        tracing::info!("gave up the lead: another replica takes over at once");
        self.lead.step_down();
        true
    }
}
