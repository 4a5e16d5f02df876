//! A group's queued calls: arrival order, with leaving from anywhere.
//!
//! Calls join a group's queue with increasing sequence numbers and mostly
//! leave from the front (admission), sometimes from the middle (cancel,
//! abandon, `max_wait`). The entries sit in one ring buffer, sorted by
//! sequence number, so the front and the calls behind it share cache lines
//! however long the queue is. Leaving from the front pops; leaving from the
//! middle finds the entry by binary search and marks it gone. Gone entries are
//! dropped when they reach the front, or all at once when they outnumber the
//! live ones, so the buffer stays within about twice the live count and every
//! operation is amortized O(1) except the O(log n) search.

use std::collections::VecDeque;

/// The key a gone entry carries: no call has it (keys are below 2^30).
const GONE: u32 = u32::MAX;

/// Queued calls as `(seq, call key)`, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Fifo {
    /// Sorted by seq; the front, if any, is live.
    entries: VecDeque<(u64, u32)>,
    live: usize,
}

impl Fifo {
    /// Appends a call; its `seq` is above every seq appended before.
    pub(crate) fn push(&mut self, seq: u64, key: u32) {
        debug_assert!(
            self.entries.back().is_none_or(|&(last, _)| last < seq),
            "sequence numbers increase"
        );
        self.entries.push_back((seq, key));
        self.live += 1;
    }

    /// The oldest call, as `(seq, key)`.
    pub(crate) fn first(&self) -> Option<(u64, u32)> {
        self.entries.front().copied()
    }

    /// Live calls.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Whether no call is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Takes the call with `seq` out; false if it is not queued here.
    pub(crate) fn remove(&mut self, seq: u64) -> bool {
        if self.first().is_some_and(|(first, _)| first == seq) {
            self.entries.pop_front();
        } else {
            let i = self.entries.partition_point(|&(s, _)| s < seq);
            match self.entries.get_mut(i) {
                Some(entry) if entry.0 == seq && entry.1 != GONE => entry.1 = GONE,
                _ => return false,
            }
        }
        self.live -= 1;
        while self.entries.front().is_some_and(|&(_, key)| key == GONE) {
            self.entries.pop_front();
        }
        if self.entries.len() > 2 * self.live + 16 {
            self.entries.retain(|&(_, key)| key != GONE);
        }
        if self.entries.capacity() > 64 && self.entries.len() * 4 < self.entries.capacity() {
            self.entries.shrink_to(self.entries.len() * 2);
        }
        true
    }

    /// Entries held, gone ones included.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn leaves_from_the_front_and_the_middle_in_order() {
        let mut q = Fifo::default();
        for seq in 1..=5 {
            q.push(seq, seq as u32 * 10);
        }
        assert!(q.remove(3));
        assert!(!q.remove(3), "gone already");
        assert!(!q.remove(9), "never queued");
        assert_eq!((q.first(), q.len()), (Some((1, 10)), 4));
        assert!(q.remove(1));
        assert!(q.remove(2));
        // 3 was gone: the front moves past it to 4.
        assert_eq!((q.first(), q.len(), q.held()), (Some((4, 40)), 2, 2));
    }

    #[test]
    fn gone_entries_never_outnumber_the_live_ones_by_much() {
        let mut q = Fifo::default();
        for seq in 0..10_000 {
            q.push(seq, 0);
        }
        // Cancel everything but the front, from the back.
        for seq in (1..10_000).rev() {
            assert!(q.remove(seq));
            assert!(
                q.held() <= 2 * q.len() + 16,
                "{} held for {}",
                q.held(),
                q.len()
            );
        }
        assert_eq!((q.first(), q.len()), (Some((0, 0)), 1));
    }

    proptest! {
        /// Random joins and leaves against an ordered map.
        #[test]
        fn matches_an_ordered_map(ops in prop::collection::vec((any::<bool>(), 0u64..64), 1..400)) {
            let (mut q, mut want) = (Fifo::default(), BTreeMap::new());
            let mut next = 0u64;
            for (join, pick) in ops {
                if join {
                    q.push(next, next as u32);
                    want.insert(next, next as u32);
                    next += 1;
                } else {
                    let seq = next.saturating_sub(pick + 1);
                    prop_assert_eq!(q.remove(seq), want.remove(&seq).is_some());
                }
                prop_assert_eq!(q.first(), want.first_key_value().map(|(&s, &k)| (s, k)));
                prop_assert_eq!(q.len(), want.len());
                prop_assert!(q.held() <= 2 * q.len() + 16);
            }
        }
    }
}
