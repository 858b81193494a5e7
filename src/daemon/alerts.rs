//! Alert kinds in the daemon (issue 13): the rules' [`Tracker`]s and the [`SilenceSet`] between
//! a match and the robots' queues, their timers in the main loop, their state in the store.
//!
//! - A match ([`Alerts::on_match`]): its key is built from captures and context (context wins,
//!   as in templates), the rule's tracker decides (send, hold, fold), and a line to send is
//!   asked of the silences; what goes on carries its [`Annotation`] (a firing alert reports its
//!   window), so that a rule's count is the matches its messages report, exactly.
//! - Each turn of the loop ([`Daemon::poll_alerts`]): trackers and silences whose deadline came
//!   decide their notices; notices a silence mutes are counted in it; the rest join the rule's
//!   robots' gathering batches, and silences that ended report what they muted.
//! - Every second ([`Daemon::sync_silences`]): if another process wrote the state database
//!   (`dingtail mute`: SQLite's `data_version` moved), the silence definitions are read again.
//! - Catch-up: quiet periods (resolution, absence) run only while a rule's inputs have been
//!   read to their end: not after a start, a reload that changed them, a pause of the process
//!   (a wall-clock gap), or while an input has stayed behind for [`BACKLOG_GRACE`], until the
//!   tailer reports them caught up in a read that began after that.
//! - Durability: [`Alerts::changes`] go into the same `Store::commit` as the batches their
//!   decisions produced; [`Alerts::committed`] after it succeeded (see `alert::record`).

mod commands;
mod scope;
mod shared;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime};

use crate::alert::{
    Decision, Ended, GroupKey, NoticeKind, SilenceChanges, SilenceSet, Tracker, TrackerChanges,
};
use crate::batch::{Annotation, BatchNotice, NoticeEvent, SilenceEnd};
use crate::cluster::threshold::{ScopeChanges, ThresholdBook, pending_rule};
use crate::daemon::Daemon;
use crate::daemon::bridge::CatchUp;
use crate::event::{Mentions, Severity};
use crate::metrics::{Metrics, NoticeLabel, RuleLabel};
use crate::pipeline::{Pipeline, Routed};
use crate::rules::Rule;
use crate::state::{Change, Store, StoredSilences};

/// An input with data left unread this long is a backlog: its rules' quiet periods stop.
const BACKLOG_GRACE: Duration = Duration::from_secs(2);
/// A wall-clock gap this long between two turns of the loop is a pause of the process
/// (SIGSTOP, a suspended machine): every rule waits to catch up again.
const PAUSE: Duration = Duration::from_secs(10);

/// What a rule's notices need to know about it.
#[derive(Clone, Debug)]
struct RuleInfo {
    robots: Vec<String>,
    severity: Severity,
    mentions: Mentions,
    inputs: Vec<String>,
}

/// The alert-kind state of the daemon.
#[derive(Debug)]
pub(crate) struct Alerts {
    /// One tracker per rule with alert keys.
    trackers: BTreeMap<String, Tracker>,
    /// Every rule, for routing notices.
    rules: BTreeMap<String, RuleInfo>,
    /// Rules whose stored state is to be deleted by the next commit.
    forgotten: BTreeSet<String>,
    silences: SilenceSet,
    /// Silences that ended and are still to be reported.
    ended: Vec<Ended>,
    /// The store's `data_version` when the silences were last read.
    seen_version: Option<i64>,
    /// Per rule: behind since this instant, armed again by a catch-up read begun after it.
    waiting: BTreeMap<String, Instant>,
    /// Inputs the tailer reported behind, since when.
    behind_since: BTreeMap<String, Instant>,
    /// The wall clock at the last poll (a big gap is a pause).
    last_poll: Option<SystemTime>,
    /// Per rule: evictions and overflows already counted in the metrics.
    counted: BTreeMap<String, (u64, u64)>,
    /// With `cluster:`: silences that end are reported by the cluster, not here.
    share_ends: bool,
    /// Silences that ended, for the cluster to report (`share_ends`).
    shared_ends: Vec<Ended>,
    /// `scope: cluster` thresholds: what the cluster counts (`alerts::scope`).
    pub(crate) scope: ThresholdBook,
    /// Per `scope: cluster` key: the line to send if this host opens its incident.
    held: HashMap<(String, GroupKey), scope::HeldLine>,
}

