//! `Link`: is this host handing off through Redis, keeping everything local while Redis is
//! unreachable, or sending on its own at its share of the budget? Pure: the node reports each
//! heartbeat's success or failure with `now`, and asks for the [`Mode`].
//!
//! The rule (issue 15): while heartbeats succeed, hand off. When they fail, matches stay durable
//! locally; once `fallback_after` has passed since the last success (or since start, if Redis
//! never answered), each host sends directly at `per_minute ÷ hosts last seen` per window
//! ([`share`]), unless `fallback: off`. The first success after that ends the fallback; the
//! node then re-seeds the ledger with the direct sends of the last window.

use std::time::{Duration, Instant};

use crate::dispatch::queue::QueueConfig;

/// Hosts assumed when Redis was never reached and no count was saved: DingTalk's 20 a minute,
/// so that each host sends at most one message a window.
pub const UNKNOWN_HOSTS: u32 = 20;

/// What a host does with its robots' batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Hand them off to Redis.
    Handoff,
    /// Redis is unreachable: keep them (durably) until it is back or the fallback starts.
    Local,
    /// Redis has been unreachable for `fallback_after`: send directly at the share of `hosts`.
    Fallback {
        /// Hosts last seen in the cluster (this one included).
        hosts: u32,
    },
}

/// What a heartbeat's success changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing: Redis was reachable before too.
    Steady,
    /// Redis is reachable again (or for the first time): re-seed the ledger, then hand off.
    Reconnected {
        /// The host had been sending directly.
        after_fallback: bool,
    },
}

/// The state of the connection to Redis, as heartbeats see it.
#[derive(Clone, Debug)]
pub struct Link {
    fallback_after: Duration,
    fallback: bool,
    started: Instant,
    connected: bool,
    last_ok: Option<Instant>,
    hosts: Option<u32>,
    fell_back: bool,
}

impl Link {
    /// A link that has not reached Redis yet; `hosts` is the count saved by an earlier run.
    pub fn new(fallback_after: Duration, fallback: bool, hosts: Option<u32>, now: Instant) -> Link {
        Link {
            fallback_after,
            fallback,
            started: now,
            connected: false,
            last_ok: None,
            hosts,
            fell_back: false,
        }
    }

    /// A heartbeat succeeded at `now`, seeing `hosts` hosts.
    pub fn on_ok(&mut self, now: Instant, hosts: u32) -> Change {
        let was_connected = self.connected;
        let after_fallback = self.fell_back;
        self.connected = true;
        self.fell_back = false;
        self.last_ok = Some(now);
        self.hosts = Some(hosts.max(1));
        if was_connected {
            Change::Steady
        } else {
            Change::Reconnected { after_fallback }
        }
    }

    /// A heartbeat failed at `now` (Redis unreachable, or too slow to answer).
    pub fn on_error(&mut self, _now: Instant) {
        self.connected = false;
    }

    /// True while the last heartbeat succeeded.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The hosts last seen (none before the first heartbeat of a cluster never reached).
    pub fn hosts(&self) -> Option<u32> {
        self.hosts
    }

    /// What to do at `now`.
    pub fn mode(&mut self, now: Instant) -> Mode {
        if self.connected {
            return Mode::Handoff;
        }
        let since = self.last_ok.unwrap_or(self.started);
        if self.fallback && now.saturating_duration_since(since) >= self.fallback_after {
            self.fell_back = true;
            Mode::Fallback {
                hosts: self.hosts.unwrap_or(UNKNOWN_HOSTS),
            }
        } else {
            Mode::Local
        }
    }
}

