//! The serde mirror of the main config file. Strict (`deny_unknown_fields`) and dumb: values stay
//! strings so that `load` can expand `${VAR}` in any of them and report problems with positions.
//! Nothing outside `config` sees these types.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The main file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Where checkpoints and pending events live.
    pub state_dir: Option<String>,
    /// Inputs by name.
    #[serde(default)]
    pub inputs: BTreeMap<String, RawInput>,
    /// Robots by name.
    #[serde(default)]
    pub robots: BTreeMap<String, RawRobot>,
    /// Rule file globs.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Address for `/metrics` and `/healthz`.
    pub listen: Option<String>,
    /// Host name shown in messages.
    pub host: Option<String>,
    /// Reload when the main file or a rule file changes on disk (default true).
    pub reload_on_change: Option<bool>,
    /// The app robot that lets a group answer back (issue 16).
    pub chat: Option<RawChat>,
    /// The zone of times in messages: an IANA name or `UTC` (default: the machine's).
    pub timezone: Option<String>,
    /// `zh-CN` (default) or `en`: the language of dingtail's words in messages.
    pub language: Option<String>,
    /// People a rule's `at.people` may name.
    #[serde(default)]
    pub people: BTreeMap<String, RawPerson>,
    /// Many hosts, one robot: the Redis they share (issue 15).
    pub cluster: Option<RawCluster>,
}

/// One `people:` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPerson {
    /// Mobile numbers.
    #[serde(default)]
    pub mobiles: Vec<Scalar>,
    /// DingTalk user ids.
    #[serde(default)]
    pub user_ids: Vec<Scalar>,
}

/// `cluster:`: the Redis that daemons on many hosts share (issue 15).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// `redis://` or `rediss://` URL (its password from `${VAR}`).
    pub redis: String,
    /// Prefix of every key (default `dingtail:`).
    pub key_prefix: Option<String>,
    /// How long a robot's sender lease lasts without renewal (default 10 s).
    pub lease: Option<String>,
    /// How long Redis must be unreachable before hosts send directly (default 2 min).
    pub fallback_after: Option<String>,
    /// `on` (default) or `off`.
    pub fallback: Option<Switch>,
}

/// `on`/`off`, `true`/`false`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Switch {
    /// Written as a boolean.
    Bool(bool),
    /// Written as a word.
    Text(String),
}

/// `chat:`: the enterprise-internal app robot that receives commands.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChat {
    /// `stream` (default) or `http`.
    pub mode: Option<String>,
    /// The app's AppKey (Client ID); needed in stream mode.
    pub client_id: Option<String>,
    /// The app's AppSecret (Client Secret).
    pub client_secret: String,
    /// Where HTTP callbacks arrive (http mode only).
    pub listen: Option<String>,
    /// Who may command the daemon.
    pub allow: Option<RawChatAllow>,
    /// DingTalk's open API (tests point it at a stand-in).
    pub api_base: Option<String>,
}

/// `chat.allow:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChatAllow {
    /// `senderStaffId`s.
    #[serde(default)]
    pub users: Vec<Scalar>,
    /// `conversationId`s.
    #[serde(default)]
    pub conversations: Vec<String>,
    /// Only group admins (`isAdmin`).
    #[serde(default)]
    pub admins_only: bool,
}

/// A string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(value) => vec![value.clone()],
            OneOrMany::Many(values) => values.clone(),
        }
    }

    /// True when the value is a list (positions of items are then indexed).
    pub fn is_list(&self) -> bool {
        matches!(self, OneOrMany::Many(_))
    }
}

/// A number written as a number or as a string (`${VAR:-20}`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Number {
    /// Written as a number.
    Int(u64),
    /// Written as a string, to be expanded and parsed.
    Text(String),
}

/// One `inputs:` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    /// Include globs (absent on a journald input).
    pub paths: Option<OneOrMany>,
    /// Exclude globs.
    pub exclude: Option<OneOrMany>,
    /// `end` or `beginning`.
    pub start_at: Option<String>,
    /// A duration such as `1s`.
    pub poll_interval: Option<String>,
    /// Cut longer lines here.
    pub max_line_bytes: Option<Number>,
    /// Joining of continuation lines.
    pub multiline: Option<RawMultiline>,
    /// `plain`, `cri`, `docker`, `json` or `auto`.
    pub format: Option<String>,
    /// `text` or `json`: what the content of a container line (or a journal message) holds.
    pub content: Option<String>,
    /// A WHATWG encoding label (`utf-8`, `gbk`, `gb18030`, …).
    pub encoding: Option<String>,
    /// The JSON field rules match.
    pub message_field: Option<String>,
    /// How long pieces of a split container line wait for the rest.
    pub partial_timeout: Option<String>,
    /// Read the systemd journal instead of files.
    pub journald: Option<RawJournald>,
    /// Where the lines carry their own time.
    pub timestamp: Option<RawTimestamp>,
}

/// `journald:` of an input (every key optional: `journald: {}` reads the whole journal).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJournald {
    /// Units (`journalctl -u`).
    pub units: Option<OneOrMany>,
    /// Syslog identifiers (`journalctl -t`).
    pub identifiers: Option<OneOrMany>,
    /// A priority or range (`journalctl -p`): a name or a number.
    pub priority: Option<Scalar>,
    /// A folder of journal files instead of the system journal.
    pub directory: Option<String>,
}

/// `timestamp:` of an input.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimestamp {
    /// A regex with one capture group: the time's text.
    pub pattern: String,
    /// A strftime format, `rfc3339`, `unix` or `unix_ms`.
    pub format: String,
    /// The zone of times written without an offset.
    pub timezone: Option<String>,
}

