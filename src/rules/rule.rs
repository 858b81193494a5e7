//! `Rule`: one compiled rule as the matcher and the daemon see it: its regexes, excludes,
//! `where:` conditions, severity, robots and mentions. Built from a validated `config::RuleSpec`;
//! its templates live in `render::Renderer`, keyed by the rule's name, so that matching never
//! depends on rendering.

use std::path::{Path, PathBuf};

use regex::Regex;

use crate::alert::AlertSpec;
use crate::config::RuleSpec;
use crate::event::{Mentions, Severity};
use crate::fields::Where;

/// One compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    name: String,
    inputs: Vec<String>,
    severity: Severity,
    robots: Vec<String>,
    mentions: Mentions,
    patterns: Vec<Regex>,
    excludes: Vec<Regex>,
    conditions: Where,
    top: Vec<String>,
    templated_mentions: bool,
    alert: AlertSpec,
    file: PathBuf,
    line: usize,
}

impl Rule {
    /// The rule of a validated spec.
    pub fn new(spec: &RuleSpec) -> Rule {
        Rule {
            name: spec.name.clone(),
            inputs: spec.inputs.clone(),
            severity: spec.severity,
            robots: spec.robots.clone(),
            mentions: spec.mentions.clone(),
            patterns: spec.patterns.clone(),
            excludes: spec.excludes.clone(),
            conditions: Where::new(&spec.conditions),
            top: spec.top.clone(),
            templated_mentions: !spec.mention_templates.is_empty(),
            alert: spec.alert.clone(),
            file: spec.file.clone(),
            line: spec.line,
        }
    }

    /// The rule's name, unique across all rule files.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The inputs whose lines the rule sees.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
    }

    /// The rule's severity.
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// The robots its alerts go to.
    pub fn robots(&self) -> &[String] {
        &self.robots
    }

    /// Who its alerts @-mention.
    pub fn mentions(&self) -> &Mentions {
        &self.mentions
    }

    /// The `match` regexes (any of them matching makes an alert).
    pub fn patterns(&self) -> &[Regex] {
        &self.patterns
    }

    /// The `exclude` regexes (any of them matching takes the line back).
    pub fn excludes(&self) -> &[Regex] {
        &self.excludes
    }

    /// The compiled `where:` (empty when the rule has none). A rule without `match` patterns
    /// matches every event that satisfies it.
    pub fn conditions(&self) -> &Where {
        &self.conditions
    }

    /// The captures whose values a summary counts (`top:`).
    pub fn top(&self) -> &[String] {
        &self.top
    }

    /// True when some `at:` entries are templates (rendered per match by `render`).
    pub fn has_templated_mentions(&self) -> bool {
        self.templated_mentions
    }

    /// Its alert keys (`group_by`, `when`, `realert`, `resolve`, `absent`, …; issue 13):
    /// [`AlertSpec::plain`] when it has none, and every match is an alert.
    pub fn alert(&self) -> &AlertSpec {
        &self.alert
    }

    /// True when an `exclude` regex matches `line`.
    pub fn is_excluded(&self, line: &str) -> bool {
        self.excludes.iter().any(|exclude| exclude.is_match(line))
    }

    /// The named capture groups of all its patterns, each once, in pattern order.
    pub fn capture_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for pattern in &self.patterns {
            for name in pattern.capture_names().flatten() {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
    }

    /// The rule file it came from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The line of its entry in that file.
    pub fn line(&self) -> usize {
        self.line
    }
}