impl Alerts {
    /// The trackers of `pipeline`'s rules with alert keys, restored from `store`, and the
    /// silences it holds; everything behind until the inputs catch up. Rows that cannot be
    /// read are logged and left out; a store that cannot be read starts empty (logged).
    pub(crate) fn start(store: &Store, pipeline: &Pipeline, now: Instant) -> Alerts {
        let stored = match store.load_alert_keys() {
            Ok(stored) => stored,
            Err(err) => {
                tracing::error!(
                    "cannot read the alert-kind state ({err}); every key starts afresh"
                );
                crate::state::StoredKeys::default()
            }
        };
        for bad in &stored.bad {
            tracing::warn!("alert-kind state left out: {bad}");
        }
        let silences = match store.load_silences() {
            Ok(silences) => silences,
            Err(err) => {
                tracing::error!(
                    "cannot read the silences ({err}); none applies until they can be read"
                );
                StoredSilences::default()
            }
        };
        for bad in &silences.bad {
            tracing::warn!("silence left out: {bad}");
        }
        let mut alerts = Alerts {
            trackers: BTreeMap::new(),
            rules: rules_of(pipeline),
            forgotten: BTreeSet::new(),
            silences: SilenceSet::restore(silences.counted),
            ended: Vec::new(),
            seen_version: store.data_version().ok(),
            waiting: BTreeMap::new(),
            behind_since: BTreeMap::new(),
            last_poll: None,
            counted: BTreeMap::new(),
            share_ends: false,
            shared_ends: Vec::new(),
            scope: ThresholdBook::new(),
            held: HashMap::new(),
        };
        // Until the cluster's first exchange succeeds, `scope: cluster` rules count here.
        alerts.scope.down();
        alerts.set_scope_rules(pipeline);
        let mut by_rule = stored.by_rule;
        // `scope: cluster` counts that had not reached Redis when the daemon stopped.
        for (rule, _) in scope::scope_rules(pipeline) {
            if let Some(records) = by_rule.remove(&pending_rule(&rule)) {
                alerts.scope.restore(&rule, records);
            }
        }
        for rule in alert_rules(pipeline) {
            let records = by_rule.remove(rule.name()).unwrap_or_default();
            let tracker = Tracker::restore(rule.name(), rule.alert().clone(), records);
            alerts.trackers.insert(rule.name().to_string(), tracker);
            alerts.waiting.insert(rule.name().to_string(), now);
        }
        // State of rules that no longer have alert keys.
        alerts.forgotten.extend(by_rule.into_keys());
        let ended = alerts
            .silences
            .sync(silences.definitions, SystemTime::now());
        alerts.ended.extend(ended);
        alerts
    }

    /// Applies a reloaded pipeline: trackers of kept rules keep their keys (adapted to a
    /// changed spec); new ones start; removed ones are forgotten. A rule whose inputs changed
    /// waits to catch up again.
    pub(crate) fn reconfigure(&mut self, old: &Pipeline, new: &Pipeline, now: Instant) {
        let mut kept = BTreeSet::new();
        for rule in alert_rules(new) {
            let name = rule.name().to_string();
            kept.insert(name.clone());
            let moved = inputs_of(old, &name) != inputs_of(new, &name);
            match self.trackers.get_mut(&name) {
                Some(tracker) => {
                    tracker.reconfigure(rule.alert().clone());
                    if moved {
                        tracker.behind();
                        self.waiting.insert(name, now);
                    }
                }
                None => {
                    self.forgotten.remove(&name);
                    self.trackers
                        .insert(name.clone(), Tracker::new(&name, rule.alert().clone()));
                    self.waiting.insert(name, now);
                }
            }
        }
        let gone: Vec<String> = self
            .trackers
            .keys()
            .filter(|name| !kept.contains(*name))
            .cloned()
            .collect();
        for name in gone {
            self.trackers.remove(&name);
            self.waiting.remove(&name);
            self.forgotten.insert(name);
        }
        self.rules = rules_of(new);
        self.set_scope_rules(new);
    }

