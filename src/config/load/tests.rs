//! Unit tests of `crate::config::load`.
use std::path::Path;
use std::time::Duration;

use crate::config::load::parse;
use crate::config::{
    Config, Content, Decoding, Diagnostics, Format, JournaldConfig, StartAt, Webhook,
};

fn env(name: &str) -> Option<String> {
    match name {
        "OPS_TOKEN" => Some("tok123".into()),
        "OPS_SECRET" => Some("SEC000test".into()),
        _ => None,
    }
}

fn check(text: &str) -> Result<Config, Diagnostics> {
    parse(Path::new("/etc/dingtail/dingtail.yaml"), text, &env)
}

fn errors(text: &str) -> Vec<String> {
    check(text)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

const GOOD: &str = r#"
state_dir: state
inputs:
  nginx:
    paths: ["/var/log/nginx/*.log", "logs/app-*.log"]
    exclude: ["*.gz"]
    start_at: beginning
    poll_interval: 500ms
    max_line_bytes: 4096
    multiline:
      start: '^\d{4}-\d{2}-\d{2}'
      max_lines: 50
      timeout: 1s
robots:
  ops:
    webhook: "https://oapi.dingtalk.com/robot/send?access_token=${OPS_TOKEN}"
    secret: "${OPS_SECRET}"
    keywords: ["告警"]
    per_minute: 18
    linger: 2s
    throttle_pause: 10m
  console:
    webhook: stdout
    per_minute: "${RATE:-5}"
    linger: 0
rules: ["rules.d/*.yaml"]
listen: 127.0.0.1:9184
host: web-3
"#;

#[test]
fn a_full_config_loads_with_defaults_and_expansion() {
    let config = check(GOOD).unwrap();
    assert_eq!(config.state_dir, Path::new("/etc/dingtail/state"));
    let nginx = &config.inputs["nginx"];
    assert_eq!(
        nginx.paths,
        ["/var/log/nginx/*.log", "/etc/dingtail/logs/app-*.log"]
    );
    assert_eq!(nginx.exclude, ["*.gz"]);
    assert_eq!(nginx.start_at, StartAt::Beginning);
    assert_eq!(nginx.poll_interval, Duration::from_millis(500));
    assert_eq!(nginx.max_line_bytes, 4096);
    let multiline = nginx.multiline.as_ref().unwrap();
    assert!(multiline.start.is_match("2024-01-02 x"));
    assert_eq!(
        (multiline.max_lines, multiline.timeout),
        (50, Duration::from_secs(1))
    );
    let ops = &config.robots["ops"];
    assert_eq!(
        ops.webhook,
        Webhook::Url(crate::secret::Secret::new(
            "https://oapi.dingtalk.com/robot/send?access_token=tok123"
        ))
    );
    assert_eq!(ops.secret.as_ref().map(|s| s.expose()), Some("SEC000test"));
    assert_eq!(
        (ops.per_minute, ops.window, ops.throttle_pause),
        (18, Duration::from_secs(60), Duration::from_secs(600))
    );
    let console = &config.robots["console"];
    assert_eq!(
        (console.webhook.clone(), console.per_minute, console.linger),
        (Webhook::Stdout, 5, Duration::ZERO)
    );
    assert_eq!(console.throttle_pause, Duration::from_secs(600));
    assert_eq!(config.rule_globs, ["/etc/dingtail/rules.d/*.yaml"]);
    assert_eq!(config.listen.map(|a| a.port()), Some(9184));
    assert_eq!(config.host, "web-3");
    // Secrets never show in Debug.
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("tok123") && !debug.contains("SEC000"),
        "{debug}"
    );
}

#[test]
fn defaults_when_only_paths_are_given() {
    let config = check("inputs:\n  app:\n    paths: /var/log/app.log\n").unwrap();
    let app = &config.inputs["app"];
    assert_eq!(app.paths, ["/var/log/app.log"]);
    assert_eq!((app.start_at, app.max_line_bytes), (StartAt::End, 65_536));
    assert_eq!(config.state_dir, Path::new("/var/lib/dingtail"));
    assert!(app.multiline.is_none());
}

#[test]
fn unknown_keys_point_and_suggest() {
    let errs = errors("inputs:\n  app:\n    pahts: [/x.log]\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("/etc/dingtail/dingtail.yaml:3:5: "),
        "{errs:?}"
    );
    assert!(
        errs[0].contains("unknown field `pahts`") && errs[0].contains("did you mean `paths`?"),
        "{errs:?}"
    );
}

