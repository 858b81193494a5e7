//! `RobotQueue`: the per-robot state machine that decides when to send what. It owns the pending
//! `Batch`, the `RateLimiter` and the retry state; the daemon's main loop (through
//! `dispatch::Dispatcher`) feeds it matches, ticks and delivery verdicts and carries out the
//! `Action`s it returns (the ntpd-rs pattern:
//! pure decisions, effects at the edge).
//!
//! Life of a batch: the first match opens a gathering period of `linger`; when it ends and the
//! rate limiter allows, everything pending is taken as one in-flight batch (one match: sent on its
//! own; several: a summary). Only one batch is in flight per robot. `Delivered` forgets it; any
//! failure folds it back into what is pending (counts add up exactly), and the robot waits: the
//! throttle pause after 130101/410100, a jittered backoff after a transient failure, a slow retry
//! after a configuration rejection.

use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::batch::{Batch, Hit, Rendered};
use crate::config::{Config, RobotConfig};
use crate::dingtalk::Verdict;
use crate::dispatch::ratelimit::RateLimiter;

/// Timing settings of one robot.
#[derive(Clone, Copy, Debug)]
pub struct QueueConfig {
    /// Messages per window.
    pub per_minute: u32,
    /// The rate-limit window.
    pub window: Duration,
    /// Gathering period after a first match.
    pub linger: Duration,
    /// How long DingTalk blocks a robot that exceeded the limit.
    pub throttle_pause: Duration,
}

impl QueueConfig {
    /// The timing settings of a configured robot.
    pub fn of(robot: &RobotConfig) -> QueueConfig {
        QueueConfig {
            per_minute: robot.per_minute,
            window: robot.window,
            linger: robot.linger,
            throttle_pause: robot.throttle_pause,
        }
    }

    /// The timing settings of every robot of `config`, by name.
    pub fn of_robots(config: &Config) -> Vec<(String, QueueConfig)> {
        config
            .robots
            .iter()
            .map(|(name, robot)| (name.clone(), QueueConfig::of(robot)))
            .collect()
    }
}

/// What the task should do next.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Send this batch; report the verdict with `on_verdict(id, ..)`.
    Send {
        /// Identifies the in-flight batch.
        id: u64,
        /// What to send.
        batch: Batch,
    },
    /// Nothing to do before this instant (unless a match arrives).
    WakeAt(Instant),
    /// A batch is in flight: wait for its verdict.
    AwaitVerdict,
    /// Nothing pending.
    Idle,
}

/// The per-robot state machine.
#[derive(Debug)]
pub struct RobotQueue {
    config: QueueConfig,
    limiter: RateLimiter,
    backoff: Backoff,
    pending: Batch,
    gather_until: Option<Instant>,
    blocked_until: Option<Instant>,
    /// The block comes from a configuration rejection (a reload that fixes it lifts it).
    blocked_by_rejection: bool,
    in_flight: Option<(u64, Batch)>,
    next_id: u64,
}

impl RobotQueue {
    /// A queue with nothing pending.
    pub fn new(config: QueueConfig) -> RobotQueue {
        RobotQueue {
            config,
            limiter: RateLimiter::new(config.per_minute, config.window),
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
            pending: Batch::default(),
            gather_until: None,
            blocked_until: None,
            blocked_by_rejection: false,
            in_flight: None,
            next_id: 1,
        }
    }

    /// Applies new timing settings (reload) while keeping what is pending and the send history.
    pub fn reconfigure(&mut self, config: QueueConfig) {
        if config.per_minute != self.config.per_minute || config.window != self.config.window {
            let mut limiter = RateLimiter::new(config.per_minute, config.window);
            // Keep the history: the receiver still counts what was sent.
            limiter.adopt_history(&self.limiter);
            self.limiter = limiter;
        }
        self.config = config;
    }

    /// Adds a match seen at `now`; `render` runs only if the match becomes a sample.
    pub fn on_hit(&mut self, hit: Hit<'_>, render: impl FnOnce() -> Rendered, now: Instant) {
        if self.pending.is_empty() {
            self.gather_until = Some(now + self.config.linger);
        }
        self.pending.add(hit, render);
    }

