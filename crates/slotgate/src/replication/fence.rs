//! Fencing: every transaction the leader commits begins by renewing its
//! lead *where the term is still its own*, so a replica that lost the lead
//! can never commit after its successor took over, whatever it believes.
//! The store's commit sends `RENEW` first and checks its answer with
//! `still_leads`; nothing of a batch is committed otherwise.

use super::lease::LEASE;
use crate::store::StoreError;

/// The batch's first statement (`$1`: the term): renews the lead, and
/// locks the leader row until the commit, which serialises the leader's
/// transactions with any replica's claim.
pub(crate) const RENEW: &str = "UPDATE slotgate_leader SET renewed_at = clock_timestamp(), backend = pg_backend_pid() WHERE id = 1 AND term = $1";

/// Ends this transaction's session if it waits on the leader for longer
/// than a [`LEASE`]: its first statement locked the leader row, and a
/// leader cut from the database in the middle of a transaction (its next
/// statement or its COMMIT lost on the way, the connection not closed)
/// would otherwise hold that lock, and keep every other replica from
/// taking over, until the database noticed the connection dead (hours, by
/// the system's keepalive). `tests/it/partitions.rs` found it so.
pub(crate) const ABANDONED_AFTER_LEASE: &str =
    "SET LOCAL idle_in_transaction_session_timeout = 5000";
const _: () = assert!(
    LEASE.as_millis() == 5000,
    "ABANDONED_AFTER_LEASE says the lease"
);

/// Whether the lead's renewal, the first statement `ran`, found the term
/// still this replica's (one row): fails if not.
pub(crate) fn still_leads(ran: &[u64]) -> Result<(), StoreError> {
    match ran.first() {
        Some(1) => Ok(()),
        _ => Err(StoreError(
            "another replica took the lead: nothing of this batch was committed".into(),
        )),
    }
}
