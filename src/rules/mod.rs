//! Matching: which rules fire for a line, and with which captures. No I/O (issue 4).
//!
//! A [`RuleSet`] holds the rules of one input and answers for a line in one pass, whatever the
//! number of rules: a `RegexSet` over every rule's `match` patterns says which rules hit, and only
//! those rules pay for their excludes and captures. In front of it, a combined candidate regex
//! ([`matcher::Candidates`]) rejects the lines that match nothing (most of a log) in one scan, and
//! [`RuleSet::scan_buffer`] runs it over whole buffers of lines, so that `dingtail test` over a
//! big file checks only the lines that hold a candidate (issue 7); [`RuleSet::scan_text`] is the
//! same over text known to be UTF-8 (the daemon's batches of decoded events, issue 18).
//!
//! The two paths agree by construction: `scan_buffer` reports exactly the lines for which
//! [`RuleSet::matches`] finds something (the unit tests compare them line by line).
//!
//! A rule's `where:` (issue 14) is checked on the event ([`RuleSet::matches_line`]): a rule with
//! patterns must also satisfy it, a rule without patterns matches every event that satisfies it
//! (those rules sit beside the regex set and are checked on every event). An event without
//! context or fields, such as plain text, satisfies no condition, so `matches` (text alone) and
//! `scan_buffer` are exact for plain-text inputs; for other inputs the caller matches events.

pub mod matcher;
pub mod rule;

use regex::{RegexSet, RegexSetBuilder};

use crate::event::LogLine;
use crate::rules::matcher::Candidates;
pub use crate::rules::rule::Rule;

/// Size limit of a rule set's `RegexSet`: far above what hundreds of log rules need.
const SET_SIZE_LIMIT: usize = 256 << 20;

/// One rule that matched a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleMatch {
    /// Index of the rule in [`RuleSet::rules`].
    pub rule: usize,
    /// The named captures that took part in the match, in pattern order (from the first of the
    /// rule's patterns that matched).
    pub captures: Vec<(String, String)>,
}

/// The rules of one input, compiled for one-pass matching.
#[derive(Clone, Debug)]
pub struct RuleSet {
    input: String,
    rules: Vec<Rule>,
    set: RegexSet,
    /// For each pattern of `set`: the rule it belongs to and its index among the rule's patterns.
    owners: Vec<(usize, usize)>,
    candidates: Option<Candidates>,
    /// The rules without patterns (`where:` alone), checked on every event.
    unpatterned: Vec<usize>,
    /// Some rule has a `where:`.
    has_conditions: bool,
}

