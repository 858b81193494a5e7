//! The Stream protocol's frames, sans I/O: [`handle`] takes the text of one WebSocket message from
//! DingTalk's gateway and returns the exact frame to send back (if any) and what the frame meant
//! ([`FrameEvent`]). The connection code (`chat::gateway`) only moves text.
//!
//! Frames are `{specVersion, type: SYSTEM|EVENT|CALLBACK, headers: {topic, messageId,
//! contentType, time}, data: "<JSON string>"}` (wave-2 reference §5.1). What is answered:
//!
//! | frame | ack |
//! | --- | --- |
//! | SYSTEM `ping` | code 200, its `data` (the `opaque`) echoed byte for byte |
//! | SYSTEM `disconnect` | none (the server closes the socket 10 s later) |
//! | CALLBACK on the robot topic | code 200, data `{"response": null}` |
//! | CALLBACK whose data is not a robot message | code 500 |
//! | CALLBACK on another topic, unknown type | code 404 |
//! | EVENT | code 200, data `{"status": "SUCCESS", …}` (else it is redelivered) |
//!
//! Every ack echoes the frame's `messageId`. `time` is documented as a number and sent as a
//! string, so both are read. A frame that cannot be understood is reported as
//! [`FrameEvent::Malformed`] (acked when it has a `messageId`, so the server does not wait), never a
//! panic. The acks are built with `serde_json::json!`; no wire type derives `Serialize`.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::chat::robot_message::{PayloadError, RobotMessage, describe};

/// The topic of robot messages (`CALLBACK` frames).
pub const ROBOT_TOPIC: &str = "/v1.0/im/bot/messages/get";

/// The result of handling one frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handled {
    /// The frame to send back right away, if the protocol wants one.
    pub ack: Option<String>,
    /// What the frame meant.
    pub event: FrameEvent,
}

/// What a frame meant to the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameEvent {
    /// A SYSTEM ping (answered by the ack).
    Ping,
    /// A SYSTEM disconnect: the server is moving us; reconnect with a new ticket.
    Disconnect {
        /// The server's `reason`, if it gave one.
        reason: String,
    },
    /// A robot message for the daemon.
    RobotMessage(Box<RobotMessage>),
    /// A CALLBACK on the robot topic whose data is not a usable robot message.
    BadRobotMessage(PayloadError),
    /// An EVENT (not subscribed to; acknowledged so it is not redelivered).
    Event {
        /// Its topic.
        topic: String,
    },
    /// A CALLBACK on a topic dingtail did not subscribe to.
    UnknownTopic {
        /// Its topic.
        topic: String,
    },
    /// A frame that could not be understood.
    Malformed(FrameError),
}

/// Why a frame could not be understood. Never contains the frame's data (it may hold a session
/// webhook).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not a JSON object with the frame's fields.
    #[error("the frame is not valid JSON: {0}")]
    Json(String),
    /// No `type`, or one other than SYSTEM, EVENT and CALLBACK.
    #[error("the frame's type {0:?} is not SYSTEM, EVENT or CALLBACK")]
    Type(String),
    /// A frame that needs an ack lacks `headers.messageId`.
    #[error("the {0} frame has no messageId")]
    NoMessageId(&'static str),
    /// A SYSTEM frame with a topic other than `ping` and `disconnect`.
    #[error("unknown SYSTEM topic {0:?}")]
    SystemTopic(String),
}

/// One frame from the gateway, decoded (exposed for diagnostics and tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// `type`: `SYSTEM`, `EVENT` or `CALLBACK`.
    pub kind: String,
    /// `headers.topic`.
    pub topic: String,
    /// `headers.messageId` (disconnect frames have none).
    pub message_id: Option<String>,
    /// `headers.time` in milliseconds, written as a number or a string.
    pub time_ms: Option<u64>,
    /// `data`, the JSON string as sent (an object is re-serialised).
    pub data: String,
}

