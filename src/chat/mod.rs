//! Answering back (issue 16): people in a DingTalk group command the daemon (`status`, `mute`,
//! `ack`, …) by @-ing an enterprise-internal app robot, the only kind that receives messages.
//!
//! Messages arrive in one of two modes (`chat.mode`): **Stream**, a WebSocket dingtail holds to
//! DingTalk's gateway (no public address needed; `gateway`), or **HTTP**, signed callbacks to
//! `/dingtalk/callback` (`callback`). Both decode the same callback JSON into a
//! [`RobotMessage`], and from there share one path (`answer`): the pure [`decide`] checks
//! `chat.allow` ([`permit()`]) and parses the [`Command`]; a permitted command goes to the daemon
//! as a [`ChatRequest`] over a channel, and the daemon's reply text goes back to the
//! conversation, @-mentioning the sender.
//!
//! Shaped sans-IO like the rest of dingtail: `frame` (the Stream protocol), `command`, `permit`,
//! `decision`, `signature`, `reply` and `link` are pure and take `now`; `gateway`, `callback`
//! and `answer` are the edges. `chat` knows no silence or incident: it carries the parsed
//! command, and the daemon (issue 13's silences and acks) carries it out. Start it with
//! [`Chat::start`]; dropping the [`Chat`] stops it, [`Chat::stop`] also waits until it has.

pub mod answer;
pub mod callback;
pub mod command;
pub mod decision;
pub mod frame;
pub mod gateway;
pub mod link;
pub mod permit;
pub mod recent;
pub mod reply;
pub mod request;
pub mod robot_message;
pub mod signature;
pub mod words;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use crate::chat::command::{Command, CommandError, Matcher, Mute};
pub use crate::chat::decision::{Decision, decide};
pub use crate::chat::link::{LinkState, LinkStatus};
pub use crate::chat::permit::{Denial, Permit, permit};
pub use crate::chat::request::{ChatRequest, REQUEST_CAPACITY};
pub use crate::chat::robot_message::{Author, Conversation, ConversationKind, RobotMessage};

use crate::chat::answer::Answerer;
use crate::chat::callback::Callback;
use crate::chat::gateway::Gateway;
use crate::config::{ChatConfig, ChatMode};
use crate::dingtalk::{Client, ClientConfig};
use crate::metrics::Metrics;

/// The clocks of the chat link. Production uses [`ChatTiming::DINGTALK`]; tests shorten them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChatTiming {
    /// Limit for the open request and for the WebSocket handshake (and reply requests' connect).
    pub connect_timeout: Duration,
    /// Ping the gateway after this much silence.
    pub keepalive_idle: Duration,
    /// After our ping, give up on a connection silent for this long.
    pub keepalive_timeout: Duration,
    /// First wait before reconnecting (then doubling, jittered).
    pub retry_base: Duration,
    /// Longest wait before reconnecting.
    pub retry_cap: Duration,
    /// A connection that stayed up this long resets the reconnect backoff.
    pub stable_after: Duration,
    /// How long to wait for the daemon's reply to a command.
    pub reply_deadline: Duration,
    /// HTTP mode: how long to wait for a synchronous answer (DingTalk waits about 3 s).
    pub sync_reply: Duration,
}

impl ChatTiming {
    /// Production values: ping after 60 s idle (the Python SDK's period), reconnect after 1 s
    /// doubling up to 60 s, answer HTTP callbacks within 2.5 s.
    pub const DINGTALK: ChatTiming = ChatTiming {
        connect_timeout: Duration::from_secs(10),
        keepalive_idle: Duration::from_secs(60),
        keepalive_timeout: Duration::from_secs(10),
        retry_base: Duration::from_secs(1),
        retry_cap: Duration::from_secs(60),
        stable_after: Duration::from_secs(30),
        reply_deadline: Duration::from_secs(60),
        sync_reply: Duration::from_millis(2_500),
    };
}

/// Why the chat link could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    /// `chat.listen` cannot be bound.
    #[error("cannot listen for chat callbacks on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP or TLS client cannot be set up.
    #[error("cannot set up the chat client: {0}")]
    Client(String),
}

/// A running chat link; stops (its tasks aborted) when dropped.
#[derive(Debug)]
pub struct Chat {
    status: watch::Receiver<LinkStatus>,
    task: Option<JoinHandle<()>>,
    local_addr: Option<SocketAddr>,
    metrics: Arc<Metrics>,
}

impl Chat {
    /// Starts the link `config` describes: Stream mode connects in the background; HTTP mode
    /// binds `chat.listen` first (so a taken port is an error here) and then serves. Commands go
    /// out on `requests` (create it with [`REQUEST_CAPACITY`]).
    ///
    /// # Errors
    /// [`ChatError::Bind`] when the HTTP address cannot be bound, [`ChatError::Client`] when the
    /// HTTP or TLS client cannot be set up.
    pub async fn start(
        config: &ChatConfig,
        requests: mpsc::Sender<ChatRequest>,
        metrics: Arc<Metrics>,
        timing: ChatTiming,
    ) -> Result<Chat, ChatError> {
        let client = Client::new(ClientConfig {
            connect_timeout: timing.connect_timeout,
            request_timeout: timing.connect_timeout,
        })
        .map_err(|err| ChatError::Client(err.to_string()))?;
        let answerer = Answerer::new(
            config.allow.clone(),
            requests,
            client,
            Arc::clone(&metrics),
            timing.reply_deadline,
        );
        match config.mode {
            ChatMode::Stream => {
                let (status_tx, status) = watch::channel(LinkStatus::connecting(SystemTime::now()));
                let gateway = Gateway::new(
                    config.clone(),
                    answerer,
                    status_tx,
                    Arc::clone(&metrics),
                    timing,
                )
                .map_err(ChatError::Client)?;
                Ok(Chat {
                    status,
                    task: Some(tokio::spawn(gateway.run())),
                    local_addr: None,
                    metrics,
                })
            }
            ChatMode::Http { listen } => {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .map_err(|source| ChatError::Bind {
                        addr: listen,
                        source,
                    })?;
                let local_addr = listener.local_addr().ok();
                let (status_tx, status) = watch::channel(LinkStatus::listening(SystemTime::now()));
                metrics.chat_connected.set(1);
                let app = callback::router(Callback::new(
                    config.client_secret.clone(),
                    answerer,
                    Arc::clone(&metrics),
                    timing.sync_reply,
                ));
                let task = tokio::spawn(async move {
                    let service = app.into_make_service_with_connect_info::<SocketAddr>();
                    if let Err(err) = axum::serve(listener, service).await {
                        tracing::error!("chat: the callback endpoint on {listen} stopped: {err}");
                        status_tx.send_modify(|s| s.stopped(SystemTime::now(), err.to_string()));
                    }
                });
                Ok(Chat {
                    status,
                    task: Some(task),
                    local_addr,
                    metrics,
                })
            }
        }
    }

    /// The link's state, for `/healthz`, `STATUS=` and the `status` command.
    pub fn status(&self) -> watch::Receiver<LinkStatus> {
        self.status.clone()
    }

    /// HTTP mode: the address actually bound (tests bind port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Stops the link and waits until it has let go of its socket (so that a reload can bind
    /// the same `chat.listen` again).
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // The task was aborted: its end is a cancellation, which is what we asked for.
            if let Err(err) = task.await {
                if !err.is_cancelled() {
                    tracing::warn!("chat: the link task failed: {err}");
                }
            }
        }
    }
}

impl Drop for Chat {
    /// Aborts the link's tasks (without waiting; see [`Chat::stop`]).
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
        self.metrics.chat_connected.set(0);
    }
}
