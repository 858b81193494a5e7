//! `Standin`: a DingTalk custom robot on 127.0.0.1 for the behaviour tests.
//!
//! A real HTTP/1.1 server (std threads, keep-alive) on an ephemeral port that answers like
//! `oapi.dingtalk.com/robot/send`: HTTP 200 with `{"errcode","errmsg"}`, checking in order the
//! access token, the signature and its timestamp (±1 hour, when configured with a secret), the
//! throttle, the 20,000-byte size, the JSON schema of each msgtype (unknown keys are refused, so a
//! misspelt field name fails loudly), the keywords (in the visible text only, titles do not count)
//! and the rate limit (N delivered messages per window; the one over it gets 130101 and the robot
//! stays blocked for a pause). It can be told to fail — HTTP 500, an errcode such as -1, slow
//! answers, reset connections for N requests or for a while — and to refuse connections by
//! closing its listener and reopening it on the same port later. Every request is recorded with
//! the time, the query, the parsed body and the answer given, for assertions.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// How the stand-in robot is set up.
#[derive(Clone, Debug)]
pub struct StandinConfig {
    /// The `access_token` it accepts.
    pub token: String,
    /// The signing secret; `None`: signing off (any `timestamp`/`sign` is ignored).
    pub secret: Option<String>,
    /// Keyword security: the visible text must contain one of these (none: off).
    pub keywords: Vec<String>,
    /// Delivered messages allowed per `window`.
    pub per_minute: usize,
    /// The rate-limit window.
    pub window: Duration,
    /// How long the robot stays blocked after exceeding the limit.
    pub throttle_pause: Duration,
    /// The errcode for the message that exceeds the limit.
    pub throttle_code: i64,
    /// The errcode for messages during the pause.
    pub blocked_code: i64,
    /// Largest accepted body in bytes.
    pub max_body_bytes: usize,
    /// Largest accepted distance between `timestamp` and the stand-in's clock.
    pub timestamp_tolerance: Duration,
}

impl Default for StandinConfig {
    /// DingTalk's settings: 20 per 60 s, 10-minute block, 20,000 bytes, ±1 hour; a random token,
    /// no secret, no keywords.
    fn default() -> StandinConfig {
        StandinConfig {
            token: format!("sttok{:016x}", rand::random::<u64>()),
            secret: None,
            keywords: Vec::new(),
            per_minute: 20,
            window: Duration::from_secs(60),
            throttle_pause: Duration::from_secs(600),
            throttle_code: 130_101,
            blocked_code: 130_101,
            max_body_bytes: 20_000,
            timestamp_tolerance: Duration::from_secs(3600),
        }
    }
}

impl StandinConfig {
    /// Signing on with a fresh random secret.
    pub fn signed() -> StandinConfig {
        StandinConfig {
            secret: Some(format!("SECst{:032x}", rand::random::<u128>())),
            ..StandinConfig::default()
        }
    }
}

/// A failure to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Answer HTTP 500 with a non-JSON body.
    Http500,
    /// Answer HTTP 200 with this errcode (e.g. -1 "system busy", 500100).
    Errcode(i64),
    /// Answer HTTP 200 with this errcode and errmsg (e.g. 310000, `ip 203.0.113.7 not in
    /// whitelist`, which the stand-in's own checks do not produce).
    Refuse(i64, &'static str),
    /// Wait this long, then handle the request normally.
    Slow(Duration),
    /// Close the connection without an answer (RST when the body is unread).
    Reset,
}

/// For how long a failure lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum For {
    /// The next N requests.
    Requests(usize),
    /// Requests arriving within this long from now.
    Time(Duration),
}

/// What the stand-in answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// HTTP 200 with this errcode.
    Errcode(i64),
    /// This HTTP status without an errcode.
    Http(u16),
    /// The connection was closed without an answer.
    Reset,
}

/// One recorded request.
#[derive(Clone, Debug)]
pub struct Received {
    /// When its head arrived (monotonic).
    pub at: Instant,
    /// When it arrived (wall clock).
    pub wall: SystemTime,
    /// The HTTP method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, form-decoded (`+` is a space, as a strict server sees it).
    pub query: Vec<(String, String)>,
    /// The raw query string.
    pub raw_query: String,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The body as text.
    pub raw_body: String,
    /// The body as JSON, when it parses.
    pub body: Option<Value>,
    /// What the stand-in answered.
    pub answer: Answer,
}

