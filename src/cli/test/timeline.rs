//! `dingtail test LOG --render` for rules with alert keys (issue 13): the log replayed on its
//! event times through the same [`Tracker`]s the daemon runs, and the timeline of what would
//! fire, repeat, resolve, go absent and come back, with counts.
//!
//! The replay: the trackers catch up at the first matched event (a log read whole is no
//! backlog); before each matched event they are polled with `now` = its time, then decide the
//! event with its time as both event and read time. At the end they are polled at the last
//! event's time, and once more as if nothing came for the rule's longest quiet period ("after
//! the log"), so that what the log's end leaves open shows how it would end. Silences are not
//! applied (they live in the state database, not in the log).
//!
//! What would be sent (the firing lines with their annotation, and the notices) also goes into
//! the robots' batches of `--render`'s burst, so the messages shown are the ones the daemon
//! would send for this log.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::alert::{Decision, Notice, Tracker};
use crate::batch::{Annotation, Batch, BatchNotice};
use crate::event::Markup;
use crate::pipeline::{Pipeline, Routed};
use crate::render::context::format;
use crate::render::notice::{annotation, describe};
use crate::rules::RuleSet;

/// What the trackers did to one rule's matches.
#[derive(Default)]
struct Held {
    fired: u64,
    again: u64,
    pending: u64,
    folded: u64,
    counted: u64,
    heartbeats: u64,
    notices: BTreeMap<&'static str, u64>,
}

/// The replay of a log through the trackers of its rules with alert keys.
pub(super) struct Timeline {
    trackers: BTreeMap<String, Tracker>,
    held: BTreeMap<String, Held>,
    started: bool,
    last: Option<SystemTime>,
    lines: Vec<String>,
}

impl Timeline {
    /// The trackers of `rule_set`'s rules that have alert keys.
    pub(super) fn new(rule_set: &RuleSet) -> Timeline {
        let trackers = rule_set
            .rules()
            .iter()
            .filter(|rule| !rule.alert().is_plain())
            .map(|rule| {
                let tracker = Tracker::new(rule.name(), rule.alert().clone());
                (rule.name().to_string(), tracker)
            })
            .collect();
        Timeline {
            trackers,
            held: BTreeMap::new(),
            started: false,
            last: None,
            lines: Vec::new(),
        }
    }

    /// Before the event of line `line_no` at `at`: the trackers catch up (first event) and are
    /// polled; their notices go to the rules' robots' `batches`.
    pub(super) fn before(
        &mut self,
        at: SystemTime,
        pipeline: &Pipeline,
        rule_set: &RuleSet,
        batches: &mut BTreeMap<String, Batch>,
    ) {
        if self.trackers.is_empty() {
            return;
        }
        if !self.started {
            self.started = true;
            for tracker in self.trackers.values_mut() {
                tracker.caught_up(at);
            }
        }
        self.last = Some(self.last.map_or(at, |last| last.max(at)));
        self.poll(at, "", pipeline, rule_set, batches);
    }

    /// Decides a match of line `line_no`: `Some(annotation)` when it would be sent.
    pub(super) fn on_match(&mut self, routed: &Routed<'_>, line_no: u64) -> Option<Annotation> {
        let name = routed.rule.name();
        let Some(tracker) = self.trackers.get_mut(name) else {
            return Some(Annotation::Plain);
        };
        let at = routed.line().time();
        let key = tracker.spec().group_key(|n| routed.value_of(n));
        let labels = key
            .labels(tracker.spec().group_by())
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let decision = tracker.on_match(&key, at, at);
        let held = self.held.entry(name.to_string()).or_default();
        let (word, note) = match decision {
            Decision::Alert {
                count_in_window,
                since,
            } => {
                held.fired += 1;
                let within = tracker.spec().when().map(|when| when.within);
                let note = Annotation::Firing {
                    count: count_in_window,
                    since,
                    within,
                };
                ("fires", note)
            }
            Decision::Realert { total } => {
                held.again += 1;
                ("again", Annotation::Realert { total })
            }
            Decision::Overflow => {
                held.again += 1;
                ("overflow", Annotation::Overflow)
            }
            Decision::Pending { .. } => {
                held.pending += 1;
                return None;
            }
            Decision::Folded => {
                held.folded += 1;
                return None;
            }
            Decision::Counted => {
                held.counted += 1;
                return None;
            }
            Decision::Heartbeat => {
                held.heartbeats += 1;
                return None;
            }
        };
        self.lines.push(format!(
            "{}  {name}  {}  {word} (line {line_no}){}",
            stamp(routed, at),
            if labels.is_empty() { "-" } else { &labels },
            annotation(routed.renderer(), note, at, Markup::Plain)
                .map(|text| format!(": {text}"))
                .unwrap_or_default()
        ));
        Some(note)
    }

