//! Data that crosses module lines on the way from a file to a chat message.
//!
//! `tail` produces [`LogLine`]s; `rules` turns a line into zero or more `RuleMatch`es;
//! `dispatch` batches matches per robot. A rule's [`Severity`] and [`Mentions`] live here too, so
//! that `rules` need not import `dispatch`. Keeping these types here (and small) keeps the
//! modules that produce and consume them independent of each other.

use std::path::PathBuf;
use std::time::SystemTime;

/// Identifies one followed file for as long as the daemon knows it, independent of its path
/// (a rename keeps the id). Assigned by `tail` from the file's fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u64);

/// One line (or one joined multi-line event) read from a file.
#[derive(Clone, Debug)]
pub struct LogLine {
    /// Name of the input (the key under `inputs:`) this file belongs to.
    pub input: String,
    /// Which followed file the line came from.
    pub file_id: FileId,
    /// The path the file had when the line was read.
    pub path: PathBuf,
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
    /// When the line was read.
    pub read_at: SystemTime,
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
