//! An org's deadlines: lease expiries, queue holds and `max_wait`s, earliest first.
//!
//! Deadlines come as `now + span`, and an org's spans are few (its calls'
//! `lease_ttl`s and `max_wait`s), so the deadlines of one kind and one span
//! arrive in order. Each (kind, span) pair gets a FIFO list, doubly linked
//! through the call records themselves (two [`Link`]s per call, read and
//! written through [`Nodes`]): scheduling appends at the tail and removing
//! unlinks, with no search and no memory of their own. The first deadline of
//! each list sits in a small ordered set (one entry per list, so O(log lists)
//! when a list's first deadline changes), and the earliest of all is found
//! without scanning the leases. A deadline that arrives out of order (a
//! late dispatch at an earlier instant, a restore) is walked back from the tail
//! to its place, so every list stays sorted and the set exact: no entry goes
//! stale, there is no clean-up pass and no pause, whatever the number of calls.

use std::collections::BTreeSet;

use hashbrown::HashMap;
use slab::Slab;

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

impl TimerKind {
    fn from_index(i: u32) -> TimerKind {
        match i {
            0 => TimerKind::MaxWait,
            1 => TimerKind::Hold,
            _ => TimerKind::Lease,
        }
    }
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
    /// How long after it was set it falls due, in ms: picks its list.
    pub(crate) span: u64,
}

/// A call's deadlines, by slot: `[lease or max_wait, hold]`.
pub(crate) type Deadlines = [Option<Timer>; 2];

/// A call's place in one list: its neighbours' node ids.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub(crate) struct Link {
    prev: u32,
    next: u32,
}

/// Where the lists live: each call's two links, kept in its record, and the
/// instant of each of its current deadlines.
pub(crate) trait Nodes {
    /// The links of call `call`: slot 0 (lease or `max_wait`), slot 1 (hold).
    fn links(&mut self, call: u32) -> &mut [Link; 2];
    /// The instant, in ms, of the deadline `call` now has in `slot`.
    fn at(&self, call: u32, slot: usize) -> u64;
}

/// Node ids: a call's deadline in slot `s` is `key * 2 + s`; a list's
/// sentinel is its list id with this bit set.
const SENTINEL: u32 = 1 << 31;

/// The deadlines of one kind and one span, in order, around a sentinel.
#[derive(Debug)]
struct List {
    kind: TimerKind,
    span: u64,
    sentinel: Link,
}

/// A list's first deadline in the head set, as one integer with the set's
/// order: instant, then kind, then list.
fn head_key(at: u64, kind: TimerKind, list: u32) -> u128 {
    (u128::from(at) << 64) | ((kind as u128) << 32) | u128::from(list)
}

/// The current deadlines of an org's calls, earliest first.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    lists: Slab<List>,
    by_span: HashMap<(TimerKind, u64), u32>,
    /// The list each kind last used, as `(span, list)`: most calls of an org
    /// share one span, so this usually saves the map lookup.
    recent: [Option<(u64, u32)>; 3],
    /// The first deadline of every non-empty list.
    heads: BTreeSet<u128>,
    len: usize,
}

impl Timers {
    /// Replaces a call's deadlines `old` by `new`, touching only the slots
    /// that differ. `nodes` must hold the call, and every other call's
    /// current deadlines.
    pub(crate) fn replace(&mut self, nodes: &mut impl Nodes, old: Deadlines, new: Deadlines) {
        for slot in 0..2 {
            if old[slot] == new[slot] {
                continue;
            }
            if let Some(t) = old[slot] {
                self.unlink(nodes, node_id(t.call, slot), t.at.as_millis());
            }
            if let Some(t) = new[slot] {
                self.link(nodes, node_id(t.call, slot), t);
            }
        }
    }

    /// The earliest deadline.
    pub(crate) fn first(&self) -> Option<Timer> {
        let &head = self.heads.first()?;
        let (at, kind, list) = (
            (head >> 64) as u64,
            TimerKind::from_index((head >> 32) as u32),
            head as u32,
        );
        let list = &self.lists[list as usize];
        Some(Timer {
            at: Timestamp::from_millis(at),
            kind,
            call: node_of(list.sentinel.next).0,
            span: list.span,
        })
    }

