//! Stream mode's I/O: holds a WebSocket to DingTalk's Stream gateway and keeps it held.
//!
//! One connection's life: `POST {api_base}/v1.0/gateway/connections/open` with the app's client
//! id and secret and the robot-message subscription returns an endpoint and a **ticket** (valid
//! 90 s, for one connection, so a fresh one is fetched for every connection); the WebSocket to
//! `{endpoint}?ticket=…` (URL-encoded) then carries frames, which the sans-IO [`frame::handle`]
//! turns into acks (sent at once) and events. Robot messages are answered in tasks of their own
//! (at most [`MAX_IN_FLIGHT`]), so a slow daemon never delays the acks or pings of the next
//! frames; their replies go out through the message's session webhook, not the socket.
//!
//! Keeping it alive: tungstenite answers the server's WebSocket pings while reading; after
//! `keepalive_idle` of silence we ping, and a connection that stays silent for another
//! `keepalive_timeout` is dead. A SYSTEM `disconnect` (periodic load balancing), a close, a
//! dead or failed connection all lead to the same place: a jittered, exponential wait
//! ([`Backoff`]), reset by a disconnect or by a connection that stayed up `stable_after`, then
//! a new ticket. TLS is rustls with the ring provider and webpki roots, like reqwest's; `ws://`
//! is accepted only for loopback endpoints (tests' stand-ins). The ticket and the secret never
//! appear in a log line, an error or the [`LinkStatus`].

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::backoff::Backoff;
use crate::chat::ChatTiming;
use crate::chat::answer::Answerer;
use crate::chat::frame::{self, FrameEvent, ROBOT_TOPIC};
use crate::chat::link::LinkStatus;
use crate::chat::robot_message::RobotMessage;
use crate::config::{ChatConfig, is_loopback};
use crate::metrics::{ChatCommandLabel, Metrics};
use crate::secret::Secret;

/// Robot messages answered at once per connection; more are dropped with a log line.
pub const MAX_IN_FLIGHT: usize = 32;
/// The largest frame accepted from the gateway (robot messages are a few KiB).
pub const MAX_FRAME_BYTES: usize = 1 << 20;
/// The path, under `api_base`, that opens a connection.
pub const OPEN_PATH: &str = "/v1.0/gateway/connections/open";

/// Why a connection could not be made or ended badly. Never holds a secret or a ticket.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The open request failed on the network.
    #[error("cannot open a Stream connection: {0}")]
    Open(String),
    /// The gateway answered the open request with an error.
    #[error("the gateway refused to open a connection: {0}")]
    Refused(String),
    /// The open answer lacks an endpoint or ticket, or the endpoint is not allowed.
    #[error("the gateway's answer is unusable: {0}")]
    Answer(String),
    /// The WebSocket could not be established.
    #[error("cannot connect the WebSocket: {0}")]
    Connect(String),
    /// The WebSocket failed while open.
    #[error("the WebSocket failed: {0}")]
    Socket(String),
    /// Nothing was heard for the keepalive period, not even an answer to our ping.
    #[error("the connection went silent")]
    Silent,
}

/// How one connection ended without an error.
#[derive(Clone, Debug, PartialEq, Eq)]
enum End {
    /// A SYSTEM disconnect frame: routine.
    Disconnect(String),
    /// The server closed the socket.
    Closed,
}

