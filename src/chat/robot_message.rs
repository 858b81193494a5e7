//! `RobotMessage`: what someone said to the app robot, decoded from the callback JSON that both
//! Stream frames (as their `data`) and HTTP callbacks (as their body) carry (RA §6.2).
//!
//! Only the fields dingtail acts on are kept, typed: the text (trimmed, because DingTalk puts a
//! space before it when the robot is @-ed first), who sent it ([`Author`]), where
//! ([`Conversation`]) and where a reply may go ([`SessionWebhook`], a secret URL with an expiry).
//! Decoding is tolerant where DingTalk is loose (numbers sent as strings, absent optional fields,
//! an outsider's empty `senderStaffId`) and strict only about what dingtail cannot act without
//! (`msgId`, `conversationId`). Nothing here panics on hostile input; every field is attacker
//! text and is only ever logged with `{:?}`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value;

use crate::config::is_loopback;
use crate::secret::Secret;

/// Who sent a message. `nick` is what replies and logs name; `staff_id` is what `allow.users`
/// holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Author {
    /// `senderNick`, the display name (may be empty).
    pub nick: String,
    /// `senderStaffId`; `None` for people outside the organisation (DingTalk sends it empty).
    pub staff_id: Option<String>,
    /// `isAdmin`: the sender administers the group.
    pub is_admin: bool,
}

/// Where a message was said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// `conversationId`, what `allow.conversations` holds.
    pub id: String,
    /// One-to-one or group.
    pub kind: ConversationKind,
    /// `conversationTitle` (groups only).
    pub title: Option<String>,
}

/// `conversationType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConversationKind {
    /// `"1"`: a one-to-one chat with the robot.
    OneToOne,
    /// `"2"`: a group chat (only messages that @ the robot arrive).
    Group,
    /// Anything else DingTalk may add.
    Other,
}

/// Where a reply to one message may be POSTed, and until when (`sessionWebhook`,
/// `sessionWebhookExpiredTime`). The URL carries a session token, so it is a [`Secret`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionWebhook {
    url: Secret,
    expires_at: SystemTime,
}

/// Why a reply cannot go through a session webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRefusal {
    /// The message carried no usable `sessionWebhook`.
    #[error("the message carries no usable sessionWebhook")]
    Missing,
    /// `sessionWebhookExpiredTime` has passed (DingTalk would answer 300001).
    #[error("the sessionWebhook expired {0:?} ago")]
    Expired(Duration),
}

impl SessionWebhook {
    /// A webhook at `url` usable until `expires_at`; `None` unless `url` is https to DingTalk
    /// (`dingtalk.com` or a host under it), or http to a loopback host (tests' stand-ins): a
    /// reply is never sent in clear across a network, and a forged callback cannot make the
    /// daemon post its answers (a `status`) to a host of the forger's choosing.
    pub fn new(url: &str, expires_at: SystemTime) -> Option<SessionWebhook> {
        let parsed = url::Url::parse(url).ok()?;
        let allowed = match parsed.scheme() {
            "https" => parsed.host_str().is_some_and(|host| {
                let host = host.trim_end_matches('.').to_ascii_lowercase();
                host == "dingtalk.com" || host.ends_with(".dingtalk.com")
            }),
            "http" => is_loopback(&parsed),
            _ => false,
        };
        allowed.then(|| SessionWebhook {
            url: Secret::new(url),
            expires_at,
        })
    }

    /// The URL, while it is still valid at `now`.
    ///
    /// # Errors
    /// [`WebhookRefusal::Expired`] once `expires_at` has passed.
    pub fn target(&self, now: SystemTime) -> Result<&Secret, WebhookRefusal> {
        match now.duration_since(self.expires_at) {
            Ok(late) => Err(WebhookRefusal::Expired(late)),
            Err(_) => Ok(&self.url),
        }
    }

    /// When it stops working.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

/// One message said to the robot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RobotMessage {
    /// `msgId`, unique per message.
    pub msg_id: String,
    /// `msgtype` (`text`, `richText`, `picture`, …).
    pub msgtype: String,
    /// The text, trimmed: `text.content`, or the text parts of a `richText`; empty for pictures
    /// and other kinds.
    pub text: String,
    /// Who said it.
    pub author: Author,
    /// Where.
    pub conversation: Conversation,
    /// `createAt`, when DingTalk received it.
    pub created_at: Option<SystemTime>,
    /// Where a reply may go, when the message carried a usable one.
    pub session_webhook: Option<SessionWebhook>,
}

/// Why a payload is not a usable robot message. Never contains the payload (it may hold a
/// session webhook).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON, or not an object of the expected shape.
    #[error("the robot message is not valid JSON: {0}")]
    Json(String),
    /// A field dingtail cannot act without is absent or empty.
    #[error("the robot message has no `{0}`")]
    Missing(&'static str),
}

