//! `Partials`: joins the pieces of a container line that the runtime split (CRI `P` pieces up to
//! the next `F`; docker chunks up to the one whose `log` ends in `\n`), one open message per
//! stream, since stdout and stderr pieces interleave in the same file.
//!
//! Bounded: a message holds at most `max_bytes` bytes. The piece that would pass the bound is cut
//! there, the message is handed out at once marked truncated, and the rest of its pieces (up to
//! the last one) are dropped, as `LineReader` does with an over-long line. (Nothing is held
//! while dropping, so checkpoints move on; a restart in the middle hands out the remaining
//! pieces as a message of their own.) A message whose next
//! piece does not come within `timeout` of the last one is handed out as it is (a writer that
//! died mid-line, or a final write without a newline). `flush` hands out everything open (the
//! file is released).
//!
//! Pure: no clock, no I/O; `now` comes with every call. Handing out goes through a callback with
//! borrowed bytes, so that the common case, a line that is one whole piece, is never copied into
//! a join buffer.

use std::time::{Duration, Instant, SystemTime};

use crate::intake::decode::Stream;

/// One piece of a (possibly split) line.
#[derive(Clone, Copy, Debug)]
pub struct Piece<'a> {
    /// The piece's content.
    pub bytes: &'a [u8],
    /// Offset of the piece's line in the file.
    pub start: u64,
    /// Offset just past the piece's line.
    pub end: u64,
    /// The piece's own time.
    pub time: Option<SystemTime>,
    /// The line reader cut the piece's line.
    pub truncated: bool,
    /// More pieces of the same message follow.
    pub partial: bool,
}

/// A whole message, handed out by [`Partials`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Joined<'a> {
    /// The stream it was written to.
    pub stream: Stream,
    /// The content of all its pieces, in order (at most `max_bytes`).
    pub bytes: &'a [u8],
    /// Offset of its first piece's line.
    pub start: u64,
    /// Offset just past its last piece's line.
    pub end: u64,
    /// Its first piece's time.
    pub time: Option<SystemTime>,
    /// Cut at `max_bytes` (or a piece's line was cut by the reader).
    pub truncated: bool,
}

/// The open messages of one file, one per stream.
#[derive(Debug)]
pub struct Partials {
    slots: [Slot; 2],
    max_bytes: usize,
    timeout: Duration,
    /// Cut only between UTF-8 characters (the bytes are UTF-8).
    utf8: bool,
}

/// What one stream is doing.
#[derive(Debug, Default)]
enum Slot {
    /// No message open.
    #[default]
    Idle,
    /// A message waits for its next piece.
    Open(Pending),
    /// A message was cut and handed out; its remaining pieces are dropped.
    Skipping {
        /// When its last piece came.
        last_at: Instant,
    },
}

/// An open message.
#[derive(Debug)]
struct Pending {
    bytes: Vec<u8>,
    start: u64,
    end: u64,
    time: Option<SystemTime>,
    truncated: bool,
    last_at: Instant,
}

impl Pending {
    fn joined(&self, stream: Stream) -> Joined<'_> {
        Joined {
            stream,
            bytes: &self.bytes,
            start: self.start,
            end: self.end,
            time: self.time,
            truncated: self.truncated,
        }
    }
}

impl Partials {
    /// Joins messages of at most `max_bytes` bytes, waiting `timeout` for a next piece. With
    /// `utf8`, a cut never splits a UTF-8 character.
    pub fn new(max_bytes: usize, timeout: Duration, utf8: bool) -> Partials {
        Partials {
            slots: [Slot::Idle, Slot::Idle],
            max_bytes: max_bytes.max(1),
            timeout,
            utf8,
        }
    }

