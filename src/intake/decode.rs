//! Decoding: the stage between a raw line of a file and the record rules see. It is where input
//! formats plug in (a container runtime's framing, JSON objects, a legacy encoding) without the
//! tailer, `dingtail test` or the daemon knowing about them: each followed file (or scanned log)
//! gets one [`Decoder`], fed raw lines in order with their offsets.
//!
//! A decoder may hold a raw line back (a format that splits long lines into pieces joins them
//! first); while it does, [`Decoder::open_start`] says where the held record starts, so that the
//! file's checkpoint never passes it, and [`Decoder::deadline`] says when a held record must be
//! let go even if its end never comes.
//!
//! Pure: no I/O, no clock reads; `now` comes from the caller.

use std::time::Instant;

/// One line as the line reader cut it: its bytes (without the terminator) and where it lies in
/// the file.
#[derive(Clone, Copy, Debug)]
pub struct RawLine<'a> {
    /// The line's bytes, at most `max_line_bytes` of them.
    pub bytes: &'a [u8],
    /// Offset of the line's first byte.
    pub start: u64,
    /// Offset just past the line's terminator (or past the cut of a cut line).
    pub end: u64,
    /// True when the line was cut at `max_line_bytes`.
    pub truncated: bool,
}

/// A decoded record: the text rules match and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Offset of the record's first byte.
    pub start: u64,
    /// Offset just past the record's last byte (a checkpoint may store it once the record's
    /// consequences are durable).
    pub end: u64,
    /// The text, decoded lossily (invalid input becomes U+FFFD, never dropped).
    pub text: String,
    /// True when the record was cut at `max_line_bytes`.
    pub truncated: bool,
}

/// How the raw lines of one file become records.
#[derive(Clone, Debug, Default)]
pub enum Decoder {
    /// Plain text: one record per line, UTF-8 decoded lossily.
    #[default]
    Plain,
}

impl Decoder {
    /// Decodes one raw line; the records it completes go to `out`.
    pub fn push(&mut self, raw: RawLine<'_>, _now: Instant, out: &mut Vec<Record>) {
        match self {
            Decoder::Plain => out.push(Record {
                start: raw.start,
                end: raw.end,
                text: String::from_utf8_lossy(raw.bytes).into_owned(),
                truncated: raw.truncated,
            }),
        }
    }

    /// Lets go of the records held past their deadline at `now`.
    pub fn poll(&mut self, _now: Instant, _out: &mut Vec<Record>) {
        match self {
            Decoder::Plain => {}
        }
    }

    /// Lets go of every held record (the file is released, or its end was reached at rest).
    pub fn flush(&mut self, _out: &mut Vec<Record>) {
        match self {
            Decoder::Plain => {}
        }
    }

    /// When [`Decoder::poll`] must run next, if a record is held.
    pub fn deadline(&self) -> Option<Instant> {
        match self {
            Decoder::Plain => None,
        }
    }

    /// The start offset of the record held back, if any: a checkpoint must not pass it.
    pub fn open_start(&self) -> Option<u64> {
        match self {
            Decoder::Plain => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use crate::intake::decode::{Decoder, RawLine, Record};

    #[test]
    fn plain_text_is_one_record_per_line_decoded_lossily() {
        let mut decoder = Decoder::Plain;
        let mut out = Vec::new();
        let raw = RawLine {
            bytes: b"caf\xc3\xa9 \xff",
            start: 10,
            end: 18,
            truncated: false,
        };
        decoder.push(raw, Instant::now(), &mut out);
        assert_eq!(
            out,
            [Record {
                start: 10,
                end: 18,
                text: "café \u{fffd}".into(),
                truncated: false
            }]
        );
        assert_eq!(decoder.open_start(), None);
        assert_eq!(decoder.deadline(), None);
    }
}
