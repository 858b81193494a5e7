//! Reads the rule files (every file matched by the main config's `rules:` globs, or the files
//! given to `dingtail test --rules`) and turns each entry into a validated [`RuleSpec`], or into
//! [`Diagnostic`]s that name the file, line, column and rule.
//!
//! A rule file is a YAML list. It is parsed once into a `serde_yaml::Value` and each entry is then
//! deserialized on its own, so that one bad rule does not hide the problems of the next ones: all
//! problems of all files come back together. Positions come from `Spans` (built from the same
//! text); a regex error points at the character inside the pattern.
//!
//! Templates are only carried here as text with their position ([`TemplateSpec`]); `render`
//! compiles them and reports their errors, because only it knows the template language.
//!
//! `${VAR}` and `${VAR:-default}` are expanded in every string of a rule before it is read, as
//! in the main config, with the same error at the value's position for an unset variable.
//!
//! A glob that matches no file is a warning (an empty `rules.d/` is a normal state while a
//! deployment is being set up), while a path without wildcards that does not exist is an error
//! (it is almost certainly a typo).

mod alert_keys;
mod glob;
mod serde_errors;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;

use crate::config::diag::{did_you_mean, from_serde_message};
use crate::config::env::{expand_value, process_env};
use crate::config::pattern::{capture_offsets, compile};
use crate::config::raw::{OneOrMany, RawRule};
use crate::config::span::{Pos, Seg, Spans};
use crate::config::{Config, Diagnostic, Diagnostics, FieldCondition, RuleSpec, TemplateSpec};
use crate::event::{MsgType, Severity};
use crate::yaml_path;

pub use crate::config::rules::glob::{expand_glob, has_wildcards};

mod message;

/// The rule name of dingtail's own alerts (a state store that cannot write, …): no rule file may
/// use it, so that their counts never mix.
pub const RESERVED_RULE: &str = "dingtail";

/// Where the rules come from.
#[derive(Clone, Debug)]
pub enum RuleSource {
    /// The main config's `rules:` globs (`run`, `check`, reload).
    Globs,
    /// These files instead (`dingtail test --rules`).
    Files(Vec<PathBuf>),
}

/// What loading the rule files found: the valid rules, the files read, and every problem.
#[derive(Clone, Debug, Default)]
pub struct RuleFiles {
    /// The rules that are valid, in file order.
    pub specs: Vec<RuleSpec>,
    /// Every rule file read (for the reload watcher), sorted and deduplicated.
    pub files: Vec<PathBuf>,
    /// Problems that do not stop the load (a glob matching no file).
    pub warnings: Vec<Diagnostic>,
    /// Problems that make the load invalid.
    pub errors: Diagnostics,
}

/// Reads and validates the rule files of `config` (or the files of `source`) against the inputs
/// and robots `config` defines.
pub fn load(config: &Config, source: &RuleSource) -> RuleFiles {
    let mut found = RuleFiles::default();
    match source {
        RuleSource::Globs => {
            for glob in &config.rule_globs {
                match expand_glob(glob) {
                    Ok(paths) if paths.is_empty() && has_wildcards(glob) => {
                        found.warnings.push(Diagnostic::at(
                            &config.source,
                            0,
                            0,
                            format!("rule glob `{glob}` matches no file"),
                        ));
                    }
                    Ok(paths) if paths.is_empty() => {
                        found.errors.push(Diagnostic::at(
                            Path::new(glob),
                            0,
                            0,
                            "rule file does not exist (named in `rules:` of the main config)",
                        ));
                    }
                    Ok(paths) => found.files.extend(paths),
                    Err(message) => found.errors.push(Diagnostic::at(
                        &config.source,
                        0,
                        0,
                        format!("rule glob `{glob}`: {message}"),
                    )),
                }
            }
        }
        RuleSource::Files(paths) => found.files.extend(paths.iter().cloned()),
    }
    found.files.sort();
    found.files.dedup();
    let mut names: BTreeMap<String, (PathBuf, usize)> = BTreeMap::new();
    for file in found.files.clone() {
        let text = match fs::read_to_string(&file) {
            Ok(text) => text,
            Err(err) => {
                found.errors.push(Diagnostic::at(
                    &file,
                    0,
                    0,
                    format!("cannot read rule file: {err}"),
                ));
                continue;
            }
        };
        let mut file_loader = FileLoader {
            config,
            file: &file,
            spans: Spans::default(),
            diags: Diagnostics::default(),
            seen: &mut names,
        };
        found.specs.extend(file_loader.parse(&text));
        found.errors.0.extend(file_loader.diags.0);
    }
    found
}

