//! Configuration: turns the YAML on disk (the main file and the rule files it names) into
//! validated values. Nothing else in dingtail parses YAML.
//!
//! The shape follows ripgrep's `LowArgs` → `HiArgs`: `raw` mirrors the files with serde
//! (`deny_unknown_fields`), `load` validates and compiles them into the runtime types below, and
//! every problem becomes a [`Diagnostic`] with file, line and column. Runtime types do not derive
//! `Deserialize`: the files can change shape without the rest of the program noticing.

pub mod diag;
pub mod env;
pub mod keys;
pub mod load;
pub mod pattern;
pub mod raw;
pub mod rules;
pub mod span;
pub mod syntax;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::tz::TimeZone;
use regex::Regex;

use crate::alert::AlertSpec;
pub use crate::config::diag::{Diagnostic, Diagnostics};
pub use crate::config::load::load;
use crate::config::span::{Node, Pos, Style};
use crate::event::{Mentions, MsgType, Severity};
pub use crate::fields::FieldCondition;
use crate::lang::Language;
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
    /// `timezone:`: the zone of every time in a message (default: the machine's local zone, UTC
    /// when it has none).
    pub timezone: TimeZone,
    /// `language:`: the language of dingtail's own words in messages (default `zh-CN`).
    pub language: Language,
    /// `people:`: who a rule's `at.people` entries name, by name.
    pub people: BTreeMap<String, Mentions>,
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

/// One `inputs:` entry: which files (or which journal) to follow, how to cut them into lines and
/// how to decode those lines.
#[derive(Clone, Debug)]
pub struct InputConfig {
    /// The input's name (its key under `inputs:`).
    pub name: String,
    /// Include globs (absolute after loading); empty for a journald input.
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
    /// How the bytes of a line become a record (`format`, `content`, `encoding`,
    /// `message_field`, `partial_timeout`); [`Decoding::default`] is plain UTF-8 text.
    pub decoding: Decoding,
    /// `journald:`: the input reads the systemd journal instead of files (`paths` is then empty).
    pub journald: Option<JournaldConfig>,
    /// Where the input's lines carry their own time (`timestamp:`), if they do.
    pub timestamp: Option<TimestampConfig>,
}

/// The shape of an input's lines (`format:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Text lines, matched as they are (the default).
    Plain,
    /// Container lines as kubelet's CRI runtimes write them: `TIME STREAM P|F CONTENT`.
    Cri,
    /// Docker's json-file lines: `{"log":…,"stream":…,"time":…}`.
    Docker,
    /// One JSON object per line; `message_field` is the text rules match.
    Json,
    /// Decided per file from its first line: CRI, docker, JSON, else plain.
    Auto,
}

impl Format {
    /// The names `format:` accepts, in documentation order.
    pub const NAMES: [&'static str; 5] = ["plain", "cri", "docker", "json", "auto"];

    /// Parses a `format:` value.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "plain" => Some(Format::Plain),
            "cri" => Some(Format::Cri),
            "docker" => Some(Format::Docker),
            "json" => Some(Format::Json),
            "auto" => Some(Format::Auto),
            _ => None,
        }
    }
}

/// What the content of a container line (or of a journal entry's `MESSAGE`) holds (`content:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// Text, matched as it is (the default).
    Text,
    /// The application's JSON object, decoded like a `format: json` line.
    Json,
}

/// How the bytes of an input's lines become records. One value per input; each followed file
/// gets its own decoder built from it.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoding {
    /// `format:`.
    pub format: Format,
    /// `content:`: only `cri`, `docker`, `auto` and journald inputs may say `json`.
    pub content: Content,
    /// `encoding:`; `None` is UTF-8 (the fast path). Always ASCII-compatible, so lines can be
    /// cut at `\n` before decoding.
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// `message_field:`: the JSON field rules match; `None` is the first present of `message`,
    /// `msg` and `log`.
    pub message_field: Option<String>,
    /// Pieces of a split container line that wait this long for the rest are handed out as
    /// they are.
    pub partial_timeout: Duration,
}

/// `timestamp:` of an input: how to find and read the time a line carries, so that messages
/// report when an event happened rather than when it was read.
#[derive(Clone, Debug)]
pub struct TimestampConfig {
    /// Finds the time in a line; its one capture group is the time's text.
    pub pattern: Regex,
    /// How the captured text reads.
    pub format: TimeFormat,
    /// The zone of times written without an offset (the input's `timezone:`, else the config's).
    pub zone: TimeZone,
}

