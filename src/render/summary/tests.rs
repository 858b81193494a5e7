//! Summaries: titles with level, host and count; sections critical first with exact counts, in
//! either language; top values; samples spread; kinds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::batch::{Batch, Hit, Rendered};
use crate::dingtalk::draft::{MsgType, markdown};
use crate::dingtalk::{Message, compose};
use crate::event::{Markup, Mentions, Severity};
use crate::render::Renderer;
use crate::render::tests::{CONFIG, load_with};

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_709_211_900 + seconds)
}

fn add(
    batch: &mut Batch,
    rule: &str,
    severity: Severity,
    line: &str,
    file: &str,
    t: u64,
    m: &Mentions,
) {
    batch.add(
        Hit {
            rule,
            severity,
            line,
            file,
            host: "web-1",
            at: at(t),
            mentions: m,
            top: &[],
        },
        || Rendered::markdown(format!("{rule} title"), format!("sample {line}")),
    );
}

/// A renderer without rules under [`CONFIG`] changed by `edit`.
fn renderer(edit: impl Fn(&str) -> String) -> Renderer {
    let (_dir, specs, config) = load_with("", &edit(CONFIG));
    Renderer::new(&specs, &config).unwrap()
}

fn english() -> Renderer {
    renderer(str::to_string)
}

#[test]
fn a_lone_match_is_sent_as_itself() {
    let mut batch = Batch::default();
    let ops = Mentions {
        mobiles: vec!["13800000000".into()],
        ..Mentions::default()
    };
    add(
        &mut batch,
        "oom",
        Severity::Critical,
        "killed",
        "/var/log/kern.log",
        0,
        &ops,
    );
    let draft = english().draft(&batch, "ops");
    assert_eq!(draft.title, "oom title");
    assert_eq!(
        markdown(&draft, 20_000),
        "#### oom title\n\nsample killed\n"
    );
    assert_eq!(draft.mentions.mobiles, ["13800000000"]);
}

fn mixed_batch() -> Batch {
    let none = Mentions::default();
    let dba = Mentions {
        user_ids: vec!["dba1".into()],
        ..Mentions::default()
    };
    let mut batch = Batch::default();
    for i in 0..1000u64 {
        let file = format!("/var/log/nginx/{}.log", i % 5);
        add(
            &mut batch,
            "nginx-5xx",
            Severity::Warning,
            &format!("GET /{}", i % 9),
            &file,
            i,
            &none,
        );
    }
    add(
        &mut batch,
        "mysql-deadlock",
        Severity::Critical,
        "Deadlock found\n  at x",
        "/var/log/mysql.log",
        5,
        &dba,
    );
    add(
        &mut batch,
        "mysql-deadlock",
        Severity::Critical,
        "Deadlock again",
        "/var/log/mysql.log",
        90_000,
        &dba,
    );
    batch
}

#[test]
fn a_summary_is_grouped_critical_first_with_exact_counts() {
    let batch = mixed_batch();
    let draft = english().draft(&batch, "ops");
    assert_eq!(draft.title, "[critical] web-1: 1002 alerts from 2 rules");
    let text = &markdown(&draft, 20_000);
    let mysql = text
        .find("**mysql-deadlock** · critical · 2× · 2024-02-29 13:05:05 → 2024-03-01 14:05:00 +00:00 (1 d)")
        .unwrap();
    let nginx = text
        .find(
            "**nginx-5xx** · warning · 1000× · 2024-02-29 13:05:00 → 13:21:39 +00:00 (16 min 39 s)",
        )
        .unwrap();
    assert!(mysql < nginx, "critical first:\n{text}");
    assert!(
        text.contains("- sample Deadlock found\n    at x\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "files: /var/log/nginx/0.log, /var/log/nginx/1.log, /var/log/nginx/2.log, and 2 more"
        ),
        "no file name in backticks: {text}"
    );
    assert!(!text.contains("hosts:"), "one host: named in the title");
    assert!(
        text.contains("- and 995 more\n"),
        "5 samples shown, the rest counted:\n{text}"
    );
    assert_eq!(draft.mentions.user_ids, ["dba1"]);
}

#[test]
fn a_summary_in_chinese_in_shanghai_time() {
    let renderer = renderer(|c| {
        c.replace("language: en\n", "")
            .replace("timezone: UTC", "timezone: Asia/Shanghai")
    });
    let draft = renderer.draft(&mixed_batch(), "ops");
    assert_eq!(draft.title, "【严重】web-1：2 条规则共 1002 条告警");
    let text = markdown(&draft, 20_000);
    assert!(
        text.contains(
            "**mysql-deadlock** · 严重 · 2 次 · 2024-02-29 21:05:05 → 2024-03-01 22:05:00 +08:00（1 天）"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "**nginx-5xx** · 警告 · 1000 次 · 2024-02-29 21:05:00 → 21:21:39 +08:00（16 分 39 秒）"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "文件：/var/log/nginx/0.log、/var/log/nginx/1.log、/var/log/nginx/2.log、另有 2 个"
        ),
        "{text}"
    );
    assert!(text.contains("- 另有 995 条\n"), "{text}");
}

