//! `Entry`: the state of one key of a [`crate::alert::Tracker`] and its transitions — a match
//! ([`Entry::on_match`]), a timer ([`Entry::on_timer`]), the next deadline
//! ([`Entry::deadline`]) — and its conversion to and from a [`KeyRecord`].
//!
//! The tracker owns the table and its indexes; an entry only knows itself, the rule's spec and
//! the catch-up time. Kept small because there may be 100,000 of them: times are milliseconds
//! in an `i64` ([`NONE`] when unset), the incident and the pending recovery are boxed (most keys
//! have neither), and the `when` window is allocated on its first match.

use std::collections::VecDeque;
use std::time::Duration;

use crate::alert::key::GroupKey;
use crate::alert::notice::NoticeKind;
use crate::alert::record::{IncidentRecord, KeyRecord, PhaseRecord};
use crate::alert::spec::AlertSpec;
use crate::alert::tracker::Decision;
use crate::alert::{NONE, duration_ms, from_ms, from_ms_opt, span, to_ms, to_ms_opt};

/// One key.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Event times of the last `count` matches, oldest first (`when`, while idle).
    window: VecDeque<i64>,
    /// Event time of the latest match.
    last_seen: i64,
    /// Timer time of the latest match.
    pub(crate) last_active: i64,
    pub(crate) phase: Phase,
    /// The key's entry in the tracker's timer index ([`NONE`]: none).
    pub(crate) deadline: i64,
    /// The key's entry in the tracker's eviction index.
    pub(crate) idle_at: Option<i64>,
}

/// Where a key stands (see [`PhaseRecord`]).
#[derive(Debug)]
pub(crate) enum Phase {
    Idle,
    Firing(Box<Incident>),
    Absent { silent_since: i64 },
    Recovering(Box<Recovery>),
}

/// An open incident (see [`IncidentRecord`]).
#[derive(Debug)]
pub(crate) struct Incident {
    opened_at: i64,
    first: i64,
    last: i64,
    total: u64,
    folded: u64,
    folded_since: i64,
    gate_until: i64,
    pub(crate) acked_at: i64,
}

/// A recovery notice due.
#[derive(Debug)]
pub(crate) struct Recovery {
    last_seen: i64,
    back: i64,
    absent_for: Duration,
}

/// What a timer did to its key.
pub(crate) enum Fired {
    Unchanged,
    Changed,
    /// The key has nothing left to remember.
    Remove,
    /// An absent key passed `forget_after`.
    Forget,
}

impl Entry {
    /// A key never matched.
    pub(crate) fn new() -> Entry {
        Entry {
            window: VecDeque::new(),
            last_seen: NONE,
            last_active: NONE,
            phase: Phase::Idle,
            deadline: NONE,
            idle_at: None,
        }
    }

