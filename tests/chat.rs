//! Answering back from the group (issue 16), through the library API (`dingtail::chat`) until the
//! daemon is wired: Stream mode against the gateway stand-in (`support::gateway`), HTTP mode with
//! signed callbacks (`support::chat`), replies arriving at the DingTalk robot stand-in as the
//! session webhook. The daemon's side of `ChatRequest` is played by the test.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dingtail::chat::answer::{Answerer, ReplyError};
use dingtail::chat::robot_message::WebhookRefusal;
use dingtail::chat::{
    Chat, ChatRequest, ChatTiming, Command, LinkState, Matcher, Mute, REQUEST_CAPACITY,
    RobotMessage,
};
use dingtail::config::{ChatAllow, ChatConfig, ChatMode};
use dingtail::dingtalk::{Client, ClientConfig};
use dingtail::metrics::Metrics;
use dingtail::secret::Secret;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::chat::{Said, callback_headers, now_ms, post, post_signed, robot_message};
use crate::support::gateway::{Gateway, GatewayConfig, Inbound};
use crate::support::standin::{Received, Standin};

const WAIT: Duration = Duration::from_secs(10);

fn timing() -> ChatTiming {
    ChatTiming {
        connect_timeout: Duration::from_secs(5),
        keepalive_idle: Duration::from_secs(30),
        keepalive_timeout: Duration::from_secs(5),
        retry_base: Duration::from_millis(20),
        retry_cap: Duration::from_millis(200),
        stable_after: Duration::from_secs(30),
        reply_deadline: Duration::from_secs(5),
        sync_reply: Duration::from_millis(800),
    }
}

fn allow_zhang() -> ChatAllow {
    ChatAllow {
        users: vec!["0123".into()],
        conversations: vec![],
        admins_only: false,
    }
}

struct Running {
    chat: Chat,
    requests: mpsc::Receiver<ChatRequest>,
    metrics: Arc<Metrics>,
}

async fn start(config: ChatConfig, timing: ChatTiming) -> Running {
    let (tx, requests) = mpsc::channel(REQUEST_CAPACITY);
    let metrics = Arc::new(Metrics::new());
    let chat = Chat::start(&config, tx, Arc::clone(&metrics), timing)
        .await
        .expect("chat starts");
    Running {
        chat,
        requests,
        metrics,
    }
}

async fn start_stream(gateway: &Gateway, allow: ChatAllow) -> Running {
    let config = ChatConfig {
        mode: ChatMode::Stream,
        client_id: gateway.config().client_id.clone(),
        client_secret: Secret::new(gateway.config().client_secret.clone()),
        allow,
        api_base: gateway.api_base().parse().unwrap(),
    };
    start(config, timing()).await
}

async fn next_request(requests: &mut mpsc::Receiver<ChatRequest>) -> ChatRequest {
    tokio::time::timeout(WAIT, requests.recv())
        .await
        .expect("a request within 10 s")
        .expect("the channel is open")
}

/// Waits (blocking this worker; the tests run on a multi-thread runtime) for `n` messages
/// delivered to the robot stand-in.
fn delivered(standin: &Standin, n: usize) -> Vec<Received> {
    tokio::task::block_in_place(|| standin.wait_delivered(n, WAIT))
}

