//! Building a [`Renderer`]: every template of every rule and robot compiled into one minijinja
//! environment at load time, with strict undefined variables, each one's variables checked
//! against what its context will hold, so that a mistake is a load error with file:line:column.
//!
//! How log text is kept inert: each template is compiled under a name that says what it renders
//! (`md:`, `plain:`, `title:`, `url:` or `raw:`), the environment's auto-escape follows that
//! prefix, and one formatter escapes every value a template prints for it
//! (`dingtalk::escape`), unless the value was marked safe with `| raw` (or `| safe`). The
//! template's own text is never touched: the author's markdown renders. Rule texts and summary
//! headings are compiled twice, for markdown and for plain text, because a rule's samples are
//! rendered for the kind of message they will be shown in.

use std::collections::{BTreeMap, BTreeSet};

use minijinja::{AutoEscape, Environment, Output, State, UndefinedBehavior, Value};

use crate::config::diag::did_you_mean;
use crate::config::span::Pos;
use crate::config::{Config, Diagnostic, Diagnostics, RuleSpec, TemplateSpec};
use crate::dingtalk::escape;
use crate::render::context::{
    BUILTIN_NAMES, MATCH_NAMES, SUMMARY_NAMES, SUMMARY_TITLE_NAMES, datetime,
};
use crate::render::record::RecordNames;
use crate::render::{Mode, Renderer, RobotTemplates, RuleTemplates, names};

/// A template problem: position, message, hint.
type Problem = (Pos, String, Option<String>);

