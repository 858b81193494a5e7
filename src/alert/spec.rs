//! `AlertSpec`: the validated alert keys of one rule (`group_by`, `when`, `realert`, `resolve`,
//! `absent`, `forget_after`, `max_groups`).
//!
//! `config` parses the YAML, checks what needs the rule file (durations, `group_by` names against
//! the rule's captures) and builds the spec through [`AlertSpec::new`], which holds every rule
//! about how the keys combine; a [`SpecError`] names the key it concerns ([`SpecError::path`]) so
//! the loader can point at it. A rule without any of these keys gets [`AlertSpec::plain`]: every
//! match is an alert, as before issue 13, and its [`crate::alert::Tracker`] keeps no state.
//!
//! Combinations that are refused, and why:
//! - `absent` with `when`, `realert` or `resolve`: a heartbeat rule's matches are not alerts;
//!   its absence is reported once and its return once (the recovery is its resolution).
//! - `forget_after` without `absent`, or without `group_by`: other rules forget a key by
//!   themselves once it is quiet, and a rule without `group_by` has one key, always expected.
//! - `forget_after` not longer than `absent.for`: a key would be forgotten before it is missed.
//! - `resolve.after` shorter than `when.within`: the incident would resolve while its window
//!   still holds enough matches to fire again at the next one (flapping).
//! - `group_by` alone: it changes nothing without one of the other keys.

use std::time::Duration;

use crate::alert::key::GroupKey;

/// The context names a `group_by` may use besides the rule's captures (their values come from
/// the line's context, as in templates, where they shadow a capture of the same name).
pub const CONTEXT_NAMES: &[&str] = &["host", "file", "input", "rule", "severity"];

/// `when: {count, within}`: fire for a key when `count` of its matches fall within `within`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct When {
    /// At least this many matches (1..=[`AlertSpec::MAX_COUNT`]).
    pub count: u32,
    /// Within a span shorter than this (sliding, on event time).
    pub within: Duration,
}

/// `resolve: {after, notify}`: a firing key with no match for `after` is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolve {
    /// The quiet period that ends an incident.
    pub after: Duration,
    /// Send a resolved notice (`notify: false` only ends the incident).
    pub notify: bool,
}

/// `absent: {for}`: a heartbeat rule; a key without a match for `for` is reported absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Absent {
    /// The quiet period after which a key is absent.
    pub for_: Duration,
}

/// The parts of an [`AlertSpec`] as the loader read them, before the combination rules.
#[derive(Clone, Debug)]
pub struct AlertParts {
    /// `group_by` names (captures or [`CONTEXT_NAMES`]), in order.
    pub group_by: Vec<String>,
    /// `when`.
    pub when: Option<When>,
    /// `realert`.
    pub realert: Option<Duration>,
    /// `resolve`.
    pub resolve: Option<Resolve>,
    /// `absent`.
    pub absent: Option<Absent>,
    /// `forget_after`.
    pub forget_after: Option<Duration>,
    /// `max_groups` (default [`AlertSpec::DEFAULT_MAX_GROUPS`]).
    pub max_groups: Option<usize>,
}

/// Why an [`AlertParts`] is not a valid spec. [`SpecError::path`] names the key concerned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// A duration below one millisecond (the resolution of the state machines).
    #[error("`{key}` must be a positive duration")]
    NotPositive {
        /// The key, dotted (`when.within`).
        key: &'static str,
    },
    /// `when.count` is 0.
    #[error("`count` must be at least 1")]
    ZeroCount,
    /// `when.count` above [`AlertSpec::MAX_COUNT`].
    #[error(
        "`count` may be at most {max} (each key keeps the times of its last `count` matches)",
        max = AlertSpec::MAX_COUNT
    )]
    CountTooLarge,
    /// `max_groups` is 0.
    #[error("`max_groups` must be at least 1")]
    ZeroMaxGroups,
    /// A name twice in `group_by`.
    #[error("`group_by` names `{name}` twice")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// `group_by` without a key that uses it.
    #[error("`group_by` has no effect without `when`, `realert`, `resolve` or `absent`")]
    GroupByAlone,
    /// `absent` with `when`, `realert` or `resolve`.
    #[error(
        "`absent` cannot be combined with `{other}` (a heartbeat rule's matches are not alerts; \
         its absence and its recovery are reported once each)"
    )]
    AbsentWith {
        /// The other key.
        other: &'static str,
    },
    /// `forget_after` on a rule that is not a heartbeat rule.
    #[error(
        "`forget_after` applies to `absent` rules (other rules forget a key by themselves once \
         it is quiet)"
    )]
    ForgetWithoutAbsent,
    /// `forget_after` without `group_by`.
    #[error("`forget_after` needs `group_by` (a rule without it has one key, always expected)")]
    ForgetWithoutGroupBy,
    /// `forget_after` ≤ `absent.for`.
    #[error(
        "`forget_after` must be longer than `absent.for` (a key is missed before it is forgotten)"
    )]
    ForgetTooSoon,
    /// `resolve.after` < `when.within`.
    #[error(
        "`resolve.after` must be at least `when.within` (an incident resolved while its window \
         still holds `count` matches would fire again at the next one)"
    )]
    ResolveBeforeWindow,
}

