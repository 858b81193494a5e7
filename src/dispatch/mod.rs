//! Dispatch: when to send what to each robot, under DingTalk's rate limit (issue 5). The deciding
//! parts are pure (they take `now` and return decisions): `RobotQueue` per robot, and
//! [`Dispatcher`], which holds one queue per configured robot and answers the daemon's three
//! questions: what to add, what to send now, and when to look again. The daemon performs the
//! sends and the persistence; nothing here does I/O.

pub mod allowance;
pub mod queue;
pub mod ratelimit;

use std::collections::BTreeMap;
use std::time::Instant;

use crate::batch::{Annotation, Batch, BatchNotice, Hit, Rendered};
use crate::dingtalk::Verdict;
use crate::dispatch::queue::{Action, QueueConfig, RobotQueue, Standing};

/// A batch the daemon must send now.
#[derive(Debug)]
pub struct SendOrder {
    /// The robot to send to.
    pub robot: String,
    /// Identifies the in-flight batch; report the result with [`Dispatcher::on_verdict`].
    pub id: u64,
    /// What to send.
    pub batch: Batch,
    /// The batch may repeat a message the group already has (an earlier send of it got no
    /// answer): the message must say so.
    pub repeat: bool,
}

/// What [`Dispatcher::poll`] decided.
#[derive(Debug, Default)]
pub struct Decisions {
    /// Batches to send now.
    pub sends: Vec<SendOrder>,
    /// The earliest instant at which a queue wants to be polled again (if any waits).
    pub wake_at: Option<Instant>,
}

/// Whether `poll` honours the gathering period (`linger`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gathering {
    /// Normal operation: wait for `linger` after a first match.
    Wait,
    /// Shutdown: send what the rate budget allows now.
    Skip,
}

/// One queue per robot.
#[derive(Debug, Default)]
pub struct Dispatcher {
    queues: BTreeMap<String, RobotQueue>,
}

impl Dispatcher {
    /// A dispatcher for `robots` (name → timing settings).
    pub fn new(robots: impl IntoIterator<Item = (String, QueueConfig)>) -> Dispatcher {
        let mut dispatcher = Dispatcher::default();
        dispatcher.reconfigure(robots);
        dispatcher
    }

    /// Applies a new set of robots (reload): kept robots keep what is pending, what is in flight
    /// and their send history; new robots start empty. A robot that disappeared keeps its queue
    /// while it still holds undelivered matches (they were promised to that robot); it is dropped
    /// once empty.
    pub fn reconfigure(&mut self, robots: impl IntoIterator<Item = (String, QueueConfig)>) {
        let robots: BTreeMap<String, QueueConfig> = robots.into_iter().collect();
        self.queues
            .retain(|name, queue| robots.contains_key(name) || queue.n_undelivered() > 0);
        for (name, config) in robots {
            match self.queues.get_mut(&name) {
                Some(queue) => queue.reconfigure(config),
                None => {
                    self.queues.insert(name, RobotQueue::new(config));
                }
            }
        }
    }

    /// True when `robot` has a queue.
    pub fn has_robot(&self, robot: &str) -> bool {
        self.queues.contains_key(robot)
    }

    /// Adds a match for `robot`; `render` runs only if the match becomes a sample. Returns false
    /// (and drops the match) when the robot is unknown, which a validated config rules out.
    pub fn on_hit(
        &mut self,
        robot: &str,
        hit: Hit<'_>,
        render: impl FnOnce() -> Rendered,
        now: Instant,
    ) -> bool {
        match self.queues.get_mut(robot) {
            Some(queue) => {
                queue.on_hit(hit, render, now);
                true
            }
            None => false,
        }
    }

