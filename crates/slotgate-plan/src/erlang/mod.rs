//! Erlang B, C and A: closed forms for one pool of slots, and sizing with them.
//!
//! Every formula here treats the org as **one pool** with Poisson arrivals and
//! exponential durations: [`erlang_b`] when calls that find no slot are lost,
//! [`ErlangC`] when they wait as long as it takes, [`ErlangA`] when they give
//! up after an exponential patience (`max_wait`). Reservations and a shared
//! pool have no closed form; `crate::sim` answers those by simulation, and the
//! planner uses these formulas as its starting point.
//!
//! All are numerically stable for pools of 10,000 slots and loads to match:
//! no factorials anywhere (Erlang B by its recurrence, Erlang C from B, Erlang
//! A from B and incomplete gamma functions in log space, `gamma.rs`).
//! Each type's doc gives its formulas and their sources.

mod abandon;
mod blocking;
mod delay;
mod gamma;

pub use abandon::ErlangA;
pub use blocking::{erlang_b, erlang_b_load};
pub use delay::ErlangC;

use crate::error::{check_at_least, check_positive, check_probability, Result};

/// One pool's traffic and the model it follows, for sizing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolTraffic {
    /// Calls arriving per second (Poisson).
    pub arrivals_per_s: f64,
    /// Mean call duration, in seconds (exponential).
    pub mean_duration_s: f64,
    /// Mean patience in the queue, in seconds (exponential); `None`: callers
    /// wait as long as it takes (Erlang C), else Erlang A.
    pub mean_patience_s: Option<f64>,
}

impl PoolTraffic {
    /// The service level (share of calls admitted within `within_s`) that
    /// `servers` slots give this traffic: Erlang C or Erlang A.
    pub fn service_level(&self, servers: u32, within_s: f64) -> Result<f64> {
        Ok(match self.mean_patience_s {
            None => ErlangC::new(servers, self.arrivals_per_s, self.mean_duration_s)?
                .service_level(within_s),
            Some(p) => ErlangA::new(servers, self.arrivals_per_s, self.mean_duration_s, p)?
                .service_level(within_s),
        })
    }

    /// The fewest slots whose service level reaches `target` within `within_s`
    /// seconds, searched up to `max_servers`; `None` if even that is not enough.
    ///
    /// The service level only grows with the slots (a property the tests
    /// check), so this is a doubling search then a bisection: O(c log c).
    pub fn min_servers(&self, target: f64, within_s: f64, max_servers: u32) -> Result<Option<u32>> {
        check_at_least("arrivals_per_s", self.arrivals_per_s, 0.0)?;
        check_positive("mean_duration_s", self.mean_duration_s)?;
        let target = check_probability("target", target)?;
        check_at_least("within_s", within_s, 0.0)?;
        let meets = |c: u32| -> Result<bool> { Ok(self.service_level(c, within_s)? >= target) };
        if meets(0)? {
            return Ok(Some(0));
        }
        let mut lo = 0u32; // fails
        let mut hi = ((self.arrivals_per_s * self.mean_duration_s).ceil() as u32)
            .clamp(1, max_servers.max(1));
        while !meets(hi)? {
            if hi >= max_servers {
                return Ok(None);
            }
            lo = hi;
            hi = hi.saturating_mul(2).min(max_servers);
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if meets(mid)? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Ok(Some(hi))
    }
}
