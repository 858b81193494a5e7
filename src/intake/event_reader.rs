//! `EventReader`: the bytes of one file (or one scanned log) turned into the events rules see,
//! with the offset a checkpoint may store. The same code serves the daemon's tailer, `dingtail
//! test` and `dingtail tail`, so that they cut, decode, join and cap lines alike.
//!
//! The stages, in order: [`LineReader`] cuts the bytes at `\n` (dropping a `\r` before it,
//! capping a line at `max_line_bytes` and skipping the rest of it), the [`Decoder`] turns raw
//! lines into records in the input's format (text, event time, context, JSON fields, and
//! whether the line was not in the format after all), and the optional [`Joiner`] joins
//! continuation lines into multi-line events (which keep the first line's context and fields).
//!
//! The checkpoint rule: [`EventReader::checkpoint`] is the end of the last event handed out,
//! never past the start of a record the decoder or the joiner still holds; the skipped tail of
//! a cut line is passed once the cut line itself has been handed out.
//!
//! The end of a file: a last line without a terminator is handed out once no byte has arrived
//! for `partial_timeout` ([`EventReader::poll`]), or at once by [`EventReader::flush`] when the
//! caller knows the file is at rest (`dingtail test` at the end of its input, a rotated file
//! released). Pure apart from reading `src`: `now` and the wall time come from the caller.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{Decoding, InputConfig, MultilineConfig, TimestampConfig};
use crate::event::{FileId, LogLine};
use crate::intake::decode::{Decoder, RawLine, Record};
use crate::intake::multiline::Joiner;
use crate::intake::reader::{LineReader, Piece};
use crate::intake::timestamp::event_time;

/// A source quiet for this long gives back its read buffer at the next [`EventReader::poll`]: a
/// file written steadily keeps it, a thousand quiet files hold none.
pub const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// Who the events of a reader belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The input (a key under `inputs:`), shared by its lines.
    pub input: Arc<str>,
    /// The followed file.
    pub file_id: FileId,
    /// The file's path as last seen, shared by its lines.
    pub path: Arc<Path>,
}

/// The line settings of an input that an [`EventReader`] applies.
#[derive(Clone, Debug)]
pub struct Framing {
    /// Lines longer than this are cut and their rest skipped.
    pub max_line_bytes: usize,
    /// Joining of continuation lines.
    pub multiline: Option<MultilineConfig>,
    /// How lines are decoded (format, encoding); its `partial_timeout` is also how long an
    /// unterminated last line waits for its end.
    pub decoding: Decoding,
    /// Where events carry their own time (`timestamp:`).
    pub timestamp: Option<TimestampConfig>,
}

impl Framing {
    /// The framing an input configures.
    pub fn of(input: &InputConfig) -> Framing {
        Framing {
            max_line_bytes: input.max_line_bytes,
            multiline: input.multiline.clone(),
            decoding: input.decoding.clone(),
            timestamp: input.timestamp.clone(),
        }
    }

    /// Plain text with the default settings (a log scanned without an input of its own).
    pub fn plain() -> Framing {
        Framing {
            max_line_bytes: crate::config::DEFAULT_MAX_LINE_BYTES,
            multiline: None,
            decoding: Decoding::default(),
            timestamp: None,
        }
    }
}

/// Turns one file's bytes into events. See the module documentation.
#[derive(Debug)]
pub struct EventReader {
    origin: Origin,
    reader: LineReader,
    decoder: Decoder,
    decoding: Decoding,
    joiner: Option<Joiner>,
    multiline: Option<MultilineConfig>,
    partial_timeout: Duration,
    timestamp: Option<TimestampConfig>,
    /// End of the last event handed out.
    emitted: u64,
    /// A cut line's tail was skipped from `.0` (the cut) to `.1`: once the cut line is handed
    /// out, the checkpoint may jump to `.1`.
    skipped: Option<(u64, u64)>,
    /// End of the last line cut at `max_line_bytes` whose tail is being skipped.
    last_cut_end: Option<u64>,
    /// When bytes last arrived (or the reader was created).
    last_data: Instant,
    /// Scratch for the decoder's output.
    records: Vec<Record>,
    /// Start offsets of the raw lines read, when asked for (`dingtail test` numbers lines).
    line_starts: Option<Vec<u64>>,
}

