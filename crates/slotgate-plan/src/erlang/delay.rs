//! Erlang C: the M/M/c queue, where every call waits as long as it takes.

use crate::erlang::blocking::blocking;
use crate::error::{check_at_least, check_positive, Result};

/// An M/M/c queue: Poisson arrivals, exponential durations, `c` slots, FIFO,
/// and callers who never give up. Built once (O(c)); every measure is then O(1).
///
/// With `λ` arrivals per second, mean duration `h` seconds, load `A = λh`
/// erlangs and `B = B(c, A)` ([`crate::erlang::erlang_b`]):
///
/// ```text
/// P(wait)           C(c, A) = c·B / (c - A·(1 - B))           (A < c; else 1)
/// mean wait (ASA)   C · h / (c - A)
/// service level     P(W <= T) = 1 - C · e^(-(c - A)·T/h)
/// occupancy         A / c
/// wait quantile     W_p = h/(c - A) · ln(C / (1 - p))   for p > 1 - C, else 0
/// ```
///
/// Sources: Erlang (1917); Gross & Harris, *Fundamentals of Queueing Theory*,
/// §2.3 (M/M/c: `Wq` and its distribution); the expression of C through B is
/// Iversen, *Teletraffic Engineering Handbook*, §12.2 eq. 12.10 — it avoids
/// factorials entirely. At `A >= c` the queue grows without bound: `P(wait) = 1`,
/// waits are infinite, service level 0, occupancy 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErlangC {
    /// `c`: the slots.
    servers: u32,
    /// `A = λh`, in erlangs.
    load: f64,
    /// `h`, in seconds: waits scale with it.
    mean_duration_s: f64,
    /// `C(c, A)`, computed once.
    prob_wait: f64,
}

impl ErlangC {
    /// The queue with `servers` slots, `arrivals_per_s` calls a second and calls
    /// lasting `mean_duration_s` on average. Refused: a negative or non-finite
    /// rate, a duration that is not positive.
    pub fn new(servers: u32, arrivals_per_s: f64, mean_duration_s: f64) -> Result<Self> {
        let rate = check_at_least("arrivals_per_s", arrivals_per_s, 0.0)?;
        let h = check_positive("mean_duration_s", mean_duration_s)?;
        Ok(Self::from_load(servers, rate * h, h))
    }

    /// For inputs already checked.
    pub(crate) fn from_load(servers: u32, load: f64, mean_duration_s: f64) -> Self {
        let c = f64::from(servers);
        let prob_wait = if load >= c {
            1.0
        } else if load == 0.0 {
            0.0
        } else {
            let b = blocking(servers, load);
            c * b / (c - load * (1.0 - b))
        };
        ErlangC {
            servers,
            load,
            mean_duration_s,
            prob_wait,
        }
    }

    /// The offered load `A`, in erlangs.
    pub fn load(&self) -> f64 {
        self.load
    }

    /// The slots `c`.
    pub fn servers(&self) -> u32 {
        self.servers
    }

    /// `A >= c`: the queue grows without bound.
    pub fn is_overloaded(&self) -> bool {
        self.load >= f64::from(self.servers)
    }

    /// `C(c, A)`: the share of calls that wait at all.
    pub fn prob_wait(&self) -> f64 {
        self.prob_wait
    }

    /// The mean wait over all calls (average speed of answer), in seconds.
    pub fn mean_wait_s(&self) -> f64 {
        if self.is_overloaded() {
            return f64::INFINITY;
        }
        self.prob_wait * self.mean_duration_s / (f64::from(self.servers) - self.load)
    }

    /// The share of calls admitted within `t_s` seconds of arriving.
    pub fn service_level(&self, t_s: f64) -> f64 {
        if self.is_overloaded() {
            return 0.0;
        }
        let decay = (f64::from(self.servers) - self.load) * t_s.max(0.0) / self.mean_duration_s;
        1.0 - self.prob_wait * (-decay).exp()
    }

    /// The share of the slots busy on average.
    pub fn occupancy(&self) -> f64 {
        if self.servers == 0 {
            return if self.load > 0.0 { 1.0 } else { 0.0 };
        }
        (self.load / f64::from(self.servers)).min(1.0)
    }

    /// The `p`-quantile of the wait (of all calls), in seconds; `p` in `[0, 1)`.
    pub fn wait_quantile_s(&self, p: f64) -> f64 {
        if self.is_overloaded() {
            return f64::INFINITY;
        }
        if p <= 1.0 - self.prob_wait {
            return 0.0;
        }
        let rate = (f64::from(self.servers) - self.load) / self.mean_duration_s;
        (self.prob_wait / (1.0 - p)).ln() / rate
    }
}