#[derive(Deserialize)]
struct WireFrame {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    headers: WireHeaders,
    data: Option<Value>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireHeaders {
    topic: Option<String>,
    message_id: Option<String>,
    time: Option<Value>,
}

impl Frame {
    /// Decodes the text of one WebSocket message.
    ///
    /// # Errors
    /// [`FrameError::Json`] when it is not a JSON object of the frame's shape.
    pub fn parse(text: &str) -> Result<Frame, FrameError> {
        let wire: WireFrame =
            serde_json::from_str(text).map_err(|err| FrameError::Json(describe(&err)))?;
        let time_ms = match wire.headers.time {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        let data = match wire.data {
            Some(Value::String(data)) => data,
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        Ok(Frame {
            kind: wire.kind.unwrap_or_default(),
            topic: wire.headers.topic.unwrap_or_default(),
            message_id: wire.headers.message_id.filter(|id| !id.is_empty()),
            time_ms,
            data,
        })
    }
}

/// Handles the text of one WebSocket message from the gateway.
pub fn handle(text: &str) -> Handled {
    let frame = match Frame::parse(text) {
        Ok(frame) => frame,
        Err(err) => {
            return Handled {
                ack: None,
                event: FrameEvent::Malformed(err),
            };
        }
    };
    match frame.kind.as_str() {
        "SYSTEM" => handle_system(frame),
        "CALLBACK" => handle_callback(frame),
        "EVENT" => {
            let Some(id) = frame.message_id.as_deref() else {
                return malformed(FrameError::NoMessageId("EVENT"));
            };
            let data = json!({"status": "SUCCESS", "message": "OK"}).to_string();
            Handled {
                ack: Some(ack(id, 200, "OK", &data)),
                event: FrameEvent::Event { topic: frame.topic },
            }
        }
        _ => Handled {
            ack: frame
                .message_id
                .as_deref()
                .map(|id| ack(id, 404, "unknown frame type", "")),
            event: FrameEvent::Malformed(FrameError::Type(frame.kind)),
        },
    }
}

fn handle_system(frame: Frame) -> Handled {
    match frame.topic.as_str() {
        "ping" => match frame.message_id.as_deref() {
            Some(id) => Handled {
                ack: Some(ack(id, 200, "OK", &frame.data)),
                event: FrameEvent::Ping,
            },
            None => malformed(FrameError::NoMessageId("ping")),
        },
        "disconnect" => {
            let reason = serde_json::from_str::<Value>(&frame.data)
                .ok()
                .and_then(|data| {
                    data.get("reason")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            Handled {
                ack: None,
                event: FrameEvent::Disconnect { reason },
            }
        }
        _ => Handled {
            ack: frame
                .message_id
                .as_deref()
                .map(|id| ack(id, 404, "unknown topic", "")),
            event: FrameEvent::Malformed(FrameError::SystemTopic(frame.topic)),
        },
    }
}

fn handle_callback(frame: Frame) -> Handled {
    let Some(id) = frame.message_id.as_deref() else {
        return malformed(FrameError::NoMessageId("CALLBACK"));
    };
    if frame.topic != ROBOT_TOPIC {
        return Handled {
            ack: Some(ack(id, 404, "unknown topic", "")),
            event: FrameEvent::UnknownTopic { topic: frame.topic },
        };
    }
    match RobotMessage::parse(frame.data.as_bytes()) {
        Ok(message) => Handled {
            ack: Some(ack(id, 200, "OK", r#"{"response":null}"#)),
            event: FrameEvent::RobotMessage(Box::new(message)),
        },
        Err(err) => Handled {
            ack: Some(ack(id, 500, "cannot decode the robot message", "")),
            event: FrameEvent::BadRobotMessage(err),
        },
    }
}

fn malformed(err: FrameError) -> Handled {
    Handled {
        ack: None,
        event: FrameEvent::Malformed(err),
    }
}

/// `{code, headers: {messageId, contentType}, message, data}`.
fn ack(message_id: &str, code: u16, message: &str, data: &str) -> String {
    json!({
        "code": code,
        "headers": {"messageId": message_id, "contentType": "application/json"},
        "message": message,
        "data": data,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::chat::frame::{Frame, FrameError, FrameEvent, ROBOT_TOPIC, handle};
    use crate::chat::robot_message::PayloadError;
    use crate::chat::robot_message::tests::group_text;

    fn frame(kind: &str, topic: &str, message_id: Option<&str>, time: Value, data: &str) -> String {
        let mut headers = json!({"topic": topic, "contentType": "application/json", "time": time});
        if let Some(id) = message_id {
            headers["messageId"] = json!(id);
        }
        json!({"specVersion": "1.0", "type": kind, "headers": headers, "data": data}).to_string()
    }

    fn parsed_ack(ack: Option<&String>) -> Value {
        serde_json::from_str(ack.expect("an ack")).unwrap()
    }

    #[test]
    fn a_ping_is_acked_with_its_message_id_and_opaque_echoed() {
        let data = r#"{"opaque":"0bc1-77ff"}"#;
        let handled = handle(&frame(
            "SYSTEM",
            "ping",
            Some("m-ping-1"),
            json!("1700000000000"),
            data,
        ));
        assert_eq!(handled.event, FrameEvent::Ping);
        let ack = parsed_ack(handled.ack.as_ref());
        assert_eq!(
            ack,
            json!({
                "code": 200,
                "headers": {"messageId": "m-ping-1", "contentType": "application/json"},
                "message": "OK",
                "data": data,
            })
        );
    }

    #[test]
    fn a_robot_message_is_acked_with_a_null_response_and_decoded() {
        let data = group_text(" status").to_string();
        for time in [json!("1700000000000"), json!(1_700_000_000_000_u64)] {
            let text = frame("CALLBACK", ROBOT_TOPIC, Some("m-cb-7"), time, &data);
            let handled = handle(&text);
            let FrameEvent::RobotMessage(message) = &handled.event else {
                panic!("{handled:?}");
            };
            assert_eq!(message.text, "status");
            assert_eq!(message.author.staff_id.as_deref(), Some("0123"));
            let ack = parsed_ack(handled.ack.as_ref());
            assert_eq!(ack["code"], 200);
            assert_eq!(ack["headers"]["messageId"], "m-cb-7");
            assert_eq!(ack["data"], r#"{"response":null}"#);
            let data: Value = serde_json::from_str(ack["data"].as_str().unwrap()).unwrap();
            assert_eq!(data, json!({"response": null}));
            assert_eq!(
                Frame::parse(&text).unwrap().time_ms,
                Some(1_700_000_000_000)
            );
        }
    }

    #[test]
    fn a_disconnect_needs_no_ack_and_carries_its_reason() {
        let data = r#"{"reason":"load balancing"}"#;
        let handled = handle(&frame("SYSTEM", "disconnect", None, json!(1), data));
        assert_eq!(handled.ack, None);
        assert_eq!(
            handled.event,
            FrameEvent::Disconnect {
                reason: "load balancing".into()
            }
        );
    }

    #[test]
    fn events_are_acked_as_success_and_other_topics_as_404() {
        let handled = handle(&frame(
            "EVENT",
            "chat_update_title",
            Some("e1"),
            json!(1),
            "{}",
        ));
        let ack = parsed_ack(handled.ack.as_ref());
        assert_eq!(
            (ack["code"].clone(), ack["headers"]["messageId"].clone()),
            (json!(200), json!("e1"))
        );
        let data: Value = serde_json::from_str(ack["data"].as_str().unwrap()).unwrap();
        assert_eq!(data["status"], "SUCCESS");
        let handled = handle(&frame(
            "CALLBACK",
            "/v1.0/card/instances/callback",
            Some("c2"),
            json!(1),
            "{}",
        ));
        assert!(matches!(handled.event, FrameEvent::UnknownTopic { .. }));
        assert_eq!(parsed_ack(handled.ack.as_ref())["code"], 404);
    }

    #[test]
    fn a_robot_callback_with_bad_data_is_acked_500_and_reported() {
        let handled = handle(&frame(
            "CALLBACK",
            ROBOT_TOPIC,
            Some("c3"),
            json!(1),
            "{\"msgtype\":\"text\"}",
        ));
        assert_eq!(
            handled.event,
            FrameEvent::BadRobotMessage(PayloadError::Missing("msgId"))
        );
        let ack = parsed_ack(handled.ack.as_ref());
        assert_eq!(
            (ack["code"].clone(), ack["headers"]["messageId"].clone()),
            (json!(500), json!("c3"))
        );
    }

    #[test]
    fn malformed_frames_are_reported_never_panic() {
        let cases = [
            ("", "not valid JSON"),
            ("[]", "not valid JSON"),
            (
                "{\"type\": 7}",
                "not valid JSON: unexpected shape at line 1 column 10",
            ),
            (
                "{\"type\": \"zz9secret\", \"data\": 5, \"headers\": []}",
                "not valid JSON",
            ),
            ("{\"headers\": 7}", "not valid JSON"),
            ("{}", "type \"\""),
            ("{\"type\":\"PUSH\",\"headers\":{}}", "type \"PUSH\""),
            (
                "{\"type\":\"SYSTEM\",\"headers\":{\"topic\":\"ping\"}}",
                "ping frame has no messageId",
            ),
            (
                "{\"type\":\"CALLBACK\",\"headers\":{\"topic\":\"/v1.0/im/bot/messages/get\"}}",
                "CALLBACK frame has no messageId",
            ),
            (
                "{\"type\":\"SYSTEM\",\"headers\":{\"topic\":\"reboot\"}}",
                "unknown SYSTEM topic",
            ),
            ("\u{0}\u{ffff}", "not valid JSON"),
        ];
        for (text, want) in cases {
            let handled = handle(text);
            let FrameEvent::Malformed(err) = &handled.event else {
                panic!("{text:?}: {handled:?}");
            };
            assert!(err.to_string().contains(want), "{text:?}: {err}");
            assert!(!err.to_string().contains("zz9"), "{text:?}: {err}");
            assert_eq!(handled.ack, None, "{text:?}");
        }
        // A frame of unknown type that has a messageId is answered 404, so nothing waits on it.
        let handled = handle("{\"type\":\"PUSH\",\"headers\":{\"messageId\":\"p1\"}}");
        assert_eq!(
            handled.event,
            FrameEvent::Malformed(FrameError::Type("PUSH".into()))
        );
        assert_eq!(parsed_ack(handled.ack.as_ref())["code"], 404);
    }
}
