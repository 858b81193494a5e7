//! The matches of `scope: cluster` keys that Redis does not have yet, kept in the state
//! database with the lines they came from: the [`ThresholdBook`]'s changes/committed handshake,
//! in the shape of the `Tracker`'s, and its restore after a restart.
//!
//! They travel as [`KeyRecord`]s in the alert-key table under a reserved rule name
//! ([`pending_rule`]: no rule name can start with a control character), so that `state` needs
//! nothing new: a record's incident `total` is the count not yet in Redis and its `last_active`
//! when the oldest of them was seen (timer clock: a count older than the window is dropped).

use crate::alert::{GroupKey, IncidentRecord, KeyRecord, PhaseRecord, TrackerChanges};
use crate::cluster::threshold::{KeyState, ThresholdBook, from_ms, ms};

/// The prefix of the reserved rule names.
const PREFIX: &str = "\u{1}cluster:";

/// The reserved rule name under which `rule`'s counts not yet in Redis are stored.
pub fn pending_rule(rule: &str) -> String {
    format!("{PREFIX}{rule}")
}

/// True for a name made by [`pending_rule`].
pub fn is_pending_rule(name: &str) -> bool {
    name.starts_with(PREFIX)
}

/// What the book writes with a commit: per reserved rule name, the keys' records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeChanges {
    /// (reserved rule name, its changes).
    pub rules: Vec<(String, TrackerChanges)>,
    /// The change counter they go up to.
    pub through: u64,
}

impl ThresholdBook {
    /// The counts changed since the last [`ThresholdBook::committed`] (a key whose count is
    /// now 0 is a removal). Taking them changes nothing.
    pub fn changes(&self) -> ScopeChanges {
        let mut rules: Vec<(String, TrackerChanges)> = self
            .dirty
            .iter()
            .filter(|(_, keys)| !keys.is_empty())
            .map(|(rule, keys)| {
                let mut changes = TrackerChanges::default();
                for key in keys.keys() {
                    let entry = self.rules.get(rule).and_then(|state| state.keys.get(key));
                    match entry.map(durable_count).filter(|n| *n > 0) {
                        Some(n) => changes.upserts.push(record(key, n, entry)),
                        None => changes.removals.push(key.clone()),
                    }
                }
                changes.upserts.sort_by(|a, b| a.key.cmp(&b.key));
                changes.removals.sort();
                changes.through = self.seq;
                (pending_rule(rule), changes)
            })
            .collect();
        rules.sort_by(|a, b| a.0.cmp(&b.0));
        ScopeChanges {
            rules,
            through: self.seq,
        }
    }

    /// `changes` were committed: keys not changed since are clean.
    pub fn committed(&mut self, changes: &ScopeChanges) {
        for keys in self.dirty.values_mut() {
            keys.retain(|_, seq| *seq > changes.through);
        }
        self.dirty.retain(|_, keys| !keys.is_empty());
    }

    /// Marks every key to be written again (the store was replaced by a fresh one).
    pub fn mark_all_changed(&mut self) {
        let keys: Vec<(String, GroupKey)> = self
            .rules
            .iter()
            .flat_map(|(rule, state)| state.keys.keys().map(|key| (rule.clone(), key.clone())))
            .collect();
        for (rule, key) in keys {
            self.mark(&rule, &key);
        }
    }

    /// Takes back the counts stored for `rule` (a rule of the book) before a restart: they go
    /// to Redis with the next exchange.
    pub fn restore(&mut self, rule: &str, records: Vec<KeyRecord>) {
        let Some(state) = self.rules.get_mut(rule) else {
            return;
        };
        for record in records {
            let PhaseRecord::Firing(incident) = &record.phase else {
                continue;
            };
            if incident.total == 0 {
                continue;
            }
            let entry = state
                .keys
                .entry(record.key.clone())
                .or_insert_with(KeyState::new);
            entry.pending += incident.total;
            entry.pending_since = record.last_active.map_or(0, ms);
        }
    }
}

