//! `Tracker`: the per-rule state machine of alert kinds, keyed by [`GroupKey`].
//!
//! The daemon gives it every match of its rule ([`Tracker::on_match`], which says what to do
//! with the line: send it, or hold it because it is counted elsewhere), polls it when
//! [`Tracker::next_deadline`] comes ([`Tracker::poll`], which returns the [`Notice`]s due), tells
//! it when the rule's inputs have caught up ([`Tracker::caught_up`], [`Tracker::behind`]), and
//! stores its [`TrackerChanges`] with the batches they explain.
//!
//! Life of a key of a threshold/repeat/resolve rule:
//! 1. *Idle* (only with `when`): its matches go into a window of its last `count` event times,
//!    [`Decision::Pending`]. When the window holds `count` matches spanning less than `within`,
//!    the match that completed it is sent, [`Decision::Alert`] with the count, and an incident
//!    opens (the window is no longer needed: the key leaves the table when the incident ends,
//!    after a quiet period at least as long as `within`, when the window has drained anyway).
//!    Without `when`, the first match fires at once.
//! 2. *Firing*: every match is counted (`total`). With `realert`, matches within the current
//!    period are folded, [`Decision::Folded`], and when the period ends with folded matches a
//!    [`NoticeKind::Repeat`] reports them and a new period begins; a match after a period that
//!    ended empty is sent again, [`Decision::Realert`]. Without `realert`, or once acknowledged
//!    ([`Tracker::ack`]), matches are held, [`Decision::Counted`], for the end.
//! 3. *End*: after a quiet period ([`AlertSpec::end_after`]: `resolve.after`, else `within`, else
//!    `realert`) the incident ends: a [`NoticeKind::Resolved`] with `resolve.notify`, else a last
//!    [`NoticeKind::Repeat`] if matches are still unreported — counts are never dropped. The key
//!    leaves the table.
//!
//! A heartbeat key (`absent`): matches are [`Decision::Heartbeat`]; no match for `absent.for`
//! gives one [`NoticeKind::Absent`], the next match one [`NoticeKind::Recovered`] (due at once,
//! kept in the state until polled so that it survives a crash); `forget_after` removes an absent
//! key. Only keys seen before are watched — except the single key of a rule without `group_by`,
//! which is expected from the start.
//!
//! Quiet periods (incident ends, absence, forgetting, expiry of a window) count from the key's
//! last match or from the latest catch-up, whichever is later, and do not run while the tracker
//! is behind: a restart, a reload or a backlog must not report absence or resolution for lines
//! not read yet. `realert` periods run regardless (a repeat only reports counts).
//!
//! State is bounded: at most `max_groups` keys; a new key at the limit evicts the idle key (window
//! or heartbeat, no open incident, no notice due) matched longest ago; if every key holds an open
//! incident, the match is sent as a plain alert, [`Decision::Overflow`]. Both are counted in
//! [`TrackerStats`]. A plain rule ([`AlertSpec::is_plain`]) returns [`Decision::Alert`] at once
//! and keeps nothing.
//!
//! [`NoticeKind::Repeat`]: crate::alert::NoticeKind::Repeat
//! [`NoticeKind::Resolved`]: crate::alert::NoticeKind::Resolved
//! [`NoticeKind::Absent`]: crate::alert::NoticeKind::Absent
//! [`NoticeKind::Recovered`]: crate::alert::NoticeKind::Recovered

use std::collections::{BTreeSet, HashMap};
use std::time::SystemTime;

use crate::alert::entry::{Entry, Fired, Phase};
use crate::alert::key::GroupKey;
use crate::alert::notice::Notice;
use crate::alert::record::{KeyRecord, TrackerChanges};
use crate::alert::spec::AlertSpec;
use crate::alert::{NONE, from_ms, to_ms};