impl EventReader {
    /// A reader whose first byte is at `offset` of the file.
    pub fn new(framing: &Framing, origin: Origin, offset: u64, now: Instant) -> EventReader {
        EventReader {
            reader: LineReader::new(framing.max_line_bytes, offset),
            decoder: Decoder::new(&framing.decoding, framing.max_line_bytes, &origin.path),
            decoding: framing.decoding.clone(),
            origin,
            joiner: framing.multiline.as_ref().map(Joiner::new),
            multiline: framing.multiline.clone(),
            partial_timeout: framing.decoding.partial_timeout,
            timestamp: framing.timestamp.clone(),
            emitted: offset,
            skipped: None,
            last_cut_end: None,
            last_data: now,
            records: Vec::new(),
            line_starts: None,
        }
    }

    /// Records the start offset of every raw line read from now on (see
    /// [`EventReader::take_line_starts`]).
    pub fn record_line_starts(&mut self) {
        self.line_starts = Some(Vec::new());
    }

    /// The start offsets of the raw lines read since the last call, in order.
    pub fn take_line_starts(&mut self) -> Vec<u64> {
        self.line_starts
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Reads from `src` (positioned at [`EventReader::position`]) at most `*budget` bytes and
    /// `max_lines` raw lines, handing the events they complete to `out`. `now` and `wall` stamp
    /// the read.
    ///
    /// # Errors
    /// What `src.read` returned; what was read before it is kept.
    pub fn read<R: Read + ?Sized>(
        &mut self,
        src: &mut R,
        budget: &mut usize,
        max_lines: usize,
        now: Instant,
        wall: SystemTime,
        out: &mut Vec<LogLine>,
    ) -> io::Result<()> {
        let position = self.reader.position();
        let mut result = Ok(());
        for _ in 0..max_lines {
            let piece = match self.reader.next_piece(src, budget) {
                Ok(Some(piece)) => piece,
                Ok(None) => break,
                Err(err) => {
                    result = Err(err);
                    break;
                }
            };
            match piece {
                Piece::Line {
                    start,
                    end,
                    bytes,
                    truncated,
                } => {
                    let raw = RawLine {
                        bytes,
                        start,
                        end,
                        truncated,
                    };
                    decode(
                        &mut self.decoder,
                        &mut self.line_starts,
                        raw,
                        now,
                        &mut self.records,
                    );
                    if truncated {
                        self.last_cut_end = Some(end);
                    }
                    self.hand_out(now, wall, out);
                }
                Piece::Skipped { end } => {
                    let held = self.joiner.as_ref().and_then(Joiner::open_start).is_some()
                        || self.decoder.open_start().is_some();
                    match self.last_cut_end.take() {
                        Some(cut) if held => self.skipped = Some((cut, end)),
                        Some(cut) if self.emitted == cut => self.emitted = end,
                        _ => {}
                    }
                }
            }
        }
        if self.reader.position() > position {
            self.last_data = now;
        }
        result
    }

    /// Hands out what timed out at `now`: an unterminated last line quiet for
    /// `partial_timeout`, records the decoder held too long, and multi-line events quiet for
    /// their timeout. A source quiet for [`RELEASE_AFTER`] gives back its read buffer.
    pub fn poll(&mut self, now: Instant, wall: SystemTime, out: &mut Vec<LogLine>) {
        if now.saturating_duration_since(self.last_data) >= RELEASE_AFTER {
            self.reader.release();
        }
        if self.partial_due(now) {
            self.take_partial(now);
            self.hand_out(now, wall, out);
        }
        self.decoder.poll(now, &mut self.records);
        self.hand_out(now, wall, out);
        if let Some(event) = self.joiner.as_mut().and_then(|j| j.poll(now)) {
            self.emit(event, out);
        }
    }

    /// Hands out everything, the unterminated last line included: the file is at rest for good
    /// (released after a rotation, or the end of the input of `dingtail test`).
    pub fn flush(&mut self, now: Instant, wall: SystemTime, out: &mut Vec<LogLine>) {
        self.take_partial(now);
        self.hand_out(now, wall, out);
        self.flush_held(now, wall, out);
    }

    /// Hands out what the decoder and the joiner hold, but leaves an unterminated last line
    /// buffered (it may still be completed): the file starts over, or the joining changed.
    pub fn flush_held(&mut self, now: Instant, wall: SystemTime, out: &mut Vec<LogLine>) {
        self.decoder.flush(&mut self.records);
        self.hand_out(now, wall, out);
        if let Some(event) = self.joiner.as_mut().and_then(Joiner::flush) {
            self.emit(event, out);
        }
    }

    /// Starts over at offset 0 (the file was truncated or rewritten): held events are handed
    /// out first; a buffered partial line is dropped with the old content.
    pub fn restart(&mut self, now: Instant, wall: SystemTime, out: &mut Vec<LogLine>) {
        self.flush_held(now, wall, out);
        self.reader.reset(0);
        self.decoder = Decoder::new(
            &self.decoding,
            self.reader.max_line_bytes(),
            &self.origin.path,
        );
        self.emitted = 0;
        self.skipped = None;
        self.last_cut_end = None;
    }

    /// Starts over at `offset`, dropping everything held (a partial line, a record, an event
    /// being joined) without handing it out: another reader of the same bytes hands them out
    /// (a copy of the file continues where this one was).
    pub fn reset(&mut self, offset: u64) {
        self.reader.reset(offset);
        self.decoder = Decoder::new(
            &self.decoding,
            self.reader.max_line_bytes(),
            &self.origin.path,
        );
        self.joiner = self.multiline.as_ref().map(Joiner::new);
        self.emitted = offset;
        self.skipped = None;
        self.last_cut_end = None;
    }

    /// Applies an input's new line settings (a reload). A changed multi-line setting closes the
    /// event being joined; it goes to `out`.
    pub fn reconfigure(
        &mut self,
        framing: &Framing,
        now: Instant,
        wall: SystemTime,
        out: &mut Vec<LogLine>,
    ) {
        self.reader.set_max_line_bytes(framing.max_line_bytes);
        self.partial_timeout = framing.decoding.partial_timeout;
        if framing.decoding != self.decoding {
            // A new format or encoding applies from the next line; what the old decoder holds
            // goes out first.
            self.decoder.flush(&mut self.records);
            self.hand_out(now, wall, out);
            self.decoding = framing.decoding.clone();
            self.decoder = Decoder::new(&self.decoding, framing.max_line_bytes, &self.origin.path);
        }
        self.timestamp = framing.timestamp.clone();
        if !same_multiline(self.multiline.as_ref(), framing.multiline.as_ref()) {
            if let Some(event) = self.joiner.as_mut().and_then(Joiner::flush) {
                self.emit(event, out);
            }
            self.multiline = framing.multiline.clone();
            self.joiner = self.multiline.as_ref().map(Joiner::new);
        }
        // Records the decoder finished meanwhile (none for plain text) are not lost.
        self.hand_out(now, wall, out);
    }

    /// The offset a checkpoint may store: everything before it has been handed out.
    pub fn checkpoint(&self) -> u64 {
        let held = [
            self.decoder.open_start(),
            self.joiner.as_ref().and_then(Joiner::open_start),
        ];
        held.into_iter()
            .flatten()
            .fold(self.emitted, |offset, start| offset.min(start))
    }

    /// When [`EventReader::poll`] must run next, if anything waits for a timeout.
    pub fn deadline(&self) -> Option<Instant> {
        let partial = self
            .has_partial()
            .then(|| self.last_data + self.partial_timeout);
        [
            partial,
            self.decoder.deadline(),
            self.joiner.as_ref().and_then(Joiner::deadline),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// End of the bytes read so far: where the next read continues.
    pub fn position(&self) -> u64 {
        self.reader.position()
    }

    /// End of the bytes consumed (handed to the decoder, or skipped).
    pub fn offset(&self) -> u64 {
        self.reader.offset()
    }

    /// Bytes read but not consumed yet (a partial line).
    pub fn buffered(&self) -> usize {
        self.reader.buffered()
    }

    /// When bytes last arrived.
    pub fn last_data(&self) -> Instant {
        self.last_data
    }

    /// How many lines were cut at `max_line_bytes` so far.
    pub fn n_cut(&self) -> u64 {
        self.reader.n_cut()
    }

    /// Who the events belong to.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The file was found at another path (a rename): later events carry it.
    pub fn set_path(&mut self, path: PathBuf) {
        self.origin.path = path.into();
    }

    fn has_partial(&self) -> bool {
        self.reader.has_partial()
    }

    fn partial_due(&self, now: Instant) -> bool {
        self.has_partial() && now.saturating_duration_since(self.last_data) >= self.partial_timeout
    }

    /// Gives the buffered unterminated line to the decoder.
    fn take_partial(&mut self, now: Instant) {
        if let Some(Piece::Line {
            start,
            end,
            bytes,
            truncated,
        }) = self.reader.take_partial()
        {
            let raw = RawLine {
                bytes,
                start,
                end,
                truncated,
            };
            decode(
                &mut self.decoder,
                &mut self.line_starts,
                raw,
                now,
                &mut self.records,
            );
        }
    }

    /// Moves the decoder's finished records on, through the joiner when there is one.
    fn hand_out(&mut self, now: Instant, wall: SystemTime, out: &mut Vec<LogLine>) {
        if self.records.is_empty() {
            return;
        }
        let mut records = std::mem::take(&mut self.records);
        for record in records.drain(..) {
            let line = LogLine {
                input: self.origin.input.clone(),
                file_id: self.origin.file_id,
                path: self.origin.path.clone(),
                start_offset: record.start,
                end_offset: record.end,
                text: record.text,
                truncated: record.truncated,
                invalid: record.invalid,
                read_at: wall,
                // The decoder's own time (CRI, docker); an input's `timestamp:` wins in `emit`.
                event_time: record.time,
                context: record.context,
                fields: record.fields,
            };
            match self.joiner.as_mut() {
                Some(joiner) => {
                    if let Some(event) = joiner.push(line, now) {
                        self.emit(event, out);
                    }
                }
                None => self.emit(line, out),
            }
        }
        // Keep the allocation for the next call.
        self.records = records;
    }

    /// Hands an event out, stamped with its own time, and moves the checkpoint past it.
    fn emit(&mut self, mut line: LogLine, out: &mut Vec<LogLine>) {
        if let Some(timestamp) = &self.timestamp {
            // A time the input's `timestamp:` reads wins over one a decoder found.
            line.event_time = event_time(timestamp, &line.text, line.read_at).or(line.event_time);
        }
        self.emitted = self.emitted.max(line.end_offset);
        if let Some((cut, skip_end)) = self.skipped {
            if line.end_offset == cut {
                self.emitted = skip_end;
                self.skipped = None;
            }
        }
        out.push(line);
    }
}

/// Gives one raw line to the decoder, noting where it starts when line starts are recorded.
/// (A free function: the line borrows the reader's buffer while the decoder is written.)
fn decode(
    decoder: &mut Decoder,
    line_starts: &mut Option<Vec<u64>>,
    raw: RawLine<'_>,
    now: Instant,
    records: &mut Vec<Record>,
) {
    if let Some(starts) = line_starts.as_mut() {
        starts.push(raw.start);
    }
    decoder.push(raw, now, records);
}

/// True when two multi-line settings join alike.
fn same_multiline(a: Option<&MultilineConfig>, b: Option<&MultilineConfig>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.start.as_str() == b.start.as_str()
                && a.max_lines == b.max_lines
                && a.timeout == b.timeout
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
