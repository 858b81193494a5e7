//! The main loop's intake: events from the tailer are matched (`Pipeline::route`), their hits
//! queued per robot, and the state made durable with the checkpoints that pass them, in one
//! commit whose content is described here and written by `state`.
//!
//! The rule: a checkpoint is committed only together with every match before it, so it never
//! gets ahead of durable output. A commit that fails moves nothing forward; the robots stay
//! dirty and the next commit (the next lines, the next send, or the next tick) carries it all.
//! The commit need not follow every batch: the checkpoints wait, with the matches before them,
//! for the next send or tick ([`crate::daemon::coalesce`]); the rows written for a robot are
//! those of the rules whose lines matched ([`crate::daemon::dirty`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::batch::Batch;
use crate::daemon::Daemon;
use crate::daemon::coalesce::AfterLines;
use crate::daemon::dirty::Rows;
use crate::event::LogLine;
use crate::metrics::{InputLabel, RuleLabel};
use crate::state::Change;
use crate::tail::checkpoint::Checkpoint;

/// A batch about to be sent, to be marked in flight by the commit that precedes the send.
pub(crate) struct Sending<'a> {
    pub(crate) robot: &'a str,
    pub(crate) id: u64,
    pub(crate) batch: &'a Batch,
    /// The doubtful batch sent again (else: the gathering batch).
    pub(crate) repeat: bool,
}

impl Daemon {
    /// Matches `lines` and queues the hits; they become durable together with `checkpoints`, at
    /// once or with the next send or tick ([`crate::daemon::coalesce`]).
    pub(crate) fn on_lines(&mut self, lines: Vec<LogLine>, checkpoints: Vec<Checkpoint>) {
        let now = Instant::now();
        let read_at = SystemTime::now();
        let pipeline = self.pipeline.clone();
        // Counted per batch and input, not per line: metric lookups lock and clone labels.
        let mut read: BTreeMap<&str, (u64, u64, u64, u64)> = BTreeMap::new();
        let mut untimed: BTreeMap<&str, u64> = BTreeMap::new();
        // Per rule: its matches, and its last match's line (for the chat's `test`).
        let mut matched: BTreeMap<String, (u64, usize)> = BTreeMap::new();
        // Per run of lines of one input (a batch is mostly one), not per line: the maps and the
        // input's config are looked up once a run (issue 18).
        let mut rest = &lines[..];
        while let Some(first) = rest.first() {
            let len = rest
                .iter()
                .position(|line| !Arc::ptr_eq(&line.input, &first.input))
                .unwrap_or(rest.len());
            let (run, after) = rest.split_at(len);
            rest = after;
            let counts = read.entry(&*first.input).or_default();
            let mut n_untimed = 0;
            for line in run {
                counts.0 += 1;
                counts.1 += line.end_offset.saturating_sub(line.start_offset);
                counts.2 += u64::from(line.truncated);
                counts.3 += u64::from(line.invalid);
                n_untimed += u64::from(line.event_time.is_none());
            }
            let timed = pipeline
                .config
                .inputs
                .get(&*first.input)
                .is_some_and(|input| input.timestamp.is_some());
            if timed && n_untimed > 0 {
                *untimed.entry(&*first.input).or_default() += n_untimed;
            }
        }
        let dispatcher = &mut self.dispatcher;
        let dirty = &mut self.dirty;
        let alerts = &mut self.alerts;
        let metrics = &self.metrics;
        let mut shared = false;
        pipeline.route_batch(&lines, &mut self.route_scratch, |index, routed| {
            let counted = matched.entry(routed.rule.name().to_owned()).or_default();
            *counted = (counted.0 + 1, index);
            shared = shared || alerts.scope.has_rule(routed.rule.name());
            // Alert kinds (issue 13): held, folded or muted matches go no further.
            let Some(note) = alerts.on_match(routed, read_at, metrics) else {
                return;
            };
            let hit = routed.hit();
            for robot in routed.robots() {
                let render = || routed.render(robot);
                if dispatcher.on_alert(robot, hit, note, render, now) {
                    // Only this rule's gathering row changed: the commit writes it alone.
                    dirty.rule_changed(robot, hit.rule);
                }
            }
        });
        for (rule, (n, last)) in matched {
            if self.chat.keeps_matches() {
                if let Some(line) = lines.get(last) {
                    self.chat.matched(&rule, line);
                }
            }
            self.metrics
                .matches
                .get_or_create(&RuleLabel { rule })
                .inc_by(n);
        }
        for (input, (n_lines, n_bytes, n_truncated, n_invalid)) in read {
            let input = InputLabel {
                input: input.to_string(),
            };
            self.metrics
                .lines_read
                .get_or_create(&input)
                .inc_by(n_lines);
            self.metrics
                .bytes_read
                .get_or_create(&input)
                .inc_by(n_bytes);
            if n_truncated > 0 {
                self.metrics
                    .lines_truncated
                    .get_or_create(&input)
                    .inc_by(n_truncated);
            }
            if n_invalid > 0 {
                self.metrics
                    .lines_invalid
                    .get_or_create(&input)
                    .inc_by(n_invalid);
            }
        }
        for (input, n) in untimed {
            self.metrics
                .timestamp_failures
                .get_or_create(&InputLabel {
                    input: input.to_string(),
                })
                .inc_by(n);
        }
        self.tail.recycle(lines);
        self.latest_checkpoints = checkpoints;
        let after = AfterLines {
            shared,
            globs_moved: self.latest_globs != self.saved_globs,
            degraded: self.store_failure.is_some(),
        };
        if after.must_commit() {
            self.commit(None);
        } else {
            self.checkpoints_owed = true;
        }
    }

