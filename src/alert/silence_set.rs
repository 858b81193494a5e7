//! `SilenceSet`: the silences known to this daemon; it decides what is muted and counts what it
//! muted, so that the count can be reported once a silence ends ("静默期间 123 次"; the wording
//! is `render`'s).
//!
//! What is counted: the matches the muted messages would have reported, each exactly once. The
//! daemon asks [`SilenceSet::mute`] only for what is about to be sent — a line the tracker says
//! to send (counting its `count_in_window` for a firing alert, else 1) — and
//! [`SilenceSet::mute_notice`] for a tracker notice (counting
//! [`crate::alert::NoticeKind::n_matches`] and one notice). Matches the tracker holds (folded,
//! counted, pending) are not asked about: they reach a later notice, which is muted and counted
//! then, or not. Silences thus mute messages, while the tracker still sees every match (an
//! incident muted throughout resolves as it would have, silently; a heartbeat muted throughout
//! keeps its key present). Of several silences that mute the same thing, one counts it.
//!
//! Definitions can be replaced wholesale from a shared source ([`SilenceSet::sync`]: the state
//! table that `dingtail mute` writes, or Redis) while the counts stay local: a host counts what
//! it muted itself. Durability follows `alert::record`: [`SilenceSet::changes`] /
//! [`SilenceSet::committed`], and [`SilenceSet::restore`]; the changes keep definitions (written
//! only for silences made here) apart from counts, so that a count never brings back a definition
//! someone else deleted. An ended silence is removed in the same transaction as the message
//! reporting its count, so the count is reported once.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::alert::notice::Notice;
use crate::alert::silence::{Silence, SilenceError, SilenceId};

/// What a silence muted so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Muted {
    /// Matches the muted messages would have reported.
    pub matches: u64,
    /// Tracker notices muted (repeats, resolutions, absences, recoveries).
    pub notices: u64,
    /// When the first was muted.
    pub first: Option<SystemTime>,
    /// When the latest was muted.
    pub last: Option<SystemTime>,
}

/// How a silence ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndedBy {
    /// Its time was up.
    Expired,
    /// Someone removed it (`unmute`), or a shared source no longer has it.
    Removed,
}

/// A silence that ended, with what it muted: the daemon reports it once (a silence that muted
/// nothing may go unreported) and commits the removal with that message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// The silence.
    pub silence: Silence,
    /// What it muted.
    pub muted: Muted,
    /// How it ended.
    pub by: EndedBy,
    /// When (timer clock).
    pub at: SystemTime,
}

/// The durable form of one silence with its local counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SilenceRecord {
    /// The silence.
    pub silence: Silence,
    /// What it muted on this host.
    pub muted: Muted,
}

/// What to write since the last commit. Definitions and counts are apart so that this daemon
/// never rewrites a definition it did not make: the shell's `dingtail unmute` (or another host)
/// may delete one at any time, and a count written alongside must not bring it back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SilenceChanges {
    /// Silences made through [`SilenceSet::add`] here (chat): their definitions to insert.
    pub added: Vec<Silence>,
    /// Counts that moved, to insert or replace (the counts table only this daemon writes),
    /// each with the definition it counts for, so that a count outlives a definition deleted
    /// meanwhile (it is still reported when this daemon learns the silence is gone).
    pub counts: Vec<SilenceRecord>,
    /// Silences that ended here (expired, unmuted, or gone from the shared source): their
    /// definitions and counts to delete.
    pub removals: Vec<SilenceId>,
    /// The change counter these changes go up to.
    pub through: u64,
}

impl SilenceChanges {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.counts.is_empty() && self.removals.is_empty()
    }
}

/// A silence changed since the last commit.
#[derive(Clone, Copy, Debug)]
struct Dirty {
    /// The change counter of its latest change.
    seq: u64,
    /// The change counter at which its definition was made here, if that is not stored yet.
    added: Option<u64>,
}

