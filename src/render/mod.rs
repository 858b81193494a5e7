//! Rendering: the text of messages, from the rules' templates and from batches. No I/O (issue 4).
//!
//! A [`Renderer`] holds one minijinja environment with every template of every rule (and every
//! robot's `summary_title`) compiled at load time, with strict undefined variables; each
//! template's variables are checked then against the rule's named captures and the context names
//! of [`context`], so a mistake is a load error with file:line:column, not a broken message at
//! 3 a.m. (`compile`).
//!
//! The templates of a rule, all optional:
//! - `title`: a message's title, per event (default: `<rule> (<severity>) on <host>`, in the
//!   configured language);
//! - `template`: one event's text (default: the line itself);
//! - `summary`: the rule's heading in a summary of several events; it sees `count`,
//!   `first_seen`, `last_seen`, `hosts` and `files` (default: name, severity, count, times);
//! - `link.title`, `link.url`: a button or link line; templated `at:` entries.
//!
//! Log text is inert: every value a template prints is escaped for the kind of text it renders
//! (markdown, plain, title, URL; `dingtalk::escape`), the author's own text is not, and `| raw`
//! opts out on purpose. Which kind: a rule's samples are rendered for the message they would be
//! sent in alone — the rule's `msgtype:`, else its robot's ([`Renderer::markup_for`]); a sample
//! shown in a summary of another kind is made safe for it there (`dingtalk::draft`).
//!
//! Times are in the config's `timezone:`, dingtail's own words in its `language:`. A template
//! that fails at run time (a filter given a bad value) never stops a message: the plain rendering
//! is used and the failure is logged once per rule.

mod compile;
pub mod context;
pub mod names;
pub mod notice;
pub mod record;
pub mod summary;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::tz::TimeZone;
use minijinja::{Environment, Value};

use crate::batch::{Batch, Rendered, RuleBatch};
use crate::config::MentionKind;
use crate::dingtalk::draft::{Body, Draft};
use crate::dingtalk::escape;
use crate::event::{Link, LogLine, Markup, Mentions, MsgType};
use crate::lang::Language;
use crate::render::context::{Context, rfc3339};
use crate::render::record::{RecordNames, set_record};
use crate::rules::{Rule, RuleMatch};

/// What a compiled template renders, which decides how the values it prints are escaped. The
/// mode is the prefix of the template's name in the environment (`md:template#rule`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// DingTalk markdown.
    Markdown,
    /// A `text` message.
    Plain,
    /// A title or button text: one line.
    Title,
    /// A link's URL: values percent-encoded.
    Url,
    /// A mention entry: checked after rendering instead.
    Raw,
}

impl Mode {
    const ALL: [Mode; 5] = [
        Mode::Markdown,
        Mode::Plain,
        Mode::Title,
        Mode::Url,
        Mode::Raw,
    ];

    fn prefix(self) -> &'static str {
        match self {
            Mode::Markdown => "md",
            Mode::Plain => "plain",
            Mode::Title => "title",
            Mode::Url => "url",
            Mode::Raw => "raw",
        }
    }

    /// The auto-escape name the formatter recognises.
    fn escape_name(self) -> &'static str {
        match self {
            Mode::Markdown => "dingtail-markdown",
            Mode::Plain => "dingtail-plain",
            Mode::Title => "dingtail-title",
            Mode::Url => "dingtail-url",
            Mode::Raw => "dingtail-raw",
        }
    }

    fn of_escape_name(name: &str) -> Option<Mode> {
        Mode::ALL
            .into_iter()
            .find(|mode| mode.escape_name() == name)
    }

    /// The environment name of template `base` in this mode.
    fn name(self, base: &str) -> String {
        format!("{}:{base}", self.prefix())
    }

    fn of_name(name: &str) -> Option<Mode> {
        let (prefix, _) = name.split_once(':')?;
        Mode::ALL.into_iter().find(|mode| mode.prefix() == prefix)
    }

    fn of_markup(markup: Markup) -> Mode {
        match markup {
            Markup::Markdown => Mode::Markdown,
            Markup::Plain => Mode::Plain,
        }
    }

    /// The modes template `base` (`key#owner`) is compiled in.
    fn for_key(base: &str) -> &'static [Mode] {
        let key = base.split('#').next().unwrap_or_default();
        match key {
            "template" | "summary" => &[Mode::Markdown, Mode::Plain],
            "link.url" => &[Mode::Url],
            _ if key.starts_with("at.") => &[Mode::Raw],
            _ => &[Mode::Title],
        }
    }
}

