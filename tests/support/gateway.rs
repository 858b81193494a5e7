//! `Gateway`: DingTalk's Stream gateway on 127.0.0.1 for the chat tests (issue 16).
//!
//! An axum app (run on the test's tokio runtime) that answers like `api.dingtalk.com`:
//! `POST /v1.0/gateway/connections/open` checks the client id and secret and returns
//! `{endpoint: "ws://127.0.0.1:PORT/connect", ticket}`; `GET /connect?ticket=…` upgrades to a
//! WebSocket only for a ticket it issued, not used before and at most `ticket_ttl` (90 s) old,
//! and answers 401 otherwise, so a client that reuses a ticket cannot reconnect. On a live socket
//! the test pushes CALLBACK robot messages, SYSTEM pings and disconnects and WebSocket pings, or
//! drops the connection without a close frame; everything the client sends (acks, pongs) is
//! recorded, with the connection it came on, for assertions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

/// The robot-message topic.
pub const ROBOT_TOPIC: &str = "/v1.0/im/bot/messages/get";

/// How the stand-in gateway is set up.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// The accepted client id (AppKey).
    pub client_id: String,
    /// The accepted client secret (AppSecret).
    pub client_secret: String,
    /// How long a ticket may wait before it is used.
    pub ticket_ttl: Duration,
}

impl Default for GatewayConfig {
    /// A random id and secret, 90 s tickets (DingTalk's).
    fn default() -> GatewayConfig {
        GatewayConfig {
            client_id: format!("dingst{:08x}", rand::random::<u32>()),
            client_secret: format!("appsecret{:032x}", rand::random::<u128>()),
            ticket_ttl: Duration::from_secs(90),
        }
    }
}

/// One open request.
#[derive(Clone, Debug)]
pub struct Open {
    /// The request body.
    pub body: Value,
    /// The ticket issued (none when the credentials were wrong).
    pub ticket: Option<String>,
}

/// One WebSocket connection attempt.
#[derive(Clone, Debug)]
pub struct Connect {
    /// The ticket presented.
    pub ticket: String,
    /// Upgraded (`true`) or refused with 401.
    pub accepted: bool,
}

/// Something a client sent on a socket.
#[derive(Clone, Debug)]
pub enum Inbound {
    /// A text frame, parsed (`Value::Null` when it is not JSON), on connection `conn`.
    Text {
        /// The connection (0-based, in accept order).
        conn: usize,
        /// The frame.
        frame: Value,
    },
    /// A pong with its payload.
    Pong(Vec<u8>),
}

enum Push {
    Text(String),
    WsPing(Vec<u8>),
    Freeze,
    Drop,
}

#[derive(Default)]
struct GatewayState {
    tickets: HashMap<String, (Instant, bool)>,
    opens: Vec<Open>,
    connects: Vec<Connect>,
    n_accepted: usize,
    live: Vec<(usize, mpsc::UnboundedSender<Push>)>,
    inbound: Vec<Inbound>,
}

struct Shared {
    config: GatewayConfig,
    port: u16,
    state: Mutex<GatewayState>,
    changed: Notify,
}

