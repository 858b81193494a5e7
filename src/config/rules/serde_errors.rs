//! A serde error of a rule entry, pointed at the key it concerns: an unknown key (under `at:`,
//! `link:` or an alert key's mapping when it is there, with "did you mean"), a missing key, or a
//! value of the wrong type ("`when` must be a mapping with `count` …"). A child of `rules`, so
//! that it reports through the same file loader with positions.

use serde::Deserialize;

use crate::config::diag::from_serde_message;
use crate::config::raw::{OneOrMany, RULE_KEYS, RawAbsent, RawAt, RawLink, RawResolve, RawWhen};
use crate::config::rules::FileLoader;
use crate::yaml_path;

impl FileLoader<'_> {
    /// Points a serde error at the key it concerns.
    pub(super) fn serde_error(
        &mut self,
        i: usize,
        entry: &serde_yaml::Value,
        rule: Option<&str>,
        err: &str,
    ) {
        let (message, hint) = from_serde_message(err);
        if let Some((_, rest)) = message.split_once("unknown field `") {
            let key = rest.split('`').next().unwrap_or_default();
            // Unknown keys of `at:`, `link:` (and of the alert keys' mappings) are reported under them.
            let parent = ["at", "link", "when", "resolve", "absent"]
                .into_iter()
                .find(|parent| {
                    self.spans.node(&yaml_path![i, key]).is_none()
                        && self.spans.node(&yaml_path![i, *parent, key]).is_some()
                });
            let (path, message) = match parent {
                Some(parent) => (
                    yaml_path![i, parent, key].to_vec(),
                    format!("unknown key `{key}` in `{parent}`"),
                ),
                None => (yaml_path![i, key].to_vec(), format!("unknown key `{key}`")),
            };
            let mut diagnostic = self.diagnostic_key(&path, rule, message);
            if let Some(hint) = hint {
                diagnostic = diagnostic.with_hint(hint);
            }
            self.diags.push(diagnostic);
            return;
        }
        if let Some((_, rest)) = message.split_once("missing field `") {
            let key = rest.split('`').next().unwrap_or_default();
            self.error(&yaml_path![i], rule, format!("missing key `{key}`"));
            return;
        }
        // A value of the wrong type: find the key whose value does not fit.
        let bad_key = RULE_KEYS.iter().find(|key| {
            entry
                .get(**key)
                .is_some_and(|value| !value_fits(key, value))
        });
        match bad_key {
            Some(key) => {
                let expected = expected_type(key);
                self.error_value(
                    &yaml_path![i, *key],
                    rule,
                    format!("`{key}` must be {expected}"),
                );
            }
            None => self.error(&yaml_path![i], rule, message),
        }
    }
}

/// True when `value` deserializes as the type of rule key `key`.
fn value_fits(key: &str, value: &serde_yaml::Value) -> bool {
    match key {
        "inputs" | "robots" => Vec::<String>::deserialize(value).is_ok(),
        "match" | "exclude" => OneOrMany::deserialize(value).is_ok(),
        "at" => RawAt::deserialize(value).is_ok(),
        "link" => RawLink::deserialize(value).is_ok(),
        "top" => Vec::<String>::deserialize(value).is_ok(),
        "group_by" => OneOrMany::deserialize(value).is_ok(),
        "when" => RawWhen::deserialize(value).is_ok(),
        "resolve" => RawResolve::deserialize(value).is_ok(),
        "absent" => RawAbsent::deserialize(value).is_ok(),
        "max_groups" => u64::deserialize(value).is_ok(),
        "where" => value.is_mapping(),
        _ => String::deserialize(value).is_ok(),
    }
}

fn expected_type(key: &str) -> &'static str {
    match key {
        "inputs" | "robots" => "a list of names",
        "match" | "exclude" => "a regex or a list of regexes",
        "at" => "a mapping with `mobiles`, `user_ids`, `people` and `all`",
        "link" => "a mapping with `title` and `url`",
        "top" => "a list of capture names",
        "group_by" => "a name or a list of names",
        "when" => "a mapping with `count` (a number) and `within` (a duration)",
        "resolve" => "a mapping with `after` (a duration) and `notify` (true or false)",
        "absent" => "a mapping with `for` (a duration)",
        "max_groups" => "a positive number",
        "realert" | "forget_after" => "a duration such as `5m`",
        "where" => "a mapping of field names to a value or a list of values",
        _ => "a string",
    }
}