#[test]
fn several_hosts_are_counted_in_the_title_and_listed() {
    let none = Mentions::default();
    let mut batch = Batch::default();
    for (i, host) in ["web-1", "web-2", "db-1"].iter().enumerate() {
        batch.add(
            Hit {
                rule: "oom",
                severity: Severity::Critical,
                line: host,
                file: "/var/log/kern.log",
                host,
                at: at(i as u64),
                mentions: &none,
                top: &[],
            },
            || Rendered::markdown("t", *host),
        );
    }
    let draft = english().draft(&batch, "ops");
    assert_eq!(draft.title, "[critical] 3 hosts: 3 alerts from 1 rule");
    assert!(markdown(&draft, 20_000).contains("hosts: db-1, web-1, web-2 · files:"));
}

#[test]
fn a_robots_summary_title_replaces_the_default() {
    let renderer = renderer(|c| {
        c.replace(
            "    webhook: stdout\n",
            "    webhook: stdout\n    summary_title: '{{ host }} {{ level }}: {{ count }} ({{ rules | join(\", \") }}; {{ hosts | length }} host)'\n",
        )
    });
    let draft = renderer.draft(&mixed_batch(), "ops");
    assert_eq!(
        draft.title,
        "web-1 critical: 1002 (mysql-deadlock, nginx-5xx; 1 host)"
    );
}

#[test]
fn top_values_are_listed_with_exact_counts() {
    let none = Mentions::default();
    let mut batch = Batch::default();
    let mut add_ip = |ip: &str, n: u64| {
        for _ in 0..n {
            let top = [("ip", ip)];
            let line = format!("Failed password for root from {ip}");
            batch.add(
                Hit {
                    rule: "sshd",
                    severity: Severity::Warning,
                    line: &line,
                    file: "/var/log/auth.log",
                    host: "web-1",
                    at: at(0),
                    mentions: &none,
                    top: &top,
                },
                || Rendered::markdown("t", line.clone()),
            );
        }
    };
    add_ip("203.0.113.9", 120);
    add_ip("198.51.100.7", 45);
    for i in 0..35 {
        add_ip(&format!("192.0.2.{i}"), 1 + i % 2);
    }
    let draft = english().draft(&batch, "ops");
    let text = markdown(&draft, 20_000);
    assert!(
        text.contains(
            "ip: 203.0.113.9 ×120, 198.51.100.7 ×45, 192.0.2.1 ×2, 192.0.2.11 ×2, 192.0.2.13 ×2, … (37 distinct)"
        ),
        "{text}"
    );
    assert!(text.contains("**sshd** · warning · 217×"), "{text}");
}

#[test]
fn a_robot_of_text_messages_gets_plain_summaries() {
    let renderer = renderer(|c| {
        c.replace(
            "    webhook: stdout\n",
            "    webhook: stdout\n    msgtype: text\n",
        )
    });
    let mut batch = Batch::default();
    let none = Mentions::default();
    for line in ["a [x](http://e.example)", "b"] {
        batch.add(
            Hit {
                rule: "r",
                severity: Severity::Info,
                line,
                file: "/f",
                host: "web-1",
                at: at(0),
                mentions: &none,
                top: &[],
            },
            || Rendered {
                markup: Markup::Plain,
                ..Rendered::markdown("t", line)
            },
        );
    }
    let draft = renderer.draft(&batch, "ops");
    assert_eq!(draft.kind, MsgType::Text);
    let Message::Text { content, .. } = compose(&draft, draft.kind, &[]) else {
        panic!("a text message");
    };
    assert!(
        content.starts_with("[info] web-1: 2 alerts from 1 rule\n\nr · info · 2× · "),
        "{content}"
    );
    assert!(
        content.contains("\n- a [x](http://e.example)\n- b\n"),
        "{content}"
    );
}

#[test]
fn a_summary_fits_the_budget_and_keeps_counts_exact() {
    let none = Mentions::default();
    let mut batch = Batch::default();
    for r in 0..40u64 {
        for i in 0..(r + 1) {
            let line = format!("{} {}", "x".repeat(300), i);
            add(
                &mut batch,
                &format!("rule-{r:02}"),
                Severity::Info,
                &line,
                "/f",
                i,
                &none,
            );
        }
    }
    let total: u64 = (1..=40).sum();
    let draft = english().draft(&batch, "ops");
    let text = markdown(&draft, 4_000);
    assert!(text.len() <= 4_000, "{}", text.len());
    assert!(
        draft
            .title
            .contains(&format!("{total} alerts from 40 rules"))
    );
    // The rules shown plus the rules left out add up to every rule and every alert.
    let shown: Vec<(u64, &str)> = text
        .lines()
        .filter(|l| l.starts_with("**rule-"))
        .map(|l| {
            let count = l.split(" · ").nth(2).unwrap().trim_end_matches('×');
            (count.parse().unwrap(), l)
        })
        .collect();
    let footer = text.lines().last().unwrap();
    let (n_rules, n_alerts) = {
        let words: Vec<&str> = footer.split(' ').collect();
        (
            words[1].parse::<u64>().unwrap(),
            words[4].trim_start_matches('(').parse::<u64>().unwrap(),
        )
    };
    assert_eq!(shown.len() as u64 + n_rules, 40, "{footer}");
    assert_eq!(
        shown.iter().map(|s| s.0).sum::<u64>() + n_alerts,
        total,
        "{footer}"
    );
}
