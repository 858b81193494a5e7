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
mod tests {
    use serde_json::{Value, json};

    use crate::dingtalk::message::{
        BtnOrientation, Button, Buttons, FeedLink, Mentions, Message, MessageError,
    };

    fn json_of(message: &Message) -> Value {
        serde_json::from_str(&message.to_json()).unwrap()
    }

    fn mobile(m: &str) -> Mentions {
        Mentions {
            mobiles: vec![m.into()],
            ..Mentions::default()
        }
    }

    #[test]
    fn text_matches_the_spec_example() {
        let message = Message::text(
            "[ALERT] nginx 5xx rate high on web-3 @13800000000",
            mobile("13800000000"),
        );
        assert_eq!(
            json_of(&message),
            json!({"msgtype":"text",
             "text":{"content":"[ALERT] nginx 5xx rate high on web-3 @13800000000"},
             "at":{"atMobiles":["13800000000"],"atUserIds":[],"isAtAll":false}})
        );
    }

    #[test]
    fn link_matches_the_spec_example() {
        let message = Message::link(
            "Disk almost full",
            "/var at 97% on db-1",
            "https://grafana.example/d/abc",
            "",
        );
        assert_eq!(
            json_of(&message),
            json!({"msgtype":"link",
             "link":{"title":"Disk almost full","text":"/var at 97% on db-1",
                     "messageUrl":"https://grafana.example/d/abc","picUrl":""}})
        );
    }

    #[test]
    fn markdown_matches_the_spec_example() {
        let message = Message::markdown(
            "ERROR in payments",
            "#### ERROR in payments\n\n> 12 errors in 1 min\n\n@13800000000",
            mobile("13800000000"),
        );
        // The spec's example omits the empty `atUserIds`; we always send all three `at` fields.
        assert_eq!(
            json_of(&message),
            json!({"msgtype":"markdown",
             "markdown":{"title":"ERROR in payments","text":"#### ERROR in payments\n\n> 12 errors in 1 min\n\n@13800000000"},
             "at":{"atMobiles":["13800000000"],"atUserIds":[],"isAtAll":false}})
        );
    }

    #[test]
    fn action_card_with_one_button_matches_the_spec_example() {
        let message = Message::action_card(
            "Build failed",
            "### Build #42 failed\n\nstage: test",
            Buttons::Single {
                title: "Open log".into(),
                url: "https://ci.example/42".into(),
            },
        );
        assert_eq!(
            json_of(&message),
            json!({"msgtype":"actionCard",
             "actionCard":{"title":"Build failed","text":"### Build #42 failed\n\nstage: test",
                           "btnOrientation":"0","singleTitle":"Open log","singleURL":"https://ci.example/42"}})
        );
    }

    #[test]
    fn action_card_with_several_buttons_matches_the_spec_example() {
        let mut message = Message::action_card(
            "Build failed",
            "### Build #42 failed",
            Buttons::Several(vec![
                Button {
                    title: "Log".into(),
                    url: "https://ci.example/42/log".into(),
                },
                Button {
                    title: "Retry".into(),
                    url: "https://ci.example/42/retry".into(),
                },
            ]),
        );
        if let Message::ActionCard {
            orientation,
            hide_avatar,
            ..
        } = &mut message
        {
            *orientation = BtnOrientation::Horizontal;
            *hide_avatar = Some(false);
        }
        assert_eq!(
            json_of(&message),
            json!({"msgtype":"actionCard",
             "actionCard":{"title":"Build failed","text":"### Build #42 failed",
                           "btnOrientation":"1","hideAvatar":"0",
                           "btns":[{"title":"Log","actionURL":"https://ci.example/42/log"},
                                   {"title":"Retry","actionURL":"https://ci.example/42/retry"}]}})
        );
    }

    #[test]
    fn feed_card_matches_the_spec_example() {
        let message = Message::feed_card(vec![
            FeedLink {
                title: "web-3: 5xx burst".into(),
                message_url: "https://grafana.example/1".into(),
                pic_url: "https://img.example/a.png".into(),
            },
            FeedLink {
                title: "db-1: disk 97%".into(),
                message_url: "https://grafana.example/2".into(),
                pic_url: "https://img.example/b.png".into(),
            },
        ]);
        assert_eq!(
            json_of(&message),
            json!({"msgtype":"feedCard",
             "feedCard":{"links":[
               {"title":"web-3: 5xx burst","messageURL":"https://grafana.example/1","picURL":"https://img.example/a.png"},
               {"title":"db-1: disk 97%","messageURL":"https://grafana.example/2","picURL":"https://img.example/b.png"}]}})
        );
    }

    #[test]
    fn is_at_all_is_a_json_boolean() {
        let message = Message::text(
            "x",
            Mentions {
                all: true,
                ..Mentions::default()
            },
        );
        assert_eq!(json_of(&message)["at"]["isAtAll"], Value::Bool(true));
    }

    #[test]
    fn mentions_on_link_and_feed_card_are_an_error() {
        let link = Message::link("t", "x", "https://a.example", "");
        assert_eq!(
            link.clone().mention(mobile("1")),
            Err(MessageError::MentionsUnsupported { msgtype: "link" })
        );
        assert_eq!(link.clone().mention(Mentions::default()), Ok(link));
        let feed = Message::feed_card(vec![]);
        assert!(matches!(
            feed.mention(mobile("1")),
            Err(MessageError::MentionsUnsupported {
                msgtype: "feedCard"
            })
        ));
        let text = Message::text("x", Mentions::default())
            .mention(mobile("1"))
            .unwrap();
        assert_eq!(text.at(), Some(&mobile("1")));
    }

    #[test]
    fn empty_required_fields_are_named() {
        assert_eq!(
            Message::markdown("", "x", Mentions::default()).validate(),
            Err(MessageError::Empty {
                msgtype: "markdown",
                field: "title"
            })
        );
        assert_eq!(
            Message::action_card("t", "x", Buttons::Several(vec![])).validate(),
            Err(MessageError::Empty {
                msgtype: "actionCard",
                field: "btns"
            })
        );
        assert!(Message::text("x", Mentions::default()).validate().is_ok());
    }
}
