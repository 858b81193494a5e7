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
use std::path::PathBuf;
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
    /// The input (a key under `inputs:`).
    pub input: String,
    /// The followed file.
    pub file_id: FileId,
    /// The file's path as last seen.
    pub path: PathBuf,
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
        self.origin.path = path;
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
mod tests {
    use std::path::PathBuf;
    use std::time::{Duration, Instant, SystemTime};

    use crate::config::MultilineConfig;
    use crate::event::{FileId, LogLine};
    use crate::intake::event_reader::{EventReader, Framing, Origin, RELEASE_AFTER};

    fn framing(max_line_bytes: usize, multiline: Option<&str>) -> Framing {
        Framing {
            max_line_bytes,
            multiline: multiline.map(|start| MultilineConfig {
                start: regex::Regex::new(start).unwrap(),
                max_lines: 100,
                timeout: Duration::from_secs(2),
            }),
            decoding: crate::config::Decoding::default(),
            timestamp: None,
        }
    }

    fn reader(framing: &Framing, t0: Instant) -> EventReader {
        let origin = Origin {
            input: "app".into(),
            file_id: FileId(1),
            path: PathBuf::from("/var/log/app.log"),
        };
        EventReader::new(framing, origin, 0, t0)
    }

    /// Feeds `data` and returns the events' (start, end, text, truncated).
    fn feed(reader: &mut EventReader, data: &[u8], now: Instant) -> Vec<(u64, u64, String, bool)> {
        let mut src = data;
        let mut out: Vec<LogLine> = Vec::new();
        let mut budget = usize::MAX;
        reader
            .read(
                &mut src,
                &mut budget,
                usize::MAX,
                now,
                SystemTime::now(),
                &mut out,
            )
            .unwrap();
        shape(out)
    }

    fn shape(out: Vec<LogLine>) -> Vec<(u64, u64, String, bool)> {
        out.into_iter()
            .map(|l| (l.start_offset, l.end_offset, l.text, l.truncated))
            .collect()
    }

    #[test]
    fn an_unterminated_last_line_waits_for_the_partial_timeout() {
        let t0 = Instant::now();
        let mut reader = reader(&framing(100, None), t0);
        assert_eq!(
            feed(&mut reader, b"one\r\ntwo", t0),
            [(0, 5, "one".to_string(), false)]
        );
        assert_eq!(reader.checkpoint(), 5);
        assert_eq!(reader.deadline(), Some(t0 + Duration::from_secs(5)));
        let mut out = Vec::new();
        reader.poll(
            t0 + Duration::from_millis(4999),
            SystemTime::now(),
            &mut out,
        );
        assert!(out.is_empty(), "not quiet long enough");
        reader.poll(t0 + Duration::from_secs(5), SystemTime::now(), &mut out);
        assert_eq!(shape(out), [(5, 8, "two".to_string(), false)]);
        assert_eq!(reader.checkpoint(), 8);
        assert_eq!(reader.deadline(), None);
        // The writer goes on where it stopped: the rest is a line of its own.
        assert_eq!(
            feed(&mut reader, b" more\n", t0 + Duration::from_secs(6)),
            [(8, 14, " more".to_string(), false)]
        );
    }

    #[test]
    fn a_file_written_steadily_keeps_its_read_buffer_and_a_quiet_one_gives_it_back() {
        let t0 = Instant::now();
        let mut reader = reader(&framing(100, None), t0);
        feed(&mut reader, b"one\ntw", t0);
        let held = reader.reader.capacity();
        assert!(held >= 6, "{held}");
        let mut out = Vec::new();
        reader.poll(t0 + RELEASE_AFTER / 2, SystemTime::now(), &mut out);
        assert_eq!(
            reader.reader.capacity(),
            held,
            "kept while the file is busy"
        );
        let t1 = t0 + RELEASE_AFTER / 2;
        feed(&mut reader, b"o\nthr", t1);
        reader.poll(t0 + RELEASE_AFTER, SystemTime::now(), &mut out);
        assert_eq!(reader.reader.capacity(), held, "quiet since t1 only");
        reader.poll(t1 + RELEASE_AFTER, SystemTime::now(), &mut out);
        assert_eq!(reader.reader.capacity(), 3, "only the partial line is kept");
        assert_eq!(
            feed(&mut reader, b"ee\n", t1 + RELEASE_AFTER * 2),
            [(8, 14, "three".to_string(), false)]
        );
    }

    #[test]
    fn bytes_arriving_restart_the_partial_timeout() {
        let t0 = Instant::now();
        let mut reader = reader(&framing(100, None), t0);
        feed(&mut reader, b"par", t0);
        let t1 = t0 + Duration::from_secs(4);
        feed(&mut reader, b"tial", t1);
        assert_eq!(reader.deadline(), Some(t1 + Duration::from_secs(5)));
        let mut out = Vec::new();
        reader.poll(t0 + Duration::from_secs(6), SystemTime::now(), &mut out);
        assert!(out.is_empty());
        reader.flush(t1, SystemTime::now(), &mut out);
        assert_eq!(shape(out), [(0, 7, "partial".to_string(), false)]);
    }

