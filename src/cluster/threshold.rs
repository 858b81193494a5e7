//! `scope: cluster` thresholds (issue 15): the pure core that decides, for the rules whose
//! `when` counts the matches of every host, what a match does here and what Redis's answers
//! mean. The Lua script that counts and claims is [`crate::cluster::threshold_io`]'s; the
//! daemon's side (holding a line to fire, the `Tracker` while Redis is away) is
//! `daemon::alerts::scope`.
//!
//! Life of a key while Redis answers:
//! 1. A match is *held* ([`Route::Held`]): counted here as pending, its line kept by the daemon
//!    (at most one per key, renewed at most once per [`STEP_EVERY`]).
//! 2. At most every [`STEP_EVERY`] the daemon takes one [`Step`] per key with pending matches or
//!    a known incident ([`ThresholdBook::take_steps`]) and sends them in one pipelined call.
//! 3. Each [`Answer`] says where the key stands in the cluster. `Claimed`: the window's sum
//!    reached `count` and this host opened the incident: its held line is sent with the
//!    cluster's count ([`Action::Fire`]). `Theirs`: another host owns it; matches here fold
//!    into it. `Mine`/`Took`: this host owns it (took it over when its owner stopped renewing):
//!    it decides the repeats (`realert`: a [`NoticeKind::Repeat`] with what the cluster folded).
//!    `Ended`: the cluster was quiet for the rule's end period; the owner reports it once
//!    ([`NoticeKind::Resolved`], or a last repeat).
//!
//! Redis unreachable (an exchange failed, or none succeeded yet since the start): [`ThresholdBook::on_match`] says [`Route::Local`]
//! and the rule counts on this host alone through its `Tracker`, until an exchange succeeds
//! again. Pending counts that failed to go are kept, and dropped once older than the window.
//!
//! Durability: a key's matches not yet in Redis are stored with each commit (`durable`), so a
//! `kill -9` after the commit of their lines loses none; a crash after an exchange but before
//! the next commit counts them once more.
//!
//! Times from Redis (`*_ms`) are Redis's clock (`TIME`); `now` is the daemon's timer clock, only
//! used to pace the exchanges and to age pending counts.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::alert::{AlertSpec, GroupKey, Notice, NoticeKind};

/// How often pending counts go to Redis and owned incidents are tended.
pub const STEP_EVERY: Duration = Duration::from_secs(1);
/// The window is summed over this many buckets (fewer for very short windows).
pub const BUCKETS: u64 = 12;

/// What a `scope: cluster` rule's counting needs of its spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeRule {
    /// `when.count`.
    pub count: u32,
    /// `when.within`.
    pub within: Duration,
    /// `realert`.
    pub realert: Option<Duration>,
    /// The quiet period that ends an incident ([`AlertSpec::end_after`]).
    pub end_after: Duration,
    /// `resolve.notify` (false without `resolve`).
    pub notify: bool,
    /// `group_by` names, for the notices' labels.
    pub group_by: Vec<String>,
    /// `max_groups`: at most this many keys are held for the cluster; a match of a further key
    /// counts on this host (through the rule's `Tracker`, which has the same bound).
    pub max_groups: usize,
}

impl ScopeRule {
    /// The counting of `spec`, if it says `scope: cluster`.
    pub fn of(spec: &AlertSpec) -> Option<ScopeRule> {
        if !spec.is_cluster_scope() {
            return None;
        }
        let when = spec.when()?;
        Some(ScopeRule {
            count: when.count,
            within: when.within,
            realert: spec.realert(),
            end_after: spec.end_after().unwrap_or(when.within),
            notify: spec.resolve().is_some_and(|r| r.notify),
            group_by: spec.group_by().to_vec(),
            max_groups: spec.max_groups(),
        })
    }

    /// The width of one bucket of the window, in ms (at least 1).
    pub fn bucket_ms(&self) -> u64 {
        let within = u64::try_from(self.within.as_millis()).unwrap_or(u64::MAX);
        (within / BUCKETS).max(1)
    }
}

/// Where a match goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Redis is away: the rule's `Tracker` decides, as for `scope: host`.
    Local,
    /// Counted for the cluster; not sent now. `keep_line`: keep this match's line as the one
    /// to send if this host opens the key's incident.
    Held {
        /// Keep the line.
        keep_line: bool,
    },
}

