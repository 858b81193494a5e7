//! Rendering matches: context, escaping of log text per kind, links, mentions, times, errors.

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use crate::config::rules::{RuleSource, load};
use crate::config::{Config, Diagnostics, RuleSpec};
use crate::dingtalk::escape::MENTION_BREAK;
use crate::dingtalk::escape::tests::{HOSTILE, constructs, visible};
use crate::event::{FileId, LogLine, Markup};
use crate::render::Renderer;
use crate::rules::{Rule, RuleSet};

/// The main config of these tests: English, UTC, two people.
pub(crate) const CONFIG: &str = "language: en
timezone: UTC
host: web-1
inputs:
  app:
    paths: /x.log
robots:
  ops:
    webhook: stdout
people:
  payments:
    mobiles: ['13800000001']
  dba:
    user_ids: [dba-1]
";

/// The rule specs of `rules` under the main config `config_text`, with the config.
pub(crate) fn load_with(
    rules: &str,
    config_text: &str,
) -> (tempfile::TempDir, Vec<RuleSpec>, Config) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.yaml"), rules).unwrap();
    let config: Config =
        crate::config::load::parse(&dir.path().join("dingtail.yaml"), config_text, &|_| None)
            .unwrap();
    let found = load(&config, &RuleSource::Files(vec![dir.path().join("r.yaml")]));
    assert!(found.errors.is_empty(), "{}", found.errors);
    (dir, found.specs, config)
}

/// A renderer and the rule set of `rules` (under [`CONFIG`]).
pub(crate) fn setup(rules: &str) -> (tempfile::TempDir, Renderer, RuleSet) {
    let (dir, specs, config) = load_with(rules, CONFIG);
    let renderer = Renderer::new(&specs, &config).unwrap();
    let set = RuleSet::new("app", specs.iter().map(Rule::new).collect()).unwrap();
    (dir, renderer, set)
}

fn errors(rules: &str) -> Vec<String> {
    let (_dir, specs, config) = load_with(rules, CONFIG);
    let Err(Diagnostics(diags)) = Renderer::new(&specs, &config) else {
        panic!("expected template errors");
    };
    diags
        .iter()
        .map(|d| {
            let file = d.file.file_name().unwrap().to_string_lossy().into_owned();
            format!("{file}{}", d.to_string().rsplit_once("r.yaml").unwrap().1)
        })
        .collect()
}

/// `text` as a reader sees it: control bytes as pictures, tabs as spaces.
fn pictured(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' => " ".to_string(),
            '\u{202e}' => "‹U+202E›".to_string(),
            c if u32::from(c) < 0x20 => char::from_u32(0x2400 + u32::from(c)).unwrap().to_string(),
            c => c.to_string(),
        })
        .collect()
}

pub(crate) fn line(text: &str) -> LogLine {
    LogLine {
        input: "app".into(),
        file_id: FileId(1),
        path: PathBuf::from("/var/log/app.log").into(),
        start_offset: 0,
        end_offset: text.len() as u64 + 1,
        text: text.into(),
        truncated: false,
        invalid: false,
        read_at: UNIX_EPOCH + Duration::from_secs(1_709_211_909),
        event_time: None,
        context: crate::fields::Context::new(),
        fields: None,
    }
}