    /// Adds a line of a rule with alert keys for `robot`, standing for what `note` says; like
    /// [`Dispatcher::on_hit`] otherwise.
    pub fn on_alert(
        &mut self,
        robot: &str,
        hit: Hit<'_>,
        note: Annotation,
        render: impl FnOnce() -> Rendered,
        now: Instant,
    ) -> bool {
        match self.queues.get_mut(robot) {
            Some(queue) => {
                queue.on_alert(hit, note, render, now);
                true
            }
            None => false,
        }
    }

    /// Adds a notice for `robot`. Returns false (and drops it) when the robot is unknown.
    pub fn on_notice(&mut self, robot: &str, notice: BatchNotice, now: Instant) -> bool {
        match self.queues.get_mut(robot) {
            Some(queue) => {
                queue.on_notice(notice, now);
                true
            }
            None => false,
        }
    }

    /// Adds batches restored from durable state: `pending` as new events, `doubtful` as
    /// possibly delivered already (sent again by itself, marked).
    pub fn restore(&mut self, robot: &str, pending: Batch, doubtful: Batch, now: Instant) {
        if let Some(queue) = self.queues.get_mut(robot) {
            queue.restore(pending, doubtful, now);
        }
    }

    /// Decides, for every robot, what to send at `now`.
    pub fn poll(&mut self, now: Instant, gathering: Gathering) -> Decisions {
        let mut decisions = Decisions::default();
        for (robot, queue) in &mut self.queues {
            let action = match gathering {
                Gathering::Wait => queue.poll(now),
                Gathering::Skip => queue.poll_flush(now),
            };
            match action {
                Action::Send { id, batch, repeat } => decisions.sends.push(SendOrder {
                    robot: robot.clone(),
                    id,
                    batch,
                    repeat,
                }),
                Action::WakeAt(at) => {
                    decisions.wake_at = Some(decisions.wake_at.map_or(at, |w| w.min(at)));
                }
                Action::AwaitVerdict | Action::Idle => {}
            }
        }
        decisions
    }

    /// Reports how the send of batch `id` to `robot` went; `unit` is a random draw in `[0, 1)`.
    /// Returns how many matches were given up (see `RobotQueue::on_verdict`).
    pub fn on_verdict(
        &mut self,
        robot: &str,
        id: u64,
        verdict: Verdict,
        now: Instant,
        unit: f64,
    ) -> u64 {
        match self.queues.get_mut(robot) {
            Some(queue) => queue.on_verdict(id, verdict, now, unit),
            None => 0,
        }
    }

    /// DingTalk answered a request: every robot waiting after a failure without an answer may
    /// try again now.
    pub fn lift_network_waits(&mut self) {
        for queue in self.queues.values_mut() {
            queue.lift_network_wait();
        }
    }

    /// `robot`'s destination changed (reload): lift a wait imposed by a configuration rejection.
    pub fn lift_rejection(&mut self, robot: &str) {
        if let Some(queue) = self.queues.get_mut(robot) {
            queue.lift_rejection();
        }
    }

    /// Takes over `robot`'s sends from before a restart (oldest first).
    pub fn seed_history(&mut self, robot: &str, sent: &[Instant]) {
        if let Some(queue) = self.queues.get_mut(robot) {
            queue.seed_history(sent);
        }
    }

    /// What `robot` is gathering (not in flight), for persistence.
    pub fn gathering(&self, robot: &str) -> Option<&Batch> {
        self.queues.get(robot).map(RobotQueue::pending)
    }

    /// What `robot` may have delivered already and sends again (not in flight), for persistence.
    pub fn doubtful(&self, robot: &str) -> Option<&Batch> {
        self.queues.get(robot).map(RobotQueue::doubtful)
    }

    /// Matches not yet delivered, per robot.
    pub fn undelivered(&self) -> impl Iterator<Item = (&str, u64)> {
        self.queues
            .iter()
            .map(|(name, queue)| (name.as_str(), queue.n_undelivered()))
    }

    /// Matches not yet delivered, all robots together.
    pub fn n_undelivered(&self) -> u64 {
        self.queues.values().map(RobotQueue::n_undelivered).sum()
    }

