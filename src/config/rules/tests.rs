//! Unit tests of `crate::config::rules`.
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::config::rules::{RuleFiles, RuleSource, expand_glob, load};
use crate::config::{Config, FieldCondition, InputConfig, RobotConfig, StartAt, Webhook};
use crate::event::Severity;

fn config(dir: &Path, globs: &[&str]) -> Config {
    let input = |name: &str| InputConfig {
        name: name.into(),
        paths: vec!["/var/log/x.log".into()],
        exclude: vec![],
        start_at: StartAt::End,
        poll_interval: std::time::Duration::from_secs(1),
        max_line_bytes: 65_536,
        multiline: None,
        decoding: crate::config::Decoding::default(),
        journald: None,
        timestamp: None,
    };
    let robot = |name: &str| RobotConfig {
        name: name.into(),
        webhook: Webhook::Stdout,
        secret: None,
        keywords: vec![],
        per_minute: 20,
        window: std::time::Duration::from_secs(60),
        linger: std::time::Duration::ZERO,
        throttle_pause: std::time::Duration::from_secs(600),
        msgtype: crate::event::MsgType::Markdown,
        summary_title: None,
        timeout: std::time::Duration::from_secs(10),
        backoff_max: std::time::Duration::from_secs(30),
    };
    Config {
        source: dir.join("dingtail.yaml"),
        state_dir: dir.join("state"),
        inputs: BTreeMap::from([
            ("nginx".into(), input("nginx")),
            ("app".into(), input("app")),
        ]),
        robots: BTreeMap::from([("ops".into(), robot("ops")), ("dba".into(), robot("dba"))]),
        rule_globs: globs
            .iter()
            .map(|g| dir.join(g).to_string_lossy().into_owned())
            .collect(),
        listen: None,
        cluster: None,
        host: "web-1".into(),
        reload_on_change: true,
        chat: None,
        timezone: jiff::tz::TimeZone::UTC,
        language: crate::lang::Language::En,
        people: BTreeMap::from([(
            "payments".to_string(),
            crate::event::Mentions {
                mobiles: vec!["13800000001".into()],
                ..crate::event::Mentions::default()
            },
        )]),
    }
}

pub(super) fn load_files(files: &[(&str, &str)]) -> (tempfile::TempDir, RuleFiles) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    let found = load(&config(dir.path(), &["rules.d/*.yaml"]), &RuleSource::Globs);
    (dir, found)
}

pub(super) fn errors(found: &RuleFiles) -> Vec<String> {
    found
        .errors
        .iter()
        .map(|d| {
            // Keep the file names only.
            let dir = format!("{}/", d.file.parent().unwrap().display());
            d.to_string().replace(&dir, "")
        })
        .collect()
}

const GOOD: &str = r#"
- name: nginx-5xx
  input: nginx
  match: '" (?P<status>5\d\d) (?P<bytes>\d+)'
  exclude: 'GET /healthz'
  severity: critical
  robot: ops
  title: 'nginx {{ status }}'
  template: '`{{ file }}` {{ line }}'
  at: {mobiles: [13800000000, "13900000000"], user_ids: [u1], all: false}
- name: slow
  inputs: [nginx, app]
  match: ['slow', 'sluggish (?P<ms>\d+)']
  robots: [ops, dba]
"#;

#[test]
fn a_good_file_gives_validated_rules() {
    let (_dir, found) = load_files(&[("rules.d/web.yaml", GOOD)]);
    assert!(found.errors.is_empty(), "{:?}", errors(&found));
    assert_eq!(found.files.len(), 1);
    let names: Vec<&str> = found.specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["nginx-5xx", "slow"]);
    let first = &found.specs[0];
    assert_eq!(first.severity, Severity::Critical);
    assert_eq!(first.line, 2);
    assert_eq!(first.capture_names(), ["status", "bytes"]);
    assert_eq!(first.mentions.mobiles, ["13800000000", "13900000000"]);
    assert_eq!(first.mentions.user_ids, ["u1"]);
    assert!(first.excludes[0].is_match("GET /healthz HTTP/1.1"));
    assert_eq!(first.title.as_ref().unwrap().source, "nginx {{ status }}");
    let second = &found.specs[1];
    assert_eq!(second.severity, Severity::Warning, "the default severity");
    assert_eq!(
        (
            second.inputs.len(),
            second.robots.len(),
            second.patterns.len()
        ),
        (2, 2, 2)
    );
    assert_eq!(second.capture_names(), ["ms"]);
}

