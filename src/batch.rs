//! `Batch`: what one robot has not been told yet, kept aggregated so that a robot unreachable for
//! a day costs bounded memory and disk: per rule an exact count, first and last time, the hosts and
//! files involved, and a few distinct samples. Counts are never approximated; only samples, hosts
//! and files are bounded (with the number left out kept exactly).
//!
//! Pure: no I/O, no clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use crate::event::{Mentions, Severity};

/// How many distinct samples a rule keeps per batch.
pub const MAX_SAMPLES: usize = 5;
/// How many matches of a rule may be rendered per batch in search of distinct samples.
pub const MAX_SAMPLE_RENDERS: u32 = 4 * MAX_SAMPLES as u32;

/// One kept example of a rule's matches, already rendered with the rule's templates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The raw line (or multi-line event), used to keep samples distinct.
    pub line: String,
    /// The rule's title rendered for this match.
    pub title: String,
    /// The rule's template rendered for this match.
    pub text: String,
    /// When the line was read.
    pub at: SystemTime,
}

/// What a rule contributed to a batch. Equality ignores `n_renders`, which is bookkeeping.
#[derive(Clone, Debug)]
pub struct RuleBatch {
    /// The rule's name.
    pub rule: String,
    /// Its severity.
    pub severity: Severity,
    /// Exactly how many matches.
    pub count: u64,
    /// The first match's time.
    pub first_seen: SystemTime,
    /// The last match's time.
    pub last_seen: SystemTime,
    /// Hosts seen (bounded by the hosts that feed this daemon).
    pub hosts: BTreeSet<String>,
    /// Files seen (bounded by the files watched, not by the matches); a summary lists a few and
    /// says how many more.
    pub files: BTreeSet<String>,
    /// Distinct samples, at most `MAX_SAMPLES`, oldest first.
    pub samples: Vec<Sample>,
    /// The rule's mentions.
    pub mentions: Mentions,
    /// Renders spent looking for distinct samples (bounded, so that a flood of lines that render
    /// alike costs a count, not a render each). Not persisted.
    pub n_renders: u32,
}

impl PartialEq for RuleBatch {
    fn eq(&self, other: &RuleBatch) -> bool {
        self.rule == other.rule
            && self.severity == other.severity
            && self.count == other.count
            && self.first_seen == other.first_seen
            && self.last_seen == other.last_seen
            && self.hosts == other.hosts
            && self.files == other.files
            && self.samples == other.samples
            && self.mentions == other.mentions
    }
}

impl Eq for RuleBatch {}

/// One match as the batcher sees it.
#[derive(Clone, Copy, Debug)]
pub struct Hit<'a> {
    /// The rule that matched.
    pub rule: &'a str,
    /// The rule's severity.
    pub severity: Severity,
    /// The matched line (or event).
    pub line: &'a str,
    /// The file it came from.
    pub file: &'a str,
    /// The host it was seen on.
    pub host: &'a str,
    /// When it was read.
    pub at: SystemTime,
    /// The rule's mentions.
    pub mentions: &'a Mentions,
}

/// Everything one robot has not been told yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    rules: BTreeMap<String, RuleBatch>,
}

impl Batch {
    /// Adds one match. `render` is called only when the match becomes a sample (a distinct line
    /// while the rule has fewer than `MAX_SAMPLES`), so a flood costs a count, not a render.
    pub fn add(&mut self, hit: Hit<'_>, render: impl FnOnce() -> (String, String)) {
        let entry = self
            .rules
            .entry(hit.rule.to_string())
            .or_insert_with(|| RuleBatch {
                rule: hit.rule.to_string(),
                severity: hit.severity,
                count: 0,
                first_seen: hit.at,
                last_seen: hit.at,
                hosts: BTreeSet::new(),
                files: BTreeSet::new(),
                samples: Vec::new(),
                mentions: hit.mentions.clone(),
                n_renders: 0,
            });
        entry.count += 1;
        entry.first_seen = entry.first_seen.min(hit.at);
        entry.last_seen = entry.last_seen.max(hit.at);
        entry.severity = entry.severity.max(hit.severity);
        if !entry.hosts.contains(hit.host) {
            entry.hosts.insert(hit.host.to_string());
        }
        if !entry.files.contains(hit.file) {
            entry.files.insert(hit.file.to_string());
        }
        if entry.samples.len() < MAX_SAMPLES
            && entry.n_renders < MAX_SAMPLE_RENDERS
            && !entry.samples.iter().any(|s| s.line == hit.line)
        {
            entry.n_renders += 1;
            let (title, text) = render();
            // Lines that differ only where the template does not look (a timestamp, a pid)
            // would read as the same sample twice.
            if !entry.samples.iter().any(|s| s.text == text) {
                entry.samples.push(Sample {
                    line: hit.line.to_string(),
                    title,
                    text,
                    at: hit.at,
                });
            }
        }
        entry.mentions.merge(hit.mentions);
    }

