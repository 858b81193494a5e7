//! Rendering: the text of messages, from the rules' templates and from batches. No I/O (issue 4).
//!
//! A [`Renderer`] holds one minijinja environment with every template of every rule compiled at
//! load time, with strict undefined variables; each template's variables are checked then against
//! the rule's named captures and the context names of [`context`], so a mistake is a load error
//! with file:line:column, not a broken message at 3 a.m.
//!
//! Three templates per rule, all optional:
//! - `title`: a message's title, per event (default: `<rule> (<severity>) on <host>`);
//! - `template`: one event's text (default: the line itself);
//! - `summary`: the rule's heading in a summary of several events; it sees `count`,
//!   `first_seen`, `last_seen`, `hosts` and `files` (default: name, severity, count, times).
//!
//! `title` and `template` also see `count`, `first_seen` and `last_seen` (1 and the event's time),
//! so one template text works for a lone event and as a summary sample. A template that fails at
//! run time (a filter given a bad value) never stops a message: the plain rendering is used and
//! the failure is logged once per rule.

pub mod context;
pub mod names;
pub mod summary;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};

use minijinja::{Environment, UndefinedBehavior, Value};

use crate::batch::{Batch, RuleBatch};
use crate::config::diag::did_you_mean;
use crate::config::{Diagnostic, Diagnostics, RuleSpec, TemplateSpec};
use crate::dingtalk::draft::{Body, Draft};
use crate::event::LogLine;
use crate::render::context::{
    BUILTIN_NAMES, Context, MATCH_NAMES, SUMMARY_NAMES, datetime_filter, rfc3339,
};
use crate::rules::{Rule, RuleMatch};

/// The names of one rule's compiled templates in the environment.
#[derive(Debug, Default)]
struct RuleTemplates {
    title: Option<String>,
    template: Option<String>,
    summary: Option<String>,
    /// A runtime failure of this rule's templates has been logged.
    warned: AtomicBool,
}

/// Every rule's templates, compiled.
#[derive(Debug)]
pub struct Renderer {
    env: Environment<'static>,
    rules: BTreeMap<String, RuleTemplates>,
}

/// Which of a rule's templates.
#[derive(Clone, Copy)]
enum Which {
    Title,
    Template,
    Summary,
}

impl Which {
    fn key(self) -> &'static str {
        match self {
            Which::Title => "title",
            Which::Template => "template",
            Which::Summary => "summary",
        }
    }
}

