//! `Message`: the five kinds of custom-robot message as typed values, and their exact wire JSON.
//!
//! DingTalk's field names are case-sensitive and inconsistent between kinds (`messageUrl` in a
//! link, `messageURL` in a feed card, `singleURL`, `actionURL`), so the callers never see them:
//! they build a `Message`, and the private `Wire*` structs below are the only place that spells
//! the JSON. `Message` itself does not derive `Serialize`; `to_json` turns it into the body as
//! given, while `dingtalk::body` first adds keywords and mentions and keeps it within the size
//! limit (`dingtalk::limits`).
//!
//! Mentions exist only where DingTalk supports them (text, markdown, action card): a link or a
//! feed card has no `at`, and asking for one through [`Message::mention`] is a
//! [`MessageError::MentionsUnsupported`] rather than a silently dropped notification.

use serde::Serialize;

pub use crate::event::Mentions;

/// One button of a several-button action card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Button {
    /// The button's label.
    pub title: String,
    /// Where a click goes (`actionURL`).
    pub url: String,
}

/// The buttons of an action card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Buttons {
    /// Whole-card jump (整体跳转): one button, `singleTitle` + `singleURL`.
    Single {
        /// The button's label.
        title: String,
        /// Where a click goes.
        url: String,
    },
    /// Independent jump (独立跳转): several buttons, `btns`.
    Several(Vec<Button>),
}

/// How the buttons of an action card are laid out (`btnOrientation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BtnOrientation {
    /// One under the other (`"0"`).
    #[default]
    Vertical,
    /// Side by side (`"1"`).
    Horizontal,
}

/// One entry of a feed card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedLink {
    /// The entry's text.
    pub title: String,
    /// Where a click goes (`messageURL`).
    pub message_url: String,
    /// The entry's picture (`picURL`); may be empty.
    pub pic_url: String,
}

/// A custom-robot message, one variant per DingTalk `msgtype`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// `text`: plain text, shown literally.
    Text {
        /// The text (`text.content`).
        content: String,
        /// Who to notify.
        at: Mentions,
    },
    /// `link`: a title, a short text and a click target; cannot mention anyone.
    Link {
        /// The link's title.
        title: String,
        /// The link's text (DingTalk shows only its beginning).
        text: String,
        /// Where a click goes (`messageUrl`).
        message_url: String,
        /// A picture (`picUrl`); may be empty.
        pic_url: String,
    },
    /// `markdown`: DingTalk's markdown subset.
    Markdown {
        /// Shown only in the conversation list and the notification, not in the message.
        title: String,
        /// The markdown text.
        text: String,
        /// Who to notify.
        at: Mentions,
    },
    /// `actionCard`: markdown text with one or several buttons.
    ActionCard {
        /// Shown only in the conversation list and the notification.
        title: String,
        /// The markdown text.
        text: String,
        /// One whole-card button or several independent ones.
        buttons: Buttons,
        /// Button layout.
        orientation: BtnOrientation,
        /// `hideAvatar` (legacy, maybe ignored by DingTalk); not sent when `None`.
        hide_avatar: Option<bool>,
        /// Who to notify.
        at: Mentions,
    },
    /// `feedCard`: a list of links with pictures; cannot mention anyone.
    FeedCard {
        /// The entries, in order.
        links: Vec<FeedLink>,
    },
}

/// Why a message cannot be turned into a request body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// @-mentions were asked for on a kind that cannot carry them.
    #[error("a {msgtype} message cannot @-mention anyone (only text, markdown and actionCard can)")]
    MentionsUnsupported {
        /// The DingTalk `msgtype`.
        msgtype: &'static str,
    },
    /// A field DingTalk requires is empty.
    #[error("the {field} of a {msgtype} message must not be empty")]
    Empty {
        /// The DingTalk `msgtype`.
        msgtype: &'static str,
        /// Which field, as DingTalk names it.
        field: &'static str,
    },
    /// Even with its text cut to nothing the body would exceed DingTalk's limit.
    #[error("the {msgtype} message is {bytes} bytes even with its text cut; the limit is {limit}")]
    TooLarge {
        /// The DingTalk `msgtype`.
        msgtype: &'static str,
        /// The smallest body size that could be reached.
        bytes: usize,
        /// The limit in bytes.
        limit: usize,
    },
}

impl Message {
    /// A `text` message.
    pub fn text(content: impl Into<String>, at: Mentions) -> Message {
        Message::Text {
            content: content.into(),
            at,
        }
    }

    /// A `markdown` message; `title` shows only in previews, `text` is the message.
    pub fn markdown(title: impl Into<String>, text: impl Into<String>, at: Mentions) -> Message {
        Message::Markdown {
            title: title.into(),
            text: text.into(),
            at,
        }
    }

    /// A `link` message (no mentions possible).
    pub fn link(
        title: impl Into<String>,
        text: impl Into<String>,
        message_url: impl Into<String>,
        pic_url: impl Into<String>,
    ) -> Message {
        Message::Link {
            title: title.into(),
            text: text.into(),
            message_url: message_url.into(),
            pic_url: pic_url.into(),
        }
    }

