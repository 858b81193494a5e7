//! `dingtail send` against the DingTalk stand-in (issue 2): every message kind delivered signed,
//! keywords and mentions written into the text, each failure class mapped to its exit status, a
//! retry after HTTP 500, and no secret on stderr. Also checks that the stand-in itself judges
//! like DingTalk, since the daemon's end-to-end tests rely on it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::harness::{Dir, describe, run_expect};
use crate::support::standin::{Answer, Failure, For, Standin, StandinConfig, expected_sign};

/// `dingtail send` for `standin`'s robot: webhook and secret from the environment (as a script
/// would pass them), fast retries.
fn send(dir: &Dir, standin: &Standin) -> Command {
    let mut cmd = send_without_retry_flags(dir, standin);
    cmd.args(["--retries", "2", "--retry-delay", "20ms", "--timeout", "5s"]);
    cmd
}

/// Like [`send`], leaving `--retries`, `--retry-delay` and `--timeout` to the test.
fn send_without_retry_flags(dir: &Dir, standin: &Standin) -> Command {
    let mut cmd = dir.command();
    cmd.arg("send")
        .env("DINGTAIL_WEBHOOK", standin.webhook_url());
    if let Some(secret) = standin.secret() {
        cmd.env("DINGTAIL_SECRET", secret);
    }
    cmd
}

/// Runs `cmd`, asserts the exit status and that stderr shows neither token nor secret; returns
/// stderr.
fn run_status(cmd: &mut Command, code: i32, standin: &Standin) -> String {
    let output = run_expect(cmd, code);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    for shown in [&stderr, &stdout] {
        assert!(
            !shown.contains(standin.token()),
            "the token leaked{}",
            describe(cmd, &output)
        );
        if let Some(secret) = standin.secret() {
            assert!(
                !shown.contains(secret),
                "the secret leaked{}",
                describe(cmd, &output)
            );
        }
    }
    stderr
}

fn delivered_body(standin: &Standin) -> serde_json::Value {
    let delivered = standin.delivered();
    assert_eq!(delivered.len(), 1, "{:#?}", standin.received());
    let request = &delivered[0];
    if standin.secret().is_some() {
        assert!(request.param("timestamp").is_some() && request.param("sign").is_some());
    }
    request.body.clone().unwrap()
}

#[test]
fn text_is_delivered_signed() {
    let dir = Dir::new("send-text");
    let standin = Standin::start_with(StandinConfig::signed());
    run_status(
        send(&dir, &standin).args(["--text", "disk full on db-1"]),
        0,
        &standin,
    );
    let body = delivered_body(&standin);
    assert_eq!(body["msgtype"], "text");
    assert_eq!(body["text"]["content"], "disk full on db-1");
}

#[test]
fn markdown_is_delivered_signed_with_mentions_in_the_text_and_hard_breaks() {
    let dir = Dir::new("send-markdown");
    let standin = Standin::start_with(StandinConfig::signed());
    run_status(
        send(&dir, &standin).args([
            "--markdown",
            "### ERROR in payments\nline one\nline two",
            "--title",
            "ERROR",
            "--at-mobile",
            "13800000000",
            "--at-user",
            "ops01",
        ]),
        0,
        &standin,
    );
    let body = delivered_body(&standin);
    assert_eq!(body["markdown"]["title"], "ERROR");
    assert_eq!(
        body["markdown"]["text"],
        "### ERROR in payments  \nline one  \nline two\n\n@13800000000 @ops01"
    );
    assert_eq!(body["at"]["atMobiles"][0], "13800000000");
    assert_eq!(body["at"]["atUserIds"][0], "ops01");
    assert_eq!(body["at"]["isAtAll"], false);
}