/// The Stream connection keeper.
pub(crate) struct Gateway {
    config: ChatConfig,
    answerer: Answerer,
    status: watch::Sender<LinkStatus>,
    metrics: Arc<Metrics>,
    timing: ChatTiming,
    http: reqwest::Client,
    tls: Arc<rustls::ClientConfig>,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

impl Gateway {
    /// A keeper for `config`'s app; nothing is connected until [`Gateway::run`].
    ///
    /// # Errors
    /// The HTTP client or TLS configuration cannot be built.
    pub(crate) fn new(
        config: ChatConfig,
        answerer: Answerer,
        status: watch::Sender<LinkStatus>,
        metrics: Arc<Metrics>,
        timing: ChatTiming,
    ) -> Result<Gateway, String> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(timing.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("dingtail/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| format!("cannot set up the HTTP client: {err}"))?;
        Ok(Gateway {
            config,
            answerer,
            status,
            metrics,
            timing,
            http,
            tls: tls_config()?,
        })
    }

    /// Connects, serves and reconnects until the task is aborted.
    pub(crate) async fn run(self) {
        let mut backoff = Backoff::new(self.timing.retry_base, self.timing.retry_cap);
        let mut tasks = JoinSet::new();
        let mut last_logged: Option<String> = None;
        loop {
            self.status.send_modify(|s| s.attempt(SystemTime::now()));
            let mut connected_at = None;
            let result = self.connect_and_serve(&mut tasks, &mut connected_at).await;
            self.metrics.chat_connected.set(0);
            if connected_at.is_some_and(|at| at.elapsed() >= self.timing.stable_after) {
                backoff.reset();
            }
            let error = match result {
                Ok(End::Disconnect(reason)) => {
                    tracing::info!(reason = ?reason, "chat: the gateway asked us to reconnect");
                    backoff.reset();
                    None
                }
                Ok(End::Closed) => Some("the gateway closed the connection".to_owned()),
                Err(err) => Some(err.to_string()),
            };
            if let Some(error) = &error {
                if last_logged.as_ref() != Some(error) {
                    tracing::warn!("chat: {error}; reconnecting");
                    last_logged = Some(error.clone());
                } else {
                    tracing::debug!("chat: {error}; reconnecting");
                }
            }
            let delay = backoff.next_delay(rand::random::<f64>());
            self.status
                .send_modify(|s| s.retrying(SystemTime::now(), delay, error));
            tokio::time::sleep(delay).await;
        }
    }

    /// One connection: a fresh ticket, the WebSocket, then frames until it ends.
    async fn connect_and_serve(
        &self,
        tasks: &mut JoinSet<()>,
        connected_at: &mut Option<Instant>,
    ) -> Result<End, LinkError> {
        let (endpoint, ticket) = self.open().await?;
        let socket = self.connect(endpoint, &ticket).await?;
        *connected_at = Some(Instant::now());
        self.metrics.chat_connections.inc();
        self.metrics.chat_connected.set(1);
        self.status.send_modify(|s| s.connected(SystemTime::now()));
        tracing::info!("chat: connected to the DingTalk Stream gateway");
        self.serve(socket, tasks).await
    }

    /// Asks for an endpoint and a one-connection ticket.
    async fn open(&self) -> Result<(url::Url, Secret), LinkError> {
        let url = format!(
            "{}{OPEN_PATH}",
            self.config.api_base.as_str().trim_end_matches('/')
        );
        let body = json!({
            "clientId": self.config.client_id,
            "clientSecret": self.config.client_secret.expose(),
            "subscriptions": [{"type": "CALLBACK", "topic": ROBOT_TOPIC}],
            "ua": concat!("dingtail/", env!("CARGO_PKG_VERSION")),
        });
        let response = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|err| LinkError::Open(err.without_url().to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| LinkError::Open(err.without_url().to_string()))?;
        let answer: Option<Value> = serde_json::from_slice(&bytes).ok();
        let field = |name: &str| {
            answer
                .as_ref()
                .and_then(|a| a.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        if !status.is_success() {
            let detail: String = [field("code"), field("message")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ")
                .chars()
                .take(200)
                .collect();
            return Err(LinkError::Refused(format!("HTTP {status} {detail:?}")));
        }
        let (Some(endpoint), Some(ticket)) = (field("endpoint"), field("ticket")) else {
            return Err(LinkError::Answer("no endpoint or ticket".into()));
        };
        let endpoint = url::Url::parse(&endpoint)
            .map_err(|_| LinkError::Answer("the endpoint is not a URL".into()))?;
        match endpoint.scheme() {
            "wss" => {}
            "ws" if is_loopback(&endpoint) => {}
            scheme => {
                return Err(LinkError::Answer(format!(
                    "the endpoint must be wss:// (ws:// only on loopback), not {scheme}://"
                )));
            }
        }
        Ok((endpoint, Secret::new(ticket)))
    }

    async fn connect(&self, mut endpoint: url::Url, ticket: &Secret) -> Result<Socket, LinkError> {
        endpoint
            .query_pairs_mut()
            .append_pair("ticket", ticket.expose());
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME_BYTES))
            .max_frame_size(Some(MAX_FRAME_BYTES));
        let connecting = tokio_tungstenite::connect_async_tls_with_config(
            endpoint.as_str(),
            Some(config),
            true,
            Some(Connector::Rustls(Arc::clone(&self.tls))),
        );
        match tokio::time::timeout(self.timing.connect_timeout, connecting).await {
            Err(_) => Err(LinkError::Connect("timed out".into())),
            Ok(Err(err)) => Err(LinkError::Connect(scrub(&err.to_string(), ticket))),
            Ok(Ok((socket, _))) => Ok(socket),
        }
    }

    /// Reads frames, acks them and hands robot messages on, until the connection ends.
    async fn serve(&self, socket: Socket, tasks: &mut JoinSet<()>) -> Result<End, LinkError> {
        let (mut sink, mut stream) = socket.split();
        let tick = (self.timing.keepalive_idle / 4).max(std::time::Duration::from_millis(10));
        let mut check = tokio::time::interval(tick);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let mut ping_sent: Option<Instant> = None;
        let socket_error =
            |err: tokio_tungstenite::tungstenite::Error| LinkError::Socket(err.to_string());
        loop {
            tokio::select! {
                incoming = stream.next() => {
                    let Some(incoming) = incoming else { return Ok(End::Closed) };
                    let incoming = incoming.map_err(socket_error)?;
                    last_heard = Instant::now();
                    let text = match incoming {
                        WsMessage::Text(text) => text,
                        WsMessage::Close(_) => return Ok(End::Closed),
                        WsMessage::Ping(_) => {
                            // tungstenite queued the Pong; push it out now.
                            sink.flush().await.map_err(socket_error)?;
                            continue;
                        }
                        WsMessage::Pong(_) | WsMessage::Frame(_) => continue,
                        WsMessage::Binary(bytes) => {
                            tracing::warn!(bytes = bytes.len(), "chat: ignored a binary frame");
                            continue;
                        }
                    };
                    let handled = frame::handle(text.as_str());
                    if let Some(ack) = handled.ack {
                        sink.send(WsMessage::text(ack)).await.map_err(socket_error)?;
                    }
                    match handled.event {
                        FrameEvent::Ping => {}
                        FrameEvent::Disconnect { reason } => {
                            // Best effort: the server closes the socket anyway.
                            if sink.close().await.is_err() {
                                tracing::debug!("chat: closing after a disconnect frame failed");
                            }
                            return Ok(End::Disconnect(reason));
                        }
                        FrameEvent::RobotMessage(message) => self.dispatch(*message, tasks),
                        FrameEvent::BadRobotMessage(err) => {
                            tracing::warn!("chat: ignored a robot message: {err}");
                        }
                        FrameEvent::Event { topic } => {
                            tracing::debug!(topic = ?topic, "chat: acknowledged an event");
                        }
                        FrameEvent::UnknownTopic { topic } => {
                            tracing::debug!(topic = ?topic, "chat: refused a callback topic");
                        }
                        FrameEvent::Malformed(err) => {
                            tracing::warn!("chat: ignored a frame: {err}");
                        }
                    }
                }
                _ = check.tick() => {
                    let now = Instant::now();
                    if let Some(sent) = ping_sent {
                        if last_heard >= sent {
                            ping_sent = None;
                        } else if now.duration_since(sent) >= self.timing.keepalive_timeout {
                            return Err(LinkError::Silent);
                        }
                    }
                    if ping_sent.is_none()
                        && now.duration_since(last_heard) >= self.timing.keepalive_idle
                    {
                        sink.send(WsMessage::Ping(Default::default()))
                            .await
                            .map_err(socket_error)?;
                        ping_sent = Some(now);
                    }
                }
            }
        }
    }

    /// Answers `message` in a task of its own, unless too many are in flight.
    fn dispatch(&self, message: RobotMessage, tasks: &mut JoinSet<()>) {
        while tasks.try_join_next().is_some() {}
        if tasks.len() >= MAX_IN_FLIGHT {
            tracing::warn!(msg_id = %message.msg_id, "chat: too many commands in flight; dropped one");
            self.metrics
                .chat_commands
                .get_or_create(&ChatCommandLabel {
                    command: "none".into(),
                    outcome: "busy".into(),
                })
                .inc();
            return;
        }
        let answerer = self.answerer.clone();
        tasks.spawn(async move { answerer.answer_and_post(&message).await });
    }
}

/// rustls with the ring provider (the crate's one TLS stack) and the webpki roots.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| format!("cannot set up TLS: {err}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// `text` without the ticket (raw or URL-encoded).
fn scrub(text: &str, ticket: &Secret) -> String {
    let raw = ticket.expose();
    if raw.len() < 4 {
        return text.to_owned();
    }
    let encoded: String = url::form_urlencoded::byte_serialize(raw.as_bytes()).collect();
    text.replace(raw, "<redacted>")
        .replace(&encoded, "<redacted>")
}

#[cfg(test)]
mod tests {
    use crate::chat::gateway::{scrub, tls_config};
    use crate::secret::Secret;

    #[test]
    fn tickets_are_scrubbed_raw_and_encoded() {
        let ticket = Secret::new("tk+/=1234");
        assert_eq!(
            scrub("GET /connect?ticket=tk%2B%2F%3D1234 and tk+/=1234", &ticket),
            "GET /connect?ticket=<redacted> and <redacted>"
        );
    }

    #[test]
    fn the_tls_config_builds_with_ring() {
        let config = tls_config().unwrap();
        assert!(!config.crypto_provider().cipher_suites.is_empty());
    }
}