/// The silences known to this daemon, with what each muted.
#[derive(Clone, Debug, Default)]
pub struct SilenceSet {
    entries: BTreeMap<SilenceId, SilenceRecord>,
    dirty: BTreeMap<SilenceId, Dirty>,
    seq: u64,
}

impl SilenceSet {
    /// An empty set.
    pub fn new() -> SilenceSet {
        SilenceSet::default()
    }

    /// A set holding `records` (what `state` stored).
    pub fn restore(records: Vec<SilenceRecord>) -> SilenceSet {
        SilenceSet {
            entries: records
                .into_iter()
                .map(|record| (record.silence.id().clone(), record))
                .collect(),
            dirty: BTreeMap::new(),
            seq: 0,
        }
    }

    /// Adds `silence`.
    ///
    /// # Errors
    /// [`SilenceError::DuplicateId`]: another silence has its id (draw another).
    pub fn add(&mut self, silence: Silence) -> Result<(), SilenceError> {
        if self.entries.contains_key(silence.id()) {
            return Err(SilenceError::DuplicateId {
                id: silence.id().clone(),
            });
        }
        let id = silence.id().clone();
        self.entries.insert(
            id.clone(),
            SilenceRecord {
                silence,
                muted: Muted::default(),
            },
        );
        self.mark(&id, true);
        Ok(())
    }

    /// Removes silence `id` (`unmute ID`), with what it muted.
    pub fn remove(&mut self, id: &SilenceId, now: SystemTime) -> Option<Ended> {
        let record = self.entries.remove(id)?;
        self.mark(id, false);
        Some(ended(record, EndedBy::Removed, now))
    }

    /// Removes every silence of `rule` (`unmute RULE`), with what each muted.
    pub fn remove_rule(&mut self, rule: &str, now: SystemTime) -> Vec<Ended> {
        self.remove_where(|silence| silence.rule() == rule, EndedBy::Removed, now)
    }

    /// Removes the silences whose time is up at `now`, with what each muted.
    pub fn expire(&mut self, now: SystemTime) -> Vec<Ended> {
        self.remove_where(|silence| silence.ends() <= now, EndedBy::Expired, now)
    }

    /// Makes the definitions equal `shared` (the state database's table, which `dingtail mute`
    /// writes, or Redis): new ones are added, changed ones replaced (their counts kept), and the
    /// ones `shared` lacks end as removed.
    pub fn sync(&mut self, shared: Vec<Silence>, now: SystemTime) -> Vec<Ended> {
        let gone: Vec<SilenceId> = self
            .entries
            .keys()
            .filter(|id| !shared.iter().any(|s| s.id() == *id))
            .cloned()
            .collect();
        let ended = gone.iter().filter_map(|id| self.remove(id, now)).collect();
        for silence in shared {
            let id = silence.id().clone();
            match self.entries.get_mut(&id) {
                Some(record) if record.silence == silence => {}
                // The source holds the definition: nothing to write here.
                Some(record) => record.silence = silence,
                None => {
                    let muted = Muted::default();
                    self.entries.insert(id, SilenceRecord { silence, muted });
                }
            }
        }
        ended
    }