/// What to do with one match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send the line now as an alert: every match of a plain rule, or the match that opened an
    /// incident. `count_in_window` is the number of matches in the `when` window (1 without
    /// `when`); `since` the event time of the oldest of them.
    Alert {
        /// Matches in the window, this one included.
        count_in_window: u32,
        /// Event time of the oldest of them.
        since: SystemTime,
    },
    /// Send the line now: its incident is still open, but the last `realert` period ended with
    /// nothing folded, so this match starts a new one.
    Realert {
        /// All matches of the incident so far, this one included.
        total: u64,
    },
    /// Do not send: below the `when` threshold.
    Pending {
        /// Matches in the window, this one included.
        count_in_window: u32,
    },
    /// Do not send: folded into the repeat notice at the end of the current `realert` period.
    Folded,
    /// Do not send: counted into the incident and reported when it ends (no `realert`, or
    /// acknowledged).
    Counted,
    /// Do not send: a heartbeat (its absence is what is reported).
    Heartbeat,
    /// Send the line now as a plain alert: the key table is full of open incidents.
    Overflow,
}

impl Decision {
    /// True when the line is to be sent now.
    pub fn sends_line(&self) -> bool {
        matches!(
            self,
            Decision::Alert { .. } | Decision::Realert { .. } | Decision::Overflow
        )
    }
}

/// What [`Tracker::ack`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckOutcome {
    /// The incident is acknowledged: no more repeats until it ends.
    Acked,
    /// It was acknowledged before.
    AlreadyAcked,
    /// The key has no open incident.
    NotFiring,
}

/// Counts for metrics and `status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// Keys held.
    pub n_keys: usize,
    /// Keys with an open incident.
    pub n_firing: usize,
    /// Heartbeat keys reported absent.
    pub n_absent: usize,
    /// Keys evicted at `max_groups` since the tracker was made.
    pub n_evicted: u64,
    /// Matches sent as plain alerts because the table was full of incidents.
    pub n_overflow: u64,
    /// Absent keys removed by `forget_after`.
    pub n_forgotten: u64,
}

/// The alert-kind state of one rule.
#[derive(Debug)]
pub struct Tracker {
    rule: String,
    spec: AlertSpec,
    entries: HashMap<GroupKey, Entry>,
    /// `(deadline, key)` of every key with a timer, earliest first.
    timers: BTreeSet<(i64, GroupKey)>,
    /// `(last_active, key)` of every evictable key, matched longest ago first.
    idle: BTreeSet<(i64, GroupKey)>,
    /// The latest catch-up (timer clock); [`NONE`] while behind.
    armed_at: i64,
    /// Keys changed since the last commit, with the change counter of their latest change.
    dirty: HashMap<GroupKey, u64>,
    seq: u64,
    n_evicted: u64,
    n_overflow: u64,
    n_forgotten: u64,
}

impl Tracker {
    /// A tracker with no keys, behind (quiet periods start at [`Tracker::caught_up`]).
    pub fn new(rule: &str, spec: AlertSpec) -> Tracker {
        Tracker::restore(rule, spec, Vec::new())
    }

    /// A tracker holding `records` (what `state` stored), behind. Records are adapted to
    /// `spec` (a reload may have changed it): a record whose key does not have one value per
    /// `group_by` name, or whose phase means nothing under `spec` (an incident of a rule that
    /// became a heartbeat keeps the key as present; a window without `when` is dropped), is
    /// removed or changed, and marked to be written. Beyond `max_groups`, the records matched
    /// longest ago are evicted.
    pub fn restore(rule: &str, spec: AlertSpec, records: Vec<KeyRecord>) -> Tracker {
        let mut tracker = Tracker {
            rule: rule.to_string(),
            spec,
            entries: HashMap::new(),
            timers: BTreeSet::new(),
            idle: BTreeSet::new(),
            armed_at: NONE,
            dirty: HashMap::new(),
            seq: 0,
            n_evicted: 0,
            n_overflow: 0,
            n_forgotten: 0,
        };
        tracker.load(records);
        tracker
    }

