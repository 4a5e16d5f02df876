//! Stopping a simulation from outside: a flag the simulator reads as it runs.
//!
//! The planner has no clock and no I/O, so it cannot know that a request
//! went away, a deadline passed or the server is shutting down. Whoever runs
//! it holds a [`Cancel`] and sets it; the simulator checks it every few
//! thousand events and gives up with [`Error::Cancelled`](crate::Error::Cancelled),
//! within about a millisecond of work.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A shared "stop now" flag. Clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag nobody has set yet.
    pub fn new() -> Self {
        Cancel::default()
    }

    /// Asks every simulation holding this flag (or a clone) to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once cancelled.
    pub(crate) fn check(&self) -> crate::Result<()> {
        if self.is_cancelled() {
            Err(crate::Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag() {
        let c = Cancel::new();
        let held = c.clone();
        assert!(held.check().is_ok());
        c.cancel();
        assert!(held.is_cancelled());
        assert_eq!(held.check(), Err(crate::Error::Cancelled));
    }
}
