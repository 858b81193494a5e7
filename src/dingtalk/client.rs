//! `Client`: POSTs bodies to robots over one shared reqwest client (rustls, keep-alive, connect and
//! request timeouts) and classifies every answer into an [`Outcome`].
//!
//! Each attempt builds its URL afresh from the robot's pristine webhook with a new timestamp and
//! signature (`dingtalk::sign`), so a retry an hour later is still valid. Nothing it returns or
//! logs contains the webhook, the access token or the secret: reqwest errors are stripped of their
//! URL and then scrubbed of the robot's secrets once more. Redirects are not followed (a robot
//! endpoint has no reason to redirect a POST). `send` retries only `Outcome::Transient`, with the
//! jittered exponential [`Backoff`] of `dispatch::retry`.

use std::error::Error as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue};

use crate::backoff::Backoff;
use crate::dingtalk::Robot;
use crate::dingtalk::limits::body;
use crate::dingtalk::message::Message;
use crate::dingtalk::outcome::{Outcome, Rejection, classify};
use crate::dingtalk::sign::request_url;
use crate::secret::Secret;

/// Network settings of the shared client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Limit for establishing a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Limit for a whole request, from sending to reading the answer.
    pub request_timeout: Duration,
}

/// How [`Client::send`] retries transient failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1 is made).
    pub max_attempts: u32,
    /// Wait before the second attempt (then doubling, jittered between half and all of it).
    pub base_delay: Duration,
    /// Longest wait between two attempts.
    pub max_delay: Duration,
}

/// Why a [`Client`] could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The HTTP client (TLS roots, resolver) could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

/// A DingTalk robot client. Cheap to clone: clones share one connection pool.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
}

impl Client {
    /// A client with `config`'s timeouts, rustls and keep-alive.
    ///
    /// # Errors
    /// [`ClientError::Http`] when the TLS or HTTP stack cannot be initialised.
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!("dingtail/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Http)?;
        Ok(Client { http })
    }

    /// One attempt, freshly signed from the pristine URL; never panics; classifies the answer.
    pub async fn send_once(&self, robot: &Robot, message: &Message) -> Outcome {
        match body(&robot.keywords, message) {
            Ok(body) => self.post(robot, body).await,
            Err(err) => not_sent(err.to_string()),
        }
    }

    /// Attempts with exponential backoff and jitter while the outcome is
    /// [`Outcome::Transient`], at most `policy.max_attempts` times; returns the last outcome.
    pub async fn send(&self, robot: &Robot, message: &Message, policy: RetryPolicy) -> Outcome {
        let body = match body(&robot.keywords, message) {
            Ok(body) => body,
            Err(err) => return not_sent(err.to_string()),
        };
        let mut backoff = Backoff::new(policy.base_delay, policy.max_delay);
        let mut attempt = 1;
        loop {
            let outcome = self.post(robot, body.clone()).await;
            if !outcome.is_transient() || attempt >= policy.max_attempts {
                return outcome;
            }
            let delay = backoff.next_delay(rand::random::<f64>());
            tracing::debug!(attempt, ?delay, %outcome, "retrying a transient delivery failure");
            attempt += 1;
            tokio::time::sleep(delay).await;
        }
    }

    /// Like [`Client::send_once`], waiting at most `timeout` for the whole request.
    pub async fn send_within(
        &self,
        robot: &Robot,
        message: &Message,
        timeout: Duration,
    ) -> Outcome {
        match body(&robot.keywords, message) {
            Ok(body) => self.post_within(robot, body, Some(timeout)).await,
            Err(err) => not_sent(err.to_string()),
        }
    }

    /// POSTs `body` once to a freshly signed URL.
    async fn post(&self, robot: &Robot, body: String) -> Outcome {
        self.post_within(robot, body, None).await
    }