#[test]
fn link_is_delivered_signed() {
    let dir = Dir::new("send-link");
    let standin = Standin::start_with(StandinConfig::signed());
    run_status(
        send(&dir, &standin).args([
            "--link",
            "--title",
            "Disk almost full",
            "--text",
            "/var at 97% on db-1",
            "--message-url",
            "https://grafana.example/d/abc",
        ]),
        0,
        &standin,
    );
    let body = delivered_body(&standin);
    assert_eq!(body["link"]["messageUrl"], "https://grafana.example/d/abc");
    assert_eq!(body["link"]["picUrl"], "");
}

#[test]
fn action_cards_with_one_and_several_buttons_are_delivered_signed() {
    let dir = Dir::new("send-action-card");
    let standin = Standin::start_with(StandinConfig::signed());
    run_status(
        send(&dir, &standin).args([
            "--action-card",
            "--title",
            "Build failed",
            "--text",
            "### Build #42 failed",
            "--single-title",
            "Open log",
            "--single-url",
            "https://ci.example/42",
        ]),
        0,
        &standin,
    );
    let body = delivered_body(&standin);
    assert_eq!(body["actionCard"]["singleURL"], "https://ci.example/42");
    standin.clear();
    run_status(
        send(&dir, &standin).args([
            "--action-card",
            "--title",
            "Build failed",
            "--text",
            "### Build #42 failed",
            "--button",
            "Log=https://ci.example/42/log",
            "--button",
            "Retry=https://ci.example/42/retry?x=1",
            "--btn-orientation",
            "horizontal",
        ]),
        0,
        &standin,
    );
    let body = delivered_body(&standin);
    assert_eq!(body["actionCard"]["btnOrientation"], "1");
    assert_eq!(
        body["actionCard"]["btns"][1]["actionURL"],
        "https://ci.example/42/retry?x=1"
    );
}

#[test]
fn feed_card_is_delivered_signed() {
    let dir = Dir::new("send-feed-card");
    let standin = Standin::start_with(StandinConfig::signed());
    run_status(
        send(&dir, &standin).args([
            "--feed-card",
            "--item",
            "web-3: 5xx burst=https://grafana.example/1=https://img.example/a.png",
            "--item",
            "db-1: disk 97%=https://grafana.example/2",
        ]),
        0,
        &standin,
    );
    let body = delivered_body(&standin);
    let links = body["feedCard"]["links"].as_array().unwrap();
    assert_eq!(links.len(), 2);
    assert_eq!(links[0]["picURL"], "https://img.example/a.png");
    assert_eq!(links[1]["messageURL"], "https://grafana.example/2");
}

#[test]
fn a_missing_keyword_is_added_to_the_visible_text() {
    let dir = Dir::new("send-keyword");
    let standin = Standin::start_with(StandinConfig {
        keywords: vec!["告警".into()],
        ..StandinConfig::signed()
    });
    // Without the keyword flag, the stand-in refuses like DingTalk: exit 3 with the errcode.
    let stderr = run_status(
        send(&dir, &standin).args(["--markdown", "disk full", "--title", "告警"]),
        3,
        &standin,
    );
    assert!(stderr.contains("310000"), "{stderr}");
    run_status(
        send(&dir, &standin).args([
            "--markdown",
            "disk full",
            "--title",
            "告警",
            "--keyword",
            "告警",
        ]),
        0,
        &standin,
    );
    assert!(
        delivered_body(&standin)["markdown"]["text"]
            .as_str()
            .unwrap()
            .contains("告警")
    );
}