#[test]
fn renders_a_match_with_captures_and_context() {
    let (_dir, renderer, set) = setup(
        r#"- name: nginx-5xx
  input: app
  match: '" (?P<status>5\d\d) '
  severity: critical
  robot: ops
  title: 'nginx {{ status }} on {{ host }}'
  template: '{{ time | datetime("%H:%M:%S") }} {{ file }} [{{ severity }}/{{ rule }}/{{ input }}] {{ line }} ({{ count }}, {{ first_seen }})'
- name: plain
  input: app
  match: 'x'
  robot: ops
"#,
    );
    let log = line(r#""GET /" 502 x"#);
    let mut found = Vec::new();
    set.matches(&log.text, &mut found);
    assert_eq!(found.len(), 2);
    let rendered =
        renderer.render_match(&set.rules()[0], &found[0], &log, "web-1", Markup::Markdown);
    assert_eq!(rendered.title, "nginx 502 on web-1");
    assert_eq!(
        rendered.text,
        r#"13:05:09 /var/log/app.log [critical/nginx-5xx/app] "GET /" 502 x (1, 2024-02-29T13:05:09Z)"#
    );
    let rendered =
        renderer.render_match(&set.rules()[1], &found[1], &log, "web-1", Markup::Markdown);
    assert_eq!(rendered.title, "plain (warning) on web-1");
    assert_eq!(rendered.text, log.text);
}

#[test]
fn times_are_in_the_configured_zone_and_the_event_time_wins() {
    let rules = "- name: t\n  input: app\n  match: x\n  robot: ops\n  template: '{{ time }} {{ time | datetime(\"%H:%M %Z\") }}'\n";
    let (_dir, specs, config) = load_with(
        rules,
        &CONFIG.replace("timezone: UTC", "timezone: Asia/Shanghai"),
    );
    let renderer = Renderer::new(&specs, &config).unwrap();
    let set = RuleSet::new("app", specs.iter().map(Rule::new).collect()).unwrap();
    let mut log = line("x");
    let mut found = Vec::new();
    set.matches(&log.text, &mut found);
    let text = |log: &LogLine| {
        renderer
            .render_match(&set.rules()[0], &found[0], log, "h", Markup::Plain)
            .text
    };
    assert_eq!(text(&log), "2024-02-29T21:05:09+08:00 21:05 CST");
    log.event_time = Some(UNIX_EPOCH + Duration::from_secs(1_709_211_909 - 6 * 3600));
    assert_eq!(text(&log), "2024-02-29T15:05:09+08:00 15:05 CST");
}

#[test]
fn log_text_forms_nothing_while_the_authors_markdown_renders() {
    let (_dir, renderer, set) = setup(
        r#"- name: sshd
  input: app
  match: 'Failed password for (?P<user>.*) from (?P<ip>\S+)'
  robot: ops
  title: 'sshd: {{ user }} on {{ host }}'
  template: "**{{ user }}** from {{ ip }}\n\n> {{ line }}\n\n- [runbook](https://wiki.example/sshd)"
"#,
    );
    let benign = {
        let log = line("Failed password for root from 203.0.113.9");
        let mut found = Vec::new();
        set.matches(&log.text, &mut found);
        let rendered =
            renderer.render_match(&set.rules()[0], &found[0], &log, "h", Markup::Markdown);
        constructs(&rendered.text)
    };
    assert_eq!(
        benign,
        [
            "Paragraph",
            "Strong",
            "BlockQuote",
            "Paragraph",
            "List",
            "Item",
            "Link"
        ]
    );
    for hostile in HOSTILE {
        let user = hostile.replace('\n', " ");
        let text = format!("Failed password for {user} from 203.0.113.9");
        let log = line(&text);
        let mut found = Vec::new();
        set.matches(&log.text, &mut found);
        assert_eq!(found.len(), 1, "{text}");
        let rendered =
            renderer.render_match(&set.rules()[0], &found[0], &log, "h", Markup::Markdown);
        assert_eq!(
            constructs(&rendered.text),
            benign,
            "{hostile:?}:\n{}",
            rendered.text
        );
        assert!(
            visible(&rendered.text).contains(&pictured(user.trim_matches([' ', '\t']))),
            "the user name reads as written: {:?}",
            rendered.text
        );
        assert!(!rendered.title.contains('\n'));
    }
}

#[test]
fn raw_opts_out_on_purpose_and_text_messages_only_break_mentions_and_addresses() {
    let (_dir, renderer, set) = setup(
        r#"- name: r
  input: app
  match: 'say (?P<what>.*)'
  robot: ops
  template: '{{ what | raw }} / {{ what }}'
"#,
    );
    let log = line("say [x](http://e.example) @all \u{7}");
    let mut found = Vec::new();
    set.matches(&log.text, &mut found);
    let rule = &set.rules()[0];
    let md = renderer.render_match(rule, &found[0], &log, "h", Markup::Markdown);
    assert_eq!(
        md.text,
        format!(
            "[x](http://e.example) @all \u{7} / \\[x\\](http:{MENTION_BREAK}//e.example) @{MENTION_BREAK}all ␇"
        )
    );
    let plain = renderer.render_match(rule, &found[0], &log, "h", Markup::Plain);
    assert_eq!(plain.markup, Markup::Plain);
    assert_eq!(
        plain.text,
        format!(
            "[x](http://e.example) @all \u{7} / [x](http:{MENTION_BREAK}//e.example) @{MENTION_BREAK}all ␇"
        )
    );
}

#[test]
fn links_are_checked_and_log_values_percent_encoded() {
    let (_dir, renderer, set) = setup(
        r#"- name: r
  input: app
  match: 'user (?P<user>\S+)'
  robot: ops
  msgtype: actionCard
  link:
    title: 'Logins of {{ user }}'
    url: 'https://grafana.example/d/ssh?user={{ user }}&host={{ host }}'
"#,
    );
    let log = line("user a&b=c/../@evil.example#x");
    let mut found = Vec::new();
    set.matches(&log.text, &mut found);
    let rendered =
        renderer.render_match(&set.rules()[0], &found[0], &log, "web-1", Markup::Markdown);
    let link = rendered.link.unwrap();
    assert_eq!(link.title, "Logins of a&b=c/../@evil.example#x");
    assert_eq!(
        link.url,
        "https://grafana.example/d/ssh?user=a%26b%3Dc%2F..%2F%40evil.example%23x&host=web-1"
    );
    assert_eq!(renderer.msgtype_for("r", "ops").as_str(), "actionCard");
}

#[test]
fn mentions_come_from_data_and_bad_ones_are_dropped() {
    let (_dir, renderer, set) = setup(
        r#"- name: r
  input: app
  match: 'service=(?P<service>\S*) owner=(?P<owner>\S*)'
  robot: ops
  at:
    mobiles: ['13900000000', '{{ owner }}']
    people: ['{{ service }}', dba]
"#,
    );
    let rule = &set.rules()[0];
    let mentions = |text: &str| {
        let log = line(text);
        let mut found = Vec::new();
        set.matches(&log.text, &mut found);
        renderer.mentions(rule, &found[0], &log, "h").into_owned()
    };
    let m = mentions("service=payments owner=13700000000");
    assert_eq!(m.mobiles, ["13900000000", "13700000000", "13800000001"]);
    assert_eq!(m.user_ids, ["dba-1"]);
    // Empty renders are dropped, so are a non-number and an unknown person.
    let m = mentions("service= owner=");
    assert_eq!(m.mobiles, ["13900000000"]);
    let m = mentions("service=nobody owner=@all");
    assert_eq!(m.mobiles, ["13900000000"]);
    assert_eq!(m.user_ids, ["dba-1"]);
    assert!(!m.all);
}

#[test]
fn captures_that_took_no_part_are_empty_not_undefined() {
    let (_dir, renderer, set) = setup(
        r#"- name: exc
  input: app
  match: ['(?P<exception>\w+Error)(?:: (?P<message>.*))?', '(?P<signal>SIG\w+)']
  robot: ops
  template: '{{ exception }}|{{ message }}|{{ signal }}'
"#,
    );
    let mut found = Vec::new();
    for (text, want) in [
        ("KeyError", "KeyError||"),
        ("KeyError: x", "KeyError|x|"),
        ("got SIGKILL", "||SIGKILL"),
    ] {
        let log = line(text);
        set.matches(&log.text, &mut found);
        let rendered =
            renderer.render_match(&set.rules()[0], &found[0], &log, "h", Markup::Markdown);
        assert_eq!(rendered.text, want);
    }
}

#[test]
fn template_errors_point_at_file_line_column_and_rule() {
    let errs = errors(
        r#"- name: a
  input: app
  match: '(?P<status>\d+)'
  robot: ops
  title: 'status {{ stauts }}'
  template: '{{ line }'
- name: b
  input: app
  match: 'x'
  robot: ops
  summary: '{{ count }} times, {{ line }}'
- name: c
  input: app
  match: 'x'
  robot: ops
  link: {title: 'go', url: 'https://x.example/{{ nope }}'}
"#,
    );
    assert_eq!(
        errs,
        [
            "r.yaml:5:21: rule `a`: title: undefined variable `stauts` (known here: status, line, file, input, host, rule, severity, time, count, first_seen, last_seen) (did you mean `status`?)",
            "r.yaml:6:22: rule `a`: template: template syntax error: unexpected `}`, expected end of variable block",
            "r.yaml:11:35: rule `b`: summary: undefined variable `line` (known here: rule, severity, count, first_seen, last_seen, hosts, files)",
            "r.yaml:16:50: rule `c`: link.url: undefined variable `nope` (known here: line, file, input, host, rule, severity, time, count, first_seen, last_seen)",
        ]
    );
}

#[test]
fn a_robots_summary_title_is_checked_at_load() {
    let config = CONFIG.replace(
        "    webhook: stdout\n",
        "    webhook: stdout\n    summary_title: '{{ levle }}: {{ count }}'\n",
    );
    let (_dir, specs, config) = load_with("", &config);
    let Err(Diagnostics(diags)) = Renderer::new(&specs, &config) else {
        panic!("expected an error");
    };
    let text = diags[0].to_string();
    assert!(
        text.contains(
            "dingtail.yaml:10:24: robot `ops`: summary_title: undefined variable `levle` (known here: level, count, rules, hosts, host)"
        ),
        "{text}"
    );
}

#[test]
fn a_runtime_failure_falls_back_to_the_plain_rendering() {
    let (_dir, renderer, set) = setup(
        r#"- name: a
  input: app
  match: '(?P<word>\w+)'
  robot: ops
  title: '{{ word | datetime }}'
  template: '{{ word | datetime }}'
"#,
    );
    let log = line("hello");
    let mut found = Vec::new();
    set.matches(&log.text, &mut found);
    for _ in 0..2 {
        let rendered =
            renderer.render_match(&set.rules()[0], &found[0], &log, "h", Markup::Markdown);
        assert_eq!(
            (rendered.title.as_str(), rendered.text.as_str()),
            ("a (warning) on h", "hello")
        );
    }
}