    /// POSTs `body` once, with `timeout` instead of the client's request timeout when given.
    async fn post_within(&self, robot: &Robot, body: String, timeout: Option<Duration>) -> Outcome {
        let url = match request_url(&robot.webhook, robot.secret.as_ref(), now_ms()) {
            Ok(url) => url,
            Err(err) => return not_sent(err.to_string()),
        };
        let mut request = self
            .http
            .post(url)
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            )
            .body(body);
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => return failed(robot, &err),
        };
        let status = response.status();
        if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
        {
            return Outcome::Transient {
                reason: format!("the server answered HTTP {status}"),
            };
        }
        if !status.is_success() {
            return Outcome::Rejected {
                code: 0,
                reason: Rejection::Http(status.as_u16()),
                errmsg: String::new(),
            };
        }
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            // The server took the request and started answering: it may have delivered it.
            Err(err) => {
                return Outcome::Unknown {
                    reason: describe(robot, &err),
                };
            }
        };
        let answer = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
        let field = |name: &str| answer.as_ref().and_then(|answer| answer.get(name));
        let errcode = field("errcode").and_then(serde_json::Value::as_i64);
        // Kept and shown, so it must not carry the robot's secrets should a server echo them.
        let errmsg = redact(
            field("errmsg")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default(),
            robot,
        );
        match errcode {
            Some(errcode) => classify(errcode, &errmsg, SystemTime::now()),
            None => Outcome::Transient {
                reason: format!(
                    "the answer (HTTP {status}, {}) carries no errcode",
                    crate::noun::count(bytes.len(), "byte")
                ),
            },
        }
    }
}

fn not_sent(reason: String) -> Outcome {
    Outcome::Rejected {
        code: 0,
        reason: Rejection::Request(reason),
        errmsg: String::new(),
    }
}

/// A failed request as an `Outcome`: `Transient` when it cannot have reached DingTalk (no
/// connection), `Unknown` when it may have (sent, then no answer: a timeout, a reset).
fn failed(robot: &Robot, err: &reqwest::Error) -> Outcome {
    let reason = describe(robot, err);
    if err.is_connect() {
        Outcome::Transient { reason }
    } else {
        Outcome::Unknown { reason }
    }
}

/// A network failure in words, with its cause chain and without any secret.
fn describe(robot: &Robot, err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else {
        "connection failed"
    };
    let mut reason = kind.to_owned();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !reason.ends_with(&text) {
            reason.push_str(": ");
            reason.push_str(&text);
        }
        source = cause.source();
    }
    redact(&reason, robot)
}

/// `text` with the robot's webhook, access token and secret replaced by `<redacted>`.
pub fn redact(text: &str, robot: &Robot) -> String {
    let mut secrets: Vec<&str> = vec![robot.webhook.expose()];
    if let Some(secret) = &robot.secret {
        secrets.push(secret.expose());
    }
    let tokens = access_token(&robot.webhook);
    for token in &tokens {
        secrets.push(token.expose());
    }
    let mut text = text.to_owned();
    for secret in secrets.into_iter().filter(|s| s.len() >= 4) {
        text = text.replace(secret, "<redacted>");
    }
    text
}

