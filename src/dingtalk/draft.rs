//! `Draft`: a message before it has a kind. Rendering (the rules' templates, the summary of a
//! batch) produces a draft — a title, either one event's text or sections with their samples,
//! who to @ and an optional link — and [`compose`] turns it into the wire [`Message`] of the
//! chosen [`MsgType`], fitting it under DingTalk's body limit.
//!
//! Fitting never changes a count: what does not fit is dropped whole (a sample, then whole
//! sections from the least important end) and replaced by "and N more", where N is exact; the
//! budget shrinks until the whole request, keyword and mentions included, fits uncut. Adding a
//! message kind means teaching this file its layout; nothing else changes.
//!
//! Pure: no I/O, no clock.

use crate::dingtalk::limits::fits_uncut;
use crate::dingtalk::message::{Mentions, Message};

/// A budget for a message's text that leaves room, under DingTalk's 20,000-byte body limit,
/// for the JSON envelope, the title, keywords and @-mentions (`body` enforces the exact limit).
pub const DEFAULT_MAX_TEXT_BYTES: usize = 18_000;
/// Below this budget a summary is not shrunk further (`body` cuts what is left).
const MIN_TEXT_BYTES: usize = 2_000;
/// One sample's text is cut here, so one stack trace cannot push out every other sample.
const MAX_SAMPLE_BYTES: usize = 1024;
/// Kept free for the closing "and N more" line.
const FOOTER_RESERVE: usize = 96;

/// Which DingTalk message kind a draft becomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MsgType {
    /// `markdown`: a title in the notification, the text in DingTalk's markdown subset.
    #[default]
    Markdown,
}

/// A message before it has a kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    /// The notification title (and the message's heading).
    pub title: String,
    /// What the message says.
    pub body: Body,
    /// Who to @-mention.
    pub mentions: Mentions,
    /// What the reader must know about the delivery itself (shown after the body, and marked in
    /// the title).
    pub notes: Vec<Note>,
}

/// A remark about the delivery of a message, not about its events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// An earlier send of these events got no answer: DingTalk may have delivered them already,
    /// so this message may repeat one the group has (its counts are not new).
    PossibleRepeat,
    /// dingtail cannot write its state: it keeps alerting from memory, but a restart may repeat
    /// or lose what it has not written.
    Degraded {
        /// Why the state cannot be written.
        reason: String,
    },
}

impl Note {
    /// The mark put after the title (the title's start stays the message's subject).
    fn title_mark(&self) -> &'static str {
        match self {
            Note::PossibleRepeat => " (possible repeat)",
            Note::Degraded { .. } => "",
        }
    }

    /// The note as a line of text.
    fn text(&self) -> String {
        match self {
            Note::PossibleRepeat => "⚠ possible repeat: an earlier send of these events got no \
                answer, DingTalk may have delivered them already"
                .to_string(),
            Note::Degraded { reason } => format!(
                "⚠ delivery degraded: dingtail cannot write its state ({reason}); a restart may \
                 repeat or lose events"
            ),
        }
    }
}

/// What a draft says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// One event: its rendered text.
    Event(String),
    /// A summary: sections, most important first.
    Summary(Vec<Section>),
}

/// One part of a summary (one rule's events).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// The section's first line.
    pub heading: Heading,
    /// Facts under the heading, shown on one line (hosts, files).
    pub facts: Vec<Fact>,
    /// A few rendered events, oldest first.
    pub samples: Vec<String>,
    /// How many events the section stands for (samples and the rest).
    pub count: u64,
}

/// A section's first line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Heading {
    /// A name, emphasised, followed by facts: `**name** · critical · 2× · 12:00 → 12:05`.
    Named {
        /// The name (a rule's).
        name: String,
        /// What follows it.
        facts: Vec<String>,
    },
    /// A heading its author wrote (a rule's `summary` template), used as it is.
    Custom(String),
}

/// A labelled list, shown as `label: a, b, c, and 2 more`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    /// The label.
    pub label: String,
    /// The items shown.
    pub items: Vec<String>,
    /// Items left out.
    pub n_more: usize,
    /// The items are names of things (files) shown as code.
    pub code: bool,
}

/// The wire message of `draft` as `msgtype`, fitted so that the request body for a robot with
/// `keywords` is sent whole: a summary drops samples and sections (saying exactly how many) until
/// it fits; one event's text is cut only when nothing else is left to drop.
pub fn compose(draft: &Draft, msgtype: MsgType, keywords: &[String]) -> Message {
    let mut budget = DEFAULT_MAX_TEXT_BYTES;
    loop {
        let message = match msgtype {
            MsgType::Markdown => Message::markdown(
                title(draft),
                markdown(draft, budget),
                draft.mentions.clone(),
            ),
        };
        if budget <= MIN_TEXT_BYTES || fits_uncut(keywords, &message) {
            return message;
        }
        budget = budget * 3 / 4;
    }
}

/// The title of `draft` with the marks of its notes.
pub fn title(draft: &Draft) -> String {
    let mut title = draft.title.clone();
    title.extend(draft.notes.iter().map(Note::title_mark));
    title
}