#[test]
fn every_problem_is_reported_with_its_position_and_rule() {
    let bad = r#"- name: a
  input: ngnix
  match: 'ok (?P<s>5\d\d'
  robot: ops
  sevrity: critical
- name: b
  input: app
  match: x
  robots: [ops, dbaa]
  severity: critcal
- name: c
  input: app
  robot: ops
- name: d
  input: app
  match: [good, 'bad[']
  robot: ops
  title: [not, a, string]
- name: e
  input: app
  match: x
  robot: ops
  at: {mobile: ["138"]}
"#;
    let (_dir, found) = load_files(&[("rules.d/bad.yaml", bad)]);
    let errs = errors(&found);
    let expect = [
        "bad.yaml:5:3: rule `a`: unknown key `sevrity` (did you mean `severity`?)",
        "bad.yaml:9:17: rule `b`: unknown robot `dbaa` (robots defined: dba, ops) (did you mean `dba`?)",
        "bad.yaml:10:13: rule `b`: `severity` must be info, warning or critical, not `critcal` (did you mean `critical`?)",
        "bad.yaml:11:3: rule `c`: missing key `match`",
        "bad.yaml:18:10: rule `d`: `title` must be a string",
        "bad.yaml:23:8: rule `e`: unknown key `mobile` in `at` (did you mean `mobiles`?)",
    ];
    for want in expect {
        assert!(
            errs.iter().any(|e| e == want),
            "missing {want:?} in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
    assert!(found.specs.is_empty());
}

#[test]
fn bad_inputs_and_regexes_point_inside_the_value() {
    let bad = r#"- name: a
  input: ngnix
  match: 'ok (?P<s>5\d\d'
  robot: ops
- name: d
  input: app
  match: [good, 'bad[']
  robot: ops
"#;
    let (_dir, found) = load_files(&[("rules.d/bad.yaml", bad)]);
    let errs = errors(&found);
    assert_eq!(
        errs,
        [
            "bad.yaml:2:10: rule `a`: unknown input `ngnix` (inputs defined: app, nginx) (did you mean `nginx`?)",
            "bad.yaml:3:14: rule `a`: match: invalid regex: unclosed group",
            "bad.yaml:7:21: rule `d`: match: invalid regex: unclosed character class",
        ]
    );
}

#[test]
fn duplicate_names_across_files_and_syntax_errors() {
    let one = "- name: dup\n  input: app\n  match: x\n  robot: ops\n";
    let two = "\n- name: dup\n  input: app\n  match: y\n  robot: ops\n";
    let broken = "- name: z\n  match: [x\n";
    let (_dir, found) = load_files(&[
        ("rules.d/a.yaml", one),
        ("rules.d/b.yaml", two),
        ("rules.d/c.yaml", broken),
    ]);
    let errs = errors(&found);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs[0].starts_with("b.yaml:2:9: rule `dup`: duplicate rule name: already defined at")
            && errs[0].ends_with("a.yaml:1"),
        "{errs:#?}"
    );
    assert!(errs[1].starts_with("c.yaml:3:"), "{errs:#?}");
    assert!(errs[1].contains("YAML syntax error"), "{errs:#?}");
    assert_eq!(found.specs.len(), 1);
    assert_eq!(found.files.len(), 3);
}

#[test]
fn empty_globs_warn_and_missing_literal_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let found = load(
        &config(dir.path(), &["rules.d/*.yaml", "extra.yaml"]),
        &RuleSource::Globs,
    );
    assert_eq!(found.warnings.len(), 1);
    assert!(found.warnings[0].message.contains("matches no file"));
    assert_eq!(found.errors.0.len(), 1);
    assert!(found.errors.0[0].message.contains("does not exist"));
}

#[test]
fn globs_expand_to_sorted_files_without_crossing_slashes() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["r/b.yaml", "r/a.yaml", "r/sub/c.yaml", "r/notes.txt"] {
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "").unwrap();
    }
    let glob = |g: &str| {
        expand_glob(&dir.path().join(g).to_string_lossy())
            .unwrap()
            .into_iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().to_path_buf())
            .collect::<Vec<PathBuf>>()
    };
    assert_eq!(
        glob("r/*.yaml"),
        [PathBuf::from("r/a.yaml"), PathBuf::from("r/b.yaml")]
    );
    assert_eq!(glob("r/**/*.yaml").len(), 3);
    assert_eq!(glob("r/a.yaml"), [PathBuf::from("r/a.yaml")]);
    assert!(glob("nope/*.yaml").is_empty());
}

#[test]
fn where_conditions_load_as_text_alone_or_with_match() {
    let rules = r#"- name: pay-5xx
  input: app
  match: 'failed'
  where: {status: [500, "502"], http.method: GET, retry: true, trace: null, ratio: 0.5}
  robot: ops
- name: sshd-errors
  input: app
  where:
    SYSLOG_IDENTIFIER: sshd
    PRIORITY: [0, 1, 2, 3]
  robot: ops
"#;
    let (_dir, found) = load_files(&[("rules.d/w.yaml", rules)]);
    assert!(found.errors.is_empty(), "{:?}", errors(&found));
    let condition = |field: &str, values: &[&str]| FieldCondition {
        field: field.into(),
        values: values.iter().map(|v| (*v).to_string()).collect(),
    };
    assert_eq!(
        found.specs[0].conditions,
        [
            condition("status", &["500", "502"]),
            condition("http.method", &["GET"]),
            condition("retry", &["true"]),
            condition("trace", &["null"]),
            condition("ratio", &["0.5"]),
        ]
    );
    assert_eq!(found.specs[0].patterns.len(), 1);
    let alone = &found.specs[1];
    assert!(alone.patterns.is_empty(), "`where` alone decides");
    assert_eq!(
        alone.conditions,
        [
            condition("SYSLOG_IDENTIFIER", &["sshd"]),
            condition("PRIORITY", &["0", "1", "2", "3"]),
        ]
    );
    assert!(found.specs.iter().all(|s| s.excludes.is_empty()));
}

#[test]
fn bad_where_values_point_at_themselves() {
    let bad = r#"- name: a
  input: app
  match: x
  where: {http: {status: 500}}
  robot: ops
- name: b
  input: app
  where: {level: []}
  robot: ops
- name: c
  input: app
  where: [level, error]
  robot: ops
- name: d
  input: app
  where: {}
  robot: ops
"#;
    let (_dir, found) = load_files(&[("rules.d/bad.yaml", bad)]);
    let errs = errors(&found);
    assert_eq!(
        errs,
        [
            "bad.yaml:4:17: rule `a`: `where.http` must be a value or a non-empty list of values",
            "bad.yaml:8:18: rule `b`: `where.level` must be a value or a non-empty list of values",
            "bad.yaml:12:10: rule `c`: `where` must be a mapping of field names to a value or a list of values",
            "bad.yaml:16:10: rule `d`: `where` needs at least one field",
        ]
    );
    assert!(found.specs.is_empty());
}
