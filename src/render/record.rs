//! What a decoded event adds to a template's context (issue 14): the JSON fields of a line as
//! `fields` (a nested map: `{{ fields.user.id }}`), and the input's context under its own names:
//! a container's `stream`, the `namespace`, `pod` and `container` of a Kubernetes log path,
//! docker's labels as `attrs.NAME`, and every journal field under its journal name
//! (`{{ _SYSTEMD_UNIT }}`, `{{ PRIORITY }}`).
//!
//! Which names a rule may use is decided at load time from its inputs ([`RecordNames::of`]):
//! the container and JSON names for a rule reading an input in another format than `plain`,
//! any journal-shaped name (`^_{0,2}[A-Z][A-Z0-9_]*$`) its templates use for a rule reading a
//! journald input, `fields` for both. A rule that reads only plain text gets none of them, so
//! a typo there is still a load error. At run time a name the event does not carry is an empty
//! string (an empty map for `fields` and `attrs`), never a strict-undefined failure: the same
//! rule for captures that took no part in a match.
//!
//! Every value is log text and is escaped like the line itself when printed (the templates'
//! auto-escape, `render::compile`), whether it is printed alone or as part of a map.

use std::collections::BTreeMap;

use minijinja::Value;

use crate::config::{Config, Format, RuleSpec};
use crate::event::LogLine;
use crate::render::context::Context;

/// The names a rule reading an input in a decoded format (`cri`, `docker`, `json`, `auto`) may
/// use.
pub const DECODED_NAMES: &[&str] = &["stream", "namespace", "pod", "container", "attrs", "fields"];

/// The names a rule reading a journald input may use besides journal fields.
const JOURNAL_NAMES: &[&str] = &["fields"];

/// The record names of one rule, decided at load time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordNames {
    /// Names the rule's templates may use, besides its captures and the built-ins.
    pub allowed: Vec<String>,
    /// The journal fields its templates use: empty when an entry lacks them.
    pub journal_fields: Vec<String>,
}

impl RecordNames {
    /// The record names `spec`'s templates may use, given the inputs it reads in `config`.
    pub fn of(spec: &RuleSpec, config: &Config) -> RecordNames {
        let inputs = || {
            spec.inputs
                .iter()
                .filter_map(|name| config.inputs.get(name))
        };
        let decoded = inputs()
            .any(|input| input.journald.is_none() && input.decoding.format != Format::Plain);
        let journal = inputs().any(|input| input.journald.is_some());
        let mut names = RecordNames::default();
        if decoded {
            names
                .allowed
                .extend(DECODED_NAMES.iter().map(|n| (*n).to_string()));
        }
        if journal {
            for name in JOURNAL_NAMES {
                if !names.allowed.iter().any(|known| known == name) {
                    names.allowed.push((*name).to_string());
                }
            }
            for source in template_sources(spec) {
                for variable in variables(source) {
                    if is_journal_field(&variable) && !names.journal_fields.contains(&variable) {
                        names.journal_fields.push(variable);
                    }
                }
            }
            names.allowed.extend(names.journal_fields.iter().cloned());
        }
        names
    }
}

/// The sources of a rule's per-event templates (not `summary`, which sees no event).
fn template_sources(spec: &RuleSpec) -> Vec<&str> {
    let mut sources: Vec<&str> = Vec::new();
    sources.extend(spec.title.iter().map(|t| t.source.as_str()));
    sources.extend(spec.template.iter().map(|t| t.source.as_str()));
    if let Some(link) = &spec.link {
        sources.push(&link.title.source);
        sources.push(&link.url.source);
    }
    sources.extend(
        spec.mention_templates
            .iter()
            .map(|m| m.template.source.as_str()),
    );
    sources
}

/// The top-level variables `source` reads (none when it does not parse: compiling it reports
/// that).
fn variables(source: &str) -> Vec<String> {
    let env = minijinja::Environment::new();
    match env.template_from_str(source) {
        Ok(template) => template.undeclared_variables(false).into_iter().collect(),
        Err(_) => Vec::new(),
    }
}