    /// An `actionCard` message, buttons vertical, avatar setting not sent, nobody mentioned.
    pub fn action_card(
        title: impl Into<String>,
        text: impl Into<String>,
        buttons: Buttons,
    ) -> Message {
        Message::ActionCard {
            title: title.into(),
            text: text.into(),
            buttons,
            orientation: BtnOrientation::Vertical,
            hide_avatar: None,
            at: Mentions::default(),
        }
    }

    /// A `feedCard` message (no mentions possible).
    pub fn feed_card(links: Vec<FeedLink>) -> Message {
        Message::FeedCard { links }
    }

    /// The message with `at` as its mentions (replacing any).
    ///
    /// # Errors
    /// [`MessageError::MentionsUnsupported`] when `at` mentions someone and the message is a link
    /// or a feed card.
    pub fn mention(mut self, new_at: Mentions) -> Result<Message, MessageError> {
        match &mut self {
            Message::Text { at, .. }
            | Message::Markdown { at, .. }
            | Message::ActionCard { at, .. } => {
                *at = new_at;
                Ok(self)
            }
            Message::Link { .. } | Message::FeedCard { .. } if new_at.is_empty() => Ok(self),
            Message::Link { .. } | Message::FeedCard { .. } => {
                Err(MessageError::MentionsUnsupported {
                    msgtype: self.msgtype(),
                })
            }
        }
    }

    /// The DingTalk `msgtype`.
    pub fn msgtype(&self) -> &'static str {
        match self {
            Message::Text { .. } => "text",
            Message::Link { .. } => "link",
            Message::Markdown { .. } => "markdown",
            Message::ActionCard { .. } => "actionCard",
            Message::FeedCard { .. } => "feedCard",
        }
    }

    /// Who the message mentions (nobody for a link or a feed card).
    pub fn at(&self) -> Option<&Mentions> {
        match self {
            Message::Text { at, .. }
            | Message::Markdown { at, .. }
            | Message::ActionCard { at, .. } => Some(at),
            Message::Link { .. } | Message::FeedCard { .. } => None,
        }
    }

    /// The title shown in notifications (none for a text message or a feed card).
    pub fn title(&self) -> Option<&str> {
        match self {
            Message::Link { title, .. }
            | Message::Markdown { title, .. }
            | Message::ActionCard { title, .. } => Some(title),
            Message::Text { .. } | Message::FeedCard { .. } => None,
        }
    }

    /// The message's main text: what is cut when the body is too large, and where keywords
    /// and mentions go (empty for a feed card).
    pub fn main_text(&self) -> &str {
        match self {
            Message::Text { content, .. } => content,
            Message::Link { text, .. }
            | Message::Markdown { text, .. }
            | Message::ActionCard { text, .. } => text,
            Message::FeedCard { .. } => "",
        }
    }

    /// Checks the fields DingTalk requires.
    ///
    /// # Errors
    /// [`MessageError::Empty`] naming the first empty required field.
    pub fn validate(&self) -> Result<(), MessageError> {
        let msgtype = self.msgtype();
        let required: Vec<(&'static str, &str)> = match self {
            Message::Text { content, .. } => vec![("content", content)],
            Message::Link {
                title,
                text,
                message_url,
                ..
            } => vec![
                ("title", title),
                ("text", text),
                ("messageUrl", message_url),
            ],
            Message::Markdown { title, text, .. } => vec![("title", title), ("text", text)],
            Message::ActionCard {
                title,
                text,
                buttons,
                ..
            } => {
                let mut fields = vec![("title", title.as_str()), ("text", text.as_str())];
                match buttons {
                    Buttons::Single { title, url } => {
                        fields.push(("singleTitle", title));
                        fields.push(("singleURL", url));
                    }
                    Buttons::Several(buttons) => {
                        if buttons.is_empty() {
                            fields.push(("btns", ""));
                        }
                        for button in buttons {
                            fields.push(("btns title", &button.title));
                            fields.push(("btns actionURL", &button.url));
                        }
                    }
                }
                fields
            }
            Message::FeedCard { links } => {
                let mut fields = Vec::new();
                if links.is_empty() {
                    fields.push(("links", ""));
                }
                for link in links {
                    fields.push(("links title", link.title.as_str()));
                    fields.push(("links messageURL", link.message_url.as_str()));
                }
                fields
            }
        };
        match required.into_iter().find(|(_, value)| value.is_empty()) {
            Some((field, _)) => Err(MessageError::Empty { msgtype, field }),
            None => Ok(()),
        }
    }

    /// The request body exactly as the message stands: no keyword, mention text, line-break or
    /// size handling (that is `dingtalk::body`).
    pub fn to_json(&self) -> String {
        // Serialising these plain structs (strings, bools, vectors) cannot fail.
        serde_json::to_string(&self.wire()).unwrap_or_default()
    }

    fn wire(&self) -> Wire<'_> {
        match self {
            Message::Text { content, at } => Wire {
                msgtype: "text",
                text: Some(WireText { content }),
                link: None,
                markdown: None,
                action_card: None,
                feed_card: None,
                at: WireAt::of(at),
            },
            Message::Link {
                title,
                text,
                message_url,
                pic_url,
            } => Wire {
                link: Some(WireLink {
                    title,
                    text,
                    message_url,
                    pic_url,
                }),
                ..Wire::empty("link")
            },
            Message::Markdown { title, text, at } => Wire {
                markdown: Some(WireMarkdown { title, text }),
                at: WireAt::of(at),
                ..Wire::empty("markdown")
            },
            Message::ActionCard {
                title,
                text,
                buttons,
                orientation,
                hide_avatar,
                at,
            } => {
                let (single_title, single_url, btns) = match buttons {
                    Buttons::Single { title, url } => {
                        (Some(title.as_str()), Some(url.as_str()), None)
                    }
                    Buttons::Several(buttons) => (
                        None,
                        None,
                        Some(
                            buttons
                                .iter()
                                .map(|b| WireButton {
                                    title: &b.title,
                                    action_url: &b.url,
                                })
                                .collect(),
                        ),
                    ),
                };
                Wire {
                    action_card: Some(WireActionCard {
                        title,
                        text,
                        btn_orientation: match orientation {
                            BtnOrientation::Vertical => "0",
                            BtnOrientation::Horizontal => "1",
                        },
                        hide_avatar: hide_avatar.map(|hide| if hide { "1" } else { "0" }),
                        single_title,
                        single_url,
                        btns,
                    }),
                    at: WireAt::of(at),
                    ..Wire::empty("actionCard")
                }
            }
            Message::FeedCard { links } => Wire {
                feed_card: Some(WireFeedCard {
                    links: links
                        .iter()
                        .map(|l| WireFeedLink {
                            title: &l.title,
                            message_url: &l.message_url,
                            pic_url: &l.pic_url,
                        })
                        .collect(),
                }),
                ..Wire::empty("feedCard")
            },
        }
    }
}

