//! `Draft`: a message before it has a kind. Rendering (the rules' templates, the summary of a
//! batch) produces a draft — a title, either one event's text or sections with their samples,
//! who to @ and an optional link — and [`compose`] turns it into the wire [`Message`] of the
//! chosen [`MsgType`] (`markdown`, `text` or `actionCard`), fitting it under DingTalk's body
//! limit.
//!
//! What is already text of a kind and what is a raw value: the parts rendered from templates (an
//! event's text, a custom heading, samples) were escaped for the draft's [`Markup`] when they
//! were rendered; the title, names, fact items and link titles are raw and escaped here for the
//! kind laid out (`dingtalk::escape`). A draft composed as a kind of another markup is made safe
//! for it: plain parts are escaped whole for markdown, markdown parts are shown as they are in a
//! text message (inert there).
//!
//! Fitting never changes a count: what does not fit is dropped whole (a sample, then whole
//! sections from the least important end) and replaced by "and N more", where N is exact; the
//! budget shrinks until the whole request, keyword and mentions included, fits uncut. Adding a
//! message kind means teaching this file (and `layout`) its layout; nothing else changes.
//!
//! Pure: no I/O, no clock.

use crate::dingtalk::layout::{Layout, layout};
use crate::dingtalk::limits::fits_uncut;
use crate::dingtalk::message::{BtnOrientation, Button, Buttons, Mentions, Message};
pub use crate::event::{Link, Markup, MsgType};
use crate::lang::Language;

/// A budget for a message's text that leaves room, under DingTalk's 20,000-byte body limit,
/// for the JSON envelope, the title, keywords and @-mentions (`body` enforces the exact limit).
pub const DEFAULT_MAX_TEXT_BYTES: usize = 18_000;
/// Below this budget a summary is not shrunk further (`body` cuts what is left).
const MIN_TEXT_BYTES: usize = 2_000;
/// An action card's buttons, at most (DingTalk documents no limit; its own templates use five).
const MAX_BUTTONS: usize = 5;

/// A message before it has a kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    /// The notification title (plain: one line, control bytes visible), also the message's
    /// heading.
    pub title: String,
    /// What the message says.
    pub body: Body,
    /// Who to @-mention.
    pub mentions: Mentions,
    /// A link to a dashboard or runbook (a lone event's).
    pub link: Option<Link>,
    /// What the rendered parts (event text, custom headings, samples) were escaped for.
    pub markup: Markup,
    /// The kind the renderer chose (a lone event's rule's, else the robot's).
    pub kind: MsgType,
    /// The language of the words the layout adds ("and N more").
    pub language: Language,
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
    fn title_mark(&self, language: Language) -> &'static str {
        match self {
            Note::PossibleRepeat => language.possible_repeat_mark(),
            Note::Degraded { .. } => "",
        }
    }

    /// The note as a line of text (raw: the layout escapes it).
    pub fn text(&self, language: Language) -> String {
        match self {
            Note::PossibleRepeat => language.possible_repeat().to_string(),
            Note::Degraded { reason } => language.degraded(reason),
        }
    }
}

/// The title of `draft` with the marks of its notes.
pub fn title(draft: &Draft) -> String {
    let mut title = draft.title.clone();
    title.extend(
        draft
            .notes
            .iter()
            .map(|note| note.title_mark(draft.language)),
    );
    title
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
    /// Facts under the heading, shown on one line (hosts, files, top values).
    pub facts: Vec<Fact>,
    /// A few rendered events, spread over the batch, oldest first.
    pub samples: Vec<String>,
    /// How many events the section stands for (samples and the rest).
    pub count: u64,
    /// The rule's link, if its samples have one.
    pub link: Option<Link>,
}

/// A section's first line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Heading {
    /// A name, emphasised, followed by facts: `**name** · critical · 2× · 12:00 → 12:05`.
    Named {
        /// The name (a rule's; raw).
        name: String,
        /// What follows it (dingtail's own words and numbers).
        facts: Vec<String>,
    },
    /// A heading its author wrote (a rule's `summary` template), rendered in the draft's markup.
    Custom(String),
}

/// A labelled list, shown as `label: a, b, c, and 2 more`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    /// The label (dingtail's words or a capture's name).
    pub label: String,
    /// The items shown (raw values: host names, file names, values from logs).
    pub items: Vec<String>,
    /// What follows the items, in dingtail's words ("and 2 more", "… (37 distinct)").
    pub more: Option<String>,
}

/// The wire message of `draft` as `msgtype`, fitted so that the request body for a robot with
/// `keywords` is sent whole: a summary drops samples and sections (saying exactly how many) until
/// it fits; one event's text is cut only when nothing else is left to drop. An action card needs
/// a button: without a link it is composed as markdown.
pub fn compose(draft: &Draft, msgtype: MsgType, keywords: &[String]) -> Message {
    let buttons = buttons(draft);
    let msgtype = match (msgtype, &buttons) {
        (MsgType::ActionCard, None) => MsgType::Markdown,
        (kind, _) => kind,
    };
    let mut budget = DEFAULT_MAX_TEXT_BYTES;
    loop {
        let message = build(draft, msgtype, buttons.as_ref(), budget);
        if budget <= MIN_TEXT_BYTES || fits_uncut(keywords, &message) {
            return message;
        }
        budget = budget * 3 / 4;
    }
}

/// The message of `draft` as `msgtype` with its text within `budget` bytes.
fn build(draft: &Draft, msgtype: MsgType, buttons: Option<&Buttons>, budget: usize) -> Message {
    let title = title(draft);
    let at = draft.mentions.clone();
    match (msgtype, buttons) {
        (MsgType::Text, _) => Message::Text {
            content: layout(draft, Layout::Text, budget),
            at,
        },
        (MsgType::ActionCard, Some(buttons)) => Message::ActionCard {
            title,
            text: layout(draft, Layout::Card, budget),
            buttons: buttons.clone(),
            orientation: BtnOrientation::Vertical,
            hide_avatar: None,
            at,
        },
        (MsgType::Markdown | MsgType::ActionCard, _) => Message::Markdown {
            title,
            text: layout(draft, Layout::Markdown, budget),
            at,
        },
    }
}

/// The buttons of `draft` as an action card: its link, or the distinct links of its sections.
fn buttons(draft: &Draft) -> Option<Buttons> {
    if let Some(link) = &draft.link {
        return Some(Buttons::Single {
            title: link.title.clone(),
            url: link.url.clone(),
        });
    }
    let Body::Summary(sections) = &draft.body else {
        return None;
    };
    let mut links: Vec<Button> = Vec::new();
    for link in sections.iter().filter_map(|s| s.link.as_ref()) {
        if links.len() < MAX_BUTTONS && !links.iter().any(|b| b.url == link.url) {
            links.push(Button {
                title: link.title.clone(),
                url: link.url.clone(),
            });
        }
    }
    match links.len() {
        0 => None,
        1 => links.pop().map(|b| Buttons::Single {
            title: b.title,
            url: b.url,
        }),
        _ => Some(Buttons::Several(links)),
    }
}

/// The markdown text of `draft`, at most `max_bytes` long (as a `markdown` message shows it).
pub fn markdown(draft: &Draft, max_bytes: usize) -> String {
    layout(draft, Layout::Markdown, max_bytes)
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
mod tests;
