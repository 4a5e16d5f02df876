//! An org's deadlines: lease expiries, queue holds and `max_wait`s, earliest first.
//!
//! One ordered map from `(instant, kind, seq)` to the call, as mini-redis keeps
//! its expirations. `seq` counts the deadlines set, so entries are unique and
//! deadlines of one instant and kind fall in the order they were set. Each call
//! remembers the entries it has filed ([`Filed`]), so a renewal or an end
//! removes exactly those: no entry goes stale and nothing is ever scanned.
//! Scheduling and removing are O(log d) in the org's deadlines.

use std::collections::BTreeMap;

use crate::id::CallId;
use crate::time::Timestamp;

/// What a deadline ends. The order matters: at one instant, queued calls'
/// deadlines are handled before active leases (SEMANTICS.md case 12), and a
/// `max_wait` before a hold, so a call whose two deadlines coincide ends
/// `timed_out`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub(crate) enum TimerKind {
    /// A queued call's `max_wait` passes: it ends `timed_out`.
    MaxWait,
    /// A queued call has been unheld for its `lease_ttl`: it ends `abandoned`.
    Hold,
    /// An active call's lease runs out: it ends `expired`.
    Lease,
}

/// One filed deadline: the key of its entry, in the order they fall due.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) struct Deadline {
    /// When it falls due.
    pub(crate) at: Timestamp,
    /// What it ends.
    pub(crate) kind: TimerKind,
    /// When it was set, among the org's deadlines: keeps keys unique.
    seq: u64,
}

/// The deadlines a call wants, by slot: `[lease or max_wait, hold]`.
pub(crate) type Wanted = [Option<(Timestamp, TimerKind)>; 2];

/// The entries a call has filed, by the same slots.
pub(crate) type Filed = [Option<Deadline>; 2];

/// The current deadlines of an org's calls, earliest first.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    due: BTreeMap<Deadline, CallId>,
    /// The `seq` of the next deadline set.
    next_seq: u64,
}

impl Timers {
    /// Brings call `id`'s entries in line with what it wants: a slot whose
    /// deadline changed loses its old entry and gets a new one.
    pub(crate) fn refile(&mut self, id: &CallId, filed: &mut Filed, wanted: Wanted) {
        for (entry, wanted) in filed.iter_mut().zip(wanted) {
            if entry.map(|d| (d.at, d.kind)) == wanted {
                continue;
            }
            if let Some(old) = entry.take() {
                self.due.remove(&old);
            }
            if let Some((at, kind)) = wanted {
                let deadline = Deadline {
                    at,
                    kind,
                    seq: self.next_seq,
                };
                self.next_seq += 1;
                self.due.insert(deadline, id.clone());
                *entry = Some(deadline);
            }
        }
    }

    /// The earliest deadline and its call.
    pub(crate) fn first(&self) -> Option<(Deadline, &CallId)> {
        self.due.first_key_value().map(|(&d, id)| (d, id))
    }

    /// Number of deadlines.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.due.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn earliest_first_queued_kinds_before_leases_and_equal_ones_in_the_order_set() {
        let mut timers = Timers::default();
        let mut filed: Vec<Filed> = vec![[None, None]; 6];
        let id = |n: usize| CallId::new(&format!("c{n}")).unwrap();
        let wants: [(usize, Wanted); 6] = [
            (0, [Some((at(10), TimerKind::Lease)), None]),
            (1, [None, Some((at(10), TimerKind::Hold))]),
            (2, [Some((at(5), TimerKind::Lease)), None]),
            (3, [Some((at(10), TimerKind::MaxWait)), None]),
            (4, [Some((at(10), TimerKind::Lease)), None]),
            (
                5,
                [
                    Some((at(10), TimerKind::MaxWait)),
                    Some((at(10), TimerKind::Hold)),
                ],
            ),
        ];
        for (n, want) in wants {
            timers.refile(&id(n), &mut filed[n], want);
        }
        let mut order = Vec::new();
        while let Some((d, call)) = timers.first() {
            let n: usize = call.as_str()[1..].parse().unwrap();
            order.push((n, d.kind));
            timers.refile(&id(n), &mut filed[n], [None, None]);
        }
        use TimerKind::*;
        assert_eq!(
            order,
            [
                (2, Lease),
                (3, MaxWait),
                (5, MaxWait),
                (1, Hold),
                (0, Lease),
                (4, Lease)
            ]
        );
    }

    #[test]
    fn refiling_keeps_exactly_the_wanted_deadlines() {
        let mut timers = Timers::default();
        let id = CallId::new("c").unwrap();
        let mut filed = [None, None];
        let max_wait = Some((at(50), TimerKind::MaxWait));
        timers.refile(&id, &mut filed, [max_wait, Some((at(20), TimerKind::Hold))]);
        assert_eq!(timers.len(), 2);
        // A renewed hold: the max_wait stays, the old hold goes.
        let kept = filed[0];
        timers.refile(&id, &mut filed, [max_wait, Some((at(30), TimerKind::Hold))]);
        assert_eq!((timers.len(), filed[0]), (2, kept));
        assert_eq!(timers.first().map(|(d, _)| d.at), Some(at(30)));
        // Admitted: both go, a lease comes.
        timers.refile(&id, &mut filed, [Some((at(40), TimerKind::Lease)), None]);
        assert_eq!(timers.len(), 1);
        // Ended: nothing is left.
        timers.refile(&id, &mut filed, [None, None]);
        assert_eq!((timers.len(), timers.first()), (0, None));
    }
}