    /// Decides what to do with a match read at `read_at`: `Some(annotation)` to add it to the
    /// rule's robots' batches, `None` when its tracker holds it (below a threshold, folded,
    /// counted, a heartbeat) or a silence mutes it (counted there).
    pub(crate) fn on_match(
        &mut self,
        routed: &Routed<'_>,
        read_at: SystemTime,
        metrics: &Metrics,
    ) -> Option<Annotation> {
        let rule = routed.rule;
        let note = match self.trackers.get_mut(rule.name()) {
            None => Annotation::Plain,
            Some(tracker) => {
                let key = tracker.spec().group_key(|name| routed.value_of(name));
                if tracker.spec().is_cluster_scope() && self.hold_for_cluster(routed, &key, read_at)
                {
                    // Counted by the cluster (`alerts::scope`).
                    return None;
                }
                let tracker = self.trackers.get_mut(rule.name())?;
                let decision = tracker.on_match(&key, routed.line().time(), read_at);
                match decision {
                    Decision::Alert {
                        count_in_window,
                        since,
                    } => Annotation::Firing {
                        count: count_in_window,
                        since,
                        within: tracker.spec().when().map(|when| when.within),
                    },
                    Decision::Realert { total } => Annotation::Realert { total },
                    Decision::Overflow => Annotation::Overflow,
                    Decision::Pending { .. }
                    | Decision::Folded
                    | Decision::Counted
                    | Decision::Heartbeat => return None,
                }
            }
        };
        if self.silences.is_empty() {
            return Some(note);
        }
        let n_matches = note.n_matches();
        match self.silences.mute(
            rule.name(),
            |name| routed.value_of(name),
            n_matches,
            read_at,
        ) {
            Some(_) => {
                metrics
                    .alerts
                    .muted
                    .get_or_create(&RuleLabel {
                        rule: rule.name().to_string(),
                    })
                    .inc_by(n_matches);
                None
            }
            None => Some(note),
        }
    }

    /// The inputs' progress: rules whose inputs stayed behind past [`BACKLOG_GRACE`] stop their
    /// quiet periods; rules waiting for a catch-up start them when a read begun after they
    /// started waiting found their inputs read to the end.
    pub(crate) fn on_catch_up(&mut self, catch_up: &CatchUp, now: Instant, wall: SystemTime) {
        let Some(behind) = &catch_up.behind else {
            return;
        };
        self.behind_since.retain(|input, _| behind.contains(input));
        for input in behind {
            self.behind_since
                .entry(input.clone())
                .or_insert(catch_up.at);
        }
        self.stop_backlogged(now);
        for (name, tracker) in &mut self.trackers {
            let Some(since) = self.waiting.get(name) else {
                continue;
            };
            let inputs_behind = self
                .rules
                .get(name)
                .is_some_and(|info| info.inputs.iter().any(|i| behind.contains(i)));
            if catch_up.at >= *since && !inputs_behind {
                tracker.caught_up(wall);
                self.waiting.remove(name);
            }
        }
    }

    /// Rules whose inputs have been behind for [`BACKLOG_GRACE`] stop their quiet periods.
    fn stop_backlogged(&mut self, now: Instant) {
        let backlogged: BTreeSet<&String> = self
            .behind_since
            .iter()
            .filter(|(_, since)| now.saturating_duration_since(**since) >= BACKLOG_GRACE)
            .map(|(input, _)| input)
            .collect();
        if backlogged.is_empty() {
            return;
        }
        for (name, tracker) in &mut self.trackers {
            let stuck = self
                .rules
                .get(name)
                .is_some_and(|info| info.inputs.iter().any(|i| backlogged.contains(i)));
            if stuck && tracker.is_caught_up() {
                tracker.behind();
                self.waiting.insert(name.clone(), now);
            }
        }
    }

