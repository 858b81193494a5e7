//! Data that crosses module lines on the way from a file to a chat message.
//!
//! `intake` produces [`LogLine`]s (carrying the context and JSON fields of `crate::fields`);
//! `rules` turns a line into zero or more `RuleMatch`es; `dispatch` batches matches per robot. A rule's [`Severity`] and [`Mentions`] live here too, so
//! that `rules` need not import `dispatch`. Keeping these types here (and small) keeps the
//! modules that produce and consume them independent of each other.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use crate::fields::{Context, Fields, Where};

/// Identifies one followed file for as long as the daemon knows it, independent of its path
/// (a rename keeps the id). Assigned by `tail` from the file's fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u64);

/// One line (or one joined multi-line event) read from a file.
#[derive(Clone, Debug)]
pub struct LogLine {
    /// Name of the input (the key under `inputs:`) this file belongs to. Shared by every line
    /// of the input (no allocation per line: issue 18).
    pub input: Arc<str>,
    /// Which followed file the line came from.
    pub file_id: FileId,
    /// The path the file had when the line was read (shared by the lines of one read).
    pub path: Arc<Path>,
    /// Byte offset of the line's first byte.
    pub start_offset: u64,
    /// Byte offset just past the line's terminator: a checkpoint may store this once the line's
    /// consequences are durable.
    pub end_offset: u64,
    /// The text, decoded lossily (invalid UTF-8 becomes U+FFFD, never dropped). Multi-line events
    /// hold their lines joined with `\n`; no trailing terminator.
    pub text: String,
    /// True when the line was cut at `max_line_bytes`.
    pub truncated: bool,
    /// True when the line was not in its input's format (a `json` input's line that is no JSON
    /// object, a `cri` line without its prefix): `text` is the line as plain text. Counted.
    pub invalid: bool,
    /// When the line was read.
    pub read_at: SystemTime,
    /// When the event happened, as the line (or its input format) says: set by the intake from
    /// an input's `timestamp:` or by a decoder whose records carry their own time; `None` when
    /// unknown or unparsable.
    pub event_time: Option<SystemTime>,
    /// What the input knows about the event: a container's `stream`, the `namespace`, `pod` and
    /// `container` of a Kubernetes log path, docker's `attrs.NAME`, every field of a journal
    /// entry. Empty for plain text; shared by the events of one file, so cheap to carry.
    pub context: Context,
    /// The top-level fields of a JSON line (or of a container line's JSON content), for
    /// `where:` and templates (`fields.NAME`); `None` for text.
    pub fields: Option<Box<Fields>>,
}

/// The context name of the host a journal entry comes from.
const HOSTNAME: &str = "_HOSTNAME";

impl LogLine {
    /// The host the event comes from when its input says so (a journal entry's `_HOSTNAME`,
    /// which differs from this machine's for journals gathered from others); `None` means this
    /// machine (the config's `host`).
    pub fn host(&self) -> Option<&str> {
        self.context.get(HOSTNAME).filter(|host| !host.is_empty())
    }

    /// True when the event satisfies a rule's `where:` (always, when the rule has none).
    pub fn satisfies(&self, conditions: &Where) -> bool {
        conditions.matches(&self.context, self.fields.as_deref())
    }

    /// The event's time: when it happened if the line says so, else when it was read. Every time
    /// a message reports (samples, first and last seen) is this one.
    pub fn time(&self) -> SystemTime {
        self.event_time.unwrap_or(self.read_at)
    }
}

/// A rule's severity (`severity:` in a rule file); orders summaries, critical first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Needs a look.
    Warning,
    /// Needs someone now.
    Critical,
}

/// Which DingTalk message kind a message becomes (`msgtype:` of a rule for its lone events, of a
/// robot for its summaries). Defined here, beside [`Severity`], so that `config` can name it
/// without depending on `dingtalk`, which lays each kind out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MsgType {
    /// `markdown`: a title in the notification, the text in DingTalk's markdown subset.
    #[default]
    Markdown,
    /// `text`: plain text, shown literally; its @-mentions are highlighted and tappable.
    Text,
    /// `actionCard`: markdown text with a button (the rule's `link:`).
    ActionCard,
}