    fn load(&mut self, mut records: Vec<KeyRecord>) {
        // Most recently active first, so that the ones over `max_groups` are the oldest.
        records.sort_by_key(|record| std::cmp::Reverse(record.last_active));
        for record in records {
            let full = self.entries.len() >= self.spec.max_groups();
            let Some(entry) = Entry::from_record(&self.spec, &record).filter(|_| !full) else {
                self.n_evicted += u64::from(full);
                self.mark(&record.key);
                continue;
            };
            if entry.to_record(&record.key) != record {
                self.mark(&record.key);
            }
            self.entries.insert(record.key.clone(), entry);
            self.reindex(&record.key);
        }
        if self.spec.is_heartbeat() && self.spec.group_by().is_empty() {
            let key = GroupKey::empty();
            if !self.entries.contains_key(&key) {
                self.entries.insert(key.clone(), Entry::new());
                self.reindex(&key);
            }
        }
    }

    /// Applies a new spec (reload), keeping what the old one knew as [`Tracker::restore`]
    /// adapts it, the changes not committed yet, the counters and whether it is caught up (the
    /// daemon calls [`Tracker::behind`] if the rule's inputs changed).
    pub fn reconfigure(&mut self, spec: AlertSpec) {
        if spec == self.spec {
            return;
        }
        let records = self.snapshot();
        self.spec = spec;
        self.entries.clear();
        self.timers.clear();
        self.idle.clear();
        self.load(records);
    }

    /// The rule's name.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// The rule's alert keys.
    pub fn spec(&self) -> &AlertSpec {
        &self.spec
    }

    /// Decides what to do with a match of `key` whose event time is `event_at`, seen at `now`
    /// (timer clock). Build `key` with [`AlertSpec::group_key`].
    pub fn on_match(&mut self, key: &GroupKey, event_at: SystemTime, now: SystemTime) -> Decision {
        if self.spec.is_plain() {
            return Decision::Alert {
                count_in_window: 1,
                since: event_at,
            };
        }
        if !self.entries.contains_key(key) {
            if self.entries.len() >= self.spec.max_groups() && !self.evict_one() {
                self.n_overflow += 1;
                return if self.spec.is_heartbeat() {
                    Decision::Heartbeat
                } else {
                    Decision::Overflow
                };
            }
            self.entries.insert(key.clone(), Entry::new());
        }
        let Some(entry) = self.entries.get_mut(key) else {
            return Decision::Overflow;
        };
        let decision = entry.on_match(&self.spec, to_ms(event_at), to_ms(now));
        self.reindex(key);
        self.mark(key);
        decision
    }

    /// When [`Tracker::poll`] next has something to do, if ever (a recovery notice is due at
    /// once: the time of the match that ended the absence).
    pub fn next_deadline(&self) -> Option<SystemTime> {
        self.timers.first().map(|(deadline, _)| from_ms(*deadline))
    }

    /// The notices due at `now`, in deadline order, with the state moved past them.
    pub fn poll(&mut self, now: SystemTime) -> Vec<Notice> {
        let now = to_ms(now);
        let mut notices = Vec::new();
        while self
            .timers
            .first()
            .is_some_and(|(deadline, _)| *deadline <= now)
        {
            let Some((_, key)) = self.timers.pop_first() else {
                break;
            };
            if let Some(entry) = self.entries.get_mut(&key) {
                entry.deadline = NONE;
            }
            match self.fire(&key, now, &mut notices) {
                Fired::Unchanged => {
                    self.reindex(&key);
                    self.park_if_due(&key, now);
                }
                Fired::Changed => {
                    self.reindex(&key);
                    self.mark(&key);
                }
                Fired::Remove => self.remove(&key),
                Fired::Forget => {
                    self.remove(&key);
                    self.n_forgotten += 1;
                }
            }
        }
        notices
    }

    /// The rule's inputs have caught up at `now` (start, reload, end of a backlog): quiet
    /// periods start to run, counted from each key's last match or from `now`, whichever is
    /// later. Nothing changes if the tracker is caught up already.
    pub fn caught_up(&mut self, now: SystemTime) {
        if self.armed_at == NONE {
            self.armed_at = to_ms(now);
            self.rebuild_timers();
        }
    }

    /// The rule's inputs are behind (a backlog): quiet periods stop until the next
    /// [`Tracker::caught_up`], which restarts them.
    pub fn behind(&mut self) {
        if self.armed_at != NONE {
            self.armed_at = NONE;
            self.rebuild_timers();
        }
    }

