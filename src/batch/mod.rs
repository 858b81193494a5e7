//! `Batch`: what one robot has not been told yet, kept aggregated so that a robot unreachable for
//! a day costs bounded memory and disk: per rule an exact count, first and last time, the hosts and
//! files involved, a few distinct samples spread over the batch ([`sampler`]) and the most
//! frequent values of its `top:` captures ([`top`]). Counts are never approximated; only samples,
//! hosts, files and top values are bounded (with the number left out kept exactly).
//!
//! Rules with alert keys (issue 13) add lines that stand for more than one match
//! ([`Annotation`]: a firing alert reports its whole window, so a rule's count is the matches
//! its messages report) and notices that are not lines ([`BatchNotice`]: repeats, resolutions,
//! absences, ended silences), kept beside the per-rule aggregates ([`notice`]).
//!
//! Pure: no I/O, no clock.

pub mod notice;
pub mod sampler;
pub mod top;

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

pub use crate::batch::notice::{
    Annotation, BatchNotice, MAX_NOTICES, NoticeEvent, NoticeTally, Notices, SilenceEnd,
};
use crate::batch::sampler::{Consider, Sampler};
use crate::batch::top::TopCounts;
use crate::event::{Link, Markup, Mentions, Severity};

pub use crate::batch::sampler::{MAX_KEPT, MAX_SAMPLE_RENDERS};

/// How many samples a summary shows per rule (chosen from the kept ones, first to last).
pub const MAX_SAMPLES: usize = 5;
/// Mobiles (and user ids) a rule's matches may @ in one batch: templated `at:` entries take
/// their values from logs, so a flood could otherwise name without bound. The first ones stay.
pub const MAX_MENTIONS: usize = 50;

/// One match rendered with its rule's templates: what a sample keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The rule's title (plain text: one line, control bytes visible).
    pub title: String,
    /// The rule's template, its log-derived values escaped for `markup`.
    pub text: String,
    /// What `text` was escaped for.
    pub markup: Markup,
    /// The rule's `link:`, if it has one that rendered to a valid URL.
    pub link: Option<Link>,
}

impl Rendered {
    /// A rendering of markdown `text` with `title` and no link (tests, simple callers).
    pub fn markdown(title: impl Into<String>, text: impl Into<String>) -> Rendered {
        Rendered {
            title: title.into(),
            text: text.into(),
            markup: Markup::Markdown,
            link: None,
        }
    }
}

/// One kept example of a rule's matches, already rendered with the rule's templates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The raw line (or multi-line event), used to keep samples distinct.
    pub line: String,
    /// The rule's title rendered for this match (plain).
    pub title: String,
    /// The rule's template rendered for this match.
    pub text: String,
    /// What `text` was escaped for.
    pub markup: Markup,
    /// The rule's link rendered for this match.
    pub link: Option<Link>,
    /// When the event happened (its own time, else when it was read).
    pub at: SystemTime,
    /// Which of the rule's lines in the batch it was (1 for the first).
    pub n: u64,
    /// What the line stands for (a window of matches, a repeat of an incident).
    pub note: Annotation,
}

/// What a rule contributed to a batch. Equality ignores the sampler's bookkeeping.
#[derive(Clone, Debug)]
pub struct RuleBatch {
    /// The rule's name.
    pub rule: String,
    /// Its severity.
    pub severity: Severity,
    /// Exactly how many matches its lines report (a firing alert of a `when` rule reports its
    /// whole window).
    pub count: u64,
    /// How many lines were added (each an alert; equal to `count` for a plain rule).
    pub hits: u64,
    /// The first match's time.
    pub first_seen: SystemTime,
    /// The last match's time.
    pub last_seen: SystemTime,
    /// Hosts seen (bounded by the hosts that feed this daemon).
    pub hosts: BTreeSet<String>,
    /// Files seen (bounded by the files watched, not by the matches); a summary lists a few and
    /// says how many more.
    pub files: BTreeSet<String>,
    /// Distinct samples spread over the batch, at most [`MAX_KEPT`], in match order.
    pub samples: Vec<Sample>,
    /// The rule's `top:` captures, counted.
    pub top: Vec<TopCounts>,
    /// The rule's mentions.
    pub mentions: Mentions,
    /// Which matches become samples.
    pub sampler: Sampler,
}

impl PartialEq for RuleBatch {
    fn eq(&self, other: &RuleBatch) -> bool {
        self.rule == other.rule
            && self.severity == other.severity
            && self.count == other.count
            && self.hits == other.hits
            && self.first_seen == other.first_seen
            && self.last_seen == other.last_seen
            && self.hosts == other.hosts
            && self.files == other.files
            && self.samples == other.samples
            && self.top == other.top
            && self.mentions == other.mentions
    }
}

