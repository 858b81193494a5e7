//! `Decoder`: turns the raw lines of one file into [`Record`]s: the text rules match, plus the
//! event time, the context (`stream`, `namespace`, `pod`, `container`) and the JSON fields the
//! line carried. One decoder per followed file, between `LineReader` (which cuts bytes at `\n`
//! and bounds their length) and the multi-line `Joiner`.
//!
//! What it does depends on the input's [`Decoding`]:
//! - `plain`: the line's bytes as text (decoded from `encoding`; invalid bytes become U+FFFD).
//!   This is the old path and costs what `String::from_utf8_lossy` costs.
//! - `cri`: parses `TIME STREAM P|F CONTENT` ([`cri`]) and joins `P` pieces up to the `F`, per
//!   stream ([`partial`]); the content is decoded after joining, so a character the runtime
//!   split between two pieces survives.
//! - `docker`: parses docker's json-file lines ([`docker`]) and joins chunks until one ends in
//!   `\n`, which is dropped; `encoding` applies to the line before it is parsed.
//! - `json`: one object per line ([`json`]): the message field is the text, every top-level field
//!   is kept ([`Fields`]).
//! - `content: json` (on `cri`, `docker`): the joined content is decoded as a JSON line.
//! - `auto`: the first non-empty line decides which of `cri`, `docker`, `json` or `plain` the file
//!   is, for the rest of the decoder's life.
//!
//! A line that is not in its input's format is never dropped: it becomes a plain-text record
//! flagged `invalid`, which the caller counts. (A line the reader cut at `max_line_bytes` that no
//! longer parses is flagged `truncated`, not `invalid`: its format was fine until the cut.)
//!
//! Pure: no I/O, no clock. Joining waits are driven by the caller: `push` and `poll` take `now`,
//! [`Decoder::deadline`] says when to poll next, and [`Decoder::open_start`] is where a checkpoint
//! of the file must stop while pieces are held (so a crash never loses them).

pub mod cri;
pub mod docker;
pub mod json;
pub mod partial;
pub mod pod;
pub mod stamp;

use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::config::{Content, Decoding, Format};
use crate::fields::{Context, Fields, Pair, Where};
use crate::intake::decode::partial::{Joined, Partials, Piece};

/// One line as `LineReader` cut it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawLine<'a> {
    /// The line's bytes, without its terminator (at most `max_line_bytes`).
    pub bytes: &'a [u8],
    /// Offset of the line's first byte in the file.
    pub start: u64,
    /// Offset just past the line's terminator (or past the cut).
    pub end: u64,
    /// The reader cut the line at `max_line_bytes`.
    pub truncated: bool,
}

/// One decoded record: a line, or the pieces of a split container line joined.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Offset of its first line in the file (0 for a journal entry).
    pub start: u64,
    /// Offset just past its last line: a checkpoint may store this once the record's
    /// consequences are durable (0 for a journal entry, whose checkpoint is its cursor).
    pub end: u64,
    /// The text rules match.
    pub text: String,
    /// Cut at `max_line_bytes` somewhere on the way.
    pub truncated: bool,
    /// Not in the input's format (or its `content: json` was not JSON): `text` is the line as
    /// plain text. The caller counts these.
    pub invalid: bool,
    /// The event time the line itself carries (CRI, docker, journal), if any.
    pub time: Option<SystemTime>,
    /// What the input knows about the record: `stream`, `namespace`, `pod`, `container`,
    /// `attrs.NAME`, journal fields.
    pub context: Context,
    /// The top-level fields of a JSON line or JSON content (boxed: most records have none, and
    /// a small record is cheaper to move).
    pub fields: Option<Box<Fields>>,
}

impl Record {
    /// True when the record satisfies a rule's `where:` (always, when it has no condition).
    pub fn satisfies(&self, conditions: &Where) -> bool {
        conditions.matches(&self.context, self.fields.as_deref())
    }
}

/// A container's output stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// 0 or 1, for per-stream tables.
    pub fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }

    /// The stream of [`Stream::index`] `index` (anything but 0 is stderr).
    pub fn from_index(index: usize) -> Stream {
        if index == 0 {
            Stream::Stdout
        } else {
            Stream::Stderr
        }
    }
}

