//! HTTP mode's I/O: DingTalk POSTs each robot message to `/dingtalk/callback` on `chat.listen`.
//!
//! Order of checks, cheapest and most suspicious first: the `timestamp` and `sign` headers are
//! verified ([`verify`]) before the body is even read, so an unsigned request costs nothing and
//! learns nothing (403, one `warn` line naming the peer and the failed check, never a header's
//! value); then the body is read up to [`MAX_CALLBACK_BYTES`] (413 beyond); then it is decoded
//! (400 if it is not a robot message). Nothing reaches the daemon before all three pass.
//!
//! DingTalk waits about 3 s for the answer, whose body may itself be the reply message. So the
//! answer is awaited for `ChatTiming::sync_reply`: in time, it goes back synchronously; too late,
//! the callback gets `{"msgtype":"empty"}` and the answer follows through the message's session
//! webhook when it comes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::chat::answer::Answerer;
use crate::chat::reply::{EMPTY_REPLY, reply_body};
use crate::chat::robot_message::RobotMessage;
use crate::chat::signature::verify;
use crate::metrics::{Metrics, ReasonLabel};
use crate::secret::Secret;

/// Where callbacks arrive.
pub const CALLBACK_PATH: &str = "/dingtalk/callback";
/// The largest callback body accepted (robot messages are a few KiB).
pub const MAX_CALLBACK_BYTES: usize = 64 * 1024;

/// What the callback handler needs.
#[derive(Clone, Debug)]
pub struct Callback {
    secret: Arc<Secret>,
    answerer: Answerer,
    metrics: Arc<Metrics>,
    sync_reply: Duration,
}

impl Callback {
    /// A handler verifying with the app's `secret` that waits `sync_reply` for a synchronous
    /// answer.
    pub fn new(
        secret: Secret,
        answerer: Answerer,
        metrics: Arc<Metrics>,
        sync_reply: Duration,
    ) -> Callback {
        Callback {
            secret: Arc::new(secret),
            answerer,
            metrics,
            sync_reply,
        }
    }

    fn refuse(
        &self,
        status: StatusCode,
        reason: &str,
        peer: Option<SocketAddr>,
        why: &str,
    ) -> Response {
        tracing::warn!(peer = ?peer, "chat: refused a callback ({}): {why}", status.as_u16());
        self.metrics
            .chat_callbacks_refused
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
        (
            status,
            format!("{}\n", status.canonical_reason().unwrap_or("refused")),
        )
            .into_response()
    }
}

/// The router serving [`CALLBACK_PATH`]. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so that refusals name the peer.
pub fn router(callback: Callback) -> Router {
    Router::new()
        .route(CALLBACK_PATH, post(handle))
        .layer(DefaultBodyLimit::max(MAX_CALLBACK_BYTES))
        .with_state(callback)
}

async fn handle(State(callback): State<Callback>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    let header_value = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let verified = verify(
        header_value("timestamp"),
        header_value("sign"),
        &callback.secret,
        now_ms(),
    );
    if let Err(err) = verified {
        return callback.refuse(StatusCode::FORBIDDEN, err.label(), peer, &err.to_string());
    }
    let bytes = match Bytes::from_request(Request::from_parts(parts, body), &()).await {
        Ok(bytes) => bytes,
        Err(rejection) => {
            let status = rejection.status();
            let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "too_large"
            } else {
                "malformed"
            };
            return callback.refuse(status, reason, peer, &rejection.body_text());
        }
    };
    let message = match RobotMessage::parse(&bytes) {
        Ok(message) => message,
        Err(err) => {
            return callback.refuse(StatusCode::BAD_REQUEST, "malformed", peer, &err.to_string());
        }
    };
    let answerer = callback.answerer.clone();
    let mut answer = Box::pin({
        let message = message.clone();
        async move { answerer.answer(&message).await }
    });
    match tokio::time::timeout(callback.sync_reply, &mut answer).await {
        Ok(Some(text)) => json(reply_body(&text, &message.author)),
        // Delivered again: answered the first time.
        Ok(None) => json(EMPTY_REPLY.to_owned()),
        Err(_) => {
            let answerer = callback.answerer.clone();
            tokio::spawn(async move {
                if let Some(text) = answer.await {
                    answerer.post_logged(&message, &text).await;
                }
            });
            json(EMPTY_REPLY.to_owned())
        }
    }
}

fn json(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
