//! A sequence ranked by key: entries join at the end, in ascending key order,
//! and leave from anywhere; a live entry's rank (how many live entries come
//! before it) and the entry at a rank are each found in O(log n).
//!
//! An org's queue (keyed by arrival seq) and its active calls (keyed by
//! admission seq) are such sequences: a call joins behind every other and may
//! leave at any place. So this is a plain vector in key order, where a
//! leaving entry leaves a hole, and a Fenwick tree (a binary indexed tree)
//! counting the live entries of each prefix of the vector: all that pool.rs
//! asks of an order-statistic tree, with no pointers.
//!
//! Holes are squeezed out when they outnumber the live entries, so the
//! vector stays under twice the live length: a removal that squeezes costs
//! O(n), once per n/2 removals, so O(1) amortised. Reading from a rank on
//! (a page) costs O(log n) to find the start and then one step per entry or
//! hole passed.

/// The entries, their holes and the counts of live ones. See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Ranked<V> {
    /// The key of every slot, live or hole, ascending: slots are found by
    /// binary search. Kept apart from the values so the search reads few lines.
    keys: Vec<u64>,
    /// Each slot's value; `None` for a hole.
    values: Vec<Option<V>>,
    /// The Fenwick tree over slots: `tree[i - 1]` counts the live slots in
    /// `(i - lowbit(i), i]` (slots counted from 1), so a prefix's count is
    /// the sum of O(log n) of these.
    tree: Vec<u32>,
    /// Live entries.
    len: usize,
    /// The first live slot, or `keys.len()` when there is none: the first
    /// entry in O(1), as dispatch asks for it after every change.
    head: usize,
}

impl<V> Default for Ranked<V> {
    fn default() -> Self {
        Ranked {
            keys: Vec::new(),
            values: Vec::new(),
            tree: Vec::new(),
            len: 0,
            head: 0,
        }
    }
}

/// The lowest set bit of `i`.
fn lowbit(i: usize) -> usize {
    i & i.wrapping_neg()
}

impl<V> Ranked<V> {
    /// Live entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends an entry. Its key must be above every key in the sequence,
    /// holes' included: callers hand out keys from a counter that only grows.
    pub(crate) fn push(&mut self, key: u64, value: V) {
        assert!(
            self.keys.last().is_none_or(|&last| last < key),
            "keys are pushed in ascending order"
        );
        // The new slot's count covers `(i - lowbit(i), i]`: itself plus the
        // counts that tile the rest of that range.
        let i = self.keys.len() + 1;
        let mut count = 1;
        let mut j = i - 1;
        while j > i - lowbit(i) {
            count += self.tree[j - 1];
            j -= lowbit(j);
        }
        self.keys.push(key);
        self.values.push(Some(value));
        self.tree.push(count);
        // `head` was `keys.len()` if nothing was live: now it is this slot.
        self.len += 1;
    }

    /// The live slot of `key`, if there is one.
    fn slot_of(&self, key: u64) -> Option<usize> {
        let slot = self.keys.binary_search(&key).ok()?;
        self.values[slot].is_some().then_some(slot)
    }

    /// The value of the live entry `key`.
    pub(crate) fn get(&self, key: u64) -> Option<&V> {
        self.slot_of(key)
            .and_then(|slot| self.values[slot].as_ref())
    }

    /// Takes the entry `key` out; its value, or `None` if it is not live.
    pub(crate) fn remove(&mut self, key: u64) -> Option<V> {
        let slot = self.slot_of(key)?;
        let value = self.values[slot].take();
        self.len -= 1;
        let mut i = slot + 1;
        while i <= self.tree.len() {
            self.tree[i - 1] -= 1;
            i += lowbit(i);
        }
        if slot == self.head {
            // Each hole is passed once between squeezes: O(1) amortised.
            while self.head < self.values.len() && self.values[self.head].is_none() {
                self.head += 1;
            }
        }
        if self.keys.len() - self.len > self.len {
            self.squeeze();
        }
        value
    }

    /// Live entries in slots before `slot`.
    fn count_before(&self, slot: usize) -> usize {
        let (mut i, mut count) = (slot, 0);
        while i > 0 {
            count += self.tree[i - 1] as usize;
            i -= lowbit(i);
        }
        count
    }

    /// How many live entries come before the live entry `key`.
    pub(crate) fn rank(&self, key: u64) -> Option<usize> {
        self.slot_of(key).map(|slot| self.count_before(slot))
    }

    /// The slot of the live entry of rank `rank` (`rank < len`): the walk
    /// down the Fenwick tree, one power of two at a time.
    fn slot_at(&self, rank: usize) -> usize {
        debug_assert!(rank < self.len);
        let (mut slot, mut left) = (0, rank as u32);
        let mut step = self.tree.len().checked_ilog2().map_or(0, |b| 1 << b);
        while step > 0 {
            // Slots `slot + 1 ..= slot + step` hold `tree[slot + step - 1]` live entries.
            if slot + step <= self.tree.len() && self.tree[slot + step - 1] <= left {
                slot += step;
                left -= self.tree[slot - 1];
            }
            step /= 2;
        }
        slot
    }

    /// The oldest live entry. (Dispatch takes the oldest admissible call
    /// from the pool's open set, which skips capped groups; the tests
    /// still check `head` with it.)
    #[cfg(test)]
    pub(crate) fn first(&self) -> Option<(u64, &V)> {
        self.entry(self.head)
    }

