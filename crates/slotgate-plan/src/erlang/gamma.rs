//! The special functions Erlang A needs: ln Γ and a scaled lower incomplete gamma, in log space.
//!
//! Erlang A's probabilities are ratios of terms like `e^y y^(-a) γ(a, z)` where
//! `a` and `y` grow with the pool (thousands for a pool of 10,000 slots), so
//! every quantity here is computed as a logarithm and never overflows. The
//! methods are the textbook ones: the power series of `γ(a, z)` below `z = a + 1`
//! and the continued fraction of `Γ(a, z)` (modified Lentz) above it, as in
//! Press et al., *Numerical Recipes*, 3rd ed., §6.2 (`gser`, `gcf`); ln Γ by
//! Stirling's series (Abramowitz & Stegun 6.1.41) after shifting the argument
//! to at least 10.

/// Relative precision at which series and continued fractions stop.
const EPS: f64 = 1e-16;
/// Enough for arguments up to ~10^10; far beyond any pool the engine accepts.
const MAX_ITER: usize = 10_000_000;

/// ln Γ(x) for `x > 0`, with an error below 1e-13 (Stirling's series to the
/// `x^-7` term once `x >= 10`; smaller `x` are shifted up with Γ(x+1) = xΓ(x)).
pub(crate) fn ln_gamma(x: f64) -> f64 {
    debug_assert!(x > 0.0, "ln_gamma is used for positive arguments only");
    let mut x = x;
    let mut shift = 0.0;
    while x < 10.0 {
        shift += x.ln();
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    let series = inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 / 1680.0)));
    (x - 0.5) * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI).ln() + series - shift
}

/// `ln( e^y · y^(-a) · γ(a, z) )` for `a > 0`, `y > 0` and `0 <= z`, where
/// `γ(a, z) = ∫_0^z t^(a-1) e^(-t) dt` is the lower incomplete gamma function.
/// `-∞` when `z = 0`.
///
/// The scaling by `e^y y^(-a)` is the one Erlang A's formulas carry, so the
/// result stays moderate where `γ` alone would over- or underflow.
pub(crate) fn ln_scaled_lower_gamma(a: f64, z: f64, y: f64) -> f64 {
    debug_assert!(a > 0.0 && y > 0.0 && z >= 0.0);
    if z == 0.0 {
        return f64::NEG_INFINITY;
    }
    if z < a + 1.0 {
        // γ(a, z) = z^a e^(-z) Σ_k z^k / (a (a+1) ... (a+k)): terms only shrink here.
        let (mut term, mut sum) = (1.0 / a, 1.0 / a);
        for k in 1..MAX_ITER {
            term *= z / (a + k as f64);
            sum += term;
            if term < sum * EPS {
                break;
            }
        }
        (y - z) + a * (z.ln() - y.ln()) + sum.ln()
    } else {
        // γ(a, z) = Γ(a) (1 - Q(a, z)), with Q from its continued fraction.
        let ln_q = -z + a * z.ln() - ln_gamma(a) + upper_gamma_fraction(a, z).ln();
        ln_gamma(a) + (-ln_q.exp()).ln_1p() + y - a * y.ln()
    }
}

/// The continued fraction `h` with `Γ(a, z) = e^(-z) z^a h`, for `z >= a + 1`
/// (Numerical Recipes' `gcf`, modified Lentz's method).
fn upper_gamma_fraction(a: f64, z: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut b = z + 1.0 - a;
    let mut c = 1.0 / TINY;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..MAX_ITER {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < TINY {
            d = TINY;
        }
        c = b + an / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within `rel` relatively, or 1e-12 absolutely (ln Γ near its zeros).
    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= (rel * b.abs()).max(1e-12)
    }

    #[test]
    fn ln_gamma_matches_factorials_and_half_integers() {
        // Γ(n) = (n-1)! exactly; Γ(1/2) = √π.
        let mut fact = 1.0f64;
        for n in 1..30 {
            let got = ln_gamma(n as f64);
            assert!(
                close(got, fact.ln(), 1e-13),
                "ln Γ({n}) = {got}, want {}",
                fact.ln()
            );
            fact *= n as f64;
        }
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-13
        ));
    }

    #[test]
    fn lower_gamma_matches_closed_forms_on_both_branches() {
        // γ(1, z) = 1 - e^(-z);  γ(2, z) = 1 - (1 + z) e^(-z). Scale with y = 1: e^1 · γ.
        for &z in &[0.01f64, 0.5, 1.9, 2.5, 10.0, 40.0] {
            let want1 = 1.0f64.exp() * (1.0 - (-z).exp());
            let got1 = ln_scaled_lower_gamma(1.0, z, 1.0).exp();
            assert!(close(got1, want1, 1e-12), "a=1 z={z}: {got1} vs {want1}");
            let want2 = 1.0f64.exp() * (1.0 - (1.0 + z) * (-z).exp());
            let got2 = ln_scaled_lower_gamma(2.0, z, 1.0).exp();
            assert!(close(got2, want2, 1e-12), "a=2 z={z}: {got2} vs {want2}");
        }
    }

    #[test]
    fn the_two_branches_agree_where_they_meet() {
        for &a in &[0.3, 5.0, 300.0, 30_000.0] {
            let z = a + 1.0;
            let below = ln_scaled_lower_gamma(a, z * (1.0 - 1e-12), z);
            let above = ln_scaled_lower_gamma(a, z, z);
            assert!(
                (below - above).abs() < 1e-9 * above.abs().max(1.0),
                "a={a}: {below} vs {above}"
            );
        }
    }
}