impl RuleSet {
    /// Compiles the rules of `input`.
    ///
    /// # Errors
    /// The patterns together are too big for one regex set (a message naming the input).
    pub fn new(input: &str, rules: Vec<Rule>) -> Result<RuleSet, String> {
        let mut patterns: Vec<&str> = Vec::new();
        let mut owners = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            for (j, pattern) in rule.patterns().iter().enumerate() {
                patterns.push(pattern.as_str());
                owners.push((i, j));
            }
        }
        let set = RegexSetBuilder::new(&patterns)
            .size_limit(SET_SIZE_LIMIT)
            .dfa_size_limit(SET_SIZE_LIMIT)
            .build()
            .map_err(|err| {
                format!(
                    "the rules of input `{input}` do not fit in one regex set: {}",
                    err.to_string().lines().last().unwrap_or_default()
                )
            })?;
        let candidates = Candidates::new(patterns.iter().copied());
        let unpatterned = (0..rules.len())
            .filter(|&i| rules.get(i).is_some_and(|rule| rule.patterns().is_empty()))
            .collect();
        let has_conditions = rules.iter().any(|rule| !rule.conditions().is_empty());
        Ok(RuleSet {
            input: input.to_string(),
            rules,
            set,
            owners,
            candidates,
            unpatterned,
            has_conditions,
        })
    }

    /// The input whose rules these are.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// True when the set holds no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// True when some rule has a `where:`: its events must be matched whole
    /// ([`RuleSet::matches_line`]), not as text alone.
    pub fn has_conditions(&self) -> bool {
        self.has_conditions
    }

    /// Every rule that matches the text `line` of an event without context or fields (plain
    /// text: no `where:` holds), each at most once, with its named captures, in rule order;
    /// `out` is cleared first and reused.
    pub fn matches(&self, line: &str, out: &mut Vec<RuleMatch>) {
        out.clear();
        self.match_patterns(line, None, out);
    }

    /// Every rule that matches the event `line`: its patterns match the text (or it has none)
    /// and the event satisfies its `where:`. Each rule at most once, in rule order; `out` is
    /// cleared first and reused.
    pub fn matches_line(&self, line: &LogLine, out: &mut Vec<RuleMatch>) {
        out.clear();
        self.match_patterns(&line.text, Some(line), out);
        if self.unpatterned.is_empty() {
            return;
        }
        let n_hits = out.len();
        for &i in &self.unpatterned {
            let Some(rule) = self.rules.get(i) else {
                continue;
            };
            if line.satisfies(rule.conditions()) && !rule.is_excluded(&line.text) {
                out.push(RuleMatch {
                    rule: i,
                    captures: Vec::new(),
                });
            }
        }
        if n_hits > 0 && out.len() > n_hits {
            out.sort_by_key(|found| found.rule);
        }
    }

    /// The rules with patterns that match `text` (and whose `where:` the event `line`
    /// satisfies; without an event, only rules without one), appended to `out`.
    fn match_patterns(&self, text: &str, line: Option<&LogLine>, out: &mut Vec<RuleMatch>) {
        if self.owners.is_empty() {
            return;
        }
        if let Some(candidates) = &self.candidates {
            if !candidates.is_match(text) {
                return;
            }
        }
        let hits = self.set.matches(text);
        if !hits.matched_any() {
            return;
        }
        let mut last_rule = None;
        for pattern in hits.iter() {
            let Some(&(i, j)) = self.owners.get(pattern) else {
                continue;
            };
            // A rule's patterns are contiguous in the set: the first hit of a rule decides.
            if last_rule == Some(i) {
                continue;
            }
            last_rule = Some(i);
            let Some(rule) = self.rules.get(i) else {
                continue;
            };
            if rule.is_excluded(text) {
                continue;
            }
            let conditions = rule.conditions();
            if !conditions.is_empty() && !line.is_some_and(|line| line.satisfies(conditions)) {
                continue;
            }
            let mut captures = Vec::new();
            if let Some(regex) = rule.patterns().get(j) {
                if let Some(found) = regex.captures(text) {
                    for name in regex.capture_names().flatten() {
                        if let Some(group) = found.name(name) {
                            captures.push((name.to_string(), group.as_str().to_string()));
                        }
                    }
                }
            }
            out.push(RuleMatch { rule: i, captures });
        }
    }

    /// Scans `buf`, a run of whole lines (`\n`-terminated; the last one may lack its `\n`), and
    /// calls `on_match(offset, line, matches)` for every line that matches a rule, in order.
    /// `offset` is the line's start in `buf`; `line` excludes its `\n` and a `\r` before it.
    ///
    /// Only lines holding a candidate are checked exactly; a buffer that is not valid UTF-8 is
    /// checked line by line (decoded lossily, as the tailer does), so that no line is missed.
    /// The lines are plain text (see [`RuleSet::matches`]): for an input in another format or
    /// encoding, or a set with `where:` rules, read events and use [`RuleSet::matches_line`].
    pub fn scan_buffer(
        &self,
        buf: &[u8],
        out: &mut Vec<RuleMatch>,
        on_match: impl FnMut(usize, &str, &[RuleMatch]),
    ) {
        let text = match &self.candidates {
            Some(_) => std::str::from_utf8(buf).ok(),
            None => None,
        };
        self.scan(buf, text, out, on_match);
    }

    /// [`RuleSet::scan_buffer`] over text known to be UTF-8 (the daemon's batch of decoded
    /// events, joined with `\n`): the buffer is not checked again, and candidate lines are
    /// borrowed, not decoded (issue 18).
    pub fn scan_text(
        &self,
        text: &str,
        out: &mut Vec<RuleMatch>,
        on_match: impl FnMut(usize, &str, &[RuleMatch]),
    ) {
        self.scan(text.as_bytes(), Some(text), out, on_match);
    }

    /// The scan of `buf`; `text` is `buf` itself when it is known to be valid UTF-8.
    fn scan(
        &self,
        buf: &[u8],
        text: Option<&str>,
        out: &mut Vec<RuleMatch>,
        mut on_match: impl FnMut(usize, &str, &[RuleMatch]),
    ) {
        if self.rules.is_empty() {
            return;
        }
        let mut check = |start: usize, end: usize, out: &mut Vec<RuleMatch>| {
            let line = match text.and_then(|text| text.get(start..end)) {
                Some(line) => std::borrow::Cow::Borrowed(line.strip_suffix('\r').unwrap_or(line)),
                None => {
                    let Some(bytes) = buf.get(start..end) else {
                        return;
                    };
                    String::from_utf8_lossy(bytes.strip_suffix(b"\r").unwrap_or(bytes))
                }
            };
            self.matches(&line, out);
            if !out.is_empty() {
                on_match(start, &line, out);
            }
        };
        match &self.candidates {
            Some(candidates) if text.is_some() => {
                for (start, end) in candidates.lines(buf) {
                    check(start, end, out);
                }
            }
            _ => {
                let mut start = 0;
                while start < buf.len() {
                    let end = buf
                        .get(start..)
                        .and_then(|rest| memchr::memchr(b'\n', rest))
                        .map_or(buf.len(), |i| start + i);
                    check(start, end, out);
                    start = end + 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use std::sync::Arc;
    use std::time::SystemTime;

    use crate::config::{FieldCondition, RuleSpec};
    use crate::event::{FileId, LogLine, Mentions, Severity};
    use crate::fields::{Context, Fields};
    use crate::rules::matcher::Candidates;
    use crate::rules::{Rule, RuleMatch, RuleSet};

    fn rule(name: &str, patterns: &[&str], excludes: &[&str]) -> Rule {
        rule_where(name, patterns, excludes, &[])
    }

    fn rule_where(
        name: &str,
        patterns: &[&str],
        excludes: &[&str],
        conditions: &[(&str, &[&str])],
    ) -> Rule {
        Rule::new(&RuleSpec {
            name: name.into(),
            file: PathBuf::from("/r.yaml"),
            line: 1,
            inputs: vec!["app".into()],
            patterns: patterns
                .iter()
                .map(|p| regex::Regex::new(p).unwrap())
                .collect(),
            excludes: excludes
                .iter()
                .map(|p| regex::Regex::new(p).unwrap())
                .collect(),
            severity: Severity::Warning,
            robots: vec!["ops".into()],
            mentions: Mentions::default(),
            title: None,
            template: None,
            summary: None,
            msgtype: None,
            link: None,
            top: vec![],
            mention_templates: vec![],
            alert: crate::alert::AlertSpec::plain(),
            conditions: conditions
                .iter()
                .map(|(field, values)| FieldCondition {
                    field: (*field).to_string(),
                    values: values.iter().map(|v| (*v).to_string()).collect(),
                })
                .collect(),
            capture_positions: Vec::new(),
        })
    }

    fn set() -> RuleSet {
        RuleSet::new(
            "app",
            vec![
                rule("5xx", &[r#"" (?P<status>5\d\d) "#], &["GET /healthz"]),
                rule("error", &["ERROR", r"FATAL (?P<what>\w+)"], &[]),
                rule("anchored", &[r"^panic: (?P<msg>.*)$"], &[]),
                rule("any-digit", &[r"(?P<d>\d)"], &[]),
            ],
        )
        .unwrap()
    }

    fn names(set: &RuleSet, line: &str) -> Vec<(String, Vec<(String, String)>)> {
        let mut out = vec![RuleMatch {
            rule: 99,
            captures: vec![],
        }];
        set.matches(line, &mut out);
        out.iter()
            .map(|m| (set.rules()[m.rule].name().to_string(), m.captures.clone()))
            .collect()
    }

    fn pair(name: &str, value: &str) -> (String, String) {
        (name.to_string(), value.to_string())
    }

    #[test]
    fn every_matching_rule_once_with_its_captures() {
        let set = set();
        assert_eq!(
            names(
                &set,
                r#"1.2.3.4 "GET / HTTP/1.1" 502 17 ERROR FATAL oops ERROR"#
            ),
            vec![
                ("5xx".to_string(), vec![pair("status", "502")]),
                ("error".to_string(), vec![]),
                ("any-digit".to_string(), vec![pair("d", "1")]),
            ]
        );
        assert_eq!(
            names(&set, "FATAL disk"),
            vec![("error".to_string(), vec![pair("what", "disk")])],
            "captures come from the first pattern of the rule that matched"
        );
        assert_eq!(
            names(&set, "panic: nil map"),
            vec![("anchored".to_string(), vec![pair("msg", "nil map")])]
        );
        assert!(names(&set, "all is well").is_empty(), "out is cleared");
    }

    #[test]
    fn excludes_only_take_back_their_own_rule() {
        let set = set();
        let hits = names(&set, r#""GET /healthz HTTP/1.1" 503 0"#);
        let rules: Vec<&str> = hits.iter().map(|h| h.0.as_str()).collect();
        assert_eq!(rules, ["any-digit"]);
    }

    /// `scan_buffer` and `scan_text` over `log` find exactly the lines `matches` finds one by one
    /// (`n` of them), also with invalid UTF-8 in front (the line-by-line path).
    fn assert_scan_agrees(set: &RuleSet, log: &str, n: usize) {
        let expected: Vec<(usize, String)> = {
            let mut out = Vec::new();
            let mut offset = 0;
            let mut matches = Vec::new();
            for line in log.split('\n') {
                let text = line.strip_suffix('\r').unwrap_or(line);
                set.matches(text, &mut matches);
                if !matches.is_empty() {
                    out.push((offset, text.to_string()));
                }
                offset += line.len() + 1;
            }
            out
        };
        assert_eq!(expected.len(), n, "{expected:#?}");
        let mut got = Vec::new();
        let mut matches = Vec::new();
        set.scan_buffer(log.as_bytes(), &mut matches, |offset, line, found| {
            assert!(!found.is_empty());
            got.push((offset, line.to_string()));
        });
        assert_eq!(got, expected);
        // The same text given as a `str` (the daemon's batches) finds the same lines.
        let mut got_text = Vec::new();
        set.scan_text(log, &mut matches, |offset, line, found| {
            assert!(!found.is_empty());
            got_text.push((offset, line.to_string()));
        });
        assert_eq!(got_text, expected);
        // Invalid UTF-8 takes the line-by-line path and still finds the lines.
        let mut bytes = log.as_bytes().to_vec();
        bytes.splice(0..0, b"\xff\xfe junk\n".iter().copied());
        let mut n_found = 0;
        set.scan_buffer(&bytes, &mut matches, |_, _, _| n_found += 1);
        assert_eq!(n_found, expected.len());
    }

    /// `scan_buffer` and `matches` line by line must agree on every line, whatever the chunking.
    #[test]
    fn scan_buffer_agrees_with_matching_line_by_line() {
        let set = RuleSet::new(
            "app",
            vec![
                rule("5xx", &[r#"" (?P<status>5\d\d) "#], &["GET /healthz"]),
                rule("error", &[r"\bERROR\b", r"FATAL (?P<what>\w+)"], &[]),
                rule("anchored", &[r"^panic: (?P<msg>.*)$"], &[]),
                rule("spaces", &[r"a\s+b"], &[]),
                rule("ends", &[r"done$"], &[]),
            ],
        )
        .unwrap();
        let log = "ok\r\n\"GET / HTTP/1.1\" 500 1\n\"GET /healthz HTTP/1.1\" 503 0\nnoERRORhere\n\
                   an ERROR\npanic: x\n xpanic: y\nfoo a\nb bar\na   b\njob done\r\nFATAL é\n\
                   café ERROR\nlast panic: no";
        assert_scan_agrees(&set, log, 7);
    }

    /// The same with the literal prefilter on (every pattern has a selective literal), where
    /// literals sit in lines that do not match and matches sit at buffer edges.
    #[test]
    fn scan_buffer_with_the_literal_prefilter_agrees_with_matching_line_by_line() {
        let set = RuleSet::new(
            "app",
            vec![
                rule("5xx", &[r#"" (?P<status>5\d\d) "#], &["GET /healthz"]),
                rule("error", &[r"\bERROR\b", r"FATAL (?P<what>\w+)"], &[]),
                rule("anchored", &[r"^panic: (?P<msg>.*)$"], &[]),
                rule("timeout", &[r"(?i)timed out after (?P<ms>\d+)"], &[]),
                rule("java", &[r"^(?P<e>[a-z][\w.]*(?:Exception|Error)): "], &[]),
                rule("ends", &[r"job done$"], &[]),
            ],
        )
        .unwrap();
        assert!(
            set.candidates
                .as_ref()
                .is_some_and(Candidates::has_literals)
        );
        let log = "ERROR first\n\"GET / HTTP/1.1\" 500 1\n\"GET /healthz HTTP/1.1\" 503 0\n\
                   \" 5xx\" 5 x\nnoERRORhere\nan ERROR\npanic: x\n xpanic: y\n\
                   TIMED OUT AFTER 30\ntimed out after\njava.io.IOException: x\n\
                   \tat Exception: y\njob done\r\njob done twice\nFATAL é\ncafé ERROR\n\
                   last panic: no\nlast ERROR";
        assert_scan_agrees(&set, log, 10);
    }

    /// An event of a decoded input: `text`, the container context `stream`, JSON `fields`.
    fn event(text: &str, stream: &str, fields: Option<&str>) -> LogLine {
        LogLine {
            input: "app".into(),
            file_id: FileId(1),
            path: PathBuf::from("/var/log/pods/shop_web-0_uid/app/0.log").into(),
            start_offset: 0,
            end_offset: 1,
            text: text.into(),
            truncated: false,
            invalid: false,
            read_at: SystemTime::UNIX_EPOCH,
            event_time: None,
            context: Context::from_pairs(vec![(Arc::from("stream"), Arc::from(stream))]),
            fields: fields.map(|json| Box::new(Fields::parse(json).unwrap())),
        }
    }

    fn hits(set: &RuleSet, line: &LogLine) -> Vec<(String, Vec<(String, String)>)> {
        let mut out = Vec::new();
        set.matches_line(line, &mut out);
        out.iter()
            .map(|m| (set.rules()[m.rule].name().to_string(), m.captures.clone()))
            .collect()
    }

    fn named(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_string()).collect()
    }

    /// Issue 14: `where:` alone matches every event that satisfies it; with `match:` both must
    /// hold; a missing field never matches; results keep rule order.
    #[test]
    fn where_conditions_alone_and_with_patterns() {
        let set = RuleSet::new(
            "app",
            vec![
                rule_where("errors", &[], &[], &[("level", &["error", "fatal"])]),
                rule_where(
                    "db-errors",
                    &[r"db (?P<what>\w+)"],
                    &[],
                    &[("level", &["error"])],
                ),
                rule("timeouts", &["timeout"], &[]),
                rule_where(
                    "stderr-500",
                    &[],
                    &["healthz"],
                    &[("stream", &["stderr"]), ("status", &["500"])],
                ),
            ],
        )
        .unwrap();
        assert!(set.has_conditions());
        let names = |line: &LogLine| -> Vec<String> {
            hits(&set, line).into_iter().map(|(name, _)| name).collect()
        };
        let error = event(
            "db down, timeout",
            "stdout",
            Some(r#"{"level":"error","status":500}"#),
        );
        assert_eq!(names(&error), named(&["errors", "db-errors", "timeouts"]));
        assert_eq!(
            hits(&set, &error)[1].1,
            vec![("what".to_string(), "down".to_string())]
        );
        let warn = event(
            "db down",
            "stderr",
            Some(r#"{"level":"warn","status":"500"}"#),
        );
        assert_eq!(names(&warn), named(&["stderr-500"]));
        let excluded = event("GET /healthz", "stderr", Some(r#"{"status":500}"#));
        assert!(
            names(&excluded).is_empty(),
            "exclude applies to where-only rules"
        );
        let no_fields = event("db down timeout", "stderr", None);
        assert_eq!(
            names(&no_fields),
            named(&["timeouts"]),
            "a missing field never matches"
        );
        // Text alone (plain text, no context or fields): no `where:` rule matches.
        let mut out = Vec::new();
        set.matches("db down timeout", &mut out);
        let rules: Vec<usize> = out.iter().map(|m| m.rule).collect();
        assert_eq!(rules, [2]);
    }

    #[test]
    fn an_empty_set_matches_nothing() {
        let set = RuleSet::new("app", vec![]).unwrap();
        let mut out = Vec::new();
        set.matches("anything", &mut out);
        assert!(out.is_empty());
        set.scan_buffer(b"a\nb\n", &mut out, |_, _, _| panic!("no rules, no match"));
    }
}