/// One key's exchange with Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The rule.
    pub rule: String,
    /// The key.
    pub key: GroupKey,
    /// Matches here since the last exchange (0: only tending the incident).
    pub n: u64,
    /// `when.count`.
    pub count: u32,
    /// `when.within` in ms.
    pub within_ms: u64,
    /// A bucket's width in ms.
    pub bucket_ms: u64,
    /// The end period in ms.
    pub end_after_ms: u64,
    /// The matches of the incident already reported, as this host knows it (0: none).
    pub reported: u64,
    /// This host keeps a line of the key, so it may open the incident (counts restored after
    /// a restart come without one: they count, and the next match anywhere fires).
    pub claim: bool,
}

/// Where Redis says a key stands after a [`Step`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// No incident; the window holds `sum`.
    Below,
    /// The window reached `count` with this step: this host opened the incident.
    Claimed,
    /// This host owns the open incident.
    Mine,
    /// This host took the open incident over (its owner stopped renewing it).
    Took,
    /// Another host owns the open incident.
    Theirs,
    /// This host ended the incident: the cluster was quiet for the end period.
    Ended,
}

/// Redis's answer to one [`Step`] (times in Redis ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Where the key stands.
    pub state: State,
    /// Matches in the window (`Below`, `Claimed`).
    pub sum: u64,
    /// The oldest bucket of the window that fired it (`Claimed`, then the incident's).
    pub first_ms: i64,
    /// All matches of the incident.
    pub total: u64,
    /// Matches of the incident reported so far.
    pub reported: u64,
    /// The incident's last match.
    pub last_ms: i64,
    /// Redis's clock at the answer.
    pub now_ms: i64,
}

/// What the daemon is to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send the key's held line as the alert opening the incident, reporting `count` matches
    /// of the cluster within `within`, the oldest at `since`.
    Fire {
        /// The rule.
        rule: String,
        /// The key.
        key: GroupKey,
        /// The cluster's matches in the window.
        count: u64,
        /// The oldest of them (Redis's clock, to a bucket).
        since: SystemTime,
        /// `when.within`.
        within: Duration,
    },
    /// Queue this notice (repeat or resolution of an incident this host owns).
    Notice(Notice),
}

/// What this host knows of a key's incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    None,
    /// Owned here: matches reported up to `reported` (at `reported_ms`), next repeat not before
    /// `gate_ms` (Redis ms; `i64::MAX` without `realert`).
    Mine {
        reported: u64,
        reported_ms: i64,
        gate_ms: i64,
        acked: Option<SystemTime>,
    },
    Theirs,
}

#[derive(Clone, Debug)]
struct KeyState {
    pending: u64,
    /// Timer ms of the oldest pending match.
    pending_since: i64,
    in_flight: u64,
    seen: Seen,
    /// Timer ms when the held line was kept (`None`: none kept).
    line_at: Option<i64>,
}

impl KeyState {
    fn new() -> KeyState {
        KeyState {
            pending: 0,
            pending_since: 0,
            in_flight: 0,
            seen: Seen::None,
            line_at: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.pending == 0 && self.in_flight == 0 && self.seen == Seen::None
    }
}

#[derive(Debug)]
struct RuleState {
    rule: ScopeRule,
    keys: HashMap<GroupKey, KeyState>,
}

/// The `scope: cluster` rules of one daemon and what it knows of their keys.
#[derive(Debug, Default)]
pub struct ThresholdBook {
    rules: BTreeMap<String, RuleState>,
    /// False after a failed exchange, until one succeeds.
    up: bool,
    /// The steps of the exchange under way, in order.
    in_flight: Vec<(String, GroupKey)>,
    /// Timer ms of the last exchange.
    last_step: Option<i64>,
    /// Keys whose count not yet in Redis changed since the last commit, with the change
    /// counter of their latest change (`durable`).
    dirty: HashMap<String, HashMap<GroupKey, u64>>,
    seq: u64,
}

impl ThresholdBook {
    /// A book with no rules, counting through Redis.
    pub fn new() -> ThresholdBook {
        ThresholdBook {
            up: true,
            ..ThresholdBook::default()
        }
    }

