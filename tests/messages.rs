//! Messages an ops team can trust and read (issue 11): log text arrives inert in the group, every
//! message kind is accepted by DingTalk, mentions come from the log, times are the log's own in
//! the configured zone, and summaries count values exactly over the whole batch.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pulldown_cmark::{Event, Options, Parser, Tag};
use serde_json::Value;

use crate::support::daemon::Daemon;
use crate::support::harness::{Dir, stdout_ok};
use crate::support::standin::{Received, Standin};

const WAIT: Duration = Duration::from_secs(20);

/// A config tailing `logs/*.log` from its end, in English and UTC, with `robots` (YAML, two
/// spaces in) and `extra` top-level keys, rules from `rules.yaml`.
fn config(dir: &Dir, robots: &str, extra: &str) -> PathBuf {
    dir.create("logs/app.log", "");
    dir.create(
        "dingtail.yaml",
        format!(
            "language: en
timezone: UTC
host: web-1
state_dir: state
inputs:
  app:
    paths: [\"logs/*.log\"]
    start_at: end
    poll_interval: 200ms
robots:
{robots}rules: [\"rules.yaml\"]
{extra}"
        ),
    )
}

fn append(path: &Path, text: &[u8]) {
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text).unwrap();
}

/// The stand-in's robot entry with a short linger.
fn robot(standin: &Standin, name: &str, extra: &str) -> String {
    format!("{}    linger: 500ms\n{extra}", standin.robot_yaml(name))
}

/// The markdown structure a reader's client would build: one name per construct.
fn constructs(markdown: &str) -> Vec<String> {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    Parser::new_ext(markdown, options)
        .filter_map(|event| match event {
            Event::Start(Tag::Paragraph) | Event::Start(Tag::Item) => None,
            Event::Start(tag) => Some(
                format!("{tag:?}")
                    .split(['(', ' ', '{'])
                    .next()?
                    .to_string(),
            ),
            Event::Html(_) | Event::InlineHtml(_) => Some("Html".into()),
            Event::Code(_) => Some("Code".into()),
            Event::Rule => Some("Rule".into()),
            _ => None,
        })
        .collect()
}

/// The text a reader sees in `markdown`.
fn visible(markdown: &str) -> String {
    let mut out = String::new();
    for event in Parser::new(markdown) {
        match event {
            Event::Text(text) => out.push_str(&text),
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            _ => {}
        }
    }
    out.replace('\u{200B}', "")
}

fn body(received: &Received) -> &Value {
    received.body.as_ref().unwrap()
}

#[test]
fn a_hostile_sshd_line_reaches_the_group_inert() {
    let standin = Standin::start();
    let dir = Dir::new("inert");
    let config = config(&dir, &robot(&standin, "ops", ""), "");
    dir.create(
        "rules.yaml",
        r#"- name: sshd-auth-failure
  input: app
  match: 'sshd\[\d+\]: Failed (?P<method>password) for (?P<invalid>invalid user )?(?P<user>.+) from (?P<ip>[0-9a-fA-F.:]+) port \d+'
  robot: ops
  title: 'sshd: {{ user }} on {{ host }}'
  template: '{{ method }} for {{ invalid }}**{{ user }}** from {{ ip }}'
"#,
    );
    let log = dir.join("logs/app.log");
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    daemon.wait_for_log("dingtail running", WAIT);
    let hostile = "a`[click](http://evil.example)` ![x](http://evil.example/x.png) <font color=red>@all</font> # \u{0}\u{1b}[2J\u{7}\u{8}";
    append(
        &log,
        format!("Dec 10 06:55:46 web-1 sshd[2201]: Failed password for invalid user {hostile} from 203.0.113.9 port 52214 ssh2\n").as_bytes(),
    );
    let lone = standin.wait_delivered(1, WAIT);
    // A burst: the same line among others, in a summary.
    let mut burst = String::new();
    for i in 0..3 {
        burst.push_str(&format!(
            "Dec 10 06:56:0{i} web-1 sshd[2202]: Failed password for {hostile}{i} from 198.51.100.7 port 2222 ssh2\n"
        ));
    }
    append(&log, burst.as_bytes());
    let delivered = standin.wait_delivered(2, WAIT);
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.describe());
    let one = body(&lone[0]);
    let text = one["markdown"]["text"].as_str().unwrap();
    assert_eq!(
        constructs(text),
        ["Heading", "Strong"],
        "only the layout's heading and the rule's bold:\n{text}"
    );
    assert!(
        visible(text).contains(
            "password for invalid user a`[click](http://evil.example)` ![x](http://evil.example/x.png) <font color=red>@all</font> # ␀␛[2J␇␈ from 203.0.113.9"
        ),
        "the line reads as written, control bytes visible:\n{text}"
    );
    let title = one["markdown"]["title"].as_str().unwrap();
    assert!(
        title.starts_with("sshd: a`[click](http://evil.example)`") && title.contains("␀␛[2J␇␈"),
        "{title}"
    );
    let raw = &lone[0].raw_body;
    for control in ['\u{0}', '\u{1b}', '\u{7}', '\u{8}'] {
        let escaped = format!("\\u{:04x}", u32::from(control));
        assert!(
            !raw.contains(control) && !raw.contains(&escaped),
            "no raw control byte {escaped} reaches DingTalk: {raw}"
        );
    }
    assert!(
        one.get("at").is_none(),
        "no mention from `@all` in a log line"
    );
    let summary = body(&delivered[1]);
    let text = summary["markdown"]["text"].as_str().unwrap();
    let found = constructs(text);
    assert!(
        found
            .iter()
            .all(|c| matches!(c.as_str(), "Heading" | "Strong" | "List")),
        "a summary: headings, bold rule names and samples only: {found:?}\n{text}"
    );
    assert_eq!(
        found.iter().filter(|c| *c == "Heading").count(),
        1,
        "{text}"
    );
    assert!(
        visible(text).contains("<font color=red>@all</font>"),
        "{text}"
    );
}

