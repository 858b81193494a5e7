//! Silences: "mute rule R where KEY=VALUE until T, because …, said X". A [`SilenceSet`] decides
//! what is muted and counts what it muted, so that the count can be reported once the silence
//! ends ("静默期间 123 次"; the wording is `render`'s).
//!
//! A [`Silence`] is plain data with a short, stable, human-typable [`SilenceId`] (6 characters
//! of Crockford's base 32: `unmute k3x9pa` is easy to type in a chat), so that the shell
//! (`dingtail mute`), the chat (`mute`, issue 16) and other hosts (Redis, issue 15) can create and
//! share the same objects. The set takes the id's random bits from the caller (no randomness, no
//! clock here). Its definitions can be replaced wholesale from a shared source
//! ([`SilenceSet::sync`]) while the counts stay local: a host counts what it muted itself.
//!
//! What is counted: the matches the muted messages would have reported, each exactly once. The
//! daemon asks [`SilenceSet::mute`] only for what is about to be sent — a line the tracker says
//! to send (counting its `count_in_window` for a firing alert, else 1) and a tracker notice
//! ([`SilenceSet::mute_notice`], counting [`crate::alert::NoticeKind::n_matches`] and one notice). Matches the
//! tracker holds (folded, counted, pending) are not asked about: they reach a later notice, which
//! is muted and counted then, or not. Silences thus mute messages, while the tracker still sees
//! every match (an incident muted throughout resolves as it would have, silently; a heartbeat
//! muted throughout keeps its key present).
//!
//! A matcher compares a name's value exactly: a capture or context value for a line; for a
//! notice only its `group_by` labels exist, so a silence naming anything else does not mute
//! notices.
//!
//! Durability follows `alert::record`: [`SilenceSet::changes`] / [`SilenceSet::committed`], and
//! [`SilenceSet::restore`]. An ended silence is removed in the same transaction as the message
//! reporting its count, so the count is reported once.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use crate::alert::notice::Notice;

/// The id of a silence: 6 characters of Crockford's base 32 in lower case (`0-9`, `a-z` without
/// `i`, `l`, `o`, `u`), e.g. `k3x9pa`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SilenceId(String);

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

impl SilenceId {
    /// Characters in an id.
    pub const LEN: usize = 6;

    /// The id made of the low 30 bits of `bits` (the caller draws them at random, and draws
    /// again if [`SilenceSet::add`] finds the id taken).
    pub fn from_bits(bits: u64) -> SilenceId {
        let text = (0..SilenceId::LEN)
            .rev()
            .map(|i| {
                let digit = (bits >> (5 * i)) & 31;
                ALPHABET
                    .get(usize::try_from(digit).unwrap_or(0))
                    .map_or('0', |b| char::from(*b))
            })
            .collect();
        SilenceId(text)
    }

