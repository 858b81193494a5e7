//! `RobotQueue`: the per-robot state machine that decides when to send what. It owns the pending
//! `Batch`, the `RateLimiter` and the retry state; the daemon's main loop (through
//! `dispatch::Dispatcher`) feeds it matches, ticks and delivery verdicts and carries out the
//! `Action`s it returns (the ntpd-rs pattern:
//! pure decisions, effects at the edge).
//!
//! Life of a batch: the first match opens a gathering period of `linger`; when it ends and the
//! rate limiter allows, everything pending is taken as one in-flight batch (one match: sent on its
//! own; several: a summary). Only one batch is in flight per robot. `Delivered` forgets it; a
//! failure before the message could have arrived folds it back into what is pending (counts add
//! up exactly), and the robot waits: the throttle pause after 130101/410100, a jittered backoff
//! (capped at `backoff_max`) after a transient failure, a slow retry after a configuration
//! rejection.
//!
//! A send whose answer never came (a timeout) may have been delivered: its batch becomes
//! *doubtful*. It is never folded into newer events (their counts stay exact); it is sent again
//! by itself, marked as a possible repeat, alternating with newer batches so that neither waits
//! behind the other, until an answer settles it. Doubtful batches from several timeouts are
//! merged (all of them may repeat).
//!
//! Critical first under the limit (issue 13): whatever is pending goes out whole at the next
//! slot, most severe first in the summary, so a flood of warnings delays a critical alert by at
//! most the one send in flight. The one place where a batch waits for another is the alternation
//! with a doubtful batch: there, pending events more severe than everything doubtful go first
//! (a doubtful batch of warnings never holds a critical alert back; a doubtful critical one
//! still alternates with anything).
//!
//! Besides matching lines, a batch carries notices (repeats, resolutions, absences, ended
//! silences: `batch::notice`); they gather, wait and fold back exactly like lines.

use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::batch::{Annotation, Batch, BatchNotice, Hit, Rendered};
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
    /// The longest wait between retries after transient failures.
    pub backoff_max: Duration,
}