/// The format a decoder applies now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `auto` before its first non-empty line.
    Undecided,
    Plain,
    Cri,
    Docker,
    Json,
}

/// Decodes the lines of one file.
#[derive(Debug)]
pub struct Decoder {
    mode: Mode,
    partials: Partials,
    shaper: Shaper,
}

/// Everything that turns decoded pieces into records (split from `Decoder` so that `Partials`
/// can hand out through a closure that borrows it).
#[derive(Debug)]
struct Shaper {
    encoding: Option<&'static encoding_rs::Encoding>,
    content_json: bool,
    message_field: Option<String>,
    /// `namespace`, `pod`, `container` of the file's path.
    file_names: Vec<Pair>,
    /// docker's `attrs` of the last line, as `attrs.NAME`.
    attrs: Vec<Pair>,
    /// The contexts records share: of stdout, of stderr, and without a stream.
    contexts: [Context; 3],
}

impl Decoder {
    /// A decoder for the file at `path` (whose Kubernetes names, if any, become context) of an
    /// input with `decoding`, joining split lines up to `max_line_bytes`.
    pub fn new(decoding: &Decoding, max_line_bytes: usize, path: &Path) -> Decoder {
        let mode = match decoding.format {
            Format::Plain => Mode::Plain,
            Format::Cri => Mode::Cri,
            Format::Docker => Mode::Docker,
            Format::Json => Mode::Json,
            Format::Auto => Mode::Undecided,
        };
        let file_names = match (decoding.format, pod::names(path)) {
            (Format::Plain, _) | (_, None) => Vec::new(),
            (_, Some(names)) => vec![
                (Arc::from("namespace"), Arc::from(names.namespace)),
                (Arc::from("pod"), Arc::from(names.pod)),
                (Arc::from("container"), Arc::from(names.container)),
            ],
        };
        let mut shaper = Shaper {
            encoding: decoding.encoding,
            content_json: decoding.content == Content::Json,
            message_field: decoding.message_field.clone(),
            file_names,
            attrs: Vec::new(),
            contexts: [Context::new(), Context::new(), Context::new()],
        };
        shaper.build_contexts();
        Decoder {
            mode,
            partials: Partials::new(
                max_line_bytes,
                decoding.partial_timeout,
                decoding.encoding.is_none(),
            ),
            shaper,
        }
    }

    /// The format this file is read as: `None` while an `auto` decoder has seen no non-empty
    /// line yet.
    pub fn format(&self) -> Option<Format> {
        match self.mode {
            Mode::Undecided => None,
            Mode::Plain => Some(Format::Plain),
            Mode::Cri => Some(Format::Cri),
            Mode::Docker => Some(Format::Docker),
            Mode::Json => Some(Format::Json),
        }
    }

    /// Takes one line read at `now`; appends the records it completes to `out` (none while it
    /// is a piece of a longer container line; a piece may also complete a message of the other
    /// stream, so records are in completion order, not always in offset order).
    pub fn push(&mut self, raw: RawLine<'_>, now: Instant, out: &mut Vec<Record>) {
        if self.mode == Mode::Undecided {
            if raw.bytes.iter().all(u8::is_ascii_whitespace) {
                out.push(self.shaper.plain(raw, false));
                return;
            }
            self.mode = self.shaper.detect(raw.bytes);
        }
        match self.mode {
            Mode::Plain | Mode::Undecided => out.push(self.shaper.plain(raw, false)),
            Mode::Json => out.push(self.shaper.json(raw)),
            Mode::Cri => match cri::parse(raw.bytes) {
                Some(line) => {
                    let piece = Piece {
                        bytes: line.content,
                        start: raw.start,
                        end: raw.end,
                        time: Some(line.time),
                        truncated: raw.truncated,
                        partial: line.partial,
                    };
                    let shaper = &self.shaper;
                    self.partials.push(line.stream, piece, now, &mut |joined| {
                        out.push(shaper.container(joined, shaper.encoding));
                    });
                }
                None => out.push(self.shaper.plain(raw, !raw.truncated)),
            },
            Mode::Docker => {
                let text = self.shaper.utf8(raw.bytes);
                match docker::parse(&text) {
                    Some(line) if !line.partial() && self.partials.is_idle(line.stream) => {
                        // A whole message (the common case): take docker's string as it is.
                        self.shaper.set_attrs(&line.attrs);
                        let whole = Whole {
                            stream: line.stream,
                            start: raw.start,
                            end: raw.end,
                            time: Some(line.time),
                            truncated: raw.truncated,
                        };
                        out.push(self.shaper.record(line.log.into_owned(), whole));
                    }
                    Some(line) => {
                        self.shaper.set_attrs(&line.attrs);
                        let piece = Piece {
                            bytes: line.log.as_bytes(),
                            start: raw.start,
                            end: raw.end,
                            time: Some(line.time),
                            truncated: raw.truncated,
                            partial: line.partial(),
                        };
                        let shaper = &self.shaper;
                        self.partials.push(line.stream, piece, now, &mut |joined| {
                            out.push(shaper.container(joined, None));
                        });
                    }
                    None => out.push(self.shaper.plain(raw, !raw.truncated)),
                }
            }
        }
    }

