//! Randomized back-off between registration attempts after a registration loss
//! (RFC 5626 section 4.5, the guide's "Controlling Back-off Periods"):
//! `W = min(max, base * 2^n)` with `n` consecutive failures counted from 0, and
//! the wait drawn uniformly from `[W/2, W]` at millisecond resolution.
//!
//! The random source is injected so that a seeded or scripted generator pins
//! every wait in tests.

use std::time::Duration;

use rand::{Rng, RngCore};

/// Consecutive-failure counter and wait calculator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// A back-off starting at `base` and never waiting longer than `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            failures: 0,
        }
    }

    /// Consecutive failures so far: the `n` of the next wait.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// `W` for `n` consecutive failures.
    pub fn ceiling(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// Draws the wait for the current failure count, then counts one more
    /// failure.
    pub fn next_wait(&mut self, rng: &mut dyn RngCore) -> Duration {
        let ceiling = self.ceiling(self.failures);
        let high = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        let wait = Duration::from_millis(rng.random_range(high / 2..=high));
        self.count_failure();
        wait
    }

    /// Counts a failure whose wait came from elsewhere (a 503 Retry-After).
    pub fn count_failure(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    /// A registration succeeded: the next loss starts again at `base`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}