    /// Takes one piece written to `stream` at `now`; hands out (through `emit`) the message it
    /// completes or cuts, if any.
    pub fn push(
        &mut self,
        stream: Stream,
        piece: Piece<'_>,
        now: Instant,
        emit: &mut dyn FnMut(Joined<'_>),
    ) {
        let (max_bytes, utf8) = (self.max_bytes, self.utf8);
        let slot = &mut self.slots[stream.index()];
        match std::mem::take(slot) {
            Slot::Skipping { .. } if piece.partial => *slot = Slot::Skipping { last_at: now },
            Slot::Skipping { .. } => {}
            Slot::Idle => {
                let cut = cut_at(piece.bytes, max_bytes, utf8);
                let bytes = piece.bytes.get(..cut).unwrap_or_default();
                let over = cut < piece.bytes.len();
                if piece.partial && !over {
                    *slot = Slot::Open(Pending {
                        bytes: bytes.to_vec(),
                        start: piece.start,
                        end: piece.end,
                        time: piece.time,
                        truncated: piece.truncated,
                        last_at: now,
                    });
                    return;
                }
                emit(Joined {
                    stream,
                    bytes,
                    start: piece.start,
                    end: piece.end,
                    time: piece.time,
                    truncated: piece.truncated || over,
                });
                if piece.partial {
                    *slot = Slot::Skipping { last_at: now };
                }
            }
            Slot::Open(mut pending) => {
                let room = max_bytes.saturating_sub(pending.bytes.len());
                let cut = cut_at(piece.bytes, room, utf8);
                pending
                    .bytes
                    .extend_from_slice(piece.bytes.get(..cut).unwrap_or_default());
                let over = cut < piece.bytes.len();
                pending.end = piece.end;
                pending.truncated |= piece.truncated || over;
                pending.last_at = now;
                if piece.partial && !over {
                    *slot = Slot::Open(pending);
                    return;
                }
                emit(pending.joined(stream));
                if piece.partial {
                    *slot = Slot::Skipping { last_at: now };
                }
            }
        }
    }

    /// Hands out the messages whose next piece has not come within `timeout` at `now`.
    pub fn poll(&mut self, now: Instant, emit: &mut dyn FnMut(Joined<'_>)) {
        let timeout = self.timeout;
        self.close(emit, |last_at| {
            now.saturating_duration_since(last_at) >= timeout
        });
    }

    /// Hands out every open message (the file is released).
    pub fn flush(&mut self, emit: &mut dyn FnMut(Joined<'_>)) {
        self.close(emit, |_| true);
    }

    /// Closes the slots for which `due(last piece's time)` holds, handing out open messages in
    /// file order.
    fn close(&mut self, emit: &mut dyn FnMut(Joined<'_>), due: impl Fn(Instant) -> bool) {
        let mut closing: Vec<(u64, usize)> = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            match slot {
                Slot::Open(pending) if due(pending.last_at) => closing.push((pending.start, index)),
                Slot::Skipping { last_at } if due(*last_at) => *slot = Slot::Idle,
                _ => {}
            }
        }
        closing.sort_unstable();
        for (_, index) in closing {
            if let Slot::Open(pending) = std::mem::take(&mut self.slots[index]) {
                emit(pending.joined(Stream::from_index(index)));
            }
        }
    }

    /// When the oldest waiting stream times out, if one waits.
    pub fn deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|slot| match slot {
                Slot::Idle => None,
                Slot::Open(pending) => Some(pending.last_at + self.timeout),
                Slot::Skipping { last_at } => Some(*last_at + self.timeout),
            })
            .min()
    }

    /// The start offset of the earliest open message: a checkpoint must not pass it.
    pub fn open_start(&self) -> Option<u64> {
        self.slots
            .iter()
            .filter_map(|slot| match slot {
                Slot::Open(pending) => Some(pending.start),
                _ => None,
            })
            .min()
    }

    /// True when `stream` holds nothing and skips nothing: a whole piece written to it now is
    /// a whole message, which the caller may take as it is.
    pub fn is_idle(&self, stream: Stream) -> bool {
        matches!(self.slots[stream.index()], Slot::Idle)
    }

    /// Bytes held in open messages.
    pub fn held_bytes(&self) -> usize {
        self.slots
            .iter()
            .map(|slot| match slot {
                Slot::Open(pending) => pending.bytes.len(),
                _ => 0,
            })
            .sum()
    }
}

/// How many bytes of `bytes` fit in `room`: all, or `room` moved back to the start of the UTF-8
/// character it would split (when `utf8`).
fn cut_at(bytes: &[u8], room: usize, utf8: bool) -> usize {
    if bytes.len() <= room {
        return bytes.len();
    }
    let mut cut = room;
    if utf8 {
        // At most 3 continuation bytes (10xxxxxx) precede a cut inside a character.
        for _ in 0..3 {
            match bytes.get(cut) {
                Some(b) if cut > 0 && b & 0xC0 == 0x80 => cut -= 1,
                _ => break,
            }
        }
    }
    cut
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::intake::decode::Stream;
    use crate::intake::decode::partial::{Partials, Piece, cut_at};

    /// (stream, text, start, end, truncated) of every message handed out.
    type Out = Vec<(Stream, String, u64, u64, bool)>;

    fn piece(bytes: &[u8], start: u64, partial: bool) -> Piece<'_> {
        Piece {
            bytes,
            start,
            end: start + 10,
            time: None,
            truncated: false,
            partial,
        }
    }

