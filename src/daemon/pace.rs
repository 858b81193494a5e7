//! How soon the tailing thread reads again after handing out a batch (issue 18). A daemon
//! following a file written 100 times a second woke its threads for every write, and those
//! wake-ups, not the reading or matching, were most of its cost. After a round that read lines
//! and left nothing unread, the next round waits until [`READ_GAP`] after its end: writes that
//! come meanwhile stay in the kernel's inotify queue (repeated writes to one file merge into one
//! event; see `tail::inotify`), and the next round reads them all at once, so a busy file costs
//! one round, one batch and one hand-off to the main loop per gap instead of one per write.
//!
//! The gap is [`read_gap`] of the robots' `linger:`: a twentieth of the shortest, from
//! [`READ_GAP`] (a robot that sends at once) to [`MAX_READ_GAP`] (the default 2 s and above).
//!
//! What it does not change: a write after a quiet gap is read at once (the hold is over), and a
//! backlog is read without pause (a round that left data unread is not held). The cost is
//! latency: a line written within the gap of the last round waits for the gap's end, at most
//! [`READ_GAP`] more (append → HTTP p99 stays well under the 50 ms of issue 7; `benches/run.sh
//! latency`). The tailing thread sleeps through the hold (`daemon::bridge`), so a command
//! (reload, shutdown) or the heartbeat that comes meanwhile waits for its end too.

use std::time::{Duration, Instant};

use crate::config::Config;

/// The least time between the end of one round of reading and the start of the next while a
/// file is being written, when some robot sends at once (`linger: 0s`) or nearly.
pub(crate) const READ_GAP: Duration = Duration::from_millis(20);

/// The longest gap: the gap of robots that linger 2 s (the default) or more.
pub(crate) const MAX_READ_GAP: Duration = Duration::from_millis(100);

/// The gap is this fraction of the shortest `linger:` of the robots, within [`READ_GAP`] and
/// [`MAX_READ_GAP`].
const LINGER_SHARE: u32 = 20;

/// The gap between rounds of reading for robots that linger `lingers` (issue 18, round 4). A
/// match waits for its robot's `linger:` before it is sent, so reading it up to a twentieth of
/// that later adds at most 5 % to when the message goes out, and it saves rounds, hand-offs and
/// thread wake-ups: at 100 writes a second a 100 ms gap is about 9 rounds a second instead of
/// 48. The shortest linger decides (any robot may get any match); a robot that sends at once
/// keeps the 20 ms gap, so append → HTTP with `linger: 0s` is as before. Without robots
/// nothing is sent, and the longest gap applies.
pub(crate) fn read_gap(lingers: impl IntoIterator<Item = Duration>) -> Duration {
    lingers.into_iter().min().map_or(MAX_READ_GAP, |linger| {
        (linger / LINGER_SHARE).clamp(READ_GAP, MAX_READ_GAP)
    })
}

/// [`read_gap`] of `config`'s robots.
pub(crate) fn read_gap_of(config: &Config) -> Duration {
    read_gap(config.robots.values().map(|robot| robot.linger))
}

/// A gap longer than [`READ_GAP`] is shortened so that a round reads about this many lines at
/// the rate the last round saw: a flood of lines is read in rounds as small as with the 20 ms
/// gap (the batches in flight, and the memory they hold, stay as they were), while a file
/// written at 10,000 lines a second still gets the whole gap.
const ROUND_LINES: u32 = 2048;

/// The pacing decision: when the next round may read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pace {
    gap: Duration,
    /// No round reads before this.
    until: Option<Instant>,
    /// When the last round ended.
    last_end: Option<Instant>,
}

impl Pace {
    /// Rounds at least `gap` apart while lines keep coming.
    pub(crate) fn new(gap: Duration) -> Pace {
        Pace {
            gap,
            until: None,
            last_end: None,
        }
    }

    /// Rounds at least `gap` apart from the next one on (a reload changed the robots' lingers).
    pub(crate) fn set_gap(&mut self, gap: Duration) {
        self.gap = gap;
    }

    /// Records a round that ended at `ended` and handed out `n_lines` lines; `caught_up`: it read
    /// every file to its end.
    pub(crate) fn after_round(&mut self, ended: Instant, n_lines: usize, caught_up: bool) {
        let since = self
            .last_end
            .map(|last| ended.saturating_duration_since(last));
        self.last_end = Some(ended);
        self.until = (n_lines > 0 && caught_up).then(|| ended + self.gap_after(n_lines, since));
    }