/// The names of one rule's compiled templates in the environment (without the mode prefix).
#[derive(Debug, Default)]
struct RuleTemplates {
    title: Option<String>,
    template: Option<String>,
    summary: Option<String>,
    /// (title, url).
    link: Option<(String, String)>,
    /// Templated `at:` entries.
    mentions: Vec<(MentionKind, String)>,
    /// The kind of the rule's lone events.
    msgtype: Option<MsgType>,
    /// The names of decoded events its templates may use (`record`).
    record: RecordNames,
    /// A runtime failure of this rule's templates has been logged.
    warned: AtomicBool,
    /// A dropped mention has been logged.
    warned_mentions: AtomicBool,
}

/// A robot's message settings.
#[derive(Debug)]
struct RobotTemplates {
    msgtype: MsgType,
    summary_title: Option<String>,
}

/// Every rule's templates, compiled, with the settings messages are written in.
#[derive(Debug)]
pub struct Renderer {
    env: Environment<'static>,
    rules: BTreeMap<String, RuleTemplates>,
    robots: BTreeMap<String, RobotTemplates>,
    language: Language,
    zone: TimeZone,
    people: BTreeMap<String, Mentions>,
    /// The host name of this daemon (`host:`).
    host: String,
}

impl Renderer {
    /// The language of dingtail's words in messages.
    pub fn language(&self) -> Language {
        self.language
    }

    /// The zone of times in messages.
    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    /// The host name messages name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The kind of message `rule`'s lone events go to `robot` as: the rule's `msgtype:`, else
    /// the robot's.
    pub fn msgtype_for(&self, rule: &str, robot: &str) -> MsgType {
        self.rules
            .get(rule)
            .and_then(|t| t.msgtype)
            .or_else(|| self.robots.get(robot).map(|r| r.msgtype))
            .unwrap_or_default()
    }

    /// What `rule`'s samples for `robot` are escaped for (see the module documentation).
    pub fn markup_for(&self, rule: &str, robot: &str) -> Markup {
        self.msgtype_for(rule, robot).markup()
    }

    /// The kind of `robot`'s summaries.
    pub fn robot_msgtype(&self, robot: &str) -> MsgType {
        self.robots
            .get(robot)
            .map(|r| r.msgtype)
            .unwrap_or_default()
    }

    /// Title, text and link of one match, from the rule's templates, with the full context
    /// (captures, line, file, input, host, rule, severity, time, and count 1), the text escaped
    /// for `markup`. Captures that took no part in the match are empty strings. Runtime template
    /// errors never panic: the plain rendering is used and the failure is logged once per rule.
    pub fn render_match(
        &self,
        rule: &Rule,
        m: &RuleMatch,
        line: &LogLine,
        host: &str,
        markup: Markup,
    ) -> Rendered {
        let context = self.match_context(rule, m, line, host);
        let templates = self.rules.get(rule.name());
        let title = templates
            .and_then(|t| t.title.as_deref())
            .and_then(|name| self.render(rule.name(), Mode::Title, name, &context))
            .map(|title| escape::title(&title))
            .unwrap_or_else(|| {
                escape::title(
                    &self
                        .language
                        .event_title(rule.name(), rule.severity(), host),
                )
            });
        let text = templates
            .and_then(|t| t.template.as_deref())
            .and_then(|name| self.render(rule.name(), Mode::of_markup(markup), name, &context))
            .unwrap_or_else(|| escape::value(&line.text, markup));
        let link = templates
            .and_then(|t| t.link.as_ref())
            .and_then(|(title, url)| self.link(rule.name(), title, url, &context));
        Rendered {
            title,
            text,
            markup,
            link,
        }
    }

