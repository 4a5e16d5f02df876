//! Confidence intervals from independent replications: Student's t, exact for integer degrees of freedom.

use serde::{Deserialize, Serialize};

/// An estimate from independent replications: their mean, and the half-width
/// of the confidence interval around it (`mean ± half_width`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Estimate {
    /// The mean over replications; null (NaN) when no replication measured it
    /// (a group with no calls).
    #[serde(deserialize_with = "nan_if_null")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub mean: f64,
    /// Half the confidence interval's width: `t_{(1+level)/2, n-1} · s/√n`.
    /// Infinite with a single replication (no spread to measure); JSON
    /// writes a value that is not finite as null.
    #[serde(deserialize_with = "nan_if_null")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub half_width: f64,
}

/// JSON has no NaN or infinity and serde_json writes them as null: read null back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl Estimate {
    /// The mean and Student-t interval at `level` (e.g. 0.95) of `values`,
    /// one per replication.
    pub fn from_replications(values: &[f64], level: f64) -> Self {
        let n = values.len();
        if n == 0 {
            return Estimate {
                mean: f64::NAN,
                half_width: f64::NAN,
            };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        if n == 1 {
            return Estimate {
                mean,
                half_width: f64::INFINITY,
            };
        }
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let t = student_t_quantile((n - 1) as u32, level);
        Estimate {
            mean,
            half_width: t * (var / n as f64).sqrt(),
        }
    }

    /// Whether `value` lies inside the interval.
    pub fn contains(&self, value: f64) -> bool {
        (value - self.mean).abs() <= self.half_width
    }
}

/// `P(|T| <= t)` for Student's t with `df` degrees of freedom, by the finite
/// series of Abramowitz & Stegun 26.7.3–26.7.4 (exact for integer `df`).
fn two_sided_cdf(t: f64, df: u32) -> f64 {
    let theta = (t / f64::from(df).sqrt()).atan();
    let (s, c) = theta.sin_cos();
    let c2 = c * c;
    if df % 2 == 1 {
        // (2/π)[θ + sinθ (cosθ + (2/3)cos³θ + ... + (2·4···(df-3))/(1·3···(df-2)) cos^(df-2)θ)]
        let mut sum = 0.0;
        if df > 1 {
            let mut term = c;
            sum = term;
            let mut k = 2;
            while k < df - 1 {
                term *= c2 * f64::from(k) / f64::from(k + 1);
                sum += term;
                k += 2;
            }
        }
        2.0 / std::f64::consts::PI * (theta + s * sum)
    } else {
        // sinθ [1 + (1/2)cos²θ + (1·3)/(2·4)cos⁴θ + ... + (1·3···(df-3))/(2·4···(df-2)) cos^(df-2)θ]
        let mut term = 1.0;
        let mut sum = 1.0;
        let mut k = 1;
        while k < df - 1 {
            term *= c2 * f64::from(k) / f64::from(k + 1);
            sum += term;
            k += 2;
        }
        s * sum
    }
}

/// The `t` with `P(|T| <= t) = level` for `df` degrees of freedom (the
/// two-sided critical value: 2.262 for df 9 at 0.95), by bisection.
pub fn student_t_quantile(df: u32, level: f64) -> f64 {
    assert!(df > 0, "a t quantile needs at least one degree of freedom");
    let (mut lo, mut hi) = (0.0, 1.0);
    while two_sided_cdf(hi, df) < level {
        lo = hi;
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if two_sided_cdf(mid, df) < level {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn critical_values_match_the_published_t_table() {
        // Two-sided critical values, from any t table (e.g. NIST/SEMATECH
        // e-Handbook of Statistical Methods, §1.3.6.7.2).
        #[rustfmt::skip]
        let table = [
            (1, 0.95, 12.706), (2, 0.95, 4.303), (4, 0.95, 2.776), (9, 0.95, 2.262),
            (9, 0.99, 3.250), (19, 0.99, 2.861), (29, 0.95, 2.045), (3, 0.99, 5.841),
        ];
        for (df, level, want) in table {
            let got = student_t_quantile(df, level);
            assert!(
                (got - want).abs() < 0.0006,
                "df {df} level {level}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn an_estimate_is_centred_on_the_mean() {
        let e = Estimate::from_replications(&[1.0, 2.0, 3.0, 4.0], 0.95);
        assert_eq!(e.mean, 2.5);
        // s = 1.291, t(3, 0.95) = 3.182: half-width 3.182 · 1.291 / 2.
        assert!((e.half_width - 3.182 * 1.290_994 / 2.0).abs() < 1e-3);
        assert!(e.contains(2.5 + e.half_width * 0.99) && !e.contains(2.5 + e.half_width * 1.01));
    }
}