    /// Redis is not known to answer (a start, before the first exchange; a daemon without a
    /// cluster link never has one): the rules count on this host until an exchange succeeds.
    pub fn down(&mut self) {
        self.up = false;
    }

    /// Sets the rules (start, reload): kept rules keep their keys, also when their `when`,
    /// `realert` or `resolve` changed (the counts in Redis, the incidents this host owns and
    /// an exchange under way, whose claim must still fire, go on); a rule whose `group_by`
    /// changed drops them (its keys mean something else now); removed ones are forgotten.
    pub fn set_rules(&mut self, rules: impl IntoIterator<Item = (String, ScopeRule)>) {
        let mut old = std::mem::take(&mut self.rules);
        for (name, rule) in rules {
            let keys = match old.remove(&name) {
                Some(state) if state.rule.group_by == rule.group_by => state.keys,
                Some(state) => {
                    old.insert(name.clone(), state);
                    HashMap::new()
                }
                None => HashMap::new(),
            };
            self.rules.insert(name, RuleState { rule, keys });
        }
        // Dropped keys: their stored counts go with the next commit.
        for (name, state) in old {
            for key in state.keys.into_keys() {
                self.mark(&name, &key);
            }
        }
    }

    /// True for a rule that counts across the cluster.
    pub fn has_rule(&self, rule: &str) -> bool {
        self.rules.contains_key(rule)
    }

    /// True when no rule says `scope: cluster`.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// True while the cluster counts (the last exchange succeeded).
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Keys held, for metrics.
    pub fn n_keys(&self) -> usize {
        self.rules.values().map(|state| state.keys.len()).sum()
    }

    /// A match of `key` of `rule` (a rule of the book) at `now`.
    pub fn on_match(&mut self, rule: &str, key: &GroupKey, now: SystemTime) -> Route {
        if !self.up {
            return Route::Local;
        }
        let Some(state) = self.rules.get_mut(rule) else {
            return Route::Local;
        };
        if state.keys.len() >= state.rule.max_groups && !state.keys.contains_key(key) {
            // Log text chooses the keys: their number (a Redis call each per second, a held
            // line each) is bounded as the `Tracker`'s is.
            return Route::Local;
        }
        let now = ms(now);
        let entry = state.keys.entry(key.clone()).or_insert_with(KeyState::new);
        if entry.pending == 0 {
            entry.pending_since = now;
        }
        entry.pending += 1;
        let keep_line = entry.seen == Seen::None
            && entry
                .line_at
                .is_none_or(|at| now.saturating_sub(at) >= step_ms());
        if keep_line {
            entry.line_at = Some(now);
        }
        self.mark(rule, key);
        Route::Held { keep_line }
    }

    /// Acknowledges the unacknowledged incidents of `rule` this host owns whose keys have all
    /// of `matchers` (`group_by` name, value; a name not in `group_by` matches nothing) at
    /// `now`: no more repeats until they end. Returns the keys, sorted. (An incident another
    /// host owns is acknowledged there: the cluster offers every ack to every host.)
    pub fn ack_where(
        &mut self,
        rule: &str,
        matchers: &[(String, String)],
        now: SystemTime,
    ) -> Vec<GroupKey> {
        let Some(state) = self.rules.get_mut(rule) else {
            return Vec::new();
        };
        let names = &state.rule.group_by;
        if matchers.iter().any(|(name, _)| !names.contains(name)) {
            return Vec::new();
        }
        let mut keys = Vec::new();
        for (key, entry) in &mut state.keys {
            let Seen::Mine { acked, .. } = &mut entry.seen else {
                continue;
            };
            let labels = key.labels(names);
            if acked.is_none() && matchers.iter().all(|pair| labels.contains(pair)) {
                *acked = Some(now);
                keys.push(key.clone());
            }
        }
        keys.sort();
        keys
    }

    /// True when `key` of `rule` wants a held line kept (no incident known yet).
    pub fn wants_line(&self, rule: &str, key: &GroupKey) -> bool {
        self.rules
            .get(rule)
            .and_then(|state| state.keys.get(key))
            .is_some_and(|entry| entry.line_at.is_some() && entry.seen == Seen::None)
    }

