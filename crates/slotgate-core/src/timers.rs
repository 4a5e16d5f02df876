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
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
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

impl Timer {
    /// The timer as one integer with the same order: instant, then kind, then
    /// call. The set compares these (one wide compare instead of three).
    fn pack(self) -> u128 {
        (u128::from(self.at.as_millis()) << 64)
            | ((self.kind as u128) << 32)
            | u128::from(self.call)
    }

    fn unpack(packed: u128) -> Timer {
        let kind = match (packed >> 32) as u32 {
            0 => TimerKind::MaxWait,
            1 => TimerKind::Hold,
            _ => TimerKind::Lease,
        };
        Timer {
            at: Timestamp::from_millis((packed >> 64) as u64),
            kind,
            call: packed as u32,
        }
    }
}

/// The current deadlines of an org's calls, earliest first.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    set: BTreeSet<u128>,
}

impl Timers {
    /// Replaces a call's deadlines `old` by `new`, touching only those that differ.
    pub(crate) fn replace(&mut self, old: Deadlines, new: Deadlines) {
        for t in old.iter().flatten() {
            if !new.contains(&Some(*t)) {
                self.set.remove(&t.pack());
            }
        }
        for t in new.iter().flatten() {
            if !old.contains(&Some(*t)) {
                self.set.insert(t.pack());
            }
        }
    }

    /// The earliest deadline.
    pub(crate) fn first(&self) -> Option<Timer> {
        self.set.first().map(|&p| Timer::unpack(p))
    }

    /// Removes the earliest deadline.
    pub(crate) fn pop_first(&mut self) -> Option<Timer> {
        self.set.pop_first().map(Timer::unpack)
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
    fn packing_keeps_every_field_and_the_order() {
        let timers = [
            timer(0, TimerKind::Lease, u32::MAX),
            timer(5, TimerKind::MaxWait, 0),
            timer(5, TimerKind::Hold, 0),
            timer(5, TimerKind::Hold, 1),
            timer(5, TimerKind::Lease, 0),
            timer(u64::MAX - 2, TimerKind::Lease, 7),
        ];
        for pair in timers.windows(2) {
            assert!(pair[0].pack() < pair[1].pack(), "{pair:?}");
        }
        for t in timers {
            assert_eq!(Timer::unpack(t.pack()), t);
        }
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
