//! An org's deadlines: lease expiries, queue holds and `max_wait`s, earliest first.
//!
//! An ordered set of exactly the current deadlines: each call's record says
//! which deadlines it has ([`Call::deadlines`](crate::call::Call::deadlines)),
//! and the org replaces a call's entries whenever it changes the call (renewal,
//! admission, end). The earliest deadline is found without scanning the
//! leases; scheduling, renewing and removing are O(log n), and no entry ever
//! goes stale, so there is no clean-up pass and no pause, whatever the number
//! of calls.

use std::collections::BTreeSet;

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

/// A call's deadlines: at most two (a queued call's `max_wait` and hold).
pub(crate) type Deadlines = [Option<Timer>; 2];

/// The current deadlines of an org's calls, earliest first.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    set: BTreeSet<Timer>,
}

impl Timers {
    /// Replaces a call's deadlines `old` by `new`, touching only those that differ.
    pub(crate) fn replace(&mut self, old: Deadlines, new: Deadlines) {
        for t in old.iter().flatten() {
            if !new.contains(&Some(*t)) {
                self.set.remove(t);
            }
        }
        for t in new.iter().flatten() {
            if !old.contains(&Some(*t)) {
                self.set.insert(*t);
            }
        }
    }

    /// The earliest deadline.
    pub(crate) fn first(&self) -> Option<Timer> {
        self.set.first().copied()
    }

    /// Removes the earliest deadline.
    pub(crate) fn pop_first(&mut self) -> Option<Timer> {
        self.set.pop_first()
    }

    /// Number of deadlines.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.set.len()
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
        t.replace([None, None], [Some(timer(10, TimerKind::Lease, 1)), None]);
        t.replace([None, None], [Some(timer(10, TimerKind::Hold, 2)), None]);
        t.replace([None, None], [Some(timer(5, TimerKind::Lease, 3)), None]);
        t.replace([None, None], [Some(timer(10, TimerKind::MaxWait, 4)), None]);
        let order: Vec<u32> = std::iter::from_fn(|| t.pop_first())
            .map(|t| t.call)
            .collect();
        assert_eq!(order, vec![3, 4, 2, 1]);
    }

    #[test]
    fn replacing_keeps_exactly_the_new_deadlines() {
        let mut t = Timers::default();
        let (max_wait, hold) = (
            timer(50, TimerKind::MaxWait, 7),
            timer(20, TimerKind::Hold, 7),
        );
        t.replace([None, None], [Some(max_wait), Some(hold)]);
        assert_eq!((t.len(), t.first()), (2, Some(hold)));
        // A renewed hold: the max_wait stays, the old hold goes.
        let renewed = timer(30, TimerKind::Hold, 7);
        t.replace(
            [Some(max_wait), Some(hold)],
            [Some(max_wait), Some(renewed)],
        );
        assert_eq!((t.len(), t.first()), (2, Some(renewed)));
        // Admitted: both go, a lease comes.
        let lease = timer(40, TimerKind::Lease, 7);
        t.replace([Some(max_wait), Some(renewed)], [Some(lease), None]);
        assert_eq!((t.len(), t.first()), (1, Some(lease)));
        // Ended: nothing is left.
        t.replace([Some(lease), None], [None, None]);
        assert_eq!((t.len(), t.first()), (0, None));
    }
}
