//! The persisted form of a `RuleBatch`: one JSON row per (robot, rule, generation), versioned by
//! its `v` field and kept apart from the runtime type, so that the runtime type can change
//! without breaking state written by an older dingtail.
//!
//! - Version 1 (before issue 11): counts, times, hosts, files, samples (line, title, text, time),
//!   mentions. Still read, its samples numbered 1, 2, … as they stand. Their text was rendered
//!   before log text was escaped, so it is read as plain text: a markdown message escapes it
//!   whole (a rule's own bold then shows as `**`, once, after the upgrade) rather than letting a
//!   log line written before the upgrade form a link.
//! - Version 2 (issue 11, written now): adds each sample's match number, markup and link, the
//!   sampler's stride, and the `top:` counts.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::batch::sampler::Sampler;
use crate::batch::top::TopCounts;
use crate::batch::{RuleBatch, Sample};
use crate::event::{Link, Markup, Mentions, Severity};

/// The version written.
pub const VERSION: u32 = 2;

/// Reads only the version of a row.
#[derive(Deserialize)]
struct Version {
    v: u32,
}

/// Version 1.
#[derive(Deserialize)]
struct RowV1 {
    level: String,
    count: u64,
    first_ms: u64,
    last_ms: u64,
    hosts: Vec<String>,
    files: Vec<String>,
    samples: Vec<SampleV1>,
    mobiles: Vec<String>,
    user_ids: Vec<String>,
    all: bool,
}

#[derive(Deserialize)]
struct SampleV1 {
    line: String,
    title: String,
    text: String,
    at_ms: u64,
}

/// Version 2.
#[derive(Serialize, Deserialize)]
struct RowV2 {
    v: u32,
    level: String,
    count: u64,
    first_ms: u64,
    last_ms: u64,
    hosts: Vec<String>,
    files: Vec<String>,
    samples: Vec<SampleV2>,
    /// The sampler's stride and the next match it considers.
    stride: u64,
    next: u64,
    top: Vec<TopV2>,
    mobiles: Vec<String>,
    user_ids: Vec<String>,
    all: bool,
}

#[derive(Serialize, Deserialize)]
struct SampleV2 {
    line: String,
    title: String,
    text: String,
    /// `markdown` or `plain`.
    markup: String,
    link: Option<LinkV2>,
    at_ms: u64,
    n: u64,
}

#[derive(Serialize, Deserialize)]
struct LinkV2 {
    title: String,
    url: String,
}

#[derive(Serialize, Deserialize)]
struct TopV2 {
    capture: String,
    counts: BTreeMap<String, u64>,
    n_uncounted: u64,
}

/// The row of `rule`.
///
/// # Errors
/// What serde said (it cannot fail for these plain values).
pub fn encode(rule: &RuleBatch) -> Result<String, serde_json::Error> {
    let row = RowV2 {
        v: VERSION,
        level: rule.severity.as_str().to_string(),
        count: rule.count,
        first_ms: to_ms(rule.first_seen),
        last_ms: to_ms(rule.last_seen),
        hosts: rule.hosts.iter().cloned().collect(),
        files: rule.files.iter().cloned().collect(),
        samples: rule
            .samples
            .iter()
            .map(|s| SampleV2 {
                line: s.line.clone(),
                title: s.title.clone(),
                text: s.text.clone(),
                markup: match s.markup {
                    Markup::Markdown => "markdown",
                    Markup::Plain => "plain",
                }
                .to_string(),
                link: s.link.as_ref().map(|l| LinkV2 {
                    title: l.title.clone(),
                    url: l.url.clone(),
                }),
                at_ms: to_ms(s.at),
                n: s.n,
            })
            .collect(),
        stride: rule.sampler.stride,
        next: rule.sampler.next,
        top: rule
            .top
            .iter()
            .map(|t| TopV2 {
                capture: t.capture.clone(),
                counts: t.counts.clone(),
                n_uncounted: t.n_uncounted,
            })
            .collect(),
        mobiles: rule.mentions.mobiles.clone(),
        user_ids: rule.mentions.user_ids.clone(),
        all: rule.mentions.all,
    };
    serde_json::to_string(&row)
}

