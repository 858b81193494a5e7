//! How soon the tailing thread reads again after handing out a batch (issue 18). A daemon
//! following a file written 100 times a second woke its threads for every write, and those
//! wake-ups, not the reading or matching, were most of its cost. After a round that read lines
//! and left nothing unread, the next round waits until [`READ_GAP`] after its end: writes that
//! come meanwhile stay in the kernel's inotify queue (repeated writes to one file merge into one
//! event; see `tail::inotify`), and the next round reads them all at once, so a busy file costs
//! one round, one batch and one hand-off to the main loop per gap instead of one per write.
//!
//! What it does not change: a write after a quiet gap is read at once (the hold is over), and a
//! backlog is read without pause (a round that left data unread is not held). The cost is
//! latency: a line written within the gap of the last round waits for the gap's end, at most
//! [`READ_GAP`] more (append → HTTP p99 stays well under the 50 ms of issue 7; `benches/run.sh
//! latency`). The tailing thread sleeps through the hold (`daemon::bridge`), so a command
//! (reload, shutdown) or the heartbeat that comes meanwhile waits for its end too.

use std::time::{Duration, Instant};

/// The least time between the end of one round of reading and the start of the next while a
/// file is being written.
pub(crate) const READ_GAP: Duration = Duration::from_millis(20);

/// The pacing decision: when the next round may read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pace {
    gap: Duration,
    /// No round reads before this.
    until: Option<Instant>,
}

impl Pace {
    /// Rounds at least `gap` apart while lines keep coming.
    pub(crate) fn new(gap: Duration) -> Pace {
        Pace { gap, until: None }
    }

    /// Records a round that ended at `ended` and handed out `n_lines` lines; `caught_up`: it read
    /// every file to its end.
    pub(crate) fn after_round(&mut self, ended: Instant, n_lines: usize, caught_up: bool) {
        self.until = (n_lines > 0 && caught_up).then(|| ended + self.gap);
    }

    /// When the next round may read, seen at `now`: `None` for at once.
    pub(crate) fn hold(&self, now: Instant) -> Option<Instant> {
        self.until.filter(|until| *until > now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::daemon::pace::Pace;
    use crate::tail::clock::{Clock, FakeClock};

    const GAP: Duration = Duration::from_millis(20);

    #[test]
    fn a_round_that_read_everything_holds_the_next_one_until_the_gap_is_over() {
        let clock = FakeClock::default();
        let mut pace = Pace::new(GAP);
        assert_eq!(
            pace.hold(clock.now()),
            None,
            "the first round reads at once"
        );

        let ended = clock.now();
        pace.after_round(ended, 3, true);
        clock.advance(Duration::from_millis(5));
        assert_eq!(pace.hold(clock.now()), Some(ended + GAP));
        clock.advance(Duration::from_millis(15));
        assert_eq!(pace.hold(clock.now()), None, "the gap is over");
    }

    #[test]
    fn a_write_after_a_quiet_gap_is_read_at_once() {
        let clock = FakeClock::default();
        let mut pace = Pace::new(GAP);
        pace.after_round(clock.now(), 1, true);
        clock.advance(Duration::from_secs(3));
        assert_eq!(pace.hold(clock.now()), None);
    }

    #[test]
    fn a_backlog_and_a_round_without_lines_are_not_held() {
        let clock = FakeClock::default();
        let mut pace = Pace::new(GAP);
        pace.after_round(clock.now(), 4096, false);
        assert_eq!(
            pace.hold(clock.now()),
            None,
            "data left unread is read at once"
        );

        pace.after_round(clock.now(), 1, true);
        assert!(pace.hold(clock.now()).is_some());
        pace.after_round(clock.now(), 0, true);
        assert_eq!(
            pace.hold(clock.now()),
            None,
            "a round that read nothing (a heartbeat, a reload) does not hold the next"
        );
    }
}