#[test]
fn every_kind_of_message_is_accepted_by_dingtalk() {
    let standin = Standin::start();
    let dir = Dir::new("kinds");
    let robots = format!(
        "{}{}{}",
        robot(&standin, "ops", ""),
        robot(&standin, "plain", "    msgtype: text\n"),
        robot(&standin, "card", "    msgtype: actionCard\n"),
    );
    let config = config(&dir, &robots, "");
    dir.create(
        "rules.yaml",
        r#"- name: kind-markdown
  input: app
  match: 'MD (?P<n>\d+)'
  robot: ops
  template: '**markdown** {{ n }}'
- name: kind-text
  input: app
  match: 'TXT (?P<n>\d+)'
  robot: ops
  msgtype: text
  template: '**not bold** {{ n }}'
  at: {mobiles: ['13800000000']}
- name: kind-card
  input: app
  match: 'CARD (?P<id>\S+)'
  robot: ops
  msgtype: actionCard
  template: 'order {{ id }} failed'
  link: {title: 'Order {{ id }}', url: 'https://shop.example/orders?id={{ id }}'}
- name: burst-text
  input: app
  match: 'BURST (?P<n>\d+)'
  robot: plain
- name: burst-card
  input: app
  match: 'CBURST (?P<id>\S+)'
  robot: card
  link: {title: 'Runbook', url: 'https://wiki.example/r/{{ id }}'}
"#,
    );
    let log = dir.join("logs/app.log");
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    daemon.wait_for_log("dingtail running", WAIT);
    for (n, line) in ["MD 1\n", "TXT 2\n", "CARD 42&x=1\n"].iter().enumerate() {
        append(&log, line.as_bytes());
        standin.wait_delivered(n + 1, WAIT);
    }
    append(&log, b"BURST 1\nBURST 2\nCBURST a\nCBURST b\n");
    let delivered = standin.wait_delivered(5, WAIT);
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.describe());
    assert!(
        standin.received().iter().all(Received::is_delivered),
        "DingTalk's schema accepted every body: {:?}",
        standin
            .received()
            .iter()
            .map(|r| (r.answer, r.raw_body.clone()))
            .collect::<Vec<_>>()
    );
    let kinds: Vec<&str> = delivered.iter().map(|r| r.msgtype().unwrap()).collect();
    assert_eq!(&kinds[..3], ["markdown", "text", "actionCard"]);
    let text = body(&delivered[1]);
    assert_eq!(
        text["text"]["content"],
        "kind-text (warning) on web-1\n\n**not bold** 2\n\n@13800000000"
    );
    assert_eq!(text["at"]["atMobiles"][0], "13800000000");
    let card = &body(&delivered[2])["actionCard"];
    assert_eq!(card["singleTitle"], "Order 42&x=1");
    assert_eq!(
        card["singleURL"],
        "https://shop.example/orders?id=42%26x%3D1"
    );
    assert_eq!(
        card["text"],
        "#### kind-card (warning) on web-1\n\norder 42&amp;x=1 failed\n"
    );
    let mut summaries: Vec<&Value> = delivered[3..].iter().map(body).collect();
    summaries.sort_by_key(|b| b["msgtype"].as_str().unwrap_or_default().to_string());
    assert_eq!(summaries[0]["msgtype"], "actionCard");
    let buttons = &summaries[0]["actionCard"];
    assert_eq!(
        buttons["singleURL"], "https://wiki.example/r/b",
        "the latest sample's link"
    );
    assert_eq!(summaries[1]["msgtype"], "text");
    let content = summaries[1]["text"]["content"].as_str().unwrap();
    assert!(
        content
            .starts_with("[warning] web-1: 2 alerts from 1 rule\n\nburst-text · warning · 2× · "),
        "{content}"
    );
    assert!(content.contains("\n- BURST 1\n- BURST 2\n"), "{content}");
}

