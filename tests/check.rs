//! `dingtail check`: a valid config prints a summary and exits 0; every problem of the config and
//! its rule files is printed as `file:line:column: message` and the exit status is 1 (issue 4);
//! the problems are pointed at where they are, templates are checked whole, `${VAR}` works in
//! rule files, and every command exits alike (issue 12).

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
fn the_chat_is_summarised_without_its_secret() {
    let dir = Dir::new("check-chat");
    dir.create(
        "dingtail.yaml",
        format!(
            "{CONFIG}chat:
  mode: http
  listen: 127.0.0.1:9185
  client_secret: app-secret-771
  allow: {{users: [manager4711, '0123'], admins_only: true}}
"
        ),
    );
    dir.create(
        "rules.d/web.yaml",
        "- name: web-5xx\n  input: web\n  match: ' 5\\d\\d '\n  robot: ops\n",
    );
    let stdout = stdout_ok(dir.command().args(["check", "-c", "dingtail.yaml"]));
    assert!(
        stdout.contains(
            "chat: HTTP callbacks on 127.0.0.1:9185/dingtalk/callback; commands from 2 users (group admins only) in any conversation\n"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("app-secret-771"), "{stdout}");

    dir.create(
        "dingtail.yaml",
        format!(
            "{CONFIG}chat:
  client_id: dingappkey42
  client_secret: app-secret-771
  allow: {{conversations: [cidAbc]}}
"
        ),
    );
    let stdout = stdout_ok(dir.command().args(["check", "-c", "dingtail.yaml"]));
    assert!(
        stdout.contains(
            "chat: Stream through https://api.dingtalk.com/ as dingappkey42; commands from anyone in 1 conversation\n"
        ),
        "{stdout}"
    );

    // `admins_only` alone loads, with a warning (anyone can be the admin of a group of their own).
    dir.create(
        "dingtail.yaml",
        format!(
            "{CONFIG}chat:
  client_id: dingappkey42
  client_secret: app-secret-771
  allow: {{admins_only: true}}
"
        ),
    );
    let output = run_expect(dir.command().args(["check", "-c", "dingtail.yaml"]), 0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("chat: `allow.admins_only` alone lets the admin of any group"),
        "{stderr}"
    );
    let output = run_expect(
        dir.command()
            .args(["check", "--strict", "-c", "dingtail.yaml"]),
        1,
    );
    assert!(!output.status.success());
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
    let output = run_expect(dir.command().args(["check", "-c", "nope.yaml"]), 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("nope.yaml: cannot read config"),
        "{stderr}"
    );
}

/// `check`'s stderr for `dingtail.yaml` (CONFIG) with `rules.d/a.yaml` holding `rules`.
fn problems(name: &str, rules: &str, status: i32) -> String {
    let dir = Dir::new(name);
    dir.create("dingtail.yaml", CONFIG);
    dir.create("logs/a.log", "");
    dir.create("rules.d/a.yaml", rules);
    let output = run_expect(dir.command().args(["check", "-c", "dingtail.yaml"]), status);
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_lines(stderr: &str, expected: &[&str]) {
    for want in expected {
        assert!(
            stderr.lines().any(|line| line == *want),
            "missing line {want:?} in:\n{stderr}"
        );
    }
}

/// Issue 12: a tab or a misindented key is reported where it is, a synonym of a key gets its
/// suggestion, and the count is in words.
#[test]
fn diagnostics_point_at_the_mistake_and_suggest_the_key() {
    let stderr = problems(
        "check-tab",
        "- name: a\n  input: web\n  match: x\n  robot: ops\n\tseverity: info\n",
        1,
    );
    assert_lines(
        &stderr,
        &[
            "rules.d/a.yaml:5:1: YAML syntax error: a tab character where YAML needs spaces (indent with spaces only)",
            "dingtail.yaml: invalid (1 problem)",
        ],
    );
    let stderr = problems(
        "check-indent",
        "- name: a\n  input: web\n   match: x\n  robot: ops\n",
        1,
    );
    assert_lines(
        &stderr,
        &[
            "rules.d/a.yaml:3:4: YAML syntax error: `match` starts at column 4 but `input` on line 2 at column 3 (keys of one mapping line up; a nested mapping is indented under a key that ends with `:`)",
        ],
    );
    let stderr = problems(
        "check-mention",
        "- name: a\n  input: web\n  match: x\n  robot: ops\n  mention: {mobiles: [1]}\n",
        1,
    );
    assert_lines(
        &stderr,
        &["rules.d/a.yaml:5:3: rule `a`: unknown key `mention` (did you mean `at`?)"],
    );
    let dir = Dir::new("check-config-tab");
    dir.create("bad.yaml", "inputs:\n  web:\n\tpaths: x\n");
    let output = run_expect(dir.command().args(["check", "-c", "bad.yaml"]), 1);
    assert_lines(
        &String::from_utf8_lossy(&output.stderr),
        &[
            "bad.yaml:3:1: YAML syntax error: a tab character where YAML needs spaces (indent with spaces only)",
        ],
    );
}

/// Issue 12: filters, tests and functions are checked at load like variables (minijinja only
/// looks them up when a template runs), and a capture may not take a built-in's name.
#[test]
fn templates_and_captures_are_checked_whole_at_load() {
    let stderr = problems(
        "check-templates",
        r#"- name: a
  input: web
  match: 'from (?P<host>\S+) (?P<code>\d+)'
  robot: ops
  title: '{{ code | upcase }}'
  template: '{% if line is emptyish %}{{ now() }}{% endif %}'
  summary: '{{ count | round }} {{ rule | lenght }}'
"#,
        1,
    );
    assert_lines(
        &stderr,
        &[
            "rules.d/a.yaml:3:20: rule `a`: match: the capture `host` would be hidden by the built-in template value `host` (built-ins: line, file, input, host, rule, severity, time, count, first_seen, last_seen) (rename it, e.g. `(?P<log_host>…)`)",
            "rules.d/a.yaml:5:21: rule `a`: title: unknown filter `upcase` (did you mean `upper`?)",
            "rules.d/a.yaml:6:28: rule `a`: template: unknown test `emptyish`",
            "rules.d/a.yaml:6:42: rule `a`: template: unknown function `now` (functions: range, dict, namespace, debug)",
            "rules.d/a.yaml:7:43: rule `a`: summary: unknown filter `lenght` (did you mean `length`?)",
            "dingtail.yaml: invalid (5 problems)",
        ],
    );
}

/// Issue 12: `${VAR}` expands in rule files as in the main config, with the same error.
#[test]
fn variables_expand_in_rule_files() {
    let dir = Dir::new("check-env");
    dir.create("dingtail.yaml", CONFIG);
    dir.create("logs/a.log", "boom\n");
    dir.create(
        "rules.d/a.yaml",
        "- name: a\n  input: ${INPUT:-web}\n  match: boom\n  robot: ops\n  at: {mobiles: [\"${ONCALL}\"]}\n",
    );
    let output = run_expect(dir.command().args(["check", "-c", "dingtail.yaml"]), 1);
    assert_lines(
        &String::from_utf8_lossy(&output.stderr),
        &[
            "rules.d/a.yaml:5:18: rule `a`: environment variable `ONCALL` is not set (use `${ONCALL:-default}` for a default)",
        ],
    );
    let stdout = stdout_ok(dir.command().env("ONCALL", "13900001111").args([
        "test",
        "-c",
        "dingtail.yaml",
        "logs/a.log",
        "--render",
    ]));
    assert!(stdout.contains("at: @13900001111"), "{stdout}");
    assert!(
        stdout.contains(r#""atMobiles":["13900001111"]"#),
        "{stdout}"
    );
}

/// Issue 12: 0 ok, 1 invalid configuration or rules, 2 usage error or unreadable file — the
/// same for every command; a start failure of `run` says its cause once.
#[test]
fn every_command_exits_alike() {
    let dir = Dir::new("exit-codes");
    dir.create("dingtail.yaml", CONFIG);
    dir.create("logs/a.log", "x\n");
    dir.create(
        "rules.d/a.yaml",
        "- name: a\n  input: wbe\n  match: x\n  robot: ops\n",
    );
    let commands: [&[&str]; 5] = [
        &["check"],
        &["run"],
        &["test", "logs/a.log"],
        &["tail"],
        &["send", "--robot", "ops", "--text", "x"],
    ];
    for args in commands {
        let mut cmd = dir.command();
        cmd.args(args).args(["-c", "nope.yaml"]);
        let output = run_expect(&mut cmd, 2);
        assert_lines(
            &String::from_utf8_lossy(&output.stderr),
            &["nope.yaml: cannot read config: No such file or directory (os error 2)"],
        );
    }
    // An invalid rule: `tail` and `send` read only the main file.
    for args in [&["check"][..], &["run"], &["test", "logs/a.log"]] {
        let mut cmd = dir.command();
        cmd.args(args).args(["-c", "dingtail.yaml"]);
        let output = run_expect(&mut cmd, 1);
        assert_lines(
            &String::from_utf8_lossy(&output.stderr),
            &[
                "rules.d/a.yaml:2:10: rule `a`: unknown input `wbe` (inputs defined: app, web)",
                "dingtail.yaml: invalid (1 problem)",
            ],
        );
    }
    dir.create(
        "bad.yaml",
        "inputs:\n  web:\n    paths: [x]\n    start_at: middle\n",
    );
    for args in [&["tail"][..], &["send", "--robot", "ops", "--text", "x"]] {
        let mut cmd = dir.command();
        cmd.args(args).args(["-c", "bad.yaml"]);
        let output = run_expect(&mut cmd, 1);
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("bad.yaml:4:15: `start_at` must be"),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // Usage errors.
    run_expect(dir.command().args(["check", "--no-such-flag"]), 2);
    run_expect(dir.command().args(["test", "nope.log", "--match", "x"]), 2);

    // `run` that cannot create its state directory: 6, and the cause said once.
    dir.create(
        "rules.d/a.yaml",
        "- name: a\n  input: web\n  match: x\n  robot: ops\n",
    );
    dir.create("file", "");
    dir.create("state.yaml", format!("state_dir: file/state\n{CONFIG}"));
    let output = run_expect(dir.command().args(["run", "-c", "state.yaml"]), 6);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("Not a directory").count(), 1, "{stderr}");
}

/// Issue 12: the complete example of docs/configuration.md is valid and warns about nothing.
#[test]
fn the_reference_example_is_valid() {
    let reference = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    let dir = Dir::new("check-reference");
    let mut written = Vec::new();
    for block in reference.split("```yaml\n").skip(1) {
        let block = block.split("```").next().unwrap();
        let Some(name) = block.lines().next().and_then(|l| l.strip_prefix("# ")) else {
            continue;
        };
        dir.create(name, block);
        written.push(name.to_string());
    }
    assert_eq!(written, ["dingtail.yaml", "rules.d/web.yaml"]);
    dir.create("logs/nginx/access.log", "");
    dir.create("logs/app.log", "");
    let output = run_expect(
        dir.command()
            .env_remove("DINGTALK_OPS_WEBHOOK")
            .env_remove("ONCALL_MOBILE")
            .args(["check", "-c", "dingtail.yaml", "--strict"]),
        0,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("rules: 2 in 1 file"), "{stdout}");
}
