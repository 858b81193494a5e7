//! `Clock`: where the tailer learns the time. Every decision of the tailer that depends on time
//! (when a rotated file has been quiet long enough to be closed, when an unterminated last line
//! or a multi-line event times out, how old a resume entry is, when the next safety rescan is
//! due) reads it from here, so that tests drive time instead of sleeping (`FakeClock`).
//!
//! Waiting itself (for a file-system event or the next deadline) is the async runtime's job and
//! happens only in `Tailer::next_batch`; tests with a fake clock call the tailer's one round of
//! work directly.

use std::fmt::Debug;
use std::time::{Instant, SystemTime};

/// A source of monotonic and wall-clock time.
pub trait Clock: Debug + Send + Sync {
    /// The monotonic now, for durations and deadlines.
    fn now(&self) -> Instant;
    /// The wall-clock now, stamped on the lines read.
    fn wall(&self) -> SystemTime;
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to (tests).
#[cfg(test)]
#[derive(Debug)]
pub struct FakeClock {
    start: Instant,
    wall_start: SystemTime,
    elapsed: std::sync::Mutex<std::time::Duration>,
}

#[cfg(test)]
impl Default for FakeClock {
    /// A clock standing at the real now.
    fn default() -> FakeClock {
        FakeClock {
            start: Instant::now(),
            wall_start: SystemTime::now(),
            elapsed: std::sync::Mutex::new(std::time::Duration::ZERO),
        }
    }
}

#[cfg(test)]
impl FakeClock {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        if let Ok(mut elapsed) = self.elapsed.lock() {
            *elapsed += by;
        }
    }

    fn elapsed(&self) -> std::time::Duration {
        self.elapsed.lock().map(|e| *e).unwrap_or_default()
    }
}

#[cfg(test)]
impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.start + self.elapsed()
    }

    fn wall(&self) -> SystemTime {
        self.wall_start + self.elapsed()
    }
}
