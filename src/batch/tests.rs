//! Batches: exact counts, samples spread over the batch at a bounded render cost, top values.

use std::time::{Duration, SystemTime};

use crate::batch::{Batch, Hit, MAX_KEPT, MAX_SAMPLE_RENDERS, MAX_SAMPLES, Rendered};
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
        top: &[],
    }
}

fn rendered(text: &str) -> Rendered {
    Rendered::markdown("t", text)
}

#[test]
fn samples_are_distinct_as_rendered_and_a_flood_of_look_alikes_renders_a_bounded_number() {
    let none = Mentions::default();
    let mut batch = Batch::default();
    let mut renders = 0u32;
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
                rendered("Failed password for root")
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
    // About five renders per doubling of the count: 10 + 5 × log2(10,000 / 10) ≈ 60.
    assert!(
        renders <= 64,
        "renders stop after a bounded search: {renders}"
    );
    assert!(renders <= MAX_SAMPLE_RENDERS);
}

#[test]
fn samples_spread_from_the_first_match_to_the_last() {
    let none = Mentions::default();
    let mut batch = Batch::default();
    let mut renders = 0u32;
    let n = 100_000u64;
    for i in 1..=n {
        let line = format!("Failed password for root from 10.0.{}.{}", i / 256, i % 256);
        batch.add(
            hit("sshd", Severity::Warning, &line, "/f", i, &none),
            || {
                renders += 1;
                rendered(&line)
            },
        );
    }
    let rule = batch.ordered()[0];
    assert_eq!(rule.count, n);
    assert!(rule.samples.len() <= MAX_KEPT);
    let kept: Vec<u64> = rule.samples.iter().map(|s| s.n).collect();
    assert_eq!(kept.first(), Some(&1), "the first match stays: {kept:?}");
    assert!(
        *kept.last().unwrap() > n * 8 / 10,
        "the last sample is near the end: {kept:?}"
    );
    // Evenly spaced: no gap is more than twice another (but for the first).
    let gaps: Vec<u64> = kept.windows(2).skip(1).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().max().unwrap() <= &(gaps.iter().min().unwrap() * 2),
        "{kept:?}"
    );
    let shown = rule.shown_samples(MAX_SAMPLES);
    assert_eq!(shown.len(), MAX_SAMPLES);
    assert_eq!(shown.first().unwrap().n, 1);
    assert_eq!(shown.last().unwrap().n, *kept.last().unwrap());
    // Renders grow with the logarithm of the count.
    assert!(renders <= 10 + 5 * 14, "{renders}");
}

#[test]
fn a_small_batch_keeps_every_distinct_match() {
    let none = Mentions::default();
    let mut batch = Batch::default();
    let mut renders = 0;
    for i in 0..7u64 {
        let line = format!("line {i}");
        batch.add(hit("r", Severity::Warning, &line, "/f", i, &none), || {
            renders += 1;
            rendered(&line)
        });
    }
    let rule = batch.ordered()[0];
    let lines: Vec<&str> = rule.samples.iter().map(|s| s.line.as_str()).collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(renders, 7);
    let shown: Vec<u64> = rule
        .shown_samples(MAX_SAMPLES)
        .iter()
        .map(|s| s.n)
        .collect();
    assert_eq!(shown, [1, 3, 4, 6, 7], "first, last and between");
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
                rendered(&line)
            },
        );
    }
    assert_eq!(batch.count(), 10_000);
    let rule = batch.ordered()[0];
    assert_eq!(rule.samples.len(), 7, "every distinct line");
    assert_eq!(renders, 7, "a line already kept is not rendered again");
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
fn top_values_are_counted_exactly_and_survive_absorb() {
    let none = Mentions::default();
    let mut newer = Batch::default();
    let mut older = Batch::default();
    for i in 0..300u64 {
        let ip = format!("203.0.113.{}", i % 3);
        let user = if i % 2 == 0 { "root" } else { "admin" };
        let top = [("ip", ip.as_str()), ("user", user)];
        let line = format!("Failed password for {user} from {ip}");
        let batch = if i < 100 { &mut older } else { &mut newer };
        batch.add(
            Hit {
                top: &top,
                ..hit("sshd", Severity::Warning, &line, "/f", i, &none)
            },
            || rendered(&line),
        );
    }
    newer.absorb(older);
    let rule = newer.ordered()[0];
    assert_eq!(rule.count, 300);
    let ip = rule.top.iter().find(|t| t.capture == "ip").unwrap();
    assert_eq!(
        ip.most_frequent(5),
        [
            ("203.0.113.0", 100),
            ("203.0.113.1", 100),
            ("203.0.113.2", 100)
        ]
    );
    let user = rule.top.iter().find(|t| t.capture == "user").unwrap();
    assert_eq!(user.most_frequent(5), [("admin", 150), ("root", 150)]);
    assert!(newer.without_samples().ordered()[0].top.is_empty());
}

#[test]
fn critical_first_mentions_merged_and_absorb_adds_counts() {
    let dba = Mentions {
        mobiles: vec!["13800000001".into()],
        user_ids: vec![],
        all: false,
    };
    let ops = Mentions {
        mobiles: vec!["13900000000".into(), "13800000001".into()],
        user_ids: vec!["u1".into()],
        all: false,
    };
    let mut older = Batch::default();
    older.add(hit("slow", Severity::Info, "a", "/f", 1, &dba), || {
        rendered("a")
    });
    older.add(hit("oom", Severity::Critical, "b", "/f", 2, &ops), || {
        rendered("b")
    });
    let mut newer = Batch::default();
    newer.add(hit("oom", Severity::Critical, "c", "/g", 3, &ops), || {
        rendered("c")
    });
    assert!(newer.lone().is_some());
    newer.absorb(older);
    assert!(newer.lone().is_none());
    assert_eq!(newer.count(), 3);
    let names: Vec<&str> = newer.ordered().iter().map(|r| r.rule.as_str()).collect();
    assert_eq!(names, ["oom", "slow"]);
    let oom = newer.ordered()[0];
    assert_eq!(oom.count, 2);
    let samples: Vec<(&str, u64)> = oom.samples.iter().map(|s| (s.line.as_str(), s.n)).collect();
    assert_eq!(
        samples,
        [("b", 1), ("c", 2)],
        "older samples first, numbered on"
    );
    let mentions = newer.mentions();
    assert_eq!(mentions.mobiles, ["13900000000", "13800000001"]);
    assert_eq!(mentions.user_ids, ["u1"]);
}

