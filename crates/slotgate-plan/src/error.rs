//! The planner's errors: every input it refuses, and the engine refusing a simulated step.

/// A refused planning, sizing or simulation request. Nothing was computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input is out of its domain (a negative rate, a probability above 1, ...).
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field, as the API would name it.
        field: &'static str,
        /// What is wrong with it, for a person.
        message: String,
    },
    /// The engine refused a configuration the simulation needs (for example
    /// reservations that add up to more than the limit).
    #[error("engine refused the simulated org: {0}")]
    Engine(#[from] slotgate_core::Error),
    /// Whoever ran the simulation cancelled it ([`crate::Cancel`]): its
    /// request went away, its deadline passed, or the server is stopping.
    #[error("the simulation was cancelled")]
    Cancelled,
    /// No limit up to the search's ceiling meets the targets.
    #[error("no limit up to {ceiling} meets the targets")]
    Unreachable {
        /// The highest limit tried.
        ceiling: u32,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// `Ok(v)` if `v` is finite and at least `min`, else [`Error::Invalid`] naming `field`.
pub(crate) fn check_at_least(field: &'static str, v: f64, min: f64) -> Result<f64> {
    if v.is_finite() && v >= min {
        Ok(v)
    } else {
        Err(Error::invalid(
            field,
            format!("must be a finite number >= {min}, got {v}"),
        ))
    }
}

/// `Ok(v)` if `v` is finite and above 0, else [`Error::Invalid`] naming `field`.
pub(crate) fn check_positive(field: &'static str, v: f64) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(Error::invalid(
            field,
            format!("must be a finite number > 0, got {v}"),
        ))
    }
}

/// `Ok(p)` if `0 <= p <= 1`, else [`Error::Invalid`] naming `field`.
pub(crate) fn check_probability(field: &'static str, p: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(Error::invalid(field, format!("must be 0 to 1, got {p}")))
    }
}