#[test]
fn mentions_come_from_the_log_and_the_people_map() {
    let standin = Standin::start();
    let dir = Dir::new("mentions");
    let config = config(
        &dir,
        &robot(&standin, "ops", ""),
        "people:\n  payments: {mobiles: ['13800000001'], user_ids: [pay-oncall]}\n",
    );
    dir.create(
        "rules.yaml",
        r#"- name: page
  input: app
  match: 'PAGE service=(?P<service>\S*) owner=(?P<owner>\S*)'
  robot: ops
  template: '{{ line }}'
  at: {mobiles: ['{{ owner }}'], people: ['{{ service }}']}
"#,
    );
    let log = dir.join("logs/app.log");
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    daemon.wait_for_log("dingtail running", WAIT);
    append(&log, b"PAGE service=payments owner=13900000002\n");
    standin.wait_delivered(1, WAIT);
    append(&log, b"PAGE service=nobody owner=call-me\n");
    let delivered = standin.wait_delivered(2, WAIT);
    daemon.wait_for_log("rendered to no valid mention", WAIT);
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.describe());
    let first = body(&delivered[0]);
    assert_eq!(
        first["at"]["atMobiles"],
        serde_json::json!(["13900000002", "13800000001"])
    );
    assert_eq!(first["at"]["atUserIds"], serde_json::json!(["pay-oncall"]));
    let text = first["markdown"]["text"].as_str().unwrap();
    for who in ["@13900000002", "@13800000001", "@pay-oncall"] {
        assert!(text.contains(who), "{who} is written in the text: {text}");
    }
    assert!(
        body(&delivered[1]).get("at").is_none(),
        "an unknown person and a non-number page nobody: {}",
        delivered[1].raw_body
    );
    let warnings = daemon
        .stderr()
        .iter()
        .filter(|l| l.contains("rendered to no valid mention"))
        .count();
    assert_eq!(warnings, 1, "one warning per rule{}", daemon.describe());
}

/// `dingtail test --render` of `log` (written to a file) with the rules of input `input`.
fn render(dir: &Dir, config: &Path, input: &str, log: &str) -> String {
    let path = dir.create(format!("{input}.log"), log);
    stdout_ok(
        dir.command()
            .arg("test")
            .arg("-c")
            .arg(config)
            .args(["--input", input, "--render"])
            .arg(path),
    )
}