    #[test]
    fn a_cut_line_moves_the_checkpoint_past_its_skipped_tail() {
        let t0 = Instant::now();
        let mut reader = reader(&framing(4, None), t0);
        let got = feed(&mut reader, b"abcdefgh\nok\n", t0);
        assert_eq!(
            got,
            [
                (0, 9, "abcd".to_string(), true),
                (9, 12, "ok".to_string(), false)
            ]
        );
        assert_eq!(reader.checkpoint(), 12);
        assert_eq!(reader.n_cut(), 1);
    }

    #[test]
    fn a_held_multiline_event_keeps_the_checkpoint_before_it() {
        let t0 = Instant::now();
        let mut reader = reader(&framing(100, Some(r"^\d")), t0);
        let got = feed(&mut reader, b"1 first\n  at x\n2 second\n  at y\n", t0);
        assert_eq!(got, [(0, 15, "1 first\n  at x".to_string(), false)]);
        assert_eq!(reader.checkpoint(), 15);
        let mut out = Vec::new();
        reader.poll(t0 + Duration::from_secs(2), SystemTime::now(), &mut out);
        assert_eq!(
            shape(out),
            [(15, 31, "2 second\n  at y".to_string(), false)]
        );
        assert_eq!(reader.checkpoint(), 31);
    }

    #[test]
    fn a_cut_line_inside_a_held_event_jumps_once_the_event_is_out() {
        let t0 = Instant::now();
        let mut reader = reader(&framing(4, Some(r"^\d")), t0);
        // "1abcdefg" arrives in two reads: cut to "1abc" in the first, its tail skipped in the
        // second while the event is held.
        let got = feed(&mut reader, b"1abcdef", t0);
        assert!(got.is_empty());
        let got = feed(&mut reader, b"g\n", t0);
        assert!(got.is_empty());
        assert_eq!(reader.checkpoint(), 0);
        let mut out = Vec::new();
        reader.flush(t0, SystemTime::now(), &mut out);
        assert_eq!(shape(out), [(0, 4, "1abc".to_string(), true)]);
        assert_eq!(reader.checkpoint(), 9, "past the skipped tail");
    }

    /// Issue 14: a decoded record reaches the rules whole: its time, its context (the stream
    /// and the pod's names) and its fields; an invalid line is flagged and kept as text.
    #[test]
    fn events_carry_the_decoded_time_context_and_fields() {
        let t0 = Instant::now();
        let framing = Framing {
            decoding: crate::config::Decoding {
                format: crate::config::Format::Cri,
                content: crate::config::Content::Json,
                ..crate::config::Decoding::default()
            },
            ..framing(1000, None)
        };
        let origin = Origin {
            input: "pods".into(),
            file_id: FileId(1),
            path: PathBuf::from("/var/log/pods/shop_web-0_uid/nginx/0.log"),
        };
        let mut reader = EventReader::new(&framing, origin, 0, t0);
        let mut src: &[u8] = b"2026-11-24T12:00:00.5Z stderr P {\"level\":\"error\",\n\
            2026-11-24T12:00:01Z stderr F \"msg\":\"db down\"}\n\
            2026-11-24T12:00:02Z stdout F not json\n";
        let mut out = Vec::new();
        let mut budget = usize::MAX;
        reader
            .read(
                &mut src,
                &mut budget,
                usize::MAX,
                t0,
                SystemTime::now(),
                &mut out,
            )
            .unwrap();
        assert_eq!(out.len(), 2);
        let joined = &out[0];
        assert_eq!(joined.text, "db down");
        assert_eq!(
            joined.event_time,
            Some(std::time::UNIX_EPOCH + Duration::from_millis(1_795_521_600_500)),
            "the first piece's time"
        );
        assert_eq!(joined.context.get("stream"), Some("stderr"));
        assert_eq!(joined.context.get("pod"), Some("web-0"));
        assert_eq!(
            joined.fields.as_ref().unwrap().text("level").as_deref(),
            Some("error")
        );
        assert!(!joined.invalid);
        assert_eq!((out[1].text.as_str(), out[1].invalid), ("not json", true));
        assert_eq!(out[1].context.get("stream"), Some("stdout"));
        assert_eq!(reader.checkpoint(), 136);
    }

    #[test]
    fn line_starts_number_the_raw_lines() {
        let t0 = Instant::now();
        let mut reader = reader(&framing(100, Some(r"^\d")), t0);
        reader.record_line_starts();
        feed(&mut reader, b"1 a\n  b\n2 c\nlast", t0);
        let mut out = Vec::new();
        reader.flush(t0, SystemTime::now(), &mut out);
        assert_eq!(reader.take_line_starts(), [0, 4, 8, 12]);
        assert_eq!(shape(out), [(8, 16, "2 c\nlast".to_string(), false)]);
    }
}