    /// The notices due at `wall`, each with the robots it goes to (muted ones counted in
    /// their silence and left out), and the silences that ended (their counts reported).
    fn poll(&mut self, now: Instant, wall: SystemTime, metrics: &Metrics) -> Vec<BatchNotice> {
        if self
            .last_poll
            .is_some_and(|last| wall.duration_since(last).unwrap_or_default() >= PAUSE)
        {
            tracing::info!(
                "the clock jumped or the process was paused; quiet periods wait until the inputs catch up"
            );
            for (name, tracker) in &mut self.trackers {
                tracker.behind();
                self.waiting.insert(name.clone(), now);
            }
        }
        self.last_poll = Some(wall);
        self.stop_backlogged(now);
        let mut out = Vec::new();
        for (name, tracker) in &mut self.trackers {
            if tracker.next_deadline().is_none_or(|at| at > wall) {
                continue;
            }
            let info = self.rules.get(name);
            for notice in tracker.poll(wall) {
                let kind = kind_name(&notice.kind);
                metrics
                    .alerts
                    .notices
                    .get_or_create(&NoticeLabel {
                        rule: name.clone(),
                        kind: kind.to_string(),
                    })
                    .inc();
                if self.silences.mute_notice(&notice).is_some() {
                    let n = notice.kind.n_matches();
                    if n > 0 {
                        metrics
                            .alerts
                            .muted
                            .get_or_create(&RuleLabel { rule: name.clone() })
                            .inc_by(n);
                    }
                    continue;
                }
                let (severity, mentions) = match info {
                    Some(info) => (info.severity, info.mentions.clone()),
                    None => (Severity::Warning, Mentions::default()),
                };
                out.push(BatchNotice::of(notice, severity, &mentions));
            }
        }
        let expired = self.silences.expire(wall);
        self.ended.extend(expired);
        for ended in std::mem::take(&mut self.ended) {
            tracing::info!(
                "silence {} of rule `{}` ended ({}); it muted {} and {}",
                ended.silence.id(),
                ended.silence.rule(),
                match ended.by {
                    crate::alert::EndedBy::Expired => "expired",
                    crate::alert::EndedBy::Removed => "removed",
                },
                crate::noun::count(ended.muted.matches, "match"),
                crate::noun::count(ended.muted.notices, "notice")
            );
            if self.share_ends {
                // The cluster reports it once, with every host's count.
                self.shared_ends.push(ended);
                continue;
            }
            out.extend(self.ended_notice(ended, metrics));
        }
        out
    }

    /// The notice reporting what `ended` muted (none when it muted nothing).
    pub(crate) fn ended_notice(&self, ended: Ended, metrics: &Metrics) -> Option<BatchNotice> {
        let rule = ended.silence.rule().to_string();
        let muted = ended.muted;
        if muted.matches == 0 && muted.notices == 0 {
            return None;
        }
        metrics
            .alerts
            .notices
            .get_or_create(&NoticeLabel {
                rule: rule.clone(),
                kind: "silence".into(),
            })
            .inc();
        let severity = self.rules.get(&rule).map_or(Severity::Info, |i| i.severity);
        Some(BatchNotice {
            rule,
            severity,
            labels: ended.silence.matchers().to_vec(),
            at: ended.at,
            mentions: Mentions::default(),
            event: NoticeEvent::SilenceEnded(SilenceEnd {
                id: ended.silence.id().to_string(),
                reason: ended.silence.reason().to_string(),
                author: ended.silence.author().to_string(),
                by: ended.by,
                muted,
            }),
        })
    }

    /// The robots a notice of `rule` goes to (none for a rule no longer configured).
    fn robots_of(&self, rule: &str) -> &[String] {
        self.rules.get(rule).map_or(&[], |info| &info.robots)
    }

    /// When [`Daemon::poll_alerts`] next has something to do.
    pub(crate) fn next_deadline(&self) -> Option<SystemTime> {
        self.trackers
            .values()
            .filter_map(Tracker::next_deadline)
            .chain(self.silences.next_deadline())
            .min()
    }