/// Matches of the key that Redis may not have: pending, and those of an exchange under way.
fn durable_count(entry: &KeyState) -> u64 {
    entry.pending + entry.in_flight
}

fn record(key: &GroupKey, n: u64, entry: Option<&KeyState>) -> KeyRecord {
    let since = from_ms(entry.map_or(0, |e| e.pending_since));
    KeyRecord {
        key: key.clone(),
        window: Vec::new(),
        last_seen: None,
        last_active: Some(since),
        phase: PhaseRecord::Firing(IncidentRecord {
            opened_at: since,
            first: since,
            last: since,
            total: n,
            folded: 0,
            folded_since: None,
            gate_until: None,
            acked_at: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::cluster::threshold::{Answer, ScopeRule, State};

    fn book() -> ThresholdBook {
        let mut book = ThresholdBook::new();
        book.set_rules([(
            "r".to_string(),
            ScopeRule {
                count: 10,
                within: Duration::from_secs(60),
                realert: None,
                end_after: Duration::from_secs(60),
                notify: true,
                group_by: Vec::new(),
                max_groups: 100,
            },
        )]);
        book
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn stored(changes: &ScopeChanges) -> Vec<(String, u64)> {
        changes
            .rules
            .iter()
            .flat_map(|(rule, c)| {
                c.upserts.iter().map(move |r| match &r.phase {
                    PhaseRecord::Firing(i) => (rule.clone(), i.total),
                    _ => (rule.clone(), 0),
                })
            })
            .collect()
    }

    #[test]
    fn counts_not_in_redis_are_stored_until_an_exchange_takes_them_and_come_back_after_a_restart() {
        let mut book = book();
        let key = GroupKey::empty();
        book.on_match("r", &key, at(0));
        book.on_match("r", &key, at(0));
        let changes = book.changes();
        assert_eq!(stored(&changes), vec![(pending_rule("r"), 2)]);
        assert!(is_pending_rule(&changes.rules[0].0));
        assert!(!is_pending_rule("r"));
        book.committed(&changes);
        assert!(book.changes().rules.is_empty());
        // Under way to Redis: still stored (a crash now counts them again after the restart).
        book.take_steps(at(1)).unwrap();
        assert!(book.changes().rules.is_empty());
        // A restart from what was stored.
        let mut again = self::book();
        again.restore("r", changes.rules[0].1.upserts.clone());
        let steps = again.take_steps(at(2)).unwrap();
        assert_eq!(steps[0].n, 2);
        assert!(
            !steps[0].claim,
            "no line kept: it counts, but cannot open the incident"
        );
        // Redis has them: the stored count goes.
        let answer = Answer {
            state: State::Below,
            sum: 2,
            first_ms: 0,
            total: 0,
            reported: 0,
            last_ms: 0,
            now_ms: 0,
        };
        book.on_answers(Some(vec![answer]), at(1));
        let changes = book.changes();
        assert_eq!(changes.rules[0].1.removals, vec![key]);
        assert!(changes.rules[0].1.upserts.is_empty());
        book.committed(&changes);
        assert!(book.changes().rules.is_empty());
    }

    #[test]
    fn steps_that_only_tend_an_incident_write_nothing() {
        let mut book = book();
        let key = GroupKey::empty();
        book.on_match("r", &key, at(0));
        book.take_steps(at(0)).unwrap();
        let claimed = Answer {
            state: State::Claimed,
            sum: 10,
            first_ms: 0,
            total: 10,
            reported: 10,
            last_ms: 0,
            now_ms: 0,
        };
        book.on_answers(Some(vec![claimed]), at(0));
        let changes = book.changes();
        book.committed(&changes);
        let tend = book.take_steps(at(1)).unwrap();
        assert_eq!(tend[0].n, 0);
        let mine = Answer {
            state: State::Mine,
            ..claimed
        };
        book.on_answers(Some(vec![mine]), at(1));
        assert!(
            book.changes().rules.is_empty(),
            "no write a second per open incident"
        );
    }
}