/// One host's share of a robot's budget: `per_minute ÷ hosts` per window, as a whole number of
/// messages per (possibly longer) window, never above the share (50 hosts at 20 a minute: one
/// message per 150 s).
pub fn share(config: QueueConfig, hosts: u32) -> QueueConfig {
    let hosts = hosts.max(1);
    let per_minute = config.per_minute.max(1);
    let (per_minute, window) = if per_minute >= hosts {
        (per_minute / hosts, config.window)
    } else {
        (
            1,
            config
                .window
                .mul_f64(f64::from(hosts) / f64::from(per_minute)),
        )
    };
    QueueConfig {
        per_minute,
        window,
        ..config
    }
}

/// How a host's robot queue runs while it hands off to Redis: the robot's own gathering, at up
/// to three hand-offs per the robot's budget slot (hand-offs cost Redis, not DingTalk's budget).
pub fn handoff_pace(config: QueueConfig) -> QueueConfig {
    QueueConfig {
        per_minute: config.per_minute.max(1).saturating_mul(3),
        ..config
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Change, Link, Mode, UNKNOWN_HOSTS, share};
    use crate::dispatch::queue::QueueConfig;

    fn robot() -> QueueConfig {
        QueueConfig {
            per_minute: 20,
            window: Duration::from_secs(60),
            linger: Duration::from_secs(2),
            throttle_pause: Duration::from_secs(600),
            backoff_max: Duration::from_secs(30),
        }
    }

    #[test]
    fn the_share_never_lets_the_fleet_exceed_the_budget() {
        let s = share(robot(), 50);
        assert_eq!((s.per_minute, s.window), (1, Duration::from_secs(150)));
        let s = share(robot(), 3);
        assert_eq!((s.per_minute, s.window), (6, Duration::from_secs(60)));
        let s = share(robot(), 1);
        assert_eq!(s.per_minute, 20);
        for hosts in 1..200u32 {
            let s = share(robot(), hosts);
            let fleet_per_minute =
                f64::from(hosts) * f64::from(s.per_minute) * 60.0 / s.window.as_secs_f64();
            assert!(
                fleet_per_minute <= 20.0 + 1e-9,
                "{hosts} hosts: {fleet_per_minute}"
            );
        }
    }

    #[test]
    fn down_stays_local_until_fallback_after_then_shares_and_a_success_ends_it() {
        let t0 = Instant::now();
        let after = Duration::from_secs(120);
        let mut link = Link::new(after, true, None, t0);
        // Never reached, nothing saved: local, then the most careful share.
        assert_eq!(link.mode(t0), Mode::Local);
        assert_eq!(
            link.mode(t0 + after),
            Mode::Fallback {
                hosts: UNKNOWN_HOSTS
            }
        );
        let t1 = t0 + after + Duration::from_secs(1);
        assert_eq!(
            link.on_ok(t1, 5),
            Change::Reconnected {
                after_fallback: true
            }
        );
        assert_eq!(link.mode(t1), Mode::Handoff);
        assert_eq!(link.on_ok(t1, 5), Change::Steady);
        // Redis goes away: local for fallback_after counted from the last success.
        let t2 = t1 + Duration::from_secs(10);
        link.on_error(t2);
        assert_eq!(link.mode(t2), Mode::Local);
        assert_eq!(
            link.mode(t1 + after - Duration::from_millis(1)),
            Mode::Local
        );
        assert_eq!(link.mode(t1 + after), Mode::Fallback { hosts: 5 });
        // Back before any fallback: reconnected, but nothing was sent directly.
        let mut quick = Link::new(after, true, Some(3), t0);
        quick.on_ok(t0, 3);
        quick.on_error(t0 + Duration::from_secs(1));
        assert_eq!(quick.mode(t0 + Duration::from_secs(2)), Mode::Local);
        assert_eq!(
            quick.on_ok(t0 + Duration::from_secs(3), 3),
            Change::Reconnected {
                after_fallback: false
            }
        );
    }

    #[test]
    fn fallback_off_keeps_everything_local() {
        let t0 = Instant::now();
        let mut link = Link::new(Duration::from_secs(60), false, Some(4), t0);
        assert_eq!(link.mode(t0 + Duration::from_secs(3600)), Mode::Local);
    }
}
