//! What one replication counts per (agent, type): calls, waits, give-ups, slot time.

/// Sub-buckets per power of two in the wait histogram: values are kept to
/// within 1/64 (1.6%) of themselves; quantiles are reported at bucket midpoints.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;

/// Waits in milliseconds, log-linear buckets: exact below 64 ms, then 64
/// buckets per doubling. Bounded memory whatever the number of calls; `u32`
/// counts (one replication of one group never has 4 billion calls) keep the
/// histograms of hundreds of streams small enough to stay in cache.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct WaitHistogram {
    counts: Vec<u32>,
    total: u64,
}

fn bucket_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = e - SUB_BITS;
    (SUB + u64::from(shift) * SUB + ((v >> shift) - SUB)) as usize
}

/// The midpoint of bucket `i`, ms.
fn value_of(i: usize) -> f64 {
    let i = i as u64;
    if i < SUB {
        return i as f64;
    }
    let shift = (i - SUB) / SUB;
    let low = (SUB + (i - SUB) % SUB) << shift;
    low as f64 + ((1u64 << shift) as f64 - 1.0) / 2.0
}

impl WaitHistogram {
    pub(crate) fn add(&mut self, wait_ms: u64) {
        let b = bucket_of(wait_ms);
        if b >= self.counts.len() {
            self.counts.resize(b + 1, 0);
        }
        self.counts[b] += 1;
        self.total += 1;
    }

    pub(crate) fn merge(&mut self, other: &WaitHistogram) {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    /// The `p`-quantile (nearest rank), ms; 0 when empty.
    pub(crate) fn quantile_ms(&self, p: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((p * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return value_of(i);
            }
        }
        value_of(self.counts.len() - 1)
    }
}

/// One (agent, type)'s counts in one replication, over the measured window.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Tally {
    /// Calls that arrived in the window.
    pub(crate) offered: u64,
    /// Of those, calls that queued.
    pub(crate) queued: u64,
    /// Of those, calls admitted within the service-level time.
    pub(crate) within: u64,
    /// Of those, calls that gave up (`timed_out`).
    pub(crate) abandoned: u64,
    /// Of those, calls still waiting when the run ended with no slot ever to
    /// come (no capacity they can use): counted as not admitted.
    pub(crate) stranded: u64,
    /// Sum of their waits (to admission, giving up, or the run's end), ms.
    pub(crate) wait_sum_ms: f64,
    /// Their waits.
    pub(crate) waits: WaitHistogram,
    /// Slot-milliseconds these calls held inside the window.
    pub(crate) busy_ms: f64,
    /// Calls the engine ended otherwise (expired, abandoned): must stay 0,
    /// since the simulator keeps every call held.
    pub(crate) lost: u64,
    /// Calls turned away because the simulated queue was at its cap
    /// ([`crate::sim::MAX_SIMULATED_QUEUE`]); arrived in the window or not.
    pub(crate) queue_full: u64,
}

impl Tally {
    pub(crate) fn merge(&mut self, o: &Tally) {
        self.offered += o.offered;
        self.queued += o.queued;
        self.within += o.within;
        self.abandoned += o.abandoned;
        self.stranded += o.stranded;
        self.wait_sum_ms += o.wait_sum_ms;
        self.waits.merge(&o.waits);
        self.busy_ms += o.busy_ms;
        self.lost += o.lost;
        self.queue_full += o.queue_full;
    }

    /// A call's wait, once known.
    pub(crate) fn record_wait(&mut self, wait_ms: u64) {
        self.wait_sum_ms += wait_ms as f64;
        self.waits.add(wait_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_keep_values_within_two_percent() {
        let mut last = 0;
        for v in (0..100_000u64).chain([1 << 30, (1 << 40) + 12345, u64::MAX / 2]) {
            let b = bucket_of(v);
            assert!(b >= last);
            last = b;
            let mid = value_of(b);
            assert!(
                (mid - v as f64).abs() <= v as f64 / 64.0 + 0.5,
                "{v} -> {mid}"
            );
        }
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut h = WaitHistogram::default();
        for v in 1..=100 {
            h.add(v);
        }
        assert!((h.quantile_ms(0.5) - 50.0).abs() <= 1.0);
        assert!((h.quantile_ms(0.9) - 90.0).abs() <= 2.0);
        assert_eq!(WaitHistogram::default().quantile_ms(0.5), 0.0);
    }
}