impl Renderer {
    /// Compiles the templates of `specs` and of `config`'s robots, and checks their variables.
    ///
    /// # Errors
    /// Every template syntax error and undefined variable, with file:line:column and the rule
    /// (or robot).
    pub fn new(specs: &[RuleSpec], config: &Config) -> Result<Renderer, Diagnostics> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let zone = config.timezone.clone();
        env.add_filter(
            "datetime",
            move |value: Value, format: Option<String>| -> Result<String, minijinja::Error> {
                datetime(&value, format.as_deref(), &zone)
            },
        );
        env.add_filter("raw", raw);
        env.set_auto_escape_callback(|name| match Mode::of_name(name) {
            Some(Mode::Raw) | None => AutoEscape::None,
            Some(mode) => AutoEscape::Custom(mode.escape_name().into()),
        });
        env.set_formatter(format_value);
        let mut renderer = Renderer {
            env,
            rules: BTreeMap::new(),
            robots: BTreeMap::new(),
            language: config.language,
            zone: config.timezone.clone(),
            people: config.people.clone(),
            host: config.host.clone(),
        };
        let mut diags = Diagnostics::default();
        for spec in specs {
            let templates = renderer.rule(spec, config, &mut diags);
            renderer.rules.insert(spec.name.clone(), templates);
        }
        for robot in config.robots.values() {
            let mut templates = RobotTemplates {
                msgtype: robot.msgtype,
                summary_title: None,
            };
            if let Some(source) = &robot.summary_title {
                let name = format!("summary_title#{}", robot.name);
                let context = format!("robot `{}`: summary_title", robot.name);
                if renderer.check(
                    &name,
                    source,
                    &[],
                    SUMMARY_TITLE_NAMES,
                    &context,
                    None,
                    &mut diags,
                ) {
                    templates.summary_title = Some(name);
                }
            }
            renderer.robots.insert(robot.name.clone(), templates);
        }
        if diags.is_empty() {
            Ok(renderer)
        } else {
            Err(diags)
        }
    }

    /// Compiles one rule's templates; problems go to `diags`.
    fn rule(&mut self, spec: &RuleSpec, config: &Config, diags: &mut Diagnostics) -> RuleTemplates {
        // A capture named like a context value would be silently replaced by it.
        for (capture, pos) in &spec.capture_positions {
            if MATCH_NAMES.contains(&capture.as_str()) || BUILTIN_NAMES.contains(&capture.as_str())
            {
                diags.push(
                    Diagnostic::at(
                        &spec.file,
                        pos.line,
                        pos.column,
                        format!(
                            "match: the capture `{capture}` would be hidden by the built-in \
                             template value `{capture}` (built-ins: {})",
                            MATCH_NAMES.join(", ")
                        ),
                    )
                    .with_rule(&spec.name)
                    .with_hint(format!("rename it, e.g. `(?P<log_{capture}>…)`")),
                );
            }
        }
        let captures = spec.capture_names();
        // The names of decoded events (`fields`, `stream`, journal fields) for rules that read
        // them: checked like captures.
        let record = RecordNames::of(spec, config);
        let captures: Vec<&str> = captures
            .iter()
            .chain(&record.allowed)
            .map(String::as_str)
            .collect();
        let rule = Some(spec.name.as_str());
        let mut templates = RuleTemplates {
            msgtype: spec.msgtype,
            record: record.clone(),
            ..RuleTemplates::default()
        };
        let mut add =
            |renderer: &mut Renderer, key: &str, source: &TemplateSpec, names: &[&str]| {
                let base = format!("{key}#{}", spec.name);
                let caps = if names == SUMMARY_NAMES {
                    &[][..]
                } else {
                    &captures[..]
                };
                // `at.mobiles.1` is reported as `at.mobiles` (the position says which entry).
                let what = match key.strip_prefix("at.") {
                    Some(_) => key.rsplit_once('.').map_or(key, |(what, _)| what),
                    None => key,
                };
                renderer
                    .check(&base, source, caps, names, what, rule, diags)
                    .then_some(base)
            };
        if let Some(source) = &spec.title {
            templates.title = add(self, "title", source, MATCH_NAMES);
        }
        if let Some(source) = &spec.template {
            templates.template = add(self, "template", source, MATCH_NAMES);
        }
        if let Some(source) = &spec.summary {
            templates.summary = add(self, "summary", source, SUMMARY_NAMES);
        }
        if let Some(link) = &spec.link {
            let title = add(self, "link.title", &link.title, MATCH_NAMES);
            let url = add(self, "link.url", &link.url, MATCH_NAMES);
            templates.link = title.zip(url);
        }
        for (i, entry) in spec.mention_templates.iter().enumerate() {
            let key = format!("at.{}.{i}", entry.kind.key());
            if let Some(base) = add(self, &key, &entry.template, MATCH_NAMES) {
                templates.mentions.push((entry.kind, base));
            }
        }
        templates
    }

    /// Compiles `source` once per mode under `base` (`md:base`, `plain:base`, …, as the base's
    /// key needs) and checks its variables against `captures` and `names`. Returns whether it
    /// compiled; problems go to `diags`, named `what` (and the rule).
    #[allow(clippy::too_many_arguments)] // Private: one call site per kind of template.
    fn check(
        &mut self,
        base: &str,
        source: &TemplateSpec,
        captures: &[&str],
        names: &[&str],
        what: &str,
        rule: Option<&str>,
        diags: &mut Diagnostics,
    ) -> bool {
        let allowed: Vec<&str> = captures.iter().chain(names).copied().collect();
        let modes = Mode::for_key(base);
        let mut ok = true;
        for (k, mode) in modes.iter().enumerate() {
            let name = mode.name(base);
            let found = self.compile(&name, source, &allowed);
            if let Err(problems) = found {
                ok = false;
                // The same source fails alike in every mode: report it once.
                if k == 0 {
                    for (pos, message, hint) in problems {
                        let message = format!("{what}: {message}");
                        let mut diagnostic =
                            Diagnostic::at(source.file(), pos.line, pos.column, message);
                        if let Some(rule) = rule {
                            diagnostic = diagnostic.with_rule(rule);
                        }
                        if let Some(hint) = hint {
                            diagnostic = diagnostic.with_hint(hint);
                        }
                        diags.push(diagnostic);
                    }
                }
            }
        }
        ok
    }

    /// Adds template `name` and checks its variables against `allowed`.
    fn compile(
        &mut self,
        name: &str,
        source: &TemplateSpec,
        allowed: &[&str],
    ) -> Result<(), Vec<Problem>> {
        if let Err(err) = self
            .env
            .add_template_owned(name.to_string(), source.source.clone())
        {
            let offset = match (err.range(), err.line()) {
                (Some(range), _) => char_offset(&source.source, range.start),
                (None, Some(line)) => source
                    .source
                    .split('\n')
                    .take(line.saturating_sub(1))
                    .map(|l| l.chars().count() + 1)
                    .sum(),
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
        let mut problems: Vec<Problem> = names::unknown(&self.env, &used)
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
}

/// The `raw` filter: the value as it is, not escaped (on purpose: log text printed with `| raw`
/// can form links and mentions).
fn raw(value: Value) -> Value {
    if value.is_safe() {
        value
    } else {
        Value::from_safe_string(value.to_string())
    }
}

/// Prints one value of a template, escaped for the template's mode.
fn format_value(
    out: &mut Output,
    state: &mut State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    let mode = match state.auto_escape() {
        AutoEscape::Custom(name) => Mode::of_escape_name(name.as_ref()),
        _ => None,
    };
    let Some(mode) = mode else {
        return minijinja::escape_formatter(out, state, value);
    };
    if value.is_safe() {
        return out
            .write_str(value.as_str().unwrap_or_default())
            .map_err(Into::into);
    }
    let text = if value.is_undefined() {
        String::new()
    } else {
        value.to_string()
    };
    let escaped = match mode {
        Mode::Markdown => escape::markdown(&text),
        Mode::Plain => escape::plain(&text),
        Mode::Title => escape::title(&text),
        Mode::Url => escape::url_component(&text),
        Mode::Raw => text,
    };
    out.write_str(&escaped).map_err(Into::into)
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
