//! Configuration: turns the YAML on disk (the main file and the rule files it names) into
//! validated values. Nothing else in dingtail parses YAML.
//!
//! The shape follows ripgrep's `LowArgs` → `HiArgs`: `raw` mirrors the files with serde
//! (`deny_unknown_fields`), `load` validates and compiles them into the runtime types below, and
//! every problem becomes a [`Diagnostic`] with file, line and column. Runtime types do not derive
//! `Deserialize`: the files can change shape without the rest of the program noticing.

pub mod diag;
pub mod env;
pub mod load;
pub mod pattern;
pub mod raw;
pub mod rules;
pub mod span;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use crate::alert::AlertSpec;
pub use crate::config::diag::{Diagnostic, Diagnostics};
pub use crate::config::load::load;
use crate::config::span::{Node, Pos, Style};
use crate::event::{Mentions, Severity};
use crate::secret::Secret;

/// Lines longer than this are cut, unless an input says otherwise.
pub const DEFAULT_MAX_LINE_BYTES: usize = 65_536;

/// Where `dingtail run` looks for its config when `-c` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/dingtail/dingtail.yaml";

/// The validated main configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The main file this was loaded from.
    pub source: PathBuf,
    /// Checkpoints and the pending-event store live here.
    pub state_dir: PathBuf,
    /// Inputs by name (the keys under `inputs:`).
    pub inputs: BTreeMap<String, InputConfig>,
    /// Robots by name (the keys under `robots:`).
    pub robots: BTreeMap<String, RobotConfig>,
    /// The `rules:` globs, as written (relative ones resolved against the main file's folder).
    pub rule_globs: Vec<String>,
    /// Optional address for `/metrics` and `/healthz`.
    pub listen: Option<SocketAddr>,
    /// The host name put into messages (`host:` in the config, else the machine's name).
    pub host: String,
    /// Reload when the main file or a rule file changes on disk; SIGHUP reloads either way.
    pub reload_on_change: bool,
    /// `chat:`, when the group may answer back through an app robot (issue 16).
    pub chat: Option<ChatConfig>,
    /// `cluster:`, when daemons on many hosts share their robots through Redis (issue 15).
    pub cluster: Option<ClusterConfig>,
}

/// `cluster:`: the Redis that daemons on many hosts share (issue 15). `Debug` hides the URL,
/// which may carry a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The `redis://` or `rediss://` URL, password included: a secret.
    pub redis: Secret,
    /// The URL without its password, for logs and `cluster status`.
    pub redis_shown: String,
    /// Prefix of every key this cluster writes.
    pub key_prefix: String,
    /// How long a sender lease lasts unless renewed (renewed every third of it).
    pub lease: Duration,
    /// How long Redis must be unreachable before each host sends directly at its share.
    pub fallback_after: Duration,
    /// Whether hosts send directly at all while Redis is unreachable.
    pub fallback: bool,
}

/// `chat:`: the enterprise-internal app robot (企业内部应用机器人) through which a group answers
/// back (status, mute, ack). `Debug` does not show the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatConfig {
    /// How messages arrive.
    pub mode: ChatMode,
    /// The app's AppKey (Client ID); empty in http mode when not given (only Stream uses it).
    pub client_id: String,
    /// The app's AppSecret: opens Stream connections and verifies HTTP callbacks.
    pub client_secret: Secret,
    /// Who may command the daemon.
    pub allow: ChatAllow,
    /// DingTalk's open API, `https://api.dingtalk.com` unless set; `http` only for loopback hosts.
    pub api_base: url::Url,
}

/// How an app robot's messages reach dingtail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatMode {
    /// dingtail holds a WebSocket to DingTalk's Stream gateway (no public address needed).
    Stream,
    /// DingTalk POSTs each message to `/dingtalk/callback` on this address.
    Http {
        /// Where the callback endpoint listens.
        listen: SocketAddr,
    },
}

/// `chat.allow`: an empty list does not restrict; the loader refuses an `allow` that restricts
/// nothing at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatAllow {
    /// `senderStaffId`s that may command (empty: any sender in an allowed conversation).
    pub users: Vec<String>,
    /// `conversationId`s that may command (empty: any conversation).
    pub conversations: Vec<String>,
    /// Only senders with `isAdmin` may command.
    pub admins_only: bool,
}

/// True when `url`'s host is a loopback address (`127.0.0.0/8`, `::1`) or `localhost`: the only
/// hosts that may be reached without TLS (`http://`, `ws://`), which tests' stand-ins use.
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// One `inputs:` entry: which files to follow and how to cut them into lines.
#[derive(Clone, Debug)]
pub struct InputConfig {
    /// The input's name (its key under `inputs:`).
    pub name: String,
    /// Include globs (absolute after loading).
    pub paths: Vec<String>,
    /// Exclude globs, matched against the full path and against the file name.
    pub exclude: Vec<String>,
    /// Where to start in files seen at the first start.
    pub start_at: StartAt,
    /// Polling period when inotify is unavailable, and of the slow safety rescan's base.
    pub poll_interval: Duration,
    /// Longer lines are cut here and counted.
    pub max_line_bytes: usize,
    /// Optional joining of continuation lines.
    pub multiline: Option<MultilineConfig>,
    /// An unterminated last line is handed out once the file has been quiet this long.
    pub partial_timeout: Duration,
}

