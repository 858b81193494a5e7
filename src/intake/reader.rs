//! `LineReader`: cuts the bytes of one file into lines, with a reused buffer and a hard cap on
//! line length.
//!
//! Shaped like ripgrep's `LineBuffer`: one buffer per file, allocated once and reused; a partial
//! line at the end of the data waits in the buffer for the rest of it; `memchr` finds the
//! terminators. It works on any `io::Read` (tests feed it byte slices) and never looks at the
//! file system, so the `Tailer` decides about truncation and identity.
//!
//! A line longer than `max_line_bytes` is never buffered whole: its first `max_line_bytes` bytes
//! are handed out as a line marked `truncated`, and the rest is skipped up to the next `\n`
//! (reported as [`Piece::Skipped`] so that the caller can move its checkpoint past it). The
//! buffer therefore never holds more than `max_line_bytes` plus one read chunk. It is kept while
//! the file is being written (allocating and zeroing a chunk per wake-up was a tenth of the cost
//! of following a busy file, issue 18) and shrunk to the partial line it holds when its owner
//! says the file has gone quiet ([`LineReader::release`]): a quiet file costs no read chunk.
//!
//! Offsets are absolute byte offsets in the file: [`LineReader::offset`] is the end of the last
//! byte consumed (a line handed out or skipped), [`LineReader::position`] the end of the bytes
//! read so far (including a buffered partial line).

use std::io::{self, Read};

/// How many bytes one `read` call asks for.
pub const READ_CHUNK: usize = 64 * 1024;

/// What [`LineReader::next_piece`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A line without its terminator (`\n`, or `\r\n`).
    Line {
        /// Offset of the line's first byte.
        start: u64,
        /// Offset just past the line's terminator (or past the cut, for a truncated line).
        end: u64,
        /// The line's bytes (at most `max_line_bytes`).
        bytes: &'a [u8],
        /// True when the line was cut at `max_line_bytes`.
        truncated: bool,
    },
    /// The rest of a cut line was skipped up to and including its `\n`, which ends at `end`.
    Skipped {
        /// Offset just past the skipped line's terminator.
        end: u64,
    },
}

/// Cuts a byte stream into lines; one per followed file, reused for its whole life.
#[derive(Debug)]
pub struct LineReader {
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Absolute offset of `buf[start]`.
    offset: u64,
    max_line_bytes: usize,
    /// Inside the tail of a cut line: drop bytes up to the next `\n`.
    skipping: bool,
    n_cut: u64,
}

/// What `find_piece` consumed from the buffer.
enum Found {
    /// A line whose bytes are `buf[.0...1]` (terminator excluded).
    Line(usize, usize),
    /// The tail of a cut line, through its `\n`.
    Skipped,
}

impl LineReader {
    /// A reader whose first byte will be at `offset` in the file.
    pub fn new(max_line_bytes: usize, offset: u64) -> LineReader {
        LineReader {
            buf: Vec::new(),
            start: 0,
            end: 0,
            offset,
            max_line_bytes: max_line_bytes.max(1),
            skipping: false,
            n_cut: 0,
        }
    }

    /// Forgets everything buffered and continues at `offset` (after a truncation).
    pub fn reset(&mut self, offset: u64) {
        self.start = 0;
        self.end = 0;
        self.offset = offset;
        self.skipping = false;
    }

    /// Changes the line cap (a reload); applies to lines not yet cut.
    pub fn set_max_line_bytes(&mut self, max_line_bytes: usize) {
        self.max_line_bytes = max_line_bytes.max(1);
    }

    /// End of the last byte consumed: a line handed out, or a skipped tail.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// End of the bytes read from the source so far (where the next `read` continues).
    pub fn position(&self) -> u64 {
        self.offset + self.buffered() as u64
    }