/// A running stand-in gateway; stops when dropped.
pub struct Gateway {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl Gateway {
    /// Starts a gateway with `config` on an ephemeral port of 127.0.0.1.
    pub async fn start(config: GatewayConfig) -> Gateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the gateway stand-in");
        let addr = listener.local_addr().expect("gateway address");
        let shared = Arc::new(Shared {
            config,
            port: addr.port(),
            state: Mutex::new(GatewayState::default()),
            changed: Notify::new(),
        });
        let app = Router::new()
            .route("/v1.0/gateway/connections/open", post(open))
            .route("/connect", get(connect))
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("serve the gateway stand-in");
        });
        Gateway {
            shared,
            addr,
            server,
        }
    }

    /// `http://127.0.0.1:PORT`, for `chat.api_base`.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The configuration (client id and secret).
    pub fn config(&self) -> &GatewayConfig {
        &self.shared.config
    }

    /// Every open request so far.
    pub fn opens(&self) -> Vec<Open> {
        self.lock().opens.clone()
    }

    /// Every connection attempt so far.
    pub fn connects(&self) -> Vec<Connect> {
        self.lock().connects.clone()
    }

    /// Connections accepted so far.
    pub fn n_accepted(&self) -> usize {
        self.lock().n_accepted
    }

    /// Everything clients sent so far.
    pub fn inbound(&self) -> Vec<Inbound> {
        self.lock().inbound.clone()
    }

    /// Pushes a CALLBACK robot message with `data` (RA §6.2 JSON) to the newest connection;
    /// returns its messageId.
    pub fn push_robot_message(&self, data: &Value) -> String {
        let id = message_id("cb");
        let frame = json!({
            "specVersion": "1.0",
            "type": "CALLBACK",
            "headers": {
                "topic": ROBOT_TOPIC,
                "messageId": id,
                "contentType": "application/json",
                "time": "1700000000000",
            },
            "data": data.to_string(),
        });
        self.push(Push::Text(frame.to_string()));
        id
    }

    /// Pushes a SYSTEM ping; returns its messageId and its data (with the opaque).
    pub fn push_ping(&self) -> (String, String) {
        let id = message_id("ping");
        let data = json!({"opaque": format!("{:016x}", rand::random::<u64>())}).to_string();
        let frame = json!({
            "specVersion": "1.0",
            "type": "SYSTEM",
            "headers": {
                "topic": "ping",
                "messageId": id,
                "contentType": "application/json",
                "time": 1_700_000_000_000_u64,
            },
            "data": data,
        });
        self.push(Push::Text(frame.to_string()));
        (id, data)
    }

    /// Pushes a SYSTEM disconnect (no messageId); the socket stays open, as DingTalk keeps it
    /// for 10 s.
    pub fn push_disconnect(&self) {
        let frame = json!({
            "specVersion": "1.0",
            "type": "SYSTEM",
            "headers": {"topic": "disconnect", "contentType": "application/json", "time": "1"},
            "data": json!({"reason": "load balancing"}).to_string(),
        });
        self.push(Push::Text(frame.to_string()));
    }

    /// Pushes raw text (malformed frames).
    pub fn push_text(&self, text: &str) {
        self.push(Push::Text(text.to_owned()));
    }

    /// Sends a WebSocket-level ping with `payload`.
    pub fn ws_ping(&self, payload: &[u8]) {
        self.push(Push::WsPing(payload.to_vec()));
    }

    /// Stops reading and writing the newest connection but keeps it open (a half-open TCP
    /// connection): WebSocket pings go unanswered.
    pub fn freeze_connection(&self) {
        self.push(Push::Freeze);
    }

    /// Drops the newest connection without a close frame.
    pub fn drop_connection(&self) {
        self.push(Push::Drop);
    }

    fn push(&self, push: Push) {
        let state = self.lock();
        let (_, live) = state.live.last().expect("no live connection to push to");
        live.send(push).expect("the connection task is gone");
    }

    /// Waits until `predicate` holds; false on timeout.
    pub async fn wait_for(&self, predicate: impl Fn(&Gateway) -> bool, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            if predicate(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return predicate(self);
            }
        }
    }

    /// Waits for `n` accepted connections with one of them live; panics with what happened on
    /// timeout.
    pub async fn wait_connections(&self, n: usize, timeout: Duration) {
        let ok = self
            .wait_for(
                |g| {
                    let state = g.lock();
                    state.n_accepted >= n && !state.live.is_empty()
                },
                timeout,
            )
            .await;
        assert!(
            ok,
            "expected {n} connections within {timeout:?}; opens {:#?}, connects {:#?}",
            self.opens(),
            self.connects()
        );
    }

    /// Waits for the client's frame answering `message_id`; panics on timeout.
    pub async fn wait_ack(&self, message_id: &str, timeout: Duration) -> Value {
        let find = |g: &Gateway| {
            g.lock().inbound.iter().find_map(|inbound| match inbound {
                Inbound::Text { frame, .. } if frame["headers"]["messageId"] == message_id => {
                    Some(frame.clone())
                }
                _ => None,
            })
        };
        let ok = self.wait_for(|g| find(g).is_some(), timeout).await;
        assert!(
            ok,
            "no ack for {message_id} within {timeout:?}: {:#?}",
            self.inbound()
        );
        find(self).expect("found")
    }

    fn lock(&self) -> MutexGuard<'_, GatewayState> {
        lock(&self.shared)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.server.abort();
        for (_, live) in lock(&self.shared).live.drain(..) {
            // A connection task that already ended needs no telling.
            live.send(Push::Drop).ok();
        }
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, GatewayState> {
    shared
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn message_id(kind: &str) -> String {
    format!("{kind}-{:016x}", rand::random::<u64>())
}

async fn open(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let config = &shared.config;
    let credentials_ok = body["clientId"] == config.client_id.as_str()
        && body["clientSecret"] == config.client_secret.as_str();
    if !credentials_ok {
        lock(&shared).opens.push(Open { body, ticket: None });
        shared.changed.notify_waiters();
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(
                json!({"code": "invalidClient", "message": "clientId or clientSecret is wrong"}),
            ),
        )
            .into_response();
    }
    let ticket = format!("tk{:032x}", rand::random::<u128>());
    {
        let mut state = lock(&shared);
        state
            .tickets
            .insert(ticket.clone(), (Instant::now(), false));
        state.opens.push(Open {
            body,
            ticket: Some(ticket.clone()),
        });
    }
    shared.changed.notify_waiters();
    axum::Json(json!({
        "endpoint": format!("ws://127.0.0.1:{}/connect", shared.port),
        "ticket": ticket,
    }))
    .into_response()
}