/// The markdown text of `draft`, at most `max_bytes` long: the body, then the notes as a block
/// quote (never cut: the body gives way).
pub fn markdown(draft: &Draft, max_bytes: usize) -> String {
    let notes: String = draft
        .notes
        .iter()
        .map(|note| format!("\n> {}\n", note.text()))
        .collect();
    let max_bytes = max_bytes.saturating_sub(notes.len());
    let mut text = markdown_body(draft, max_bytes);
    text.push_str(&notes);
    text
}

/// The markdown text of the body of `draft`, at most `max_bytes` long.
fn markdown_body(draft: &Draft, max_bytes: usize) -> String {
    let title = title(draft);
    let sections = match &draft.body {
        Body::Event(text) => {
            return cut_to(format!("#### {title}\n\n{text}\n"), max_bytes);
        }
        Body::Summary(sections) => sections,
    };
    let mut text = format!("#### {title}\n");
    let mut omitted: Option<(usize, u64)> = None;
    for (k, section) in sections.iter().enumerate() {
        let head = markdown_heading(section);
        if text.len() + head.len() + FOOTER_RESERVE > max_bytes {
            let rest = sections.get(k..).unwrap_or_default();
            omitted = Some((rest.len(), rest.iter().map(|s| s.count).sum()));
            break;
        }
        text.push_str(&head);
        let mut n_shown = 0u64;
        for sample in &section.samples {
            let item = sample_item(sample);
            if text.len() + item.len() + FOOTER_RESERVE > max_bytes {
                break;
            }
            text.push_str(&item);
            n_shown += 1;
        }
        let n_more = section.count.saturating_sub(n_shown);
        if n_more > 0 && n_shown > 0 {
            text.push_str(&format!("- and {n_more} more\n"));
        }
    }
    if let Some((n_sections, n_events)) = omitted {
        text.push_str(&format!(
            "\nand {} more ({})\n",
            plural(n_sections as u64, "rule"),
            plural(n_events, "alert")
        ));
    }
    cut_to(text, max_bytes)
}

/// A section's heading and facts.
fn markdown_heading(section: &Section) -> String {
    let first = match &section.heading {
        Heading::Named { name, facts } => {
            let mut line = format!("**{name}**");
            for fact in facts {
                line.push_str(" · ");
                line.push_str(fact);
            }
            line
        }
        Heading::Custom(text) => text.clone(),
    };
    let facts: Vec<String> = section
        .facts
        .iter()
        .map(|fact| {
            let mut items: Vec<String> = fact
                .items
                .iter()
                .map(|item| {
                    if fact.code {
                        format!("`{item}`")
                    } else {
                        item.clone()
                    }
                })
                .collect();
            if fact.n_more > 0 {
                items.push(format!("and {} more", fact.n_more));
            }
            format!("{}: {}", fact.label, items.join(", "))
        })
        .collect();
    format!("\n{first}\n\n{}\n\n", facts.join(" · "))
}

/// A sample as a list item; continuation lines are indented to stay in the item.
fn sample_item(sample: &str) -> String {
    let text = cut_to(sample.to_string(), MAX_SAMPLE_BYTES);
    format!("- {}\n", text.trim_end().replace('\n', "\n  "))
}

/// "1 alert", "2 alerts".
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `text` cut to at most `max_bytes` at a character boundary (at a line end when one is close),
/// ending with "…" when cut.
pub fn cut_to(mut text: String, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text;
    }
    let ellipsis = "…";
    let mut end = max_bytes.saturating_sub(ellipsis.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    if let Some(newline) = text.get(..end).and_then(|head| head.rfind('\n')) {
        if newline + 200 >= end {
            end = newline + 1;
        }
    }
    text.truncate(end);
    if text.len() + ellipsis.len() <= max_bytes {
        text.push_str(ellipsis);
    }
    text
}

#[cfg(test)]
mod tests {
    use crate::dingtalk::draft::{
        Body, DEFAULT_MAX_TEXT_BYTES, Draft, Fact, Heading, MsgType, Note, Section, compose,
        cut_to, markdown, title,
    };
    use crate::dingtalk::{self, Mentions, Message};

    fn section(name: &str, count: u64, samples: usize) -> Section {
        Section {
            heading: Heading::Named {
                name: name.into(),
                facts: vec!["warning".into(), format!("{count}×")],
            },
            facts: vec![Fact {
                label: "files".into(),
                items: vec!["/var/log/a.log".into()],
                n_more: 0,
                code: true,
            }],
            samples: (0..samples).map(|i| format!("{name} sample {i}")).collect(),
            count,
        }
    }

    #[test]
    fn one_event_is_its_title_and_text() {
        let draft = Draft {
            title: "oom title".into(),
            body: Body::Event("sample killed".into()),
            mentions: Mentions::default(),
            notes: Vec::new(),
        };
        assert_eq!(
            markdown(&draft, 20_000),
            "#### oom title\n\nsample killed\n"
        );
    }

