//! `RateLimiter`: DingTalk allows a robot `per_minute` messages in a minute and blocks it for
//! ten minutes when it gets more. We never send more than `per_minute` in any window of
//! `window + margin` by our clock, so network jitter cannot make the receiver see more.
//!
//! Under a sustained flood we also pace, with a token bucket that holds `burst` sends
//! (`per_minute / 10`, at least 1) and refills at `(per_minute - burst) / (window + margin)`, so
//! that a full bucket plus a window of refills never exceeds the limit. A quiet robot therefore
//! sends a lone alert at once, while a flooded one sends a summary every few seconds through the
//! whole minute (3.5 s at 20/min) instead of twenty at once and then a minute of silence. The
//! sliding-window count stays as a hard guard. Pure: `now` is a parameter.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Decides when the next message to one robot may go out.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    per_minute: usize,
    window: Duration,
    margin: Duration,
    burst: f64,
    refill_every: Duration,
    tokens: f64,
    refilled_at: Option<Instant>,
    sent: VecDeque<Instant>,
}

impl RateLimiter {
    /// A limiter for `per_minute` messages per `window`.
    pub fn new(per_minute: u32, window: Duration) -> RateLimiter {
        let per_minute = per_minute.max(1);
        // Jitter between our clock and the receiver's: 5 % of the window, at most 3 s
        // (60 s → 3 s, the tests' 3 s window → 150 ms).
        let margin = (window / 20).min(Duration::from_secs(3));
        let burst = (per_minute / 10).max(1);
        let refills = (per_minute - burst).max(1);
        RateLimiter {
            per_minute: usize::try_from(per_minute).unwrap_or(usize::MAX),
            window,
            margin,
            burst: f64::from(burst),
            refill_every: (window + margin) / refills,
            tokens: f64::from(burst),
            refilled_at: None,
            sent: VecDeque::new(),
        }
    }

    /// The span within which at most `per_minute` sends are allowed.
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

    fn refill(&mut self, now: Instant) {
        if let Some(at) = self.refilled_at {
            let elapsed = now.saturating_duration_since(at);
            let gained = elapsed.as_secs_f64() / self.refill_every.as_secs_f64().max(1e-9);
            self.tokens = (self.tokens + gained).min(self.burst);
        }
        self.refilled_at = Some(now);
    }

    /// The earliest instant at or after `now` when a message may be sent.
    pub fn next_slot(&mut self, now: Instant) -> Instant {
        self.forget_old(now);
        self.refill(now);
        let mut slot = now;
        if self.tokens < 1.0 {
            slot = now + self.refill_every.mul_f64(1.0 - self.tokens);
        }
        if self.sent.len() >= self.per_minute {
            // The oldest send in the window must leave it first.
            if let Some(&oldest) = self.sent.get(self.sent.len() - self.per_minute) {
                slot = slot.max(oldest + self.guarded_window());
            }
        }
        slot
    }

    /// Records a send at `now` (whatever its outcome: the receiver counted it).
    pub fn record(&mut self, now: Instant) {
        self.forget_old(now);
        self.refill(now);
        // Rounding may leave a hair under one token at the slot: never go below zero.
        self.tokens = (self.tokens - 1.0).max(0.0);
        self.sent.push_back(now);
    }

    /// Moves the latest send to `at` if that is later: called with the time the answer came
    /// back. The receiver counts a message when it arrives, somewhere between our send and its
    /// answer; counting from the answer keeps every window, whatever the network delayed.
    pub fn restamp_last(&mut self, at: Instant) {
        if let Some(last) = self.sent.back_mut() {
            *last = (*last).max(at);
        }
    }

    /// Takes over `other`'s send history (a reload changed the limits; the receiver still counts
    /// what was sent).
    pub fn adopt_history(&mut self, other: &RateLimiter) {
        self.sent = other.sent.clone();
        self.tokens = other.tokens.min(self.burst);
        self.refilled_at = other.refilled_at;
    }

    /// How many more messages may be sent in the current window (for metrics).
    pub fn budget_left(&mut self, now: Instant) -> usize {
        self.forget_old(now);
        self.per_minute.saturating_sub(self.sent.len())
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
        // It still uses most of the budget: 18 per 63 s over ten minutes.
        assert!(sent.len() >= 170, "only {} sends", sent.len());
    }

    #[test]
    fn a_flood_is_spread_over_the_minute() {
        let mut limiter = RateLimiter::new(20, Duration::from_secs(60));
        let sent = flood(&mut limiter, Duration::from_secs(60));
        // A burst of 2 at once, then one every 63 s / 18 = 3.5 s.
        assert_eq!(&sent[..2], &[Duration::ZERO; 2]);
        for pair in sent[2..].windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap.abs_diff(Duration::from_millis(3500)) < Duration::from_millis(5),
                "{sent:?}"
            );
        }
        // No gap longer than the pace once the burst is spent: never 20 at once then silence.
        assert!(sent.len() >= 18, "{sent:?}");
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
