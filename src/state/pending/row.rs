//! The persisted form of a `RuleBatch`: one JSON row per (robot, rule, generation), versioned by
//! its `v` field and kept apart from the runtime type, so that the runtime type can change
//! without breaking state written by an older dingtail.
//!
//! - Version 1 (before issue 11): counts, times, hosts, files, samples (line, title, text, time),
//!   mentions. Still read, its samples numbered 1, 2, … as they stand. Their text was rendered
//!   before log text was escaped, so it is read as plain text: a markdown message escapes it
//!   whole (a rule's own bold then shows as `**`, once, after the upgrade) rather than letting a
//!   log line written before the upgrade form a link.
//! - Version 2 (issue 11): adds each sample's match number, markup and link, the sampler's
//!   stride, and the `top:` counts.
//! - Version 3 (issue 13, written now): adds how many lines the rule's matches came in (`hits`;
//!   a version 2 row has one line per match), each sample's annotation (a firing alert's window,
//!   a repeat of an incident) and the rule's notices and tallies (`notice_row`). A row may hold
//!   notices only (no match, `count` 0).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::batch::sampler::Sampler;
use crate::batch::top::TopCounts;
use crate::batch::{Notices, RuleBatch, Sample};
use crate::event::{Link, Markup, Mentions, Severity};
use crate::state::pending::notice_row::{
    NoteV3, NoticeV3, TallyV3, note_from_row, note_to_row, notices_from_rows, notices_to_rows,
};

/// The version written.
pub const VERSION: u32 = 3;

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