    /// The live entries in key order from rank `rank` on (none if `rank >= len`).
    pub(crate) fn iter_from(&self, rank: usize) -> impl Iterator<Item = (u64, &V)> + '_ {
        let start = if rank < self.len {
            self.slot_at(rank)
        } else {
            self.keys.len()
        };
        (start..self.keys.len()).filter_map(|slot| self.entry(slot))
    }

    fn entry(&self, slot: usize) -> Option<(u64, &V)> {
        let value = self.values.get(slot)?.as_ref()?;
        Some((self.keys[slot], value))
    }

    /// Drops every hole and rebuilds the tree in O(n): each slot's count is 1,
    /// added into the slot whose range covers it.
    fn squeeze(&mut self) {
        let mut live = self.values.iter().map(Option::is_some);
        self.keys
            .retain(|_| live.next().expect("one key per value"));
        self.values.retain(Option::is_some);
        let n = self.keys.len();
        self.tree.clear();
        self.tree.resize(n, 1);
        for i in 1..=n {
            let up = i + lowbit(i);
            if up <= n {
                self.tree[up - 1] += self.tree[i - 1];
            }
        }
        self.head = 0;
    }
}

impl<V> FromIterator<(u64, V)> for Ranked<V> {
    /// Entries in ascending key order, as [`Ranked::push`] takes them.
    fn from_iter<I: IntoIterator<Item = (u64, V)>>(entries: I) -> Self {
        let mut ranked = Ranked::default();
        for (key, value) in entries {
            ranked.push(key, value);
        }
        ranked
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn keys<V>(r: &Ranked<V>) -> Vec<u64> {
        r.iter_from(0).map(|(k, _)| k).collect()
    }

    #[test]
    fn ranks_and_selects_around_holes() {
        let mut r: Ranked<char> = (1..=6).zip("abcdef".chars()).collect();
        assert_eq!(r.remove(3), Some('c'));
        assert_eq!(r.remove(3), None, "once only");
        assert_eq!((r.len(), r.rank(4), r.rank(3)), (5, Some(2), None));
        assert_eq!(r.get(5), Some(&'e'));
        let from: Vec<_> = r.iter_from(2).map(|(k, v)| (k, *v)).collect();
        assert_eq!(from, [(4, 'd'), (5, 'e'), (6, 'f')]);
        assert_eq!(r.iter_from(5).count(), 0);
        r.remove(1);
        assert_eq!(r.first(), Some((2, &'b')));
        r.push(9, 'i');
        assert_eq!(keys(&r), [2, 4, 5, 6, 9]);
        assert_eq!(r.rank(9), Some(4));
    }

    #[test]
    fn holes_are_squeezed_once_they_outnumber_the_entries() {
        let mut r: Ranked<()> = (0..100).map(|k| (k, ())).collect();
        for k in 0..51 {
            r.remove(k);
        }
        assert_eq!((r.len(), r.keys.len(), r.head), (49, 49, 0));
        assert_eq!(r.rank(51), Some(0));
        for k in 51..100 {
            r.remove(k);
        }
        assert!(r.len() == 0 && r.keys.is_empty() && r.first().is_none());
        r.push(100, ());
        assert_eq!((r.first(), r.rank(100)), (Some((100, &())), Some(0)));
    }

    #[test]
    #[should_panic(expected = "ascending")]
    fn a_key_below_the_last_is_refused() {
        let mut r: Ranked<()> = [(5, ()), (6, ())].into_iter().collect();
        r.remove(6);
        r.push(6, ());
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Push the next key, this far above the last one.
        Push(u64),
        /// Remove the live key at this index (modulo their number), or a missing one.
        Remove(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (1u64..4).prop_map(Op::Push),
            2 => any::<usize>().prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// Every answer equals a plain `BTreeSet`'s after every step.
        #[test]
        fn answers_as_a_btreeset_does(ops in proptest::collection::vec(op(), 1..400)) {
            let (mut r, mut model) = (Ranked::default(), BTreeSet::new());
            let mut next = 0u64;
            for op in ops {
                match op {
                    Op::Push(gap) => {
                        next += gap;
                        r.push(next, next * 10);
                        model.insert(next);
                    }
                    Op::Remove(i) => {
                        let key = match model.len() {
                            0 => next + 1,
                            n => *model.iter().nth(i % n).unwrap(),
                        };
                        prop_assert_eq!(r.remove(key), model.remove(&key).then_some(key * 10));
                    }
                }
                prop_assert_eq!(r.len(), model.len());
                prop_assert_eq!(r.first().map(|(k, _)| k), model.first().copied());
                let all: Vec<u64> = model.iter().copied().collect();
                prop_assert_eq!(keys(&r), all.clone());
                for (rank, &key) in all.iter().enumerate() {
                    prop_assert_eq!(r.rank(key), Some(rank));
                    prop_assert_eq!(r.get(key), Some(&(key * 10)));
                    prop_assert_eq!(r.iter_from(rank).next(), Some((key, &(key * 10))));
                }
                for missing in (0..=next + 1).filter(|k| !model.contains(k)) {
                    prop_assert_eq!((r.rank(missing), r.get(missing)), (None, None));
                }
                let from = all.len() / 2;
                let tail: Vec<u64> = r.iter_from(from).map(|(k, _)| k).collect();
                prop_assert_eq!(tail, all[from..].to_vec());
                prop_assert!(r.keys.len() <= 2 * r.len() + 1, "holes are squeezed");
            }
        }
    }
}