async fn connect(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let ticket = query.get("ticket").cloned().unwrap_or_default();
    let accepted = {
        let mut state = lock(&shared);
        let ttl = shared.config.ticket_ttl;
        let accepted = match state.tickets.get_mut(&ticket) {
            Some((issued, used)) if !*used && issued.elapsed() <= ttl => {
                *used = true;
                true
            }
            _ => false,
        };
        state.connects.push(Connect {
            ticket: ticket.clone(),
            accepted,
        });
        accepted
    };
    shared.changed.notify_waiters();
    if !accepted {
        return (StatusCode::UNAUTHORIZED, "invalid ticket").into_response();
    }
    upgrade.on_upgrade(move |socket| serve_socket(shared, socket))
}

async fn serve_socket(shared: Arc<Shared>, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn = {
        let mut state = lock(&shared);
        let conn = state.n_accepted;
        state.n_accepted += 1;
        state.live.push((conn, tx));
        conn
    };
    shared.changed.notify_waiters();
    loop {
        tokio::select! {
            push = rx.recv() => {
                let sent = match push {
                    Some(Push::Text(text)) => socket.send(Message::Text(text.into())).await,
                    Some(Push::WsPing(payload)) => socket.send(Message::Ping(payload.into())).await,
                    Some(Push::Freeze) => {
                        // Hold the socket without touching it until told to drop it.
                        while let Some(push) = rx.recv().await {
                            if matches!(push, Push::Drop) {
                                break;
                            }
                        }
                        break;
                    }
                    Some(Push::Drop) | None => break,
                };
                if sent.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => {
                let inbound = match incoming {
                    Some(Ok(Message::Text(text))) => Inbound::Text {
                        conn,
                        frame: serde_json::from_str(text.as_str()).unwrap_or(Value::Null),
                    },
                    Some(Ok(Message::Pong(payload))) => Inbound::Pong(payload.to_vec()),
                    Some(Ok(Message::Ping(_) | Message::Binary(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                };
                lock(&shared).inbound.push(inbound);
                shared.changed.notify_waiters();
            }
        }
    }
    lock(&shared).live.retain(|(id, _)| *id != conn);
    shared.changed.notify_waiters();
}