/// The wire shape (RA §6.2); every field optional so that one odd field never loses the rest.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    msg_id: Option<String>,
    msgtype: Option<String>,
    text: Option<WireText>,
    content: Option<Value>,
    conversation_id: Option<String>,
    conversation_type: Option<Value>,
    conversation_title: Option<String>,
    sender_nick: Option<String>,
    sender_staff_id: Option<String>,
    is_admin: Option<Value>,
    create_at: Option<Value>,
    session_webhook: Option<String>,
    session_webhook_expired_time: Option<Value>,
}

#[derive(Deserialize)]
struct WireText {
    content: Option<String>,
}

impl RobotMessage {
    /// Decodes a callback body (or a Stream frame's `data`).
    ///
    /// # Errors
    /// [`PayloadError`] when it is not JSON or lacks `msgId` or `conversationId`.
    pub fn parse(json: &[u8]) -> Result<RobotMessage, PayloadError> {
        let wire: Wire =
            serde_json::from_slice(json).map_err(|err| PayloadError::Json(describe(&err)))?;
        let msg_id = non_empty(wire.msg_id).ok_or(PayloadError::Missing("msgId"))?;
        let conversation_id =
            non_empty(wire.conversation_id).ok_or(PayloadError::Missing("conversationId"))?;
        let msgtype = wire.msgtype.unwrap_or_default();
        let text = match msgtype.as_str() {
            "text" => wire.text.and_then(|t| t.content).unwrap_or_default(),
            "richText" => rich_text(wire.content.as_ref()),
            _ => String::new(),
        };
        let kind = match loose_text(wire.conversation_type.as_ref()).as_deref() {
            Some("1") => ConversationKind::OneToOne,
            Some("2") => ConversationKind::Group,
            _ => ConversationKind::Other,
        };
        let is_admin = match wire.is_admin {
            Some(Value::Bool(admin)) => admin,
            Some(Value::String(text)) => text.eq_ignore_ascii_case("true"),
            _ => false,
        };
        let session_webhook = match (
            wire.session_webhook,
            loose_ms(wire.session_webhook_expired_time.as_ref()),
        ) {
            (Some(url), Some(expires_at)) => SessionWebhook::new(url.trim(), expires_at),
            _ => None,
        };
        Ok(RobotMessage {
            msg_id,
            msgtype,
            text: text.trim().to_owned(),
            author: Author {
                nick: wire.sender_nick.unwrap_or_default(),
                staff_id: non_empty(wire.sender_staff_id),
                is_admin,
            },
            conversation: Conversation {
                id: conversation_id,
                kind,
                title: non_empty(wire.conversation_title),
            },
            created_at: loose_ms(wire.create_at.as_ref()),
            session_webhook,
        })
    }
}