    /// True between [`Tracker::caught_up`] and [`Tracker::behind`].
    pub fn is_caught_up(&self) -> bool {
        self.armed_at != NONE
    }

    /// Acknowledges the open incident of `key` at `now`: no more repeats until it ends; what
    /// comes meanwhile is reported when it ends.
    pub fn ack(&mut self, key: &GroupKey, now: SystemTime) -> AckOutcome {
        let Some(Phase::Firing(incident)) = self.entries.get_mut(key).map(|e| &mut e.phase) else {
            return AckOutcome::NotFiring;
        };
        if incident.acked_at != NONE {
            return AckOutcome::AlreadyAcked;
        }
        incident.ack(to_ms(now));
        self.reindex(key);
        self.mark(key);
        AckOutcome::Acked
    }

    /// Acknowledges every open, unacknowledged incident whose key has all of `matchers`
    /// (`group_by` name, value); a name not in `group_by` matches nothing, and no matchers match
    /// every key. Returns the keys acknowledged, sorted (chat `ack RULE [KEY=VALUE]…`).
    pub fn ack_where(&mut self, matchers: &[(String, String)], now: SystemTime) -> Vec<GroupKey> {
        let mut positions = Vec::new();
        for (name, value) in matchers {
            match self.spec.group_by().iter().position(|n| n == name) {
                Some(at) => positions.push((at, value.as_str())),
                None => return Vec::new(),
            }
        }
        let mut keys: Vec<GroupKey> = self
            .entries
            .iter()
            .filter(|(_, entry)| {
                matches!(&entry.phase, Phase::Firing(incident) if incident.acked_at == NONE)
            })
            .filter(|(key, _)| {
                positions
                    .iter()
                    .all(|(at, value)| key.values().nth(*at) == Some(*value))
            })
            .map(|(key, _)| key.clone())
            .collect();
        keys.sort();
        for key in &keys {
            self.ack(key, now);
        }
        keys
    }

    /// The records changed since the last [`Tracker::committed`] (upserts and removals, sorted
    /// by key). Taking them changes nothing.
    pub fn changes(&self) -> TrackerChanges {
        let mut upserts = Vec::new();
        let mut removals = Vec::new();
        for key in self.dirty.keys() {
            match self.entries.get(key) {
                Some(entry) => upserts.push(entry.to_record(key)),
                None => removals.push(key.clone()),
            }
        }
        upserts.sort_by(|a, b| a.key.cmp(&b.key));
        removals.sort();
        TrackerChanges {
            upserts,
            removals,
            through: self.seq,
        }
    }

    /// Records that `changes` (from [`Tracker::changes`]) were committed: keys not changed
    /// since are clean.
    pub fn committed(&mut self, changes: &TrackerChanges) {
        self.dirty.retain(|_, seq| *seq > changes.through);
        if self.dirty.is_empty() && self.dirty.capacity() > 1024 {
            // A burst of changes should not keep its table.
            self.dirty = HashMap::new();
        }
    }

    /// Marks every key to be written again (the store was replaced by a fresh one).
    pub fn mark_all_changed(&mut self) {
        let keys: Vec<GroupKey> = self.entries.keys().cloned().collect();
        for key in &keys {
            self.mark(key);
        }
    }

    /// Every key's record, sorted by key (reload, `status`).
    pub fn snapshot(&self) -> Vec<KeyRecord> {
        let mut records: Vec<KeyRecord> = self
            .entries
            .iter()
            .map(|(key, entry)| entry.to_record(key))
            .collect();
        records.sort_by(|a, b| a.key.cmp(&b.key));
        records
    }

    /// The records of the keys with an open incident or reported absent, sorted by key (chat
    /// `status`): only those are cloned, whatever the number of keys.
    pub fn open_incidents(&self) -> Vec<KeyRecord> {
        let mut records: Vec<KeyRecord> = self
            .entries
            .iter()
            .filter(|(_, entry)| matches!(entry.phase, Phase::Firing(_) | Phase::Absent { .. }))
            .map(|(key, entry)| entry.to_record(key))
            .collect();
        records.sort_by(|a, b| a.key.cmp(&b.key));
        records
    }