    fn collect(out: &mut Out) -> impl FnMut(super::Joined<'_>) + '_ {
        |joined| {
            out.push((
                joined.stream,
                String::from_utf8_lossy(joined.bytes).into_owned(),
                joined.start,
                joined.end,
                joined.truncated,
            ))
        }
    }

    #[test]
    fn pieces_join_per_stream_and_interleave() {
        let mut partials = Partials::new(1000, Duration::from_secs(5), true);
        let now = Instant::now();
        let mut out = Out::new();
        partials.push(
            Stream::Stdout,
            piece(b"out-1 ", 0, true),
            now,
            &mut collect(&mut out),
        );
        partials.push(
            Stream::Stderr,
            piece(b"err-1 ", 10, true),
            now,
            &mut collect(&mut out),
        );
        assert_eq!(partials.open_start(), Some(0));
        partials.push(
            Stream::Stdout,
            piece(b"out-2", 20, false),
            now,
            &mut collect(&mut out),
        );
        assert_eq!(partials.open_start(), Some(10));
        partials.push(
            Stream::Stdout,
            piece(b"whole", 30, false),
            now,
            &mut collect(&mut out),
        );
        partials.push(
            Stream::Stderr,
            piece(b"err-2", 40, false),
            now,
            &mut collect(&mut out),
        );
        assert_eq!(
            out,
            [
                (Stream::Stdout, "out-1 out-2".into(), 0, 30, false),
                (Stream::Stdout, "whole".into(), 30, 40, false),
                (Stream::Stderr, "err-1 err-2".into(), 10, 50, false),
            ]
        );
        assert_eq!((partials.open_start(), partials.deadline()), (None, None));
    }

    #[test]
    fn the_bound_cuts_hands_out_and_drops_the_rest() {
        let mut partials = Partials::new(8, Duration::from_secs(5), true);
        let now = Instant::now();
        let mut out = Out::new();
        partials.push(
            Stream::Stdout,
            piece(b"abcde", 0, true),
            now,
            &mut collect(&mut out),
        );
        partials.push(
            Stream::Stdout,
            piece(b"fghij", 10, true),
            now,
            &mut collect(&mut out),
        );
        assert_eq!(out, [(Stream::Stdout, "abcdefgh".into(), 0, 20, true)]);
        assert_eq!(
            partials.open_start(),
            None,
            "nothing held: checkpoints may pass"
        );
        partials.push(
            Stream::Stdout,
            piece(b"dropped", 20, true),
            now,
            &mut collect(&mut out),
        );
        partials.push(
            Stream::Stdout,
            piece(b"dropped", 30, false),
            now,
            &mut collect(&mut out),
        );
        partials.push(
            Stream::Stdout,
            piece(b"next", 40, false),
            now,
            &mut collect(&mut out),
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[1], (Stream::Stdout, "next".into(), 40, 50, false));
        // A first piece over the bound is cut at once; never more than the bound is held.
        partials.push(
            Stream::Stderr,
            piece(b"0123456789", 50, true),
            now,
            &mut collect(&mut out),
        );
        assert_eq!(out[2], (Stream::Stderr, "01234567".into(), 50, 60, true));
        assert_eq!(partials.held_bytes(), 0);
    }

    #[test]
    fn cuts_keep_utf8_characters_whole() {
        assert_eq!(cut_at("ab你好".as_bytes(), 4, true), 2);
        assert_eq!(cut_at("ab你好".as_bytes(), 5, true), 5);
        assert_eq!(cut_at("ab你好".as_bytes(), 4, false), 4);
        assert_eq!(cut_at(b"abc", 9, true), 3);
        assert_eq!(cut_at("😀".as_bytes(), 3, true), 0);
    }

    #[test]
    fn quiet_streams_time_out_in_file_order_and_flush_hands_out_the_rest() {
        let mut partials = Partials::new(1000, Duration::from_secs(5), true);
        let t0 = Instant::now();
        let mut out = Out::new();
        partials.push(
            Stream::Stderr,
            piece(b"late", 0, true),
            t0,
            &mut collect(&mut out),
        );
        let t1 = t0 + Duration::from_secs(2);
        partials.push(
            Stream::Stdout,
            piece(b"later", 10, true),
            t1,
            &mut collect(&mut out),
        );
        assert_eq!(partials.deadline(), Some(t0 + Duration::from_secs(5)));
        partials.poll(t0 + Duration::from_millis(4999), &mut collect(&mut out));
        assert!(out.is_empty());
        partials.poll(t0 + Duration::from_secs(5), &mut collect(&mut out));
        assert_eq!(out, [(Stream::Stderr, "late".into(), 0, 10, false)]);
        assert_eq!(partials.deadline(), Some(t1 + Duration::from_secs(5)));
        partials.flush(&mut collect(&mut out));
        assert_eq!(out[1], (Stream::Stdout, "later".into(), 10, 20, false));
        assert_eq!((partials.open_start(), partials.deadline()), (None, None));
    }
}
