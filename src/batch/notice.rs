//! What alert kinds (issue 13) add to a batch: the [`Annotation`] of a line an alert-kind rule
//! sends (it stands for a window of matches, or repeats an open incident), and the
//! [`BatchNotice`]s a robot owes that are not lines at all — a repeat with the matches folded
//! since the last message, a resolved incident, an absent heartbeat and its return, a silence
//! that ended with what it muted.
//!
//! Notices are kept whole up to [`MAX_NOTICES`] per batch; beyond that (a robot unreachable
//! while 100,000 keys resolve) each further notice is only tallied per rule and kind
//! ([`NoticeTally`]), its matches counted exactly, so that a batch stays bounded in memory and
//! on disk while no count is lost. The words are `render`'s; this is data. Pure: no I/O, no
//! clock.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::alert::{EndedBy, Muted, Notice, NoticeKind};
use crate::event::{Mentions, Severity};

/// Notices a batch keeps whole; further ones are tallied.
pub const MAX_NOTICES: usize = 100;

/// What a line sent by a rule with alert keys stands for (a plain rule's lines are
/// [`Annotation::Plain`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Annotation {
    /// One match, itself.
    #[default]
    Plain,
    /// The match that opened an incident: `count` matches of its key within `within` (the
    /// rule's `when`; `None` without it), the oldest at `since`.
    Firing {
        /// Matches in the window, this one included: what the line reports.
        count: u32,
        /// Event time of the oldest of them.
        since: SystemTime,
        /// `when.within`.
        within: Option<Duration>,
    },
    /// A match of an open incident sent again (its last `realert` period ended with nothing
    /// folded): `total` matches so far.
    Realert {
        /// All matches of the incident so far, this one included.
        total: u64,
    },
    /// Sent ungrouped: the rule's `max_groups` keys all hold open incidents.
    Overflow,
}

impl Annotation {
    /// The matches the line reports (a firing alert reports its whole window).
    pub fn n_matches(&self) -> u64 {
        match self {
            Annotation::Firing { count, .. } => u64::from(*count),
            Annotation::Plain | Annotation::Realert { .. } | Annotation::Overflow => 1,
        }
    }
}

/// A message a robot owes about a rule that is not a matching line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchNotice {
    /// The rule.
    pub rule: String,
    /// Its severity (orders a summary).
    pub severity: Severity,
    /// The key's `group_by` names and values, or a silence's matchers (values from logs).
    pub labels: Vec<(String, String)>,
    /// When it was decided.
    pub at: SystemTime,
    /// Who it @-mentions (repeats and absences: the rule's own mentions; the rest: nobody).
    pub mentions: Mentions,
    /// What happened.
    pub event: NoticeEvent,
}

/// What a [`BatchNotice`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoticeEvent {
    /// A tracker's notice: repeat, resolved, absent, recovered.
    Alert(NoticeKind),
    /// A silence ended, with what it muted ("静默期间 123 次").
    SilenceEnded(SilenceEnd),
}

/// A silence that ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SilenceEnd {
    /// Its id.
    pub id: String,
    /// Why it was set.
    pub reason: String,
    /// Who set it.
    pub author: String,
    /// How it ended.
    pub by: EndedBy,
    /// What it muted.
    pub muted: Muted,
}

impl BatchNotice {
    /// A tracker's `notice` about a rule of `severity`: a repeat or an absence @-mentions the
    /// rule's `mentions` (it calls for attention as an alert does); a resolution or a recovery
    /// nobody.
    pub fn of(notice: Notice, severity: Severity, mentions: &Mentions) -> BatchNotice {
        let calls = matches!(
            notice.kind,
            NoticeKind::Repeat { .. } | NoticeKind::Absent { .. }
        );
        BatchNotice {
            rule: notice.rule,
            severity,
            labels: notice.labels,
            at: notice.at,
            mentions: if calls {
                mentions.clone()
            } else {
                Mentions::default()
            },
            event: NoticeEvent::Alert(notice.kind),
        }
    }

    /// The matches this notice reports (folded repeats, unreported matches of a resolution,
    /// matches a silence muted).
    pub fn n_matches(&self) -> u64 {
        match &self.event {
            NoticeEvent::Alert(kind) => kind.n_matches(),
            NoticeEvent::SilenceEnded(end) => end.muted.matches,
        }
    }