    /// The silence that mutes something of `rule` with these values at `now`, if any (of
    /// several, the one ending last, then the lowest id, so that a muted match is counted in one
    /// silence only).
    pub fn matching<'v>(
        &self,
        rule: &str,
        value_of: impl Fn(&str) -> Option<&'v str>,
        now: SystemTime,
    ) -> Option<&Silence> {
        self.entries
            .values()
            .map(|record| &record.silence)
            .filter(|silence| silence.mutes(rule, &value_of, now))
            .max_by(|a, b| a.ends().cmp(&b.ends()).then_with(|| b.id().cmp(a.id())))
    }

    /// If a silence mutes a line of `rule` with these values at `now`, counts `n_matches` (the
    /// line's `count_in_window` for a firing alert, else 1) in it and returns its id: the line
    /// is not sent.
    pub fn mute<'v>(
        &mut self,
        rule: &str,
        value_of: impl Fn(&str) -> Option<&'v str>,
        n_matches: u64,
        now: SystemTime,
    ) -> Option<SilenceId> {
        let id = self.matching(rule, value_of, now)?.id().clone();
        self.count(&id, n_matches, 0, now);
        Some(id)
    }

    /// If a silence mutes `notice` (on its `group_by` labels) at its time, counts it and the
    /// matches it reports in that silence and returns its id: the notice is not sent.
    pub fn mute_notice(&mut self, notice: &Notice) -> Option<SilenceId> {
        let value_of = |name: &str| {
            notice
                .labels
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let id = self
            .matching(&notice.rule, value_of, notice.at)?
            .id()
            .clone();
        self.count(&id, notice.kind.n_matches(), 1, notice.at);
        Some(id)
    }

    /// Every silence with what it muted, ending soonest first (`dingtail mutes`, chat `mutes`).
    pub fn list(&self) -> Vec<&SilenceRecord> {
        let mut records: Vec<&SilenceRecord> = self.entries.values().collect();
        records.sort_by(|a, b| {
            (a.silence.ends(), a.silence.id()).cmp(&(b.silence.ends(), b.silence.id()))
        });
        records
    }

    /// The silence `id`, with what it muted.
    pub fn get(&self, id: &SilenceId) -> Option<&SilenceRecord> {
        self.entries.get(id)
    }

    /// How many silences it knows.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when it knows no silence (nothing can be muted).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Marks every silence to be written again, definitions included (the store was replaced
    /// by a fresh one).
    pub fn mark_all_changed(&mut self) {
        let ids: Vec<SilenceId> = self.entries.keys().cloned().collect();
        for id in &ids {
            self.mark(id, true);
        }
    }

    /// When [`SilenceSet::expire`] next has something to do.
    pub fn next_deadline(&self) -> Option<SystemTime> {
        self.entries
            .values()
            .map(|record| record.silence.ends())
            .min()
    }

    /// The records changed since the last [`SilenceSet::committed`].
    pub fn changes(&self) -> SilenceChanges {
        let mut changes = SilenceChanges {
            through: self.seq,
            ..SilenceChanges::default()
        };
        for (id, dirty) in &self.dirty {
            match self.entries.get(id) {
                Some(record) => {
                    if dirty.added.is_some() {
                        changes.added.push(record.silence.clone());
                    }
                    changes.counts.push(record.clone());
                }
                None => changes.removals.push(id.clone()),
            }
        }
        changes
    }

    /// Records that `changes` were committed.
    pub fn committed(&mut self, changes: &SilenceChanges) {
        self.dirty.retain(|_, dirty| {
            if dirty.added.is_some_and(|at| at <= changes.through) {
                dirty.added = None;
            }
            dirty.seq > changes.through
        });
    }

    fn count(&mut self, id: &SilenceId, n_matches: u64, n_notices: u64, now: SystemTime) {
        if let Some(record) = self.entries.get_mut(id) {
            let muted = &mut record.muted;
            muted.matches = muted.matches.saturating_add(n_matches);
            muted.notices = muted.notices.saturating_add(n_notices);
            muted.first = Some(muted.first.map_or(now, |first| first.min(now)));
            muted.last = Some(muted.last.map_or(now, |last| last.max(now)));
            self.mark(id, false);
        }
    }

    fn remove_where(
        &mut self,
        doomed: impl Fn(&Silence) -> bool,
        by: EndedBy,
        now: SystemTime,
    ) -> Vec<Ended> {
        let ids: Vec<SilenceId> = self
            .entries
            .values()
            .filter(|record| doomed(&record.silence))
            .map(|record| record.silence.id().clone())
            .collect();
        ids.iter()
            .filter_map(|id| {
                let record = self.entries.remove(id)?;
                self.mark(id, false);
                Some(ended(record, by, now))
            })
            .collect()
    }

    /// Notes a change of `id`; `added`: its definition was made here.
    fn mark(&mut self, id: &SilenceId, added: bool) {
        self.seq += 1;
        let seq = self.seq;
        let added = added.then_some(seq);
        let dirty = self.dirty.entry(id.clone()).or_insert(Dirty { seq, added });
        dirty.seq = seq;
        dirty.added = dirty.added.or(added);
    }
}