    /// Who `m` @-mentions: the rule's literal mentions, plus its templated `at:` entries
    /// rendered for this match. An entry that renders empty is dropped; one that is not a valid
    /// mobile, user id or `people:` name is dropped with one warning per rule.
    pub fn mentions<'a>(
        &self,
        rule: &'a Rule,
        m: &RuleMatch,
        line: &LogLine,
        host: &str,
    ) -> Cow<'a, Mentions> {
        // Most rules have no templated entries: no lookup, no allocation on the hot path.
        if !rule.has_templated_mentions() {
            return Cow::Borrowed(rule.mentions());
        }
        let Some(templates) = self
            .rules
            .get(rule.name())
            .filter(|t| !t.mentions.is_empty())
        else {
            return Cow::Borrowed(rule.mentions());
        };
        let context = self.match_context(rule, m, line, host);
        let mut mentions = rule.mentions().clone();
        for (kind, name) in &templates.mentions {
            let Some(rendered) = self.render(rule.name(), Mode::Raw, name, &context) else {
                continue;
            };
            let entry = rendered.trim();
            if entry.is_empty() {
                continue;
            }
            let found = match kind {
                MentionKind::Mobile if Mentions::is_mobile(entry) => {
                    mentions.merge(&Mentions {
                        mobiles: vec![entry.to_string()],
                        ..Mentions::default()
                    });
                    true
                }
                MentionKind::UserId if Mentions::is_user_id(entry) => {
                    mentions.merge(&Mentions {
                        user_ids: vec![entry.to_string()],
                        ..Mentions::default()
                    });
                    true
                }
                MentionKind::Person => match self.people.get(entry) {
                    Some(person) => {
                        mentions.merge(person);
                        true
                    }
                    None => false,
                },
                MentionKind::Mobile | MentionKind::UserId => false,
            };
            if !found && !templates.warned_mentions.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    rule = rule.name(),
                    entry = %escape::title(entry),
                    kind = kind.key(),
                    "an `at:` entry rendered to no valid mention and was dropped (logged once per rule)"
                );
            }
        }
        Cow::Owned(mentions)
    }

    /// The draft of the message for `robot` about `batch`: one line → the rule's title, text
    /// (with what an alert-kind line stands for) and link, as the rule's kind; one notice →
    /// the notice alone ([`notice`]); more → a summary as the robot's kind (see [`summary`]):
    /// grouped by rule, critical first, exact counts, notices in a section of their own.
    /// Mentions of all included rules and notices are merged.
    /// `dingtalk::compose` lays it out and fits it.
    pub fn draft(&self, batch: &Batch, robot: &str) -> Draft {
        if let Some((rule, sample)) = batch.lone() {
            let text = match notice::annotation(self, sample.note, sample.at, sample.markup) {
                Some(note) => format!("{}\n\n{note}", sample.text.trim_end()),
                None => sample.text.clone(),
            };
            return Draft {
                title: sample.title.clone(),
                body: Body::Event(text),
                mentions: batch.mentions(),
                link: sample.link.clone(),
                markup: sample.markup,
                kind: self.msgtype_for(&rule.rule, robot),
                language: self.language,
                notes: Vec::new(),
            };
        }
        if let Some(lone) = batch.lone_notice() {
            return notice::lone(self, lone, robot);
        }
        summary::summary(self, batch, robot)
    }

    /// The rule's `summary` heading for `rule`, escaped for `markup`, if it has one that renders.
    pub fn summary_heading(&self, rule: &RuleBatch, markup: Markup) -> Option<String> {
        let name = self.rules.get(&rule.rule)?.summary.as_deref()?;
        let mut context = Context::default();
        context.set("rule", rule.rule.as_str());
        context.set("severity", rule.severity.as_str());
        context.set("count", rule.count);
        context.set("first_seen", rfc3339(rule.first_seen, &self.zone));
        context.set("last_seen", rfc3339(rule.last_seen, &self.zone));
        context.set("hosts", strings(rule.hosts.iter()));
        context.set("files", strings(rule.files.iter()));
        self.render(
            &rule.rule,
            Mode::of_markup(markup),
            name,
            &context.into_value(),
        )
    }

    /// `robot`'s `summary_title` for `batch`, if it has one that renders.
    pub fn summary_title(&self, robot: &str, batch: &Batch) -> Option<String> {
        let host = self.host.as_str();
        let name = self.robots.get(robot)?.summary_title.as_deref()?;
        let rules = batch.ordered();
        let mut context = Context::default();
        let severity = batch.severity().unwrap_or(crate::event::Severity::Info);
        context.set("level", self.language.severity(severity));
        context.set("count", batch.count());
        context.set("rules", strings(rules.iter().map(|r| &r.rule)));
        context.set("hosts", strings(batch.hosts().into_iter()));
        context.set("host", host);
        let name = Mode::Title.name(name);
        match self
            .env
            .get_template(&name)
            .and_then(|t| t.render(context.into_value()))
        {
            Ok(title) => Some(escape::title(&title)),
            Err(err) => {
                tracing::warn!(robot, error = %err, "summary_title failed at run time; using the built-in title");
                None
            }
        }
    }

    /// The context of one match.
    fn match_context(&self, rule: &Rule, m: &RuleMatch, line: &LogLine, host: &str) -> Value {
        let mut context = Context::default();
        // A decoded event's fields and context, under the captures and the built-ins.
        if let Some(templates) = self.rules.get(rule.name()) {
            if !templates.record.allowed.is_empty() {
                set_record(&mut context, line, &templates.record.journal_fields);
            }
        }
        // A group that took no part in the match (an optional one, or another pattern's) is
        // empty rather than undefined, so that strict templates still render.
        for name in rule.capture_names() {
            context.set(name, "");
        }
        for (name, value) in &m.captures {
            context.set(name, value.as_str());
        }
        let time = rfc3339(line.time(), &self.zone);
        context.set("line", line.text.as_str());
        context.set("file", line.path.display().to_string());
        context.set("input", &*line.input);
        context.set("host", host);
        context.set("rule", rule.name());
        context.set("severity", rule.severity().as_str());
        context.set("time", time.as_str());
        context.set("count", 1);
        context.set("first_seen", time.as_str());
        context.set("last_seen", time);
        context.into_value()
    }

    /// The rule's link for a match, if its URL renders to an `http(s)` or `dingtalk` URL.
    fn link(&self, rule: &str, title: &str, url: &str, context: &Value) -> Option<Link> {
        let title = escape::title(&self.render(rule, Mode::Title, title, context)?);
        let url = self.render(rule, Mode::Url, url, context)?;
        let parsed = url::Url::parse(url.trim()).ok()?;
        if !matches!(parsed.scheme(), "http" | "https" | "dingtalk") {
            return None;
        }
        Some(Link {
            title,
            url: parsed.to_string(),
        })
    }

    /// Renders template `base` of `rule` in `mode`; `None` when it failed (logged once).
    fn render(&self, rule: &str, mode: Mode, base: &str, context: &Value) -> Option<String> {
        let name = mode.name(base);
        let result = self
            .env
            .get_template(&name)
            .and_then(|template| template.render(context));
        match result {
            Ok(text) => Some(text),
            Err(err) => {
                let warned = self
                    .rules
                    .get(rule)
                    .is_some_and(|t| t.warned.swap(true, Ordering::Relaxed));
                if !warned {
                    tracing::warn!(
                        rule,
                        template = base.split('#').next().unwrap_or_default(),
                        error = %err,
                        "template failed at run time; using the plain rendering (logged once per rule)"
                    );
                }
                None
            }
        }
    }
}

/// A list of strings as a template value.
fn strings<'a, S: AsRef<str> + ?Sized + 'a>(items: impl Iterator<Item = &'a S>) -> Value {
    items
        .map(|item| Value::from(item.as_ref()))
        .collect::<Vec<_>>()
        .into()
}

#[cfg(test)]
pub(crate) mod tests;