impl Received {
    /// The errcode answered, if any.
    pub fn errcode(&self) -> Option<i64> {
        match self.answer {
            Answer::Errcode(code) => Some(code),
            Answer::Http(_) | Answer::Reset => None,
        }
    }

    /// Answered errcode 0.
    pub fn is_delivered(&self) -> bool {
        self.answer == Answer::Errcode(0)
    }

    /// The title of a markdown message.
    pub fn title(&self) -> &str {
        self.body
            .as_ref()
            .and_then(|body| body["markdown"]["title"].as_str())
            .unwrap_or_default()
    }

    /// How many matches a delivered markdown message stands for: a summary's title says
    /// "[level] host: N alerts from M rules"; a lone alert is one.
    pub fn alerts(&self) -> u64 {
        let title = self.title();
        if !title.starts_with('[') {
            return 1;
        }
        let words: Vec<&str> = title.split(' ').collect();
        words
            .iter()
            .position(|word| word.starts_with("alert"))
            .and_then(|at| words.get(at.checked_sub(1)?))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1)
    }

    /// The message says it may repeat an earlier one (its events were sent before without an
    /// answer).
    pub fn is_possible_repeat(&self) -> bool {
        self.title().ends_with("(possible repeat)")
    }

    /// The body's `msgtype`.
    pub fn msgtype(&self) -> Option<&str> {
        self.body.as_ref()?.get("msgtype")?.as_str()
    }

    /// The text a group member sees (where keywords must be): `text.content`, `link.text`,
    /// `markdown.text`, `actionCard.text`, or the feed card's titles joined by newlines.
    pub fn visible_text(&self) -> String {
        self.body.as_ref().map(visible_text).unwrap_or_default()
    }

    /// The first value of query parameter `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A running stand-in; stops when dropped.
pub struct Standin {
    shared: Arc<Shared>,
    port: u16,
    acceptor: Option<thread::JoinHandle<()>>,
}

struct Shared {
    config: StandinConfig,
    state: Mutex<State>,
    changed: Condvar,
    shutdown: AtomicBool,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    sends: VecDeque<Instant>,
    blocked_until: Option<Instant>,
    failures: Vec<(Failure, Scope)>,
    refuse_until: Option<Instant>,
    stopped: bool,
}

enum Scope {
    Requests(usize),
    Until(Instant),
}

impl Standin {
    /// A stand-in with DingTalk's default settings (no secret, no keywords).
    pub fn start() -> Standin {
        Standin::start_with(StandinConfig::default())
    }