/// Versions 2 and 3 (the fields version 3 added default to what version 2 meant).
#[derive(Serialize, Deserialize)]
struct RowV2 {
    v: u32,
    level: String,
    count: u64,
    /// Lines (version 3; a version 2 row has `count`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hits: Option<u64>,
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
    /// The rule's notices (version 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    notices: Vec<NoticeV3>,
    /// Its notices beyond the batch's bound, counted (version 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tallies: Vec<TallyV3>,
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
    /// What the line stands for (version 3; absent: one match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<NoteV3>,
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

/// The row of a rule: its matches (`rule`, if it has any) and its `notices`.
///
/// # Errors
/// What serde said (it cannot fail for these plain values).
pub fn encode(rule: Option<&RuleBatch>, notices: &Notices) -> Result<String, serde_json::Error> {
    let (notices, tallies) = notices_to_rows(notices);
    let Some(rule) = rule else {
        let row = RowV2 {
            v: VERSION,
            level: Severity::Info.as_str().to_string(),
            count: 0,
            hits: Some(0),
            first_ms: 0,
            last_ms: 0,
            hosts: Vec::new(),
            files: Vec::new(),
            samples: Vec::new(),
            stride: 1,
            next: 1,
            top: Vec::new(),
            mobiles: Vec::new(),
            user_ids: Vec::new(),
            all: false,
            notices,
            tallies,
        };
        return serde_json::to_string(&row);
    };
    let row = RowV2 {
        v: VERSION,
        level: rule.severity.as_str().to_string(),
        count: rule.count,
        hits: Some(rule.hits),
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
                note: note_to_row(s.note),
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
        notices,
        tallies,
    };
    serde_json::to_string(&row)
}

/// The matches (`None` for a row of notices only) and notices of rule `name` from its row, of
/// any version this dingtail knows.
///
/// # Errors
/// The row is not JSON of a known version.
pub fn decode(name: &str, data: &str) -> Result<(Option<RuleBatch>, Notices), serde_json::Error> {
    let Version { v } = serde_json::from_str(data)?;
    if v <= 1 {
        return serde_json::from_str::<RowV1>(data)
            .map(|row| (Some(from_v1(name, row)), Notices::default()));
    }
    serde_json::from_str::<RowV2>(data).map(|mut row| {
        let notices = notices_from_rows(
            name,
            std::mem::take(&mut row.notices),
            std::mem::take(&mut row.tallies),
        );
        let rule = (row.count > 0 || row.hits.unwrap_or(row.count) > 0).then(|| from_v2(name, row));
        (rule, notices)
    })
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
            note: crate::batch::Annotation::Plain,
        })
        .collect();
    let next = samples.len() as u64 + 1;
    RuleBatch {
        rule: name.to_string(),
        severity: severity(&row.level),
        count: row.count,
        hits: row.count,
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
        hits: row.hits.unwrap_or(row.count),
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
                note: note_from_row(s.note),
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
    use std::time::{Duration, SystemTime};

    use crate::alert::{EndedBy, Muted, NoticeKind};
    use crate::batch::{
        Annotation, Batch, BatchNotice, Hit, NoticeEvent, Notices, Rendered, SilenceEnd,
    };
    use crate::event::{Markup, Mentions, Severity};
    use crate::state::pending::row::{decode, encode};

    #[test]
    fn version_1_rows_are_still_read() {
        let v1 = r#"{"v":1,"level":"critical","count":7,"first_ms":1700000000000,"last_ms":1700000006000,"hosts":["web-1"],"files":["/var/log/x.log"],"samples":[{"line":"a","title":"t","text":"**a**","at_ms":1700000000000},{"line":"b","title":"t","text":"b","at_ms":1700000001000}],"mobiles":["13800000000"],"user_ids":[],"all":false}"#;
        let (rule, notices) = decode("oom", v1).unwrap();
        let rule = rule.unwrap();
        assert!(notices.is_empty());
        assert_eq!((rule.count, rule.hits), (7, 7));
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
        // Written back as version 3, it reads the same.
        let v3 = encode(Some(&rule), &Notices::default()).unwrap();
        assert!(v3.starts_with(r#"{"v":3,"#), "{v3}");
        assert_eq!(decode("oom", &v3).unwrap().0.unwrap(), rule);
    }

    #[test]
    fn version_2_rows_have_one_line_per_match() {
        let v2 = r#"{"v":2,"level":"warning","count":3,"first_ms":1700000000000,"last_ms":1700000006000,"hosts":["h"],"files":["/f"],"samples":[{"line":"a","title":"t","text":"a","markup":"markdown","link":null,"at_ms":1700000000000,"n":1}],"stride":1,"next":4,"top":[],"mobiles":[],"user_ids":[],"all":false}"#;
        let (rule, notices) = decode("r", v2).unwrap();
        let rule = rule.unwrap();
        assert_eq!((rule.count, rule.hits), (3, 3));
        assert_eq!(rule.samples[0].note, Annotation::Plain);
        assert!(notices.is_empty());
    }

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    #[test]
    fn annotations_notices_and_tallies_round_trip() {
        let mentions = Mentions {
            mobiles: vec!["13800000000".into()],
            ..Mentions::default()
        };
        let mut batch = Batch::default();
        let hit = Hit {
            rule: "ssh",
            severity: Severity::Critical,
            line: "Failed password from 10.0.0.1",
            file: "/var/log/auth.log",
            host: "web-1",
            at: at(60),
            mentions: &mentions,
            top: &[],
        };
        let firing = Annotation::Firing {
            count: 5,
            since: at(10),
            within: Some(Duration::from_secs(60)),
        };
        batch.add_alert(hit, firing, || Rendered::markdown("t", "x"));
        let notice = |kind: NoticeKind| BatchNotice {
            rule: "ssh".into(),
            severity: Severity::Critical,
            labels: vec![("ip".into(), "10.0.0.1".into())],
            at: at(700),
            mentions: Mentions::default(),
            event: NoticeEvent::Alert(kind),
        };
        let kinds = [
            NoticeKind::Repeat {
                folded: 37,
                since: at(70),
                total: 42,
            },
            NoticeKind::Resolved {
                first: at(10),
                last: at(100),
                duration: Duration::from_secs(90),
                total: 43,
                unreported: 1,
                acked_at: Some(at(80)),
            },
            NoticeKind::Absent {
                last_seen: None,
                for_: Duration::from_secs(300),
                silent_for: Duration::from_secs(301),
            },
            NoticeKind::Recovered {
                last_seen: Some(at(1)),
                back: at(900),
                absent_for: Duration::from_secs(899),
            },
        ];
        for kind in kinds {
            batch.add_notice(notice(kind));
        }
        batch.add_notice(BatchNotice {
            event: NoticeEvent::SilenceEnded(SilenceEnd {
                id: "k3x9pa".into(),
                reason: "deploy".into(),
                author: "zhang.san".into(),
                by: EndedBy::Expired,
                muted: Muted {
                    matches: 123,
                    notices: 2,
                    first: Some(at(5)),
                    last: Some(at(6)),
                },
            }),
            ..notice(NoticeKind::Repeat {
                folded: 0,
                since: at(0),
                total: 0,
            })
        });
        let mut notices = batch.notices().clone();
        notices.tally(
            ("ssh".into(), "resolved".into()),
            7,
            70,
            Some(Severity::Warning),
        );
        let rule = batch.rule("ssh").unwrap();
        assert_eq!((rule.count, rule.hits), (5, 1));
        assert_eq!(rule.first_seen, at(10), "the window's start");
        let row = encode(Some(rule), &notices).unwrap();
        let (decoded, decoded_notices) = decode("ssh", &row).unwrap();
        assert_eq!(decoded.as_ref(), Some(rule));
        assert_eq!(decoded.unwrap().samples[0].note, firing);
        assert_eq!(decoded_notices, notices);
        // A row of notices only.
        let row = encode(None, &notices).unwrap();
        let (decoded, decoded_notices) = decode("ssh", &row).unwrap();
        assert!(decoded.is_none());
        assert_eq!(decoded_notices, notices);
    }
}