    /// The gap after a round of `n_lines` lines gathered over `since` (since the round before
    /// ended): the whole gap, or less when that would gather more than [`ROUND_LINES`] lines,
    /// never less than [`READ_GAP`]. The first round, and the first after a quiet spell
    /// (longer than two gaps), tell no rate: the least gap, so that the start of a flood is
    /// not gathered a whole gap long.
    fn gap_after(&self, n_lines: usize, since: Option<Duration>) -> Duration {
        let least = READ_GAP.min(self.gap);
        let Some(since) = since.filter(|since| *since <= self.gap.saturating_mul(2)) else {
            return least;
        };
        let n_lines = u32::try_from(n_lines).unwrap_or(u32::MAX).max(1);
        let fill = since
            .checked_mul(ROUND_LINES)
            .map_or(self.gap, |time| time / n_lines);
        fill.min(self.gap).max(least)
    }

    /// When the next round may read, seen at `now`: `None` for at once.
    pub(crate) fn hold(&self, now: Instant) -> Option<Instant> {
        self.until.filter(|until| *until > now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::daemon::pace::{MAX_READ_GAP, Pace, READ_GAP, read_gap};
    use crate::tail::clock::{Clock, FakeClock};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_gap_is_a_twentieth_of_the_shortest_linger_within_its_bounds() {
        assert_eq!(read_gap([ms(0)]), READ_GAP, "a robot that sends at once");
        assert_eq!(
            read_gap([ms(200)]),
            READ_GAP,
            "10 ms is below the least gap"
        );
        assert_eq!(read_gap([ms(1000)]), ms(50));
        assert_eq!(read_gap([ms(2000)]), MAX_READ_GAP, "the default linger");
        assert_eq!(read_gap([ms(60_000)]), MAX_READ_GAP, "never more");
        assert_eq!(
            read_gap([ms(2000), ms(0), ms(5000)]),
            READ_GAP,
            "the robot that lingers least decides"
        );
        assert_eq!(read_gap([]), MAX_READ_GAP, "no robot: nothing is sent");
    }

    /// Records a round of `n_lines` lines that read everything, ending now; how long the next
    /// one is held.
    fn round(pace: &mut Pace, clock: &FakeClock, n_lines: usize) -> Option<Duration> {
        let ended = clock.now();
        pace.after_round(ended, n_lines, true);
        pace.hold(ended).map(|until| until - ended)
    }

    #[test]
    fn a_fast_stream_shortens_the_gap_so_that_rounds_stay_small() {
        let clock = FakeClock::default();
        let mut pace = Pace::new(MAX_READ_GAP);
        round(&mut pace, &clock, 1);
        let expected = [
            (1_000, MAX_READ_GAP, "10,000 lines a second: the whole gap"),
            (
                5_000,
                Duration::from_micros(40_960),
                "50,000 a second: about 2,048 lines a round",
            ),
            (100_000, READ_GAP, "a flood: never below the least gap"),
        ];
        for (n_lines, gap, why) in expected {
            clock.advance(ms(100));
            assert_eq!(round(&mut pace, &clock, n_lines), Some(gap), "{why}");
        }
    }

    #[test]
    fn the_first_round_and_the_first_after_a_quiet_spell_get_the_least_gap() {
        let clock = FakeClock::default();
        let mut pace = Pace::new(MAX_READ_GAP);
        assert_eq!(round(&mut pace, &clock, 3_000), Some(READ_GAP));
        clock.advance(Duration::from_secs(10));
        assert_eq!(
            round(&mut pace, &clock, 1_000),
            Some(READ_GAP),
            "the start of a flood is not gathered 100 ms long"
        );
        clock.advance(ms(30));
        assert_eq!(
            round(&mut pace, &clock, 3),
            Some(MAX_READ_GAP),
            "a slow stream then gets the whole gap"
        );
    }

    #[test]
    fn a_new_gap_applies_from_the_next_round() {
        let clock = FakeClock::default();
        let mut pace = Pace::new(GAP);
        pace.after_round(clock.now(), 1, true);
        pace.set_gap(ms(100));
        assert_eq!(pace.hold(clock.now()), Some(clock.now() + GAP));
        clock.advance(ms(60));
        let ended = clock.now();
        pace.after_round(ended, 1, true);
        clock.advance(ms(50));
        assert_eq!(pace.hold(clock.now()), Some(ended + ms(100)));
    }

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