/// One rule given as a YAML mapping rather than read from a file (`dingtail test --match`),
/// validated exactly like an entry of a rule file; its problems name `origin` as their file.
pub fn from_value(config: &Config, origin: &Path, entry: &serde_yaml::Value) -> RuleFiles {
    let mut seen = BTreeMap::new();
    let mut loader = FileLoader {
        config,
        file: origin,
        spans: Spans::default(),
        diags: Diagnostics::default(),
        seen: &mut seen,
    };
    let specs = loader.entry(0, entry).into_iter().collect();
    RuleFiles {
        specs,
        errors: loader.diags,
        ..RuleFiles::default()
    }
}

/// The validation of one rule file.
struct FileLoader<'a> {
    config: &'a Config,
    file: &'a Path,
    spans: Spans,
    diags: Diagnostics,
    /// Every rule name seen so far in this load (valid or not), with where it was defined.
    seen: &'a mut BTreeMap<String, (PathBuf, usize)>,
}

impl FileLoader<'_> {
    /// The valid rules of `text`; problems go to `self.diags`.
    fn parse(&mut self, text: &str) -> Vec<RuleSpec> {
        self.spans = match Spans::parse(text) {
            Ok(spans) => spans,
            Err(err) => {
                let diagnostic = Diagnostic::at(
                    self.file,
                    err.pos.line,
                    err.pos.column,
                    format!("YAML syntax error: {}", err.message),
                );
                self.diags.push(match err.hint {
                    Some(hint) => diagnostic.with_hint(hint),
                    None => diagnostic,
                });
                return Vec::new();
            }
        };
        let document: serde_yaml::Value = match serde_yaml::from_str(text) {
            Ok(document) => document,
            Err(err) => {
                let (line, column) = err.location().map_or((0, 0), |l| (l.line(), l.column()));
                self.diags.push(Diagnostic::at(
                    self.file,
                    line,
                    column,
                    format!("YAML error: {}", from_serde_message(&err.to_string()).0),
                ));
                return Vec::new();
            }
        };
        let entries = match document {
            serde_yaml::Value::Null => Vec::new(),
            serde_yaml::Value::Sequence(entries) => entries,
            _ => {
                let pos = self.spans.value(&[]);
                self.diags.push(Diagnostic::at(
                    self.file,
                    pos.line,
                    pos.column,
                    "a rule file holds a list of rules (each entry starting with `- name:`)",
                ));
                return Vec::new();
            }
        };
        entries
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| self.entry(i, entry))
            .collect()
    }

    /// Expands `${VAR}` in, deserializes and validates entry `i`.
    fn entry(&mut self, i: usize, entry: &serde_yaml::Value) -> Option<RuleSpec> {
        let name_hint = entry
            .get("name")
            .and_then(serde_yaml::Value::as_str)
            .map(str::to_string);
        let mut expanded = entry.clone();
        let mut unset = false;
        expand_value(
            &mut expanded,
            &mut vec![Seg::Index(i)],
            &process_env,
            &mut |path, err| {
                unset = true;
                self.error_value(path, name_hint.as_deref(), err.to_string());
            },
        );
        if unset {
            return None;
        }
        let entry = &expanded;
        if !entry.is_mapping() {
            self.error(
                &yaml_path![i],
                name_hint.as_deref(),
                "a rule is a mapping with `name`, `input`, `match`, `robot`, …",
            );
            return None;
        }
        let raw = match RawRule::deserialize(entry) {
            Ok(raw) => raw,
            Err(err) => {
                self.serde_error(i, entry, name_hint.as_deref(), &err.to_string());
                return None;
            }
        };
        let line = self.spans.value(&yaml_path![i]).line;
        if raw.name == RESERVED_RULE {
            self.error_value(
                &yaml_path![i, "name"],
                Some(&raw.name),
                format!("the rule name `{RESERVED_RULE}` is reserved for dingtail's own alerts"),
            );
            return None;
        }
        let duplicate = match self.seen.get(&raw.name) {
            Some((first_file, first_line)) => {
                let message = format!(
                    "duplicate rule name: already defined at {}:{first_line}",
                    first_file.display()
                );
                self.error_value(&yaml_path![i, "name"], Some(&raw.name), message);
                true
            }
            None => {
                self.seen
                    .insert(raw.name.clone(), (self.file.to_path_buf(), line));
                false
            }
        };
        // A duplicate is still checked, so that its other problems show in the same round.
        let spec = self.validate(i, raw);
        if duplicate { None } else { spec }
    }

    fn validate(&mut self, i: usize, raw: RawRule) -> Option<RuleSpec> {
        let rule = raw.name.clone();
        let mut ok = true;
        if rule.trim().is_empty() {
            self.error_value(
                &yaml_path![i, "name"],
                None,
                "a rule's `name` may not be empty",
            );
            ok = false;
        }
        let inputs = self.names(
            i,
            &rule,
            ("input", raw.input.as_ref()),
            ("inputs", raw.inputs.as_ref()),
            Kind::Input,
        );
        let robots = self.names(
            i,
            &rule,
            ("robot", raw.robot.as_ref()),
            ("robots", raw.robots.as_ref()),
            Kind::Robot,
        );
        let conditions = match &raw.conditions {
            Some(conditions) => self.conditions(i, &rule, conditions),
            None => Some(Vec::new()),
        };
        let mut capture_positions = Vec::new();
        let patterns = match &raw.matches {
            Some(matches) => self.patterns(i, &rule, "match", matches, &mut capture_positions),
            // `where:` alone decides.
            None if raw.conditions.is_some() => Some(Vec::new()),
            None => {
                self.error(&yaml_path![i], Some(&rule), "missing key `match`");
                None
            }
        };
        if raw.matches.as_ref().is_some_and(|m| m.to_vec().is_empty()) {
            self.error(
                &yaml_path![i, "match"],
                Some(&rule),
                "`match` needs at least one regex",
            );
            ok = false;
        }
        let excludes = match &raw.exclude {
            Some(exclude) => self.patterns(i, &rule, "exclude", exclude, &mut Vec::new()),
            None => Some(Vec::new()),
        };
        let severity = match raw.severity.as_deref() {
            None => Severity::Warning,
            Some(name) => match Severity::parse(name) {
                Some(severity) => severity,
                None => {
                    let mut diagnostic = self.diagnostic_value(
                        &yaml_path![i, "severity"],
                        Some(&rule),
                        format!("`severity` must be info, warning or critical, not `{name}`"),
                    );
                    if let Some(best) = did_you_mean(name, ["info", "warning", "critical"]) {
                        diagnostic = diagnostic.with_hint(format!("did you mean `{best}`?"));
                    }
                    self.diags.push(diagnostic);
                    ok = false;
                    Severity::Warning
                }
            },
        };
        let at = self.at(i, &rule, raw.at.as_ref());
        let msgtype = self.rule_msgtype(i, &rule, raw.msgtype.as_deref());
        let link = raw
            .link
            .as_ref()
            .map(|link| self.link(i, &rule, link))
            .transpose();
        let captures = patterns.as_ref().map(|patterns| capture_names(patterns));
        // With a bad regex the captures are unknown: `top` is checked once the patterns compile.
        let top = match captures.as_deref() {
            Some(captures) => self.top(i, &rule, raw.top.as_deref(), captures),
            None => Ok(Vec::new()),
        };
        if let (Ok(Some(MsgType::ActionCard)), Ok(None)) = (&msgtype, &link) {
            self.error_value(
                &yaml_path![i, "msgtype"],
                Some(&rule),
                "`msgtype: actionCard` needs a `link:` (the card's button)",
            );
            ok = false;
        }
        let template = |key: &str, source: &Option<String>| {
            source.as_ref().map(|source| TemplateSpec {
                source: source.clone(),
                file: self.file.to_path_buf(),
                node: self.spans.node(&yaml_path![i, key]),
            })
        };
        let title = template("title", &raw.title);
        let text = template("template", &raw.template);
        let summary = template("summary", &raw.summary);
        let alert = self.alert_keys(i, &rule, &raw, captures.as_deref());
        let line = self.spans.value(&yaml_path![i]).line;
        let (Ok((mentions, mention_templates)), Ok(msgtype), Ok(link), Ok(top)) =
            (at, msgtype, link, top)
        else {
            return None;
        };
        if !ok {
            return None;
        }
        Some(RuleSpec {
            name: rule,
            file: self.file.to_path_buf(),
            line,
            inputs: inputs?,
            patterns: patterns?,
            excludes: excludes?,
            severity,
            robots: robots?,
            mentions,
            title,
            template: text,
            summary,
            msgtype,
            link,
            top,
            mention_templates,
            alert: alert?,
            conditions: conditions?,
            capture_positions,
        })
    }

    /// `where:`: each key a field, each value a scalar or a non-empty list of scalars, as text.
    fn conditions(
        &mut self,
        i: usize,
        rule: &str,
        raw: &serde_yaml::Mapping,
    ) -> Option<Vec<FieldCondition>> {
        if raw.is_empty() {
            self.error_value(
                &yaml_path![i, "where"],
                Some(rule),
                "`where` needs at least one field",
            );
            return None;
        }
        let mut conditions = Vec::new();
        let mut ok = true;
        for (key, value) in raw {
            let Some(field) = key.as_str().filter(|field| !field.is_empty()) else {
                self.error_value(
                    &yaml_path![i, "where"],
                    Some(rule),
                    "`where` keys are field names",
                );
                ok = false;
                continue;
            };
            let values = match value {
                serde_yaml::Value::Sequence(items) if !items.is_empty() => {
                    items.iter().map(scalar_text).collect::<Option<Vec<_>>>()
                }
                serde_yaml::Value::Sequence(_) => None,
                scalar => scalar_text(scalar).map(|text| vec![text]),
            };
            match values {
                Some(values) => conditions.push(FieldCondition {
                    field: field.to_string(),
                    values,
                }),
                None => {
                    self.error_value(
                        &yaml_path![i, "where", field],
                        Some(rule),
                        format!("`where.{field}` must be a value or a non-empty list of values"),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(conditions)
    }

    /// `input`/`inputs` (or `robot`/`robots`): exactly one of the two, every name defined.
    fn names(
        &mut self,
        i: usize,
        rule: &str,
        one: (&str, Option<&String>),
        many: (&str, Option<&Vec<String>>),
        kind: Kind,
    ) -> Option<Vec<String>> {
        let (list, key, is_list) = match (one.1, many.1) {
            (Some(_), Some(_)) => {
                self.error(
                    &yaml_path![i, many.0],
                    Some(rule),
                    format!("give either `{}` or `{}`, not both", one.0, many.0),
                );
                return None;
            }
            (None, None) => {
                self.error(
                    &yaml_path![i],
                    Some(rule),
                    format!("missing key `{}` (or `{}`)", one.0, many.0),
                );
                return None;
            }
            (Some(name), None) => (vec![name.clone()], one.0, false),
            (None, Some(names)) if names.is_empty() => {
                self.error(
                    &yaml_path![i, many.0],
                    Some(rule),
                    format!("`{}` needs at least one name", many.0),
                );
                return None;
            }
            (None, Some(names)) => (names.clone(), many.0, true),
        };
        let defined: Vec<&str> = match kind {
            Kind::Input => self.config.inputs.keys().map(String::as_str).collect(),
            Kind::Robot => self.config.robots.keys().map(String::as_str).collect(),
        };
        let mut ok = true;
        for (j, name) in list.iter().enumerate() {
            if defined.contains(&name.as_str()) {
                continue;
            }
            ok = false;
            let path = if is_list {
                yaml_path![i, key, j].to_vec()
            } else {
                yaml_path![i, key].to_vec()
            };
            let what = match kind {
                Kind::Input => "input",
                Kind::Robot => "robot",
            };
            let known = if defined.is_empty() {
                format!("the main config defines no {what}s")
            } else {
                format!("{what}s defined: {}", defined.join(", "))
            };
            let mut diagnostic = self.diagnostic_value(
                &path,
                Some(rule),
                format!("unknown {what} `{name}` ({known})"),
            );
            if let Some(best) = did_you_mean(name, defined.iter().copied()) {
                diagnostic = diagnostic.with_hint(format!("did you mean `{best}`?"));
            }
            self.diags.push(diagnostic);
        }
        ok.then_some(list)
    }

    /// Compiles `match` or `exclude`; every bad regex is reported at its character. Where the
    /// name of each named capture stands goes to `captures`.
    fn patterns(
        &mut self,
        i: usize,
        rule: &str,
        key: &str,
        raw: &OneOrMany,
        captures: &mut Vec<(String, Pos)>,
    ) -> Option<Vec<Regex>> {
        let mut regexes = Vec::new();
        let mut ok = true;
        for (j, pattern) in raw.to_vec().iter().enumerate() {
            let path = if raw.is_list() {
                yaml_path![i, key, j].to_vec()
            } else {
                yaml_path![i, key].to_vec()
            };
            match compile(pattern) {
                Ok(regex) => {
                    for (name, offset) in capture_offsets(pattern, &regex) {
                        captures.push((name, self.spans.inside_value(&path, offset)));
                    }
                    regexes.push(regex);
                }
                Err(err) => {
                    ok = false;
                    let pos = self.spans.inside_value(&path, err.offset);
                    self.diags.push(
                        Diagnostic::at(
                            self.file,
                            pos.line,
                            pos.column,
                            format!("{key}: {}", err.message),
                        )
                        .with_rule(rule),
                    );
                }
            }
        }
        ok.then_some(regexes)
    }

    fn diagnostic_key(
        &self,
        path: &[Seg],
        rule: Option<&str>,
        message: impl Into<String>,
    ) -> Diagnostic {
        let pos = self.spans.key_or_value(path);
        with_rule(
            Diagnostic::at(self.file, pos.line, pos.column, message),
            rule,
        )
    }

    fn diagnostic_value(
        &self,
        path: &[Seg],
        rule: Option<&str>,
        message: impl Into<String>,
    ) -> Diagnostic {
        let pos = self.spans.value(path);
        with_rule(
            Diagnostic::at(self.file, pos.line, pos.column, message),
            rule,
        )
    }

    fn error(&mut self, path: &[Seg], rule: Option<&str>, message: impl Into<String>) {
        let diagnostic = self.diagnostic_key(path, rule, message);
        self.diags.push(diagnostic);
    }

    fn error_value(&mut self, path: &[Seg], rule: Option<&str>, message: impl Into<String>) {
        let diagnostic = self.diagnostic_value(path, rule, message);
        self.diags.push(diagnostic);
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Input,
    Robot,
}

fn with_rule(diagnostic: Diagnostic, rule: Option<&str>) -> Diagnostic {
    match rule {
        Some(rule) if !rule.is_empty() => diagnostic.with_rule(rule),
        _ => diagnostic,
    }
}

/// The named capture groups of `patterns`, each once, in pattern order.
fn capture_names(patterns: &[Regex]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in patterns.iter().flat_map(|p| p.capture_names().flatten()) {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

/// A `where:` value as the text it is compared by: strings as they are, numbers as written,
/// `true`/`false`, `null`; `None` for lists and mappings.
fn scalar_text(value: &serde_yaml::Value) -> Option<String> {
    match value {
        serde_yaml::Value::String(text) => Some(text.clone()),
        serde_yaml::Value::Number(number) => Some(number.to_string()),
        serde_yaml::Value::Bool(flag) => Some(flag.to_string()),
        serde_yaml::Value::Null => Some("null".to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
