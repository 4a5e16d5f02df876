//! An org's deadlines: lease expiries, queue holds and `max_wait`s, earliest first.
//!
//! A binary heap with lazy deletion: renewing a lease or ending a call does not
//! search the heap; the old entry stays and is recognised as stale when it
//! reaches the top (the org checks it against the call's current state). The
//! next deadline is therefore found without scanning the leases, and renewal is
//! O(log n). When stale entries outnumber live ones the heap is rebuilt, so its
//! size stays within a constant factor of the live deadlines (amortised O(1)).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::time::Timestamp;

/// What a deadline ends. The order matters: at one instant, queued calls'
/// deadlines are handled before active leases (SEMANTICS.md case 12), and a
/// `max_wait` before a hold, so a call whose two deadlines coincide ends
/// `timed_out`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum TimerKind {
    /// A queued call's `max_wait` passes: it ends `timed_out`.
    MaxWait,
    /// A queued call has been unheld for its `lease_ttl`: it ends `abandoned`.
    Hold,
    /// An active call's lease runs out: it ends `expired`.
    Lease,
}

/// One deadline of one call.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) struct Timer {
    /// When it falls due.
    pub(crate) at: Timestamp,
    /// What it ends.
    pub(crate) kind: TimerKind,
    /// The call's key in the org's call table.
    pub(crate) call: u32,
}

/// A min-heap of [`Timer`]s that may hold stale entries.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Timer>>,
}

impl Timers {
    /// Schedules `timer`. Any earlier deadline of the same call becomes stale by itself.
    pub(crate) fn push(&mut self, timer: Timer) {
        self.heap.push(Reverse(timer));
    }

    /// The earliest entry, stale or not.
    pub(crate) fn peek(&self) -> Option<Timer> {
        self.heap.peek().map(|r| r.0)
    }

    /// Removes the earliest entry.
    pub(crate) fn pop(&mut self) -> Option<Timer> {
        self.heap.pop().map(|r| r.0)
    }

    /// Number of entries, stale included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drops stale entries when they dominate: `live_bound` is an upper bound
    /// on live entries, `is_live` tells one entry's fate.
    pub(crate) fn compact(&mut self, live_bound: usize, is_live: impl Fn(&Timer) -> bool) {
        if self.heap.len() > 64 && self.heap.len() > 2 * live_bound {
            self.heap.retain(|r| is_live(&r.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(at: u64, kind: TimerKind, call: u32) -> Timer {
        Timer {
            at: Timestamp::from_millis(at),
            kind,
            call,
        }
    }

    #[test]
    fn pops_earliest_first_and_queued_kinds_before_leases_at_one_instant() {
        let mut t = Timers::default();
        t.push(timer(10, TimerKind::Lease, 1));
        t.push(timer(10, TimerKind::Hold, 2));
        t.push(timer(5, TimerKind::Lease, 3));
        t.push(timer(10, TimerKind::MaxWait, 4));
        let order: Vec<u32> = std::iter::from_fn(|| t.pop()).map(|t| t.call).collect();
        assert_eq!(order, vec![3, 4, 2, 1]);
    }

    #[test]
    fn compaction_keeps_live_entries_only_once_stale_ones_dominate() {
        let mut t = Timers::default();
        for i in 0..200 {
            t.push(timer(i, TimerKind::Lease, i as u32));
        }
        t.compact(150, |_| false);
        assert_eq!(t.len(), 200, "not compacted while live entries may be most");
        t.compact(10, |e| e.call % 2 == 0);
        assert_eq!(t.len(), 100);
        assert!(std::iter::from_fn(|| t.pop()).all(|e| e.call % 2 == 0));
    }
}