impl QueueConfig {
    /// The timing settings of a configured robot.
    pub fn of(robot: &RobotConfig) -> QueueConfig {
        QueueConfig {
            per_minute: robot.per_minute,
            window: robot.window,
            linger: robot.linger,
            throttle_pause: robot.throttle_pause,
            backoff_max: robot.backoff_max,
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
        /// The batch is doubtful (an earlier send of it got no answer): it may repeat a message
        /// the group already has, and must say so.
        repeat: bool,
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
    /// The block is a backoff after a failure without an answer (an answer elsewhere lifts it).
    blocked_by_network: bool,
    /// Sent without an answer: may have been delivered. Sent again by itself, marked.
    doubtful: Batch,
    /// The last send was of the doubtful batch (sends alternate while both wait).
    last_was_repeat: bool,
    in_flight: Option<InFlight>,
    next_id: u64,
}

/// The batch being sent.
#[derive(Debug)]
struct InFlight {
    id: u64,
    batch: Batch,
    repeat: bool,
}

impl RobotQueue {
    /// A queue with nothing pending.
    pub fn new(config: QueueConfig) -> RobotQueue {
        RobotQueue {
            config,
            limiter: RateLimiter::new(config.per_minute, config.window),
            backoff: Backoff::new(Duration::from_secs(1), config.backoff_max),
            pending: Batch::default(),
            gather_until: None,
            blocked_until: None,
            blocked_by_rejection: false,
            blocked_by_network: false,
            doubtful: Batch::default(),
            last_was_repeat: false,
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
        if config.backoff_max != self.config.backoff_max {
            self.backoff = Backoff::new(Duration::from_secs(1), config.backoff_max);
        }
        self.config = config;
    }

    /// Adds a match seen at `now`; `render` runs only if the match becomes a sample.
    pub fn on_hit(&mut self, hit: Hit<'_>, render: impl FnOnce() -> Rendered, now: Instant) {
        self.on_alert(hit, Annotation::Plain, render, now);
    }

    /// Adds a line of a rule with alert keys, standing for what `note` says (see
    /// [`Batch::add_alert`]).
    pub fn on_alert(
        &mut self,
        hit: Hit<'_>,
        note: Annotation,
        render: impl FnOnce() -> Rendered,
        now: Instant,
    ) {
        self.start_gathering(now);
        self.pending.add_alert(hit, note, render);
    }

    /// Adds a notice decided at `now`: it gathers and goes out like a line.
    pub fn on_notice(&mut self, notice: BatchNotice, now: Instant) {
        self.start_gathering(now);
        self.pending.add_notice(notice);
    }

    /// The first addition to an empty pending batch opens a gathering period.
    fn start_gathering(&mut self, now: Instant) {
        if self.pending.is_empty() {
            self.gather_until = Some(now + self.config.linger);
        }
    }

    /// Adds batches restored from durable state; they are sent as soon as the limiter allows.
    /// `doubtful` was sent before without a known answer (a crash, a timeout): it is sent again
    /// by itself, marked as a possible repeat.
    pub fn restore(&mut self, pending: Batch, doubtful: Batch, now: Instant) {
        self.doubtful.absorb(doubtful);
        if pending.is_empty() {
            return;
        }
        if self.pending.is_empty() {
            self.gather_until = Some(now);
        }
        self.pending.absorb(pending);
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
        if self.pending.is_empty() && self.doubtful.is_empty() {
            return Action::Idle;
        }
        // Alternate while both wait, so that neither a doubtful batch nor newer events wait
        // behind the other; newer events more severe than all that is doubtful go first.
        let outranks = self.pending.severity() > self.doubtful.severity();
        let repeat = !self.doubtful.is_empty()
            && (self.pending.is_empty() || (!self.last_was_repeat && !outranks));
        let mut ready = self.limiter.next_slot(now);
        if let Some(blocked) = self.blocked_until {
            ready = ready.max(blocked);
        }
        if let (false, Gather::Wait, Some(gather_until)) = (repeat, gather, self.gather_until) {
            ready = ready.max(gather_until);
        }
        if ready > now {
            return Action::WakeAt(ready);
        }
        self.limiter.record(now);
        self.blocked_until = None;
        self.blocked_by_network = false;
        let id = self.next_id;
        self.next_id += 1;
        let batch = if repeat {
            std::mem::take(&mut self.doubtful)
        } else {
            self.gather_until = None;
            std::mem::take(&mut self.pending)
        };
        self.last_was_repeat = repeat;
        self.in_flight = Some(InFlight {
            id,
            batch: batch.clone(),
            repeat,
        });
        Action::Send { id, batch, repeat }
    }

    /// Reports how the send of batch `id` went. `unit` is a random draw in `[0, 1)` for jitter.
    /// Returns how many matches were given up (only a content rejection of a batch that had no
    /// samples left gives up anything); every other failure keeps the batch, counts exact.
    pub fn on_verdict(&mut self, id: u64, verdict: Verdict, now: Instant, unit: f64) -> u64 {
        let Some(flight) = self.in_flight.take() else {
            return 0;
        };
        if flight.id != id {
            self.in_flight = Some(flight);
            return 0;
        }
        // The answer is in: the message arrived by now, so it counts from now at the latest.
        self.limiter.restamp_last(now);
        self.blocked_by_rejection = verdict == Verdict::Rejected;
        self.blocked_by_network = matches!(verdict, Verdict::Transient | Verdict::Unknown);
        let InFlight { batch, repeat, .. } = flight;
        let (batch, wait) = match verdict {
            Verdict::Delivered => {
                self.backoff.reset();
                if !self.pending.is_empty() {
                    // What arrived meanwhile has waited long enough: send it at the next slot.
                    self.gather_until = Some(now);
                }
                return 0;
            }
            Verdict::Unknown => {
                // May have been delivered: kept apart from newer events, sent again marked.
                self.doubtful.absorb(batch);
                self.blocked_until = Some(now + self.backoff.next_delay(unit));
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
                return batch.n_undelivered();
            }
        };
        if repeat {
            // Still unsettled: it stays doubtful.
            self.doubtful.absorb(batch);
        } else {
            // The failed batch is older than what gathered meanwhile: its samples come first.
            let mut restored = std::mem::take(&mut self.pending);
            restored.absorb(batch);
            self.pending = restored;
            self.gather_until = None;
        }
        self.blocked_until = Some(now + wait);
        0
    }

    /// DingTalk answered another robot's request: it is reachable again, so a wait imposed by
    /// a failure without an answer ends now (the next send probes at once, within the rate
    /// limit).
    pub fn lift_network_wait(&mut self) {
        if self.blocked_by_network {
            self.blocked_until = None;
            self.blocked_by_network = false;
        }
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

    /// Matches and notices not yet delivered (pending, doubtful and in flight).
    pub fn n_undelivered(&self) -> u64 {
        self.pending.n_undelivered()
            + self.doubtful.n_undelivered()
            + self
                .in_flight
                .as_ref()
                .map_or(0, |f| f.batch.n_undelivered())
    }

    /// What is gathering (not in flight), for persistence.
    pub fn pending(&self) -> &Batch {
        &self.pending
    }

    /// What may have been delivered and waits to be sent again (not in flight), for
    /// persistence.
    pub fn doubtful(&self) -> &Batch {
        &self.doubtful
    }

    /// True while a batch is in flight (sent, verdict not yet reported).
    pub fn is_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Messages that may still be sent in the current window (for metrics).
    pub fn budget_left(&mut self, now: Instant) -> usize {
        self.limiter.budget_left(now)
    }

    /// What `status` shows of the queue at `now`.
    pub fn standing(&mut self, now: Instant) -> Standing {
        let held = match self.blocked_until {
            Some(_) if self.blocked_by_rejection => Some(Hold::Rejected),
            Some(until) if until > now => Some(Hold::Until(until)),
            _ => None,
        };
        Standing {
            pending: self.n_undelivered(),
            budget_left: self.limiter.budget_left(now),
            per_minute: self.config.per_minute,
            held,
        }
    }
}

/// A queue's state as people read it (`status` in the chat).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    /// Matches not yet delivered.
    pub pending: u64,
    /// Messages that may still be sent in the current window.
    pub budget_left: usize,
    /// Messages per window.
    pub per_minute: u32,
    /// Why the queue does not send, if it does not.
    pub held: Option<Hold>,
}

/// Why a queue waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// A throttle pause or a backoff after a failure, until then.
    Until(Instant),
    /// DingTalk refused the robot's configuration (retried slowly; a reload that fixes it
    /// lifts the wait).
    Rejected,
}

#[derive(Clone, Copy)]
enum Gather {
    Wait,
    Skip,
}

#[cfg(test)]
mod tests;
