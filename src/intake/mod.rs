//! Intake: the one road from the bytes of a log to the events rules see. The daemon's tailer,
//! `dingtail test` and `dingtail tail` all read through an [`EventReader`], so that they agree on
//! every log: where lines end (`\n`, with a `\r` before it dropped), how long a line may be
//! (`max_line_bytes`: cut and counted, the rest skipped), how input formats are decoded
//! ([`decode`]), how continuation lines are joined ([`multiline`]) and when an unterminated last
//! line counts (after `partial_timeout` of quiet, or at once at the end of a log at rest), and
//! when an event happened ([`timestamp`], from the input's `timestamp:`).
//!
//! Nothing here touches the file system, the clock or the rules: the tailer decides which file
//! to read and when, the caller passes `now`, and matching happens after intake
//! (`Pipeline::route`).

pub mod decode;
pub mod event_reader;
pub mod multiline;
pub mod reader;
pub mod timestamp;

pub use crate::intake::event_reader::{EventReader, Framing, Origin};