impl Eq for RuleBatch {}

impl RuleBatch {
    /// At most `n` samples, spread from the first kept to the last.
    pub fn shown_samples(&self, n: usize) -> Vec<&Sample> {
        Sampler::spread(&self.samples, n)
    }
}

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
    /// When it happened (its own time, else when it was read).
    pub at: SystemTime,
    /// Who the match @-mentions (the rule's mentions, with its templated ones rendered).
    pub mentions: &'a Mentions,
    /// The values of the rule's `top:` captures in this match, (name, value).
    pub top: &'a [(&'a str, &'a str)],
}

/// Everything one robot has not been told yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    rules: BTreeMap<String, RuleBatch>,
    notices: Notices,
}

impl Batch {
    /// Adds one match. `render` is called only when the sampler considers the match (see
    /// [`sampler`]), so a flood costs a count, not a render.
    pub fn add(&mut self, hit: Hit<'_>, render: impl FnOnce() -> Rendered) {
        self.add_alert(hit, Annotation::Plain, render);
    }

    /// Adds one line that stands for what `note` says (the rule's count grows by the matches it
    /// reports; a firing alert's window starts the rule's first time). `render` as in
    /// [`Batch::add`].
    pub fn add_alert(&mut self, hit: Hit<'_>, note: Annotation, render: impl FnOnce() -> Rendered) {
        let first = match note {
            Annotation::Firing { since, .. } => since.min(hit.at),
            _ => hit.at,
        };
        let entry = self
            .rules
            .entry(hit.rule.to_string())
            .or_insert_with(|| RuleBatch {
                rule: hit.rule.to_string(),
                severity: hit.severity,
                count: 0,
                hits: 0,
                first_seen: first,
                last_seen: hit.at,
                hosts: BTreeSet::new(),
                files: BTreeSet::new(),
                samples: Vec::new(),
                top: Vec::new(),
                mentions: Mentions::default(),
                sampler: Sampler::default(),
            });
        entry.count = entry.count.saturating_add(note.n_matches());
        entry.hits += 1;
        entry.first_seen = entry.first_seen.min(first);
        entry.last_seen = entry.last_seen.max(hit.at);
        entry.severity = entry.severity.max(hit.severity);
        if !entry.hosts.contains(hit.host) {
            entry.hosts.insert(hit.host.to_string());
        }
        if !entry.files.contains(hit.file) {
            entry.files.insert(hit.file.to_string());
        }
        for (capture, value) in hit.top {
            match entry.top.iter_mut().find(|t| t.capture == *capture) {
                Some(counts) => counts.add(value),
                None => {
                    let mut counts = TopCounts::new(capture);
                    counts.add(value);
                    entry.top.push(counts);
                }
            }
        }
        let n = entry.hits;
        match entry.sampler.consider(n, hit.line, &entry.samples) {
            Consider::Skip => {}
            Consider::Ghost => entry.sampler.ghost(n, &mut entry.samples),
            Consider::Render => {
                let rendered = render();
                let sample = Sample {
                    line: hit.line.to_string(),
                    title: rendered.title,
                    text: rendered.text,
                    markup: rendered.markup,
                    link: rendered.link,
                    at: hit.at,
                    n,
                    note,
                };
                entry.sampler.offer(sample, &mut entry.samples);
            }
        }
        merge_mentions(&mut entry.mentions, hit.mentions);
    }

    /// Adds a notice (see [`notice`]).
    pub fn add_notice(&mut self, notice: BatchNotice) {
        self.notices.add(notice);
    }

    /// The notices, in the order they came (and those tallied beyond [`MAX_NOTICES`]).
    pub fn notices(&self) -> &Notices {
        &self.notices
    }

    /// Folds `other` (an older batch that failed to send) into this one, counts added exactly,
    /// samples still spread over both.
    pub fn absorb(&mut self, other: Batch) {
        self.notices.absorb(other.notices);
        for (name, theirs) in other.rules {
            match self.rules.get_mut(&name) {
                None => {
                    self.rules.insert(name, theirs);
                }
                Some(ours) => {
                    ours.first_seen = ours.first_seen.min(theirs.first_seen);
                    ours.last_seen = ours.last_seen.max(theirs.last_seen);
                    ours.severity = ours.severity.max(theirs.severity);
                    ours.hosts.extend(theirs.hosts);
                    ours.files.extend(theirs.files);
                    ours.sampler.absorb(
                        theirs.sampler,
                        theirs.samples,
                        theirs.hits,
                        &mut ours.samples,
                    );
                    ours.count += theirs.count;
                    ours.hits += theirs.hits;
                    for counts in theirs.top {
                        match ours.top.iter_mut().find(|t| t.capture == counts.capture) {
                            Some(mine) => mine.absorb(counts),
                            None => ours.top.push(counts),
                        }
                    }
                    merge_mentions(&mut ours.mentions, &theirs.mentions);
                }
            }
        }
    }