impl SpecError {
    /// The path of the key the error concerns, from the rule (`["when", "within"]`).
    pub fn path(&self) -> &'static [&'static str] {
        match self {
            SpecError::NotPositive { key } => match *key {
                "when.within" => &["when", "within"],
                "resolve.after" => &["resolve", "after"],
                "absent.for" => &["absent", "for"],
                "realert" => &["realert"],
                _ => &["forget_after"],
            },
            SpecError::ZeroCount | SpecError::CountTooLarge => &["when", "count"],
            SpecError::ZeroMaxGroups => &["max_groups"],
            SpecError::DuplicateName { .. } | SpecError::GroupByAlone => &["group_by"],
            SpecError::AbsentWith { other } => match *other {
                "when" => &["when"],
                "realert" => &["realert"],
                _ => &["resolve"],
            },
            SpecError::ForgetWithoutAbsent
            | SpecError::ForgetWithoutGroupBy
            | SpecError::ForgetTooSoon => &["forget_after"],
            SpecError::ResolveBeforeWindow => &["resolve", "after"],
        }
    }
}

/// The validated alert keys of one rule. Invariants: durations are at least 1 ms, `count` is
/// in 1..=[`AlertSpec::MAX_COUNT`], `max_groups` ≥ 1, and the combination rules of the module
/// documentation hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertSpec {
    group_by: Vec<String>,
    when: Option<When>,
    realert: Option<Duration>,
    resolve: Option<Resolve>,
    absent: Option<Absent>,
    forget_after: Option<Duration>,
    max_groups: usize,
    /// `scope: cluster`: the `when` threshold counts the matches of every host.
    cluster: bool,
}

impl AlertSpec {
    /// `max_groups` when not given.
    pub const DEFAULT_MAX_GROUPS: usize = 100_000;
    /// The largest `when.count`: a key keeps the times of its last `count` matches (8 bytes
    /// each).
    pub const MAX_COUNT: u32 = 10_000;

    /// The spec of a rule without alert keys: every match is an alert.
    pub fn plain() -> AlertSpec {
        AlertSpec {
            group_by: Vec::new(),
            when: None,
            realert: None,
            resolve: None,
            absent: None,
            forget_after: None,
            max_groups: AlertSpec::DEFAULT_MAX_GROUPS,
            cluster: false,
        }
    }

