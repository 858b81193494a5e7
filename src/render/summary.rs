//! The summary of a batch of several events, as a [`Draft`]: a title naming the level, the
//! host(s) and the count (or the robot's `summary_title`), then per rule (critical first) how
//! many times it fired (exactly), when first and last (in the configured zone, with the span's
//! length), in which files (and on which hosts, when several), the most frequent values of its
//! `top:` captures, and a few distinct samples spread over the batch. A rule's heading is its
//! `summary` template when it has one; the default heading is built here, in the configured
//! language. Laying the draft out and fitting it under DingTalk's limit (dropping samples and
//! sections with exact "and N more") is `dingtalk::compose`'s job.
//!
//! Alert kinds (issue 13): a sample that stands for more than itself (a firing alert's window, a
//! repeat) says so on a line under it, and a batch's notices get a section of their own, placed
//! by severity among the rules' (`render::notice`); the title counts them after the alerts.

use crate::batch::top::TopCounts;
use crate::batch::{Batch, MAX_SAMPLES, RuleBatch, Sample};
use crate::dingtalk::draft::{Body, Draft, Fact, Heading, Section};
use crate::dingtalk::escape;
use crate::event::{Markup, Severity};
use crate::lang::{Label, Language};
use crate::render::Renderer;
use crate::render::context::span;
use crate::render::notice;

/// Hosts or files listed by name before "and N more".
const MAX_LISTED: usize = 3;
/// Values of a `top:` capture listed with their counts.
const MAX_TOP_LISTED: usize = 5;

/// The summary draft of `batch` for `robot`.
pub fn summary(renderer: &Renderer, batch: &Batch, robot: &str) -> Draft {
    let language = renderer.language();
    let kind = renderer.robot_msgtype(robot);
    let markup = kind.markup();
    let rules = batch.ordered();
    let severity = batch.severity().unwrap_or(Severity::Info);
    let hosts: Vec<&str> = batch.hosts().into_iter().collect();
    let notices = batch.notices();
    let title = renderer.summary_title(robot, batch).unwrap_or_else(|| {
        let n_notices = notices.len();
        let title = if rules.is_empty() {
            let host = [renderer.host()];
            let hosts = if hosts.is_empty() { &host[..] } else { &hosts };
            language.notices_title(severity, hosts, n_notices)
        } else if n_notices > 0 {
            let alerts = language.summary_title(severity, &hosts, batch.count(), rules.len());
            format!("{alerts}{}", language.notices_in_title(n_notices, true))
        } else {
            language.summary_title(severity, &hosts, batch.count(), rules.len())
        };
        escape::title(&title)
    });
    let mut sections: Vec<Section> = rules
        .iter()
        .map(|rule| section(renderer, rule, markup, hosts.len() > 1))
        .collect();
    if !notices.is_empty() {
        // Before the first rule less severe than the most severe notice.
        let rank = notices.severity().unwrap_or(Severity::Info);
        let at = rules
            .iter()
            .position(|rule| rule.severity < rank)
            .unwrap_or(rules.len());
        sections.insert(at, notice::section(renderer, notices, markup));
    }
    Draft {
        title,
        body: Body::Summary(sections),
        mentions: batch.mentions(),
        link: None,
        markup,
        kind,
        language,
        notes: Vec::new(),
    }
}

/// One rule's section.
fn section(renderer: &Renderer, rule: &RuleBatch, markup: Markup, several_hosts: bool) -> Section {
    let language = renderer.language();
    let mut facts = Vec::new();
    if several_hosts {
        facts.push(listed(language, Label::Hosts, rule.hosts.iter()));
    }
    facts.push(listed(language, Label::Files, rule.files.iter()));
    facts.extend(rule.top.iter().map(|top| top_fact(language, top)));
    let shown = rule.shown_samples(MAX_SAMPLES);
    let samples = shown
        .iter()
        .map(|s| {
            let text = in_markup(s, markup);
            match notice::annotation(renderer, s.note, s.at, markup) {
                Some(note) => format!("{}\n{note}", text.trim_end()),
                None => text,
            }
        })
        .collect();
    Section {
        heading: heading(renderer, rule, markup),
        facts,
        samples,
        // Lines: what the samples and "and N more" are counted in.
        count: rule.hits,
        link: shown.iter().rev().find_map(|s| s.link.clone()),
    }
}

/// A rule's section heading: its `summary` template or the default.
fn heading(renderer: &Renderer, rule: &RuleBatch, markup: Markup) -> Heading {
    let language = renderer.language();
    match renderer.summary_heading(rule, markup) {
        Some(custom) => Heading::Custom(custom),
        None => Heading::Named {
            name: rule.rule.clone(),
            facts: vec![
                language.severity(rule.severity).to_string(),
                language.times(rule.count),
                span(rule.first_seen, rule.last_seen, renderer.zone(), language),
            ],
        },
    }
}

/// A sample's text for a summary in `markup`: a plain rendering is escaped whole for markdown;
/// a markdown one is shown as it is in plain text (inert there).
fn in_markup(sample: &Sample, markup: Markup) -> String {
    match (sample.markup, markup) {
        (Markup::Plain, Markup::Markdown) => escape::plain_to_markdown(&sample.text),
        _ => sample.text.clone(),
    }
}

/// The first few items and how many more.
fn listed<'a>(
    language: Language,
    label: Label,
    items: impl ExactSizeIterator<Item = &'a String>,
) -> Fact {
    let n = items.len();
    Fact {
        label: language.label(label).to_string(),
        items: items.take(MAX_LISTED).cloned().collect(),
        more: (n > MAX_LISTED).then(|| language.and_more_items(n - MAX_LISTED)),
    }
}

/// `ip: 203.0.113.9 ×120, 198.51.100.7 ×45, … (37 distinct)`.
fn top_fact(language: Language, top: &TopCounts) -> Fact {
    let shown = top.most_frequent(MAX_TOP_LISTED);
    let complete = shown.len() == top.n_distinct() && !top.bound_passed();
    Fact {
        label: top.capture.clone(),
        items: shown
            .iter()
            .map(|(value, count)| format!("{value} ×{count}"))
            .collect(),
        more: (!complete).then(|| language.distinct(top.n_distinct(), top.bound_passed())),
    }
}

#[cfg(test)]
mod tests;