#[test]
fn syntax_errors_point() {
    let errs = errors("inputs:\n  app:\n    paths: [/x.log\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("YAML syntax error"), "{errs:?}");
    assert!(
        errs[0].starts_with("/etc/dingtail/dingtail.yaml:4:"),
        "{errs:?}"
    );
}

#[test]
fn all_semantic_errors_are_reported_together_with_positions() {
    let text = "\
inputs:
  web:
    paths: ['/var/log/[x.log']
    start_at: middle
    multiline:
      start: 'ok (?P<a>x'
robots:
  ops:
    webhook: \"https://x/?access_token=${NOPE}\"
    linger: soon
  bad:
    webhook: \"ftp://example\"
listen: nowhere
";
    let errs = errors(text);
    let expect = [
        "dingtail.yaml:3:13: invalid glob",
        "dingtail.yaml:4:15: `start_at` must be `end` or `beginning`, not `middle`",
        "dingtail.yaml:6:18: multiline.start: invalid regex: unclosed group",
        "dingtail.yaml:12:14: robot `bad`: `webhook` must be `console`, `stdout` or an http(s) URL",
        "dingtail.yaml:9:14: environment variable `NOPE` is not set",
        "dingtail.yaml:10:13: invalid duration `soon`",
        "dingtail.yaml:13:9: `listen` must be an address",
    ];
    for want in expect {
        assert!(
            errs.iter().any(|e| e.contains(want)),
            "missing {want:?} in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
    assert!(
        !errs.iter().any(|e| e.contains("ftp://")),
        "URLs are not echoed: {errs:#?}"
    );
}

#[test]
fn empty_and_input_less_configs_are_errors() {
    assert!(errors("")[0].contains("empty"));
    assert!(errors("state_dir: /tmp\n")[0].contains("no inputs"));
}

#[test]
fn decoding_and_journald_keys_load() {
    let config = check(
        "\
inputs:
  pods:
    paths: /var/log/pods/*/*/*.log
    format: cri
    content: json
    message_field: event.text
    partial_timeout: 2s
  legacy:
    paths: /srv/app/*.log
    encoding: GBK
  journal:
    journald:
      units: [ssh, nginx.service]
      identifiers: sshd
      priority: warning..emerg
      directory: journal
    format: json
    start_at: beginning
  everything:
    journald: {priority: 3}
",
    )
    .unwrap();
    let pods = &config.inputs["pods"];
    assert_eq!(pods.decoding.format, Format::Cri);
    assert_eq!(pods.decoding.content, Content::Json);
    assert_eq!(pods.decoding.message_field.as_deref(), Some("event.text"));
    assert_eq!(pods.decoding.partial_timeout, Duration::from_secs(2));
    assert!(pods.journald.is_none());
    let legacy = &config.inputs["legacy"];
    assert_eq!(legacy.decoding.encoding, Some(encoding_rs::GBK));
    assert_eq!(legacy.decoding.format, Format::Plain);
    assert_eq!(legacy.decoding.partial_timeout, Duration::from_secs(5));
    let journal = &config.inputs["journal"];
    assert!(journal.paths.is_empty());
    assert_eq!(journal.decoding.format, Format::Json);
    assert_eq!(
        journal.journald,
        Some(JournaldConfig {
            units: vec!["ssh".into(), "nginx.service".into()],
            identifiers: vec!["sshd".into()],
            priority: Some("warning..emerg".into()),
            directory: Some("/etc/dingtail/journal".into()),
        })
    );
    let everything = config.inputs["everything"].journald.as_ref().unwrap();
    assert_eq!(everything.priority.as_deref(), Some("3"));
    assert!(everything.units.is_empty() && everything.directory.is_none());
    // UTF-8 is the fast path: no decoder.
    let utf8 = check("inputs:\n  a:\n    paths: /x.log\n    encoding: utf8\n").unwrap();
    assert_eq!(utf8.inputs["a"].decoding, Decoding::default());
}

#[test]
fn bad_decoding_and_journald_keys_point_at_their_values() {
    let text = "\
inputs:
  a:
    paths: /a.log
    format: dokcer
    encoding: klingon
  b:
    paths: /b.log
    content: json
    message_field: msg
  c:
    paths: /c.log
    encoding: utf-16le
    partial_timeout: soon
  d:
    paths: /d.log
    journald: {}
  e:
    journald: {priority: loud, units: ['']}
    format: cri
  f:
    start_at: end
";
    let errs = errors(text);
    let expect = [
        "dingtail.yaml:4:13: `format` must be one of plain, cri, docker, json, auto, not `dokcer` (did you mean `docker`?)",
        "dingtail.yaml:5:15: unknown encoding `klingon`",
        "dingtail.yaml:8:14: `content: json` applies to `cri`, `docker` and `auto` inputs",
        "dingtail.yaml:9:20: `message_field` applies only to lines decoded as JSON",
        "dingtail.yaml:12:15: encoding `utf-16le` (UTF-16LE) is not ASCII-compatible",
        "dingtail.yaml:13:22: invalid duration `soon`",
        "dingtail.yaml:16:5: input `d` has both `paths` and `journald`",
        "dingtail.yaml:18:26: `priority` must be a level",
        "dingtail.yaml:18:40: `units` holds an empty name",
        "dingtail.yaml:19:13: input `e`: a journald input's `format` is `plain` or `json`",
        "dingtail.yaml:20:3: input `f` has no paths (or `journald: {}`",
    ];
    for want in expect {
        assert!(
            errs.iter().any(|e| e.contains(want)),
            "missing {want:?} in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
}
