//! Sends: starting them when a robot's queue says so (the batch is marked in flight in the same
//! commit as everything not yet on disk, or not sent at all), and what their outcomes mean for
//! the queue, the store, the metrics and the log.

use std::time::{Instant, SystemTime};

use crate::daemon::deliver::deliver;
use crate::daemon::intake::Sending;
use crate::daemon::{Daemon, unix_seconds};
use crate::dingtalk::draft::Note;
use crate::dingtalk::{Outcome, Verdict};
use crate::dispatch::{Gathering, SendOrder};
use crate::metrics::{RejectionLabel, RobotLabel};
use crate::state::Change;

impl Daemon {
    /// Starts every send that is due; returns when to look again.
    pub(crate) fn dispatch(&mut self, gathering: Gathering) -> Option<Instant> {
        let decisions = self.dispatcher.poll(Instant::now(), gathering);
        for order in decisions.sends {
            self.start_send(order);
        }
        decisions.wake_at
    }

    fn start_send(&mut self, order: SendOrder) {
        // With `cluster:`, the batch may go to Redis (or stay) instead.
        let Some(order) = self.cluster_route(order) else {
            return;
        };
        let SendOrder {
            robot,
            id,
            batch,
            repeat,
        } = order;
        let now = Instant::now();
        let Some(destination) = self.destinations.get(&robot).cloned() else {
            // The robot was removed by a reload while it still had undelivered events: they stay
            // queued, and on disk as they are, until a config names it again.
            self.dispatcher
                .on_verdict(&robot, id, Verdict::Rejected, now, 0.5);
            return;
        };
        // Marked in flight together with everything not yet on disk (this robot's unsaved
        // matches above all). When the store cannot write, the batch goes out anyway, from
        // memory, saying that delivery is degraded: an alert late for a full disk is the worst
        // outcome of all.
        let sending = Sending {
            robot: &robot,
            id,
            batch: &batch,
            repeat,
        };
        if !self.commit(Some(sending)) {
            self.dirty.insert(robot.clone());
        }
        let mut notes = Vec::new();
        if repeat {
            notes.push(Note::PossibleRepeat);
        }
        if let Some(reason) = &self.store_failure {
            notes.push(Note::Degraded {
                reason: reason.clone(),
            });
        }
        let client = self.client.clone();
        let pipeline = self.pipeline.clone();
        let name = robot.clone();
        let handle = self.sends.spawn(async move {
            deliver(&client, pipeline, &name, &destination, &batch, notes).await
        });
        self.in_flight.insert(handle.id(), (robot, id));
    }

    /// A send task ended: record its outcome in the queue and the store, and say what it means.
    pub(crate) fn on_sent(
        &mut self,
        joined: Result<(tokio::task::Id, Outcome), tokio::task::JoinError>,
    ) {
        let (task, outcome) = match joined {
            Ok(done) => done,
            Err(err) => {
                // Send tasks do not panic by design; if one did (or was cancelled), its batch is
                // treated as not delivered, so the robot's queue does not wait for it forever.
                tracing::error!("a send task failed: {err}");
                (
                    err.id(),
                    Outcome::Transient {
                        reason: format!("the send task failed: {err}"),
                    },
                )
            }
        };
        let Some((robot, id)) = self.in_flight.remove(&task) else {
            return;
        };
        let label = RobotLabel {
            robot: robot.clone(),
        };
        let now = Instant::now();
        match &outcome {
            Outcome::Delivered => {
                self.metrics.messages_sent.get_or_create(&label).inc();
                self.last_delivery = Some(SystemTime::now());
                self.metrics.last_delivery_seconds.set(unix_seconds());
                tracing::debug!("robot `{robot}`: batch {id} delivered");
            }
            Outcome::Throttled { code, .. } => {
                self.metrics.messages_throttled.get_or_create(&label).inc();
                // The queue pauses for the configured `throttle_pause`; say until when.
                let pause = self
                    .pipeline
                    .config
                    .robots
                    .get(&robot)
                    .map_or(crate::dingtalk::THROTTLE_PAUSE, |r| r.throttle_pause);
                tracing::warn!(
                    "robot `{robot}`: DingTalk throttled it (errcode {code}); quiet until {} and batching meanwhile",
                    humantime::format_rfc3339_seconds(SystemTime::now() + pause)
                );
            }
            Outcome::Rejected { reason, .. } => {
                self.metrics.messages_failed.get_or_create(&label).inc();
                self.metrics
                    .messages_rejected
                    .get_or_create(&RejectionLabel {
                        robot: robot.clone(),
                        reason: reason.class().to_string(),
                    })
                    .inc();
                // The outcome says the errcode, DingTalk's errmsg and the hint that fits it.
                if outcome.verdict() == Verdict::RejectedContent {
                    tracing::error!(
                        "robot `{robot}`: {outcome}; sending the counts again without sample lines"
                    );
                } else {
                    tracing::error!(
                        "robot `{robot}`: {outcome}; the events are kept and retried slowly"
                    );
                }
            }
            Outcome::Transient { reason } => {
                self.metrics.messages_failed.get_or_create(&label).inc();
                tracing::warn!(
                    "robot `{robot}`: delivery failed ({reason}); retrying with backoff"
                );
            }
            Outcome::Unknown { reason } => {
                self.metrics.messages_unanswered.get_or_create(&label).inc();
                tracing::warn!(
                    "robot `{robot}`: no answer ({reason}); DingTalk may have delivered it, so it is sent again by itself, marked as a possible repeat"
                );
            }
        }
        if outcome.is_answer() {
            // DingTalk is reachable: robots waiting after failures without an answer try now.
            self.dispatcher.lift_network_waits();
        }
        let dropped =
            self.dispatcher
                .on_verdict(&robot, id, outcome.verdict(), now, rand::random::<f64>());
        if dropped > 0 {
            self.metrics
                .events_dropped
                .get_or_create(&label)
                .inc_by(dropped);
            tracing::error!(
                "robot `{robot}`: DingTalk refused even the counts of {} without their lines; they are given up so that later alerts get through",
                crate::noun::count(dropped, "event")
            );
        }
        // Nothing of the robot is in flight now: its rows are rewritten as what it has not
        // delivered, in a commit that carries the checkpoints, the other robots and the alert
        // kinds' state too (its gathering batch may hold matches whose checkpoints wait).
        self.dirty.insert(robot.clone());
        let mut extra = vec![Change::Answered {
            robot: &robot,
            at: SystemTime::now(),
        }];
        // Other processes (`send --robot`, `check --ping`) must not send into the block.
        if matches!(outcome, Outcome::Throttled { .. }) {
            let pause = self
                .pipeline
                .config
                .robots
                .get(&robot)
                .map_or(crate::dingtalk::THROTTLE_PAUSE, |r| r.throttle_pause);
            extra.push(Change::Throttled {
                robot: &robot,
                until: SystemTime::now() + pause,
            });
        }
        self.commit_with(None, &extra, "cannot record a delivery");
    }
}
