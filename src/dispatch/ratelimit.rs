//! `RateLimiter`: DingTalk allows a robot `per_minute` messages in a minute and blocks it for
//! ten minutes when it gets more. We never send more than `per_minute` in any window of
//! `window + margin` by our clock, so network jitter cannot make the receiver see more.
//!
//! Under a sustained flood we also pace: once a quarter of the budget is spent within the window,
//! the next send waits `window / per_minute` after the previous one. A quiet robot therefore sends
//! a lone alert at once, while a flooded one sends a summary every few seconds through the whole
//! minute instead of twenty at once and then a minute of silence. Pure: `now` is a parameter.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Decides when the next message to one robot may go out.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    per_window: usize,
    window: Duration,
    margin: Duration,
    burst: usize,
    pace: Duration,
    sent: VecDeque<Instant>,
}

impl RateLimiter {
    /// A limiter for `per_window` messages per `window`.
    pub fn new(per_window: u32, window: Duration) -> RateLimiter {
        let per_window = usize::try_from(per_window.max(1)).unwrap_or(usize::MAX);
        // Jitter between our clock and the receiver's: 5 % of the window, at most 3 s
        // (60 s → 3 s, the tests' 3 s window → 150 ms).
        let margin = (window / 20).min(Duration::from_secs(3));
        let pace = window / u32::try_from(per_window).unwrap_or(u32::MAX);
        RateLimiter {
            per_window,
            window,
            margin,
            burst: (per_window / 4).max(1),
            pace,
            sent: VecDeque::with_capacity(per_window),
        }
    }

    /// The span within which at most `per_window` sends are allowed.
    pub fn guarded_window(&self) -> Duration {
        self.window + self.margin
    }

    fn forget_old(&mut self, now: Instant) {
        let span = self.guarded_window();
        while let Some(&first) = self.sent.front() {
            if now.saturating_duration_since(first) >= span {
                self.sent.pop_front();
            } else {
                break;
            }
        }
    }

    /// The earliest instant at or after `now` when a message may be sent.
    pub fn next_slot(&mut self, now: Instant) -> Instant {
        self.forget_old(now);
        let mut slot = now;
        if self.sent.len() >= self.per_window {
            // The oldest send in the window must leave it first.
            if let Some(&oldest) = self.sent.get(self.sent.len() - self.per_window) {
                slot = slot.max(oldest + self.guarded_window());
            }
        }
        if self.sent.len() >= self.burst {
            if let Some(&last) = self.sent.back() {
                slot = slot.max(last + self.pace);
            }
        }
        slot
    }

    /// Records a send at `now` (whatever its outcome: the receiver counted it).
    pub fn record(&mut self, now: Instant) {
        self.forget_old(now);
        self.sent.push_back(now);
    }

    /// How many more messages may be sent in the current window (for metrics).
    pub fn budget_left(&mut self, now: Instant) -> usize {
        self.forget_old(now);
        self.per_window.saturating_sub(self.sent.len())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::dispatch::ratelimit::RateLimiter;

    /// Sends as soon as allowed for `total` and returns the send times relative to the start.
    fn flood(limiter: &mut RateLimiter, total: Duration) -> Vec<Duration> {
        let t0 = Instant::now();
        let mut now = t0;
        let mut sent = Vec::new();
        while now < t0 + total {
            let slot = limiter.next_slot(now);
            if slot > now {
                now = slot;
                continue;
            }
            limiter.record(now);
            sent.push(now - t0);
        }
        sent
    }

    #[test]
    fn never_more_than_the_limit_in_any_window_with_margin() {
        let mut limiter = RateLimiter::new(20, Duration::from_secs(60));
        let sent = flood(&mut limiter, Duration::from_secs(600));
        let span = Duration::from_secs(63);
        for (i, &t) in sent.iter().enumerate() {
            let in_window = sent[i..].iter().take_while(|&&u| u - t < span).count();
            assert!(
                in_window <= 20,
                "{in_window} sends within 63 s starting at {t:?}"
            );
        }
        // It still uses the budget: about 20 per 63 s over ten minutes.
        assert!(sent.len() >= 180, "only {} sends", sent.len());
    }

    #[test]
    fn a_flood_is_spread_over_the_minute() {
        let mut limiter = RateLimiter::new(20, Duration::from_secs(60));
        let sent = flood(&mut limiter, Duration::from_secs(60));
        // The first few go at once (a burst of 5), then one every 3 s.
        assert_eq!(&sent[..5], &[Duration::ZERO; 5]);
        for pair in sent[5..].windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::from_secs(3), "{sent:?}");
        }
        // No gap longer than the pace once the burst is spent: never 20 at once then silence.
        assert!(sent.len() >= 19, "{sent:?}");
    }

    #[test]
    fn a_quiet_robot_sends_at_once() {
        let mut limiter = RateLimiter::new(20, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..10u64 {
            let now = t0 + Duration::from_secs(30 * i);
            assert_eq!(limiter.next_slot(now), now);
            limiter.record(now);
        }
        // Sends at 210, 240 and 270 s are within the guarded 63 s window.
        assert_eq!(limiter.budget_left(t0 + Duration::from_secs(270)), 17);
    }
}
