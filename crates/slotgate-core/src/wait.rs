//! Expected waits: how long a kind of slot is held before it frees, learnt
//! from its recent frees, and from that how long a queued call will wait.
//!
//! A kind of slot is the org's shared pool, or the reserved slots of one
//! (agent, type) group that has some (kept only while it has). For each the
//! org keeps [`SlotUse`]: a running total
//! of slot-milliseconds in use (the integral of the slots in use over time)
//! and that total at each of the last [`FREES_KEPT`] frees. Their ratio is
//! the mean time a slot stays in use before it frees, so a pool of `n` busy
//! slots frees one every `holding / n` on average. Counting use rather than
//! wall-clock time between frees keeps the estimate right after a quiet spell
//! (fewer calls, fewer frees, same holding time), and counting use up to `now`
//! makes it grow while an org stalls (a busy pool with no free for a long
//! time has long holding times).
//!
//! A queued call waits for whichever comes first: the shared frees that
//! reach it through the org's queue (every call ahead of it in the org goes
//! first), or, if its group has reserved slots, the reserved frees that reach
//! it through its group's queue. Each path alone takes `needed × gap`; the
//! two run side by side, so their rates add: `1/W = 1/W_shared + 1/W_reserved`.
//! With a shared pool only, that is `(position) × gap`, the mean of the
//! wait of M/M/c's FIFO queue.

use std::collections::VecDeque;

use crate::time::Timestamp;

/// Frees remembered per kind of slot: the estimate follows the last this many.
pub const FREES_KEPT: usize = 64;
/// Frees a kind of slot needs before it gives an estimate: fewer say too
/// little about how long its calls last.
pub const MIN_FREES: usize = 8;

/// One kind of slot's use over time: the shared pool, or one group's reserved slots.
#[derive(Debug, Default)]
pub(crate) struct SlotUse {
    /// Slot-milliseconds of use up to `since`.
    busy_ms: u64,
    /// The instant `busy_ms` counts up to.
    since: Timestamp,
    /// `busy_ms` at each of the last [`FREES_KEPT`] frees, oldest first.
    frees: VecDeque<u64>,
}

impl SlotUse {
    /// No use and no frees yet, counting from `now`.
    pub(crate) fn starting(now: Timestamp) -> SlotUse {
        SlotUse {
            since: now,
            ..SlotUse::default()
        }
    }

    /// Counts `in_use` slots busy from the last update until `now`. Called
    /// before the number in use changes, with the number before the change.
    pub(crate) fn advance(&mut self, in_use: u32, now: Timestamp) {
        if now > self.since {
            let used = u64::from(in_use).saturating_mul(now.millis_since(self.since));
            self.busy_ms = self.busy_ms.saturating_add(used);
            self.since = now;
        }
    }

    /// Slot-milliseconds of use up to `now`, with `in_use` slots busy since
    /// the last update: the integral of its use over time (the org's burst
    /// time is one).
    pub(crate) fn busy_ms(&self, in_use: u32, now: Timestamp) -> u64 {
        let since = u64::from(in_use).saturating_mul(now.millis_since(self.since));
        self.busy_ms.saturating_add(since)
    }

    /// One slot freed (after [`SlotUse::advance`] to the instant it freed).
    pub(crate) fn freed(&mut self) {
        if self.frees.len() == FREES_KEPT {
            self.frees.pop_front();
        }
        self.frees.push_back(self.busy_ms);
    }

    /// The mean time between two frees with `in_use` slots busy, in ms, as of
    /// `now`; `None` with fewer than [`MIN_FREES`] frees or nothing in use.
    ///
    /// The mean holding time is the use since the oldest remembered free,
    /// counted up to `now`, divided by the frees after it.
    pub(crate) fn gap_ms(&self, in_use: u32, now: Timestamp) -> Option<f64> {
        let oldest = *self.frees.front()?;
        if self.frees.len() < MIN_FREES || in_use == 0 {
            return None;
        }
        let busy_now = self.busy_ms(in_use, now);
        let holding_ms = (busy_now - oldest) as f64 / (self.frees.len() - 1) as f64;
        Some(holding_ms / f64::from(in_use))
    }
}