    /// What to write with the next commit.
    pub(crate) fn changes(&self) -> AlertChanges {
        AlertChanges {
            trackers: self
                .trackers
                .iter()
                .map(|(rule, tracker)| (rule.clone(), tracker.changes()))
                .filter(|(_, changes)| !changes.is_empty())
                .collect(),
            forgotten: self.forgotten.iter().cloned().collect(),
            silences: self.silences.changes(),
            scope: self.scope.changes(),
        }
    }

    /// `changes` were committed.
    pub(crate) fn committed(&mut self, changes: &AlertChanges) {
        for (rule, tracker_changes) in &changes.trackers {
            if let Some(tracker) = self.trackers.get_mut(rule) {
                tracker.committed(tracker_changes);
            }
        }
        for rule in &changes.forgotten {
            self.forgotten.remove(rule);
        }
        self.silences.committed(&changes.silences);
        self.scope.committed(&changes.scope);
    }

    /// The store was replaced by a fresh one: everything is written again.
    pub(crate) fn rewrite_all(&mut self) {
        for tracker in self.trackers.values_mut() {
            tracker.mark_all_changed();
        }
        self.silences.mark_all_changed();
        self.scope.mark_all_changed();
    }

    /// Updates the metrics of the trackers and silences.
    pub(crate) fn refresh_gauges(&mut self, metrics: &Metrics) {
        for (rule, tracker) in &self.trackers {
            let stats = tracker.stats();
            let label = RuleLabel { rule: rule.clone() };
            let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            metrics
                .alerts
                .keys
                .get_or_create(&label)
                .set(gauge(stats.n_keys));
            metrics
                .alerts
                .firing
                .get_or_create(&label)
                .set(gauge(stats.n_firing));
            metrics
                .alerts
                .absent
                .get_or_create(&label)
                .set(gauge(stats.n_absent));
            let counted = self.counted.entry(rule.clone()).or_default();
            if stats.n_evicted > counted.0 {
                metrics
                    .alerts
                    .evicted
                    .get_or_create(&label)
                    .inc_by(stats.n_evicted - counted.0);
            }
            if stats.n_overflow > counted.1 {
                metrics
                    .alerts
                    .overflow
                    .get_or_create(&label)
                    .inc_by(stats.n_overflow - counted.1);
            }
            *counted = (stats.n_evicted, stats.n_overflow);
        }
        metrics
            .alerts
            .silences
            .set(i64::try_from(self.silences.len()).unwrap_or(i64::MAX));
    }
}

/// What the alert kinds write with a commit.
#[derive(Debug, Default)]
pub(crate) struct AlertChanges {
    trackers: Vec<(String, TrackerChanges)>,
    forgotten: Vec<String>,
    silences: SilenceChanges,
    /// `scope: cluster` counts not yet in Redis (under reserved rule names).
    scope: ScopeChanges,
}

impl AlertChanges {
    /// True when there is nothing to write.
    pub(crate) fn is_empty(&self) -> bool {
        self.trackers.is_empty()
            && self.forgotten.is_empty()
            && self.silences.is_empty()
            && self.scope.rules.is_empty()
    }

    /// The changes, for `Store::commit`.
    pub(crate) fn as_changes(&self) -> impl Iterator<Item = Change<'_>> {
        let forgotten = self
            .forgotten
            .iter()
            .map(|rule| Change::ForgetAlerts { rule });
        let trackers = self
            .trackers
            .iter()
            .chain(&self.scope.rules)
            .map(|(rule, changes)| Change::Alerts { rule, changes });
        let silences = (!self.silences.is_empty()).then_some(Change::Silences(&self.silences));
        forgotten.chain(trackers).chain(silences)
    }
}

impl Daemon {
    /// Runs the trackers' and silences' timers: their notices join the gathering batches of
    /// their rules' robots and are committed at once, with everything else not stored yet.
    /// Without a notice, what changed waits for the next send or tick, as matches do (a crash
    /// meanwhile runs the same timers again: `daemon::coalesce`).
    pub(crate) fn poll_alerts(&mut self) {
        let now = Instant::now();
        let notices = self.alerts.poll(now, SystemTime::now(), &self.metrics);
        let noticed = !notices.is_empty();
        for notice in notices {
            self.queue_notice(notice, now);
        }
        // An ended silence's count goes to the other hosts (`cluster:`): stored first, with
        // the checkpoints of the lines it counted, so that a crash cannot count them again.
        if noticed || self.alerts.has_shared_ends() {
            self.commit(None);
        }
        self.share_ended_silences();
    }

