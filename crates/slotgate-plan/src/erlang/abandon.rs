//! Erlang A: the M/M/c+M queue, where callers give up after an exponential patience.

use crate::erlang::blocking::blocking;
use crate::erlang::gamma::ln_scaled_lower_gamma;
use crate::error::{check_at_least, check_positive, Result};

/// Palm's M/M/c+M queue ("Erlang A"): Poisson arrivals at `λ`, exponential
/// durations of mean `1/μ`, `c` slots, FIFO, and every queued call giving up
/// after an exponential patience of mean `1/θ` (in slotgate: a `max_wait`).
/// Built once (O(c) plus a series of about √c terms); measures are then cheap.
///
/// # Formulas
///
/// Write `x = cμ/θ`, `y = λ/θ`, `ρ = λ/(cμ)`, `B = B(c, λ/μ)` (Erlang B) and
///
/// ```text
/// 𝒜(x, y) = x e^y y^(-x) γ(x, y) = Σ_{j>=0} y^j / ((x+1)(x+2)...(x+j))
/// ```
///
/// with `γ` the lower incomplete gamma function. The number in the system is
/// a birth–death chain with death rate `min(n, c)μ + max(n - c, 0)θ`, so
/// `π_{c+j} = π_c · y^j / ((x+1)...(x+j))` and, by PASTA:
///
/// ```text
/// P(wait)        = 𝒜B / (1 + (𝒜 - 1)B)
/// P(abandon)     = P(wait) · (1/(ρ𝒜) + 1 - 1/ρ)        = θ·E[Q]/λ
/// mean wait      = E[Q]/λ,  E[Q] = π_c Σ j y^j/((x+1)...(x+j))   (all calls, served or not)
/// P(V > t)       = P(wait) · γ(x, y e^(-θt)) / γ(x, y)             (V: the wait of an infinitely patient call)
/// service level  = P(admitted within T) = 1 - P(wait)
///                  + π_c x e^y y^(-x-1) [γ(x+1, y) - γ(x+1, y e^(-θT))]
/// occupancy      = (λ/μ)(1 - P(abandon)) / c
/// ```
///
/// The service level counts a call that gives up as not admitted, whenever it
/// gives up; at `T = ∞` it is `1 - P(abandon)`. The last formula follows from
/// the one for `V` (a call with `j` calls ahead waits the `(j+1)`-th of `x + j`
/// exponential(θ) clocks, so `P(V > t | j) = I_{e^(-θt)}(x, j+1)`) by summing
/// `E[e^(-θV); V <= T]` over `j`.
///
/// Sources: Palm (1943/1946); Mandelbaum & Zeltyn, *Service Engineering in
/// Action: The Palm/Erlang-A Queue, with Applications to Call Centers* (2007),
/// §3 and appendix (P(wait), P(abandon | wait) = 1/(ρ𝒜) + 1 - 1/ρ, and the
/// distribution of `V` through incomplete gamma functions); Garnett, Mandelbaum
/// & Reiman, *Designing a Call Center with Impatient Customers*, M&SOM 4(3), 2002.
/// The incomplete gammas are evaluated in log space (`gamma.rs`), so pools of
/// 10,000 slots and overloads (`ρ > 1`, which Erlang A allows) stay finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErlangA {
    /// `c`.
    servers: u32,
    /// `λ`, calls per second.
    arrivals_per_s: f64,
    /// `1/μ`, seconds.
    mean_duration_s: f64,
    /// `θ = 1/mean patience`, per second.
    abandon_rate: f64,
    /// `P(wait)`.
    prob_wait: f64,
    /// `E[Q] / (Σ_{n>=c} π_n)`: the mean queue length given all slots are busy.
    queue_given_busy: f64,
}

impl ErlangA {
    /// The queue with `servers` slots, `arrivals_per_s` calls a second, calls
    /// lasting `mean_duration_s` and callers waiting `mean_patience_s` on
    /// average before giving up. Infinite patience is [`crate::erlang::ErlangC`].
    /// Refused: a negative or non-finite rate; a duration or patience that is
    /// not positive and finite.
    pub fn new(
        servers: u32,
        arrivals_per_s: f64,
        mean_duration_s: f64,
        mean_patience_s: f64,
    ) -> Result<Self> {
        let lambda = check_at_least("arrivals_per_s", arrivals_per_s, 0.0)?;
        let h = check_positive("mean_duration_s", mean_duration_s)?;
        let patience = check_positive("mean_patience_s", mean_patience_s)?;
        Ok(Self::from_rates(servers, lambda, h, 1.0 / patience))
    }