/// One way a queued call can be admitted: `needed` more frees of a kind of
/// slot, one every `gap_ms`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Path {
    /// Frees until this call's turn: one for each call ahead of it that the
    /// same frees admit, one for itself, and one for each slot in use above capacity.
    pub(crate) needed: u64,
    /// Mean time between two of those frees, ms.
    pub(crate) gap_ms: f64,
}

/// The expected wait over the paths that have an estimate, in ms: their
/// rates add (`1/W = Σ 1/(needed × gap)`). `None` if no path has one.
pub(crate) fn expected_wait_ms(paths: impl IntoIterator<Item = Option<Path>>) -> Option<u64> {
    let rate: f64 = paths
        .into_iter()
        .flatten()
        .map(|p| 1.0 / (p.needed as f64 * p.gap_ms.max(f64::MIN_POSITIVE)))
        .sum();
    (rate > 0.0).then(|| (1.0 / rate).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    /// Two slots busy all along, one free each second (each call lasts 2 s).
    fn steady(frees: u64) -> SlotUse {
        let mut u = SlotUse::default();
        for i in 1..=frees {
            u.advance(2, t(i * 1000));
            u.freed();
        }
        u
    }

    #[test]
    fn no_estimate_before_enough_frees() {
        let u = steady(MIN_FREES as u64 - 1);
        assert_eq!(u.gap_ms(2, t(7000)), None);
        assert_eq!(steady(MIN_FREES as u64).gap_ms(2, t(8000)), Some(1000.0));
        assert_eq!(steady(20).gap_ms(0, t(20_000)), None, "nothing in use");
    }

    #[test]
    fn the_gap_is_the_holding_time_over_the_slots_in_use() {
        let u = steady(20);
        assert_eq!(u.gap_ms(2, t(20_000)), Some(1000.0));
        // Four slots busy now, with the same holding time: frees twice as often.
        assert_eq!(u.gap_ms(4, t(20_000)), Some(500.0));
    }

    #[test]
    fn a_stall_makes_the_gap_grow() {
        let u = steady(20);
        let later = u.gap_ms(2, t(40_000)).unwrap();
        assert!(later > 2000.0, "{later}");
    }

    #[test]
    fn a_quiet_spell_does_not_change_the_holding_time() {
        let mut u = steady(20);
        // No calls for an hour, then two busy again.
        u.advance(0, t(3_620_000));
        for i in 1..=3 {
            u.advance(2, t(3_620_000 + i * 1000));
            u.freed();
        }
        assert_eq!(u.gap_ms(2, t(3_623_000)), Some(1000.0));
    }

    #[test]
    fn only_the_last_frees_count() {
        let mut u = steady(FREES_KEPT as u64 * 2);
        let end = FREES_KEPT as u64 * 2 * 1000;
        // Calls now last 4 s: after FREES_KEPT frees, the old ones are forgotten.
        for i in 1..=FREES_KEPT as u64 {
            u.advance(2, t(end + i * 2000));
            u.freed();
        }
        assert_eq!(u.gap_ms(2, t(end + FREES_KEPT as u64 * 2000)), Some(2000.0));
    }

    #[test]
    fn paths_add_their_rates() {
        let shared = Path {
            needed: 4,
            gap_ms: 1000.0,
        };
        let reserved = Path {
            needed: 1,
            gap_ms: 4000.0,
        };
        assert_eq!(expected_wait_ms([Some(shared), None]), Some(4000));
        assert_eq!(expected_wait_ms([Some(shared), Some(reserved)]), Some(2000));
        assert_eq!(expected_wait_ms([None, None]), None);
    }
}