    /// The kind's short English name (tallies, logs, `dingtail test`): `repeat`, `resolved`,
    /// `absent`, `recovered`, `silence`.
    pub fn kind_name(&self) -> &'static str {
        match &self.event {
            NoticeEvent::Alert(NoticeKind::Repeat { .. }) => "repeat",
            NoticeEvent::Alert(NoticeKind::Resolved { .. }) => "resolved",
            NoticeEvent::Alert(NoticeKind::Absent { .. }) => "absent",
            NoticeEvent::Alert(NoticeKind::Recovered { .. }) => "recovered",
            NoticeEvent::SilenceEnded(_) => "silence",
        }
    }
}

/// Notices of one rule and kind beyond [`MAX_NOTICES`], counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoticeTally {
    /// How many.
    pub n: u64,
    /// The matches they report, exactly.
    pub n_matches: u64,
    /// The highest severity among them.
    pub severity: Option<Severity>,
}

/// A batch's notices: the first [`MAX_NOTICES`] whole, the rest tallied by (rule, kind).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notices {
    /// Kept whole, in the order they came.
    pub kept: Vec<BatchNotice>,
    /// The rest, by (rule, kind name).
    pub tallies: BTreeMap<(String, String), NoticeTally>,
}

impl Notices {
    /// Adds `notice` (tallied once [`MAX_NOTICES`] are kept).
    pub fn add(&mut self, notice: BatchNotice) {
        if self.kept.len() < MAX_NOTICES {
            self.kept.push(notice);
            return;
        }
        let key = (notice.rule.clone(), notice.kind_name().to_string());
        self.tally(key, 1, notice.n_matches(), Some(notice.severity));
    }

    /// Counts `n` notices of (rule, kind) reporting `n_matches` matches.
    pub fn tally(
        &mut self,
        key: (String, String),
        n: u64,
        n_matches: u64,
        severity: Option<Severity>,
    ) {
        let tally = self.tallies.entry(key).or_default();
        tally.n = tally.n.saturating_add(n);
        tally.n_matches = tally.n_matches.saturating_add(n_matches);
        tally.severity = tally.severity.max(severity);
    }

    /// Folds `other` (older notices that failed to send) in before these, keeping the order
    /// they came in and the bound.
    pub fn absorb(&mut self, other: Notices) {
        let newer = std::mem::replace(self, other);
        for notice in newer.kept {
            self.add(notice);
        }
        for (key, tally) in newer.tallies {
            self.tally(key, tally.n, tally.n_matches, tally.severity);
        }
    }

    /// How many notices, kept and tallied.
    pub fn len(&self) -> u64 {
        self.kept.len() as u64 + self.tallies.values().map(|t| t.n).sum::<u64>()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.tallies.is_empty()
    }

    /// The highest severity among them.
    pub fn severity(&self) -> Option<Severity> {
        let kept = self.kept.iter().map(|n| n.severity).max();
        let tallied = self.tallies.values().filter_map(|t| t.severity).max();
        kept.max(tallied)
    }

    /// The same notices without log text: each key's and matcher's values are blanked (what is
    /// left to send when DingTalk refused a message's content).
    pub fn without_values(&self) -> Notices {
        let mut notices = self.clone();
        for notice in &mut notices.kept {
            for (_, value) in &mut notice.labels {
                value.clear();
            }
            if let NoticeEvent::SilenceEnded(end) = &mut notice.event {
                end.reason.clear();
            }
        }
        notices
    }

    /// The notices of `rule` (kept and tallied), for storing them with the rule's row.
    pub fn of_rule(&self, rule: &str) -> Notices {
        Notices {
            kept: self
                .kept
                .iter()
                .filter(|n| n.rule == rule)
                .cloned()
                .collect(),
            tallies: self
                .tallies
                .iter()
                .filter(|((r, _), _)| r == rule)
                .map(|(key, tally)| (key.clone(), *tally))
                .collect(),
        }
    }

    /// Every rule that has notices.
    pub fn rules(&self) -> impl Iterator<Item = &str> {
        self.kept
            .iter()
            .map(|n| n.rule.as_str())
            .chain(self.tallies.keys().map(|(rule, _)| rule.as_str()))
    }
}
