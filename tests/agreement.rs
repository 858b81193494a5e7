//! `dingtail test` and `dingtail run` agree on every log (issue 10): the per-rule counts `test`
//! prints are the counts `run` delivers, on a log with multi-line events, over-long lines, CRLF,
//! invalid UTF-8 and a last line without a newline.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::daemon::Daemon;
use crate::support::harness::{Dir, stdout_ok};

const CONFIG: &str = r#"
language: en
state_dir: state
inputs:
  app:
    paths: [app.log]
    start_at: beginning
    max_line_bytes: 200
    partial_timeout: 1s
    multiline:
      start: '^\d{4}-\d{2}-\d{2} '
      timeout: 500ms
robots:
  console:
    webhook: stdout
    per_minute: 1000
    window: 1s
    linger: 200ms
rules: [rules.yaml]
"#;

/// Every rule titles a lone message with its own name, so that delivered counts can be read back.
const RULES: &str = r#"
- name: error
  input: app
  match: '\bERROR\b'
  robot: console
  title: '{{ rule }}'
- name: exception
  input: app
  match: '(?m)^[\w.]+Exception: '
  robot: console
  title: '{{ rule }}'
- name: disk
  input: app
  match: 'disk at \d+%$'
  robot: console
  title: '{{ rule }}'
- name: cut-away
  input: app
  match: 'TAIL-MARKER'
  robot: console
  title: '{{ rule }}'
- name: replacement
  input: app
  match: '\x{FFFD}'
  robot: console
  title: '{{ rule }}'
- name: unterminated
  input: app
  match: 'without newline$'
  robot: console
  title: '{{ rule }}'
"#;

/// A log mixing every case; returns its bytes.
fn mixed_log() -> Vec<u8> {
    let mut log = Vec::new();
    for i in 0..40 {
        log.extend_from_slice(
            format!(
                "2024-01-01 10:00:{:02} ERROR failure {i}\n\
                 java.lang.IllegalStateException: boom {i}\n\
                 \tat a.b(C.java:{i})\n",
                i % 60
            )
            .as_bytes(),
        );
        log.extend_from_slice(format!("2024-01-01 10:01:00 INFO fine {i}\r\n").as_bytes());
        if i % 3 == 0 {
            log.extend_from_slice(
                format!("2024-01-01 10:02:00 WARN disk at 9{}%\r\n", i % 10).as_bytes(),
            );
        }
        if i % 4 == 0 {
            log.extend_from_slice(b"2024-01-01 10:03:00 ERROR bytes \xff\xfe invalid\n");
        }
        if i % 5 == 0 {
            log.extend_from_slice(b"2024-01-01 10:04:00 ERROR long ");
            log.extend_from_slice(&vec![b'A'; 300]);
            log.extend_from_slice(b" TAIL-MARKER\n");
        }
    }
    log.extend_from_slice(b"2024-01-01 10:05:00 ERROR last line without newline");
    log
}

/// `  NAME: COUNT (SEVERITY)` lines of `dingtail test`'s report.
fn test_counts(report: &str) -> BTreeMap<String, u64> {
    report
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("  ")?;
            let (name, rest) = rest.split_once(": ")?;
            let (count, severity) = rest.split_once(' ')?;
            severity.starts_with('(').then_some(())?;
            Some((name.to_string(), count.parse().ok()?))
        })
        .collect()
}

/// Per rule, the events the `stdout` robot's messages report: a lone message counts one for the
/// rule its title names; a summary lists `**rule** · severity · N×`.
fn delivered(daemon: &Daemon) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for message in daemon.messages() {
        let markdown = &message["markdown"];
        let title = markdown["title"].as_str().unwrap_or_default();
        let text = markdown["text"].as_str().unwrap_or_default();
        if !title.starts_with('[') {
            *counts.entry(title.to_string()).or_default() += 1;
            continue;
        }
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("**") else {
                continue;
            };
            let Some((name, rest)) = rest.split_once("** · ") else {
                continue;
            };
            let count = rest
                .split(" · ")
                .nth(1)
                .and_then(|c| c.trim_end_matches('×').parse::<u64>().ok())
                .unwrap_or(0);
            *counts.entry(name.to_string()).or_default() += count;
        }
    }
    counts
}

#[test]
fn run_delivers_exactly_what_test_counts_on_a_mixed_log() {
    let dir = Dir::new("agreement");
    let config = dir.create("dingtail.yaml", CONFIG);
    dir.create("rules.yaml", RULES);
    dir.create("app.log", mixed_log());

    let report = stdout_ok(
        dir.command()
            .args(["test", "-c", "dingtail.yaml", "app.log"]),
    );
    let mut expected = test_counts(&report);
    // What the log holds, by construction: a check that `test` itself is right.
    assert_eq!(expected["error"], 40 + 10 + 8 + 1, "{report}");
    assert_eq!(expected["exception"], 40, "{report}");
    assert_eq!(expected["disk"], 14, "CRLF stripped before `$`: {report}");
    assert_eq!(expected["cut-away"], 0, "cut at max_line_bytes: {report}");
    assert_eq!(expected["replacement"], 10, "{report}");
    assert_eq!(expected["unterminated"], 1, "{report}");
    expected.retain(|_, count| *count > 0);

    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    let total: u64 = expected.values().sum();
    daemon.wait_for(
        &format!("{total} delivered events"),
        Duration::from_secs(30),
        |d| delivered(d).values().sum::<u64>() >= total,
    );
    // Nothing more comes (a repeat, a line counted twice).
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(delivered(&daemon), expected, "{}", daemon.describe());
    daemon.stop();
}