    /// Appends the joined lines that waited `partial_timeout` for their next piece at `now`.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Record>) {
        let (shaper, encoding) = (&self.shaper, self.content_encoding());
        self.partials.poll(now, &mut |joined| {
            out.push(shaper.container(joined, encoding));
        });
    }

    /// Appends every line still waiting for pieces (the file is released, or input ended).
    pub fn flush(&mut self, out: &mut Vec<Record>) {
        let (shaper, encoding) = (&self.shaper, self.content_encoding());
        self.partials.flush(&mut |joined| {
            out.push(shaper.container(joined, encoding));
        });
    }

    /// When [`Decoder::poll`] must next be called, if pieces are waiting.
    pub fn deadline(&self) -> Option<Instant> {
        self.partials.deadline()
    }

    /// The start offset of the earliest held piece: a checkpoint of this file must not pass it.
    pub fn open_start(&self) -> Option<u64> {
        self.partials.open_start()
    }

    /// The encoding held pieces are still in: docker's are UTF-8 already.
    fn content_encoding(&self) -> Option<&'static encoding_rs::Encoding> {
        match self.mode {
            Mode::Docker => None,
            _ => self.shaper.encoding,
        }
    }
}

impl Shaper {
    /// Which format a file whose first non-empty line is `bytes` has.
    fn detect(&self, bytes: &[u8]) -> Mode {
        if cri::parse(bytes).is_some() {
            return Mode::Cri;
        }
        let text = self.utf8(bytes);
        if docker::parse(&text).is_some() {
            Mode::Docker
        } else if json::decode(&text, None).is_some() {
            Mode::Json
        } else {
            Mode::Plain
        }
    }

