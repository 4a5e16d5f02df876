//! A compact index of one org's ended calls, for as long as the store keeps
//! them (`--ended-retention`), so that an acquire of a new id reads nothing.
//!
//! The engine keeps an ended call a short while (`--ended-in-memory`); the
//! store keeps it for a day. An acquire of an id the engine does not hold
//! may be a retry of a call that ended in between, which must be answered
//! as it ended: the store has it. Asking the store on every acquire of a new
//! id costs a read per request; this index answers "surely never ended here"
//! from memory, and the store is read only when it says "maybe".
//!
//! Each id is kept as a 32-bit fingerprint (a keyed hash: the key is random
//! per process, so nobody can aim ids at one fingerprint), in buckets by the
//! time the call ended, 1/24 of the retention wide; a whole bucket is dropped
//! once every call in it is past the retention (and a bucket's width). So:
//!
//! - no false negatives: every call that ended within the retention (since
//!   the index was filled from the store) is in it;
//! - a false positive (another id, same fingerprint, or an id whose end is
//!   past the retention but within its bucket) costs one store read, which
//!   answers "not found", as every acquire of a new id cost before. With a
//!   million ids kept, about one new id in 4,000 meets a fingerprint.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashSet};
use std::hash::BuildHasher;
use std::time::Duration;

use slotgate_core::Timestamp;

/// How many buckets the retention is cut into.
const BUCKETS: u64 = 24;

/// The fingerprints of one org's ended calls, by when they ended.
#[derive(Debug)]
pub(crate) struct EndedIds {
    /// The fingerprints' key, random per process.
    key: RandomState,
    /// How long the store keeps an ended call, in ms.
    retention_ms: u64,
    /// How long a bucket spans, in ms: the retention over [`BUCKETS`], so at
    /// most `BUCKETS + 1` buckets live at once, checked on every lookup.
    width_ms: u64,
    /// Bucket number (`ended_at / width_ms`) to the fingerprints of the
    /// calls that ended in it. A `BTreeMap`: the oldest go first, and a
    /// reload fills them in any order.
    buckets: BTreeMap<u64, HashSet<u32>>,
}

impl EndedIds {
    /// An empty index for calls kept `retention` after they end.
    pub(crate) fn new(retention: Duration) -> Self {
        let retention_ms = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
        EndedIds {
            key: RandomState::new(),
            retention_ms,
            width_ms: (retention_ms / BUCKETS).max(1_000),
            buckets: BTreeMap::new(),
        }
    }

    fn fingerprint(&self, id: &str) -> u32 {
        // The low half of a keyed 64-bit hash.
        self.key.hash_one(id) as u32
    }

    /// Notes that call `id` ended at `ended_at`, and drops the buckets past
    /// the retention at that time.
    pub(crate) fn insert(&mut self, id: &str, ended_at: Timestamp) {
        let fingerprint = self.fingerprint(id);
        let bucket = ended_at.as_millis() / self.width_ms;
        self.buckets.entry(bucket).or_default().insert(fingerprint);
        self.forget_before(ended_at);
    }

    /// Whether a call `id` may have ended within the retention: `false`
    /// only if it surely did not (since the index was filled).
    pub(crate) fn may_hold(&self, id: &str) -> bool {
        let fingerprint = self.fingerprint(id);
        self.buckets.values().any(|b| b.contains(&fingerprint))
    }

    /// Drops every bucket whose calls all ended more than the retention
    /// (and a bucket's width, a margin for the engine's clock running ahead
    /// of the store's) before `now`.
    fn forget_before(&mut self, now: Timestamp) {
        let cutoff = now
            .as_millis()
            .saturating_sub(self.retention_ms.saturating_add(self.width_ms));
        // Bucket `b` holds ends in `[b * width, (b + 1) * width)`.
        while let Some(entry) = self.buckets.first_entry() {
            if (entry.key() + 1).saturating_mul(self.width_ms) > cutoff {
                break;
            }
            entry.remove();
        }
    }

    /// How many fingerprints it holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.values().map(HashSet::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn an_id_ended_within_the_retention_is_found_across_buckets() {
        let mut ended = EndedIds::new(Duration::from_secs(24 * 3600));
        let start = 1_000 * HOUR;
        // One id at each edge of the buckets over two days.
        for i in 0..48 {
            ended.insert(&format!("call_{i}_a"), at(start + i * HOUR));
            ended.insert(&format!("call_{i}_b"), at(start + (i + 1) * HOUR - 1));
        }
        // Those that ended within the last day (as of the last insert) are found.
        for i in 24..48 {
            assert!(ended.may_hold(&format!("call_{i}_a")), "call_{i}_a");
            assert!(ended.may_hold(&format!("call_{i}_b")), "call_{i}_b");
        }
        // Those that ended more than two buckets before the retention are gone.
        for i in 0..21 {
            assert!(!ended.may_hold(&format!("call_{i}_a")), "call_{i}_a");
        }
        assert!(ended.len() < 2 * 27, "{} kept", ended.len());
    }

    #[test]
    fn ids_expire_after_the_retention_not_before() {
        let retention = Duration::from_secs(24 * 3600);
        let mut ended = EndedIds::new(retention);
        let t = 500 * HOUR + 1_234;
        ended.insert("call_old", at(t));
        // Still there just before its retention ends, whatever else ends.
        ended.insert("call_other", at(t + 24 * HOUR - 1));
        assert!(ended.may_hold("call_old"));
        // Gone once its whole bucket is past the retention.
        ended.insert("call_late", at(t + 26 * HOUR + 1));
        assert!(!ended.may_hold("call_old"));
        assert!(ended.may_hold("call_other"));
        assert!(ended.may_hold("call_late"));
    }

    #[test]
    fn a_short_retention_still_keeps_each_id_for_all_of_it() {
        // Buckets are at least a second wide.
        let mut ended = EndedIds::new(Duration::from_secs(1));
        ended.insert("call_a", at(10_000));
        ended.insert("call_b", at(10_999));
        assert!(ended.may_hold("call_a"));
        ended.insert("call_c", at(11_999));
        assert!(ended.may_hold("call_b"));
        ended.insert("call_d", at(12_000));
        assert!(ended.may_hold("call_a") && ended.may_hold("call_b"));
        ended.insert("call_e", at(13_000));
        assert!(!ended.may_hold("call_a") && !ended.may_hold("call_b"));
        assert!(ended.may_hold("call_c") && ended.may_hold("call_e"));
    }

    #[test]
    fn no_false_negatives_over_many_ids_and_few_false_positives() {
        let mut ended = EndedIds::new(Duration::from_secs(24 * 3600));
        let start = 100 * HOUR;
        let n = 200_000u64;
        for i in 0..n {
            // Spread over the day, in no particular order.
            let t = start + (i * 7_919 % n) * (24 * HOUR / n);
            ended.insert(&format!("call_{i:016x}"), at(t));
        }
        for i in 0..n {
            assert!(ended.may_hold(&format!("call_{i:016x}")), "call {i}");
        }
        let false_positives = (0..n)
            .filter(|i| ended.may_hold(&format!("fresh_{i:016x}")))
            .count();
        // Expected about n * n / 2^32 ≈ 9.
        assert!(false_positives < 100, "{false_positives} false positives");
    }
}