    /// True when the key may be evicted: no open incident, no notice due.
    pub(crate) fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Idle | Phase::Absent { .. })
    }

    /// One match `at` (event time) seen `now` (timer clock), for a rule that is not plain.
    pub(crate) fn on_match(&mut self, spec: &AlertSpec, at: i64, now: i64) -> Decision {
        let seen_before = self.last_seen;
        self.last_seen = self.last_seen.max(at);
        self.last_active = self.last_active.max(now);
        if spec.is_heartbeat() {
            if let Phase::Absent { silent_since } = self.phase {
                self.phase = Phase::Recovering(Box::new(Recovery {
                    last_seen: seen_before,
                    back: at,
                    absent_for: span(silent_since, now),
                }));
            }
            return Decision::Heartbeat;
        }
        if let Phase::Firing(incident) = &mut self.phase {
            return incident.on_match(spec, at, now);
        }
        let (count, first, last) = match spec.when() {
            Some(when) => {
                let count = usize::try_from(when.count).unwrap_or(usize::MAX);
                insert_sorted(&mut self.window, at, count);
                let n_in_window = count_in_window(&self.window, duration_ms(when.within));
                let n_in_window32 = u32::try_from(n_in_window).unwrap_or(u32::MAX);
                if n_in_window < count {
                    return Decision::Pending {
                        count_in_window: n_in_window32,
                    };
                }
                let first = self.window.front().copied().unwrap_or(at);
                let last = self.window.back().copied().unwrap_or(at);
                (n_in_window32, first, last)
            }
            None => (1, at, at),
        };
        // The window is not cleared to restart counting (the incident absorbs every match until
        // it ends, and it ends only after a quiet period of at least `within`, when the window
        // has drained): it is only released.
        self.window = VecDeque::new();
        self.phase = Phase::Firing(Box::new(Incident {
            opened_at: now,
            first,
            last,
            total: u64::from(count),
            folded: 0,
            folded_since: NONE,
            gate_until: spec
                .realert()
                .map_or(NONE, |realert| now.saturating_add(duration_ms(realert))),
            acked_at: NONE,
        }));
        Decision::Alert {
            count_in_window: count,
            since: from_ms(first),
        }
    }

    /// Runs the key's timer at `now`: what it did, and the notice it decided on, if any.
    pub(crate) fn on_timer(
        &mut self,
        spec: &AlertSpec,
        armed_at: i64,
        now: i64,
    ) -> (Fired, Option<NoticeKind>) {
        let base = quiet_base(self.last_active, armed_at);
        let due = |period: Option<Duration>| match period {
            Some(period) if base != NONE => base.saturating_add(duration_ms(period)) <= now,
            _ => false,
        };
        match &mut self.phase {
            Phase::Idle => match spec.absent() {
                Some(absent) if due(Some(absent.for_)) => {
                    let silent_since = if self.last_active != NONE {
                        self.last_active
                    } else {
                        armed_at
                    };
                    let kind = NoticeKind::Absent {
                        last_seen: from_ms_opt(self.last_seen),
                        for_: absent.for_,
                        silent_for: span(silent_since, now),
                    };
                    self.phase = Phase::Absent { silent_since };
                    (Fired::Changed, Some(kind))
                }
                Some(_) => (Fired::Unchanged, None),
                None if due(Some(spec.when().map_or(Duration::ZERO, |w| w.within))) => {
                    (Fired::Remove, None)
                }
                None => (Fired::Unchanged, None),
            },
            Phase::Firing(incident) if due(spec.end_after()) => {
                let kind = match spec.resolve() {
                    Some(resolve) if resolve.notify => Some(NoticeKind::Resolved {
                        first: from_ms(incident.first),
                        last: from_ms(incident.last),
                        duration: span(incident.first, incident.last),
                        total: incident.total,
                        unreported: incident.folded,
                        acked_at: from_ms_opt(incident.acked_at),
                    }),
                    _ if incident.folded > 0 => Some(incident.repeat()),
                    _ => None,
                };
                (Fired::Remove, kind)
            }
            Phase::Firing(incident) => match spec.realert() {
                Some(realert)
                    if incident.gate_until != NONE
                        && incident.gate_until <= now
                        && incident.folded > 0
                        && incident.acked_at == NONE =>
                {
                    let kind = incident.repeat();
                    incident.folded = 0;
                    incident.folded_since = NONE;
                    incident.gate_until = now.saturating_add(duration_ms(realert));
                    (Fired::Changed, Some(kind))
                }
                _ => (Fired::Unchanged, None),
            },
            Phase::Absent { .. } if due(spec.forget_after()) => (Fired::Forget, None),
            Phase::Absent { .. } => (Fired::Unchanged, None),
            Phase::Recovering(recovery) => {
                let kind = NoticeKind::Recovered {
                    last_seen: from_ms_opt(recovery.last_seen),
                    back: from_ms(recovery.back),
                    absent_for: recovery.absent_for,
                };
                self.phase = Phase::Idle;
                (Fired::Changed, Some(kind))
            }
        }
    }

    /// The next time the key has something to do ([`NONE`]: nothing until it changes).
    pub(crate) fn deadline(&self, spec: &AlertSpec, armed_at: i64) -> i64 {
        let base = quiet_base(self.last_active, armed_at);
        let quiet = |period: Option<Duration>| match period {
            Some(period) if base != NONE => base.saturating_add(duration_ms(period)),
            _ => NONE,
        };
        match &self.phase {
            Phase::Idle => match spec.absent() {
                Some(absent) => quiet(Some(absent.for_)),
                None => quiet(Some(spec.when().map_or(Duration::ZERO, |w| w.within))),
            },
            Phase::Firing(incident) => {
                let gate = if incident.acked_at == NONE && incident.folded > 0 {
                    incident.gate_until
                } else {
                    NONE
                };
                match (gate, quiet(spec.end_after())) {
                    (NONE, end) => end,
                    (gate, NONE) => gate,
                    (gate, end) => gate.min(end),
                }
            }
            Phase::Absent { .. } => quiet(spec.forget_after()),
            // Due at once (never NONE, even for a record without a last match).
            Phase::Recovering(_) => self.last_active.max(NONE + 1),
        }
    }

    /// The durable form of the key.
    pub(crate) fn to_record(&self, key: &GroupKey) -> KeyRecord {
        let phase = match &self.phase {
            Phase::Idle => PhaseRecord::Idle,
            Phase::Firing(incident) => PhaseRecord::Firing(IncidentRecord {
                opened_at: from_ms(incident.opened_at),
                first: from_ms(incident.first),
                last: from_ms(incident.last),
                total: incident.total,
                folded: incident.folded,
                folded_since: from_ms_opt(incident.folded_since),
                gate_until: from_ms_opt(incident.gate_until),
                acked_at: from_ms_opt(incident.acked_at),
            }),
            Phase::Absent { silent_since } => PhaseRecord::Absent {
                silent_since: from_ms(*silent_since),
            },
            Phase::Recovering(recovery) => PhaseRecord::Recovering {
                last_seen: from_ms_opt(recovery.last_seen),
                back: from_ms(recovery.back),
                absent_for: recovery.absent_for,
            },
        };
        KeyRecord {
            key: key.clone(),
            window: self.window.iter().map(|t| from_ms(*t)).collect(),
            last_seen: from_ms_opt(self.last_seen),
            last_active: from_ms_opt(self.last_active),
            phase,
        }
    }

    /// The entry of `record` under `spec`, or `None` if it means nothing there (a key without
    /// one value per `group_by` name; a window without `when`; an absence of a rule that is no
    /// longer a heartbeat rule). An incident of a rule that became a heartbeat rule leaves the
    /// key present; a `realert` period of a rule without `realert` is dropped.
    pub(crate) fn from_record(spec: &AlertSpec, record: &KeyRecord) -> Option<Entry> {
        if spec.is_plain() || record.key.len() != spec.group_by().len() {
            return None;
        }
        let mut entry = Entry::new();
        entry.last_seen = to_ms_opt(record.last_seen);
        entry.last_active = to_ms_opt(record.last_active);
        if spec.is_heartbeat() {
            entry.phase = match &record.phase {
                PhaseRecord::Idle | PhaseRecord::Firing(_) => Phase::Idle,
                PhaseRecord::Absent { silent_since } => Phase::Absent {
                    silent_since: to_ms(*silent_since),
                },
                PhaseRecord::Recovering {
                    last_seen,
                    back,
                    absent_for,
                } => Phase::Recovering(Box::new(Recovery {
                    last_seen: to_ms_opt(*last_seen),
                    back: to_ms(*back),
                    absent_for: *absent_for,
                })),
            };
            return Some(entry);
        }
        match &record.phase {
            PhaseRecord::Idle => {
                let count = usize::try_from(spec.when()?.count).unwrap_or(usize::MAX);
                for at in &record.window {
                    insert_sorted(&mut entry.window, to_ms(*at), count);
                }
                if entry.window.is_empty() {
                    return None;
                }
            }
            PhaseRecord::Firing(incident) => {
                entry.phase = Phase::Firing(Box::new(Incident {
                    opened_at: to_ms(incident.opened_at),
                    first: to_ms(incident.first),
                    last: to_ms(incident.last),
                    total: incident.total,
                    folded: incident.folded,
                    folded_since: to_ms_opt(incident.folded_since),
                    gate_until: match spec.realert() {
                        Some(_) => to_ms_opt(incident.gate_until),
                        None => NONE,
                    },
                    acked_at: to_ms_opt(incident.acked_at),
                }));
            }
            PhaseRecord::Absent { .. } | PhaseRecord::Recovering { .. } => return None,
        }
        Some(entry)
    }
}

