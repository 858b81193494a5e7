//! `Allowance`: may one message go to a robot now, outside the daemon's queue? `dingtail send
//! --robot` and `dingtail check --ping` ask it before a test message, so that a test can never be
//! the message that trips DingTalk's ten-minute block: it is refused while the robot is blocked
//! (a throttle answer recorded in the state), and when the robot's recorded sends already fill
//! its budget (`per_minute` in `window`, guarded as the daemon's `RateLimiter` guards it). Pure:
//! the history and `now` are parameters.

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use crate::dispatch::ratelimit::RateLimiter;

/// Why a message may not go now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// DingTalk throttled the robot; its block lasts until then.
    Blocked {
        /// When the block should be over.
        until: SystemTime,
    },
    /// The robot's sends in the guarded window already reach its budget.
    Spent {
        /// Sends counted in the window.
        sent: usize,
        /// The window they were counted in (the robot's `window` plus the margin).
        window: Duration,
        /// How long until one may go.
        wait: Duration,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Blocked { until } => write!(
                f,
                "DingTalk throttled it; it is blocked until about {}",
                humantime::format_rfc3339_seconds(*until)
            ),
            Refusal::Spent { sent, window, wait } => write!(
                f,
                "it has spent its budget ({} in the last {}); one more may go in {}",
                crate::noun::count(*sent, "message"),
                humantime::format_duration(*window),
                humantime::format_duration(Duration::from_secs(wait.as_secs().max(1)))
            ),
        }
    }
}

/// A robot's limits and what the state remembers of it.
#[derive(Clone, Debug)]
pub struct Allowance<'a> {
    /// Messages allowed per `window`.
    pub per_minute: u32,
    /// The rate-limit window.
    pub window: Duration,
    /// How long ago each recorded send was (any order).
    pub sent_ago: &'a [Duration],
    /// When a recorded throttle ends, if one does.
    pub blocked_until: Option<SystemTime>,
}

impl Allowance<'_> {
    /// `None` when a message may go at `now` (`now_mono` is the same instant on the monotonic
    /// clock), else why not.
    pub fn refusal(&self, now: SystemTime, now_mono: Instant) -> Option<Refusal> {
        if let Some(until) = self.blocked_until.filter(|until| *until > now) {
            return Some(Refusal::Blocked { until });
        }
        let mut limiter = RateLimiter::new(self.per_minute, self.window);
        let mut sent: Vec<Instant> = self
            .sent_ago
            .iter()
            .filter_map(|ago| now_mono.checked_sub(*ago))
            .collect();
        sent.sort_unstable();
        for at in &sent {
            limiter.record(*at);
        }
        if limiter.budget_left(now_mono) > 0 {
            return None;
        }
        let window = limiter.guarded_window();
        let n_sent = sent
            .iter()
            .filter(|at| now_mono.saturating_duration_since(**at) < window)
            .count();
        Some(Refusal::Spent {
            sent: n_sent,
            window,
            wait: limiter
                .next_slot(now_mono)
                .saturating_duration_since(now_mono),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant, SystemTime};

    use crate::dispatch::allowance::{Allowance, Refusal};

    #[test]
    fn a_blocked_robot_or_a_spent_budget_refuses_and_old_sends_do_not_count() {
        let now = SystemTime::now();
        let mono = Instant::now();
        let ago: Vec<Duration> = (1..=3).map(Duration::from_secs).collect();
        let allowance = Allowance {
            per_minute: 3,
            window: Duration::from_secs(60),
            sent_ago: &ago,
            blocked_until: None,
        };
        let Some(Refusal::Spent { sent, wait, .. }) = allowance.refusal(now, mono) else {
            panic!("three sends in the last minute spend a budget of three");
        };
        assert_eq!(sent, 3);
        // The oldest (3 s ago) leaves the guarded 63 s window in 60 s.
        assert_eq!(wait, Duration::from_secs(60));
        let older: Vec<Duration> = [70, 80, 2].map(Duration::from_secs).to_vec();
        let allowance = Allowance {
            sent_ago: &older,
            ..allowance
        };
        assert_eq!(allowance.refusal(now, mono), None);
        let blocked = Allowance {
            blocked_until: Some(now + Duration::from_secs(30)),
            ..allowance.clone()
        };
        assert!(matches!(
            blocked.refusal(now, mono),
            Some(Refusal::Blocked { .. })
        ));
        let over = Allowance {
            blocked_until: Some(now - Duration::from_secs(1)),
            ..allowance
        };
        assert_eq!(over.refusal(now, mono), None);
    }
}