/// The `RuleBatch` of rule `name` from its row, of any version this dingtail knows.
///
/// # Errors
/// The row is not JSON of a known version.
pub fn decode(name: &str, data: &str) -> Result<RuleBatch, serde_json::Error> {
    let Version { v } = serde_json::from_str(data)?;
    if v <= 1 {
        return serde_json::from_str::<RowV1>(data).map(|row| from_v1(name, row));
    }
    serde_json::from_str::<RowV2>(data).map(|row| from_v2(name, row))
}

fn from_v1(name: &str, row: RowV1) -> RuleBatch {
    let samples: Vec<Sample> = row
        .samples
        .into_iter()
        .zip(1u64..)
        .map(|(s, n)| Sample {
            line: s.line,
            title: s.title,
            text: s.text,
            markup: Markup::Plain,
            link: None,
            at: from_ms(s.at_ms),
            n,
        })
        .collect();
    let next = samples.len() as u64 + 1;
    RuleBatch {
        rule: name.to_string(),
        severity: severity(&row.level),
        count: row.count,
        first_seen: from_ms(row.first_ms),
        last_seen: from_ms(row.last_ms),
        hosts: row.hosts.into_iter().collect::<BTreeSet<_>>(),
        files: row.files.into_iter().collect::<BTreeSet<_>>(),
        samples,
        top: Vec::new(),
        mentions: Mentions {
            mobiles: row.mobiles,
            user_ids: row.user_ids,
            all: row.all,
        },
        sampler: Sampler {
            next: next.max(row.count + 1),
            ..Sampler::default()
        },
    }
}

fn from_v2(name: &str, row: RowV2) -> RuleBatch {
    RuleBatch {
        rule: name.to_string(),
        severity: severity(&row.level),
        count: row.count,
        first_seen: from_ms(row.first_ms),
        last_seen: from_ms(row.last_ms),
        hosts: row.hosts.into_iter().collect::<BTreeSet<_>>(),
        files: row.files.into_iter().collect::<BTreeSet<_>>(),
        samples: row
            .samples
            .into_iter()
            .map(|s| Sample {
                line: s.line,
                title: s.title,
                text: s.text,
                // An unknown markup is treated as plain: shown escaped, never live.
                markup: if s.markup == "markdown" {
                    Markup::Markdown
                } else {
                    Markup::Plain
                },
                link: s.link.map(|l| Link {
                    title: l.title,
                    url: l.url,
                }),
                at: from_ms(s.at_ms),
                n: s.n,
            })
            .collect(),
        top: row
            .top
            .into_iter()
            .map(|t| TopCounts {
                capture: t.capture,
                counts: t.counts,
                n_uncounted: t.n_uncounted,
            })
            .collect(),
        mentions: Mentions {
            mobiles: row.mobiles,
            user_ids: row.user_ids,
            all: row.all,
        },
        sampler: Sampler {
            stride: row.stride.max(1),
            next: row.next,
            ..Sampler::default()
        },
    }
}

fn severity(level: &str) -> Severity {
    Severity::parse(level).unwrap_or(Severity::Info)
}

fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use crate::event::Markup;
    use crate::state::pending::row::{decode, encode};

    #[test]
    fn version_1_rows_are_still_read() {
        let v1 = r#"{"v":1,"level":"critical","count":7,"first_ms":1700000000000,"last_ms":1700000006000,"hosts":["web-1"],"files":["/var/log/x.log"],"samples":[{"line":"a","title":"t","text":"**a**","at_ms":1700000000000},{"line":"b","title":"t","text":"b","at_ms":1700000001000}],"mobiles":["13800000000"],"user_ids":[],"all":false}"#;
        let rule = decode("oom", v1).unwrap();
        assert_eq!(rule.count, 7);
        assert_eq!(rule.severity, crate::event::Severity::Critical);
        let samples: Vec<(&str, u64)> = rule
            .samples
            .iter()
            .map(|s| (s.text.as_str(), s.n))
            .collect();
        assert_eq!(samples, [("**a**", 1), ("b", 2)]);
        assert!(
            rule.samples.iter().all(|s| s.markup == Markup::Plain),
            "rendered before escaping: never shown as live markdown"
        );
        assert_eq!(rule.mentions.mobiles, ["13800000000"]);
        assert!(
            rule.sampler.next > 7,
            "new matches are numbered after the old ones"
        );
        // Written back as version 2, it reads the same.
        let v2 = encode(&rule).unwrap();
        assert!(v2.starts_with(r#"{"v":2,"#), "{v2}");
        assert_eq!(decode("oom", &v2).unwrap(), rule);
    }
}
