use std::fs;
use std::path::PathBuf;
use std::time::SystemTime;

use crate::event::{FileId, LogLine};
use crate::fields::{Context, Fields};
use crate::pipeline::{Pipeline, RouteScratch};

fn line(input: &str, text: &str) -> LogLine {
    LogLine {
        input: input.into(),
        file_id: FileId(1),
        path: PathBuf::from(format!("/var/log/{input}.log")).into(),
        start_offset: 0,
        end_offset: text.len() as u64 + 1,
        text: text.into(),
        truncated: false,
        invalid: false,
        read_at: SystemTime::UNIX_EPOCH,
        event_time: None,
        context: Context::default(),
        fields: None,
    }
}

/// (text, rule, `top:` values) of every hit, in the order they were handed over.
type Hits = Vec<(String, String, Vec<(String, String)>)>;

#[test]
fn routing_a_batch_hands_over_what_routing_each_line_does_in_the_same_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dingtail.yaml");
    fs::write(
        &config,
        "inputs:\n  web:\n    paths: /x.log\n  app:\n    paths: /y.log\n  raw:\n    paths: /z.log\nrobots:\n  ops:\n    webhook: stdout\nrules: [rules.yaml]\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("rules.yaml"),
        "- name: server-error
  input: web
  match: '\" (?P<status>5\\d\\d) '
  top: [status]
  robot: ops
- name: oom
  inputs: [web, app]
  match: 'Out of memory: Killed process (?P<pid>\\d+)'
  top: [pid]
  robot: ops
- name: trace
  input: app
  match: '(?s)Exception: .*\\n\\s+at '
  robot: ops
- name: carriage
  input: app
  match: 'done\\r$'
  robot: ops
- name: digits
  input: raw
  match: '^\\d+$'
  robot: ops
",
    )
    .unwrap();
    let pipeline = Pipeline::load(&config).unwrap();
    let mut lines = Vec::new();
    for i in 0..40 {
        lines.push(line("web", &format!("GET /a/{i} HTTP/1.1\" 200 512 \"-\"")));
        if i % 7 == 0 {
            lines.push(line("web", &format!("GET /b/{i} HTTP/1.1\" 503 0 \"-\"")));
        }
        if i % 9 == 0 {
            lines.push(line(
                "app",
                &format!("kernel: Out of memory: Killed process {i}"),
            ));
            lines.push(line(
                "app",
                "java.io.IOException: gone\n    at com.example.Main",
            ));
            lines.push(line("app", "job done\r"));
            lines.push(line("app", "job done"));
        }
        if i % 11 == 0 {
            lines.push(line("raw", &format!("{i}")));
            lines.push(line("raw", &format!("{i}x")));
            lines.push(line("raw", ""));
        }
    }
    let hit = |hits: &mut Hits, routed: &crate::pipeline::Routed<'_>| {
        let hit = routed.hit();
        let top = hit
            .top
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        hits.push((hit.line.to_string(), hit.rule.to_string(), top));
    };
    let mut one_by_one: Hits = Vec::new();
    let mut buf = Vec::new();
    let mut n_one = 0;
    for line in &lines {
        n_one += pipeline.route(line, &mut buf, |routed| hit(&mut one_by_one, routed));
    }
    let mut batched: Hits = Vec::new();
    let mut scratch = RouteScratch::default();
    // Twice with the same scratch: nothing of one batch leaks into the next.
    for _ in 0..2 {
        batched.clear();
        let n = pipeline.route_batch(&lines, &mut scratch, |_, routed| hit(&mut batched, routed));
        assert_eq!(n, n_one);
    }
    assert_eq!(batched, one_by_one);
    let rules: std::collections::BTreeSet<&str> =
        batched.iter().map(|(_, rule, _)| rule.as_str()).collect();
    assert_eq!(
        rules,
        ["carriage", "digits", "oom", "server-error", "trace"].into(),
        "every kind of event was matched"
    );
}