/// Where to start reading a file seen for the first time at the daemon's first start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// Read from offset 0.
    Beginning,
    /// Read only what is appended from now on.
    End,
}

/// Joining of continuation lines (stack traces) into one event.
#[derive(Clone, Debug)]
pub struct MultilineConfig {
    /// A line matching this begins a new event; others continue the current one.
    pub start: Regex,
    /// An event is closed after this many lines.
    pub max_lines: usize,
    /// An event is closed after this much quiet.
    pub timeout: Duration,
}

/// Where a robot's messages go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Webhook {
    /// Dry run: print each message's JSON payload to stdout.
    Stdout,
    /// A DingTalk webhook URL; it embeds the access token, so it is a secret.
    Url(Secret),
}

/// One `robots:` entry.
#[derive(Clone, Debug)]
pub struct RobotConfig {
    /// The robot's name (its key under `robots:`).
    pub name: String,
    /// Where to send.
    pub webhook: Webhook,
    /// The signing secret (加签), if the robot has signing on.
    pub secret: Option<Secret>,
    /// Keyword security: every message must contain one of these.
    pub keywords: Vec<String>,
    /// At most this many messages per `window`.
    pub per_minute: u32,
    /// The rate-limit window, 60 s unless set (tests shorten it).
    pub window: Duration,
    /// Wait this long after a first match to gather a burst.
    pub linger: Duration,
    /// How long DingTalk blocks a robot that exceeded the limit.
    pub throttle_pause: Duration,
    /// How long a request may wait for DingTalk's answer; one without an answer may have been
    /// delivered and is sent again marked as a possible repeat.
    pub timeout: Duration,
    /// The longest wait between retries after failures without an answer.
    pub backoff_max: Duration,
}

/// One validated rule from a rule file: regexes compiled, names of inputs and robots checked,
/// templates still as text (`render` compiles them, and uses [`TemplateSpec::position`] to point
/// at its errors).
#[derive(Clone, Debug)]
pub struct RuleSpec {
    /// Unique across all rule files.
    pub name: String,
    /// The rule file.
    pub file: PathBuf,
    /// The line of the rule's entry in its file.
    pub line: usize,
    /// The inputs whose lines the rule sees (each one defined in the main config).
    pub inputs: Vec<String>,
    /// Any of these matching makes a line an alert (never empty).
    pub patterns: Vec<Regex>,
    /// Any of these matching takes the line back.
    pub excludes: Vec<Regex>,
    /// `severity:` (`warning` when not given).
    pub severity: Severity,
    /// The robots that get the alerts (each one defined in the main config).
    pub robots: Vec<String>,
    /// `at:`.
    pub mentions: Mentions,
    /// `title:`, a template.
    pub title: Option<TemplateSpec>,
    /// `template:`, a template.
    pub template: Option<TemplateSpec>,
    /// `summary:`, a template of the rule's heading in a summary.
    pub summary: Option<TemplateSpec>,
    /// `group_by`, `when`, `realert`, `resolve`, `absent`, `forget_after`, `max_groups`
    /// ([`AlertSpec::plain`] when none is given).
    pub alert: AlertSpec,
}

impl RuleSpec {
    /// The named capture groups of all the rule's patterns, each once, in pattern order.
    pub fn capture_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for pattern in &self.patterns {
            for name in pattern.capture_names().flatten() {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
            }
        }
        names
    }
}

/// The text of one template in a rule file, and where it stands there.
#[derive(Clone, Debug)]
pub struct TemplateSpec {
    /// The template's source.
    pub source: String,
    /// The rule file.
    pub file: PathBuf,
    /// Where the value stands (None when the position index has no entry).
    pub node: Option<Node>,
}

impl TemplateSpec {
    /// The file position of the character at `offset` (in characters) of the template: exact for
    /// one-line plain or quoted values without escapes, else the value's start (or its line).
    pub fn position(&self, offset: usize) -> Pos {
        let Some(node) = self.node else {
            return Pos { line: 1, column: 1 };
        };
        let head: String = self.source.chars().take(offset).collect();
        let n_newlines = head.matches('\n').count();
        if self.source.contains('\n') {
            // Block scalars (`|`, `>`) start on the line after their indicator; point at the
            // line only.
            let block = node.style == Style::Plain;
            return Pos {
                line: node.value.line + n_newlines + usize::from(block),
                column: 0,
            };
        }
        match node.style {
            Style::Quoted => Pos {
                line: node.value.line,
                column: node.value.column + 1 + offset,
            },
            _ => Pos {
                line: node.value.line,
                column: node.value.column + offset,
            },
        }
    }

    /// The file the template is in.
    pub fn file(&self) -> &Path {
        &self.file
    }
}