#[test]
fn the_body_can_come_from_stdin_and_a_long_one_is_cut_to_fit() {
    let dir = Dir::new("send-stdin");
    let standin = Standin::start_with(StandinConfig::signed());
    let long: String = (0..3_000).map(|i| format!("第{i}行 🔥 error\n")).collect();
    let mut cmd = send(&dir, &standin);
    cmd.args(["--markdown", "-", "--title", "log"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(long.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&cmd, &output));
    let request = &standin.delivered()[0];
    assert!(request.raw_body.len() <= 20_000);
    assert!(
        request
            .visible_text()
            .starts_with("第0行 🔥 error  \n第1行")
    );
    assert!(request.visible_text().ends_with("error\n\n… truncated"));
}

#[test]
fn a_wrong_token_or_secret_exits_3_with_the_errcode() {
    let dir = Dir::new("send-rejected");
    let standin = Standin::start_with(StandinConfig::signed());
    let wrong_token = standin
        .webhook_url()
        .replace(standin.token(), "wrongtoken123");
    let stderr = run_status(
        send(&dir, &standin)
            .env("DINGTAIL_WEBHOOK", &wrong_token)
            .args(["--text", "x"]),
        3,
        &standin,
    );
    assert!(
        stderr.contains("300001") && stderr.contains("token"),
        "{stderr}"
    );
    assert!(!stderr.contains("wrongtoken123"), "{stderr}");
    let stderr = run_status(
        send(&dir, &standin)
            .env("DINGTAIL_SECRET", "SECwrong")
            .args(["--text", "x"]),
        3,
        &standin,
    );
    assert!(
        stderr.contains("310000") && stderr.contains("signature"),
        "{stderr}"
    );
    assert!(!stderr.contains("SECwrong"), "{stderr}");
    // Rejections are not retried.
    assert_eq!(standin.received().len(), 2);
}

#[test]
fn refused_connections_exit_4_after_the_retries() {
    let dir = Dir::new("send-refused");
    let standin = Standin::start_with(StandinConfig::signed());
    standin.stop();
    let stderr = run_status(send(&dir, &standin).args(["--text", "x"]), 4, &standin);
    assert!(stderr.contains("after 3 attempts"), "{stderr}");
    assert!(!stderr.contains(&standin.port().to_string()), "{stderr}");
}

#[test]
fn reset_connections_and_busy_answers_exit_4_after_the_retries() {
    let dir = Dir::new("send-reset");
    let standin = Standin::start_with(StandinConfig::signed());
    standin.fail(Failure::Reset, For::Requests(3));
    run_status(send(&dir, &standin).args(["--text", "x"]), 4, &standin);
    standin.fail(Failure::Errcode(-1), For::Requests(3));
    run_status(send(&dir, &standin).args(["--text", "x"]), 4, &standin);
    let answers: Vec<Answer> = standin.received().iter().map(|r| r.answer).collect();
    assert_eq!(
        answers,
        [
            [Answer::Reset; 3].as_slice(),
            [Answer::Errcode(-1); 3].as_slice()
        ]
        .concat()
    );
}

#[test]
fn a_retry_after_a_500_succeeds() {
    let dir = Dir::new("send-retry");
    let standin = Standin::start_with(StandinConfig::signed());
    standin.fail(Failure::Http500, For::Requests(1));
    run_status(send(&dir, &standin).args(["--text", "x"]), 0, &standin);
    let received = standin.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].answer, Answer::Http(500));
    assert!(received[1].is_delivered());
    // Each attempt is signed afresh from the pristine URL: exactly one timestamp and sign.
    for request in &received {
        assert_eq!(request.raw_query.matches("timestamp=").count(), 1);
        assert_eq!(request.raw_query.matches("sign=").count(), 1);
    }
}

#[test]
fn a_slow_robot_times_out_and_exits_4() {
    let dir = Dir::new("send-slow");
    let standin = Standin::start_with(StandinConfig::signed());
    standin.fail(
        Failure::Slow(Duration::from_millis(1_500)),
        For::Requests(2),
    );
    let stderr = run_status(
        send_without_retry_flags(&dir, &standin).args([
            "--text",
            "x",
            "--retries",
            "1",
            "--retry-delay",
            "10ms",
            "--timeout",
            "300ms",
        ]),
        4,
        &standin,
    );
    assert!(stderr.contains("timed out"), "{stderr}");
}