    /// Total matches the batch's lines report (notices not included).
    pub fn count(&self) -> u64 {
        self.rules.values().map(|r| r.count).sum()
    }

    /// What the batch owes in all: its matches and its notices.
    pub fn n_undelivered(&self) -> u64 {
        self.count() + self.notices.len()
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.notices.is_empty()
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

    /// The highest severity in the batch (notices included).
    pub fn severity(&self) -> Option<Severity> {
        self.rules
            .values()
            .map(|r| r.severity)
            .max()
            .max(self.notices.severity())
    }

    /// Every host of the batch, each once, sorted.
    pub fn hosts(&self) -> BTreeSet<&str> {
        self.rules
            .values()
            .flat_map(|rule| rule.hosts.iter().map(String::as_str))
            .collect()
    }

    /// Mentions of every rule in the batch, merged.
    pub fn mentions(&self) -> Mentions {
        let mut mentions = Mentions::default();
        for rule in self.ordered() {
            mentions.merge(&rule.mentions);
        }
        for notice in &self.notices.kept {
            merge_mentions(&mut mentions, &notice.mentions);
        }
        mentions
    }

    /// The single line of a batch that holds exactly one and no notice (sent on its own, not as
    /// a summary), with its rule.
    pub fn lone(&self) -> Option<(&RuleBatch, &Sample)> {
        match self.rules.values().next() {
            Some(rule) if self.rules.len() == 1 && rule.hits == 1 && self.notices.is_empty() => {
                Some((rule, rule.samples.first()?))
            }
            _ => None,
        }
    }

    /// The single notice of a batch that holds nothing else (sent on its own).
    pub fn lone_notice(&self) -> Option<&BatchNotice> {
        match self.notices.kept.as_slice() {
            [notice] if self.rules.is_empty() && self.notices.tallies.is_empty() => Some(notice),
            _ => None,
        }
    }

    /// True when some rule keeps a sample (a rendered line), or a notice a value from a log.
    pub fn has_samples(&self) -> bool {
        self.rules.values().any(|rule| !rule.samples.is_empty())
            || self
                .notices
                .kept
                .iter()
                .any(|n| n.labels.iter().any(|(_, value)| !value.is_empty()))
    }

    /// The same batch, counts and all, without its log text (samples and top values): what is
    /// left to send when DingTalk refused the content of a message (a blocked word, a malformed
    /// line).
    pub fn without_samples(&self) -> Batch {
        let mut batch = self.clone();
        for rule in batch.rules.values_mut() {
            rule.samples.clear();
            rule.sampler.ghosts.clear();
            rule.top.clear();
        }
        batch.notices = self.notices.without_values();
        batch
    }

    /// Rebuilds a batch from its parts (when loading persisted state).
    pub fn from_rules(rules: impl IntoIterator<Item = RuleBatch>) -> Batch {
        Batch::from_parts(rules, Notices::default())
    }

    /// Rebuilds a batch from its rules and notices (when loading persisted state).
    pub fn from_parts(rules: impl IntoIterator<Item = RuleBatch>, notices: Notices) -> Batch {
        let mut batch = Batch::default();
        for rule in rules {
            batch.absorb(Batch {
                rules: BTreeMap::from([(rule.rule.clone(), rule)]),
                notices: Notices::default(),
            });
        }
        batch.notices = notices;
        batch
    }

    /// The rule `name`'s part of the batch, if it has matches.
    pub fn rule(&self, name: &str) -> Option<&RuleBatch> {
        self.rules.get(name)
    }

    /// Every rule with matches or notices in the batch, each once, sorted.
    pub fn rule_names(&self) -> BTreeSet<&str> {
        self.rules
            .keys()
            .map(String::as_str)
            .chain(self.notices.rules())
            .collect()
    }
}

/// Adds `other` to `mentions`, at most [`MAX_MENTIONS`] mobiles and user ids.
fn merge_mentions(mentions: &mut Mentions, other: &Mentions) {
    if mentions == other {
        return;
    }
    mentions.merge(other);
    mentions.mobiles.truncate(MAX_MENTIONS);
    mentions.user_ids.truncate(MAX_MENTIONS);
}

#[cfg(test)]
mod tests;
