//! Notices and alert annotations in words: each kind alone, in a summary, in both languages,
//! with log-derived keys inert in markdown.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::alert::{EndedBy, Muted, NoticeKind};
use crate::batch::{Annotation, Batch, BatchNotice, Hit, NoticeEvent, Rendered, SilenceEnd};
use crate::dingtalk::draft::{Body, markdown};
use crate::dingtalk::escape::tests::{HOSTILE, constructs};
use crate::event::{Mentions, Severity};
use crate::render::Renderer;
use crate::render::tests::{CONFIG, load_with};

fn at(seconds: u64) -> SystemTime {
    // 2024-02-29 13:05:00 UTC.
    UNIX_EPOCH + Duration::from_secs(1_709_211_900 + seconds)
}

fn renderer(config: &str) -> Renderer {
    let (_dir, specs, config) = load_with("", config);
    Renderer::new(&specs, &config).unwrap()
}

fn notice(rule: &str, severity: Severity, ip: &str, kind: NoticeKind) -> BatchNotice {
    BatchNotice {
        rule: rule.into(),
        severity,
        labels: vec![("ip".into(), ip.into())],
        at: at(600),
        mentions: Mentions::default(),
        event: NoticeEvent::Alert(kind),
    }
}

fn resolved() -> NoticeKind {
    NoticeKind::Resolved {
        first: at(0),
        last: at(248),
        duration: Duration::from_secs(248),
        total: 123,
        unreported: 37,
        acked_at: None,
    }
}

fn text_of(body: &Body) -> &str {
    match body {
        Body::Event(text) => text,
        Body::Summary(_) => panic!("a summary"),
    }
}

#[test]
fn a_lone_resolved_notice_says_how_long_how_many_first_and_last() {
    let english = renderer(CONFIG);
    let mut batch = Batch::default();
    batch.add_notice(notice("ssh", Severity::Warning, "10.0.0.1", resolved()));
    let draft = english.draft(&batch, "ops");
    assert_eq!(draft.title, "[resolved] ssh (ip=10.0.0.1) on web-1");
    assert_eq!(
        text_of(&draft.body),
        "lasted 4 min 8 s: 123 matches, first 13:05:00, last 13:09:08, 37 of them not reported before"
    );
    let chinese = renderer(&CONFIG.replace("language: en", "language: zh-CN"));
    let draft = chinese.draft(&batch, "ops");
    assert_eq!(draft.title, "【已恢复】ssh · ip=10.0.0.1 · web-1");
    assert!(
        text_of(&draft.body).starts_with("持续 4 分 8 秒：共 123 次，首次 13:05:00"),
        "{:?}",
        draft.body
    );
}

#[test]
fn absences_repeats_and_ended_silences_in_words() {
    let english = renderer(CONFIG);
    let absent = notice(
        "beat",
        Severity::Critical,
        "web-2",
        NoticeKind::Absent {
            last_seen: Some(at(0)),
            for_: Duration::from_secs(300),
            silent_for: Duration::from_secs(310),
        },
    );
    let mut batch = Batch::default();
    batch.add_notice(absent);
    let draft = english.draft(&batch, "ops");
    assert_eq!(draft.title, "[critical] beat absent (ip=web-2) on web-1");
    assert_eq!(
        text_of(&draft.body),
        "no matching line for 5 min 10 s (last seen 13:05:00)"
    );
    let zh = renderer(&CONFIG.replace("language: en", "language: zh-CN"));
    let mut batch = Batch::default();
    batch.add_notice(BatchNotice {
        labels: vec![("host".into(), "web-1".into())],
        event: NoticeEvent::SilenceEnded(SilenceEnd {
            id: "k3x9pa".into(),
            reason: "deploy".into(),
            author: "zhang.san".into(),
            by: EndedBy::Expired,
            muted: Muted {
                matches: 123,
                notices: 0,
                first: Some(at(10)),
                last: Some(at(200)),
            },
        }),
        ..notice("nginx", Severity::Warning, "", resolved())
    });
    let draft = zh.draft(&batch, "ops");
    assert_eq!(draft.title, "【静默结束】nginx · host=web-1 · web-1");
    assert_eq!(
        text_of(&draft.body),
        "静默期间 123 次（13:05:10 → 13:08:20）；已到期；设置人 zhang.san：deploy (k3x9pa)"
    );
}

#[test]
fn a_firing_alert_says_what_its_line_stands_for() {
    let english = renderer(CONFIG);
    let mut batch = Batch::default();
    let none = Mentions::default();
    let hit = Hit {
        rule: "ssh",
        severity: Severity::Warning,
        line: "Failed password from 10.0.0.1",
        file: "/var/log/auth.log",
        host: "web-1",
        at: at(50),
        mentions: &none,
        top: &[],
    };
    let firing = Annotation::Firing {
        count: 5,
        since: at(10),
        within: Some(Duration::from_secs(60)),
    };
    batch.add_alert(hit, firing, || Rendered::markdown("ssh", "Failed password"));
    let draft = english.draft(&batch, "ops");
    assert_eq!(
        text_of(&draft.body),
        "Failed password\n\n5 matches within 1 min (since 13:05:10)"
    );
    // In a summary, under its sample; notices get their own section, by severity.
    let line = "Failed password from 10.0.0.2";
    batch.add_alert(
        Hit { line, ..hit },
        Annotation::Realert { total: 9 },
        || Rendered::markdown("ssh", line),
    );
    batch.add_notice(notice("beat", Severity::Critical, "x", resolved()));
    let draft = english.draft(&batch, "ops");
    assert_eq!(
        draft.title,
        "[critical] web-1: 6 alerts from 1 rule, 1 notice"
    );
    let text = markdown(&draft, 18_000);
    let notices = text.find("**notices**").expect(&text);
    let ssh = text.find("**ssh**").expect(&text);
    assert!(notices < ssh, "the critical notice first: {text}");
    assert!(text.contains("still firing: 9 matches so far"), "{text}");
    assert!(text.contains("5 matches within 1 min"), "{text}");
    assert!(
        text.contains("beat · resolved · ip=x: lasted 4 min 8 s"),
        "{text}"
    );
}

#[test]
fn keys_from_logs_are_inert_in_titles_and_text() {
    let english = renderer(CONFIG);
    for hostile in HOSTILE {
        let mut batch = Batch::default();
        batch.add_notice(notice("ssh", Severity::Warning, hostile, resolved()));
        batch.add_notice(notice("ssh", Severity::Warning, hostile, resolved()));
        let draft = english.draft(&batch, "ops");
        let text = markdown(&draft, 18_000);
        let found: Vec<String> = constructs(&text)
            .into_iter()
            .filter(|c| !["Paragraph", "Heading", "List", "Item", "Strong"].contains(&c.as_str()))
            .collect();
        assert!(found.is_empty(), "{hostile:?} formed {found:?} in {text}");
    }
}