#[test]
fn a_robot_that_comes_back_on_the_same_port_gets_the_message() {
    let dir = Dir::new("send-comes-back");
    let standin = Standin::start_with(StandinConfig::signed());
    standin.refuse_for(Duration::from_millis(600));
    let refused = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(2));
        TcpStream::connect(("127.0.0.1", standin.port())).is_err()
    });
    assert!(refused, "the stand-in kept accepting connections");
    run_status(
        send_without_retry_flags(&dir, &standin).args([
            "--text",
            "x",
            "--retries",
            "6",
            "--retry-delay",
            "100ms",
        ]),
        0,
        &standin,
    );
    assert_eq!(standin.wait_delivered(1, Duration::from_secs(1)).len(), 1);
}

#[test]
fn a_throttled_robot_exits_5_and_says_until_when() {
    let dir = Dir::new("send-throttled");
    let standin = Standin::start_with(StandinConfig::signed());
    standin.throttle_now();
    let stderr = run_status(send(&dir, &standin).args(["--text", "x"]), 5, &standin);
    assert!(
        stderr.contains("130101") && stderr.contains("until"),
        "{stderr}"
    );
    assert_eq!(standin.received().len(), 1, "throttling is not retried");
}

#[test]
fn usage_errors_exit_2_without_echoing_the_webhook() {
    let dir = Dir::new("send-usage");
    let standin = Standin::start();
    let stderr = run_status(
        send(&dir, &standin)
            .env("DINGTAIL_WEBHOOK", format!("ftp://x/{}", standin.token()))
            .args(["--text", "x"]),
        2,
        &standin,
    );
    assert!(stderr.contains("http"), "{stderr}");
    let stderr = run_status(
        send(&dir, &standin).args([
            "--link",
            "--title",
            "t",
            "--text",
            "x",
            "--message-url",
            "https://a.example",
            "--at-mobile",
            "139",
        ]),
        2,
        &standin,
    );
    assert!(stderr.contains("cannot @-mention"), "{stderr}");
    run_status(&mut send(&dir, &standin), 2, &standin);
    run_status(
        dir.command()
            .arg("send")
            .env_remove("DINGTAIL_WEBHOOK")
            .args(["--text", "x"]),
        2,
        &standin,
    );
    assert!(standin.received().is_empty());
}

#[test]
fn dry_run_prints_the_body_and_sends_nothing() {
    let dir = Dir::new("send-dry-run");
    let output = run_expect(
        dir.command().args([
            "send",
            "--dry-run",
            "--keyword",
            "alert",
            "--text",
            "disk full",
            "--at-mobile",
            "139",
        ]),
        0,
    );
    let body: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(body["text"]["content"], "disk full\nalert @139");
}

// --- The stand-in itself: it must refuse what DingTalk refuses. ---

