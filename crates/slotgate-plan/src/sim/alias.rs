//! Walker's alias method: which stream an arrival belongs to, in O(1) whatever the number of streams.
//!
//! Vose's construction (M. D. Vose, *A linear algorithm for generating random
//! numbers with a given distribution*, IEEE TSE 17(9), 1991): each of `n`
//! columns holds at most two outcomes, so a draw is one uniform number.

use crate::rng::Rng;

/// A table to draw `0..n` with probabilities proportional to given weights.
#[derive(Debug, Clone)]
pub(crate) struct Alias {
    /// Chance of keeping column `i`'s own outcome.
    keep: Vec<f64>,
    /// The other outcome of column `i`.
    other: Vec<u32>,
}

impl Alias {
    /// The table for `weights` (non-negative, not all zero).
    pub(crate) fn new(weights: &[f64]) -> Self {
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut keep = vec![1.0; n];
        let mut other: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            keep[s] = scaled[s];
            other[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Whatever is left is 1 up to rounding: keeps itself.
        Alias { keep, other }
    }

    /// One draw.
    pub(crate) fn draw(&self, rng: &mut Rng) -> u32 {
        let u = rng.uniform() * self.keep.len() as f64;
        let i = (u as usize).min(self.keep.len() - 1);
        if u - (i as f64) < self.keep[i] {
            i as u32
        } else {
            self.other[i]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_follow_the_weights() {
        let weights = [1.0, 0.0, 3.0, 6.0];
        let table = Alias::new(&weights);
        let mut rng = Rng::new(9);
        let mut counts = [0u32; 4];
        let n = 200_000;
        for _ in 0..n {
            counts[table.draw(&mut rng) as usize] += 1;
        }
        for (c, w) in counts.iter().zip(weights) {
            let share = f64::from(*c) / f64::from(n);
            assert!((share - w / 10.0).abs() < 0.005, "{counts:?}");
        }
    }
}