    /// Reads an id as typed: case-insensitive, surrounding spaces ignored, and the letters
    /// people confuse with digits read as those digits (`i`, `l` → 1, `o` → 0).
    pub fn parse(text: &str) -> Option<SilenceId> {
        let text = text.trim();
        if text.chars().count() != SilenceId::LEN {
            return None;
        }
        let mut id = String::with_capacity(SilenceId::LEN);
        for c in text.chars() {
            let c = match c.to_ascii_lowercase() {
                'i' | 'l' => '1',
                'o' => '0',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return None;
            }
            id.push(c);
        }
        Some(SilenceId(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SilenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A silence as asked for (shell or chat), before it gets its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SilenceDraft {
    /// The rule to mute.
    pub rule: String,
    /// `KEY=VALUE` pairs a match (or notice) must all have, on captures or context names.
    pub matchers: Vec<(String, String)>,
    /// From when.
    pub starts: SystemTime,
    /// Until when.
    pub ends: SystemTime,
    /// Why.
    pub reason: String,
    /// Who (a user name or a DingTalk staff id).
    pub author: String,
}

/// Why a silence cannot be made or added.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SilenceError {
    /// No rule named.
    #[error("a silence needs a rule")]
    NoRule,
    /// `ends` not after `starts`.
    #[error("a silence must end after it starts")]
    EndsBeforeStart,
    /// A matcher with an empty name.
    #[error("a matcher needs a name (KEY=VALUE)")]
    EmptyMatcherName,
    /// A name in two matchers.
    #[error("`{name}` is given twice")]
    DuplicateMatcher {
        /// The name.
        name: String,
    },
    /// A text field is too long.
    #[error("the {field} is longer than {max} characters")]
    TooLong {
        /// `reason` or `author`.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// The id is taken (draw another).
    #[error("silence id `{id}` is taken")]
    DuplicateId {
        /// The id.
        id: SilenceId,
    },
}

/// A validated silence. Invariants: a rule is named, `ends > starts`, matcher names are
/// non-empty and distinct, `reason` and `author` are bounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Silence {
    id: SilenceId,
    rule: String,
    matchers: Vec<(String, String)>,
    starts: SystemTime,
    ends: SystemTime,
    reason: String,
    author: String,
    created: SystemTime,
}

impl Silence {
    /// The longest `reason`, in characters.
    pub const MAX_REASON_CHARS: usize = 500;
    /// The longest `author`, in characters.
    pub const MAX_AUTHOR_CHARS: usize = 100;

    /// Checks `draft` and gives it `id`; `created` is when it was asked for.
    ///
    /// # Errors
    /// The first invariant the draft breaks.
    pub fn new(
        id: SilenceId,
        draft: SilenceDraft,
        created: SystemTime,
    ) -> Result<Silence, SilenceError> {
        if draft.rule.trim().is_empty() {
            return Err(SilenceError::NoRule);
        }
        if draft.ends <= draft.starts {
            return Err(SilenceError::EndsBeforeStart);
        }
        for (i, (name, _)) in draft.matchers.iter().enumerate() {
            if name.is_empty() {
                return Err(SilenceError::EmptyMatcherName);
            }
            if draft.matchers.iter().take(i).any(|(n, _)| n == name) {
                return Err(SilenceError::DuplicateMatcher { name: name.clone() });
            }
        }
        if draft.reason.chars().count() > Silence::MAX_REASON_CHARS {
            return Err(SilenceError::TooLong {
                field: "reason",
                max: Silence::MAX_REASON_CHARS,
            });
        }
        if draft.author.chars().count() > Silence::MAX_AUTHOR_CHARS {
            return Err(SilenceError::TooLong {
                field: "author",
                max: Silence::MAX_AUTHOR_CHARS,
            });
        }
        Ok(Silence {
            id,
            rule: draft.rule,
            matchers: draft.matchers,
            starts: draft.starts,
            ends: draft.ends,
            reason: draft.reason,
            author: draft.author,
            created,
        })
    }

    /// Its id.
    pub fn id(&self) -> &SilenceId {
        &self.id
    }

    /// The rule it mutes.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// The `KEY=VALUE` pairs a match must all have.
    pub fn matchers(&self) -> &[(String, String)] {
        &self.matchers
    }

    /// From when.
    pub fn starts(&self) -> SystemTime {
        self.starts
    }

    /// Until when.
    pub fn ends(&self) -> SystemTime {
        self.ends
    }

    /// Why.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Who.
    pub fn author(&self) -> &str {
        &self.author
    }

    /// When it was asked for.
    pub fn created(&self) -> SystemTime {
        self.created
    }

    /// True when it is in force at `now` (`starts <= now < ends`).
    pub fn is_active(&self, now: SystemTime) -> bool {
        self.starts <= now && now < self.ends
    }

    /// True when it mutes something of `rule` with these values at `now`.
    pub fn mutes<'v>(
        &self,
        rule: &str,
        value_of: impl Fn(&str) -> Option<&'v str>,
        now: SystemTime,
    ) -> bool {
        self.rule == rule
            && self.is_active(now)
            && self
                .matchers
                .iter()
                .all(|(name, value)| value_of(name) == Some(value.as_str()))
    }
}

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

/// The records to write since the last commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SilenceChanges {
    /// Records to insert or replace.
    pub upserts: Vec<SilenceRecord>,
    /// Ids of records to delete.
    pub removals: Vec<SilenceId>,
    /// The change counter these changes go up to.
    pub through: u64,
}

impl SilenceChanges {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.removals.is_empty()
    }
}