#[test]
fn routing_a_batch_checks_where_on_each_event() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dingtail.yaml");
    fs::write(
        &config,
        "inputs:\n  api:\n    paths: /x.log\n    format: json\nrobots:\n  ops:\n    webhook: stdout\nrules: [rules.yaml]\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("rules.yaml"),
        "- name: slow-error
  input: api
  match: 'slow'
  where: {level: error}
  robot: ops
- name: fatal
  input: api
  where: {level: fatal}
  robot: ops
- name: timeout
  input: api
  match: 'timeout'
  robot: ops
",
    )
    .unwrap();
    let pipeline = Pipeline::load(&config).unwrap();
    let event = |level: &str, msg: &str| {
        let json = format!("{{\"level\":\"{level}\",\"msg\":\"{msg}\"}}");
        let mut line = line("api", msg);
        line.fields = Fields::parse(&json).map(Box::new);
        line
    };
    let lines = vec![
        event("info", "slow request"),
        event("error", "slow request"),
        event("fatal", "disk gone"),
        event("info", "upstream timeout"),
        event("info", "all good"),
    ];
    let mut one_by_one = Vec::new();
    for line in &lines {
        pipeline.route(line, &mut Vec::new(), |routed| {
            one_by_one.push((routed.hit().line.to_string(), routed.rule.name().to_owned()));
        });
    }
    let mut batched = Vec::new();
    pipeline.route_batch(&lines, &mut RouteScratch::default(), |_, routed| {
        batched.push((routed.hit().line.to_string(), routed.rule.name().to_owned()));
    });
    let expected: Vec<(String, String)> = [
        ("slow request", "slow-error"),
        ("disk gone", "fatal"),
        ("upstream timeout", "timeout"),
    ]
    .iter()
    .map(|(line, rule)| (line.to_string(), rule.to_string()))
    .collect();
    assert_eq!(one_by_one, expected);
    assert_eq!(batched, expected);
}

/// The daemon shares one pipeline between its tasks (`Arc<Pipeline>`).
#[test]
fn a_pipeline_can_be_shared_between_threads() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Pipeline>();
}

#[test]
fn loads_config_rules_and_templates_and_reports_all_problems() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dingtail.yaml");
    fs::write(
        &config,
        "inputs:\n  web:\n    paths: /x.log\n  app:\n    paths: /y.log\nrobots:\n  ops:\n    webhook: stdout\nrules: [rules.d/*.yaml]\n",
    )
    .unwrap();
    fs::create_dir(dir.path().join("rules.d")).unwrap();
    fs::write(
        dir.path().join("rules.d/a.yaml"),
        "- name: both\n  inputs: [web, app]\n  match: boom\n  robot: ops\n- name: web-only\n  input: web\n  match: '(?P<code>5\\d\\d)'\n  robot: ops\n  title: '{{ code }}'\n",
    )
    .unwrap();
    let pipeline = Pipeline::load(&config).unwrap();
    assert_eq!(pipeline.n_rules(), 2);
    assert_eq!(pipeline.rules["web"].rules().len(), 2);
    assert_eq!(pipeline.rules["app"].rules().len(), 1);
    assert_eq!(pipeline.rule_files, [dir.path().join("rules.d/a.yaml")]);
    assert!(pipeline.warnings.is_empty());

    // A rule error and a template error of another rule are reported together.
    fs::write(
        dir.path().join("rules.d/b.yaml"),
        "- name: bad-input\n  input: wbe\n  match: x\n  robot: ops\n- name: bad-template\n  input: app\n  match: x\n  robot: ops\n  title: '{{ nope }}'\n",
    )
    .unwrap();
    let errors = Pipeline::load(&config).unwrap_err();
    let text = errors.to_string();
    assert_eq!(errors.0.len(), 2, "{text}");
    assert!(
        text.contains("b.yaml:2:10: rule `bad-input`: unknown input `wbe`"),
        "{text}"
    );
    assert!(
        text.contains("b.yaml:9:14: rule `bad-template`: title: undefined variable `nope`"),
        "{text}"
    );
}
