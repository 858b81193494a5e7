//! `scope: cluster` thresholds in the daemon (issue 15): the side of [`Alerts`] that holds the
//! matches of such rules for the cluster's count ([`crate::cluster::threshold`]), keeps one
//! line per key to send if this host opens the key's incident, and turns Redis's answers into
//! that alert (with the cluster's count) and the owner's repeats and resolutions.
//!
//! While Redis is unreachable the book says `Local` and the match goes through the rule's
//! `Tracker` as a `scope: host` rule's would; the exchanges themselves run in
//! `daemon::cluster` (one at a time, every second).

use std::time::{Duration, Instant, SystemTime};

use crate::alert::GroupKey;
use crate::batch::{Annotation, BatchNotice, Hit, Rendered};
use crate::cluster::threshold::{Action, Answer, Route, ScopeRule};
use crate::daemon::Daemon;
use crate::daemon::alerts::Alerts;
use crate::event::{Mentions, Severity};
use crate::metrics::RuleLabel;
use crate::pipeline::{Pipeline, Routed};

/// A held match's line, owned, rendered for each of its rule's robots: what is sent if this
/// host opens the incident of its key.
#[derive(Clone, Debug)]
pub(crate) struct HeldLine {
    severity: Severity,
    line: String,
    file: String,
    host: String,
    at: SystemTime,
    mentions: Mentions,
    top: Vec<(String, String)>,
    rendered: Vec<(String, Rendered)>,
}

impl HeldLine {
    fn of(routed: &Routed<'_>) -> HeldLine {
        let hit = routed.hit();
        HeldLine {
            severity: hit.severity,
            line: hit.line.to_string(),
            file: hit.file.to_string(),
            host: hit.host.to_string(),
            at: hit.at,
            mentions: hit.mentions.clone(),
            top: hit
                .top
                .iter()
                .map(|(name, value)| ((*name).to_string(), (*value).to_string()))
                .collect(),
            rendered: routed
                .robots()
                .iter()
                .map(|robot| (robot.clone(), routed.render(robot)))
                .collect(),
        }
    }
}

/// The `scope: cluster` rules of `pipeline` with their counting.
pub(crate) fn scope_rules(pipeline: &Pipeline) -> Vec<(String, ScopeRule)> {
    pipeline
        .rules
        .values()
        .flat_map(|set| set.rules())
        .filter_map(|rule| Some((rule.name().to_string(), ScopeRule::of(rule.alert())?)))
        .collect()
}

impl Alerts {
    /// A match of a `scope: cluster` rule while the cluster counts: held (its line kept when
    /// the book asks), and `true`. `false`: the rule counts here (not such a rule, or Redis is
    /// away).
    pub(super) fn hold_for_cluster(
        &mut self,
        routed: &Routed<'_>,
        key: &GroupKey,
        read_at: SystemTime,
    ) -> bool {
        let rule = routed.rule.name();
        if !self.scope.has_rule(rule) {
            return false;
        }
        match self.scope.on_match(rule, key, read_at) {
            Route::Local => false,
            Route::Held { keep_line } => {
                if keep_line {
                    self.held
                        .insert((rule.to_string(), key.clone()), HeldLine::of(routed));
                }
                true
            }
        }
    }

    /// The `scope: cluster` rules of a new pipeline (start, reload).
    pub(super) fn set_scope_rules(&mut self, pipeline: &Pipeline) {
        self.scope.set_rules(scope_rules(pipeline));
        let scope = &self.scope;
        self.held
            .retain(|(rule, key), _| scope.wants_line(rule, key));
    }
}

impl Daemon {
    /// The cluster's answers to an exchange (`None`: it failed): the alerts this host fires
    /// for the cluster, the notices of the incidents it owns, and the switch to counting here
    /// while Redis is away (and back).
    pub(crate) fn on_threshold_answers(&mut self, answers: Option<Vec<Answer>>) {
        let was_up = self.alerts.scope.is_up();
        let now = Instant::now();
        let wall = SystemTime::now();
        let actions = self.alerts.scope.on_answers(answers, wall);
        let up = self.alerts.scope.is_up();
        if was_up && !up {
            tracing::warn!(
                "cluster: cannot count `scope: cluster` thresholds through Redis; each host counts its own matches until Redis answers"
            );
        } else if !was_up && up {
            tracing::info!("cluster: counting `scope: cluster` thresholds through Redis");
        }
        self.metrics
            .cluster_threshold_local
            .set(i64::from(!up && !self.alerts.scope.is_empty()));
        for action in actions {
            match action {
                Action::Fire {
                    rule,
                    key,
                    count,
                    since,
                    within,
                } => self.fire_for_cluster(&rule, &key, count, since, within, now, wall),
                Action::Notice(notice) => {
                    if self.alerts.silences.mute_notice(&notice).is_some() {
                        continue;
                    }
                    let (severity, mentions) = match self.alerts.rules.get(&notice.rule) {
                        Some(info) => (info.severity, info.mentions.clone()),
                        None => (Severity::Warning, Mentions::default()),
                    };
                    self.queue_notice(BatchNotice::of(notice, severity, &mentions), now);
                }
            }
        }
        let scope = &self.alerts.scope;
        self.alerts
            .held
            .retain(|(rule, key), _| scope.wants_line(rule, key));
        // What Redis took is stored at once: a crash must not send those counts again.
        if !self.dirty.is_empty() || !self.alerts.changes().is_empty() {
            self.commit(None);
        }
    }

    /// Sends the held line of `key` as the alert that opened the cluster's incident.
    #[allow(clippy::too_many_arguments)]
    fn fire_for_cluster(
        &mut self,
        rule: &str,
        key: &GroupKey,
        count: u64,
        since: SystemTime,
        within: Duration,
        now: Instant,
        wall: SystemTime,
    ) {
        let Some(held) = self.alerts.held.remove(&(rule.to_string(), key.clone())) else {
            tracing::warn!(
                "cluster: rule `{rule}` reached its threshold across the cluster ({count} matches) but this host no longer holds a line of the key; nothing is sent for it"
            );
            return;
        };
        tracing::info!(
            "cluster: rule `{rule}` reached its threshold across the cluster: {count} matches; this host sends the alert"
        );
        let labels = self
            .alerts
            .scope_group_by(rule)
            .map(|names| key.labels(&names))
            .unwrap_or_default();
        let muted = self.alerts.silences.mute(
            rule,
            |name| {
                labels
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
            },
            count,
            wall,
        );
        if muted.is_some() {
            self.metrics
                .alerts
                .muted
                .get_or_create(&RuleLabel {
                    rule: rule.to_string(),
                })
                .inc_by(count);
            return;
        }
        let note = Annotation::Firing {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            since,
            within: Some(within),
        };
        let top: Vec<(&str, &str)> = held
            .top
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        for (robot, rendered) in &held.rendered {
            let hit = Hit {
                rule,
                severity: held.severity,
                line: &held.line,
                file: &held.file,
                host: &held.host,
                at: held.at,
                mentions: &held.mentions,
                top: &top,
            };
            if self
                .dispatcher
                .on_alert(robot, hit, note, || rendered.clone(), now)
            {
                self.dirty.insert(robot.clone());
            }
        }
    }
}

impl Alerts {
    /// The `group_by` names of `rule`, if it has a tracker.
    fn scope_group_by(&self, rule: &str) -> Option<Vec<String>> {
        self.trackers
            .get(rule)
            .map(|tracker| tracker.spec().group_by().to_vec())
    }
}
