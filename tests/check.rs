//! `dingtail check`: a valid config prints a summary and exits 0; every problem of the config and
//! its rule files is printed as `file:line:column: message` and the exit status is 1 (issue 4).

use crate::support::harness::{Dir, run_expect, stdout_ok};

const CONFIG: &str = "\
inputs:
  web:
    paths: [logs/*.log]
  app:
    paths: [app.log]
robots:
  ops:
    webhook: stdout
rules: [rules.d/*.yaml]
";

#[test]
fn a_valid_config_is_summarised() {
    let dir = Dir::new("check-ok");
    dir.create("dingtail.yaml", CONFIG);
    dir.create("logs/a.log", "");
    dir.create("logs/b.log", "");
    dir.create(
        "rules.d/web.yaml",
        "- name: web-5xx\n  input: web\n  match: ' 5\\d\\d '\n  robot: ops\n",
    );
    let stdout = stdout_ok(dir.command().args(["check", "-c", "dingtail.yaml"]));
    assert!(stdout.starts_with("dingtail.yaml: valid\n"), "{stdout}");
    assert!(
        stdout.contains("  web: 2 files now, 1 rule: web-5xx\n"),
        "{stdout}"
    );
    assert!(stdout.contains("  app: 0 files now, 0 rules\n"), "{stdout}");
    assert!(
        stdout.contains("  ops: stdout (dry run), 20 per 1m, linger 2s\n"),
        "{stdout}"
    );
    assert!(stdout.contains("rules: 1 in 1 file\n"), "{stdout}");
    assert!(
        stdout.contains("messages: language zh-CN, times in "),
        "the message settings, Chinese by default: {stdout}"
    );
}

#[test]
fn every_problem_of_every_file_is_reported_with_its_position() {
    let dir = Dir::new("check-bad");
    dir.create("dingtail.yaml", CONFIG);
    dir.create(
        "rules.d/a.yaml",
        r#"- name: web-5xx
  input: web
  match: ' (?P<status>5\d\d '
  robot: ops
  sevrity: critical
- name: slow
  input: wbe
  match: 'slow (?P<ms>\d+)'
  robot: opz
  title: '{{ ms }} ms on {{ hots }}'
"#,
    );
    dir.create(
        "rules.d/b.yaml",
        "- name: slow\n  input: app\n  match: x\n  robot: ops\n  template: '{% if x %}'\n",
    );
    dir.create("rules.d/c.yaml", "- name: broken\n  match: [unclosed\n");
    let output = run_expect(dir.command().args(["check", "-c", "dingtail.yaml"]), 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = [
        "rules.d/a.yaml:5:3: rule `web-5xx`: unknown key `sevrity` (did you mean `severity`?)",
        "rules.d/a.yaml:7:10: rule `slow`: unknown input `wbe` (inputs defined: app, web)",
        "rules.d/a.yaml:9:10: rule `slow`: unknown robot `opz` (robots defined: ops) (did you mean `ops`?)",
        "rules.d/b.yaml:1:9: rule `slow`: duplicate rule name: already defined at",
        "rules.d/c.yaml:3:1: YAML syntax error",
    ];
    for want in expected {
        assert!(
            stderr.lines().any(|line| line.contains(want)),
            "missing {want:?} in:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("dingtail.yaml: invalid (5 problems)"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());

    // Fix the structural errors: the regex and the templates are checked and pointed at too.
    dir.create(
        "rules.d/a.yaml",
        r#"- name: web-5xx
  input: web
  match: ' (?P<status>5\d\d '
  robot: ops
- name: slow
  input: web
  match: 'slow (?P<ms>\d+)'
  robot: ops
  title: '{{ ms }} ms on {{ hots }}'
"#,
    );
    dir.create(
        "rules.d/b.yaml",
        "- name: slow-app\n  input: app\n  match: x\n  robot: ops\n  template: '{% if x %}'\n",
    );
    std::fs::remove_file(dir.join("rules.d/c.yaml")).unwrap();
    let output = run_expect(dir.command().args(["check", "-c", "dingtail.yaml"]), 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = [
        "rules.d/a.yaml:3:12: rule `web-5xx`: match: invalid regex: unclosed group",
        "rules.d/a.yaml:9:29: rule `slow`: title: undefined variable `hots`",
        "rules.d/b.yaml:5:",
    ];
    for want in expected {
        assert!(
            stderr.lines().any(|line| line.contains(want)),
            "missing {want:?} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("did you mean `host`?"), "{stderr}");
    assert!(
        stderr.contains("rule `slow-app`: template: template syntax error"),
        "{stderr}"
    );
}

#[test]
fn a_rule_glob_matching_nothing_is_a_warning_and_a_missing_config_an_error() {
    let dir = Dir::new("check-empty");
    dir.create("dingtail.yaml", CONFIG);
    let output = run_expect(dir.command().args(["check", "-c", "dingtail.yaml"]), 0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: ") && stderr.contains("matches no file"),
        "{stderr}"
    );
    let output = run_expect(dir.command().args(["check", "-c", "nope.yaml"]), 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("nope.yaml: cannot read config"),
        "{stderr}"
    );
}