    /// Makes the state on disk catch up with memory, in one commit: the gathering batch of every
    /// robot changed since the last successful commit, the checkpoints that moved since, and,
    /// with `send`, a batch about to be sent marked in flight. Returns whether it committed.
    pub(crate) fn commit(&mut self, send: Option<Sending<'_>>) -> bool {
        self.commit_with(send, &[], "cannot store matches and checkpoints")
    }

    /// Like [`Daemon::commit`], with `extra` changes in the same transaction; `what` names the
    /// commit in the log if it fails. Every write of a robot's rows goes through here, so that
    /// no match (nor alert state) is ever stored ahead of the checkpoints after its line: a
    /// crash would then read the line again and count it twice.
    pub(crate) fn commit_with(
        &mut self,
        send: Option<Sending<'_>>,
        extra: &[Change<'_>],
        what: &str,
    ) -> bool {
        let moved = self.ledger.changes(&self.latest_checkpoints);
        let globs_moved = self.latest_globs != self.saved_globs;
        // The alert kinds' state goes with the batches its decisions produced (issue 13).
        let alert_changes = self.alerts.changes();
        let cursors = self.journals.unsaved();
        if moved.is_empty()
            && self.dirty.is_empty()
            && send.is_none()
            && !globs_moved
            && alert_changes.is_empty()
            && cursors.is_none()
            && extra.is_empty()
        {
            return true;
        }
        let empty = Batch::default();
        let mut changes: Vec<Change<'_>> = Vec::with_capacity(self.dirty.len() + 4);
        for (robot, rows) in self.dirty.iter() {
            if send.as_ref().is_some_and(|sending| sending.robot == robot) {
                continue;
            }
            let pending = self.dispatcher.gathering(robot);
            let change = match (pending, rows) {
                // Only some rules' matches are new: their rows alone (see `daemon::dirty`).
                (Some(batch), Rows::Gathering(rules)) => Change::GatheringRules {
                    robot,
                    batch,
                    rules,
                },
                (Some(batch), Rows::All) if self.dispatcher.is_in_flight(robot) => {
                    Change::Gathering { robot, batch }
                }
                // Nothing in flight: rewriting all of the robot's rows also clears what a failed
                // commit after a send left.
                _ => Change::Undelivered {
                    robot,
                    pending: pending.unwrap_or(&empty),
                    // The robot's queue is gone (a reload removed it once it was empty): what
                    // is left on disk was delivered.
                    doubtful: self.dispatcher.doubtful(robot).unwrap_or(&empty),
                },
            };
            changes.push(change);
        }
        if let Some(sending) = &send {
            // The robot's rows as they stood before the send took its batch, then the batch
            // marked in flight: nothing else of this robot is in flight.
            let robot = sending.robot;
            let (pending, doubtful) = if sending.repeat {
                let pending = self.dispatcher.gathering(robot).unwrap_or(&empty);
                (pending, sending.batch)
            } else {
                let doubtful = self.dispatcher.doubtful(robot).unwrap_or(&empty);
                (sending.batch, doubtful)
            };
            changes.push(Change::Undelivered {
                robot,
                pending,
                doubtful,
            });
            let (id, at) = (sending.id, SystemTime::now());
            changes.push(if sending.repeat {
                Change::Resending { robot, id, at }
            } else {
                Change::Sending { robot, id, at }
            });
        }
        changes.push(Change::Checkpoints(&moved));
        if globs_moved {
            changes.push(Change::Globs(&self.latest_globs));
        }
        changes.extend(alert_changes.as_changes());
        if let Some(cursors) = &cursors {
            changes.push(Change::JournalCursors(cursors));
        }
        changes.extend_from_slice(extra);
        let result = self.store.commit(&changes);
        let ok = result.is_ok();
        if ok {
            self.checkpoints_owed = false;
            self.alerts.committed(&alert_changes);
            self.dirty.clear();
            self.ledger.committed(&moved);
            if globs_moved {
                self.saved_globs.clone_from(&self.latest_globs);
            }
            if let Some(cursors) = cursors {
                self.journals.saved(cursors);
            }
        }
        self.note_store_result(result, what);
        ok
    }
}
