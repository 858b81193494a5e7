//! `Backoff`: exponential backoff with full jitter for transient delivery failures, bounded, and
//! reset by a success. Pure: the caller supplies the random draw.

use std::time::Duration;

/// Exponential backoff state for one robot.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    n_failures: u32,
}

impl Backoff {
    /// Backoff starting at `base` and never longer than `cap`.
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap,
            n_failures: 0,
        }
    }

    /// Records a failure and returns how long to wait before the next attempt. `unit` is a
    /// random draw in `[0, 1)`: the wait is between half and all of the exponential step, so
    /// robots that failed together do not retry together.
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let exponent = self.n_failures.min(20);
        self.n_failures = self.n_failures.saturating_add(1);
        let step = self.base.saturating_mul(1u32 << exponent).min(self.cap);
        step.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }

    /// Forgets past failures (after a success).
    pub fn reset(&mut self) {
        self.n_failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::backoff::Backoff;

    #[test]
    fn grows_is_capped_jittered_and_resets() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let delays: Vec<u64> = (0..8).map(|_| backoff.next_delay(1.0).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff.next_delay(0.0), Duration::from_secs(30));
        backoff.reset();
        assert_eq!(backoff.next_delay(0.0), Duration::from_millis(500));
    }
}