    /// The steps of the next exchange at `now`, if one is due: every key with pending matches
    /// or a known incident (an empty list while Redis is away: a probe). `None` while an
    /// exchange is under way, before [`STEP_EVERY`] has passed, or with nothing to do.
    pub fn take_steps(&mut self, now: SystemTime) -> Option<Vec<Step>> {
        let now = ms(now);
        if self.rules.is_empty()
            || !self.in_flight.is_empty()
            || self
                .last_step
                // A tenth of slack: the daemon's one-second tick may come a little early.
                .is_some_and(|last| now.saturating_sub(last) < step_ms() * 9 / 10)
        {
            return None;
        }
        let mut steps = Vec::new();
        let mut dropped = Vec::new();
        for (name, state) in &mut self.rules {
            let rule = &state.rule;
            let within = i64::try_from(rule.within.as_millis()).unwrap_or(i64::MAX);
            for (key, entry) in &mut state.keys {
                if entry.pending > 0 && now.saturating_sub(entry.pending_since) > within {
                    // Kept through an outage longer than the window: it no longer counts.
                    entry.pending = 0;
                    dropped.push((name.clone(), key.clone()));
                }
                if entry.pending == 0 && entry.seen == Seen::None {
                    continue;
                }
                let reported = match entry.seen {
                    Seen::Mine { reported, .. } => reported,
                    Seen::None | Seen::Theirs => 0,
                };
                steps.push(Step {
                    rule: name.clone(),
                    key: key.clone(),
                    n: entry.pending,
                    count: rule.count,
                    within_ms: u64::try_from(within).unwrap_or(0),
                    bucket_ms: rule.bucket_ms(),
                    end_after_ms: u64::try_from(rule.end_after.as_millis()).unwrap_or(u64::MAX),
                    reported,
                    claim: entry.line_at.is_some(),
                });
                entry.in_flight = entry.pending;
                entry.pending = 0;
            }
            state.keys.retain(|_, entry| !entry.is_empty());
        }
        for (rule, key) in dropped {
            self.mark(&rule, &key);
        }
        if steps.is_empty() && self.up {
            return None;
        }
        self.last_step = Some(now);
        self.in_flight = steps
            .iter()
            .map(|s| (s.rule.clone(), s.key.clone()))
            .collect();
        Some(steps)
    }

    /// The exchange under way came back (`None`: it failed; Redis is away) at `now`: what to
    /// do. A failed exchange's counts are pending again (they may have reached Redis before the
    /// failure: such a count is counted twice).
    pub fn on_answers(&mut self, answers: Option<Vec<Answer>>, now: SystemTime) -> Vec<Action> {
        let steps = std::mem::take(&mut self.in_flight);
        let mut actions = Vec::new();
        let Some(answers) = answers.filter(|answers| answers.len() == steps.len()) else {
            self.up = false;
            for (rule, key) in &steps {
                if let Some(entry) = self.entry(rule, key) {
                    entry.pending += std::mem::take(&mut entry.in_flight);
                }
            }
            return actions;
        };
        self.up = true;
        for ((rule, key), answer) in steps.into_iter().zip(answers) {
            let carried = self.entry(&rule, &key).is_some_and(|e| e.in_flight > 0);
            self.apply(&rule, &key, answer, now, &mut actions);
            if carried {
                // What went is in Redis now: the stored count drops (a step that only tended
                // an incident changed nothing stored).
                self.mark(&rule, &key);
            }
        }
        for state in self.rules.values_mut() {
            state.keys.retain(|_, entry| !entry.is_empty());
        }
        actions
    }

    fn mark(&mut self, rule: &str, key: &GroupKey) {
        self.seq += 1;
        // Without cloning the key when it is marked already (every match of a busy key).
        let seq = self.seq;
        let keys = match self.dirty.get_mut(rule) {
            Some(keys) => keys,
            None => self.dirty.entry(rule.to_string()).or_default(),
        };
        match keys.get_mut(key) {
            Some(at) => *at = seq,
            None => {
                keys.insert(key.clone(), seq);
            }
        }
    }

    fn entry(&mut self, rule: &str, key: &GroupKey) -> Option<&mut KeyState> {
        self.rules.get_mut(rule)?.keys.get_mut(key)
    }