    /// Messages each robot may still send in the current window.
    pub fn budgets(&mut self, now: Instant) -> Vec<(String, usize)> {
        self.queues
            .iter_mut()
            .map(|(name, queue)| (name.clone(), queue.budget_left(now)))
            .collect()
    }

    /// Each robot's queue as `status` shows it.
    pub fn standings(&mut self, now: Instant) -> Vec<(String, Standing)> {
        self.queues
            .iter_mut()
            .map(|(name, queue)| (name.clone(), queue.standing(now)))
            .collect()
    }

    /// True when `robot` has a batch in flight.
    pub fn is_in_flight(&self, robot: &str) -> bool {
        self.queues.get(robot).is_some_and(RobotQueue::is_in_flight)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant, SystemTime};

    use crate::batch::{Hit, Rendered};
    use crate::dingtalk::Verdict;
    use crate::dispatch::queue::QueueConfig;
    use crate::dispatch::{Dispatcher, Gathering};
    use crate::event::{Mentions, Severity};

    fn config() -> QueueConfig {
        QueueConfig {
            per_minute: 20,
            window: Duration::from_secs(60),
            linger: Duration::from_secs(2),
            throttle_pause: Duration::from_secs(600),
            backoff_max: Duration::from_secs(30),
        }
    }

    fn hit<'a>(line: &'a str, mentions: &'a Mentions) -> Hit<'a> {
        Hit {
            rule: "r",
            severity: Severity::Warning,
            line,
            file: "/f",
            host: "h",
            at: SystemTime::now(),
            mentions,
            top: &[],
        }
    }

    #[test]
    fn each_robot_batches_on_its_own_and_wakes_are_merged() {
        let mentions = Mentions::default();
        let mut dispatcher = Dispatcher::new([("a".into(), config()), ("b".into(), config())]);
        let t0 = Instant::now();
        assert!(dispatcher.on_hit("a", hit("x", &mentions), || Rendered::markdown("", ""), t0));
        assert!(!dispatcher.on_hit("zz", hit("x", &mentions), || Rendered::markdown("", ""), t0));
        let later = t0 + Duration::from_secs(1);
        assert!(dispatcher.on_hit(
            "b",
            hit("y", &mentions),
            || Rendered::markdown("", ""),
            later
        ));
        let decisions = dispatcher.poll(t0, Gathering::Wait);
        assert!(decisions.sends.is_empty());
        assert_eq!(decisions.wake_at, Some(t0 + Duration::from_secs(2)));
        let decisions = dispatcher.poll(t0 + Duration::from_secs(2), Gathering::Wait);
        assert_eq!(decisions.sends.len(), 1);
        assert_eq!(decisions.sends[0].robot, "a");
        assert_eq!(dispatcher.n_undelivered(), 2);
        let id = decisions.sends[0].id;
        dispatcher.on_verdict("a", id, Verdict::Delivered, t0, 0.5);
        assert_eq!(dispatcher.n_undelivered(), 1);
        // Shutdown skips the gathering period.
        let decisions = dispatcher.poll(later, Gathering::Skip);
        assert_eq!(decisions.sends.len(), 1);
        assert_eq!(decisions.sends[0].robot, "b");
    }

    #[test]
    fn a_removed_robot_keeps_its_undelivered_matches_until_sent() {
        let mentions = Mentions::default();
        let mut dispatcher = Dispatcher::new([("a".into(), config()), ("b".into(), config())]);
        let t0 = Instant::now();
        dispatcher.on_hit("a", hit("x", &mentions), || Rendered::markdown("", ""), t0);
        dispatcher.reconfigure([("c".into(), config())]);
        assert!(dispatcher.has_robot("a"));
        assert!(!dispatcher.has_robot("b"));
        assert!(dispatcher.has_robot("c"));
        assert_eq!(dispatcher.gathering("a").map(|b| b.count()), Some(1));
    }
}