fn ended(record: SilenceRecord, by: EndedBy, at: SystemTime) -> Ended {
    Ended {
        silence: record.silence,
        muted: record.muted,
        by,
        at,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use crate::alert::silence::{Silence, SilenceDraft, SilenceId};
    use crate::alert::silence_set::{EndedBy, SilenceSet};
    use crate::alert::{GroupKey, Notice, NoticeKind};

    fn t(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
    }

    fn draft(rule: &str, matchers: &[(&str, &str)], starts: u64, ends: u64) -> SilenceDraft {
        SilenceDraft {
            rule: rule.into(),
            matchers: matchers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            starts: t(starts),
            ends: t(ends),
            reason: "deploy".into(),
            author: "zhang.san".into(),
        }
    }

    fn silence(bits: u64, rule: &str, matchers: &[(&str, &str)], ends: u64) -> Silence {
        Silence::new(
            SilenceId::from_bits(bits),
            draft(rule, matchers, 0, ends),
            t(0),
        )
        .unwrap()
    }

    fn values<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    #[test]
    fn muted_matches_are_counted_and_reported_once_when_the_silence_ends() {
        let mut set = SilenceSet::new();
        set.add(silence(1, "nginx-5xx", &[("host", "web-1")], 3600))
            .unwrap();
        let web1 = [("host", "web-1"), ("status", "502")];
        let web2 = [("host", "web-2"), ("status", "502")];
        for i in 0..120 {
            assert!(set.mute("nginx-5xx", values(&web1), 1, t(10 + i)).is_some());
        }
        // A firing alert of a threshold rule reports its whole window.
        assert!(set.mute("nginx-5xx", values(&web1), 3, t(200)).is_some());
        assert!(
            set.mute("nginx-5xx", values(&web2), 1, t(10)).is_none(),
            "another host"
        );
        assert!(
            set.mute("other", values(&web1), 1, t(10)).is_none(),
            "another rule"
        );
        assert!(
            set.mute("nginx-5xx", values(&web1), 1, t(3600)).is_none(),
            "ended"
        );
        assert!(set.expire(t(3599)).is_empty());
        let ended = set.expire(t(3600));
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].muted.matches, 123);
        assert_eq!(ended[0].muted.first, Some(t(10)));
        assert_eq!(ended[0].muted.last, Some(t(200)));
        assert_eq!(ended[0].by, EndedBy::Expired);
        assert!(set.expire(t(9999)).is_empty(), "reported once");
        assert!(set.list().is_empty(), "cleaned up");
        assert_eq!(set.changes().removals, [SilenceId::from_bits(1)]);
    }

    #[test]
    fn a_silence_mutes_only_between_its_start_and_end() {
        let mut set = SilenceSet::new();
        let later = Silence::new(SilenceId::from_bits(2), draft("r", &[], 100, 200), t(0)).unwrap();
        set.add(later).unwrap();
        assert!(set.mute("r", values(&[]), 1, t(99)).is_none());
        assert!(set.mute("r", values(&[]), 1, t(100)).is_some());
        assert_eq!(set.next_deadline(), Some(t(200)));
    }

    #[test]
    fn overlapping_silences_count_a_match_once() {
        let mut set = SilenceSet::new();
        set.add(silence(1, "r", &[], 100)).unwrap();
        set.add(silence(2, "r", &[("ip", "1.2.3.4")], 500)).unwrap();
        let ip = [("ip", "1.2.3.4")];
        assert_eq!(
            set.mute("r", values(&ip), 1, t(10)),
            Some(SilenceId::from_bits(2))
        );
        assert_eq!(
            set.mute("r", values(&[]), 1, t(10)),
            Some(SilenceId::from_bits(1))
        );
        let total: u64 = set.list().iter().map(|r| r.muted.matches).sum();
        assert_eq!(total, 2);
        assert!(
            set.add(silence(1, "x", &[], 100)).is_err(),
            "an id is taken once"
        );
    }

    #[test]
    fn notices_are_muted_on_their_group_by_labels_only() {
        let mut set = SilenceSet::new();
        set.add(silence(1, "r", &[("ip", "1.2.3.4")], 1000))
            .unwrap();
        set.add(silence(2, "r", &[("path", "/x")], 1000)).unwrap();
        let notice = |ip: &str| Notice {
            rule: "r".into(),
            key: GroupKey::new([ip]),
            labels: vec![("ip".into(), ip.into())],
            at: t(50),
            kind: NoticeKind::Repeat {
                folded: 37,
                since: t(10),
                total: 40,
            },
        };
        assert_eq!(
            set.mute_notice(&notice("1.2.3.4")),
            Some(SilenceId::from_bits(1))
        );
        assert_eq!(set.mute_notice(&notice("5.6.7.8")), None);
        let muted = set.get(&SilenceId::from_bits(1)).unwrap().muted;
        assert_eq!((muted.matches, muted.notices), (37, 1));
    }

    #[test]
    fn unmute_by_id_or_rule_and_sync_report_what_was_muted() {
        let mut set = SilenceSet::new();
        set.add(silence(1, "a", &[], 1000)).unwrap();
        set.add(silence(2, "a", &[("ip", "1")], 1000)).unwrap();
        set.add(silence(3, "b", &[], 1000)).unwrap();
        set.mute("b", values(&[]), 5, t(1));
        let ended = set.remove(&SilenceId::from_bits(3), t(2)).unwrap();
        assert_eq!((ended.muted.matches, ended.by), (5, EndedBy::Removed));
        assert!(set.remove(&SilenceId::from_bits(3), t(2)).is_none());
        assert_eq!(set.remove_rule("a", t(3)).len(), 2);
        assert!(set.list().is_empty());
        // A shared source (the state table `dingtail mute` writes, or Redis) is the truth.
        set.add(silence(4, "c", &[], 1000)).unwrap();
        set.add(silence(5, "c", &[], 1000)).unwrap();
        set.mute("c", values(&[]), 7, t(4));
        let counted = set
            .list()
            .iter()
            .find(|r| r.muted.matches == 7)
            .unwrap()
            .silence
            .clone();
        let extended = Silence::new(counted.id().clone(), draft("c", &[], 0, 5000), t(0)).unwrap();
        let ended = set.sync(vec![extended.clone(), silence(6, "d", &[], 1000)], t(5));
        assert_eq!(ended.len(), 1, "the one the source lacks ended");
        let kept = set.get(counted.id()).unwrap();
        assert_eq!((kept.silence.ends(), kept.muted.matches), (t(5000), 7));
        assert!(set.get(&SilenceId::from_bits(6)).is_some());
    }

    #[test]
    fn changes_are_committed_like_the_tracker_s() {
        let mut set = SilenceSet::new();
        set.add(silence(1, "r", &[], 100)).unwrap();
        let changes = set.changes();
        assert_eq!(
            changes.added.len(),
            1,
            "made here: its definition is written"
        );
        assert_eq!(changes.counts.len(), 1);
        set.mute("r", values(&[]), 1, t(1));
        set.committed(&changes);
        let next = set.changes();
        assert!(next.added.is_empty(), "the definition is stored");
        assert_eq!(
            next.counts[0].muted.matches, 1,
            "the count moved after the take"
        );
        set.committed(&next);
        assert!(set.changes().is_empty());
        // Definitions from the shared source are never written back, only counts.
        set.sync(
            vec![silence(1, "r", &[], 100), silence(2, "r", &[], 200)],
            t(2),
        );
        assert!(set.changes().is_empty());
        set.mute("r", values(&[]), 1, t(3));
        let counts = set.changes();
        assert!(counts.added.is_empty());
        assert_eq!(counts.counts.len(), 1);
        set.committed(&counts);
        let restored = SilenceSet::restore(set.list().into_iter().cloned().collect());
        assert_eq!(restored.list().len(), 2);
        assert!(restored.changes().is_empty());
    }
}