    #[test]
    fn a_summary_lists_sections_samples_and_exact_rests() {
        let draft = Draft {
            title: "[warning] 12 alerts from 2 rules".into(),
            body: Body::Summary(vec![section("a", 10, 2), section("b", 2, 2)]),
            mentions: Mentions::default(),
            notes: Vec::new(),
        };
        assert_eq!(
            markdown(&draft, 20_000),
            "#### [warning] 12 alerts from 2 rules\n\
             \n**a** · warning · 10×\n\nfiles: `/var/log/a.log`\n\n\
             - a sample 0\n- a sample 1\n- and 8 more\n\
             \n**b** · warning · 2×\n\nfiles: `/var/log/a.log`\n\n\
             - b sample 0\n- b sample 1\n"
        );
    }

    #[test]
    fn sections_that_do_not_fit_are_counted_whole() {
        let sections: Vec<Section> = (0..40)
            .map(|i| section(&format!("r{i:02}"), i + 1, 3))
            .collect();
        let total: u64 = (1..=40).sum();
        let draft = Draft {
            title: format!("[warning] {total} alerts from 40 rules"),
            body: Body::Summary(sections),
            mentions: Mentions::default(),
            notes: Vec::new(),
        };
        let text = markdown(&draft, 2_000);
        assert!(text.len() <= 2_000);
        let shown: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with("**r"))
            .map(|l| {
                l.split(" · ")
                    .nth(2)
                    .unwrap()
                    .trim_end_matches('×')
                    .parse()
                    .unwrap()
            })
            .collect();
        let footer = text.lines().last().unwrap();
        let words: Vec<&str> = footer.split(' ').collect();
        let n_rules: u64 = words[1].parse().unwrap();
        let n_alerts: u64 = words[4].trim_start_matches('(').parse().unwrap();
        assert_eq!(shown.len() as u64 + n_rules, 40, "{footer}");
        assert_eq!(shown.iter().sum::<u64>() + n_alerts, total, "{footer}");
    }

    #[test]
    fn compose_shrinks_until_the_whole_request_fits() {
        // Quotes and newlines double in JSON and in hard breaks: the worst case for the budget.
        let noisy = "\"q\" ".repeat(200);
        let sections: Vec<Section> = (0..60)
            .map(|r| Section {
                samples: (0..8)
                    .map(|s| format!("{r}-{s} {noisy}\n{noisy}"))
                    .collect(),
                ..section(&format!("rule-{r:02}"), 8, 0)
            })
            .collect();
        let draft = Draft {
            title: "[warning] 480 alerts from 60 rules".into(),
            body: Body::Summary(sections),
            mentions: Mentions {
                mobiles: vec!["13800000000".into()],
                ..Mentions::default()
            },
            notes: Vec::new(),
        };
        let keywords = vec!["告警".to_string()];
        let unshrunk = Message::markdown(
            title(&draft),
            markdown(&draft, DEFAULT_MAX_TEXT_BYTES),
            Mentions::default(),
        );
        assert!(
            !dingtalk::fits_uncut(&keywords, &unshrunk),
            "the test needs a big draft"
        );
        let message = compose(&draft, MsgType::Markdown, &keywords);
        assert!(dingtalk::fits_uncut(&keywords, &message));
        let body = dingtalk::body(&keywords, &message).unwrap();
        assert!(body.len() <= dingtalk::MAX_BODY_BYTES);
        assert!(!body.contains("… truncated"), "shrunk, not cut");
    }

    #[test]
    fn cutting_respects_characters_and_the_limit() {
        let text = "日本語".repeat(100);
        for max in [0, 1, 2, 3, 4, 10, 299] {
            let cut = cut_to(text.clone(), max);
            assert!(cut.len() <= max, "{max}: {}", cut.len());
        }
        assert_eq!(cut_to("short".into(), 10), "short");
    }

    #[test]
    fn notes_mark_the_title_and_close_the_text_whatever_the_budget() {
        let draft = Draft {
            title: "[warning] 12 alerts from 2 rules".into(),
            body: Body::Summary(vec![section("a", 10, 5), section("b", 2, 2)]),
            mentions: Mentions::default(),
            notes: vec![
                Note::PossibleRepeat,
                Note::Degraded {
                    reason: "no space left on device".into(),
                },
            ],
        };
        assert_eq!(
            title(&draft),
            "[warning] 12 alerts from 2 rules (possible repeat)"
        );
        for budget in [20_000, 600] {
            let text = markdown(&draft, budget);
            assert!(text.len() <= budget, "{budget}: {}", text.len());
            assert!(
                text.starts_with("#### [warning] 12 alerts from 2 rules (possible repeat)\n"),
                "{text}"
            );
            assert!(
                text.ends_with(
                    "> ⚠ delivery degraded: dingtail cannot write its state (no space left on \
                     device); a restart may repeat or lose events\n"
                ),
                "{text}"
            );
            assert!(text.contains("\n> ⚠ possible repeat: "), "{text}");
        }
    }
}