impl Incident {
    /// A match of the open incident.
    fn on_match(&mut self, spec: &AlertSpec, at: i64, now: i64) -> Decision {
        self.total += 1;
        self.first = self.first.min(at);
        self.last = self.last.max(at);
        // A period runs until its end, and past it while its repeat is due but not polled yet.
        let in_period = self.gate_until != NONE && (now < self.gate_until || self.folded > 0);
        match spec.realert() {
            Some(realert) if self.acked_at == NONE && !in_period => {
                self.gate_until = now.saturating_add(duration_ms(realert));
                Decision::Realert { total: self.total }
            }
            Some(_) if self.acked_at == NONE => {
                self.fold(at);
                Decision::Folded
            }
            _ => {
                self.fold(at);
                Decision::Counted
            }
        }
    }

    /// Acknowledges it at `now`: no more `realert` periods.
    pub(crate) fn ack(&mut self, now: i64) {
        self.acked_at = now;
        self.gate_until = NONE;
    }

    fn fold(&mut self, at: i64) {
        self.folded += 1;
        self.folded_since = if self.folded_since == NONE {
            at
        } else {
            self.folded_since.min(at)
        };
    }

    fn repeat(&self) -> NoticeKind {
        NoticeKind::Repeat {
            folded: self.folded,
            since: from_ms(self.folded_since),
            total: self.total,
        }
    }
}

/// Inserts `at` into the sorted `window`, keeping its `count` latest times. A time older than
/// a full window's oldest cannot change it and is left out.
fn insert_sorted(window: &mut VecDeque<i64>, at: i64, count: usize) {
    if window.len() >= count && window.front().is_some_and(|oldest| at <= *oldest) {
        return;
    }
    if window.capacity() == 0 {
        window.reserve_exact(count.min(16));
    }
    let position = window.partition_point(|t| *t <= at);
    window.insert(position, at);
    while window.len() > count {
        window.pop_front();
    }
}

/// How many times of `window` lie less than `within` before its latest.
fn count_in_window(window: &VecDeque<i64>, within: i64) -> usize {
    let Some(latest) = window.back() else {
        return 0;
    };
    window
        .iter()
        .filter(|t| latest.saturating_sub(**t) < within)
        .count()
}

/// Where quiet periods count from: the last match or the latest catch-up, whichever is later;
/// [`NONE`] while behind.
fn quiet_base(last_active: i64, armed_at: i64) -> i64 {
    if armed_at == NONE {
        NONE
    } else {
        last_active.max(armed_at)
    }
}
