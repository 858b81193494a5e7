//! Rule keys that shape messages: msgtype, link, top, at with templates and people.

use crate::config::MentionKind;
use crate::config::rules::tests::{errors, load_files};
use crate::event::MsgType;

#[test]
fn kinds_links_top_and_mentions_load() {
    let (_dir, found) = load_files(&[(
        "rules.d/ssh.yaml",
        r#"
- name: sshd
  input: app
  match: 'Failed password for (?P<user>\S+) from (?P<ip>\S+) service=(?P<service>\S+)'
  robot: ops
  msgtype: actionCard
  link: {title: 'Logins of {{ user }}', url: 'https://grafana.example/d/ssh?user={{ user }}'}
  top: [ip, user, ip]
  at:
    mobiles: [13800000000, '{{ owner_mobile }}']
    user_ids: ['{{ service }}-oncall']
    people: [payments, '{{ service }}']
"#,
    )]);
    assert!(found.errors.is_empty(), "{:?}", errors(&found));
    let spec = &found.specs[0];
    assert_eq!(spec.msgtype, Some(MsgType::ActionCard));
    let link = spec.link.as_ref().unwrap();
    assert_eq!(
        link.url.source,
        "https://grafana.example/d/ssh?user={{ user }}"
    );
    assert_eq!(spec.top, ["ip", "user"]);
    // Literal entries resolved now (people's included), templates kept for rendering.
    assert_eq!(spec.mentions.mobiles, ["13800000000", "13800000001"]);
    let kinds: Vec<(MentionKind, &str)> = spec
        .mention_templates
        .iter()
        .map(|t| (t.kind, t.template.source.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (MentionKind::Mobile, "{{ owner_mobile }}"),
            (MentionKind::UserId, "{{ service }}-oncall"),
            (MentionKind::Person, "{{ service }}"),
        ]
    );
}

#[test]
fn bad_kinds_links_top_and_mentions_are_errors_with_positions() {
    let (_dir, found) = load_files(&[(
        "rules.d/bad.yaml",
        r#"- name: a
  input: app
  match: '(?P<user>\S+)'
  robot: ops
  msgtype: markdwon
  top: [usr]
- name: b
  input: app
  match: 'x'
  robot: ops
  msgtype: actionCard
- name: c
  input: app
  match: 'x'
  robot: ops
  link: {title: go, url: 'ftp://files.example/x'}
- name: d
  input: app
  match: '(?P<host>\S+)'
  robot: ops
  link: {title: go, url: 'https://{{ host }}/x'}
- name: e
  input: app
  match: 'x'
  robot: ops
  at: {mobiles: ['138-abc'], user_ids: ['a b'], people: [paymnets]}
- name: f
  input: app
  match: 'x'
  robot: ops
  link: {title: go, url: 'https://x.example/', target: blank}
"#,
    )]);
    let errs = errors(&found);
    let expect = [
        "bad.yaml:5:12: rule `a`: `msgtype` must be markdown, text, actionCard, not `markdwon` (did you mean `markdown`?)",
        "bad.yaml:6:9: rule `a`: `top` names `usr`, which is not a named capture (named captures: user) (did you mean `user`?)",
        "bad.yaml:11:12: rule `b`: `msgtype: actionCard` needs a `link:` (the card's button)",
        "bad.yaml:16:26: rule `c`: `link.url` must start with `https://`, `http://` or `dingtalk://`",
        "bad.yaml:21:26: rule `d`: `link.url` must write its host literally",
        "bad.yaml:26:18: rule `e`: `138-abc` is not a mobile number",
        "bad.yaml:26:41: rule `e`: `a b` is not a DingTalk user id",
        "bad.yaml:26:58: rule `e`: `paymnets` is not defined under `people:` in the main config (did you mean `payments`?)",
        "bad.yaml:31:48: rule `f`: unknown key `target` in `link`",
    ];
    for want in expect {
        assert!(
            errs.iter().any(|e| e.contains(want)),
            "missing {want:?} in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
    assert!(found.specs.is_empty());
}
