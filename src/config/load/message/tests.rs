//! The keys that shape messages: zones, language, people, robot kinds and titles, event times.

use std::path::Path;

use crate::config::load::parse;
use crate::config::{Config, Diagnostics, TimeFormat, Webhook};
use crate::event::MsgType;
use crate::lang::Language;

fn check(text: &str) -> Result<Config, Diagnostics> {
    parse(Path::new("/etc/dingtail/dingtail.yaml"), text, &|_| None)
}

fn errors(text: &str) -> Vec<String> {
    check(text)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

const GOOD: &str = r#"
timezone: Asia/Shanghai
language: en
people:
  payments: {mobiles: [13800000001, "+852-12345678"], user_ids: [pay-oncall]}
inputs:
  syslog:
    paths: /var/log/syslog
    timestamp:
      pattern: '^(\w{3} +\d{1,2} \d\d:\d\d:\d\d)'
      format: '%b %e %H:%M:%S'
  nginx:
    paths: /var/log/nginx/access.log
    timestamp: {pattern: '\[([^\]]+)\]', format: '%d/%b/%Y:%H:%M:%S %z', timezone: UTC}
  mysql:
    paths: /var/log/mysql/error.log
    timestamp: {pattern: '^(\S+)', format: rfc3339}
robots:
  ops:
    webhook: console
    msgtype: text
    summary_title: '{{ level }} on {{ host }}'
  raw:
    webhook: stdout
"#;

#[test]
fn zones_language_people_kinds_and_event_times_load() {
    let config = check(GOOD).unwrap();
    assert_eq!(config.timezone.iana_name(), Some("Asia/Shanghai"));
    assert_eq!(config.language, Language::En);
    let payments = &config.people["payments"];
    assert_eq!(payments.mobiles, ["13800000001", "+852-12345678"]);
    assert_eq!(payments.user_ids, ["pay-oncall"]);
    let syslog = config.inputs["syslog"].timestamp.as_ref().unwrap();
    assert_eq!(syslog.format, TimeFormat::Strftime("%b %e %H:%M:%S".into()));
    assert_eq!(
        syslog.zone.iana_name(),
        Some("Asia/Shanghai"),
        "the config's zone by default"
    );
    let nginx = config.inputs["nginx"].timestamp.as_ref().unwrap();
    assert_eq!(nginx.zone.iana_name(), Some("UTC"));
    assert_eq!(
        config.inputs["mysql"].timestamp.as_ref().unwrap().format,
        TimeFormat::Rfc3339
    );
    let ops = &config.robots["ops"];
    assert_eq!(ops.webhook, Webhook::Console);
    assert_eq!(ops.msgtype, MsgType::Text);
    assert_eq!(
        ops.summary_title.as_ref().unwrap().source,
        "{{ level }} on {{ host }}"
    );
    assert_eq!(config.robots["raw"].msgtype, MsgType::Markdown);
    // The defaults: Chinese, the machine's zone.
    let minimal = check("inputs:\n  a:\n    paths: /x\n").unwrap();
    assert_eq!(minimal.language, Language::ZhCn);
}

#[test]
fn bad_values_are_reported_with_positions() {
    let text = r#"timezone: Mars/Olympus
language: fr
people:
  ghost: {}
  bad: {mobiles: ["138 0000 0000"], user_ids: ["a b"]}
inputs:
  a:
    paths: /x
    timestamp: {pattern: '^\S+', format: '%Y'}
  b:
    paths: /y
    timestamp: {pattern: '^(\S+)', format: 'iso', timezone: Nowhere/City}
robots:
  ops:
    webhook: stdout
    msgtype: card
"#;
    let errs = errors(text);
    let expect = [
        "dingtail.yaml:1:11: unknown time zone `Mars/Olympus`",
        "dingtail.yaml:2:11: `language` must be zh-CN or en, not `fr`",
        "dingtail.yaml:4:3: person `ghost` has no `mobiles` or `user_ids`",
        "dingtail.yaml:5:19: `138 0000 0000` is not a mobile number",
        "dingtail.yaml:5:48: `a b` is not a DingTalk user id",
        "dingtail.yaml:9:26: timestamp.pattern needs exactly one capture group (the time), found 0",
        "dingtail.yaml:9:42: timestamp.format `%Y` needs a date and a time of day",
        "dingtail.yaml:12:44: timestamp.format must be a strftime format",
        "dingtail.yaml:12:61: unknown time zone `Nowhere/City`",
        "dingtail.yaml:16:14: `msgtype` must be markdown, text, actionCard, not `card`",
    ];
    for want in expect {
        assert!(
            errs.iter().any(|e| e.contains(want)),
            "missing {want:?} in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
    assert!(
        errs[0].contains("/usr/share/zoneinfo"),
        "says where zones come from: {errs:#?}"
    );
}