impl MsgType {
    /// The names `msgtype:` accepts (DingTalk's own).
    pub const NAMES: &'static [&'static str] = &["markdown", "text", "actionCard"];

    /// Parses a `msgtype:` value.
    pub fn parse(name: &str) -> Option<MsgType> {
        match name {
            "markdown" => Some(MsgType::Markdown),
            "text" => Some(MsgType::Text),
            "actionCard" => Some(MsgType::ActionCard),
            _ => None,
        }
    }

    /// DingTalk's name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            MsgType::Markdown => "markdown",
            MsgType::Text => "text",
            MsgType::ActionCard => "actionCard",
        }
    }

    /// The kind of text the message carries, which decides how log text is escaped in it.
    pub fn markup(self) -> Markup {
        match self {
            MsgType::Markdown | MsgType::ActionCard => Markup::Markdown,
            MsgType::Text => Markup::Plain,
        }
    }
}

/// The kind of text a rendered template is: what log-derived values were escaped for. Kept with
/// every rendered sample, so that a sample shown in a message of another kind is made safe for
/// it (see `dingtalk::escape`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Markup {
    /// DingTalk markdown: log text is inert (no link, image, heading, emphasis, list, quote,
    /// HTML or mention can be formed from it).
    #[default]
    Markdown,
    /// Plain text (`msgtype: text`): only mentions are broken and control bytes made visible.
    Plain,
}

/// A rule's `link:` as rendered for one match: a button of an action card, a link line
/// elsewhere. The URL was checked (`http`, `https` or `dingtalk` scheme) and its log-derived parts
/// percent-encoded when it was rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The button's or link's text (plain: one line, control bytes visible).
    pub title: String,
    /// Where it goes.
    pub url: String,
}

/// Who a message @-mentions (a rule's `at:`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mentions {
    /// Mobiles to @.
    pub mobiles: Vec<String>,
    /// DingTalk user ids to @.
    pub user_ids: Vec<String>,
    /// @ everyone.
    pub all: bool,
}

impl Mentions {
    /// Adds `other`'s mentions, keeping each once, in first-seen order.
    pub fn merge(&mut self, other: &Mentions) {
        for mobile in &other.mobiles {
            if !self.mobiles.contains(mobile) {
                self.mobiles.push(mobile.clone());
            }
        }
        for user_id in &other.user_ids {
            if !self.user_ids.contains(user_id) {
                self.user_ids.push(user_id.clone());
            }
        }
        self.all |= other.all;
    }

    /// True when nobody is mentioned.
    pub fn is_empty(&self) -> bool {
        self.mobiles.is_empty() && self.user_ids.is_empty() && !self.all
    }

    /// True when `mobile` can be a DingTalk mobile number: digits, maybe a `+<country>-`
    /// prefix (`13800000000`, `+852-12345678`), 5 to 20 digits in all.
    pub fn is_mobile(mobile: &str) -> bool {
        let digits = mobile.strip_prefix('+').unwrap_or(mobile);
        let n_digits = digits.bytes().filter(u8::is_ascii_digit).count();
        digits.bytes().all(|b| b.is_ascii_digit() || b == b'-')
            && digits.bytes().next().is_some_and(|b| b.is_ascii_digit())
            && !digits.ends_with('-')
            && (5..=20).contains(&n_digits)
    }

    /// True when `user_id` can be a DingTalk user id: 1 to 64 letters, digits, `_ - . : $`.
    pub fn is_user_id(user_id: &str) -> bool {
        (1..=64).contains(&user_id.len())
            && user_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'$'))
    }
}

impl Severity {
    /// The name used in rule files and messages: `info`, `warning` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// Parses a rule file's `severity:` value.
    pub fn parse(name: &str) -> Option<Severity> {
        match name {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}
