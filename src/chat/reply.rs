//! The message a reply is sent as: a `text` message that @-mentions the sender
//! (`at.atUserIds = [senderStaffId]`, as DingTalk's own SDKs reply), built with
//! `dingtalk::Message` so that `dingtalk` stays the only module that spells message JSON and
//! keeps it within 20,000 bytes. Pure.

use crate::chat::robot_message::Author;
use crate::dingtalk::{Mentions, Message, body, escape};

/// The synchronous HTTP answer that posts nothing (`{"msgtype":"empty"}`, RA §6.4).
pub const EMPTY_REPLY: &str = r#"{"msgtype":"empty"}"#;

/// `text` as a message to the conversation, @-mentioning `author` when they have a staff id.
/// The text passes through [`escape::plain`]: a value it quotes from a log or a chat (a
/// capture in an incident's key, a rule's rendered test line) cannot mention anyone or hide
/// control characters; only the sender is mentioned, through `at`.
pub fn reply_message(text: &str, author: &Author) -> Message {
    let text = if text.trim().is_empty() {
        "(no answer)".to_owned()
    } else {
        // A rendered line quoted in a `test` answer has its mentions and addresses broken already.
        escape::plain(&escape::without_breaks(text))
    };
    let mentions = Mentions {
        user_ids: author.staff_id.iter().cloned().collect(),
        ..Mentions::default()
    };
    Message::text(text, mentions)
}

/// The JSON body of [`reply_message`], cut to DingTalk's size limit; [`EMPTY_REPLY`] if it
/// cannot be built (it always can: the text is never empty).
pub fn reply_body(text: &str, author: &Author) -> String {
    body(&[], &reply_message(text, author)).unwrap_or_else(|_| EMPTY_REPLY.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::chat::reply::reply_body;
    use crate::chat::robot_message::Author;

    #[test]
    fn a_reply_mentions_the_sender_by_staff_id() {
        let author = Author {
            nick: "张三".into(),
            staff_id: Some("0123".into()),
            is_admin: false,
        };
        let body: Value =
            serde_json::from_str(&reply_body("张三 muted x for 1h", &author)).unwrap();
        assert_eq!(
            body,
            json!({
                "msgtype": "text",
                "text": {"content": "张三 muted x for 1h\n@0123"},
                "at": {"atMobiles": [], "atUserIds": ["0123"], "isAtAll": false},
            })
        );
    }

    #[test]
    fn quoted_values_cannot_mention_anyone_or_hide_control_characters() {
        let author = Author {
            nick: "张三".into(),
            staff_id: Some("0123".into()),
            is_admin: false,
        };
        let body: Value = serde_json::from_str(&reply_body(
            "api user=@13800000000\u{202e} since 14:05\nsecond line",
            &author,
        ))
        .unwrap();
        let content = body["text"]["content"].as_str().unwrap();
        assert!(!content.contains("@13800000000"), "{content}");
        assert!(!content.contains('\u{202e}'), "{content}");
        assert!(content.contains("\nsecond line\n@0123"), "{content}");
        assert_eq!(body["at"]["atUserIds"], json!(["0123"]));
        assert_eq!(body["at"]["atMobiles"], json!([]));
    }

    #[test]
    fn an_outsider_is_not_mentioned_and_huge_replies_are_cut() {
        let outsider = Author {
            nick: String::new(),
            staff_id: None,
            is_admin: false,
        };
        let body: Value =
            serde_json::from_str(&reply_body(&"x".repeat(30_000), &outsider)).unwrap();
        assert!(body.get("at").is_none(), "{body}");
        assert!(body.to_string().len() <= 20_000);
        let body: Value = serde_json::from_str(&reply_body("  ", &outsider)).unwrap();
        assert_eq!(body["text"]["content"], "(no answer)");
    }
}