    /// The record of `key`, if the tracker holds it.
    pub fn record(&self, key: &GroupKey) -> Option<KeyRecord> {
        self.entries.get(key).map(|entry| entry.to_record(key))
    }

    /// Counts for metrics.
    pub fn stats(&self) -> TrackerStats {
        let mut stats = TrackerStats {
            n_keys: self.entries.len(),
            n_evicted: self.n_evicted,
            n_overflow: self.n_overflow,
            n_forgotten: self.n_forgotten,
            ..TrackerStats::default()
        };
        for entry in self.entries.values() {
            match entry.phase {
                Phase::Firing(_) => stats.n_firing += 1,
                Phase::Absent { .. } => stats.n_absent += 1,
                Phase::Idle | Phase::Recovering(_) => {}
            }
        }
        stats
    }

    /// Runs the timer of `key` at `now`.
    fn fire(&mut self, key: &GroupKey, now: i64, notices: &mut Vec<Notice>) -> Fired {
        let Some(entry) = self.entries.get_mut(key) else {
            return Fired::Unchanged;
        };
        let (fired, kind) = entry.on_timer(&self.spec, self.armed_at, now);
        if let Some(kind) = kind {
            notices.push(Notice {
                rule: self.rule.clone(),
                key: key.clone(),
                labels: key.labels(self.spec.group_by()),
                at: from_ms(now),
                kind,
            });
        }
        fired
    }

    /// A timer that changed nothing must not come due again at once (that would be a bug, but
    /// looping on it would stop the daemon): it is parked until the key changes.
    fn park_if_due(&mut self, key: &GroupKey, now: i64) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        if entry.deadline != NONE && entry.deadline <= now {
            debug_assert!(false, "the timer of {key:?} is due again at once");
            self.timers.remove(&(entry.deadline, key.clone()));
            entry.deadline = NONE;
        }
    }

    /// Evicts the idle key matched longest ago; false if there is none.
    fn evict_one(&mut self) -> bool {
        let Some((_, key)) = self.idle.first().cloned() else {
            return false;
        };
        self.remove(&key);
        self.n_evicted += 1;
        true
    }

    /// Removes `key` from the table and its indexes, and marks it to be deleted.
    fn remove(&mut self, key: &GroupKey) {
        if let Some(entry) = self.entries.remove(key) {
            if entry.deadline != NONE {
                self.timers.remove(&(entry.deadline, key.clone()));
            }
            if let Some(at) = entry.idle_at {
                self.idle.remove(&(at, key.clone()));
            }
        }
        self.mark(key);
    }

    /// Puts `key` where its state says in `timers` and `idle`.
    fn reindex(&mut self, key: &GroupKey) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        let deadline = entry.deadline(&self.spec, self.armed_at);
        if deadline != entry.deadline {
            if entry.deadline != NONE {
                self.timers.remove(&(entry.deadline, key.clone()));
            }
            if deadline != NONE {
                self.timers.insert((deadline, key.clone()));
            }
            entry.deadline = deadline;
        }
        let idle_at = entry.is_idle().then_some(entry.last_active);
        if idle_at != entry.idle_at {
            if let Some(at) = entry.idle_at {
                self.idle.remove(&(at, key.clone()));
            }
            if let Some(at) = idle_at {
                self.idle.insert((at, key.clone()));
            }
            entry.idle_at = idle_at;
        }
    }

    /// Recomputes every timer (the catch-up state changed).
    fn rebuild_timers(&mut self) {
        self.timers.clear();
        for (key, entry) in &mut self.entries {
            entry.deadline = entry.deadline(&self.spec, self.armed_at);
            if entry.deadline != NONE {
                self.timers.insert((entry.deadline, key.clone()));
            }
        }
    }

    fn mark(&mut self, key: &GroupKey) {
        self.seq += 1;
        self.dirty.insert(key.clone(), self.seq);
    }
}