/// `multiline:` of an input.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMultiline {
    /// A line matching this begins a new event.
    pub start: String,
    /// An event is closed after this many lines.
    pub max_lines: Option<Number>,
    /// An event is closed after this much quiet.
    pub timeout: Option<String>,
}

/// One `robots:` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRobot {
    /// `stdout` or a DingTalk webhook URL.
    pub webhook: String,
    /// Signing secret.
    pub secret: Option<String>,
    /// Keyword security.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Messages allowed per window.
    pub per_minute: Option<Number>,
    /// The rate-limit window (default 60 s).
    pub window: Option<String>,
    /// Wait after a first match to gather a burst.
    pub linger: Option<String>,
    /// How long DingTalk blocks a robot that exceeded the limit.
    pub throttle_pause: Option<String>,
    /// `markdown` (default), `text` or `actionCard`: the kind of its summaries.
    pub msgtype: Option<String>,
    /// A template of a summary's title.
    pub summary_title: Option<String>,
    /// How long a request may wait for DingTalk's answer (default 10 s).
    pub timeout: Option<String>,
    /// The longest wait between retries after failures without an answer (default 30 s, at most
    /// 60 s).
    pub backoff_max: Option<String>,
}

/// One entry of a rule file (a rule file is a list of these). The key names are a contract with
/// operators (issue 4): renaming one breaks every deployed rule file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Unique across all rule files.
    pub name: String,
    /// The input whose lines the rule sees (or `inputs`).
    pub input: Option<String>,
    /// Several inputs.
    pub inputs: Option<Vec<String>>,
    /// A regex, or a list of regexes of which any may match.
    #[serde(rename = "match")]
    pub matches: Option<OneOrMany>,
    /// A regex, or a list: a line matching any of them is not an alert.
    pub exclude: Option<OneOrMany>,
    /// `info`, `warning` or `critical`.
    pub severity: Option<String>,
    /// The robot that gets the alerts (or `robots`).
    pub robot: Option<String>,
    /// Several robots.
    pub robots: Option<Vec<String>>,
    /// Template of a message's title.
    pub title: Option<String>,
    /// Template of one event's text in a message.
    pub template: Option<String>,
    /// Template of the rule's heading in a summary (count, first_seen, last_seen, …).
    pub summary: Option<String>,
    /// Who to @-mention.
    pub at: Option<RawAt>,
    /// `markdown`, `text` or `actionCard`: the kind of the rule's lone events.
    pub msgtype: Option<String>,
    /// A button or link line to a dashboard or runbook.
    pub link: Option<RawLink>,
    /// Captures whose most frequent values a summary lists.
    pub top: Option<Vec<String>>,
    /// Captures or context names whose values make a group key (issue 13).
    pub group_by: Option<OneOrMany>,
    /// Fire when `count` matches of a key fall within `within`.
    pub when: Option<RawWhen>,
    /// Fold a key's later matches for this long into one repeat.
    pub realert: Option<String>,
    /// Resolve a firing key after quiet.
    pub resolve: Option<RawResolve>,
    /// A heartbeat rule: report a key without matches.
    pub absent: Option<RawAbsent>,
    /// Retire an absent key after this long.
    pub forget_after: Option<String>,
    /// At most this many keys.
    pub max_groups: Option<u64>,
    /// `host` (default) or `cluster`: whose matches a `when` threshold counts.
    pub scope: Option<String>,
    /// Conditions on fields and context: `{FIELD: VALUE | [VALUES]}` (values are YAML scalars;
    /// `rules` turns them into text).
    #[serde(rename = "where")]
    pub conditions: Option<serde_yaml::Mapping>,
}

/// A rule's `link:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLink {
    /// Template of the button's (or link's) text.
    pub title: String,
    /// Template of where it goes.
    pub url: String,
}

/// A rule's `when:` (both keys are required; the loader says which is missing).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWhen {
    /// At least this many matches.
    pub count: Option<u64>,
    /// Within this duration.
    pub within: Option<String>,
}

/// A rule's `resolve:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResolve {
    /// The quiet period (required).
    pub after: Option<String>,
    /// Send a resolved notice (default true).
    pub notify: Option<bool>,
}

/// A rule's `absent:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAbsent {
    /// The quiet period (required).
    #[serde(rename = "for")]
    pub for_: Option<String>,
}

/// A rule's `at:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAt {
    /// Mobile numbers (quoted or not).
    #[serde(default)]
    pub mobiles: Vec<Scalar>,
    /// DingTalk user ids.
    #[serde(default)]
    pub user_ids: Vec<Scalar>,
    /// @ everyone.
    #[serde(default)]
    pub all: bool,
    /// Names under the main config's `people:` (may be templates).
    #[serde(default)]
    pub people: Vec<Scalar>,
}

/// A string or a number written without quotes (`13800000000`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// Written as a number.
    Int(u64),
    /// Written as a string.
    Text(String),
}

impl Scalar {
    /// The value as text.
    pub fn text(&self) -> String {
        match self {
            Scalar::Int(n) => n.to_string(),
            Scalar::Text(text) => text.clone(),
        }
    }
}

/// The keys a rule may have, for "did you mean" and for pointing at a key with a bad value.
pub const RULE_KEYS: &[&str] = &[
    "name",
    "input",
    "inputs",
    "match",
    "exclude",
    "severity",
    "robot",
    "robots",
    "title",
    "template",
    "summary",
    "at",
    "group_by",
    "when",
    "realert",
    "resolve",
    "absent",
    "forget_after",
    "max_groups",
    "scope",
    "where",
    "msgtype",
    "link",
    "top",
];
