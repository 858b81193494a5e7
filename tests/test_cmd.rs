//! `dingtail test`: scans a log or stdin with the rules, as the daemon would (issue 4).

use std::io::Write;
use std::process::Stdio;

use crate::support::harness::{Dir, describe, run_expect, stdout_ok};

const CONFIG: &str = r#"
inputs:
  web:
    paths: [web.log]
  app:
    paths: [app.log]
    multiline:
      start: '^\d{4}-\d{2}-\d{2} '
robots:
  ops:
    webhook: stdout
rules: [rules.yaml]
"#;

const RULES: &str = r#"
- name: web-5xx
  input: web
  match: '" (?P<status>5\d\d) '
  severity: critical
  robot: ops
- name: web-slow
  input: web
  match: 'rt=(?P<rt>[1-9]\d*\.\d+)'
  robot: ops
- name: app-exception
  input: app
  match: '(?m)^(?P<exception>[\w.]+Exception): '
  robot: ops
"#;

fn dir(name: &str) -> Dir {
    let dir = Dir::new(name);
    dir.create("dingtail.yaml", CONFIG);
    dir.create("rules.yaml", RULES);
    dir
}

#[test]
fn reads_stdin_and_narrows_to_one_rule() {
    let dir = dir("test-stdin");
    let mut cmd = dir.command();
    cmd.args([
        "test",
        "-c",
        "dingtail.yaml",
        "--input",
        "web",
        "-",
        "--rule",
        "web-5xx",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"\"GET /\" 502 rt=2.5\n\"GET /\" 200 rt=0.1\n\"GET /x\" 503 rt=0.2")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", describe(&cmd, &output));
    assert!(
        stdout.contains("input: web (--input), 1 rule, multiline: no"),
        "{stdout}"
    );
    assert!(stdout.contains("scanned 3 lines"), "{stdout}");
    assert!(stdout.contains("  web-5xx: 2 (critical)\n"), "{stdout}");
    assert!(!stdout.contains("web-slow"), "{stdout}");
    assert!(
        stdout.contains("  line 3: \"GET /x\" 503 rt=0.2\n      status = 503\n"),
        "{stdout}"
    );
}

#[test]
fn joins_multiline_events_and_shows_unmatched_ones() {
    let dir = dir("test-multiline");
    dir.create(
        "app.log",
        "2024-01-01 ERROR failed\n\
         java.lang.IllegalStateException: boom\n\
         \tat a.B.c(B.java:1)\n\
         2024-01-01 INFO fine\n\
         2024-01-01 ERROR again\n\
         com.x.TimeoutException: slow\n",
    );
    let stdout = stdout_ok(dir.command().args([
        "test",
        "-c",
        "dingtail.yaml",
        "app.log",
        "--show-unmatched",
    ]));
    assert!(
        stdout.contains("input: app (its paths match the log), 1 rule, multiline: yes"),
        "{stdout}"
    );
    assert!(stdout.contains("scanned 6 lines (3 events)"), "{stdout}");
    assert!(stdout.contains("matched 2 of 3 events"), "{stdout}");
    assert!(
        stdout.contains("  app-exception: 2 (warning)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  line 5: 2024-01-01 ERROR again\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("unmatched (1):\n  line 4: 2024-01-01 INFO fine\n"),
        "{stdout}"
    );
}

#[test]
fn rules_from_the_command_line_replace_the_config_globs() {
    let dir = dir("test-rules");
    dir.create(
        "other.yaml",
        "- name: anything-4xx\n  input: web\n  match: '\" 4\\d\\d '\n  robot: ops\n",
    );
    dir.create("web.log", "\"GET /\" 404 rt=0.1\n\"GET /\" 502 rt=0.1\n");
    let stdout = stdout_ok(dir.command().args([
        "test",
        "-c",
        "dingtail.yaml",
        "--rules",
        "other.yaml",
        "web.log",
    ]));
    assert!(stdout.contains("  anything-4xx: 1 (warning)\n"), "{stdout}");
    assert!(!stdout.contains("web-5xx"), "{stdout}");
}

/// Usage errors and a log that cannot be read exit 2, an invalid rule 1 (issue 12).
#[test]
fn usage_errors_exit_2_and_invalid_rules_1() {
    let dir = dir("test-errors");
    dir.create("web.log", "x\n");
    let output = run_expect(
        dir.command().args([
            "test",
            "-c",
            "dingtail.yaml",
            "web.log",
            "--rule",
            "web-5xxx",
        ]),
        2,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no rule `web-5xxx`") && stderr.contains("did you mean `web-5xx`?"),
        "{stderr}"
    );
    dir.create(
        "rules.yaml",
        "- name: x\n  input: web\n  match: '('\n  robot: ops\n",
    );
    let output = run_expect(
        dir.command()
            .args(["test", "-c", "dingtail.yaml", "web.log"]),
        1,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("rules.yaml:3:11: rule `x`: match: invalid regex"),
        "{stderr}"
    );
    dir.create("rules.yaml", RULES);
    run_expect(
        dir.command()
            .args(["test", "-c", "dingtail.yaml", "missing.log"]),
        2,
    );
}

/// A log bigger than a read chunk: the buffer scan finds every match, with the right line
/// numbers, and agrees with the line-by-line path (`--show-unmatched`).
#[test]
fn big_logs_are_scanned_across_chunks_without_missing_a_line() {
    let dir = dir("test-big");
    let mut log = String::new();
    let mut n_expected = 0;
    for i in 1..=40_000u32 {
        if i % 1000 == 0 {
            log.push_str(&format!("10.0.0.1 \"GET /{i}\" 502 rt=0.{i}\n"));
            n_expected += 1;
        } else if i == 33_333 {
            log.push_str("\"GET /slow\" 200 rt=12.5\n");
        } else {
            log.push_str(&format!(
                "10.0.0.1 \"GET /page/{i}\" 200 rt=0.0{} ok ok ok\n",
                i % 7
            ));
        }
    }
    assert!(log.len() > 1_200_000, "bigger than one chunk");
    dir.create("web.log", &log);
    let fast = stdout_ok(
        dir.command()
            .args(["test", "-c", "dingtail.yaml", "web.log"]),
    );
    assert!(fast.contains("scanned 40000 lines"), "{fast}");
    assert!(
        fast.contains(&format!("  web-5xx: {n_expected} (critical)\n")),
        "{fast}"
    );
    assert!(fast.contains("  web-slow: 1 (warning)\n"), "{fast}");
    assert!(
        fast.contains("  line 1000: 10.0.0.1 \"GET /1000\" 502 rt=0.1000\n"),
        "{fast}"
    );
    assert!(
        fast.contains("  line 33333: \"GET /slow\" 200 rt=12.5\n"),
        "{fast}"
    );
    let slow = stdout_ok(dir.command().args([
        "test",
        "-c",
        "dingtail.yaml",
        "web.log",
        "--show-unmatched",
    ]));
    let section = |out: &str| {
        out.split("matches per rule:")
            .nth(1)
            .unwrap()
            .split("unmatched (")
            .next()
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(section(&fast), section(&slow));
}

/// Issue 12: a pattern tried without a config (`fail2ban-regex LOG REGEX`) gives the report a
/// rule with that pattern gives: same lines, counts, samples and captures.
#[test]
fn a_pattern_is_tried_without_a_config_with_the_same_report() {
    let dir = dir("test-match");
    let log = "\
10.0.0.1 \"GET /a\" 200 rt=0.01
10.0.0.2 \"GET /b\" 502 rt=0.20
10.0.0.3 \"GET /healthz\" 503 rt=0.01
10.0.0.4 \"POST /c\" 500 rt=1.50
";
    dir.create("web.log", log);
    let pattern = r#"" (?P<status>5\d\d) "#;
    let by_rule = stdout_ok(dir.command().args([
        "test",
        "-c",
        "dingtail.yaml",
        "web.log",
        "--rule",
        "web-5xx",
    ]));
    let by_flag = stdout_ok(dir.command().args(["test", "web.log", "--match", pattern]));
    // The same report but for the header and the timing, and the rule's name.
    let body = |out: &str, rule: &str| -> String {
        out.lines()
            .skip(1)
            .map(|line| {
                if line.starts_with("scanned ") {
                    line.split(" in ").next().unwrap_or(line).to_string()
                } else {
                    line.replace(rule, "RULE")
                        .replace(" (critical)", "")
                        .replace(" (warning)", "")
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&by_rule, "web-5xx"), body(&by_flag, "--match"));
    assert!(
        by_flag.starts_with("input: command-line (--match), 1 rule, multiline: no\n"),
        "{by_flag}"
    );
    assert!(by_flag.contains("scanned 4 lines, "), "{by_flag}");
    assert!(by_flag.contains("  --match: 3 (warning)\n"), "{by_flag}");
    assert!(by_flag.contains("      status = 502\n"), "{by_flag}");

    // --exclude and --template, rendered as the daemon would.
    let out = stdout_ok(dir.command().args([
        "test",
        "web.log",
        "--match",
        pattern,
        "--exclude",
        "healthz",
        "--template",
        "{{ status }} on {{ line | replace('10.0.0.', 'host-') }}",
        "--render",
    ]));
    assert!(out.contains("  --match: 2 (warning)\n"), "{out}");
    assert!(out.contains("502 on host-2"), "{out}");
    assert!(out.contains("500 on host-4"), "{out}");
}

/// Issue 12: a bad pattern or template of the flags is an invalid rule (exit 1), said with the
/// flag and the place; a missing log is an unreadable file (exit 2).
#[test]
fn a_bad_pattern_or_template_is_pointed_at() {
    let dir = Dir::new("test-match-bad");
    dir.create("web.log", "x\n");
    let output = run_expect(
        dir.command()
            .args(["test", "web.log", "--match", "ok (?P<s>5\\d\\d"]),
        1,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .contains("--match `ok (?P<s>5\\d\\d`: invalid regex: unclosed group (at character 4)"),
        "{stderr}"
    );
    let output = run_expect(
        dir.command().args([
            "test",
            "web.log",
            "--match",
            "x",
            "--template",
            "{{ line | upcase }}",
        ]),
        1,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "--template:1:11: rule `--match`: template: unknown filter `upcase` (did you mean `upper`?)"
        ),
        "{stderr}"
    );
    let output = run_expect(dir.command().args(["test", "nope.log", "--match", "x"]), 2);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cannot open nope.log"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