    /// Adds a batch restored from durable state; it is sent as soon as the limiter allows.
    pub fn restore(&mut self, batch: Batch, now: Instant) {
        if batch.is_empty() {
            return;
        }
        if self.pending.is_empty() {
            self.gather_until = Some(now);
        }
        self.pending.absorb(batch);
    }

    /// Decides what to do at `now`.
    pub fn poll(&mut self, now: Instant) -> Action {
        self.decide(now, Gather::Wait)
    }

    /// Like `poll`, but does not wait for the gathering period (shutdown: send what the budget
    /// allows now).
    pub fn poll_flush(&mut self, now: Instant) -> Action {
        self.decide(now, Gather::Skip)
    }

    fn decide(&mut self, now: Instant, gather: Gather) -> Action {
        if self.in_flight.is_some() {
            return Action::AwaitVerdict;
        }
        if self.pending.is_empty() {
            return Action::Idle;
        }
        let mut ready = self.limiter.next_slot(now);
        if let Some(blocked) = self.blocked_until {
            ready = ready.max(blocked);
        }
        if let (Gather::Wait, Some(gather_until)) = (gather, self.gather_until) {
            ready = ready.max(gather_until);
        }
        if ready > now {
            return Action::WakeAt(ready);
        }
        self.limiter.record(now);
        self.blocked_until = None;
        self.gather_until = None;
        let id = self.next_id;
        self.next_id += 1;
        let batch = std::mem::take(&mut self.pending);
        self.in_flight = Some((id, batch.clone()));
        Action::Send { id, batch }
    }

    /// Reports how the send of batch `id` went. `unit` is a random draw in `[0, 1)` for jitter.
    /// Returns how many matches were given up (only a content rejection of a batch that had no
    /// samples left gives up anything); every other failure keeps the batch, counts exact.
    pub fn on_verdict(&mut self, id: u64, verdict: Verdict, now: Instant, unit: f64) -> u64 {
        let Some((in_flight_id, batch)) = self.in_flight.take() else {
            return 0;
        };
        if in_flight_id != id {
            self.in_flight = Some((in_flight_id, batch));
            return 0;
        }
        // The answer is in: the message arrived by now, so it counts from now at the latest.
        self.limiter.restamp_last(now);
        self.blocked_by_rejection = verdict == Verdict::Rejected;
        let (batch, wait) = match verdict {
            Verdict::Delivered => {
                self.backoff.reset();
                if !self.pending.is_empty() {
                    // What arrived meanwhile has waited long enough: send it at the next slot.
                    self.gather_until = Some(now);
                }
                return 0;
            }
            Verdict::Throttled => (batch, self.config.throttle_pause),
            Verdict::Transient => (batch, self.backoff.next_delay(unit)),
            Verdict::Rejected => (batch, self.slow_retry()),
            Verdict::RejectedContent if batch.has_samples() => {
                (batch.without_samples(), Duration::ZERO)
            }
            Verdict::RejectedContent => {
                if !self.pending.is_empty() {
                    self.gather_until = Some(now);
                }
                return batch.count();
            }
        };
        // The failed batch is older than what gathered meanwhile: its samples come first.
        let mut restored = std::mem::take(&mut self.pending);
        restored.absorb(batch);
        self.pending = restored;
        self.gather_until = None;
        self.blocked_until = Some(now + wait);
        0
    }

    /// The robot's webhook, secret or keywords changed (reload): a wait that a configuration
    /// rejection imposed ends now, so the fix is tried at the next slot.
    pub fn lift_rejection(&mut self) {
        if self.blocked_by_rejection {
            self.blocked_until = None;
            self.blocked_by_rejection = false;
        }
    }

    /// Takes over sends made before a restart (`sent`: when, oldest first), so that the rate
    /// limit counts what the receiver still counts.
    pub fn seed_history(&mut self, sent: &[Instant]) {
        for &at in sent {
            self.limiter.record(at);
        }
    }

    /// How long to wait after a configuration rejection before trying again.
    pub fn slow_retry(&self) -> Duration {
        (self.config.window * 5).max(Duration::from_secs(5))
    }

    /// Matches not yet delivered (pending and in flight).
    pub fn n_undelivered(&self) -> u64 {
        self.pending.count() + self.in_flight.as_ref().map_or(0, |(_, b)| b.count())
    }