    /// `bytes` as UTF-8: borrowed when no `encoding` is set (invalid UTF-8 is then left for the
    /// JSON parser to reject), decoded otherwise.
    fn utf8<'a>(&self, bytes: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        match self.encoding {
            None => std::borrow::Cow::Borrowed(bytes),
            Some(encoding) => match encoding.decode_without_bom_handling(bytes).0 {
                std::borrow::Cow::Borrowed(text) => std::borrow::Cow::Borrowed(text.as_bytes()),
                std::borrow::Cow::Owned(text) => std::borrow::Cow::Owned(text.into_bytes()),
            },
        }
    }

    /// The line as plain text; `invalid` when it should have been in another format.
    fn plain(&self, raw: RawLine<'_>, invalid: bool) -> Record {
        Record {
            start: raw.start,
            end: raw.end,
            text: decode_text(raw.bytes, self.encoding),
            truncated: raw.truncated,
            invalid,
            time: None,
            context: self.context(None),
            fields: None,
        }
    }

    /// A JSON line; plain text flagged `invalid` if it is not a JSON object.
    fn json(&self, raw: RawLine<'_>) -> Record {
        let text = self.utf8(raw.bytes);
        match json::decode(&text, self.message_field.as_deref()) {
            Some(line) => Record {
                start: raw.start,
                end: raw.end,
                text: line.text,
                truncated: raw.truncated,
                invalid: false,
                time: None,
                context: self.context(None),
                fields: Some(Box::new(line.fields)),
            },
            None => self.plain(raw, !raw.truncated),
        }
    }

    /// A joined container message, its content in `encoding`.
    fn container(
        &self,
        joined: Joined<'_>,
        encoding: Option<&'static encoding_rs::Encoding>,
    ) -> Record {
        let whole = Whole {
            stream: joined.stream,
            start: joined.start,
            end: joined.end,
            time: joined.time,
            truncated: joined.truncated,
        };
        self.record(decode_text(joined.bytes, encoding), whole)
    }

    /// The record of a whole container message whose content is `text`: the trailing newline
    /// dropped, the JSON content decoded when `content: json`.
    fn record(&self, mut text: String, whole: Whole) -> Record {
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        let mut record = Record {
            start: whole.start,
            end: whole.end,
            text,
            truncated: whole.truncated,
            invalid: false,
            time: whole.time,
            context: self.context(Some(whole.stream)),
            fields: None,
        };
        if self.content_json {
            match json::decode(record.text.as_bytes(), self.message_field.as_deref()) {
                Some(line) => {
                    record.text = line.text;
                    record.fields = Some(Box::new(line.fields));
                }
                None => record.invalid = !record.truncated,
            }
        }
        record
    }

    /// The context of a record of this file: its stream, the file's names, docker's attrs.
    fn context(&self, stream: Option<Stream>) -> Context {
        match stream {
            Some(stream) => self.contexts[stream.index()].clone(),
            None => self.contexts[2].clone(),
        }
    }

    /// Builds the shared contexts from the file's names and the attrs.
    fn build_contexts(&mut self) {
        let stream = Arc::<str>::from("stream");
        let with = |first: Option<Pair>| {
            let pairs: Vec<Pair> = first
                .into_iter()
                .chain(self.file_names.iter().cloned())
                .chain(self.attrs.iter().cloned())
                .collect();
            Context::from_pairs(pairs)
        };
        self.contexts = [
            with(Some((stream.clone(), Arc::from(Stream::Stdout.as_str())))),
            with(Some((stream, Arc::from(Stream::Stderr.as_str())))),
            with(None),
        ];
    }

    /// Keeps docker's `attrs` of the current line (they rarely change within a file).
    fn set_attrs(&mut self, attrs: &[(String, String)]) {
        let same = attrs.len() == self.attrs.len()
            && attrs
                .iter()
                .zip(&self.attrs)
                .all(|((name, value), (kept, kept_value))| {
                    kept.strip_prefix("attrs.") == Some(name.as_str()) && **kept_value == **value
                });
        if !same {
            self.attrs = attrs
                .iter()
                .map(|(name, value)| {
                    (
                        Arc::from(format!("attrs.{name}")),
                        Arc::from(value.as_str()),
                    )
                })
                .collect();
            self.build_contexts();
        }
    }
}

/// Where a whole container message was and what it was, besides its text.
#[derive(Clone, Copy, Debug)]
struct Whole {
    stream: Stream,
    start: u64,
    end: u64,
    time: Option<SystemTime>,
    truncated: bool,
}

/// `bytes` as text: UTF-8 (lossy) without `encoding`, else decoded from it; bad bytes become
/// U+FFFD, nothing is dropped.
pub fn decode_text(bytes: &[u8], encoding: Option<&'static encoding_rs::Encoding>) -> String {
    match encoding {
        // Valid UTF-8 (nearly every line) is checked by `from_utf8`, whose ASCII fast path is
        // several times quicker than the chunk walk of `from_utf8_lossy` (4 % of a busy
        // daemon's samples, issue 18); only a line with bad bytes takes the lossy path.
        None => match std::str::from_utf8(bytes) {
            Ok(text) => text.to_owned(),
            Err(_) => String::from_utf8_lossy(bytes).into_owned(),
        },
        Some(encoding) => encoding.decode_without_bom_handling(bytes).0.into_owned(),
    }
}

#[cfg(test)]
mod tests;