    /// Number of deadlines.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn link_of<'a>(&'a mut self, nodes: &'a mut impl Nodes, id: u32) -> &'a mut Link {
        if id & SENTINEL != 0 {
            &mut self.lists[(id & !SENTINEL) as usize].sentinel
        } else {
            let (call, slot) = node_of(id);
            &mut nodes.links(call)[slot]
        }
    }

    /// Files deadline `t` under node `id`, after every deadline of its list
    /// that is not later (so equal instants keep their arrival order).
    fn link(&mut self, nodes: &mut impl Nodes, id: u32, t: Timer) {
        let key = (t.kind, t.span);
        let recent = self.recent[t.kind as usize].filter(|&(span, _)| span == t.span);
        let list = match recent.or_else(|| self.by_span.get(&key).map(|&list| (t.span, list))) {
            Some((_, list)) => list,
            None => {
                let list = self.lists.vacant_key() as u32;
                assert!(list < SENTINEL, "fewer than 2^31 lists");
                let s = list | SENTINEL;
                self.lists.insert(List {
                    kind: t.kind,
                    span: t.span,
                    sentinel: Link { prev: s, next: s },
                });
                self.by_span.insert(key, list);
                list
            }
        };
        self.recent[t.kind as usize] = Some((t.span, list));
        let s = list | SENTINEL;
        let at = t.at.as_millis();
        // In order, the tail is the place; out of order, walk back to it.
        let mut prev = self.lists[list as usize].sentinel.prev;
        while prev != s && at_of(nodes, prev) > at {
            prev = self.link_of(nodes, prev).prev;
        }
        let next = self.link_of(nodes, prev).next;
        *self.link_of(nodes, id) = Link { prev, next };
        self.link_of(nodes, prev).next = id;
        self.link_of(nodes, next).prev = id;
        if prev == s {
            if next != s {
                let old = at_of(nodes, next);
                self.heads.remove(&head_key(old, t.kind, list));
            }
            self.heads.insert(head_key(at, t.kind, list));
        }
        self.len += 1;
    }

    /// Takes node `id`, due at `at`, out of its list; a list left empty is dropped.
    fn unlink(&mut self, nodes: &mut impl Nodes, id: u32, at: u64) {
        let Link { prev, next } = *self.link_of(nodes, id);
        self.link_of(nodes, prev).next = next;
        self.link_of(nodes, next).prev = prev;
        self.len -= 1;
        if prev & SENTINEL == 0 {
            return;
        }
        // It was its list's first: the list's place in the head set changes.
        let list = prev & !SENTINEL;
        let kind = self.lists[list as usize].kind;
        self.heads.remove(&head_key(at, kind, list));
        if next == prev {
            let gone = self.lists.remove(list as usize);
            self.by_span.remove(&(gone.kind, gone.span));
            if self.recent[kind as usize] == Some((gone.span, list)) {
                self.recent[kind as usize] = None;
            }
        } else {
            let at = at_of(nodes, next);
            self.heads.insert(head_key(at, kind, list));
        }
    }
}

fn node_id(call: u32, slot: usize) -> u32 {
    assert!(call < SENTINEL / 2, "fewer than 2^30 calls per org");
    call * 2 + slot as u32
}

/// The (call, slot) of a call's node id: the inverse of [`node_id`].
fn node_of(id: u32) -> (u32, usize) {
    (id / 2, (id % 2) as usize)
}