#[test]
fn absorbing_a_big_older_batch_keeps_the_samples_spread() {
    let none = Mentions::default();
    let mut older = Batch::default();
    let mut newer = Batch::default();
    for i in 1..=1000u64 {
        let line = format!("event {i}");
        let batch = if i <= 900 { &mut older } else { &mut newer };
        batch.add(hit("r", Severity::Warning, &line, "/f", i, &none), || {
            rendered(&line)
        });
    }
    newer.absorb(older);
    let rule = newer.ordered()[0];
    assert_eq!(rule.count, 1000);
    assert!(rule.samples.len() + rule.sampler.ghosts.len() <= MAX_KEPT);
    let kept: Vec<u64> = rule.samples.iter().map(|s| s.n).collect();
    assert_eq!(kept[0], 1);
    assert!(
        kept.iter().any(|n| *n > 900),
        "the newer part is there: {kept:?}"
    );
    assert!(
        kept.iter().any(|n| (300..700).contains(n)),
        "and the middle: {kept:?}"
    );
    // Adding goes on from the end of both.
    newer.add(
        hit("r", Severity::Warning, "event 1001", "/f", 1001, &none),
        || rendered("event 1001"),
    );
    assert_eq!(newer.count(), 1001);
}

#[test]
fn mentions_from_logs_are_bounded() {
    let mut batch = Batch::default();
    for i in 0..200u64 {
        let mentions = Mentions {
            mobiles: vec![format!("1380000{i:04}")],
            ..Mentions::default()
        };
        let line = format!("owner {i}");
        batch.add(
            hit("r", Severity::Warning, &line, "/f", i, &mentions),
            || rendered(&line),
        );
    }
    let mobiles = batch.mentions().mobiles;
    assert_eq!(mobiles.len(), crate::batch::MAX_MENTIONS);
    assert_eq!(mobiles[0], "13800000000", "the first ones stay");
}

/// Issue 13: a firing alert reports its whole window; it is still one line (a lone message).
#[test]
fn a_firing_alert_reports_its_window_and_stays_one_line() {
    use crate::batch::Annotation;
    let none = Mentions::default();
    let mut batch = Batch::default();
    let note = Annotation::Firing {
        count: 5,
        since: SystemTime::UNIX_EPOCH + Duration::from_secs(10),
        within: Some(Duration::from_secs(60)),
    };
    batch.add_alert(
        hit("ssh", Severity::Warning, "fail", "/f", 50, &none),
        note,
        || rendered("fail"),
    );
    let (rule, sample) = batch.lone().expect("one line goes alone");
    assert_eq!((rule.count, rule.hits), (5, 1));
    assert_eq!(
        rule.first_seen,
        SystemTime::UNIX_EPOCH + Duration::from_secs(10)
    );
    assert_eq!(sample.note, note);
    batch.add_alert(
        hit("ssh", Severity::Warning, "fail again", "/f", 60, &none),
        Annotation::Realert { total: 6 },
        || rendered("fail again"),
    );
    assert!(batch.lone().is_none());
    assert_eq!(batch.count(), 6);
}

/// Issue 13: notices travel with the batch (a lone one alone), fold back in order, and beyond
/// the bound are tallied with their matches, exactly.
#[test]
fn notices_are_kept_in_order_then_tallied() {
    use crate::alert::NoticeKind;
    use crate::batch::{BatchNotice, MAX_NOTICES, NoticeEvent};
    let notice = |i: u64| BatchNotice {
        rule: "ssh".into(),
        severity: Severity::Warning,
        labels: vec![("ip".into(), format!("10.0.0.{i}"))],
        at: SystemTime::UNIX_EPOCH + Duration::from_secs(i),
        mentions: Mentions::default(),
        event: NoticeEvent::Alert(NoticeKind::Repeat {
            folded: 2,
            since: SystemTime::UNIX_EPOCH,
            total: 3,
        }),
    };
    let mut batch = Batch::default();
    batch.add_notice(notice(0));
    assert_eq!(batch.lone_notice(), Some(&notice(0)));
    assert!(batch.lone().is_none());
    assert_eq!((batch.count(), batch.n_undelivered()), (0, 1));
    let mut older = Batch::default();
    for i in 1..=(MAX_NOTICES as u64 + 10) {
        older.add_notice(notice(i));
    }
    batch.absorb(older);
    let notices = batch.notices();
    assert_eq!(notices.kept.len(), MAX_NOTICES);
    assert_eq!(notices.kept[0], notice(1), "the older ones first");
    assert_eq!(notices.len(), MAX_NOTICES as u64 + 11);
    let tally = notices.tallies[&("ssh".to_string(), "repeat".to_string())];
    assert_eq!((tally.n, tally.n_matches), (11, 22));
    assert!(batch.has_samples(), "labels come from logs");
    let bare = batch.without_samples();
    assert!(!bare.has_samples());
    assert_eq!(bare.n_undelivered(), batch.n_undelivered());
}