impl Renderer {
    /// Compiles the templates of `specs` and checks their variables.
    ///
    /// # Errors
    /// Every template syntax error and undefined variable, with file:line:column and the rule.
    pub fn new(specs: &[RuleSpec]) -> Result<Renderer, Diagnostics> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_filter("datetime", datetime_filter);
        let mut renderer = Renderer {
            env,
            rules: BTreeMap::new(),
        };
        let mut diags = Diagnostics::default();
        for spec in specs {
            let captures = spec.capture_names();
            // A capture named like a context value would be silently replaced by it.
            for (capture, pos) in &spec.capture_positions {
                if MATCH_NAMES.contains(&capture.as_str())
                    || BUILTIN_NAMES.contains(&capture.as_str())
                {
                    diags.push(
                        Diagnostic::at(
                            &spec.file,
                            pos.line,
                            pos.column,
                            format!(
                                "match: the capture `{capture}` would be hidden by the \
                                 built-in template value `{capture}` (built-ins: {})",
                                MATCH_NAMES.join(", ")
                            ),
                        )
                        .with_rule(&spec.name)
                        .with_hint(format!("rename it, e.g. `(?P<log_{capture}>…)`")),
                    );
                }
            }
            let mut templates = RuleTemplates::default();
            for which in [Which::Title, Which::Template, Which::Summary] {
                let source = match which {
                    Which::Title => &spec.title,
                    Which::Template => &spec.template,
                    Which::Summary => &spec.summary,
                };
                let Some(source) = source else { continue };
                let allowed: Vec<&str> = match which {
                    Which::Summary => SUMMARY_NAMES.to_vec(),
                    _ => captures
                        .iter()
                        .map(String::as_str)
                        .chain(MATCH_NAMES.iter().copied())
                        .collect(),
                };
                let name = format!("{}#{}", which.key(), spec.name);
                match renderer.compile(&name, source, &allowed) {
                    Ok(()) => {
                        let slot = match which {
                            Which::Title => &mut templates.title,
                            Which::Template => &mut templates.template,
                            Which::Summary => &mut templates.summary,
                        };
                        *slot = Some(name);
                    }
                    Err(found) => {
                        for (pos, message, hint) in found {
                            let mut diagnostic = Diagnostic::at(
                                source.file(),
                                pos.line,
                                pos.column,
                                format!("{}: {message}", which.key()),
                            )
                            .with_rule(&spec.name);
                            if let Some(hint) = hint {
                                diagnostic = diagnostic.with_hint(hint);
                            }
                            diags.push(diagnostic);
                        }
                    }
                }
            }
            renderer.rules.insert(spec.name.clone(), templates);
        }
        if diags.is_empty() {
            Ok(renderer)
        } else {
            Err(diags)
        }
    }

    /// Adds template `name` and checks its variables against `allowed`.
    #[allow(clippy::type_complexity)] // A private list of (position, message, hint).
    fn compile(
        &mut self,
        name: &str,
        source: &TemplateSpec,
        allowed: &[&str],
    ) -> Result<(), Vec<(crate::config::span::Pos, String, Option<String>)>> {
        if let Err(err) = self
            .env
            .add_template_owned(name.to_string(), source.source.clone())
        {
            let offset = match (err.range(), err.line()) {
                (Some(range), _) => char_offset(&source.source, range.start),
                (None, Some(line)) => {
                    let before: usize = source
                        .source
                        .split('\n')
                        .take(line.saturating_sub(1))
                        .map(|l| l.chars().count() + 1)
                        .sum();
                    before
                }
                (None, None) => 0,
            };
            let detail = err
                .detail()
                .map_or_else(|| err.kind().to_string(), str::to_string);
            return Err(vec![(
                source.position(offset),
                format!("template syntax error: {detail}"),
                None,
            )]);
        }
        let Ok(template) = self.env.get_template(name) else {
            return Ok(());
        };
        let undeclared: BTreeSet<String> =
            template.undeclared_variables(false).into_iter().collect();
        // Filters and tests are only looked up when a template runs: check them now.
        let used = names::scan(&source.source);
        let mut problems: Vec<_> = names::unknown(&self.env, &used)
            .into_iter()
            .map(|(offset, message, hint)| (source.position(offset), message, hint))
            .collect();
        for variable in undeclared {
            if allowed.contains(&variable.as_str()) || BUILTIN_NAMES.contains(&variable.as_str()) {
                continue;
            }
            // A name that is called is a function, not a variable.
            if let Some((_, offset)) = used.calls.iter().find(|(name, _)| *name == variable) {
                problems.push((
                    source.position(*offset),
                    format!(
                        "unknown function `{variable}` (functions: {})",
                        BUILTIN_NAMES.join(", ")
                    ),
                    did_you_mean(&variable, BUILTIN_NAMES.iter().copied())
                        .map(|best| format!("did you mean `{best}`?")),
                ));
                continue;
            }
            let offset = find_word(&source.source, &variable).unwrap_or(0);
            let hint = did_you_mean(&variable, allowed.iter().copied())
                .map(|best| format!("did you mean `{best}`?"));
            problems.push((
                source.position(offset),
                format!(
                    "undefined variable `{variable}` (known here: {})",
                    allowed.join(", ")
                ),
                hint,
            ));
        }
        problems.sort_by_key(|(pos, ..)| (pos.line, pos.column));
        if problems.is_empty() {
            Ok(())
        } else {
            self.env.remove_template(name);
            Err(problems)
        }
    }

    /// (title, text) of one match, from the rule's title/template, with the full context
    /// (captures, line, file, input, host, rule, severity, time, and count 1). Captures that took
    /// no part in the match are empty strings. Runtime template
    /// errors never panic: the plain rendering is used and the failure is logged once per rule.
    pub fn render_match(
        &self,
        rule: &Rule,
        m: &RuleMatch,
        line: &LogLine,
        host: &str,
    ) -> (String, String) {
        let mut context = Context::default();
        // A group that took no part in the match (an optional one, or another pattern's) is
        // empty rather than undefined, so that strict templates still render.
        for name in rule.capture_names() {
            context.set(name, "");
        }
        for (name, value) in &m.captures {
            context.set(name, value.as_str());
        }
        let time = rfc3339(line.read_at);
        context.set("line", line.text.as_str());
        context.set("file", line.path.display().to_string());
        context.set("input", line.input.as_str());
        context.set("host", host);
        context.set("rule", rule.name());
        context.set("severity", rule.severity().as_str());
        context.set("time", time.as_str());
        context.set("count", 1);
        context.set("first_seen", time.as_str());
        context.set("last_seen", time);
        let context = context.into_value();
        let plain_title = format!("{} ({}) on {host}", rule.name(), rule.severity().as_str());
        let title = self
            .render(rule.name(), Which::Title, &context)
            .unwrap_or(plain_title);
        let text = self
            .render(rule.name(), Which::Template, &context)
            .unwrap_or_else(|| line.text.clone());
        (title, text)
    }

    /// The draft of the message for a batch: one match → the rule's title and its text;
    /// several → a summary (see [`summary`]): grouped by rule, critical first, exact counts.
    /// Mentions of all included rules are merged. `dingtalk::compose` lays it out and fits it.
    pub fn draft(&self, batch: &Batch) -> Draft {
        if let Some(sample) = batch.lone() {
            return Draft {
                title: sample.title.clone(),
                body: Body::Event(sample.text.clone()),
                mentions: batch.mentions(),
                notes: Vec::new(),
            };
        }
        summary::summary(self, batch)
    }

    /// The rule's `summary` heading for `rule`, if it has one that renders.
    pub fn summary_heading(&self, rule: &RuleBatch) -> Option<String> {
        let mut context = Context::default();
        context.set("rule", rule.rule.as_str());
        context.set("severity", rule.severity.as_str());
        context.set("count", rule.count);
        context.set("first_seen", rfc3339(rule.first_seen));
        context.set("last_seen", rfc3339(rule.last_seen));
        context.set(
            "hosts",
            rule.hosts
                .iter()
                .map(String::as_str)
                .map(Value::from)
                .collect::<Vec<_>>(),
        );
        context.set(
            "files",
            rule.files
                .iter()
                .map(String::as_str)
                .map(Value::from)
                .collect::<Vec<_>>(),
        );
        self.render(&rule.rule, Which::Summary, &context.into_value())
    }

    /// Renders one of `rule`'s templates; `None` when it has none or it failed (logged once).
    fn render(&self, rule: &str, which: Which, context: &Value) -> Option<String> {
        let templates = self.rules.get(rule)?;
        let name = match which {
            Which::Title => templates.title.as_ref(),
            Which::Template => templates.template.as_ref(),
            Which::Summary => templates.summary.as_ref(),
        }?;
        let result = self
            .env
            .get_template(name)
            .and_then(|template| template.render(context));
        match result {
            Ok(text) => Some(text),
            Err(err) => {
                if !templates.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        rule,
                        template = which.key(),
                        error = %err,
                        "template failed at run time; using the plain rendering (logged once per rule)"
                    );
                }
                None
            }
        }
    }
}

