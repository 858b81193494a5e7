//! Answering back through the daemon (issue 16): `dingtail run` with `chat:` against the Stream
//! gateway stand-in (`support::gateway`) and with signed HTTP callbacks. Alerts go to one
//! DingTalk stand-in; replies go to the message's session webhook, a second stand-in.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::chat::{Said, now_ms, post, post_signed, robot_message};
use crate::support::daemon::Daemon;
use crate::support::gateway::{Gateway, GatewayConfig};
use crate::support::harness::Dir;
use crate::support::http::{free_port, get, try_get};
use crate::support::standin::{Received, Standin};

const WAIT: Duration = Duration::from_secs(15);

/// The YAML of a `chat:` section in stream mode towards `gateway`, allowing 张三 (0123).
pub fn stream_chat(gateway: &Gateway) -> String {
    format!(
        "chat:
  mode: stream
  client_id: {}
  client_secret: {}
  api_base: {}
  allow:
    users: [\"0123\"]
",
        gateway.config().client_id,
        gateway.config().client_secret,
        gateway.api_base()
    )
}

/// A config with one input (`logs/app.log`), rules `oops` and `disk` to the stand-in's robot,
/// `extra` at the top level.
pub fn config(dir: &Dir, alerts: &Standin, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    std::fs::write(dir.join("logs/app.log"), "").unwrap();
    dir.create(
        "rules.yaml",
        "- name: oops
  input: app
  match: 'OOPS (?P<what>\\S+)'
  robot: ops
  title: 'oops {{ what }}'
  template: 'something broke: {{ what }} <b>{{ line }}</b>'
- name: disk
  input: app
  match: 'No space left'
  severity: critical
  robot: ops
",
    );
    dir.create(
        "dingtail.yaml",
        format!(
            "state_dir: state
host: web-1
timezone: Asia/Shanghai
{extra}inputs:
  app:
    paths: [\"logs/app.log\"]
    poll_interval: 100ms
robots:
{}    linger: 200ms
rules: [\"rules.yaml\"]
",
            alerts.robot_yaml("ops")
        ),
    )
}

pub fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// The text of a reply delivered to the session stand-in.
pub fn content(received: &Received) -> String {
    received.body.as_ref().unwrap()["text"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits (blocking this worker of the multi-thread runtime) for a reply containing `text`.
pub fn reply_containing(session: &Standin, text: &str) -> String {
    let found = tokio::task::block_in_place(|| {
        session.wait_for(
            |received| received.iter().any(|r| content(r).contains(text)),
            WAIT,
        )
    });
    let replies: Vec<String> = session.delivered().iter().map(content).collect();
    assert!(found, "no reply containing {text:?}: {replies:#?}");
    replies
        .into_iter()
        .rev()
        .find(|reply| reply.contains(text))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_status_and_test_are_answered_in_the_group_and_the_link_survives_a_drop() {
    let gateway = Gateway::start(GatewayConfig::default()).await;
    let alerts = Standin::start();
    let session = Standin::start();
    let dir = Dir::new("chat-stream");
    let port = free_port();
    let config = config(
        &dir,
        &alerts,
        &format!("listen: 127.0.0.1:{port}\n{}", stream_chat(&gateway)),
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    gateway.wait_connections(1, WAIT).await;
    daemon.wait_for("chat in /healthz", WAIT, |_| {
        try_get(port, "/healthz").is_some_and(|(_, body)| body.contains("chat: connected"))
    });

    // A command before any match: `test` says so; an unknown rule is named.
    let said = Said::by_zhang(&session.webhook_url());
    gateway.push_robot_message(&robot_message("测试 oops", &said));
    let reply = reply_containing(&session, "oops");
    assert!(reply.contains("没有匹配"), "{reply}");
    gateway.push_robot_message(&robot_message("test nope", &said));
    let reply = reply_containing(&session, "nope");
    assert!(reply.contains("没有名为 nope 的规则"), "{reply}");

    // A match goes to the alert robot; `test` renders it again as plain text: log text stays
    // inert (no markup, no mention).
    append(
        &dir.join("logs/app.log"),
        "OOPS db-1 [x](http://evil) @13800000000\n",
    );
    tokio::task::block_in_place(|| alerts.wait_delivered(1, WAIT));
    gateway.push_robot_message(&robot_message("test oops", &said));
    let reply = reply_containing(&session, "渲染如下");
    assert!(reply.starts_with("oops 最近一次匹配（"), "{reply}");
    assert!(reply.contains("logs/app.log"), "{reply}");
    assert!(reply.contains("oops db-1"), "{reply}");
    assert!(reply.contains("something broke: db-1"), "{reply}");
    assert!(
        reply.contains("@\u{200B}13800000000") && !reply.contains("@13800000000"),
        "the mention is broken once, invisibly: {reply}"
    );
    assert!(
        reply.contains("http:\u{200B}//evil") && !reply.contains("http://evil"),
        "the address is broken once, invisibly: {reply}"
    );
    assert!(!reply.contains("‹U+200B›"), "{reply}");
    let delivered = session.delivered();
    let last = delivered.last().unwrap().body.clone().unwrap();
    assert_eq!(last["msgtype"], "text", "{last}");
    assert_eq!(last["at"]["atMobiles"], serde_json::json!([]), "{last}");

    // `status` in Chinese, in the configured zone, once the daemon has the alert robot's answer
    // (the stand-in records a message before it answers; under load the chat can be quicker).
    daemon.wait_for("the alert's answer", WAIT, |_| {
        try_get(port, "/metrics").is_some_and(|(_, body)| {
            body.lines()
                .any(|line| line == "dingtail_messages_sent_total{robot=\"ops\"} 1")
        })
    });
    gateway.push_robot_message(&robot_message("状态", &said));
    let reply = reply_containing(&session, "dingtail（web-1）");
    assert!(
        reply.contains("文件 1 个，规则 2 条，待发 0 条，最近投递 "),
        "{reply}"
    );
    assert!(
        reply.contains("机器人 ops：待发 0，本窗口余量 19/20"),
        "{reply}"
    );
    assert!(reply.contains("静默 0 个"), "{reply}");

    // The gateway drops the connection: the daemon opens a new one and keeps answering.
    gateway.drop_connection();
    gateway.wait_connections(2, WAIT).await;
    gateway.push_robot_message(&robot_message("status", &said));
    let n_status = || {
        session
            .delivered()
            .iter()
            .filter(|r| content(r).contains("dingtail（web-1）"))
            .count()
    };
    let answered = tokio::task::block_in_place(|| {
        session.wait_for(
            |received| {
                received
                    .iter()
                    .filter(|r| content(r).contains("dingtail（web-1）"))
                    .count()
                    >= 2
            },
            WAIT,
        )
    });
    assert!(answered, "{} status replies", n_status());
    let metrics = get(port, "/metrics").1;
    assert!(
        metrics.contains(r#"dingtail_chat_commands_total{command="status",outcome="answered"} 2"#),
        "{metrics}"
    );
    assert!(metrics.contains("dingtail_chat_connected 1"), "{metrics}");
    // The alerts robot got the one alert and nothing else.
    assert_eq!(alerts.delivered().len(), 1);
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_callbacks_are_checked_and_a_reload_turns_the_chat_on_and_off() {
    let alerts = Standin::start();
    let dir = Dir::new("chat-http");
    let port = free_port();
    let chat_port = free_port();
    let secret = "SECapp-daemon-1";
    let config = config(
        &dir,
        &alerts,
        &format!("listen: 127.0.0.1:{port}\nlanguage: en\n"),
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    daemon.wait_for("healthz", WAIT, |_| {
        try_get(port, "/healthz").is_some_and(|(status, _)| status == 200)
    });
    assert!(!get(port, "/healthz").1.contains("chat"));

    // A reload adds `chat:` in http mode: the endpoint comes up.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "chat:\n  mode: http\n  listen: 127.0.0.1:{chat_port}\n  client_secret: {secret}\n  allow:\n    users: [\"0123\"]\n{text}"
        ),
    )
    .unwrap();
    daemon.signal("HUP");
    daemon.wait_for("chat listening", WAIT, |_| {
        get(port, "/healthz").1.contains("chat: listening")
    });
    let url = format!("http://127.0.0.1:{chat_port}/dingtalk/callback");
    let said = Said::by_zhang("https://oapi.dingtalk.com/robot/sendBySession?session=s");

    // Signed: answered synchronously, in English, naming the state.
    let (status, body) =
        post_signed(&url, secret, robot_message("status", &said).to_string()).await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    let text = body["text"]["content"].as_str().unwrap();
    assert!(
        text.starts_with("dingtail on web-1: 1 file, 2 rules, 0 pending"),
        "{text}"
    );
    assert!(text.ends_with("@0123"), "{text}");

    // Wrong sign, an old timestamp, no headers: 403, nothing carried out.
    let message = robot_message("status", &said).to_string();
    let wrong = crate::support::chat::callback_headers("not-the-secret", now_ms());
    assert_eq!(post(&url, &wrong, message.clone()).await.0, 403);
    let old = crate::support::chat::callback_headers(secret, now_ms() - 2 * 3600 * 1000);
    assert_eq!(post(&url, &old, message.clone()).await.0, 403);
    assert_eq!(post(&url, &[], message).await.0, 403);
    // Someone not allowed: a polite refusal, logged.
    let mut outsider = Said::by_zhang("https://oapi.dingtalk.com/robot/sendBySession?session=s");
    outsider.staff_id = "0999".into();
    outsider.nick = "王五".into();
    let (status, body) =
        post_signed(&url, secret, robot_message("status", &outsider).to_string()).await;
    assert_eq!(status, 200);
    assert!(body.contains("not allowed"), "{body}");
    let metrics = get(port, "/metrics").1;
    assert!(
        metrics.contains(r#"dingtail_chat_commands_total{command="status",outcome="answered"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"dingtail_chat_callbacks_refused_total{reason="bad_sign"} 1"#),
        "{metrics}"
    );
    tokio::task::block_in_place(|| {
        daemon.wait_for_log("chat: refused a command", WAIT);
    });

    // A reload without `chat:` closes the endpoint.
    std::fs::write(&config, text_without_chat(&config)).unwrap();
    daemon.signal("HUP");
    daemon.wait_for("chat gone", WAIT, |_| {
        !get(port, "/healthz").1.contains("chat")
    });
    assert!(std::net::TcpStream::connect(("127.0.0.1", chat_port)).is_err());
    let stderr = daemon.stderr().join("\n");
    assert!(!stderr.contains(secret), "the app secret was logged");
    daemon.stop();
}

fn text_without_chat(config: &Path) -> String {
    let text = std::fs::read_to_string(config).unwrap();
    text.lines()
        .skip_while(|line| line.starts_with("chat:") || line.starts_with(' '))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[test]
fn a_taken_chat_port_stops_the_start_with_a_clear_error() {
    let alerts = Standin::start();
    let dir = Dir::new("chat-taken");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let chat_port = taken.local_addr().unwrap().port();
    let config = config(
        &dir,
        &alerts,
        &format!(
            "chat:\n  mode: http\n  listen: 127.0.0.1:{chat_port}\n  client_secret: s3cr3t-app\n  allow:\n    users: [\"0123\"]\n"
        ),
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    let status = daemon.wait_exit(WAIT);
    assert_eq!(status.code(), Some(6), "{}", daemon.describe());
    let stderr = daemon.stderr().join("\n");
    assert!(
        stderr.contains("cannot start answering back") && stderr.contains(&chat_port.to_string()),
        "{stderr}"
    );
}

/// A reply without the mention of its sender that ends it.
fn bare(reply: &str) -> &str {
    reply.strip_suffix("\n@0123").unwrap_or(reply)
}

/// `dingtail CMD -c CONFIG` in `dir`; its stdout (it must succeed).
fn shell(dir: &Dir, config: &Path, command: &str) -> String {
    let out = dir
        .command()
        .args([command, "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The texts the alert robot received, each title then text.
fn alert_texts(alerts: &Standin) -> Vec<String> {
    alerts
        .delivered()
        .iter()
        .map(|r| format!("{} | {}", r.title(), r.visible_text()))
        .collect()
}

/// Waits for a message to the alert robot containing `text`.
fn alert_containing(alerts: &Standin, text: &str) -> String {
    let found = tokio::task::block_in_place(|| {
        alerts.wait_for(
            |received| {
                received
                    .iter()
                    .any(|r| r.is_delivered() && r.visible_text().contains(text))
            },
            WAIT,
        )
    });
    let texts = alert_texts(alerts);
    assert!(found, "no alert containing {text:?}: {texts:#?}");
    texts
        .into_iter()
        .rev()
        .find(|t| t.contains(text))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mute_typed_in_the_chat_holds_its_rule_back_survives_a_restart_and_unmute_reports_it() {
    let gateway = Gateway::start(GatewayConfig::default()).await;
    let alerts = Standin::start();
    let session = Standin::start();
    let dir = Dir::new("chat-mute");
    let config = config(
        &dir,
        &alerts,
        &format!("language: en\n{}", stream_chat(&gateway)),
    );
    let log = dir.join("logs/app.log");
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    gateway.wait_connections(1, WAIT).await;
    let said = Said::by_zhang(&session.webhook_url());

    // A mute typed in the chat (Chinese command word): it names who, until when and its id.
    gateway.push_robot_message(&robot_message("静默 oops 1h deploy", &said));
    let reply = reply_containing(&session, "muted oops");
    assert!(
        reply.starts_with("张三 muted oops for 1 h until "),
        "{reply}"
    );
    assert!(reply.contains("(deploy)"), "{reply}");
    let id = reply
        .split(", id ")
        .nth(1)
        .and_then(|rest| rest.split([' ', '.', ',']).next())
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 6, "{reply}");
    // Stored in the table the shell reads, named after the sender.
    let listed = shell(&dir, &config, "mutes");
    assert!(
        listed.contains(&id) && listed.contains("张三") && listed.contains("deploy"),
        "{listed}"
    );

    // The muted rule's lines stop at the robot; the other rule's still arrive.
    append(&log, "OOPS first\nOOPS second\nNo space left on /var\n");
    let disk = alert_containing(&alerts, "No space left");
    assert!(!disk.contains("something broke"), "{disk}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let texts = alert_texts(&alerts);
    assert!(
        texts.iter().all(|t| !t.contains("something broke")),
        "{texts:#?}"
    );
    // `mutes` and `status` show it with its count.
    gateway.push_robot_message(&robot_message("mutes", &said));
    let reply = reply_containing(&session, "1 active silence:");
    assert!(reply.contains(&format!("{id} oops until ")), "{reply}");
    assert!(reply.contains("(张三: deploy; 2 muted)"), "{reply}");
    gateway.push_robot_message(&robot_message("status", &said));
    let reply = reply_containing(&session, "dingtail on web-1");
    assert!(reply.contains("1 active silence\n- "), "{reply}");

    // A restart keeps the silence and its count.
    daemon.stop();
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    gateway.wait_connections(2, WAIT).await;
    append(&log, "OOPS third\n");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    gateway.push_robot_message(&robot_message("mutes", &said));
    let reply = reply_containing(&session, "3 muted");
    assert!(reply.contains(&id), "{reply}");

    // `unmute RULE`: named in the reply with its count; the count reaches the group; the
    // rule's lines come back; the silence is gone from the table.
    gateway.push_robot_message(&robot_message("unmute oops", &said));
    let reply = reply_containing(&session, "ended silence");
    assert_eq!(
        bare(&reply),
        format!("张三 ended silence {id} (oops, 3 muted)")
    );
    let ended = alert_containing(&alerts, "3 matches while muted");
    assert!(ended.contains("silence ended"), "{ended}");
    append(&log, "OOPS fourth\n");
    alert_containing(&alerts, "something broke: fourth");
    let texts = alert_texts(&alerts);
    assert!(
        texts.iter().all(|t| !t.contains("something broke: first")),
        "{texts:#?}"
    );
    assert_eq!(shell(&dir, &config, "mutes").trim(), "no silences");
    gateway.push_robot_message(&robot_message("unmute oops", &said));
    let reply = reply_containing(&session, "no active silence");
    assert!(reply.contains("id or rule oops"), "{reply}");
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_holds_a_firing_threshold_incident_s_repeats_and_unknown_names_are_answered() {
    let gateway = Gateway::start(GatewayConfig::default()).await;
    let alerts = Standin::start();
    let session = Standin::start();
    let dir = Dir::new("chat-ack");
    let config = config(
        &dir,
        &alerts,
        &format!("language: en\n{}", stream_chat(&gateway)),
    );
    dir.create(
        "rules.yaml",
        "- name: api
  input: app
  match: 'ERR (?P<code>\\d+)'
  robot: ops
  title: 'api error {{ code }}'
  group_by: code
  when: {count: 2, within: 1m}
  realert: 2s
  resolve: {after: 1h}
- name: oops
  input: app
  match: 'OOPS (?P<what>\\S+)'
  robot: ops
",
    );
    let log = dir.join("logs/app.log");
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    gateway.wait_connections(1, WAIT).await;
    let said = Said::by_zhang(&session.webhook_url());

    // A threshold per key: one 500 is below it, the second fires (the 404 never does).
    append(&log, "ERR 500 first\nERR 404 lone\nERR 500 again\n");
    tokio::task::block_in_place(|| alerts.wait_delivered(1, WAIT));
    let fired = &alert_texts(&alerts)[0];
    assert!(
        fired.contains("api error 500") && fired.contains("2 matches within 1 min"),
        "{fired}"
    );
    gateway.push_robot_message(&robot_message("ack api code=404", &said));
    let reply = reply_containing(&session, "not firing");
    assert_eq!(
        bare(&reply),
        "api code=404 is not firing: nothing to acknowledge"
    );
    gateway.push_robot_message(&robot_message("确认 api", &said));
    let reply = reply_containing(&session, "acknowledged");
    assert_eq!(
        bare(&reply),
        "张三 acknowledged api code=500: no more repeats until it resolves"
    );
    gateway.push_robot_message(&robot_message("status", &said));
    let reply = reply_containing(&session, "1 firing");
    assert!(
        reply.contains("- api code=500 since ") && reply.contains("(acknowledged)"),
        "{reply}"
    );
    // Acknowledged: the matches after it are not repeated when the realert period ends.
    append(&log, "ERR 500 second\nERR 500 third\n");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let texts = alert_texts(&alerts);
    assert_eq!(texts.len(), 1, "{texts:#?}");

    // A rule without alert keys, unknown rules and names.
    gateway.push_robot_message(&robot_message("ack oops", &said));
    reply_containing(&session, "rule oops sends each match");
    gateway.push_robot_message(&robot_message("mute nope 1h", &said));
    let reply = reply_containing(&session, "nope");
    assert_eq!(bare(&reply), "there is no rule named nope");
    gateway.push_robot_message(&robot_message("ack nope2", &said));
    reply_containing(&session, "there is no rule named nope2");
    gateway.push_robot_message(&robot_message("mute api cod=500 1h", &said));
    let reply = reply_containing(&session, "value named cod");
    assert_eq!(
        bare(&reply),
        "rule api has no capture or context value named cod (did you mean code?)"
    );
    assert_eq!(shell(&dir, &config, "mutes").trim(), "no silences");
    daemon.stop();
}
