//! Helpers of the chat tests (issue 16): robot messages as DingTalk sends them (RA §6.2, the
//! same JSON in a Stream frame's `data` and an HTTP callback's body) and signed HTTP callbacks
//! (RA §6.3: headers `timestamp` and `sign = base64(HMAC-SHA256(appSecret,
//! "{timestamp}\n{appSecret}"))`, not URL-encoded).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::support::standin::expected_sign;

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("fits")
}

/// Who says it and where a reply may go.
#[derive(Clone, Debug)]
pub struct Said {
    /// `senderNick`.
    pub nick: String,
    /// `senderStaffId` (empty for an outsider).
    pub staff_id: String,
    /// `conversationId`.
    pub conversation: String,
    /// `isAdmin`.
    pub is_admin: bool,
    /// `sessionWebhook`.
    pub session_webhook: String,
    /// `sessionWebhookExpiredTime`, ms.
    pub expires_ms: u64,
}

impl Said {
    /// 张三 (staff id 0123), a group admin, in `cidOps==`, replies to `session_webhook` for 90
    /// minutes.
    pub fn by_zhang(session_webhook: &str) -> Said {
        Said {
            nick: "张三".into(),
            staff_id: "0123".into(),
            conversation: "cidOps==".into(),
            is_admin: true,
            session_webhook: session_webhook.into(),
            expires_ms: now_ms() + 90 * 60 * 1000,
        }
    }
}

/// A group text message @-ing the robot (content starts with a space, as DingTalk sends it).
pub fn robot_message(text: &str, said: &Said) -> Value {
    json!({
        "msgtype": "text",
        "text": {"content": format!(" {text}")},
        "msgId": format!("msg{:016x}", rand::random::<u64>()),
        "createAt": now_ms().to_string(),
        "conversationType": "2",
        "conversationId": said.conversation,
        "conversationTitle": "ops on call",
        "senderId": "$:LWCP_v1:$sender",
        "senderNick": said.nick,
        "senderStaffId": said.staff_id,
        "senderCorpId": "dingcorp",
        "chatbotCorpId": "dingcorp",
        "chatbotUserId": "$:LWCP_v1:$bot",
        "robotCode": "dingbot",
        "isAdmin": said.is_admin,
        "isInAtList": true,
        "atUsers": [{"dingtalkId": "$:LWCP_v1:$bot"}],
        "sessionWebhook": said.session_webhook,
        "sessionWebhookExpiredTime": said.expires_ms,
    })
}

/// The headers DingTalk signs a callback with at `timestamp_ms`.
pub fn callback_headers(secret: &str, timestamp_ms: u64) -> Vec<(&'static str, String)> {
    let timestamp = timestamp_ms.to_string();
    vec![
        ("sign", expected_sign(secret, &timestamp)),
        ("timestamp", timestamp),
    ]
}

/// POSTs `body` to `url` with `headers`; returns the status and the body.
pub async fn post(url: &str, headers: &[(&str, String)], body: impl Into<String>) -> (u16, String) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let mut request = client
        .post(url)
        .header("content-type", "application/json; charset=utf-8")
        .body(body.into());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("the callback is answered");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// POSTs `body` signed with `secret` now.
pub async fn post_signed(url: &str, secret: &str, body: impl Into<String>) -> (u16, String) {
    post(url, &callback_headers(secret, now_ms()), body).await
}