    /// A stand-in with `config`.
    pub fn start_with(config: StandinConfig) -> Standin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stand-in");
        let port = listener.local_addr().expect("stand-in address").port();
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            shutdown: AtomicBool::new(false),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("standin-accept".into())
                .spawn(move || accept_loop(&shared, Some(listener), port))
                .expect("spawn the stand-in")
        };
        Standin {
            shared,
            port,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT/robot/send?access_token=TOKEN`.
    pub fn webhook_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/robot/send?access_token={}",
            self.port, self.shared.config.token
        )
    }

    /// The port it listens on (kept across `stop`/`restart`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The accepted access token.
    pub fn token(&self) -> &str {
        &self.shared.config.token
    }

    /// The signing secret, if signing is on.
    pub fn secret(&self) -> Option<&str> {
        self.shared.config.secret.as_deref()
    }

    /// The configuration.
    pub fn config(&self) -> &StandinConfig {
        &self.shared.config
    }

    /// A `robots:` entry named `name` for this robot, indented by two spaces: webhook, secret and
    /// keywords, and `per_minute`/`window`/`throttle_pause` equal to the stand-in's, for configs
    /// written by the end-to-end tests.
    pub fn robot_yaml(&self, name: &str) -> String {
        let config = &self.shared.config;
        let mut yaml = format!("  {name}:\n    webhook: \"{}\"\n", self.webhook_url());
        if let Some(secret) = &config.secret {
            yaml.push_str(&format!("    secret: \"{secret}\"\n"));
        }
        if !config.keywords.is_empty() {
            let keywords: Vec<String> = config
                .keywords
                .iter()
                .map(|k| serde_json::to_string(k).expect("a string serialises"))
                .collect();
            yaml.push_str(&format!("    keywords: [{}]\n", keywords.join(", ")));
        }
        yaml.push_str(&format!(
            "    per_minute: {}\n    window: {}\n    throttle_pause: {}\n",
            config.per_minute,
            humantime::format_duration(config.window),
            humantime::format_duration(config.throttle_pause)
        ));
        yaml
    }

    /// Injects `failure` for `scope`; failures queue up in the order given.
    pub fn fail(&self, failure: Failure, scope: For) {
        let scope = match scope {
            For::Requests(n) => Scope::Requests(n),
            For::Time(d) => Scope::Until(Instant::now() + d),
        };
        self.lock().failures.push((failure, scope));
    }

    /// Closes the listener (connections are refused, kept-alive ones are reset) for `duration`,
    /// then reopens it on the same port.
    pub fn refuse_for(&self, duration: Duration) {
        self.lock().refuse_until = Some(Instant::now() + duration);
    }

    /// Closes the listener until [`Standin::restart`].
    pub fn stop(&self) {
        self.lock().stopped = true;
    }

    /// Reopens the listener on the same port.
    pub fn restart(&self) {
        let mut state = self.lock();
        state.stopped = false;
        state.refuse_until = None;
    }

    /// Blocks the robot as if it had exceeded the rate limit, for the configured pause.
    pub fn throttle_now(&self) {
        self.lock().blocked_until = Some(Instant::now() + self.shared.config.throttle_pause);
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// The requests answered with errcode 0.
    pub fn delivered(&self) -> Vec<Received> {
        self.lock()
            .received
            .iter()
            .filter(|r| r.is_delivered())
            .cloned()
            .collect()
    }

    /// The largest number of requests (any answer) that arrived within any span of `window`.
    pub fn max_in_any_window(&self, window: Duration) -> usize {
        max_in_window(self.lock().received.iter().map(|r| r.at), window)
    }

    /// The largest number of delivered messages within any span of `window`.
    pub fn max_delivered_in_any_window(&self, window: Duration) -> usize {
        max_in_window(
            self.lock()
                .received
                .iter()
                .filter(|r| r.is_delivered())
                .map(|r| r.at),
            window,
        )
    }

    /// Waits until `predicate` holds for the requests received so far; false on timeout.
    pub fn wait_for(&self, predicate: impl Fn(&[Received]) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if predicate(&state.received) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = match self.shared.changed.wait_timeout(state, deadline - now) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Waits for `n` delivered messages and returns them; panics with what arrived on timeout.
    pub fn wait_delivered(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let ok = self.wait_for(
            |received| received.iter().filter(|r| r.is_delivered()).count() >= n,
            timeout,
        );
        let delivered = self.delivered();
        assert!(
            ok,
            "expected {n} delivered messages within {timeout:?}, got {}; all requests: {:#?}",
            delivered.len(),
            self.received()
        );
        delivered
    }

    /// Ends every injected failure now.
    pub fn clear_failures(&self) {
        self.lock().failures.clear();
    }

    /// Forgets the recorded requests (not the rate-limit history).
    pub fn clear(&self) {
        self.lock().received.clear();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.join().expect("the stand-in's acceptor panicked");
        }
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn max_in_window(times: impl Iterator<Item = Instant>, window: Duration) -> usize {
    // Requests are recorded when answered; a slow one may be recorded after a later arrival.
    let mut times: Vec<Instant> = times.collect();
    times.sort();
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end].duration_since(times[start]) >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

fn is_down(shared: &Shared) -> bool {
    let state = lock(shared);
    state.stopped
        || state
            .refuse_until
            .is_some_and(|until| Instant::now() < until)
}

fn accept_loop(shared: &Arc<Shared>, mut listener: Option<TcpListener>, port: u16) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    if let Some(listener) = &listener {
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
    }
    while !shared.shutdown.load(Ordering::SeqCst) {
        if is_down(shared) {
            listener = None;
            thread::sleep(Duration::from_millis(5));
            continue;
        }
        let Some(current) = &listener else {
            // Reopen on the same port (std sets SO_REUSEADDR, so TIME_WAIT does not block it).
            if let Ok(reopened) = TcpListener::bind(addr) {
                reopened
                    .set_nonblocking(true)
                    .expect("non-blocking listener");
                listener = Some(reopened);
            } else {
                thread::sleep(Duration::from_millis(5));
            }
            continue;
        };
        match current.accept() {
            Ok((stream, _)) => {
                let shared = Arc::clone(shared);
                thread::Builder::new()
                    .name("standin-conn".into())
                    .spawn(move || serve_connection(&shared, stream))
                    .expect("spawn a stand-in connection thread");
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2));
            }
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// A parsed HTTP request.
struct HttpRequest {
    method: String,
    target: String,
    content_type: Option<String>,
    body: Vec<u8>,
    keep_alive: bool,
}

fn serve_connection(shared: &Shared, mut stream: TcpStream) {
    // A read timeout lets an idle kept-alive connection notice shutdown.
    stream.set_nonblocking(false).expect("blocking stream");
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    let mut buffer = Vec::new();
    loop {
        let head_end = match read_head(shared, &mut stream, &mut buffer) {
            Some(end) => end,
            None => return,
        };
        let arrived = (Instant::now(), SystemTime::now());
        let failure = take_failure(shared);
        if failure == Some(Failure::Reset) || is_down(shared) {
            // Close without an answer; with the body still unread the kernel sends RST.
            record_reset(shared, &buffer[..head_end], arrived);
            drop(stream);
            return;
        }
        let Some(request) = read_request(shared, &mut stream, &mut buffer, head_end) else {
            return;
        };
        if let Some(Failure::Slow(delay)) = failure {
            thread::sleep(delay);
        }
        let (status, answer_body, answer) = match failure {
            Some(Failure::Http500) => (500, "Internal Server Error".to_owned(), Answer::Http(500)),
            Some(Failure::Errcode(code)) => (
                200,
                json!({"errcode": code, "errmsg": "系统繁忙"}).to_string(),
                Answer::Errcode(code),
            ),
            Some(Failure::Refuse(code, errmsg)) => (
                200,
                json!({"errcode": code, "errmsg": errmsg}).to_string(),
                Answer::Errcode(code),
            ),
            _ => {
                let (status, code, errmsg) = judge(shared, &request);
                match code {
                    Some(code) => (
                        status,
                        json!({"errcode": code, "errmsg": errmsg}).to_string(),
                        Answer::Errcode(code),
                    ),
                    None => (status, errmsg.to_owned(), Answer::Http(status)),
                }
            }
        };
        record(shared, &request, answer, arrived);
        let reply = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: {}\r\n\r\n{answer_body}",
            if status == 200 { "OK" } else { "Error" },
            answer_body.len(),
            if request.keep_alive {
                "keep-alive"
            } else {
                "close"
            },
        );
        if stream.write_all(reply.as_bytes()).is_err() || !request.keep_alive {
            return;
        }
    }
}

/// Reads until a whole request head is in `buffer`; returns the offset after it. `None`: the
/// connection closed, or the stand-in is shutting down.
fn read_head(shared: &Shared, stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<usize> {
    let mut chunk = [0u8; 16_384];
    loop {
        if let Some(at) = find(buffer, b"\r\n\r\n") {
            return Some(at + 4);
        }
        if shared.shutdown.load(Ordering::SeqCst) || buffer.len() > 1 << 20 {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return None,
        }
    }
}

fn read_request(
    shared: &Shared,
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    head_end: usize,
) -> Option<HttpRequest> {
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let version = request_line.next().unwrap_or("HTTP/1.1").to_owned();
    let mut content_length = 0;
    let mut content_type = None;
    let mut keep_alive = version == "HTTP/1.1";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => content_length = value.parse().ok()?,
            "content-type" => content_type = Some(value.to_owned()),
            "connection" => keep_alive = !value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut chunk = [0u8; 16_384];
    while buffer.len() < head_end + content_length {
        if shared.shutdown.load(Ordering::SeqCst) {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return None,
        }
    }
    let body = buffer[head_end..head_end + content_length].to_vec();
    buffer.drain(..head_end + content_length);
    Some(HttpRequest {
        method,
        target,
        content_type,
        body,
        keep_alive,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn take_failure(shared: &Shared) -> Option<Failure> {
    let mut state = lock(shared);
    let now = Instant::now();
    state.failures.retain(|(_, scope)| match scope {
        Scope::Requests(n) => *n > 0,
        Scope::Until(until) => now < *until,
    });
    let (failure, scope) = state.failures.first_mut()?;
    if let Scope::Requests(n) = scope {
        *n -= 1;
    }
    Some(*failure)
}

fn split_target(target: &str) -> (String, String) {
    match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), query.to_owned()),
        None => (target.to_owned(), String::new()),
    }
}

fn record_reset(shared: &Shared, head: &[u8], (at, wall): (Instant, SystemTime)) {
    let head = String::from_utf8_lossy(head);
    let mut parts = head.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let (path, raw_query) = split_target(parts.next().unwrap_or_default());
    push(
        shared,
        Received {
            at,
            wall,
            method,
            path,
            query: decode_query(&raw_query),
            raw_query,
            content_type: None,
            raw_body: String::new(),
            body: None,
            answer: Answer::Reset,
        },
    );
}

fn record(
    shared: &Shared,
    request: &HttpRequest,
    answer: Answer,
    (at, wall): (Instant, SystemTime),
) {
    let (path, raw_query) = split_target(&request.target);
    push(
        shared,
        Received {
            at,
            wall,
            method: request.method.clone(),
            path,
            query: decode_query(&raw_query),
            raw_query,
            content_type: request.content_type.clone(),
            raw_body: String::from_utf8_lossy(&request.body).into_owned(),
            body: serde_json::from_slice(&request.body).ok(),
            answer,
        },
    );
}

fn push(shared: &Shared, received: Received) {
    lock(shared).received.push(received);
    shared.changed.notify_all();
}

fn decode_query(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Decides the answer as DingTalk would: (HTTP status, errcode or none, errmsg or body).
fn judge(shared: &Shared, request: &HttpRequest) -> (u16, Option<i64>, &'static str) {
    let config = &shared.config;
    let (path, raw_query) = split_target(&request.target);
    if request.method != "POST" || path != "/robot/send" {
        return (404, None, "not found");
    }
    if !request
        .content_type
        .as_deref()
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/json"))
    {
        return (200, Some(43_004), "无效的HTTP HEADER Content-Type");
    }
    let query = decode_query(&raw_query);
    let values = |key: &str| -> Vec<&str> {
        query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    if values("access_token") != [config.token.as_str()] {
        return (200, Some(300_001), "token is not exist");
    }
    if let Some(secret) = &config.secret {
        let (timestamps, signs) = (values("timestamp"), values("sign"));
        let (&[timestamp], &[sign]) = (timestamps.as_slice(), signs.as_slice()) else {
            return (200, Some(310_000), "sign not match");
        };
        let Ok(timestamp_ms) = timestamp.parse::<u64>() else {
            return (200, Some(310_000), "invalid timestamp");
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let tolerance = config.timestamp_tolerance.as_millis();
        if u128::from(timestamp_ms).abs_diff(now_ms) > tolerance {
            return (200, Some(310_000), "invalid timestamp");
        }
        if sign != expected_sign(secret, timestamp) {
            return (200, Some(310_000), "sign not match");
        }
    }
    let now = Instant::now();
    {
        let state = lock(shared);
        if state.blocked_until.is_some_and(|until| now < until) {
            return (200, Some(config.blocked_code), "发送速度太快而限流");
        }
    }
    if request.body.len() > config.max_body_bytes {
        return (200, Some(460_101), "message too long, exceed 20000 bytes");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return (200, Some(40_035), "缺少参数 json");
    };
    if let Err(code) = check_schema(&body) {
        return (200, Some(code), "参数缺失，或者参数格式不正确");
    }
    if !config.keywords.is_empty() {
        let text = visible_text(&body);
        if !config.keywords.iter().any(|k| text.contains(k.as_str())) {
            return (200, Some(310_000), "keywords not in content");
        }
    }
    let mut state = lock(shared);
    while state
        .sends
        .front()
        .is_some_and(|sent| now.duration_since(*sent) >= config.window)
    {
        state.sends.pop_front();
    }
    if state.sends.len() >= config.per_minute {
        state.blocked_until = Some(now + config.throttle_pause);
        return (
            200,
            Some(config.throttle_code),
            "send too fast, exceed 20 times per minute",
        );
    }
    state.sends.push_back(now);
    (200, Some(0), "ok")
}

/// `base64(HMAC-SHA256(secret, "{timestamp}\n{secret}"))`.
pub fn expected_sign(secret: &str, timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp}\n{secret}").as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

fn visible_text(body: &Value) -> String {
    let field = |path: [&str; 2]| {
        body.get(path[0])
            .and_then(|v| v.get(path[1]))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    match body.get("msgtype").and_then(Value::as_str) {
        Some("text") => field(["text", "content"]),
        Some("link") => field(["link", "text"]),
        Some("markdown") => field(["markdown", "text"]),
        Some("actionCard") => field(["actionCard", "text"]),
        Some("feedCard") => body
            .pointer("/feedCard/links")
            .and_then(Value::as_array)
            .map(|links| {
                links
                    .iter()
                    .filter_map(|l| l.get("title").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The errcode DingTalk gives a malformed body: 400105 unknown msgtype, 400402 missing or
/// ill-typed parameter (or an unknown key), 400403 empty markdown text.
fn check_schema(body: &Value) -> Result<(), i64> {
    const MISSING: i64 = 400_402;
    let object = body.as_object().ok_or(MISSING)?;
    let msgtype = object
        .get("msgtype")
        .and_then(Value::as_str)
        .ok_or(MISSING)?;
    let allowed_top = ["msgtype", msgtype, "at"];
    if object.keys().any(|k| !allowed_top.contains(&k.as_str())) {
        return Err(MISSING);
    }
    let content = object.get(msgtype);
    let (required, optional): (&[&str], &[&str]) = match msgtype {
        "text" => (&["content"], &[]),
        "link" => (&["title", "text", "messageUrl"], &["picUrl"]),
        "markdown" => (&["title", "text"], &[]),
        "actionCard" => (
            &["title", "text"],
            &[
                "btnOrientation",
                "hideAvatar",
                "singleTitle",
                "singleURL",
                "btns",
            ],
        ),
        "feedCard" => (&["links"], &[]),
        _ => return Err(400_105),
    };
    let content = content.and_then(Value::as_object).ok_or(MISSING)?;
    if content
        .keys()
        .any(|k| !required.contains(&k.as_str()) && !optional.contains(&k.as_str()))
    {
        return Err(MISSING);
    }
    let non_empty_str =
        |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    for key in required {
        if *key == "links" {
            continue;
        }
        if !non_empty_str(content.get(*key)) {
            return Err(if msgtype == "markdown" && *key == "text" {
                400_403
            } else {
                MISSING
            });
        }
    }
    for key in ["picUrl", "singleTitle", "singleURL"] {
        if content.get(key).is_some_and(|v| !v.is_string()) {
            return Err(MISSING);
        }
    }
    for key in ["btnOrientation", "hideAvatar"] {
        if content
            .get(key)
            .is_some_and(|v| !matches!(v.as_str(), Some("0" | "1")))
        {
            return Err(MISSING);
        }
    }
    if msgtype == "actionCard" {
        let single =
            non_empty_str(content.get("singleTitle")) && non_empty_str(content.get("singleURL"));
        let several = content
            .get("btns")
            .and_then(Value::as_array)
            .is_some_and(|btns| {
                !btns.is_empty()
                    && btns.iter().all(|b| {
                        b.as_object().is_some_and(|b| {
                            b.len() == 2
                                && non_empty_str(b.get("title"))
                                && non_empty_str(b.get("actionURL"))
                        })
                    })
            });
        if !single && !several {
            return Err(MISSING);
        }
    }
    if msgtype == "feedCard" {
        let links = content
            .get("links")
            .and_then(Value::as_array)
            .ok_or(MISSING)?;
        let valid = !links.is_empty()
            && links.iter().all(|l| {
                l.as_object().is_some_and(|l| {
                    l.len() == 3
                        && non_empty_str(l.get("title"))
                        && non_empty_str(l.get("messageURL"))
                        && l.get("picURL").is_some_and(Value::is_string)
                })
            });
        if !valid {
            return Err(MISSING);
        }
    }
    if let Some(at) = object.get("at") {
        if matches!(msgtype, "link" | "feedCard") {
            return Err(MISSING);
        }
        let at = at.as_object().ok_or(MISSING)?;
        let strings = |v: &Value| v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
        for (key, value) in at {
            let ok = match key.as_str() {
                "atMobiles" | "atUserIds" => strings(value),
                "isAtAll" => value.is_boolean(),
                _ => false,
            };
            if !ok {
                return Err(MISSING);
            }
        }
    }
    Ok(())
}