/// POSTs `body` to `target` on the stand-in with a raw HTTP/1.1 request; returns the errcode.
fn raw_post(standin: &Standin, target: &str, content_type: &str, body: &str) -> i64 {
    let mut stream = TcpStream::connect(("127.0.0.1", standin.port())).unwrap();
    write!(
        stream,
        "POST {target} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: {content_type}\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let json = answer.split("\r\n\r\n").nth(1).unwrap();
    serde_json::from_str::<serde_json::Value>(json).unwrap()["errcode"]
        .as_i64()
        .unwrap()
}

fn signed_target(standin: &Standin, timestamp: u128, encode: bool) -> String {
    let sign = expected_sign(standin.secret().unwrap(), &timestamp.to_string());
    let sign = if encode {
        url::form_urlencoded::byte_serialize(sign.as_bytes()).collect()
    } else {
        sign
    };
    format!(
        "/robot/send?access_token={}&timestamp={timestamp}&sign={sign}",
        standin.token()
    )
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[test]
fn standin_checks_signature_timestamp_and_encoding() {
    let standin = Standin::start_with(StandinConfig::signed());
    let text = r#"{"msgtype":"text","text":{"content":"x"}}"#;
    let json = "application/json";
    // Find a timestamp whose signature contains '+': sent unencoded it must fail.
    let now = now_ms();
    let with_plus = (now..now + 1_000)
        .find(|ts| expected_sign(standin.secret().unwrap(), &ts.to_string()).contains('+'))
        .unwrap();
    assert_eq!(
        raw_post(
            &standin,
            &signed_target(&standin, with_plus, true),
            json,
            text
        ),
        0
    );
    assert_eq!(
        raw_post(
            &standin,
            &signed_target(&standin, with_plus, false),
            json,
            text
        ),
        310_000
    );
    let stale = now - 3_700_000;
    assert_eq!(
        raw_post(&standin, &signed_target(&standin, stale, true), json, text),
        310_000
    );
    let doubled = format!("{}&timestamp={now}", signed_target(&standin, now, true));
    assert_eq!(raw_post(&standin, &doubled, json, text), 310_000);
    let unsigned = format!("/robot/send?access_token={}", standin.token());
    assert_eq!(raw_post(&standin, &unsigned, json, text), 310_000);
    let ok = signed_target(&standin, now, true);
    assert_eq!(raw_post(&standin, &ok, "text/plain", text), 43_004);
}

#[test]
fn standin_checks_schema_size_and_keywords() {
    let standin = Standin::start_with(StandinConfig {
        keywords: vec!["alert".into()],
        ..StandinConfig::default()
    });
    let target = format!("/robot/send?access_token={}", standin.token());
    let post = |body: &str| raw_post(&standin, &target, "application/json", body);
    assert_eq!(post(r#"{"msgtype":"text","text":{"content":"alert"}}"#), 0);
    assert_eq!(
        post(r#"{"msgtype":"text","text":{"content":"nothing"}}"#),
        310_000
    );
    // The markdown title does not count as visible text.
    assert_eq!(
        post(r#"{"msgtype":"markdown","markdown":{"title":"alert","text":"x"}}"#),
        310_000
    );
    assert_eq!(
        post(r#"{"msgtype":"markdown","markdown":{"title":"t","text":""}}"#),
        400_403
    );
    assert_eq!(post(r#"{"msgtype":"image","image":{}}"#), 400_105);
    // A misspelt field (feedCard's spelling in a link) is refused.
    assert_eq!(
        post(r#"{"msgtype":"link","link":{"title":"t","text":"alert","messageURL":"u"}}"#),
        400_402
    );
    assert_eq!(
        post(r#"{"msgtype":"text","text":{"content":"alert"},"at":{"isAtAll":"true"}}"#),
        400_402
    );
    assert_eq!(post("{not json"), 40_035);
    let big = format!(
        r#"{{"msgtype":"text","text":{{"content":"alert {}"}}}}"#,
        "x".repeat(20_000)
    );
    assert_eq!(post(&big), 460_101);
}

#[test]
fn standin_throttles_past_the_window_limit_and_stays_blocked() {
    let standin = Standin::start_with(StandinConfig {
        per_minute: 3,
        window: Duration::from_secs(2),
        throttle_pause: Duration::from_millis(2_500),
        blocked_code: 410_100,
        ..StandinConfig::default()
    });
    let target = format!("/robot/send?access_token={}", standin.token());
    let text = r#"{"msgtype":"text","text":{"content":"x"}}"#;
    let codes: Vec<i64> = (0..5)
        .map(|_| raw_post(&standin, &target, "application/json", text))
        .collect();
    assert_eq!(codes, [0, 0, 0, 130_101, 410_100]);
    assert_eq!(
        standin.max_delivered_in_any_window(Duration::from_secs(2)),
        3
    );
    assert_eq!(standin.max_in_any_window(Duration::from_secs(2)), 5);
    assert!(standin.wait_for(|received| received.len() == 5, Duration::from_millis(10)));
}