    /// Bytes read but not yet handed out (a partial line, or lines not yet asked for).
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The line cap.
    pub fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }

    /// True when an unterminated line is buffered (the tail of a cut line does not count: it is
    /// being skipped).
    pub fn has_partial(&self) -> bool {
        !self.skipping && self.buffered() > 0
    }

    /// How many lines were cut at `max_line_bytes` so far.
    pub fn n_cut(&self) -> u64 {
        self.n_cut
    }

    /// The bytes the buffer holds allocated (tests of its release).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The next complete line (or skipped tail) from the buffer, reading from `src` when the
    /// buffer holds none, as long as `budget` (bytes still allowed to be read, decremented) lasts.
    /// `Ok(None)`: no complete line without reading past `budget` or the end of `src`; a partial
    /// line stays buffered.
    ///
    /// # Errors
    /// What `src.read` returned; the buffer is left as it was before that read.
    pub fn next_piece<R: Read + ?Sized>(
        &mut self,
        src: &mut R,
        budget: &mut usize,
    ) -> io::Result<Option<Piece<'_>>> {
        loop {
            if let Some(found) = self.find_piece() {
                return Ok(Some(self.piece(found)));
            }
            if *budget == 0 || !self.fill(src, budget)? {
                return Ok(None);
            }
        }
    }

    /// The partial line still buffered, as a line (the file is gone and will not be completed).
    pub fn take_partial(&mut self) -> Option<Piece<'_>> {
        if self.skipping || self.start == self.end {
            return None;
        }
        let (start, end) = (self.start, self.end);
        let begin = self.offset;
        self.offset += (end - start) as u64;
        self.start = end;
        let bytes = self.buf.get(start..end).unwrap_or_default();
        Some(Piece::Line {
            start: begin,
            end: self.offset,
            // The `\r` of a CRLF whose `\n` never came is not text either.
            bytes: bytes.strip_suffix(b"\r").unwrap_or(bytes),
            truncated: false,
        })
    }

    /// Locates the next piece in `buf[start..end]` and consumes it.
    fn find_piece(&mut self) -> Option<Found> {
        let pending = self.buf.get(self.start..self.end)?;
        if self.skipping {
            match memchr::memchr(b'\n', pending) {
                Some(i) => {
                    self.offset += i as u64 + 1;
                    self.start += i + 1;
                    self.skipping = false;
                    Some(Found::Skipped)
                }
                None => {
                    self.offset += pending.len() as u64;
                    self.start = 0;
                    self.end = 0;
                    None
                }
            }
        } else {
            match memchr::memchr(b'\n', pending) {
                Some(i) => {
                    let line_start = self.start;
                    self.start += i + 1;
                    Some(Found::Line(line_start, line_start + i))
                }
                None if pending.len() > self.max_line_bytes => {
                    // Cut here: hand out the first `max_line_bytes`, skip the rest of the line.
                    let line_start = self.start;
                    self.start += self.max_line_bytes;
                    self.skipping = true;
                    self.n_cut += 1;
                    Some(Found::Line(line_start, line_start + self.max_line_bytes))
                }
                None => None,
            }
        }
    }

    /// Builds the piece `find_piece` consumed.
    fn piece(&mut self, found: Found) -> Piece<'_> {
        let (start, end) = match found {
            Found::Skipped => return Piece::Skipped { end: self.offset },
            Found::Line(start, end) => (start, end),
        };
        let begin = self.offset;
        // `self.start` is just past the terminator (or the cut).
        self.offset += (self.start - start) as u64;
        let mut bytes = self.buf.get(start..end).unwrap_or_default();
        let cut_now = self.skipping && self.start == end;
        let mut truncated = cut_now;
        if !cut_now {
            if let [rest @ .., b'\r'] = bytes {
                bytes = rest;
            }
            if bytes.len() > self.max_line_bytes {
                bytes = bytes.get(..self.max_line_bytes).unwrap_or(bytes);
                truncated = true;
                self.n_cut += 1;
            }
        }
        Piece::Line {
            start: begin,
            end: self.offset,
            bytes,
            truncated,
        }
    }

    /// Reads one chunk; false at the end of `src`.
    fn fill<R: Read + ?Sized>(&mut self, src: &mut R, budget: &mut usize) -> io::Result<bool> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let want = READ_CHUNK.min(*budget);
        if self.buf.len() < self.end + want {
            self.buf.resize(self.end + want, 0);
        }
        let space = self
            .buf
            .get_mut(self.end..self.end + want)
            .unwrap_or_default();
        let n = loop {
            match src.read(space) {
                Ok(n) => break n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        };
        self.end += n;
        *budget = budget.saturating_sub(n);
        Ok(n > 0)
    }

    /// Gives back all of the buffer but a partial line (usually all of it), so that a thousand
    /// quiet files do not each hold a zeroed read chunk (issue 7). For a source that has gone
    /// quiet: the next read allocates again. Costs nothing when there is nothing to give back.
    pub fn release(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        self.buf.truncate(self.end);
        self.buf.shrink_to(self.end);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use crate::intake::reader::{LineReader, Piece, READ_CHUNK};

    /// A source that hands out at most `chunk` bytes per read, to force the boundary code.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Everything `data` yields as (start, end, text, truncated). A skipped tail is folded into
    /// the cut line before it (its end moves past the tail), so that the result does not depend
    /// on whether the line's end was already buffered when it was cut.
    fn pieces(data: &[u8], chunk: usize, max: usize) -> Vec<(u64, u64, String, bool)> {
        let mut reader = LineReader::new(max, 0);
        let mut src = Trickle { data, chunk };
        let mut out: Vec<(u64, u64, String, bool)> = Vec::new();
        let mut budget = usize::MAX;
        while let Some(piece) = reader.next_piece(&mut src, &mut budget).unwrap() {
            out.push(match piece {
                Piece::Line {
                    start,
                    end,
                    bytes,
                    truncated,
                } => (
                    start,
                    end,
                    String::from_utf8_lossy(bytes).into_owned(),
                    truncated,
                ),
                Piece::Skipped { end } => {
                    let cut = out.last_mut().expect("a skip follows a cut line");
                    assert!(cut.3, "a skip follows a cut line");
                    cut.1 = end;
                    continue;
                }
            });
        }
        out
    }

    #[test]
    fn lines_and_offsets_are_the_same_whatever_the_read_size() {
        let data = b"one\ntwo\r\n\nthree\npartial";
        let expected = vec![
            (0, 4, "one".to_string(), false),
            (4, 9, "two".to_string(), false),
            (9, 10, String::new(), false),
            (10, 16, "three".to_string(), false),
        ];
        for chunk in [1, 2, 3, 7, 1000] {
            assert_eq!(pieces(data, chunk, 100), expected, "chunk {chunk}");
        }
    }

    #[test]
    fn a_released_reader_holds_no_read_chunk_and_reads_on_afterwards() {
        let mut reader = LineReader::new(100, 0);
        let mut budget = usize::MAX;
        let mut src: &[u8] = b"one\ntwo\n";
        assert!(reader.next_piece(&mut src, &mut budget).unwrap().is_some());
        assert!(
            reader.buf.capacity() >= READ_CHUNK,
            "reading uses a whole chunk"
        );
        assert!(reader.next_piece(&mut src, &mut budget).unwrap().is_some());
        assert_eq!(reader.next_piece(&mut src, &mut budget).unwrap(), None);
        assert!(
            reader.buf.capacity() >= READ_CHUNK,
            "the end of the data keeps the chunk for the next write"
        );
        reader.release();
        assert_eq!(reader.buf.capacity(), 0, "a quiet file keeps no buffer");

        // A partial line at the end keeps exactly its bytes, and is completed later.
        let mut src: &[u8] = b"thr";
        assert_eq!(reader.next_piece(&mut src, &mut budget).unwrap(), None);
        reader.release();
        assert_eq!(reader.buf.capacity(), 3);
        let mut src: &[u8] = b"ee\n";
        assert_eq!(
            reader.next_piece(&mut src, &mut budget).unwrap(),
            Some(Piece::Line {
                start: 8,
                end: 14,
                bytes: b"three",
                truncated: false
            })
        );
        assert_eq!(reader.offset(), 14);
    }

    #[test]
    fn a_partial_line_waits_for_its_end() {
        let mut reader = LineReader::new(100, 10);
        let mut budget = usize::MAX;
        let mut first: &[u8] = b"abc";
        assert!(
            reader
                .next_piece(&mut first, &mut budget)
                .unwrap()
                .is_none()
        );
        assert_eq!((reader.offset(), reader.position()), (10, 13));
        let mut second: &[u8] = b"def\n";
        let piece = reader.next_piece(&mut second, &mut budget).unwrap();
        assert_eq!(
            piece,
            Some(Piece::Line {
                start: 10,
                end: 17,
                bytes: b"abcdef",
                truncated: false
            })
        );
        assert_eq!(reader.offset(), 17);
    }

    #[test]
    fn long_lines_are_cut_and_their_tail_skipped() {
        let mut data = vec![b'x'; 25];
        data.extend_from_slice(b"\nok\n");
        for chunk in [1, 4, 10, 1000] {
            assert_eq!(
                pieces(&data, chunk, 10),
                vec![
                    (0, 26, "x".repeat(10), true),
                    (26, 29, "ok".to_string(), false),
                ],
                "chunk {chunk}"
            );
        }
        // A line of exactly the cap is not cut.
        let exact = pieces(b"0123456789\n", 1, 10);
        assert_eq!(exact, vec![(0, 11, "0123456789".to_string(), false)]);
    }

    #[test]
    fn a_10_mb_line_without_newline_is_cut_without_being_buffered() {
        let data = vec![b'y'; 10 * 1024 * 1024];
        let mut reader = LineReader::new(65_536, 0);
        let mut src: &[u8] = &data;
        let mut budget = usize::MAX;
        let piece = reader.next_piece(&mut src, &mut budget).unwrap();
        assert!(matches!(
            piece,
            Some(Piece::Line { start: 0, end: 65_536, bytes, truncated: true }) if bytes.len() == 65_536
        ));
        assert!(reader.next_piece(&mut src, &mut budget).unwrap().is_none());
        assert_eq!(reader.n_cut(), 1);
        assert_eq!(reader.position(), data.len() as u64);
        assert!(
            reader.buf.len() <= 65_536 + READ_CHUNK,
            "buffer grew to {}",
            reader.buf.len()
        );
    }

    #[test]
    fn the_budget_bounds_each_turn() {
        let data = b"aaaa\nbbbb\ncccc\n";
        let mut reader = LineReader::new(100, 0);
        let mut src: &[u8] = data;
        let mut budget = 6;
        let mut texts = Vec::new();
        while let Some(Piece::Line { bytes, .. }) =
            reader.next_piece(&mut src, &mut budget).unwrap()
        {
            texts.push(bytes.to_vec());
        }
        assert_eq!(texts, vec![b"aaaa".to_vec()]);
        assert_eq!(reader.position(), 6);
    }

    #[test]
    fn invalid_utf8_and_nul_bytes_are_kept() {
        let out = pieces(b"a\xff\x00b\n", 2, 100);
        assert_eq!(out, vec![(0, 5, "a\u{fffd}\0b".to_string(), false)]);
    }

    #[test]
    fn take_partial_hands_out_the_unterminated_rest() {
        let mut reader = LineReader::new(100, 0);
        let mut src: &[u8] = b"x\nlast";
        let mut budget = usize::MAX;
        assert!(reader.next_piece(&mut src, &mut budget).unwrap().is_some());
        assert!(reader.next_piece(&mut src, &mut budget).unwrap().is_none());
        assert_eq!(
            reader.take_partial(),
            Some(Piece::Line {
                start: 2,
                end: 6,
                bytes: b"last",
                truncated: false
            })
        );
        assert_eq!(reader.offset(), 6);
    }
}
