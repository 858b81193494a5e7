//! The alert keys of a rule (issue 13): `group_by`, `when`, `realert`, `resolve`, `absent`,
//! `forget_after`, `max_groups` → an [`AlertSpec`], with every problem a
//! [`crate::config::Diagnostic`] at its key or value.
//!
//! Here is what needs the rule file: duration syntax, required sub-keys, and `group_by` names
//! against the rule's captures and [`CONTEXT_NAMES`]. How the keys combine is
//! [`AlertSpec::new`]'s, whose errors name the key to point at. Kept apart from `rules.rs` so
//! that the keys of one feature stay in one place.

use std::time::Duration;

use crate::alert::{Absent, AlertParts, AlertSpec, CONTEXT_NAMES, Resolve, When};
use crate::config::diag::did_you_mean;
use crate::config::raw::RawRule;
use crate::config::rules::FileLoader;
use crate::config::span::Seg;
use crate::yaml_path;

impl FileLoader<'_> {
    /// The alert spec of rule `i`: [`AlertSpec::plain`] without alert keys, `None` after
    /// reporting problems. `captures` are the rule's capture names (`None` when a pattern did
    /// not compile: `group_by` names are then not checked, to avoid a cascade of errors).
    pub(super) fn alert_keys(
        &mut self,
        i: usize,
        rule: &str,
        raw: &RawRule,
        captures: Option<&[String]>,
    ) -> Option<AlertSpec> {
        let given = raw.group_by.is_some()
            || raw.when.is_some()
            || raw.realert.is_some()
            || raw.resolve.is_some()
            || raw.absent.is_some()
            || raw.forget_after.is_some()
            || raw.max_groups.is_some();
        let cluster = self.scope(i, rule, raw)?;
        if !given {
            return Some(AlertSpec::plain());
        }
        // `ok`: every value could be read (the combination rules are checked only then);
        // `names_ok`: every `group_by` name exists (checked independently).
        let mut ok = true;
        let mut names_ok = true;
        let group_by = raw
            .group_by
            .as_ref()
            .map(|g| g.to_vec())
            .unwrap_or_default();
        if let Some(captures) = captures {
            for (j, name) in group_by.iter().enumerate() {
                if captures.contains(name) || CONTEXT_NAMES.contains(&name.as_str()) {
                    continue;
                }
                names_ok = false;
                let path = if raw.group_by.as_ref().is_some_and(|g| g.is_list()) {
                    yaml_path![i, "group_by", j].to_vec()
                } else {
                    yaml_path![i, "group_by"].to_vec()
                };
                let known = if captures.is_empty() {
                    "the rule's patterns capture nothing".to_string()
                } else {
                    format!("captures: {}", captures.join(", "))
                };
                let message = format!(
                    "`group_by` names `{name}`, which no pattern of the rule captures and which is \
                     not a context name ({known}; context: {})",
                    CONTEXT_NAMES.join(", ")
                );
                let mut diagnostic = self.diagnostic_value(&path, Some(rule), message);
                let candidates = captures
                    .iter()
                    .map(String::as_str)
                    .chain(CONTEXT_NAMES.iter().copied());
                if let Some(best) = did_you_mean(name, candidates) {
                    diagnostic = diagnostic.with_hint(format!("did you mean `{best}`?"));
                }
                self.diags.push(diagnostic);
            }
        }
        let when = match &raw.when {
            None => None,
            Some(when) => {
                let count = match when.count {
                    // Above u32 it is too large anyway: `AlertSpec::new` says so.
                    Some(count) => Some(u32::try_from(count).unwrap_or(u32::MAX)),
                    None => {
                        self.error(&yaml_path![i, "when"], Some(rule), "`when` needs `count`");
                        None
                    }
                };
                let within = self.required_duration(i, rule, ["when", "within"], &when.within);
                match (count, within) {
                    (Some(count), Some(within)) => Some(When { count, within }),
                    _ => {
                        ok = false;
                        None
                    }
                }
            }
        };
        let realert = self.optional_duration(i, rule, "realert", &raw.realert, &mut ok);
        let resolve = match &raw.resolve {
            None => None,
            Some(resolve) => {
                match self.required_duration(i, rule, ["resolve", "after"], &resolve.after) {
                    Some(after) => Some(Resolve {
                        after,
                        notify: resolve.notify.unwrap_or(true),
                    }),
                    None => {
                        ok = false;
                        None
                    }
                }
            }
        };
        let absent = match &raw.absent {
            None => None,
            Some(absent) => {
                match self.required_duration(i, rule, ["absent", "for"], &absent.for_) {
                    Some(for_) => Some(Absent { for_ }),
                    None => {
                        ok = false;
                        None
                    }
                }
            }
        };
        let forget_after =
            self.optional_duration(i, rule, "forget_after", &raw.forget_after, &mut ok);
        if !ok {
            return None;
        }
        let parts = AlertParts {
            group_by,
            when,
            realert,
            resolve,
            absent,
            forget_after,
            max_groups: raw
                .max_groups
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        };
        match AlertSpec::new(parts) {
            Ok(spec) => names_ok.then_some(spec.with_cluster_scope(cluster)),
            Err(errors) => {
                for err in errors {
                    let mut path: Vec<Seg> = yaml_path![i].to_vec();
                    path.extend(err.path().iter().map(|key| Seg::from(*key)));
                    // Point at the value when it is the value that is wrong.
                    let at_value = matches!(
                        err,
                        crate::alert::SpecError::NotPositive { .. }
                            | crate::alert::SpecError::ZeroCount
                            | crate::alert::SpecError::CountTooLarge
                            | crate::alert::SpecError::ZeroMaxGroups
                    );
                    if at_value {
                        self.error_value(&path, Some(rule), err.to_string());
                    } else {
                        self.error(&path, Some(rule), err.to_string());
                    }
                }
                None
            }
        }
    }

    /// `scope:` of rule `i`: `Some(true)` for `cluster`, `Some(false)` for `host` or none,
    /// `None` after reporting a problem (an unknown value; `cluster` without `when` or without
    /// a top-level `cluster:`).
    fn scope(&mut self, i: usize, rule: &str, raw: &RawRule) -> Option<bool> {
        let path = yaml_path![i, "scope"];
        match raw.scope.as_deref().map(str::trim) {
            None | Some("host") => Some(false),
            Some("cluster") if raw.when.is_none() => {
                self.error_value(
                    &path,
                    Some(rule),
                    "`scope: cluster` needs `when` (it counts a threshold across hosts)",
                );
                None
            }
            Some("cluster") if self.config.cluster.is_none() => {
                self.error_value(
                    &path,
                    Some(rule),
                    "`scope: cluster` needs a top-level `cluster:` (the hosts count through its Redis)",
                );
                None
            }
            Some("cluster") => Some(true),
            Some(other) => {
                self.error_value(
                    &path,
                    Some(rule),
                    format!("`scope` must be `host` or `cluster`, not `{other}`"),
                );
                None
            }
        }
    }

    /// A duration sub-key that must be there (`when.within`, `resolve.after`, `absent.for`).
    fn required_duration(
        &mut self,
        i: usize,
        rule: &str,
        [parent, key]: [&str; 2],
        text: &Option<String>,
    ) -> Option<Duration> {
        match text {
            Some(text) => self.duration(&yaml_path![i, parent, key], rule, text),
            None => {
                self.error(
                    &yaml_path![i, parent],
                    Some(rule),
                    format!("`{parent}` needs `{key}`"),
                );
                None
            }
        }
    }

    /// A duration key that may be absent (`realert`, `forget_after`); a bad one clears `ok`.
    fn optional_duration(
        &mut self,
        i: usize,
        rule: &str,
        key: &str,
        text: &Option<String>,
        ok: &mut bool,
    ) -> Option<Duration> {
        let text = text.as_ref()?;
        let duration = self.duration(&yaml_path![i, key], rule, text);
        *ok &= duration.is_some();
        duration
    }

    fn duration(&mut self, path: &[Seg], rule: &str, text: &str) -> Option<Duration> {
        match humantime::parse_duration(text.trim()) {
            Ok(duration) => Some(duration),
            Err(err) => {
                self.error_value(
                    path,
                    Some(rule),
                    format!("invalid duration `{text}`: {err} (write e.g. `30s`, `5m`, `1h`)"),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::alert::{Absent, AlertSpec, Resolve, When};
    use crate::config::rules::tests::{errors, load_files};

    const GOOD: &str = r#"
- name: ssh-brute-force
  input: app
  match: 'Failed password for \S+ from (?P<ip>[\d.]+)'
  robot: ops
  group_by: [ip]
  when: {count: 5, within: 1m}
  realert: 5m
  resolve: {after: 10m, notify: false}
  max_groups: 1000
- name: heartbeat
  input: app
  match: 'heartbeat ok'
  robot: ops
  group_by: host
  absent: {for: 10m}
  forget_after: 1d
- name: plain
  input: app
  match: x
  robot: ops
"#;

    #[test]
    fn alert_keys_load_into_a_spec_and_rules_without_them_stay_plain() {
        let (_dir, found) = load_files(&[("rules.d/a.yaml", GOOD)]);
        assert!(found.errors.is_empty(), "{:?}", errors(&found));
        let spec = &found.specs[0].alert;
        assert_eq!(spec.group_by(), ["ip"]);
        assert_eq!(
            spec.when(),
            Some(When {
                count: 5,
                within: Duration::from_secs(60)
            })
        );
        assert_eq!(spec.realert(), Some(Duration::from_secs(300)));
        assert_eq!(
            spec.resolve(),
            Some(Resolve {
                after: Duration::from_secs(600),
                notify: false
            })
        );
        assert_eq!(spec.max_groups(), 1000);
        let heartbeat = &found.specs[1].alert;
        assert_eq!(
            heartbeat.group_by(),
            ["host"],
            "a context name, given alone"
        );
        assert_eq!(
            heartbeat.absent(),
            Some(Absent {
                for_: Duration::from_secs(600)
            })
        );
        assert_eq!(heartbeat.forget_after(), Some(Duration::from_secs(86_400)));
        assert_eq!(heartbeat.max_groups(), AlertSpec::DEFAULT_MAX_GROUPS);
        assert!(found.specs[2].alert.is_plain());
        assert_eq!(found.specs[2].alert, AlertSpec::plain());
    }

    #[test]
    fn bad_alert_keys_are_reported_at_their_key_or_value() {
        let bad = r#"- name: a
  input: app
  match: 'from (?P<ip>\S+) user (?P<user>\S+)'
  robot: ops
  group_by: [ipp, host, usr]
  when: {count: 0, within: 0s}
- name: b
  input: app
  match: x
  robot: ops
  when: {count: 5, within: soon}
  absent: {for: 10m}
  realert: 5m
- name: c
  input: app
  match: x
  robot: ops
  resolve: {after: 10m, notfy: false}
- name: d
  input: app
  match: x
  robot: ops
  when: 5
  forget_after: 1h
- name: e
  input: app
  match: x
  robot: ops
  group_by: host
  forget_after: 1h
  absent: {for: 2h}
  max_groups: 0
- name: f
  input: app
  match: x
  robot: ops
  when: {count: 3}
  resolve: {notify: true}
"#;
        let (_dir, found) = load_files(&[("rules.d/bad.yaml", bad)]);
        let errs = errors(&found);
        let expect = [
            "bad.yaml:5:14: rule `a`: `group_by` names `ipp`, which no pattern of the rule captures and which is not a context name (captures: ip, user; context: host, file, input, rule, severity) (did you mean `ip`?)",
            "bad.yaml:5:25: rule `a`: `group_by` names `usr`, which no pattern of the rule captures and which is not a context name (captures: ip, user; context: host, file, input, rule, severity) (did you mean `user`?)",
            "bad.yaml:11:28: rule `b`: invalid duration `soon`: expected number at 0 (write e.g. `30s`, `5m`, `1h`)",
            "bad.yaml:18:25: rule `c`: unknown key `notfy` in `resolve` (did you mean `notify`?)",
            "bad.yaml:23:9: rule `d`: `when` must be a mapping with `count` (a number) and `within` (a duration)",
        ];
        for want in expect {
            assert!(
                errs.iter().any(|e| e == want),
                "missing {want:?} in {errs:#?}"
            );
        }
        // Combination problems, all of them.
        let more = [
            "bad.yaml:6:28: rule `a`: `when.within` must be a positive duration",
            "bad.yaml:6:17: rule `a`: `count` must be at least 1",
            "bad.yaml:30:3: rule `e`: `forget_after` must be longer than `absent.for` (a key is missed before it is forgotten)",
            "bad.yaml:32:15: rule `e`: `max_groups` must be at least 1",
            "bad.yaml:37:3: rule `f`: `when` needs `within`",
            "bad.yaml:38:3: rule `f`: `resolve` needs `after`",
        ];
        for want in more {
            assert!(
                errs.iter().any(|e| e == want),
                "missing {want:?} in {errs:#?}"
            );
        }
        assert_eq!(errs.len(), expect.len() + more.len(), "{errs:#?}");
        assert!(found.specs.is_empty());
    }

    #[test]
    fn scope_is_host_by_default_and_cluster_needs_when_and_a_cluster_section() {
        let rules = r#"- name: a
  input: app
  match: x
  robot: ops
  when: {count: 5, within: 1m}
  scope: host
- name: b
  input: app
  match: x
  robot: ops
  scope: cluster
- name: c
  input: app
  match: x
  robot: ops
  when: {count: 5, within: 1m}
  scope: cluster
"#;
        let (_dir, found) = load_files(&[("rules.d/s.yaml", rules)]);
        let errs = errors(&found);
        assert_eq!(
            errs,
            vec![
                "s.yaml:11:10: rule `b`: `scope: cluster` needs `when` (it counts a threshold across hosts)",
                "s.yaml:17:10: rule `c`: `scope: cluster` needs a top-level `cluster:` (the hosts count through its Redis)",
            ]
        );
        assert_eq!(found.specs.len(), 1);
        assert!(!found.specs[0].alert.is_cluster_scope());
    }
}