/// True when `name` has the shape of a journal field name: upper-case letters, digits and `_`,
/// starting with a letter after at most two underscores (`PRIORITY`, `_SYSTEMD_UNIT`,
/// `__REALTIME_TIMESTAMP`).
pub fn is_journal_field(name: &str) -> bool {
    let rest = name.trim_start_matches('_');
    name.len() - rest.len() <= 2
        && rest.starts_with(|c: char| c.is_ascii_uppercase())
        && rest
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Puts `line`'s record into a match's `context`: first every decoded name and every journal
/// field in `journal_fields` as empty, then the event's context pairs (the first value of a
/// repeated journal field; `attrs.NAME` into the map `attrs`) and its JSON `fields`. Called
/// before the captures and the built-ins are set, which win over these.
pub fn set_record(context: &mut Context, line: &LogLine, journal_fields: &[String]) {
    for name in ["stream", "namespace", "pod", "container"] {
        context.set(name, "");
    }
    for name in journal_fields {
        context.set(name, "");
    }
    let mut attrs: BTreeMap<String, Value> = BTreeMap::new();
    // In reverse, so that the first value of a repeated field is the one kept.
    let pairs: Vec<(&str, &str)> = line.context.iter().collect();
    for (name, value) in pairs.into_iter().rev() {
        match name.strip_prefix("attrs.") {
            Some(attr) => {
                attrs.insert(attr.to_string(), Value::from(value));
            }
            None => context.set(name, value),
        }
    }
    context.set("attrs", Value::from(attrs));
    let fields = match &line.fields {
        Some(fields) => fields
            .to_map()
            .iter()
            .map(|(name, value)| (name.clone(), json_value(value)))
            .collect(),
        None => BTreeMap::new(),
    };
    context.set("fields", Value::from(fields));
}

/// A JSON value as a template value: objects become maps, arrays lists, numbers stay numbers.
pub fn json_value(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => {
            Value::from(items.iter().map(json_value).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), json_value(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use crate::config::Diagnostics;
    use crate::dingtalk::escape::tests::{HOSTILE, constructs};
    use crate::event::{LogLine, Markup};
    use crate::fields::{Context, Fields};
    use crate::render::Renderer;
    use crate::render::record::{is_journal_field, json_value};
    use crate::render::tests::{line, load_with};
    use crate::rules::{Rule, RuleSet};

    const CONFIG: &str = "language: en
timezone: UTC
host: web-1
inputs:
  pods:
    paths: /var/log/pods/*/*/*.log
    format: cri
    content: json
  journal:
    journald: {}
  app:
    paths: /x.log
robots:
  ops:
    webhook: stdout
";

    fn context(pairs: &[(&str, &str)]) -> Context {
        Context::from_pairs(
            pairs
                .iter()
                .map(|(name, value)| (Arc::from(*name), Arc::from(*value)))
                .collect(),
        )
    }

    /// Renders the only rule of `rules` (on input `input`) for `log`, as markdown.
    fn render(rules: &str, input: &str, log: &LogLine) -> (String, String) {
        let (_dir, specs, config) = load_with(rules, CONFIG);
        let renderer = Renderer::new(&specs, &config).unwrap();
        let set = RuleSet::new(input, specs.iter().map(Rule::new).collect()).unwrap();
        let mut found = Vec::new();
        set.matches_line(log, &mut found);
        assert_eq!(found.len(), 1, "the rule matches");
        let host = log.host().unwrap_or("web-1");
        let rendered =
            renderer.render_match(&set.rules()[0], &found[0], log, host, Markup::Markdown);
        (rendered.title, rendered.text)
    }

    #[test]
    fn container_context_and_json_fields_are_template_values() {
        let rules = r#"- name: pay
  input: pods
  where: {level: error}
  robot: ops
  title: '{{ namespace }}/{{ pod }}/{{ container }} ({{ stream }})'
  template: '{{ fields.user.id }} {{ fields.tags[1] }} {{ fields.status }} [{{ attrs.service | default("none") }}] {{ fields.note }} {{ line }}'
"#;
        let mut log = line("payment failed");
        log.context = context(&[
            ("stream", "stderr"),
            ("namespace", "shop"),
            ("pod", "pay-0"),
            ("container", "api"),
        ]);
        let fields = |note: &str| {
            let json = json!({"level": "error", "user": {"id": "u-7"}, "tags": ["a", "b"],
                              "status": 502, "note": note});
            Some(Box::new(Fields::parse(&json.to_string()).unwrap()))
        };
        log.fields = fields("ok");
        let (title, text) = render(rules, "pods", &log);
        assert_eq!(title, "shop/pay-0/api (stderr)");
        assert_eq!(text, "u-7 b 502 [none] ok payment failed");
        // Log text in a field is escaped like the line: it forms no markdown construct.
        for hostile in HOSTILE {
            log.fields = fields(hostile);
            let (_, text) = render(rules, "pods", &log);
            assert_eq!(constructs(&text), ["Paragraph"], "{hostile:?}: {text}");
        }
    }

    #[test]
    fn journal_fields_are_template_values_and_the_host_is_the_entrys() {
        let rules = r#"- name: sshd
  input: journal
  where: {SYSLOG_IDENTIFIER: sshd}
  robot: ops
  title: '{{ _SYSTEMD_UNIT }} on {{ host }}'
  template: '{{ PRIORITY }}|{{ _COMM }}|{{ line }}'
"#;
        let mut log = line("Failed password for root");
        log.context = context(&[
            ("SYSLOG_IDENTIFIER", "sshd"),
            ("_SYSTEMD_UNIT", "ssh.service"),
            ("PRIORITY", "3"),
            ("_HOSTNAME", "db-2"),
        ]);
        let (title, text) = render(rules, "journal", &log);
        assert_eq!(title, "ssh.service on db-2");
        assert_eq!(
            text, "3||Failed password for root",
            "a field the entry lacks is empty"
        );
    }

    #[test]
    fn plain_inputs_have_no_record_names() {
        let rules = r#"- name: plain
  input: app
  match: x
  robot: ops
  template: '{{ stream }} {{ fields }}'
- name: journal-typo
  input: journal
  match: x
  robot: ops
  template: '{{ systemd_unit }}'
"#;
        let (_dir, specs, config) = load_with(rules, CONFIG);
        let Err(Diagnostics(diags)) = Renderer::new(&specs, &config) else {
            panic!("expected template errors");
        };
        let text: Vec<String> = diags.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:#?}");
        assert!(text[0].contains("undefined variable `stream`"), "{text:#?}");
        assert!(text[1].contains("undefined variable `fields`"), "{text:#?}");
        assert!(
            text[2].contains("undefined variable `systemd_unit`"),
            "{text:#?}"
        );
    }

    #[test]
    fn journal_field_names() {
        for name in [
            "PRIORITY",
            "_SYSTEMD_UNIT",
            "__REALTIME_TIMESTAMP",
            "CODE_LINE",
            "A1",
        ] {
            assert!(is_journal_field(name), "{name}");
        }
        for name in ["line", "Priority", "___X", "_", "_1X", "", "X-Y", "stream"] {
            assert!(!is_journal_field(name), "{name}");
        }
    }

    #[test]
    fn json_values_keep_their_shape() {
        let value = json_value(
            &json!({"a": {"b": [1, "x", null, true, 2.5]}, "big": 18446744073709551615u64}),
        );
        assert_eq!(
            value.get_attr("a").unwrap().get_attr("b").unwrap().len(),
            Some(5)
        );
        assert_eq!(
            value.to_string(),
            "{'a': {'b': [1, 'x', None, True, 2.5]}, 'big': 18446744073709551615}"
        );
    }
}