/// How an event time is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeFormat {
    /// A strftime format (`%d/%b/%Y:%H:%M:%S %z`); without `%Y` the year nearest now is taken.
    Strftime(String),
    /// RFC 3339 / ISO 8601 with an offset or `Z` (`2026-11-25T08:01:02.345Z`).
    Rfc3339,
    /// Seconds since the epoch, maybe with a fraction (`1764057662.345`).
    Unix,
    /// Milliseconds since the epoch.
    UnixMs,
}

/// Default `partial_timeout`.
pub const DEFAULT_PARTIAL_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for Decoding {
    /// Plain UTF-8 text: what every input did before `format:` existed.
    fn default() -> Decoding {
        Decoding {
            format: Format::Plain,
            content: Content::Text,
            encoding: None,
            message_field: None,
            partial_timeout: DEFAULT_PARTIAL_TIMEOUT,
        }
    }
}

/// `journald:` of an input: which journal entries to read. Every key is optional. An entry must
/// match one of the units (if any) and one of the identifiers (if any) and the priority: that is
/// how `journalctl` combines `-u`, `-t` and `-p` (checked against journalctl 252 in
/// `tests/journal.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournaldConfig {
    /// `units:` (`journalctl -u`, which also takes systemd's own messages about the unit).
    pub units: Vec<String>,
    /// `identifiers:` (`journalctl -t`, the `SYSLOG_IDENTIFIER` field).
    pub identifiers: Vec<String>,
    /// `priority:` as `journalctl -p` takes it (`err`, `3`, `warning..emerg`), validated.
    pub priority: Option<String>,
    /// `directory:` (absolute): read the journal files in this folder instead of the system
    /// journal.
    pub directory: Option<PathBuf>,
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
    /// Dry run: print each message's JSON payload to stdout, one per line, for scripts.
    Stdout,
    /// Dry run for people: print each message as a reader would see it (title, text, mentions;
    /// in colour on a terminal).
    Console,
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
    /// `msgtype:`: the kind of the robot's summaries (and of lone events whose rule names none).
    pub msgtype: MsgType,
    /// `summary_title:`: a template of a summary's title (over `level`, `count`, `rules`,
    /// `hosts`, `host`); the built-in title when absent.
    pub summary_title: Option<TemplateSpec>,
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
    /// Any of these matching makes a line an alert (never empty unless `conditions` is not).
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
    /// `where:`: conditions on the record's fields and context, all of which must hold. When
    /// the rule has no `match:`, `patterns` is empty and these alone decide.
    pub conditions: Vec<FieldCondition>,
    /// `msgtype:`: the kind of the rule's lone events (the robot's when not given).
    pub msgtype: Option<MsgType>,
    /// `link:`: a button (actionCard) or link line (markdown, text) to a dashboard or runbook.
    pub link: Option<LinkSpec>,
    /// `top:`: captures whose most frequent values a summary lists, with exact counts.
    pub top: Vec<String>,
    /// `at:` entries that are templates, rendered per match (literal ones are in `mentions`).
    pub mention_templates: Vec<MentionTemplate>,
    /// `group_by`, `when`, `realert`, `resolve`, `absent`, `forget_after`, `max_groups`
    /// ([`AlertSpec::plain`] when none is given).
    pub alert: AlertSpec,
    /// Where the name of each named capture stands in the rule file (for pointing at one).
    pub capture_positions: Vec<(String, Pos)>,
}

/// A rule's `link:`: both parts are templates over the match.
#[derive(Clone, Debug)]
pub struct LinkSpec {
    /// The button's (or link's) text.
    pub title: TemplateSpec,
    /// Where it goes: `http(s)://` or `dingtalk://`, scheme and host written literally; values
    /// from the log are percent-encoded into it.
    pub url: TemplateSpec,
}

/// One templated `at:` entry of a rule.
#[derive(Clone, Debug)]
pub struct MentionTemplate {
    /// What the entry renders to.
    pub kind: MentionKind,
    /// The entry.
    pub template: TemplateSpec,
}

/// What a templated `at:` entry names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MentionKind {
    /// A mobile number (`at.mobiles`).
    Mobile,
    /// A DingTalk user id (`at.user_ids`).
    UserId,
    /// A name under `people:` (`at.people`).
    Person,
}

impl MentionKind {
    /// The `at:` key of the kind.
    pub fn key(self) -> &'static str {
        match self {
            MentionKind::Mobile => "mobiles",
            MentionKind::UserId => "user_ids",
            MentionKind::Person => "people",
        }
    }
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

/// The text of one template in a rule file (or the main file), and where it stands there.
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