    /// The end of the log: a poll at the last event's time, then one as if nothing more came.
    pub(super) fn finish(
        &mut self,
        pipeline: &Pipeline,
        rule_set: &RuleSet,
        batches: &mut BTreeMap<String, Batch>,
    ) {
        let Some(last) = self.last else {
            return;
        };
        self.poll(last, "", pipeline, rule_set, batches);
        let quiet = self
            .trackers
            .values()
            .filter_map(|tracker| {
                let spec = tracker.spec();
                spec.end_after()
                    .into_iter()
                    .chain(spec.absent().map(|absent| absent.for_))
                    .chain(spec.realert())
                    .max()
            })
            .max()
            .unwrap_or_default();
        let after = last + quiet + Duration::from_millis(1);
        self.poll(after, "after the log: ", pipeline, rule_set, batches);
    }

    /// The timeline and the counts per rule.
    pub(super) fn report(&self, out: &mut String) {
        if self.trackers.is_empty() {
            return;
        }
        out.push_str("\ntimeline of the rules with alert keys (event times):\n");
        if self.lines.is_empty() {
            out.push_str("  nothing fired\n");
        }
        for line in &self.lines {
            out.push_str(&format!("  {line}\n"));
        }
        for (rule, tracker) in &self.trackers {
            let empty = Held::default();
            let held = self.held.get(rule).unwrap_or(&empty);
            let mut parts = vec![
                format!("{} fired", held.fired),
                format!("{} sent again", held.again),
            ];
            let counts = [
                (held.pending, "below the threshold"),
                (held.folded, "folded into repeats"),
                (held.counted, "counted for the end"),
                (held.heartbeats, "heartbeats"),
            ];
            for (n, what) in counts {
                if n > 0 {
                    parts.push(format!("{n} {what}"));
                }
            }
            for (kind, n) in &held.notices {
                let kind = match *kind {
                    "repeat" => "repeats",
                    "absent" => "absences",
                    "recovered" => "recoveries",
                    other => other,
                };
                parts.push(format!("{n} {kind}"));
            }
            let open = tracker.stats();
            if open.n_firing > 0 {
                parts.push(format!("{} still firing", open.n_firing));
            }
            out.push_str(&format!("  {rule}: {}\n", parts.join(", ")));
        }
    }

    fn poll(
        &mut self,
        now: SystemTime,
        prefix: &str,
        pipeline: &Pipeline,
        rule_set: &RuleSet,
        batches: &mut BTreeMap<String, Batch>,
    ) {
        // Each timer at its own time, not at the next event's: the timeline shows when a
        // notice would have gone.
        let mut notices: Vec<Notice> = Vec::new();
        for tracker in self.trackers.values_mut() {
            while let Some(due) = tracker.next_deadline().filter(|due| *due <= now) {
                let before = notices.len();
                notices.extend(tracker.poll(due));
                if notices.len() == before && tracker.next_deadline() == Some(due) {
                    break;
                }
            }
        }
        notices.sort_by_key(|notice| notice.at);
        for notice in notices {
            let Some(rule) = rule_set.rules().iter().find(|r| r.name() == notice.rule) else {
                continue;
            };
            let notice = BatchNotice::of(notice, rule.severity(), rule.mentions());
            let held = self.held.entry(notice.rule.clone()).or_default();
            *held.notices.entry(notice.kind_name()).or_default() += 1;
            let labels = crate::lang::Language::En.labels(&notice.labels);
            self.lines.push(format!(
                "{prefix}{}  {}  {}  {}: {}",
                format(notice.at, "%Y-%m-%d %H:%M:%S", pipeline.renderer.zone())
                    .unwrap_or_default(),
                notice.rule,
                if labels.is_empty() { "-" } else { &labels },
                notice.kind_name(),
                describe(&pipeline.renderer, &notice, Markup::Plain)
            ));
            for robot in rule.robots() {
                batches
                    .entry(robot.clone())
                    .or_default()
                    .add_notice(notice.clone());
            }
        }
    }
}

/// `at` in the configured zone.
fn stamp(routed: &Routed<'_>, at: SystemTime) -> String {
    format(at, "%Y-%m-%d %H:%M:%S", routed.renderer().zone()).unwrap_or_default()
}