#[derive(Serialize)]
struct Wire<'a> {
    msgtype: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<WireText<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<WireLink<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    markdown: Option<WireMarkdown<'a>>,
    #[serde(rename = "actionCard", skip_serializing_if = "Option::is_none")]
    action_card: Option<WireActionCard<'a>>,
    #[serde(rename = "feedCard", skip_serializing_if = "Option::is_none")]
    feed_card: Option<WireFeedCard<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<WireAt<'a>>,
}

impl Wire<'_> {
    fn empty(msgtype: &'static str) -> Self {
        Wire {
            msgtype,
            text: None,
            link: None,
            markdown: None,
            action_card: None,
            feed_card: None,
            at: None,
        }
    }
}

#[derive(Serialize)]
struct WireText<'a> {
    content: &'a str,
}

#[derive(Serialize)]
struct WireLink<'a> {
    title: &'a str,
    text: &'a str,
    #[serde(rename = "messageUrl")]
    message_url: &'a str,
    #[serde(rename = "picUrl")]
    pic_url: &'a str,
}

#[derive(Serialize)]
struct WireMarkdown<'a> {
    title: &'a str,
    text: &'a str,
}

#[derive(Serialize)]
struct WireActionCard<'a> {
    title: &'a str,
    text: &'a str,
    #[serde(rename = "btnOrientation")]
    btn_orientation: &'static str,
    #[serde(rename = "hideAvatar", skip_serializing_if = "Option::is_none")]
    hide_avatar: Option<&'static str>,
    #[serde(rename = "singleTitle", skip_serializing_if = "Option::is_none")]
    single_title: Option<&'a str>,
    #[serde(rename = "singleURL", skip_serializing_if = "Option::is_none")]
    single_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    btns: Option<Vec<WireButton<'a>>>,
}

#[derive(Serialize)]
struct WireButton<'a> {
    title: &'a str,
    #[serde(rename = "actionURL")]
    action_url: &'a str,
}

#[derive(Serialize)]
struct WireFeedCard<'a> {
    links: Vec<WireFeedLink<'a>>,
}

#[derive(Serialize)]
struct WireFeedLink<'a> {
    title: &'a str,
    #[serde(rename = "messageURL")]
    message_url: &'a str,
    #[serde(rename = "picURL")]
    pic_url: &'a str,
}

/// `at` is sent only when someone is mentioned; then all three fields are present.
#[derive(Serialize)]
struct WireAt<'a> {
    #[serde(rename = "atMobiles")]
    at_mobiles: &'a [String],
    #[serde(rename = "atUserIds")]
    at_user_ids: &'a [String],
    #[serde(rename = "isAtAll")]
    is_at_all: bool,
}

impl<'a> WireAt<'a> {
    fn of(at: &'a Mentions) -> Option<WireAt<'a>> {
        (!at.is_empty()).then_some(WireAt {
            at_mobiles: &at.mobiles,
            at_user_ids: &at.user_ids,
            is_at_all: at.all,
        })
    }
}

#[cfg(test)]
mod tests;