    /// For inputs already checked.
    pub(crate) fn from_rates(servers: u32, lambda: f64, mean_duration_s: f64, theta: f64) -> Self {
        let mut q = ErlangA {
            servers,
            arrivals_per_s: lambda,
            mean_duration_s,
            abandon_rate: theta,
            prob_wait: 0.0,
            queue_given_busy: 0.0,
        };
        if lambda == 0.0 {
            return q;
        }
        if servers == 0 {
            // Everyone queues, nobody is served: the queue is M/M/∞ in patience.
            q.prob_wait = 1.0;
            q.queue_given_busy = lambda / theta;
            return q;
        }
        let (x, y) = (q.x(), q.y());
        let (ln_a, queue_given_busy) = queue_series(x, y);
        let b = blocking(servers, lambda * mean_duration_s);
        // P(wait) = 𝒜B / (1 - B + 𝒜B) = 1 / (1 + (1 - B)/(𝒜B)), in logs.
        let ln_r = (1.0 - b).ln() - b.ln() - ln_a;
        q.prob_wait = 1.0 / (1.0 + ln_r.exp());
        q.queue_given_busy = queue_given_busy;
        q
    }

    /// `x = cμ/θ`.
    fn x(&self) -> f64 {
        f64::from(self.servers) / (self.mean_duration_s * self.abandon_rate)
    }

    /// `y = λ/θ`.
    fn y(&self) -> f64 {
        self.arrivals_per_s / self.abandon_rate
    }

    /// The offered load `λ/μ`, in erlangs.
    pub fn load(&self) -> f64 {
        self.arrivals_per_s * self.mean_duration_s
    }

    /// The slots `c`.
    pub fn servers(&self) -> u32 {
        self.servers
    }

    /// The share of calls that find every slot busy and queue.
    pub fn prob_wait(&self) -> f64 {
        self.prob_wait
    }

    /// The share of calls that give up before being admitted.
    pub fn prob_abandon(&self) -> f64 {
        if self.arrivals_per_s == 0.0 {
            return 0.0;
        }
        (self.prob_wait * self.queue_given_busy / self.y()).min(1.0)
    }

    /// The mean wait over all calls, admitted or not (time to admission or to
    /// giving up), in seconds: `E[Q]/λ` by Little's law.
    pub fn mean_wait_s(&self) -> f64 {
        if self.arrivals_per_s == 0.0 {
            return 0.0;
        }
        self.prob_wait * self.queue_given_busy / self.arrivals_per_s
    }

    /// The share of calls admitted within `t_s` seconds of arriving (a call
    /// that gives up counts as not admitted).
    pub fn service_level(&self, t_s: f64) -> f64 {
        if self.arrivals_per_s == 0.0 {
            return 1.0;
        }
        if self.servers == 0 {
            return 0.0;
        }
        let (x, y) = (self.x(), self.y());
        let t = t_s.max(0.0);
        let (ln_a, _) = queue_series(x, y);
        let at_y = ln_scaled_lower_gamma(x + 1.0, y, y);
        let at_t = ln_scaled_lower_gamma(x + 1.0, y * (-self.abandon_rate * t).exp(), y);
        // π_c x e^y y^(-x-1) [γ(x+1, y) - γ(x+1, y q)], with π_c = P(wait)/𝒜.
        let ln_served = self.prob_wait.ln() + x.ln() - ln_a + at_y;
        let served_within = ln_served.exp() * -(at_t - at_y).exp_m1();
        (1.0 - self.prob_wait + served_within).clamp(0.0, 1.0)
    }

    /// The share of calls whose wait (to admission or to giving up) exceeds
    /// `t_s`: `P(V > t) · e^(-θt)`.
    pub fn prob_wait_longer(&self, t_s: f64) -> f64 {
        if self.arrivals_per_s == 0.0 {
            return 0.0;
        }
        let t = t_s.max(0.0);
        let decay = (-self.abandon_rate * t).exp();
        if self.servers == 0 {
            return decay;
        }
        let (x, y) = (self.x(), self.y());
        let ratio = (ln_scaled_lower_gamma(x, y * decay, y) - ln_scaled_lower_gamma(x, y, y)).exp();
        self.prob_wait * ratio * decay
    }

    /// The share of the slots busy on average: the load actually served over `c`.
    pub fn occupancy(&self) -> f64 {
        if self.servers == 0 {
            return 0.0;
        }
        (self.load() * (1.0 - self.prob_abandon()) / f64::from(self.servers)).min(1.0)
    }
}

/// `(ln 𝒜(x, y), E[Q | all slots busy])` where, with `a_j = y^j/((x+1)...(x+j))`,
/// `𝒜 = Σ a_j` and the mean queue given all busy is `Σ j·a_j / 𝒜`.
///
/// Below `y = x + 1` the terms shrink from the first, so both sums are summed
/// directly (no cancellation); above it `𝒜` may be astronomically large and
/// comes from the incomplete gamma in logs, with `Σ j a_j = y𝒜 - x(𝒜 - 1)`.
fn queue_series(x: f64, y: f64) -> (f64, f64) {
    if y < x + 1.0 {
        let (mut term, mut sum, mut weighted) = (1.0f64, 1.0f64, 0.0f64);
        let mut j = 1.0;
        loop {
            term *= y / (x + j);
            sum += term;
            weighted += j * term;
            if term * j < 1e-17 * sum.max(weighted) {
                break;
            }
            j += 1.0;
        }
        (sum.ln(), weighted / sum)
    } else {
        let ln_a = x.ln() + ln_scaled_lower_gamma(x, y, y);
        (ln_a, (y - x) + x * (-ln_a).exp())
    }
}