fn content(received: &Received) -> String {
    received.body.as_ref().unwrap()["text"]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_acks_system_pings_with_the_opaque_and_answers_websocket_pings() {
    let gateway = Gateway::start(GatewayConfig::default()).await;
    let _running = start_stream(&gateway, allow_zhang()).await;
    gateway.wait_connections(1, WAIT).await;
    // The open request named the app and the robot topic.
    let open = &gateway.opens()[0];
    assert_eq!(open.body["clientId"], gateway.config().client_id.as_str());
    assert_eq!(
        open.body["subscriptions"],
        json!([{"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"}])
    );
    // Garbage does not end the connection; the next ping is still answered.
    gateway.push_text("{not json");
    gateway.push_text(r#"{"type":"PUSH","headers":{}}"#);
    let (id, data) = gateway.push_ping();
    let ack = gateway.wait_ack(&id, WAIT).await;
    assert_eq!(
        ack,
        json!({
            "code": 200,
            "headers": {"messageId": id, "contentType": "application/json"},
            "message": "OK",
            "data": data,
        })
    );
    gateway.ws_ping(b"are you there");
    let ok = gateway
        .wait_for(
            |g| {
                g.inbound()
                    .iter()
                    .any(|i| matches!(i, Inbound::Pong(p) if p == b"are you there"))
            },
            WAIT,
        )
        .await;
    assert!(ok, "no pong: {:#?}", gateway.inbound());
    assert_eq!(gateway.n_accepted(), 1, "the connection survived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_a_robot_message_reaches_the_daemon_and_the_reply_goes_back() {
    let gateway = Gateway::start(GatewayConfig::default()).await;
    let standin = Standin::start();
    let mut running = start_stream(&gateway, allow_zhang()).await;
    gateway.wait_connections(1, WAIT).await;
    let said = Said::by_zhang(&standin.webhook_url());
    let id = gateway.push_robot_message(&robot_message(
        "@dingtail 静默 nginx-5xx host=web-3 1h 发布中",
        &said,
    ));
    let ack = gateway.wait_ack(&id, WAIT).await;
    assert_eq!(ack["code"], 200);
    assert_eq!(ack["data"], r#"{"response":null}"#);
    let request = next_request(&mut running.requests).await;
    assert_eq!(
        request.command,
        Command::Mute(Mute {
            rule: "nginx-5xx".into(),
            matchers: vec![Matcher {
                key: "host".into(),
                value: "web-3".into()
            }],
            duration: Duration::from_secs(3600),
            reason: Some("发布中".into()),
        })
    );
    assert_eq!(request.author.nick, "张三");
    assert_eq!(request.author.staff_id.as_deref(), Some("0123"));
    assert_eq!(request.conversation.id, "cidOps==");
    request.answer("张三 muted nginx-5xx (host=web-3) for 1h");
    let replies = delivered(&standin, 1);
    assert_eq!(
        content(&replies[0]),
        "张三 muted nginx-5xx (host=web-3) for 1h\n@0123"
    );
    assert_eq!(
        replies[0].body.as_ref().unwrap()["at"]["atUserIds"],
        json!(["0123"])
    );
    assert_eq!(
        running.chat.status().borrow().state,
        LinkState::Connected,
        "{:?}",
        running.chat.status().borrow()
    );
    let metrics = running.metrics.encode();
    assert!(
        metrics.contains(r#"dingtail_chat_commands_total{command="mute",outcome="answered"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("dingtail_chat_connected 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_reconnects_after_a_dropped_connection_and_a_disconnect_with_a_new_ticket_each_time()
{
    let gateway = Gateway::start(GatewayConfig::default()).await;
    let standin = Standin::start();
    let mut running = start_stream(&gateway, allow_zhang()).await;
    gateway.wait_connections(1, WAIT).await;
    gateway.drop_connection();
    gateway.wait_connections(2, WAIT).await;
    gateway.push_disconnect();
    gateway.wait_connections(3, WAIT).await;
    let connects = gateway.connects();
    assert!(
        connects.iter().all(|c| c.accepted),
        "a ticket was reused or stale: {connects:#?}"
    );
    let tickets: Vec<&str> = connects.iter().map(|c| c.ticket.as_str()).collect();
    let mut distinct = tickets.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(tickets.len(), 3, "{connects:#?}");
    assert_eq!(distinct.len(), 3, "one ticket per connection: {tickets:?}");
    assert_eq!(gateway.opens().len(), 3);
    // The third connection works end to end.
    let id = gateway.push_robot_message(&robot_message(
        "status",
        &Said::by_zhang(&standin.webhook_url()),
    ));
    let ack = gateway.wait_ack(&id, WAIT).await;
    let acked_on = gateway.inbound().iter().find_map(|i| match i {
        Inbound::Text { conn, frame } if frame["headers"]["messageId"] == id.as_str() => {
            Some(*conn)
        }
        _ => None,
    });
    assert_eq!((ack["code"].clone(), acked_on), (json!(200), Some(2)));
    let request = next_request(&mut running.requests).await;
    assert_eq!(request.command, Command::Status);
    request.answer("all fine");
    assert!(content(&delivered(&standin, 1)[0]).starts_with("all fine"));
    let status = running.chat.status().borrow().clone();
    assert_eq!(
        (status.state, status.n_connections),
        (LinkState::Connected, 3)
    );
    assert!(
        running
            .metrics
            .encode()
            .contains("dingtail_chat_connections_total 3")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_a_connection_that_goes_silent_is_replaced() {
    let gateway = Gateway::start(GatewayConfig::default()).await;
    let config = ChatConfig {
        mode: ChatMode::Stream,
        client_id: gateway.config().client_id.clone(),
        client_secret: Secret::new(gateway.config().client_secret.clone()),
        allow: allow_zhang(),
        api_base: gateway.api_base().parse().unwrap(),
    };
    let timing = ChatTiming {
        keepalive_idle: Duration::from_millis(200),
        keepalive_timeout: Duration::from_millis(1500),
        ..timing()
    };
    let running = start(config, timing).await;
    gateway.wait_connections(1, WAIT).await;
    // Idle but answering pings: the connection is kept.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        gateway.n_accepted(),
        1,
        "{:?}",
        running.chat.status().borrow()
    );
    gateway.freeze_connection();
    gateway.wait_connections(2, WAIT).await;
    let status = running.chat.status().borrow().clone();
    assert_eq!(
        status.last_error.as_deref(),
        Some("the connection went silent"),
        "{status:?}"
    );
    running.chat.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_wrong_credentials_are_retried_and_reported_without_the_secret() {
    let gateway = Gateway::start(GatewayConfig::default()).await;
    let config = ChatConfig {
        mode: ChatMode::Stream,
        client_id: gateway.config().client_id.clone(),
        client_secret: Secret::new("zz9-wrong-secret"),
        allow: allow_zhang(),
        api_base: gateway.api_base().parse().unwrap(),
    };
    let running = start(config, timing()).await;
    let mut status = running.chat.status();
    let ok = tokio::time::timeout(
        WAIT,
        status.wait_for(|s| {
            matches!(s.state, LinkState::Retrying { .. }) && gateway.opens().len() >= 2
        }),
    )
    .await;
    assert!(ok.is_ok(), "{:?}", running.chat.status().borrow());
    let status = running.chat.status().borrow().clone();
    let error = status.last_error.clone().unwrap();
    assert!(
        error.contains("refused") && error.contains("401"),
        "{error}"
    );
    assert!(!error.contains("zz9"), "{error}");
    assert!(!status.summary(SystemTime::now()).contains("zz9"));
    assert_eq!(gateway.n_accepted(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_a_denied_user_gets_a_polite_refusal_and_nothing_reaches_the_daemon() {
    let gateway = Gateway::start(GatewayConfig::default()).await;
    let standin = Standin::start();
    let mut running = start_stream(&gateway, allow_zhang()).await;
    gateway.wait_connections(1, WAIT).await;
    let mut said = Said::by_zhang(&standin.webhook_url());
    said.nick = "李四".into();
    said.staff_id = "0999".into();
    let id = gateway.push_robot_message(&robot_message("mute nginx-5xx 1h", &said));
    assert_eq!(gateway.wait_ack(&id, WAIT).await["code"], 200);
    let reply = content(&delivered(&standin, 1)[0]);
    assert!(
        reply.contains("李四") && reply.contains("not allowed"),
        "{reply}"
    );
    assert!(reply.ends_with("@0999"), "{reply}");
    assert!(
        running.requests.try_recv().is_err(),
        "a denied command was forwarded"
    );
    let metrics = running.metrics.encode();
    assert!(
        metrics.contains(r#"dingtail_chat_commands_total{command="mute",outcome="denied"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_standin_refuses_reused_and_stale_tickets() {
    let gateway = Gateway::start(GatewayConfig {
        ticket_ttl: Duration::from_millis(200),
        ..GatewayConfig::default()
    })
    .await;
    let open = |gateway: &Gateway| {
        let body = json!({
            "clientId": gateway.config().client_id,
            "clientSecret": gateway.config().client_secret,
            "subscriptions": [],
        });
        let url = format!("{}/v1.0/gateway/connections/open", gateway.api_base());
        async move {
            let answer: Value = reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            format!(
                "{}?ticket={}",
                answer["endpoint"].as_str().unwrap(),
                answer["ticket"].as_str().unwrap()
            )
        }
    };
    let url = open(&gateway).await;
    let first = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(first.is_ok(), "{first:?}");
    let again = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(again.is_err(), "a reused ticket was accepted");
    let url = open(&gateway).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tokio_tungstenite::connect_async(url.as_str())
            .await
            .is_err(),
        "a stale ticket was accepted"
    );
    let accepted: Vec<bool> = gateway.connects().iter().map(|c| c.accepted).collect();
    assert_eq!(accepted, [true, false, false]);
}

async fn start_http(secret: &str, allow: ChatAllow) -> (Running, String) {
    let config = ChatConfig {
        mode: ChatMode::Http {
            listen: "127.0.0.1:0".parse().unwrap(),
        },
        client_id: String::new(),
        client_secret: Secret::new(secret),
        allow,
        api_base: "https://api.dingtalk.com".parse().unwrap(),
    };
    let running = start(config, timing()).await;
    let url = format!(
        "http://{}/dingtalk/callback",
        running.chat.local_addr().unwrap()
    );
    (running, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_a_signed_command_is_answered_synchronously() {
    let secret = "SECapp-zz9";
    let (mut running, url) = start_http(secret, allow_zhang()).await;
    assert_eq!(running.chat.status().borrow().state, LinkState::Listening);
    let body = robot_message(
        "ack nginx-5xx host=web-3",
        &Said::by_zhang("https://oapi.dingtalk.com/robot/sendBySession?session=s"),
    );
    let answering = tokio::spawn({
        let url = url.clone();
        async move { post_signed(&url, secret, body.to_string()).await }
    });
    let request = next_request(&mut running.requests).await;
    assert_eq!(
        request.command,
        Command::Ack {
            rule: "nginx-5xx".into(),
            matchers: vec![Matcher {
                key: "host".into(),
                value: "web-3".into()
            }],
        }
    );
    request.answer("张三 acknowledged nginx-5xx (host=web-3)");
    let (status, body) = answering.await.unwrap();
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["msgtype"], "text");
    assert_eq!(
        body["text"]["content"],
        "张三 acknowledged nginx-5xx (host=web-3)\n@0123"
    );
    assert_eq!(body["at"]["atUserIds"], json!(["0123"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_a_message_delivered_twice_is_carried_out_once() {
    let secret = "SECapp-zz9";
    let (mut running, url) = start_http(secret, allow_zhang()).await;
    let body = robot_message(
        "mute nginx-5xx 1h",
        &Said::by_zhang("https://oapi.dingtalk.com/robot/sendBySession?session=s"),
    );
    let first = tokio::spawn({
        let (url, body) = (url.clone(), body.to_string());
        async move { post_signed(&url, secret, body).await }
    });
    let request = next_request(&mut running.requests).await;
    request.answer("张三 muted nginx-5xx for 1h");
    let (status, answered) = first.await.unwrap();
    assert_eq!(status, 200, "{answered}");
    assert!(answered.contains("muted nginx-5xx"), "{answered}");

    // DingTalk delivers the same msgId again (its first answer seemed slow): no second silence.
    let (status, again) = post_signed(&url, secret, body.to_string()).await;
    assert_eq!(status, 200, "{again}");
    assert!(
        !again.contains("muted"),
        "a repeat is not answered again: {again}"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(500), running.requests.recv())
            .await
            .is_err(),
        "a repeat never reaches the daemon"
    );
    let text = running.metrics.encode();
    assert!(
        text.contains(r#"dingtail_chat_commands_total{command="mute",outcome="repeat"} 1"#),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_bad_sign_old_timestamp_oversized_and_malformed_callbacks_are_refused_with_nothing_forwarded()
 {
    let secret = "SECapp-zz9";
    let (mut running, url) = start_http(secret, allow_zhang()).await;
    let body = robot_message(
        "mute nginx-5xx 1h",
        &Said::by_zhang("https://oapi.dingtalk.com/robot/sendBySession?session=s"),
    )
    .to_string();
    let now = now_ms();
    let two_hours_ago = now - 2 * 3600 * 1000;
    let mut wrong_sign = callback_headers(secret, now);
    wrong_sign[0].1 = callback_headers("SECother", now)[0].1.clone();
    let mut swapped_timestamp = callback_headers(secret, now);
    swapped_timestamp[1].1 = (now + 1).to_string();
    type Headers = Vec<(&'static str, String)>;
    let cases: Vec<(&str, Headers, String, u16)> = vec![
        ("no headers", vec![], body.clone(), 403),
        (
            "timestamp only",
            vec![("timestamp", now.to_string())],
            body.clone(),
            403,
        ),
        ("another secret's sign", wrong_sign, body.clone(), 403),
        (
            "a sign for another timestamp",
            swapped_timestamp,
            body.clone(),
            403,
        ),
        (
            "two hours old",
            callback_headers(secret, two_hours_ago),
            body.clone(),
            403,
        ),
        (
            "oversized",
            callback_headers(secret, now),
            format!("{{\"pad\":\"{}\"}}", "x".repeat(100_000)),
            413,
        ),
        (
            "not JSON",
            callback_headers(secret, now),
            "mute nginx 1h".into(),
            400,
        ),
        (
            "not a robot message",
            callback_headers(secret, now),
            r#"{"msgtype":"text"}"#.into(),
            400,
        ),
    ];
    for (what, headers, body, want) in cases {
        let (status, answer) = post(&url, &headers, body).await;
        assert_eq!(status, want, "{what}: {answer}");
        assert!(!answer.contains("zz9"), "{what}: {answer}");
    }
    // Give a forwarded request (there must be none) time to show.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        running.requests.try_recv().is_err(),
        "a refused callback was forwarded"
    );
    let metrics = running.metrics.encode();
    for want in [
        r#"dingtail_chat_callbacks_refused_total{reason="missing"} 2"#,
        r#"dingtail_chat_callbacks_refused_total{reason="bad_sign"} 2"#,
        r#"dingtail_chat_callbacks_refused_total{reason="stale"} 1"#,
        r#"dingtail_chat_callbacks_refused_total{reason="too_large"} 1"#,
        r#"dingtail_chat_callbacks_refused_total{reason="malformed"} 2"#,
    ] {
        assert!(metrics.contains(want), "missing {want}: {metrics}");
    }
    assert!(
        !metrics.contains("dingtail_chat_commands_total{"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_a_slow_answer_goes_through_the_session_webhook() {
    let secret = "SECapp";
    let standin = Standin::start();
    let (mut running, url) = start_http(secret, allow_zhang()).await;
    let body = robot_message("status", &Said::by_zhang(&standin.webhook_url()));
    let answering = tokio::spawn({
        let url = url.clone();
        async move { post_signed(&url, secret, body.to_string()).await }
    });
    let request = next_request(&mut running.requests).await;
    // The callback is answered with an empty message before the daemon replies.
    let (status, body) = answering.await.unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"msgtype":"empty"}"#));
    assert!(standin.received().is_empty());
    request.answer("2 files, 5 rules, nothing pending");
    let replies = delivered(&standin, 1);
    assert_eq!(
        content(&replies[0]),
        "2 files, 5 rules, nothing pending\n@0123"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_a_denied_user_gets_a_polite_refusal_and_nothing_reaches_the_daemon() {
    let secret = "SECapp";
    let allow = ChatAllow {
        users: vec![],
        conversations: vec!["cidOps==".into()],
        admins_only: true,
    };
    let (mut running, url) = start_http(secret, allow).await;
    let mut said = Said::by_zhang("https://oapi.dingtalk.com/robot/sendBySession?session=s");
    said.is_admin = false;
    let (status, body) = post_signed(
        &url,
        secret,
        robot_message("unmute nginx-5xx", &said).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    let reply = body["text"]["content"].as_str().unwrap();
    assert!(
        reply.contains("张三") && reply.contains("not allowed"),
        "{reply}"
    );
    // Another conversation is refused too, even for an admin.
    said.is_admin = true;
    said.conversation = "cidElsewhere==".into();
    let (_, body) = post_signed(&url, secret, robot_message("status", &said).to_string()).await;
    assert!(body.contains("not allowed"), "{body}");
    assert!(
        running.requests.try_recv().is_err(),
        "a denied command was forwarded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_webhook_is_refused_locally() {
    let standin = Standin::start();
    let (tx, _requests) = mpsc::channel(REQUEST_CAPACITY);
    let client = Client::new(ClientConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
    })
    .unwrap();
    let answerer = Answerer::new(
        allow_zhang(),
        tx,
        client,
        Arc::new(Metrics::new()),
        Duration::from_secs(1),
    );
    let mut said = Said::by_zhang(&standin.webhook_url());
    said.expires_ms = now_ms() - 1_000;
    let message =
        RobotMessage::parse(robot_message("status", &said).to_string().as_bytes()).unwrap();
    let refused = answerer.post(&message, "too late").await;
    assert!(
        matches!(
            refused,
            Err(ReplyError::Webhook(WebhookRefusal::Expired(_)))
        ),
        "{refused:?}"
    );
    said.expires_ms = now_ms() + 60_000;
    let message =
        RobotMessage::parse(robot_message("status", &said).to_string().as_bytes()).unwrap();
    answerer.post(&message, "in time").await.unwrap();
    let received = standin.received();
    assert_eq!(received.len(), 1, "{received:#?}");
    assert!(content(&received[0]).starts_with("in time"));
}