#[test]
fn times_are_the_lines_own_in_the_configured_zone() {
    let dir = Dir::new("times");
    let config = dir.create(
        "dingtail.yaml",
        r#"language: en
timezone: Asia/Shanghai
host: web-1
state_dir: state
inputs:
  syslog:
    paths: /nonexistent/syslog
    timestamp: {pattern: '^(\w{3} +\d{1,2} \d\d:\d\d:\d\d)', format: '%b %e %H:%M:%S'}
  nginx:
    paths: /nonexistent/access.log
    timestamp: {pattern: '\[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]', format: '%d/%b/%Y:%H:%M:%S %z'}
  mysql:
    paths: /nonexistent/error.log
    timestamp: {pattern: '^(\S+Z) ', format: rfc3339}
  utc:
    paths: /nonexistent/utc.log
    timestamp: {pattern: '^(\S+Z) ', format: rfc3339}
robots:
  ops:
    webhook: stdout
  utc:
    webhook: stdout
rules: [rules.yaml]
"#,
    );
    dir.create(
        "rules.yaml",
        r#"- name: sshd
  input: syslog
  match: 'Failed password'
  robot: ops
  template: 'at {{ time }}'
- name: nginx-5xx
  input: nginx
  match: '" 5\d\d '
  robot: ops
  template: 'at {{ time }}'
- name: mysql-error
  input: mysql
  match: '\[ERROR\]'
  robot: ops
  template: 'at {{ time }} ({{ time | datetime("%H:%M %Z") }})'
"#,
    );
    let out = render(
        &dir,
        &config,
        "syslog",
        "Dec 10 06:55:46 web-1 sshd[1]: Failed password for root from 203.0.113.9 port 22 ssh2\n",
    );
    assert!(out.contains("-12-10T06:55:46+08:00\n"), "{out}");
    let out = render(
        &dir,
        &config,
        "nginx",
        "198.51.100.23 - - [25/Nov/2026:08:01:03 +0800] \"POST /api HTTP/1.1\" 502 157\n\
         198.51.100.23 - - [25/Nov/2026:14:01:03 +0800] \"POST /api HTTP/1.1\" 503 157\n",
    );
    assert!(
        out.contains("**nginx-5xx** · warning · 2× · 2026-11-25 08:01:03 → 14:01:03 +08:00 (6 h)"),
        "a replayed six-hour burst shows its six hours: {out}"
    );
    let out = render(
        &dir,
        &config,
        "mysql",
        "2026-11-25T08:01:02.345678Z 0 [ERROR] [MY-012592] [InnoDB] error 28\n",
    );
    assert!(
        out.contains("at 2026-11-25T16:01:02+08:00 (16:01 CST)\n"),
        "{out}"
    );
}

#[test]
fn top_values_are_counted_exactly_and_samples_span_the_batch() {
    let dir = Dir::new("top");
    let config = dir.create(
        "dingtail.yaml",
        "language: en\ntimezone: UTC\nhost: web-1\ninputs:\n  auth:\n    paths: /nonexistent/auth.log\nrobots:\n  ops:\n    webhook: stdout\nrules: [rules.yaml]\n",
    );
    dir.create(
        "rules.yaml",
        r#"- name: pam
  input: auth
  match: 'authentication failure; .* rhost=(?P<ip>\S+)\s+user=(?P<user>\S+)'
  robot: ops
  template: '{{ user }} from {{ ip }}'
  top: [ip, user]
"#,
    );
    // 489 PAM failures from 37 addresses, one address after the other (the last ones last).
    let mut log = String::new();
    let mut n = 0;
    for a in 0..37 {
        let count = if a == 0 {
            120
        } else if a == 1 {
            45
        } else {
            9 + a % 2
        };
        for _ in 0..count {
            if n < 489 {
                log.push_str(&format!(
                    "Nov 25 08:00:00 web-1 sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.{a}  user=user{a}\n"
                ));
                n += 1;
            }
        }
    }
    assert_eq!(n, 489);
    let out = render(&dir, &config, "auth", &log);
    assert!(out.contains("**pam** · warning · 489× · "), "{out}");
    assert!(
        out.contains("ip: 198.51.100.0 ×120, 198.51.100.1 ×45, "),
        "exact counts, most frequent first: {out}"
    );
    assert!(out.contains("… (37 distinct)"), "{out}");
    let shown: Vec<u32> = out
        .lines()
        .filter_map(|line| line.strip_prefix("- user"))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(shown.first(), Some(&0), "the first match: {out}");
    assert!(
        shown.last().is_some_and(|last| *last >= 25),
        "samples reach the end of the batch, not only its first 20 lines: {shown:?}\n{out}"
    );
    assert!(out.contains("- and 484 more\n"), "{out}");
}