    /// Checks the combination rules.
    ///
    /// # Errors
    /// Every rule broken, in key order (the loader reports each at [`SpecError::path`]).
    pub fn new(parts: AlertParts) -> Result<AlertSpec, Vec<SpecError>> {
        let mut errors = Vec::new();
        let positive = [
            (parts.when.map(|w| w.within), "when.within"),
            (parts.realert, "realert"),
            (parts.resolve.map(|r| r.after), "resolve.after"),
            (parts.absent.map(|a| a.for_), "absent.for"),
            (parts.forget_after, "forget_after"),
        ];
        for (duration, key) in positive {
            if duration.is_some_and(|d| d < Duration::from_millis(1)) {
                errors.push(SpecError::NotPositive { key });
            }
        }
        if let Some(when) = parts.when {
            if when.count == 0 {
                errors.push(SpecError::ZeroCount);
            }
            if when.count > AlertSpec::MAX_COUNT {
                errors.push(SpecError::CountTooLarge);
            }
        }
        if parts.max_groups == Some(0) {
            errors.push(SpecError::ZeroMaxGroups);
        }
        for (i, name) in parts.group_by.iter().enumerate() {
            if parts.group_by.iter().take(i).any(|before| before == name) {
                errors.push(SpecError::DuplicateName { name: name.clone() });
            }
        }
        if parts.absent.is_some() {
            let others = [
                (parts.when.is_some(), "when"),
                (parts.realert.is_some(), "realert"),
                (parts.resolve.is_some(), "resolve"),
            ];
            for (given, other) in others {
                if given {
                    errors.push(SpecError::AbsentWith { other });
                }
            }
        }
        let uses_keys = parts.when.is_some()
            || parts.realert.is_some()
            || parts.resolve.is_some()
            || parts.absent.is_some();
        if !parts.group_by.is_empty() && !uses_keys {
            errors.push(SpecError::GroupByAlone);
        }
        if let Some(forget_after) = parts.forget_after {
            match parts.absent {
                None => errors.push(SpecError::ForgetWithoutAbsent),
                Some(_) if parts.group_by.is_empty() => {
                    errors.push(SpecError::ForgetWithoutGroupBy);
                }
                Some(absent) if forget_after <= absent.for_ => {
                    errors.push(SpecError::ForgetTooSoon);
                }
                Some(_) => {}
            }
        }
        if let (Some(when), Some(resolve)) = (parts.when, parts.resolve) {
            if resolve.after < when.within {
                errors.push(SpecError::ResolveBeforeWindow);
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(AlertSpec {
            group_by: parts.group_by,
            when: parts.when,
            realert: parts.realert,
            resolve: parts.resolve,
            absent: parts.absent,
            forget_after: parts.forget_after,
            max_groups: parts.max_groups.unwrap_or(AlertSpec::DEFAULT_MAX_GROUPS),
            cluster: false,
        })
    }

    /// The spec with `scope: cluster` (`on`) or `scope: host`: with it, the `when` threshold
    /// counts the matches of every host of the cluster (`cluster::threshold`). The loader
    /// allows it only on a rule with `when` in a config with `cluster:`.
    pub fn with_cluster_scope(mut self, on: bool) -> AlertSpec {
        self.cluster = on && self.when.is_some();
        self
    }

    /// True for `scope: cluster` (a rule with `when`).
    pub fn is_cluster_scope(&self) -> bool {
        self.cluster
    }

    /// True when every match is an alert (no `when`, `realert`, `resolve` or `absent`): the
    /// tracker's fast path, with no state per key.
    pub fn is_plain(&self) -> bool {
        self.when.is_none()
            && self.realert.is_none()
            && self.resolve.is_none()
            && !self.is_heartbeat()
    }

    /// True for an `absent` rule: its matches are heartbeats, not alerts.
    pub fn is_heartbeat(&self) -> bool {
        self.absent.is_some()
    }

    /// `group_by` names, in order.
    pub fn group_by(&self) -> &[String] {
        &self.group_by
    }

    /// `when`.
    pub fn when(&self) -> Option<When> {
        self.when
    }

    /// `realert`.
    pub fn realert(&self) -> Option<Duration> {
        self.realert
    }

    /// `resolve`.
    pub fn resolve(&self) -> Option<Resolve> {
        self.resolve
    }

    /// `absent`.
    pub fn absent(&self) -> Option<Absent> {
        self.absent
    }

    /// `forget_after`.
    pub fn forget_after(&self) -> Option<Duration> {
        self.forget_after
    }

    /// `max_groups`.
    pub fn max_groups(&self) -> usize {
        self.max_groups
    }

    /// The quiet period that ends an incident: `resolve.after`; else `when.within` (the window
    /// has drained); else `realert` (a repeat period passed without a match). `None` for plain
    /// and heartbeat rules, which have no incidents.
    pub fn end_after(&self) -> Option<Duration> {
        if self.is_heartbeat() {
            return None;
        }
        self.resolve
            .map(|r| r.after)
            .or(self.when.map(|w| w.within))
            .or(self.realert)
    }

    /// The key of a match: the value of each `group_by` name, looked up with `value_of` (the
    /// caller decides whether captures or context come first; templates let the context win). A
    /// name without a value (a capture of another pattern of the rule) gives an empty value.
    /// Allocates nothing for a rule without `group_by`.
    pub fn group_key<'v>(&self, value_of: impl Fn(&str) -> Option<&'v str>) -> GroupKey {
        if self.group_by.is_empty() {
            return GroupKey::empty();
        }
        GroupKey::new(
            self.group_by
                .iter()
                .map(|name| value_of(name).unwrap_or_default()),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::alert::GroupKey;
    use crate::alert::spec::{Absent, AlertParts, AlertSpec, Resolve, SpecError, When};

    fn parts() -> AlertParts {
        AlertParts {
            group_by: vec![],
            when: None,
            realert: None,
            resolve: None,
            absent: None,
            forget_after: None,
            max_groups: None,
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn combinations_are_checked_and_point_at_their_key() {
        let check = |p: AlertParts| {
            let errors = AlertSpec::new(p).unwrap_err();
            assert_eq!(errors.len(), 1, "{errors:?}");
            errors.into_iter().next().unwrap()
        };
        let err = check(AlertParts {
            when: Some(When {
                count: 0,
                within: secs(60),
            }),
            ..parts()
        });
        assert_eq!(
            (err.clone(), err.path()),
            (SpecError::ZeroCount, &["when", "count"][..])
        );
        let err = check(AlertParts {
            when: Some(When {
                count: 5,
                within: Duration::ZERO,
            }),
            ..parts()
        });
        assert_eq!(err.path(), ["when", "within"]);
        assert_eq!(err.to_string(), "`when.within` must be a positive duration");
        let absent = Some(Absent { for_: secs(600) });
        let err = check(AlertParts {
            when: Some(When {
                count: 5,
                within: secs(60),
            }),
            absent,
            ..parts()
        });
        assert_eq!(err, SpecError::AbsentWith { other: "when" });
        let err = check(AlertParts {
            forget_after: Some(secs(60)),
            ..parts()
        });
        assert_eq!(err, SpecError::ForgetWithoutAbsent);
        let err = check(AlertParts {
            group_by: vec!["host".into()],
            absent,
            forget_after: Some(secs(600)),
            ..parts()
        });
        assert_eq!(err, SpecError::ForgetTooSoon);
        let err = check(AlertParts {
            absent,
            forget_after: Some(secs(6000)),
            ..parts()
        });
        assert_eq!(err, SpecError::ForgetWithoutGroupBy);
        let err = check(AlertParts {
            when: Some(When {
                count: 5,
                within: secs(60),
            }),
            resolve: Some(Resolve {
                after: secs(30),
                notify: true,
            }),
            ..parts()
        });
        assert_eq!(err.path(), ["resolve", "after"]);
        let err = check(AlertParts {
            group_by: vec!["ip".into()],
            ..parts()
        });
        assert_eq!(err, SpecError::GroupByAlone);
        let err = check(AlertParts {
            group_by: vec!["ip".into(), "ip".into()],
            realert: Some(secs(60)),
            ..parts()
        });
        assert_eq!(err, SpecError::DuplicateName { name: "ip".into() });
        let err = check(AlertParts {
            realert: Some(secs(1)),
            max_groups: Some(0),
            ..parts()
        });
        assert_eq!(err, SpecError::ZeroMaxGroups);
        // Every problem is reported, not just the first.
        let errors = AlertSpec::new(AlertParts {
            when: Some(When {
                count: 0,
                within: Duration::ZERO,
            }),
            realert: Some(secs(60)),
            absent,
            ..parts()
        })
        .unwrap_err();
        assert_eq!(
            errors,
            [
                SpecError::NotPositive { key: "when.within" },
                SpecError::ZeroCount,
                SpecError::AbsentWith { other: "when" },
                SpecError::AbsentWith { other: "realert" },
            ]
        );
    }

    #[test]
    fn the_end_of_an_incident_follows_the_keys_given() {
        let spec = |p| AlertSpec::new(p).unwrap();
        assert!(spec(parts()).is_plain());
        assert_eq!(spec(parts()).end_after(), None);
        let realert = spec(AlertParts {
            realert: Some(secs(300)),
            ..parts()
        });
        assert_eq!(realert.end_after(), Some(secs(300)));
        let when = spec(AlertParts {
            when: Some(When {
                count: 5,
                within: secs(60),
            }),
            realert: Some(secs(300)),
            ..parts()
        });
        assert_eq!(when.end_after(), Some(secs(60)));
        let resolve = spec(AlertParts {
            when: Some(When {
                count: 5,
                within: secs(60),
            }),
            resolve: Some(Resolve {
                after: secs(600),
                notify: false,
            }),
            ..parts()
        });
        assert_eq!(resolve.end_after(), Some(secs(600)));
        let heartbeat = spec(AlertParts {
            absent: Some(Absent { for_: secs(60) }),
            ..parts()
        });
        assert!(!heartbeat.is_plain() && heartbeat.is_heartbeat());
        assert_eq!(heartbeat.end_after(), None);
        assert_eq!(heartbeat.max_groups(), AlertSpec::DEFAULT_MAX_GROUPS);
    }

    #[test]
    fn keys_take_values_in_group_by_order_and_missing_ones_are_empty() {
        let spec = AlertSpec::new(AlertParts {
            group_by: vec!["ip".into(), "host".into(), "user".into()],
            realert: Some(secs(60)),
            ..parts()
        })
        .unwrap();
        let key = spec.group_key(|name| match name {
            "ip" => Some("10.0.0.1"),
            "host" => Some("web-1"),
            _ => None,
        });
        assert_eq!(key, GroupKey::new(["10.0.0.1", "web-1", ""]));
        assert_eq!(
            AlertSpec::plain().group_key(|_| Some("x")),
            GroupKey::empty()
        );
    }
}