/// A JSON error without the values serde quotes (they may be secrets): its kind and position.
pub(crate) fn describe(err: &serde_json::Error) -> String {
    let kind = match err.classify() {
        serde_json::error::Category::Io => "cannot read",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected shape",
        serde_json::error::Category::Eof => "unexpected end",
    };
    format!("{kind} at line {} column {}", err.line(), err.column())
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// A string or a number, as text.
fn loose_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(text.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Milliseconds since the epoch, written as a number or a string.
fn loose_ms(value: Option<&Value>) -> Option<SystemTime> {
    let ms = match value? {
        Value::Number(n) => n.as_u64()?,
        Value::String(text) => text.trim().parse::<u64>().ok()?,
        _ => return None,
    };
    UNIX_EPOCH.checked_add(Duration::from_millis(ms))
}

/// The text parts of a `richText` message (`content.richText[].text`), joined by spaces.
fn rich_text(content: Option<&Value>) -> String {
    let parts = content
        .and_then(|c| c.get("richText"))
        .and_then(Value::as_array);
    parts
        .map(|parts| {
            parts
                .iter()
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use serde_json::{Value, json};

    use crate::chat::robot_message::{
        ConversationKind, PayloadError, RobotMessage, SessionWebhook, WebhookRefusal,
    };

    /// A group text message @-ing the robot, with the fields of RA §6.2 (times as numbers).
    pub(crate) fn group_text(content: &str) -> Value {
        json!({
            "msgtype": "text",
            "text": {"content": content},
            "msgId": "msgA1b2C3==",
            "createAt": 1_700_000_000_000_u64,
            "conversationType": "2",
            "conversationId": "cidGroup1==",
            "conversationTitle": "ops on call",
            "senderId": "$:LWCP_v1:$abc",
            "senderNick": "张三",
            "senderStaffId": "0123",
            "senderCorpId": "dingcorp",
            "chatbotCorpId": "dingcorp",
            "chatbotUserId": "$:LWCP_v1:$bot",
            "robotCode": "dingbot",
            "isAdmin": true,
            "isInAtList": true,
            "atUsers": [{"dingtalkId": "$:LWCP_v1:$bot"}],
            "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=zz9session",
            "sessionWebhookExpiredTime": 1_700_005_400_000_u64,
        })
    }

    fn parse(value: &Value) -> Result<RobotMessage, PayloadError> {
        RobotMessage::parse(value.to_string().as_bytes())
    }

    #[test]
    fn a_group_text_message_decodes_with_its_text_trimmed() {
        let message = parse(&group_text("  mute nginx-5xx 1h \n")).unwrap();
        assert_eq!(message.msg_id, "msgA1b2C3==");
        assert_eq!(message.text, "mute nginx-5xx 1h");
        assert_eq!(message.author.nick, "张三");
        assert_eq!(message.author.staff_id.as_deref(), Some("0123"));
        assert!(message.author.is_admin);
        assert_eq!(message.conversation.id, "cidGroup1==");
        assert_eq!(message.conversation.kind, ConversationKind::Group);
        assert_eq!(message.conversation.title.as_deref(), Some("ops on call"));
        assert_eq!(
            message.created_at,
            Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_000))
        );
        let webhook = message.session_webhook.as_ref().unwrap();
        assert_eq!(
            webhook.expires_at(),
            UNIX_EPOCH + Duration::from_millis(1_700_005_400_000)
        );
        let debug = format!("{message:?}");
        assert!(!debug.contains("zz9session"), "{debug}");
    }

    #[test]
    fn numbers_as_strings_an_outsider_and_rich_text_are_tolerated() {
        let mut value = group_text("");
        value["msgtype"] = json!("richText");
        value["content"] = json!({"richText": [{"text": "status"}, {"pictureDownloadCode": "x"}, {"text": "now"}]});
        value["createAt"] = json!("1700000000000");
        value["sessionWebhookExpiredTime"] = json!("1700005400000");
        value["conversationType"] = json!(1);
        value["senderStaffId"] = json!("");
        value["isAdmin"] = json!("false");
        let message = parse(&value).unwrap();
        assert_eq!(message.text, "status now");
        assert_eq!(message.author.staff_id, None);
        assert!(!message.author.is_admin);
        assert_eq!(message.conversation.kind, ConversationKind::OneToOne);
        assert!(message.session_webhook.is_some());
        assert!(message.created_at.is_some());
    }

    #[test]
    fn what_cannot_be_acted_on_is_an_error_that_echoes_nothing() {
        let mut value = group_text("status");
        value.as_object_mut().unwrap().remove("conversationId");
        assert_eq!(parse(&value), Err(PayloadError::Missing("conversationId")));
        value["conversationId"] = json!("c");
        value["msgId"] = json!("  ");
        assert_eq!(parse(&value), Err(PayloadError::Missing("msgId")));
        for bad in ["", "nul", "[1,2]", "{\"msgId\": 5}", "\"zz9session\""] {
            let err = RobotMessage::parse(bad.as_bytes()).unwrap_err();
            assert!(!err.to_string().contains("zz9"), "{err}");
        }
    }

    #[test]
    fn session_webhooks_are_https_or_loopback_and_refused_once_expired() {
        let expiry = UNIX_EPOCH + Duration::from_secs(1000);
        assert!(SessionWebhook::new("http://10.0.0.1/robot/sendBySession?s=1", expiry).is_none());
        assert!(SessionWebhook::new("file:///etc/passwd", expiry).is_none());
        // https only to DingTalk: a forged callback cannot send the answer elsewhere.
        assert!(SessionWebhook::new("https://evil.example/collect", expiry).is_none());
        assert!(SessionWebhook::new("https://dingtalk.com.evil.example/x", expiry).is_none());
        assert!(SessionWebhook::new("https://evildingtalk.com/x", expiry).is_none());
        assert!(
            SessionWebhook::new(
                "https://oapi.dingtalk.com/robot/sendBySession?session=1",
                expiry
            )
            .is_some()
        );
        assert!(SessionWebhook::new("not a url", expiry).is_none());
        let webhook = SessionWebhook::new("http://127.0.0.1:9/x?session=1", expiry).unwrap();
        assert!(webhook.target(expiry - Duration::from_secs(1)).is_ok());
        assert_eq!(
            webhook.target(expiry + Duration::from_secs(5)),
            Err(WebhookRefusal::Expired(Duration::from_secs(5)))
        );
        assert_eq!(
            webhook.target(expiry),
            Err(WebhookRefusal::Expired(Duration::ZERO))
        );
        let mut value = group_text("x");
        value["sessionWebhook"] = json!("http://203.0.113.9/robot/sendBySession?session=1");
        assert_eq!(parse(&value).unwrap().session_webhook, None);
    }
}