/// The instant of a call's node.
fn at_of(nodes: &impl Nodes, id: u32) -> u64 {
    let (call, slot) = node_of(id);
    nodes.at(call, slot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Calls as the tests keep them: their links and current deadlines.
    #[derive(Default)]
    struct Calls(Vec<([Link; 2], Deadlines)>);

    impl Nodes for Calls {
        fn links(&mut self, call: u32) -> &mut [Link; 2] {
            &mut self.0[call as usize].0
        }
        fn at(&self, call: u32, slot: usize) -> u64 {
            self.0[call as usize].1[slot]
                .expect("linked")
                .at
                .as_millis()
        }
    }

    impl Calls {
        /// Gives call `call` the deadlines `new`, as the org does.
        fn set(&mut self, timers: &mut Timers, call: u32, new: Deadlines) {
            let c = call as usize;
            if self.0.len() <= c {
                self.0.resize(c + 1, Default::default());
            }
            let old = std::mem::replace(&mut self.0[c].1, new);
            timers.replace(self, old, new);
        }

        /// Files `t` alone in its slot.
        fn add(&mut self, timers: &mut Timers, t: Timer) {
            let mut new = [None, None];
            new[slot_of(&t)] = Some(t);
            self.set(timers, t.call, new);
        }
    }

    fn timer(at: u64, kind: TimerKind, call: u32, span: u64) -> Timer {
        Timer {
            at: Timestamp::from_millis(at),
            kind,
            call,
            span,
        }
    }

    fn slot_of(t: &Timer) -> usize {
        usize::from(t.kind == TimerKind::Hold)
    }

    /// Takes every deadline out, earliest first, as ending each call would.
    fn drain(timers: &mut Timers, calls: &mut Calls) -> Vec<(u64, TimerKind, u32)> {
        std::iter::from_fn(|| {
            let t = timers.first()?;
            calls.set(timers, t.call, [None, None]);
            Some((t.at.as_millis(), t.kind, t.call))
        })
        .collect()
    }

    #[test]
    fn pops_earliest_first_and_queued_kinds_before_leases_at_one_instant() {
        let (mut t, mut calls) = (Timers::default(), Calls::default());
        calls.add(&mut t, timer(10, TimerKind::Lease, 1, 10));
        calls.add(&mut t, timer(10, TimerKind::Hold, 2, 10));
        calls.add(&mut t, timer(5, TimerKind::Lease, 3, 5));
        calls.add(&mut t, timer(10, TimerKind::MaxWait, 4, 7));
        let order: Vec<u32> = drain(&mut t, &mut calls)
            .into_iter()
            .map(|(_, _, c)| c)
            .collect();
        assert_eq!(order, vec![3, 4, 2, 1]);
        assert_eq!((t.len(), t.lists.len(), t.heads.len()), (0, 0, 0));
    }

    #[test]
    fn a_late_deadline_is_walked_back_to_its_place_and_equal_instants_keep_arrival_order() {
        let (mut t, mut calls) = (Timers::default(), Calls::default());
        for (call, at) in [(1, 100), (2, 300), (3, 300), (4, 200), (5, 300), (6, 50)] {
            calls.add(&mut t, timer(at, TimerKind::Lease, call, 60));
        }
        let order: Vec<u32> = drain(&mut t, &mut calls)
            .into_iter()
            .map(|(_, _, c)| c)
            .collect();
        assert_eq!(order, vec![6, 1, 4, 2, 3, 5]);
    }

    #[test]
    fn replacing_keeps_exactly_the_new_deadlines() {
        let (mut t, mut calls) = (Timers::default(), Calls::default());
        let (max_wait, hold) = (
            timer(50, TimerKind::MaxWait, 7, 50),
            timer(20, TimerKind::Hold, 7, 20),
        );
        calls.set(&mut t, 7, [Some(max_wait), Some(hold)]);
        assert_eq!((t.len(), t.first()), (2, Some(hold)));
        // A renewed hold: the max_wait stays, the old hold goes.
        let renewed = timer(30, TimerKind::Hold, 7, 20);
        calls.set(&mut t, 7, [Some(max_wait), Some(renewed)]);
        assert_eq!((t.len(), t.first()), (2, Some(renewed)));
        // Admitted: both go, a lease comes.
        let lease = timer(40, TimerKind::Lease, 7, 20);
        calls.set(&mut t, 7, [Some(lease), None]);
        assert_eq!((t.len(), t.first()), (1, Some(lease)));
        // Ended: nothing is left, not even an empty list.
        calls.set(&mut t, 7, [None, None]);
        assert_eq!((t.len(), t.first(), t.lists.len()), (0, None, 0));
    }

    proptest! {
        /// Random schedules, renewals and removals over a few spans, against a
        /// plain ordered set: the same deadlines pop in the same (instant, kind)
        /// order; calls at one instant and kind may pop in any order.
        #[test]
        fn matches_an_ordered_set(ops in prop::collection::vec((0u32..20, 0u64..400, 0usize..3, 0u64..3), 1..200)) {
            let (mut t, mut calls) = (Timers::default(), Calls::default());
            calls.set(&mut t, 19, [None, None]);
            for (call, at, kind, span) in ops {
                let kind = [TimerKind::MaxWait, TimerKind::Hold, TimerKind::Lease][kind];
                let mut new = calls.0[call as usize].1;
                // One op in four removes the slot's deadline; the others (re)set it.
                new[usize::from(kind == TimerKind::Hold)] =
                    (at % 4 != 0).then(|| timer(at, kind, call, span * 1000));
                calls.set(&mut t, call, new);
                let want = calls.0.iter().flat_map(|c| c.1.iter().flatten()).map(|d| (d.at.as_millis(), d.kind)).min();
                prop_assert_eq!(t.first().map(|d| (d.at.as_millis(), d.kind)), want);
            }
            // Drained call by call: each pops once, at its earliest deadline.
            let mut want: Vec<(u64, TimerKind, u32)> = calls
                .0
                .iter()
                .filter_map(|c| c.1.iter().flatten().map(|d| (d.at.as_millis(), d.kind, d.call)).min())
                .collect();
            want.sort();
            let mut got = drain(&mut t, &mut calls);
            prop_assert!(got.windows(2).all(|w| (w[0].0, w[0].1) <= (w[1].0, w[1].1)), "{:?}", got);
            got.sort();
            prop_assert_eq!(got, want);
            prop_assert_eq!((t.len(), t.lists.len(), t.heads.len(), t.by_span.len()), (0, 0, 0, 0));
        }
    }
}
