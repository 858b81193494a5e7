//! The text of a [`Draft`] as each message kind shows it: DingTalk markdown (a `markdown`
//! message, an action card's text) or plain text (a `text` message), within a byte budget.
//!
//! Raw parts of the draft (title, names, fact items, link titles) are escaped here for the kind
//! (`dingtalk::escape`); rendered parts are used as they are when their markup is the kind's,
//! and made safe when it is not. No log text is ever put in a code span or fence: DingTalk's
//! phones do not render them (file names used to be shown in backticks).
//!
//! Within the budget a summary keeps its sections in order, each with as many samples as fit,
//! and says exactly how many samples ("and 8 more") and sections ("and 2 more rules (40 alerts)")
//! were left out. Pure: no I/O, no clock.

use std::borrow::Cow;

use crate::dingtalk::draft::{Body, Draft, Fact, Heading, Markup, Section, cut_to, title};
use crate::dingtalk::escape;

/// One sample's text is cut here, so one stack trace cannot push out every other sample.
const MAX_SAMPLE_BYTES: usize = 1024;
/// Kept free for the closing "and N more" line.
const FOOTER_RESERVE: usize = 96;

/// Which text a draft is laid out as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// A `markdown` message: markdown, with the link as a link line.
    Markdown,
    /// An action card's text: markdown, the link being the card's button.
    Card,
    /// A `text` message: plain text, the link written out.
    Text,
}

impl Layout {
    fn markup(self) -> Markup {
        match self {
            Layout::Markdown | Layout::Card => Markup::Markdown,
            Layout::Text => Markup::Plain,
        }
    }

    /// A raw value, escaped for this layout.
    fn raw(self, value: &str) -> String {
        escape::value(value, self.markup())
    }

    /// A part rendered in `from`, made safe for this layout.
    fn rendered(self, part: &str, from: Markup) -> Cow<'_, str> {
        match (from, self.markup()) {
            (Markup::Plain, Markup::Markdown) => escape::plain_to_markdown(part).into(),
            _ => Cow::Owned(part.to_string()),
        }
    }

    fn heading(self, title: &str) -> String {
        match self {
            Layout::Markdown | Layout::Card => format!("#### {}", self.raw(title)),
            Layout::Text => self.raw(title),
        }
    }

    /// The link line of a message or section (none in a card: there it is the button).
    fn link_line(self, draft_link: Option<&crate::dingtalk::draft::Link>) -> String {
        let Some(link) = draft_link else {
            return String::new();
        };
        match self {
            Layout::Markdown => format!(
                "[{}]({})\n",
                self.raw(&link.title),
                escape::markdown_link_destination(&link.url)
            ),
            Layout::Card => String::new(),
            Layout::Text => format!("{}: {}\n", self.raw(&link.title), link.url),
        }
    }
}

/// The text of `draft` laid out as `layout`, at most `max_bytes` long: the body, then the notes
/// about its delivery (never cut: the body gives way).
pub fn layout(draft: &Draft, layout: Layout, max_bytes: usize) -> String {
    let notes: String = draft
        .notes
        .iter()
        .map(|note| {
            let text = layout.raw(&note.text(draft.language));
            match layout {
                Layout::Markdown | Layout::Card => format!("\n> {text}\n"),
                Layout::Text => format!("\n{text}\n"),
            }
        })
        .collect();
    let max_bytes = max_bytes.saturating_sub(notes.len());
    let mut text = match &draft.body {
        Body::Event(text) => event(draft, text, layout, max_bytes),
        Body::Summary(sections) => summary(draft, sections, layout, max_bytes),
    };
    text.push_str(&notes);
    text
}

/// One event: its title, its text, its link.
fn event(draft: &Draft, text: &str, layout: Layout, max_bytes: usize) -> String {
    let head = format!("{}\n\n", layout.heading(&title(draft)));
    let link = layout.link_line(draft.link.as_ref());
    let link = if link.is_empty() {
        link
    } else {
        format!("\n{link}")
    };
    let text = layout.rendered(text, draft.markup);
    let room = max_bytes.saturating_sub(head.len() + link.len() + 1);
    let text = cut_to(text.trim_end().to_string(), room);
    cut_to(format!("{head}{text}\n{link}"), max_bytes)
}

/// A summary: sections in order, with samples as long as they fit, exact rests.
fn summary(draft: &Draft, sections: &[Section], layout: Layout, max_bytes: usize) -> String {
    let language = draft.language;
    let mut text = format!("{}\n", layout.heading(&title(draft)));
    let mut omitted: Option<(usize, u64)> = None;
    for (k, section) in sections.iter().enumerate() {
        let head = section_head(draft, section, layout);
        if text.len() + head.len() + FOOTER_RESERVE > max_bytes {
            let rest = sections.get(k..).unwrap_or_default();
            omitted = Some((rest.len(), rest.iter().map(|s| s.count).sum()));
            break;
        }
        text.push_str(&head);
        let mut n_shown = 0u64;
        for sample in &section.samples {
            let item = sample_item(&layout.rendered(sample, draft.markup));
            if text.len() + item.len() + FOOTER_RESERVE > max_bytes {
                break;
            }
            text.push_str(&item);
            n_shown += 1;
        }
        let n_more = section.count.saturating_sub(n_shown);
        if n_more > 0 && n_shown > 0 {
            text.push_str(&format!("- {}\n", language.and_more(n_more)));
        }
    }
    if let Some((n_sections, n_events)) = omitted {
        text.push_str(&format!(
            "\n{}\n",
            language.more_rules(n_sections as u64, n_events)
        ));
    }
    cut_to(text, max_bytes)
}

/// A section's heading, facts and link.
fn section_head(draft: &Draft, section: &Section, layout: Layout) -> String {
    let first = match &section.heading {
        Heading::Named { name, facts } => {
            let mut line = match layout {
                Layout::Markdown | Layout::Card => format!("**{}**", layout.raw(name)),
                Layout::Text => layout.raw(name),
            };
            for fact in facts {
                line.push_str(" · ");
                line.push_str(&layout.raw(fact));
            }
            line
        }
        Heading::Custom(text) => layout.rendered(text, draft.markup).into_owned(),
    };
    let facts: Vec<String> = section
        .facts
        .iter()
        .map(|fact| fact_line(draft, fact, layout))
        .collect();
    let link = layout.link_line(section.link.as_ref());
    match layout {
        Layout::Markdown | Layout::Card => {
            let mut head = format!("\n{first}\n\n");
            if !facts.is_empty() {
                head.push_str(&format!("{}\n\n", facts.join(" · ")));
            }
            if !link.is_empty() {
                head.push_str(&format!("{link}\n"));
            }
            head
        }
        Layout::Text => {
            let mut head = format!("\n{first}\n");
            if !facts.is_empty() {
                head.push_str(&format!("{}\n", facts.join(" · ")));
            }
            head.push_str(&link);
            head
        }
    }
}

/// `label: a, b, c, and 2 more`.
fn fact_line(draft: &Draft, fact: &Fact, layout: Layout) -> String {
    let language = draft.language;
    let mut items: Vec<String> = fact.items.iter().map(|item| layout.raw(item)).collect();
    if let Some(more) = &fact.more {
        items.push(layout.raw(more));
    }
    format!(
        "{}{}{}",
        layout.raw(&fact.label),
        language.colon(),
        items.join(language.list_separator())
    )
}

/// A sample as a list item; continuation lines are indented to stay in the item.
fn sample_item(sample: &str) -> String {
    let text = cut_to(sample.to_string(), MAX_SAMPLE_BYTES);
    format!("- {}\n", text.trim_end().replace('\n', "\n  "))
}