/// The silences known to this daemon, with what each muted.
#[derive(Clone, Debug, Default)]
pub struct SilenceSet {
    entries: BTreeMap<SilenceId, SilenceRecord>,
    dirty: BTreeMap<SilenceId, u64>,
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
                .map(|record| (record.silence.id.clone(), record))
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
        if self.entries.contains_key(&silence.id) {
            return Err(SilenceError::DuplicateId { id: silence.id });
        }
        let id = silence.id.clone();
        self.entries.insert(
            id.clone(),
            SilenceRecord {
                silence,
                muted: Muted::default(),
            },
        );
        self.mark(&id);
        Ok(())
    }

    /// Removes silence `id` (`unmute ID`), with what it muted.
    pub fn remove(&mut self, id: &SilenceId, now: SystemTime) -> Option<Ended> {
        let record = self.entries.remove(id)?;
        self.mark(id);
        Some(ended(record, EndedBy::Removed, now))
    }

    /// Removes every silence of `rule` (`unmute RULE`), with what each muted.
    pub fn remove_rule(&mut self, rule: &str, now: SystemTime) -> Vec<Ended> {
        self.remove_where(|silence| silence.rule == rule, EndedBy::Removed, now)
    }

    /// Removes the silences whose time is up at `now`, with what each muted.
    pub fn expire(&mut self, now: SystemTime) -> Vec<Ended> {
        self.remove_where(|silence| silence.ends <= now, EndedBy::Expired, now)
    }

    /// Makes the definitions equal `shared` (the state database's table, which `dingtail mute`
    /// writes, or Redis): new ones are added, changed ones replaced (their counts kept), and the
    /// ones `shared` lacks end as removed.
    pub fn sync(&mut self, shared: Vec<Silence>, now: SystemTime) -> Vec<Ended> {
        let gone: Vec<SilenceId> = self
            .entries
            .keys()
            .filter(|id| !shared.iter().any(|s| &s.id == *id))
            .cloned()
            .collect();
        let ended = gone.iter().filter_map(|id| self.remove(id, now)).collect();
        for silence in shared {
            let id = silence.id.clone();
            match self.entries.get_mut(&id) {
                Some(record) if record.silence == silence => {}
                Some(record) => {
                    record.silence = silence;
                    self.mark(&id);
                }
                None => {
                    let muted = Muted::default();
                    self.entries
                        .insert(id.clone(), SilenceRecord { silence, muted });
                    self.mark(&id);
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
            .max_by(|a, b| a.ends.cmp(&b.ends).then_with(|| b.id.cmp(&a.id)))
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
        let id = self.matching(rule, value_of, now)?.id.clone();
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
        let id = self.matching(&notice.rule, value_of, notice.at)?.id.clone();
        self.count(&id, notice.kind.n_matches(), 1, notice.at);
        Some(id)
    }

    /// Every silence with what it muted, ending soonest first (`dingtail mutes`, chat `mutes`).
    pub fn list(&self) -> Vec<&SilenceRecord> {
        let mut records: Vec<&SilenceRecord> = self.entries.values().collect();
        records
            .sort_by(|a, b| (a.silence.ends, &a.silence.id).cmp(&(b.silence.ends, &b.silence.id)));
        records
    }

    /// The silence `id`, with what it muted.
    pub fn get(&self, id: &SilenceId) -> Option<&SilenceRecord> {
        self.entries.get(id)
    }

    /// When [`SilenceSet::expire`] next has something to do.
    pub fn next_deadline(&self) -> Option<SystemTime> {
        self.entries
            .values()
            .map(|record| record.silence.ends)
            .min()
    }

    /// The records changed since the last [`SilenceSet::committed`].
    pub fn changes(&self) -> SilenceChanges {
        let mut changes = SilenceChanges {
            through: self.seq,
            ..SilenceChanges::default()
        };
        for id in self.dirty.keys() {
            match self.entries.get(id) {
                Some(record) => changes.upserts.push(record.clone()),
                None => changes.removals.push(id.clone()),
            }
        }
        changes
    }

    /// Records that `changes` were committed.
    pub fn committed(&mut self, changes: &SilenceChanges) {
        self.dirty.retain(|_, seq| *seq > changes.through);
    }

    fn count(&mut self, id: &SilenceId, n_matches: u64, n_notices: u64, now: SystemTime) {
        if let Some(record) = self.entries.get_mut(id) {
            let muted = &mut record.muted;
            muted.matches = muted.matches.saturating_add(n_matches);
            muted.notices = muted.notices.saturating_add(n_notices);
            muted.first = Some(muted.first.map_or(now, |first| first.min(now)));
            muted.last = Some(muted.last.map_or(now, |last| last.max(now)));
            self.mark(id);
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
            .map(|record| record.silence.id.clone())
            .collect();
        ids.iter()
            .filter_map(|id| {
                let record = self.entries.remove(id)?;
                self.mark(id);
                Some(ended(record, by, now))
            })
            .collect()
    }

    fn mark(&mut self, id: &SilenceId) {
        self.seq += 1;
        self.dirty.insert(id.clone(), self.seq);
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

    use crate::alert::silence::{
        EndedBy, Silence, SilenceDraft, SilenceError, SilenceId, SilenceSet,
    };
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
    fn ids_are_short_typable_and_read_leniently() {
        let id = SilenceId::from_bits(0x2a5f_93c1);
        assert_eq!(id.as_str().len(), 6);
        assert_eq!(SilenceId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(
            SilenceId::parse(&format!(" {} ", id.as_str().to_uppercase())),
            Some(id)
        );
        assert_eq!(SilenceId::from_bits(0).as_str(), "000000");
        assert_eq!(SilenceId::from_bits(31).as_str(), "00000z");
        // Letters people confuse with digits read as the digits.
        assert_eq!(SilenceId::parse("O1lIab"), SilenceId::parse("0111ab"));
        assert_eq!(SilenceId::parse("0111ab").unwrap().as_str(), "0111ab");
        assert_eq!(SilenceId::parse("abcdu0"), None, "u is not in the alphabet");
        assert_eq!(SilenceId::parse("abc"), None);
        assert_eq!(SilenceId::parse("abcdéf"), None);
        // Distinct bits give distinct ids over the 30 bits used.
        let ids: std::collections::BTreeSet<String> = (0..1000u64)
            .map(|i| SilenceId::from_bits(i * 1_000_003).to_string())
            .collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn drafts_are_checked() {
        let id = || SilenceId::from_bits(1);
        let bad = |d: SilenceDraft| Silence::new(id(), d, t(0)).unwrap_err();
        assert_eq!(bad(draft(" ", &[], 0, 10)), SilenceError::NoRule);
        assert_eq!(bad(draft("r", &[], 10, 10)), SilenceError::EndsBeforeStart);
        assert_eq!(
            bad(draft("r", &[("", "x")], 0, 10)),
            SilenceError::EmptyMatcherName
        );
        assert_eq!(
            bad(draft("r", &[("ip", "1"), ("ip", "2")], 0, 10)),
            SilenceError::DuplicateMatcher { name: "ip".into() }
        );
        let mut long = draft("r", &[], 0, 10);
        long.reason = "x".repeat(501);
        assert!(matches!(
            bad(long),
            SilenceError::TooLong {
                field: "reason",
                ..
            }
        ));
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
        assert_eq!(changes.upserts.len(), 1);
        set.mute("r", values(&[]), 1, t(1));
        set.committed(&changes);
        let next = set.changes();
        assert_eq!(
            next.upserts[0].muted.matches, 1,
            "the count moved after the take"
        );
        set.committed(&next);
        assert!(set.changes().is_empty());
        let restored = SilenceSet::restore(next.upserts);
        assert_eq!(restored.list().len(), 1);
        assert!(restored.changes().is_empty());
    }
}