/// The character offset of byte `byte` of `text`.
fn char_offset(text: &str, byte: usize) -> usize {
    text.char_indices().take_while(|(i, _)| *i < byte).count()
}

/// The character offset of the first occurrence of `word` in `text` as a whole identifier.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(found) = text.get(from..).and_then(|rest| rest.find(word)) {
        let start = from + found;
        let end = start + word.len();
        let before = text.get(..start).and_then(|head| head.chars().next_back());
        let after = text.get(end..).and_then(|tail| tail.chars().next());
        if !before.is_some_and(is_ident) && !after.is_some_and(is_ident) {
            return Some(char_offset(text, start));
        }
        from = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::{Duration, UNIX_EPOCH};

    use crate::config::rules::{RuleSource, load};
    use crate::config::{Config, Diagnostics, RuleSpec};
    use crate::event::{FileId, LogLine};
    use crate::render::Renderer;
    use crate::rules::{Rule, RuleSet};

    fn specs(rules: &str) -> (tempfile::TempDir, Vec<RuleSpec>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("r.yaml"), rules).unwrap();
        let config_text =
            "inputs:\n  app:\n    paths: /x.log\nrobots:\n  ops:\n    webhook: stdout\n";
        let config: Config =
            crate::config::load::parse(&dir.path().join("dingtail.yaml"), config_text, &|_| None)
                .unwrap();
        let found = load(&config, &RuleSource::Files(vec![dir.path().join("r.yaml")]));
        assert!(found.errors.is_empty(), "{}", found.errors);
        (dir, found.specs)
    }

    fn errors(rules: &str) -> Vec<String> {
        let (_dir, specs) = specs(rules);
        let Err(Diagnostics(diags)) = Renderer::new(&specs) else {
            panic!("expected template errors");
        };
        diags
            .iter()
            .map(|d| {
                let file = d.file.file_name().unwrap().to_string_lossy().into_owned();
                format!("{file}{}", d.to_string().rsplit_once("r.yaml").unwrap().1)
            })
            .collect()
    }

    pub(crate) fn line(text: &str) -> LogLine {
        LogLine {
            input: "app".into(),
            file_id: FileId(1),
            path: PathBuf::from("/var/log/app.log"),
            start_offset: 0,
            end_offset: text.len() as u64 + 1,
            text: text.into(),
            truncated: false,
            read_at: UNIX_EPOCH + Duration::from_secs(1_709_211_909),
        }
    }

    #[test]
    fn renders_a_match_with_captures_and_context() {
        let (_dir, specs) = specs(
            r#"- name: nginx-5xx
  input: app
  match: '" (?P<status>5\d\d) '
  severity: critical
  robot: ops
  title: 'nginx {{ status }} on {{ host }}'
  template: '{{ time | datetime("%H:%M:%S") }} `{{ file }}` [{{ severity }}/{{ rule }}/{{ input }}] {{ line }} ({{ count }}, {{ first_seen }})'
- name: plain
  input: app
  match: 'x'
  robot: ops
"#,
        );
        let renderer = Renderer::new(&specs).unwrap();
        let set = RuleSet::new("app", specs.iter().map(Rule::new).collect()).unwrap();
        let log = line(r#""GET /" 502 x"#);
        let mut found = Vec::new();
        set.matches(&log.text, &mut found);
        assert_eq!(found.len(), 2);
        let (title, text) = renderer.render_match(&set.rules()[0], &found[0], &log, "web-1");
        assert_eq!(title, "nginx 502 on web-1");
        assert_eq!(
            text,
            r#"13:05:09 `/var/log/app.log` [critical/nginx-5xx/app] "GET /" 502 x (1, 2024-02-29T13:05:09Z)"#
        );
        let (title, text) = renderer.render_match(&set.rules()[1], &found[1], &log, "web-1");
        assert_eq!(title, "plain (warning) on web-1");
        assert_eq!(text, log.text);
    }

    #[test]
    fn captures_that_took_no_part_are_empty_not_undefined() {
        let (_dir, specs) = specs(
            r#"- name: exc
  input: app
  match: ['(?P<exception>\w+Error)(?:: (?P<message>.*))?', '(?P<signal>SIG\w+)']
  robot: ops
  template: '{{ exception }}|{{ message }}|{{ signal }}'
"#,
        );
        let renderer = Renderer::new(&specs).unwrap();
        let set = RuleSet::new("app", specs.iter().map(Rule::new).collect()).unwrap();
        let mut found = Vec::new();
        for (text, want) in [
            ("KeyError", "KeyError||"),
            ("KeyError: x", "KeyError|x|"),
            ("got SIGKILL", "||SIGKILL"),
        ] {
            let log = line(text);
            set.matches(&log.text, &mut found);
            let (_, rendered) = renderer.render_match(&set.rules()[0], &found[0], &log, "h");
            assert_eq!(rendered, want);
        }
    }

    #[test]
    fn template_errors_point_at_file_line_column_and_rule() {
        let errs = errors(
            r#"- name: a
  input: app
  match: '(?P<status>\d+)'
  robot: ops
  title: 'status {{ stauts }}'
  template: '{{ line }'
- name: b
  input: app
  match: 'x'
  robot: ops
  summary: '{{ count }} times, {{ line }}'
"#,
        );
        assert_eq!(
            errs,
            [
                "r.yaml:5:21: rule `a`: title: undefined variable `stauts` (known here: status, line, file, input, host, rule, severity, time, count, first_seen, last_seen) (did you mean `status`?)",
                "r.yaml:6:22: rule `a`: template: template syntax error: unexpected `}`, expected end of variable block",
                "r.yaml:11:35: rule `b`: summary: undefined variable `line` (known here: rule, severity, count, first_seen, last_seen, hosts, files)",
            ]
        );
    }

    #[test]
    fn a_runtime_failure_falls_back_to_the_plain_rendering() {
        let (_dir, specs) = specs(
            r#"- name: a
  input: app
  match: '(?P<word>\w+)'
  robot: ops
  title: '{{ word | datetime }}'
  template: '{{ word | datetime }}'
"#,
        );
        let renderer = Renderer::new(&specs).unwrap();
        let set = RuleSet::new("app", specs.iter().map(Rule::new).collect()).unwrap();
        let log = line("hello");
        let mut found = Vec::new();
        set.matches(&log.text, &mut found);
        for _ in 0..2 {
            let (title, text) = renderer.render_match(&set.rules()[0], &found[0], &log, "h");
            assert_eq!(
                (title.as_str(), text.as_str()),
                ("a (warning) on h", "hello")
            );
        }
        assert!(Path::new(&specs[0].file).exists());
    }
}