    fn apply(
        &mut self,
        name: &str,
        key: &GroupKey,
        answer: Answer,
        now: SystemTime,
        actions: &mut Vec<Action>,
    ) {
        let Some(state) = self.rules.get_mut(name) else {
            return;
        };
        let rule = &state.rule;
        let Some(entry) = state.keys.get_mut(key) else {
            return;
        };
        entry.in_flight = 0;
        let gate = |from: i64| {
            rule.realert.map_or(i64::MAX, |realert| {
                from.saturating_add(i64::try_from(realert.as_millis()).unwrap_or(i64::MAX))
            })
        };
        let notice = |kind: NoticeKind| Notice {
            rule: name.to_string(),
            key: key.clone(),
            labels: key.labels(&rule.group_by),
            at: now,
            kind,
        };
        match answer.state {
            State::Below => {
                entry.seen = Seen::None;
                if entry.pending == 0 {
                    entry.line_at = None;
                }
            }
            State::Claimed => {
                actions.push(Action::Fire {
                    rule: name.to_string(),
                    key: key.clone(),
                    count: answer.sum,
                    since: from_ms(answer.first_ms),
                    within: rule.within,
                });
                entry.line_at = None;
                entry.seen = Seen::Mine {
                    reported: answer.sum,
                    reported_ms: answer.now_ms,
                    gate_ms: gate(answer.now_ms),
                    acked: None,
                };
            }
            State::Took | State::Mine => {
                let (mut reported, mut reported_ms, mut gate_ms, acked) = match entry.seen {
                    Seen::Mine {
                        reported,
                        reported_ms,
                        gate_ms,
                        acked,
                    } => (reported.max(answer.reported), reported_ms, gate_ms, acked),
                    // Taken over (or learned after a restart): continued, not fired anew.
                    Seen::None | Seen::Theirs => {
                        (answer.reported, answer.now_ms, gate(answer.now_ms), None)
                    }
                };
                if acked.is_none() && answer.now_ms >= gate_ms && answer.total > reported {
                    actions.push(Action::Notice(notice(NoticeKind::Repeat {
                        folded: answer.total - reported,
                        since: from_ms(reported_ms),
                        total: answer.total,
                    })));
                    reported = answer.total;
                    reported_ms = answer.now_ms;
                    gate_ms = gate(answer.now_ms);
                }
                entry.line_at = None;
                entry.seen = Seen::Mine {
                    reported,
                    reported_ms,
                    gate_ms,
                    acked,
                };
            }
            State::Theirs => {
                entry.line_at = None;
                entry.seen = Seen::Theirs;
            }
            State::Ended => {
                let (reported, reported_ms, acked_at) = match entry.seen {
                    Seen::Mine {
                        reported,
                        reported_ms,
                        acked,
                        ..
                    } => (reported.max(answer.reported), reported_ms, acked),
                    Seen::None | Seen::Theirs => (answer.reported, answer.last_ms, None),
                };
                let unreported = answer.total.saturating_sub(reported);
                let kind = if rule.notify {
                    Some(NoticeKind::Resolved {
                        first: from_ms(answer.first_ms),
                        last: from_ms(answer.last_ms),
                        duration: span(answer.first_ms, answer.last_ms),
                        total: answer.total,
                        unreported,
                        acked_at,
                    })
                } else if unreported > 0 {
                    Some(NoticeKind::Repeat {
                        folded: unreported,
                        since: from_ms(reported_ms),
                        total: answer.total,
                    })
                } else {
                    None
                };
                actions.extend(kind.map(|kind| Action::Notice(notice(kind))));
                entry.seen = Seen::None;
                if entry.pending == 0 {
                    entry.line_at = None;
                }
            }
        }
    }
}

fn step_ms() -> i64 {
    i64::try_from(STEP_EVERY.as_millis()).unwrap_or(1000)
}

/// `at` in ms since the epoch (0 before it).
fn ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn span(from: i64, to: i64) -> Duration {
    Duration::from_millis(u64::try_from(to.saturating_sub(from)).unwrap_or(0))
}

mod durable;
#[cfg(test)]
mod tests;

pub use durable::{ScopeChanges, is_pending_rule, pending_rule};