/// The `access_token` of a webhook URL, as written and as decoded.
fn access_token(webhook: &Secret) -> Vec<Secret> {
    let Ok(url) = url::Url::parse(webhook.expose().trim()) else {
        return Vec::new();
    };
    let mut tokens: Vec<Secret> = url
        .query_pairs()
        .filter(|(key, _)| key == "access_token")
        .map(|(_, value)| Secret::new(value.into_owned()))
        .collect();
    let raw = url.query().unwrap_or_default().split('&');
    tokens.extend(
        raw.filter_map(|pair| pair.strip_prefix("access_token="))
            .map(Secret::new),
    );
    tokens
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::Duration;

    use crate::dingtalk::Robot;
    use crate::dingtalk::client::{Client, ClientConfig, RetryPolicy, redact};
    use crate::dingtalk::message::{Mentions, Message};
    use crate::dingtalk::outcome::{Outcome, Rejection, SecurityCheck};
    use crate::secret::Secret;

    fn robot(webhook: String) -> Robot {
        Robot {
            webhook: Secret::new(webhook),
            secret: Some(Secret::new("SECsecret123")),
            keywords: vec![],
        }
    }

    fn client() -> Client {
        Client::new(ClientConfig {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(2),
        })
        .unwrap()
    }

    /// Answers each of `answers` (status line and body) to one connection, recording requests.
    fn server(
        answers: Vec<(&'static str, &'static str)>,
    ) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for (status, body) in answers {
                let (mut stream, _) = listener.accept().unwrap();
                let mut buf = vec![0u8; 65_536];
                let mut request = Vec::new();
                loop {
                    let n = stream.read(&mut buf).unwrap();
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request);
                    if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if rest.len() >= length {
                            break;
                        }
                    }
                }
                seen.push(String::from_utf8_lossy(&request).into_owned());
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(reply.as_bytes()).unwrap();
            }
            seen
        });
        (
            format!("http://127.0.0.1:{port}/robot/send?access_token=tok123"),
            handle,
        )
    }

    #[tokio::test]
    async fn a_transient_answer_is_retried_and_each_attempt_is_signed_afresh() {
        let (url, handle) = server(vec![
            ("500 Internal Server Error", "oops"),
            ("200 OK", r#"{"errcode":-1,"errmsg":"busy"}"#),
            ("200 OK", r#"{"errcode":0,"errmsg":"ok"}"#),
        ]);
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        };
        let message = Message::text("hello", Mentions::default());
        let outcome = client().send(&robot(url), &message, policy).await;
        assert_eq!(outcome, Outcome::Delivered);
        let seen = handle.join().unwrap();
        for request in &seen {
            let line = request.lines().next().unwrap();
            assert_eq!(line.matches("timestamp=").count(), 1, "{line}");
            assert_eq!(line.matches("sign=").count(), 1, "{line}");
            assert!(request.contains("application/json"));
            assert!(request.ends_with(r#"{"msgtype":"text","text":{"content":"hello"}}"#));
        }
    }

    #[tokio::test]
    async fn rejections_are_not_retried() {
        let (url, handle) = server(vec![(
            "200 OK",
            r#"{"errcode":310000,"errmsg":"sign not match"}"#,
        )]);
        let policy = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        };
        let outcome = client()
            .send(
                &robot(url),
                &Message::text("x", Mentions::default()),
                policy,
            )
            .await;
        assert_eq!(
            outcome,
            Outcome::Rejected {
                code: 310_000,
                reason: Rejection::Security(SecurityCheck::Signature),
                errmsg: "sign not match".to_string(),
            }
        );
        assert_eq!(handle.join().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient_and_names_no_secret() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let robot = robot(format!(
            "http://127.0.0.1:{port}/robot/send?access_token=tok123"
        ));
        let outcome = client()
            .send_once(&robot, &Message::text("x", Mentions::default()))
            .await;
        let Outcome::Transient { reason } = &outcome else {
            panic!("{outcome:?}");
        };
        assert!(reason.contains("connect"), "{reason}");
        assert!(
            !reason.contains("tok123") && !reason.contains("127.0.0.1:"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn an_invalid_message_or_webhook_is_not_sent() {
        let link = Message::link("", "x", "https://a.example", "");
        let outcome = client()
            .send_once(
                &robot("http://127.0.0.1:9/x?access_token=tok123".into()),
                &link,
            )
            .await;
        assert!(matches!(
            outcome,
            Outcome::Rejected {
                code: 0,
                reason: Rejection::Request(_),
                ..
            }
        ));
        let outcome = client()
            .send_once(
                &robot("tok123".into()),
                &Message::text("x", Mentions::default()),
            )
            .await;
        let text = outcome.to_string();
        assert!(
            text.contains("not a URL") && !text.contains("tok123"),
            "{text}"
        );
    }

    #[test]
    fn redact_removes_webhook_token_and_secret() {
        let robot = robot("https://h.example/robot/send?access_token=tok%2B123".into());
        let text = redact(
            "a https://h.example/robot/send?access_token=tok%2B123 b tok+123 c SECsecret123",
            &robot,
        );
        assert_eq!(text, "a <redacted> b <redacted> c <redacted>");
    }
}