    /// Adds `notice` to the gathering batches of its rule's robots.
    pub(crate) fn queue_notice(&mut self, notice: BatchNotice, now: Instant) {
        let robots = self.alerts.robots_of(&notice.rule).to_vec();
        if robots.is_empty() {
            tracing::info!(
                "a {} notice of rule `{}`, which is no longer configured, is not sent",
                notice.kind_name(),
                notice.rule
            );
        }
        for robot in robots {
            if self.dispatcher.on_notice(&robot, notice.clone(), now) {
                self.dirty.insert(robot);
            }
        }
    }

    /// Reads the silences again if another process wrote the state database since the last
    /// read (`dingtail mute` and `unmute` while the daemon runs).
    pub(crate) fn sync_silences(&mut self) {
        let version = match self.store.data_version() {
            Ok(version) => version,
            Err(err) => {
                tracing::debug!("cannot read the state's data_version: {err}");
                return;
            }
        };
        if self.alerts.seen_version == Some(version) {
            return;
        }
        match self.store.silence_definitions() {
            Ok((definitions, bad)) => {
                for problem in bad {
                    tracing::warn!("silence left out: {problem}");
                }
                let ended = self.alerts.silences.sync(definitions, SystemTime::now());
                tracing::debug!("silences read again: {} known", self.alerts.silences.len());
                self.alerts.ended.extend(ended);
                self.alerts.seen_version = Some(version);
            }
            Err(err) => tracing::warn!("cannot read the silences: {err}"),
        }
    }

    /// When the alert kinds next need [`Daemon::poll_alerts`], as an instant of the loop.
    pub(crate) fn alerts_wake(&self) -> Option<Instant> {
        let at = self.alerts.next_deadline()?;
        let now = SystemTime::now();
        let after = at.duration_since(now).unwrap_or(Duration::ZERO);
        Some(Instant::now() + after)
    }
}

/// The rules of `pipeline` that have alert keys, each once.
fn alert_rules(pipeline: &Pipeline) -> Vec<&Rule> {
    let mut seen = BTreeSet::new();
    pipeline
        .rules
        .values()
        .flat_map(|set| set.rules())
        .filter(|rule| !rule.alert().is_plain() && seen.insert(rule.name()))
        .collect()
}

/// What notices need of every rule.
fn rules_of(pipeline: &Pipeline) -> BTreeMap<String, RuleInfo> {
    pipeline
        .rules
        .values()
        .flat_map(|set| set.rules())
        .map(|rule| {
            (
                rule.name().to_string(),
                RuleInfo {
                    robots: rule.robots().to_vec(),
                    severity: rule.severity(),
                    mentions: rule.mentions().clone(),
                    inputs: rule.inputs().to_vec(),
                },
            )
        })
        .collect()
}

/// Rule `name`'s inputs with their paths (what a reload must change for the rule to wait for a
/// catch-up again).
fn inputs_of(pipeline: &Pipeline, name: &str) -> Vec<(String, Vec<String>)> {
    let Some(rule) = pipeline
        .rules
        .values()
        .flat_map(|set| set.rules())
        .find(|rule| rule.name() == name)
    else {
        return Vec::new();
    };
    rule.inputs()
        .iter()
        .map(|input| {
            let paths = pipeline
                .config
                .inputs
                .get(input)
                .map(|config| config.paths.clone())
                .unwrap_or_default();
            (input.clone(), paths)
        })
        .collect()
}

/// A notice kind's short name (metrics, logs).
fn kind_name(kind: &NoticeKind) -> &'static str {
    match kind {
        NoticeKind::Repeat { .. } => "repeat",
        NoticeKind::Resolved { .. } => "resolved",
        NoticeKind::Absent { .. } => "absent",
        NoticeKind::Recovered { .. } => "recovered",
    }
}
