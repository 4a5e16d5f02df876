//! A small seedable random source (xoshiro256++) and the few distributions the simulator draws.
//!
//! Own code rather than a crate so that a seed gives the same run on every
//! platform and every future version: replications are reproducible by seed.
//! xoshiro256++ is Blackman & Vigna, *Scrambled Linear Pseudorandom Number
//! Generators* (2021); its state is filled from the seed by SplitMix64, as
//! its authors recommend.

/// A seeded xoshiro256++ generator.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    s: [u64; 4],
    /// The second normal of the last Box–Muller pair, not yet used.
    spare_normal: Option<f64>,
}

/// One SplitMix64 step: a well-mixed 64-bit value from a counter.
pub(crate) fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator whose whole stream is fixed by `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        let mut x = seed;
        Rng {
            s: [
                splitmix64(&mut x),
                splitmix64(&mut x),
                splitmix64(&mut x),
                splitmix64(&mut x),
            ],
            spare_normal: None,
        }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform on `(0, 1]`: never 0, so `ln` of it is finite.
    pub(crate) fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on `0..n`, for `n > 0` (Lemire's multiply-shift; bias below 2^-32 for any n used here).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Exponential with mean `mean`: `-mean · ln U`.
    pub(crate) fn exponential(&mut self, mean: f64) -> f64 {
        -mean * self.uniform().ln()
    }

    /// Standard normal, by the Box–Muller transform (pairs; the spare is kept).
    pub(crate) fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let r = (-2.0 * self.uniform().ln()).sqrt();
        let angle = 2.0 * std::f64::consts::PI * self.uniform();
        self.spare_normal = Some(r * angle.sin());
        r * angle.cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_stream_and_another_seed_another() {
        let (mut a, mut b, mut c) = (Rng::new(7), Rng::new(7), Rng::new(8));
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        assert_eq!(xs, (0..100).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(xs, (0..100).map(|_| c.next_u64()).collect::<Vec<_>>());
    }

    #[test]
    fn draws_have_the_moments_they_should() {
        let mut rng = Rng::new(42);
        let n = 200_000;
        let mean = |f: &mut dyn FnMut() -> f64| (0..n).map(|_| f()).sum::<f64>() / n as f64;
        let u = mean(&mut || rng.uniform());
        assert!((u - 0.5).abs() < 0.005, "uniform mean {u}");
        let mut rng = Rng::new(43);
        let e = mean(&mut || rng.exponential(3.0));
        assert!((e - 3.0).abs() < 0.05, "exponential mean {e}");
        let mut rng = Rng::new(44);
        let z2 = mean(&mut || rng.normal().powi(2));
        assert!((z2 - 1.0).abs() < 0.02, "normal variance {z2}");
        let mut rng = Rng::new(45);
        let k = mean(&mut || rng.below(10) as f64);
        assert!((k - 4.5).abs() < 0.05, "below(10) mean {k}");
    }
}