    /// Folds `other` (an older batch that failed to send) into this one, counts added exactly.
    pub fn absorb(&mut self, other: Batch) {
        for (name, theirs) in other.rules {
            match self.rules.get_mut(&name) {
                None => {
                    self.rules.insert(name, theirs);
                }
                Some(ours) => {
                    ours.count += theirs.count;
                    ours.first_seen = ours.first_seen.min(theirs.first_seen);
                    ours.last_seen = ours.last_seen.max(theirs.last_seen);
                    ours.severity = ours.severity.max(theirs.severity);
                    ours.hosts.extend(theirs.hosts);
                    ours.files.extend(theirs.files);
                    // Older samples first.
                    let mut samples = theirs.samples;
                    for sample in std::mem::take(&mut ours.samples) {
                        if !samples
                            .iter()
                            .any(|s| s.line == sample.line || s.text == sample.text)
                        {
                            samples.push(sample);
                        }
                    }
                    samples.truncate(MAX_SAMPLES);
                    ours.samples = samples;
                    ours.mentions.merge(&theirs.mentions);
                }
            }
        }
    }

    /// Total matches in the batch.
    pub fn count(&self) -> u64 {
        self.rules.values().map(|r| r.count).sum()
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules, most severe first, then by count, then by name.
    pub fn ordered(&self) -> Vec<&RuleBatch> {
        let mut rules: Vec<&RuleBatch> = self.rules.values().collect();
        rules.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(b.count.cmp(&a.count))
                .then(a.rule.cmp(&b.rule))
        });
        rules
    }

    /// The highest severity in the batch.
    pub fn severity(&self) -> Option<Severity> {
        self.rules.values().map(|r| r.severity).max()
    }

    /// Mentions of every rule in the batch, merged.
    pub fn mentions(&self) -> Mentions {
        let mut mentions = Mentions::default();
        for rule in self.ordered() {
            mentions.merge(&rule.mentions);
        }
        mentions
    }

    /// The single match of a batch that holds exactly one (sent on its own, not as a summary).
    pub fn lone(&self) -> Option<&Sample> {
        match self.rules.values().next() {
            Some(rule) if self.rules.len() == 1 && rule.count == 1 => rule.samples.first(),
            _ => None,
        }
    }

    /// True when some rule keeps a sample (a rendered line).
    pub fn has_samples(&self) -> bool {
        self.rules.values().any(|rule| !rule.samples.is_empty())
    }

    /// The same batch, counts and all, without its samples: what is left to send when DingTalk
    /// refused the content of a message (a blocked word, a malformed line).
    pub fn without_samples(&self) -> Batch {
        let mut batch = self.clone();
        for rule in batch.rules.values_mut() {
            rule.samples.clear();
        }
        batch
    }

    /// Rebuilds a batch from its parts (when loading persisted state).
    pub fn from_rules(rules: impl IntoIterator<Item = RuleBatch>) -> Batch {
        let mut batch = Batch::default();
        for rule in rules {
            batch.absorb(Batch {
                rules: BTreeMap::from([(rule.rule.clone(), rule)]),
            });
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use crate::batch::{Batch, Hit, MAX_SAMPLE_RENDERS, MAX_SAMPLES};
    use crate::event::{Mentions, Severity};

    fn hit<'a>(
        rule: &'a str,
        severity: Severity,
        line: &'a str,
        file: &'a str,
        at: u64,
        mentions: &'a Mentions,
    ) -> Hit<'a> {
        Hit {
            rule,
            severity,
            line,
            file,
            host: "web-1",
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(at),
            mentions,
        }
    }

    #[test]
    fn samples_are_distinct_as_rendered_and_a_flood_of_look_alikes_renders_a_bounded_number() {
        let none = Mentions::default();
        let mut batch = Batch::default();
        let mut renders = 0;
        // Every line differs (a timestamp), but the template renders them all alike.
        for i in 0..10_000u64 {
            let line = format!("12:00:{i:05} Failed password for root");
            batch.add(
                hit(
                    "sshd",
                    Severity::Warning,
                    &line,
                    "/var/log/auth.log",
                    i,
                    &none,
                ),
                || {
                    renders += 1;
                    ("t".into(), "Failed password for root".into())
                },
            );
        }
        let rule = batch.ordered()[0];
        assert_eq!(rule.count, 10_000);
        assert_eq!(
            rule.samples.len(),
            1,
            "one sample for lines that read alike"
        );
        assert_eq!(
            renders, MAX_SAMPLE_RENDERS,
            "renders stop after a bounded search"
        );
    }

    #[test]
    fn counts_are_exact_while_samples_and_files_are_bounded() {
        let none = Mentions::default();
        let mut batch = Batch::default();
        let mut renders = 0;
        for i in 0..10_000u64 {
            let line = format!("line {}", i % 7);
            let file = format!("/var/log/f{}.log", i % 20);
            batch.add(
                hit("r", Severity::Warning, &line, &file, 100 + i, &none),
                || {
                    renders += 1;
                    ("t".into(), line.clone())
                },
            );
        }
        assert_eq!(batch.count(), 10_000);
        let rule = batch.ordered()[0];
        assert_eq!(rule.samples.len(), MAX_SAMPLES);
        assert_eq!(renders, MAX_SAMPLES, "only kept samples are rendered");
        assert_eq!(rule.files.len(), 20);
        assert_eq!(
            rule.first_seen,
            SystemTime::UNIX_EPOCH + Duration::from_secs(100)
        );
        assert_eq!(
            rule.last_seen,
            SystemTime::UNIX_EPOCH + Duration::from_secs(10_099)
        );
    }

    #[test]
    fn critical_first_mentions_merged_and_absorb_adds_counts() {
        let dba = Mentions {
            mobiles: vec!["138".into()],
            user_ids: vec![],
            all: false,
        };
        let ops = Mentions {
            mobiles: vec!["139".into(), "138".into()],
            user_ids: vec!["u1".into()],
            all: false,
        };
        let mut older = Batch::default();
        older.add(hit("slow", Severity::Info, "a", "/f", 1, &dba), || {
            ("".into(), "a".into())
        });
        older.add(hit("oom", Severity::Critical, "b", "/f", 2, &ops), || {
            ("".into(), "b".into())
        });
        let mut newer = Batch::default();
        newer.add(hit("oom", Severity::Critical, "c", "/g", 3, &ops), || {
            ("".into(), "c".into())
        });
        assert!(newer.lone().is_some());
        newer.absorb(older);
        assert!(newer.lone().is_none());
        assert_eq!(newer.count(), 3);
        let names: Vec<&str> = newer.ordered().iter().map(|r| r.rule.as_str()).collect();
        assert_eq!(names, ["oom", "slow"]);
        let oom = newer.ordered()[0];
        assert_eq!(oom.count, 2);
        let samples: Vec<&str> = oom.samples.iter().map(|s| s.line.as_str()).collect();
        assert_eq!(samples, ["b", "c"], "older samples first");
        let mentions = newer.mentions();
        assert_eq!(mentions.mobiles, ["139", "138"]);
        assert_eq!(mentions.user_ids, ["u1"]);
    }
}