    /// What is gathering (not in flight), for persistence.
    pub fn pending(&self) -> &Batch {
        &self.pending
    }

    /// True while a batch is in flight (sent, verdict not yet reported).
    pub fn is_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Messages that may still be sent in the current window (for metrics).
    pub fn budget_left(&mut self, now: Instant) -> usize {
        self.limiter.budget_left(now)
    }
}

#[derive(Clone, Copy)]
enum Gather {
    Wait,
    Skip,
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant, SystemTime};

    use crate::batch::{Hit, Rendered};
    use crate::dingtalk::Verdict;
    use crate::dispatch::queue::{Action, QueueConfig, RobotQueue};
    use crate::event::{Mentions, Severity};

    const NONE: Mentions = Mentions {
        mobiles: Vec::new(),
        user_ids: Vec::new(),
        all: false,
    };

    fn queue() -> RobotQueue {
        RobotQueue::new(QueueConfig {
            per_minute: 20,
            window: Duration::from_secs(60),
            linger: Duration::from_secs(2),
            throttle_pause: Duration::from_secs(600),
        })
    }

    fn add(queue: &mut RobotQueue, rule: &str, severity: Severity, line: &str, now: Instant) {
        let hit = Hit {
            rule,
            severity,
            line,
            file: "/f",
            host: "h",
            at: SystemTime::now(),
            mentions: &NONE,
            top: &[],
        };
        queue.on_hit(hit, || Rendered::markdown("t", line), now);
    }

    fn send(queue: &mut RobotQueue, now: Instant) -> (u64, u64) {
        match queue.poll(now) {
            Action::Send { id, batch } => (id, batch.count()),
            other => panic!("expected a send at {now:?}, got {other:?}"),
        }
    }

    #[test]
    fn a_lone_match_waits_for_linger_then_goes_alone() {
        let mut queue = queue();
        let t0 = Instant::now();
        assert_eq!(queue.poll(t0), Action::Idle);
        add(&mut queue, "r", Severity::Info, "x", t0);
        assert_eq!(
            queue.poll(t0 + Duration::from_secs(1)),
            Action::WakeAt(t0 + Duration::from_secs(2))
        );
        match queue.poll(t0 + Duration::from_secs(2)) {
            Action::Send { batch, .. } => assert!(batch.lone().is_some()),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            queue.poll(t0 + Duration::from_secs(3)),
            Action::AwaitVerdict
        );
    }

    #[test]
    fn throttled_batches_wait_the_pause_and_counts_add_up() {
        let mut queue = queue();
        let t0 = Instant::now();
        for i in 0..3 {
            add(&mut queue, "r", Severity::Warning, &format!("l{i}"), t0);
        }
        let (id, n) = send(&mut queue, t0 + Duration::from_secs(2));
        assert_eq!(n, 3);
        add(
            &mut queue,
            "r",
            Severity::Warning,
            "later",
            t0 + Duration::from_secs(3),
        );
        queue.on_verdict(id, Verdict::Throttled, t0 + Duration::from_secs(3), 0.5);
        assert_eq!(queue.n_undelivered(), 4);
        let resume = t0 + Duration::from_secs(603);
        assert_eq!(
            queue.poll(t0 + Duration::from_secs(10)),
            Action::WakeAt(resume)
        );
        let (id, n) = send(&mut queue, resume);
        assert_eq!(n, 4, "the throttled batch and what came later go together");
        queue.on_verdict(id, Verdict::Delivered, resume, 0.5);
        assert_eq!(queue.n_undelivered(), 0);
        assert_eq!(queue.poll(resume), Action::Idle);
    }

    #[test]
    fn transient_failures_back_off_and_rejections_retry_slowly() {
        let mut queue = queue();
        let t0 = Instant::now();
        add(&mut queue, "r", Severity::Critical, "x", t0);
        let (id, _) = send(&mut queue, t0 + Duration::from_secs(2));
        let t1 = t0 + Duration::from_secs(2);
        queue.on_verdict(id, Verdict::Transient, t1, 0.999_999);
        match queue.poll(t1) {
            Action::WakeAt(at) => assert!(at - t1 <= Duration::from_secs(1) && at > t1),
            other => panic!("{other:?}"),
        }
        let (id, _) = send(&mut queue, t1 + Duration::from_secs(1));
        let t2 = t1 + Duration::from_secs(1);
        queue.on_verdict(id, Verdict::Rejected, t2, 0.0);
        assert_eq!(
            queue.poll(t2),
            Action::WakeAt(t2 + Duration::from_secs(300))
        );
        assert_eq!(queue.n_undelivered(), 1);
    }

    #[test]
    fn a_flood_becomes_paced_summaries_with_exact_counts() {
        let mut queue = queue();
        let t0 = Instant::now();
        let mut delivered = 0;
        let mut sends = Vec::new();
        let mut now = t0;
        // 100 matches a second for two minutes, polled every 100 ms.
        for tick in 0..1200u32 {
            now = t0 + Duration::from_millis(100 * u64::from(tick));
            for i in 0..10 {
                add(
                    &mut queue,
                    if i % 3 == 0 { "crit" } else { "noise" },
                    Severity::Info,
                    "l",
                    now,
                );
            }
            if let Action::Send { id, batch } = queue.poll(now) {
                delivered += batch.count();
                sends.push(now);
                queue.on_verdict(id, Verdict::Delivered, now, 0.5);
            }
        }
        loop {
            now += Duration::from_millis(100);
            match queue.poll(now) {
                Action::Send { id, batch } => {
                    delivered += batch.count();
                    sends.push(now);
                    queue.on_verdict(id, Verdict::Delivered, now, 0.5);
                }
                Action::Idle => break,
                _ => {}
            }
        }
        assert_eq!(delivered, 12_000);
        for (i, &t) in sends.iter().enumerate() {
            let n = sends[i..]
                .iter()
                .take_while(|&&u| u - t < Duration::from_secs(60))
                .count();
            assert!(n <= 20, "{n} sends within 60 s from {:?}", t - t0);
        }
        let longest_gap = sends.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(
            longest_gap <= Duration::from_millis(3700),
            "summaries are spread, longest gap {longest_gap:?}"
        );
    }

    #[test]
    fn refused_content_is_resent_as_counts_and_then_given_up() {
        let mut queue = queue();
        let t0 = Instant::now();
        for i in 0..3 {
            add(
                &mut queue,
                "r",
                Severity::Warning,
                &format!("blocked word {i}"),
                t0,
            );
        }
        let t1 = t0 + Duration::from_secs(2);
        let id = match queue.poll(t1) {
            Action::Send { id, batch } => {
                assert!(batch.has_samples());
                id
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(queue.on_verdict(id, Verdict::RejectedContent, t1, 0.5), 0);
        assert_eq!(queue.n_undelivered(), 3, "nothing given up yet");
        let t2 = t1 + Duration::from_secs(4);
        let id = match queue.poll(t2) {
            Action::Send { id, batch } => {
                assert!(!batch.has_samples(), "the retry carries counts only");
                assert_eq!(batch.count(), 3);
                id
            }
            other => panic!("{other:?}"),
        };
        // Something new arrives meanwhile; it is not given up with the refused batch.
        add(&mut queue, "r", Severity::Warning, "fine", t2);
        assert_eq!(queue.on_verdict(id, Verdict::RejectedContent, t2, 0.5), 3);
        assert_eq!(queue.n_undelivered(), 1);
        match queue.poll(t2 + Duration::from_secs(4)) {
            Action::Send { batch, .. } => assert_eq!(batch.count(), 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sends_before_a_restart_count_against_the_window() {
        let mut queue = queue();
        let t0 = Instant::now();
        // Twenty sends in the last 30 s (before a restart): the window is full.
        let sent: Vec<Instant> = (0..20)
            .map(|i| t0 + Duration::from_millis(1500 * i))
            .collect();
        let now = t0 + Duration::from_secs(30);
        queue.seed_history(&sent);
        add(&mut queue, "r", Severity::Critical, "x", now);
        match queue.poll(now + Duration::from_secs(2)) {
            Action::WakeAt(at) => assert!(
                at >= t0 + Duration::from_secs(60),
                "the first seeded send must leave the window first: {:?}",
                at - t0
            ),
            other => panic!("expected to wait, got {other:?}"),
        }
    }
}
