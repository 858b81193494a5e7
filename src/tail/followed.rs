//! `Followed`: one file the tailer follows: its descriptor (none while it is parked), its
//! identity, and the `EventReader` that turns its bytes into events. It decides, per read,
//! whether the file was truncated or rewritten (then it starts over at 0), and whether a
//! rotated-away file still sits at its path.
//!
//! Rewrites are told by content: the file keeps the last bytes it read (at most
//! [`TAIL_BYTES`], copied as they pass, no extra read), and when the file has grown it reads the
//! bytes before its read position once more (one `pread`, which replaces the head check it did
//! before) and compares them. A file truncated and rewritten past the old position with the
//! same first 256 bytes (a banner) is new content, not the old file grown. A file that did not
//! grow costs nothing more than its `fstat`.
//!
//! Its checkpoint carries the hash of the bytes before the checkpoint's offset, computed only
//! when the offset moved: from the kept bytes when nothing is held back (the common case), else
//! with one `pread`. The last few of them are its `Anchors`, by which a copy of this content
//! is recognised (`crate::tail::identity`).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Instant, SystemTime};

use crate::event::{FileId, LogLine};
use crate::intake::EventReader;
use crate::tail::checkpoint::Checkpoint;
use crate::tail::discover::{Candidate, is_gone};
use crate::tail::fingerprint::{
    Fingerprint, HEAD_BYTES, TAIL_BYTES, TailHash, bytes_before, read_range_into,
};
use crate::tail::identity::{Anchor, Anchors, Known};

/// One followed file.
#[derive(Debug)]
pub(super) struct Followed {
    pub(super) id: FileId,
    pub(super) input: String,
    pub(super) fingerprint: Fingerprint,
    /// The bytes `fingerprint` hashed: a file still being copied from this one is recognised by
    /// them.
    pub(super) head: Vec<u8>,
    /// The descriptor; `None` while the file is parked (see `crate::tail::park`).
    pub(super) file: Option<File>,
    pub(super) events: EventReader,
    /// Not matched by the last rescan since then: draining.
    pub(super) gone_since: Option<Instant>,
    /// The last sign of life: data read, the start of draining, a path that could not be
    /// looked at. A draining file quiet for the grace period is closed.
    pub(super) last_activity: Instant,
    /// At the last look the file held bytes past the read position (or it was just opened or
    /// reopened): it is not idle, whatever its reader holds.
    pub(super) behind: bool,
    /// Parked, and its size changed since: to be reopened.
    pub(super) wake: bool,
    /// New and empty when it was opened: what it is (text? a copy?) is decided when it first
    /// has bytes.
    pub(super) unsettled: bool,
    /// A possible copy of another followed file that is still being written: not read (see
    /// `crate::tail::copies`).
    pub(super) copy_of: Option<Shadow>,
    /// Another file is a possible copy of this one: when this one starts over, the lines it
    /// holds are dropped instead of handed out (the copy hands them out).
    pub(super) has_copies: bool,
    /// The bytes before the read position, as read.
    window: Window,
    /// Recent checkpoints and the hashes of the bytes before them.
    anchors: Anchors,
    /// The content it held before it started over, for the tailer to take.
    retired: Option<Known>,
    read_error_reported: bool,
    /// Its path could not be stat-ed before closing it (reported once).
    path_error_reported: bool,
}

/// A file that may be a copy of a followed file (see `crate::tail::copies`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Shadow {
    /// The file it is a copy of, as far as it goes.
    pub(super) of: FileId,
    /// How many of its bytes were found to be that file's.
    pub(super) len: u64,
}

/// A newly opened file and what the tailer decided about it.
#[derive(Debug)]
pub(super) struct Opened {
    pub(super) file: File,
    pub(super) fingerprint: Fingerprint,
    pub(super) head: Vec<u8>,
    /// The bytes before the offset it starts at, when read (to check the next reads against).
    pub(super) before: Option<Vec<u8>>,
}

/// The batch being filled, with its limits.
#[derive(Debug, Default)]
pub(super) struct Batch {
    pub(super) lines: Vec<LogLine>,
    pub(super) n_bytes: usize,
}

impl Batch {
    /// Counts the bytes of the lines added since `from`.
    pub(super) fn count_from(&mut self, from: usize) {
        self.n_bytes += self
            .lines
            .get(from..)
            .unwrap_or_default()
            .iter()
            .map(|line| line.text.len())
            .sum::<usize>();
    }
}

/// The last bytes read, at most [`TAIL_BYTES`], ending at the reader's position.
#[derive(Debug, Default)]
struct Window {
    bytes: Vec<u8>,
    /// False when the bytes before the position are not known (then the head is checked).
    known: bool,
    /// Room for the file's bytes compared with `bytes` after every read.
    scratch: Vec<u8>,
}

impl Window {
    /// True when the bytes of `file` before `position` are the window's (it is known).
    fn matches(&mut self, file: &File, position: u64) -> io::Result<bool> {
        let len = position.min(TAIL_BYTES);
        read_range_into(file, position - len, len, &mut self.scratch)?;
        Ok(self.scratch.len() as u64 == len && self.scratch == self.bytes)
    }

    fn set(&mut self, bytes: Option<Vec<u8>>) {
        self.known = bytes.is_some();
        self.bytes = bytes.unwrap_or_default();
    }

    fn push(&mut self, data: &[u8]) {
        let keep = usize::try_from(TAIL_BYTES).unwrap_or(usize::MAX);
        if data.len() >= keep {
            self.bytes.clear();
            self.bytes
                .extend_from_slice(data.get(data.len() - keep..).unwrap_or_default());
        } else {
            self.bytes.extend_from_slice(data);
            let excess = self.bytes.len().saturating_sub(keep);
            self.bytes.drain(..excess);
        }
    }
}

/// Reads from a file and keeps the last bytes that passed in the window.
struct Recording<'a> {
    file: &'a File,
    window: &'a mut Window,
}

impl Read for Recording<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.window.push(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

impl Followed {
    pub(super) fn new(
        id: FileId,
        input: String,
        opened: Opened,
        events: EventReader,
        now: Instant,
    ) -> Followed {
        let mut window = Window::default();
        window.set(opened.before);
        Followed {
            id,
            input,
            fingerprint: opened.fingerprint,
            head: opened.head,
            file: Some(opened.file),
            events,
            gone_since: None,
            last_activity: now,
            behind: true,
            wake: false,
            unsettled: false,
            copy_of: None,
            has_copies: false,
            window,
            anchors: Anchors::default(),
            retired: None,
            read_error_reported: false,
            path_error_reported: false,
        }
    }

    /// The path the file was last seen at.
    pub(super) fn path(&self) -> &Path {
        &self.events.origin().path
    }

    /// Where a restart may resume this file, with the hash of the bytes before the offset
    /// (computed when the offset moved, then kept).
    pub(super) fn checkpoint(&mut self) -> Checkpoint {
        let offset = self.events.checkpoint();
        Checkpoint {
            fingerprint: self.fingerprint,
            path: self.path().to_path_buf(),
            offset,
            tail: self.tail_at(offset, true),
        }
    }

    /// The tail hash at `offset`: the anchor's when it is the latest, else from the window
    /// when `offset` is the read position, else (when `may_read`) read from the file.
    pub(super) fn tail_at(&mut self, offset: u64, may_read: bool) -> Option<TailHash> {
        if let Some(tail) = self.anchors.at(offset) {
            return Some(tail);
        }
        let tail = if offset == self.events.position() && self.window.known {
            Some(TailHash::of(&self.window.bytes))
        } else if may_read {
            let file = self.file.as_ref()?;
            TailHash::at(file, offset).ok().flatten()
        } else {
            None
        };
        if let Some(tail) = tail {
            self.anchors.push(Anchor { offset, tail });
        }
        tail
    }

    /// Records the read position as an anchor, from the bytes at hand (no read), unless it
    /// has one. After every read: a copy shorter than what was read (lines written between
    /// logrotate's copy and its truncate, read from the original) is recognised by an earlier
    /// position, which must be there however rarely checkpoints are taken.
    fn anchor_position(&mut self) {
        let position = self.events.position();
        if self.window.known && position > HEAD_BYTES && self.anchors.at(position).is_none() {
            self.anchors.push(Anchor {
                offset: position,
                tail: TailHash::of(&self.window.bytes),
            });
        }
    }

    /// What is known of the content read so far, for recognising copies of it.
    pub(super) fn known(&mut self, may_read: bool, now: Instant) -> Known {
        let checkpoint = self.events.checkpoint();
        // Recorded as an anchor when it can be had.
        let _tail = self.tail_at(checkpoint, may_read);
        Known {
            fingerprint: self.fingerprint,
            head: Some(self.head.clone()),
            anchors: self.anchors.to_vec(),
            checkpoint,
            path: self.path().to_path_buf(),
            since: now,
        }
    }

    /// Its recent anchors, oldest first, and the read position's when nothing is held back
    /// there (from the bytes at hand: no read).
    pub(super) fn anchors_view(&self) -> Vec<Anchor> {
        let mut anchors = self.anchors.to_vec();
        let position = self.events.position();
        if self.window.known && anchors.last().is_none_or(|a| a.offset < position) {
            anchors.push(Anchor {
                offset: position,
                tail: TailHash::of(&self.window.bytes),
            });
        }
        anchors
    }

    /// The content it held before it last started over, once.
    pub(super) fn take_retired(&mut self) -> Option<Known> {
        self.retired.take()
    }

    /// Starts at `offset` instead (a copy continues where its original was read to, or a copy
    /// that was not one reads from 0): nothing was read from it yet.
    pub(super) fn start_at(&mut self, offset: u64) -> io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        file.seek(SeekFrom::Start(offset))?;
        let before = bytes_before(file, offset)?;
        self.events.reset(offset);
        self.window.set(before);
        self.anchors.clear();
        self.behind = true;
        Ok(())
    }

    /// True when the file's bytes before its read position are still the ones it read (it
    /// was neither truncated nor rewritten), and its size. Reads at most one window.
    pub(super) fn intact(&self) -> io::Result<(bool, u64)> {
        let Some(file) = self.file.as_ref() else {
            return Ok((true, 0));
        };
        let meta = file.metadata()?;
        let position = self.events.position();
        if meta.len() < position {
            return Ok((false, meta.len()));
        }
        let same = if self.window.known && self.fingerprint.is_complete() {
            bytes_before(file, position)?.is_some_and(|bytes| bytes == self.window.bytes)
        } else {
            self.fingerprint.matches(file, &meta)?
        };
        Ok((same, meta.len()))
    }

    /// Asked before closing a file no scan found: true (and the file is no longer draining)
    /// when its path still leads to its inode; true as well (and it is looked at again after
    /// another grace period) when the path cannot be stat-ed for a reason other than not
    /// existing. False when the path is gone or holds another file.
    pub(super) fn still_at_path(&mut self, now: Instant) -> bool {
        match std::fs::metadata(self.path()) {
            Ok(meta)
                if (meta.dev(), meta.ino()) == (self.fingerprint.dev, self.fingerprint.ino) =>
            {
                tracing::debug!(
                    path = %self.path().display(),
                    "not found by the scan but still at its path: kept"
                );
                self.gone_since = None;
                true
            }
            Ok(_) => false,
            Err(err) if is_gone(&err) => false,
            Err(err) => {
                if !self.path_error_reported {
                    self.path_error_reported = true;
                    tracing::warn!(
                        path = %self.path().display(),
                        error = %err,
                        "cannot stat a file that seems gone; keeping it; will retry"
                    );
                }
                self.last_activity = now;
                true
            }
        }
    }

    /// The file was matched at `candidate.path` by a rescan: follow a rename.
    pub(super) fn found_at(&mut self, candidate: &Candidate) {
        if self.path() == candidate.path {
            return;
        }
        let same = std::fs::metadata(self.path())
            .is_ok_and(|m| (m.dev(), m.ino()) == (self.fingerprint.dev, self.fingerprint.ino));
        if !same {
            tracing::debug!(
                from = %self.path().display(),
                to = %candidate.path.display(),
                "file renamed"
            );
            self.events.set_path(candidate.path.clone());
        }
    }

    /// Whether the file may be parked, and in which order: `None` when it may not (closed
    /// already, draining, bytes known to be unread, not identified yet, a copy relation);
    /// else (holds something, last activity): files that hold nothing (no partial line, no
    /// event being joined) go first, the least recently active first. What a file holds stays
    /// in memory while it is parked, and times out as usual.
    pub(super) fn park_rank(&self) -> Option<(bool, Instant)> {
        let parkable = self.file.is_some()
            && self.gone_since.is_none()
            && !self.behind
            && !self.unsettled
            && self.copy_of.is_none()
            && !self.has_copies;
        let holds = self.events.buffered() > 0
            || self.events.deadline().is_some()
            || self.events.checkpoint() != self.events.position();
        parkable.then_some((holds, self.last_activity))
    }

    /// Closes the descriptor and keeps everything else; the checkpoint's tail hash is taken
    /// first, while the file can still be read.
    pub(super) fn park(&mut self) {
        let _checkpoint = self.checkpoint();
        self.file = None;
        self.wake = false;
    }

    /// Reopens a parked file at its path. `Ok(false)` when the path no longer leads to this
    /// file (same device and inode; a changed head is a rewrite, which the next read finds).
    pub(super) fn reopen(&mut self, now: Instant) -> io::Result<bool> {
        let mut file = File::open(self.path())?;
        let meta = file.metadata()?;
        if (meta.dev(), meta.ino()) != (self.fingerprint.dev, self.fingerprint.ino) {
            return Ok(false);
        }
        file.seek(SeekFrom::Start(self.events.position()))?;
        self.file = Some(file);
        self.wake = false;
        self.behind = true;
        self.last_activity = now;
        Ok(true)
    }

    /// Reads one chunk (at most `max_bytes` bytes and `max_lines` lines) and hands out the
    /// events it completes. Returns how many lines were cut at `max_line_bytes`. A parked file
    /// is not read.
    pub(super) fn read(
        &mut self,
        batch: &mut Batch,
        max_bytes: usize,
        max_lines: usize,
        now: Instant,
        wall: SystemTime,
    ) -> u64 {
        let Some(file) = self.file.as_ref() else {
            return 0;
        };
        let meta = match file.metadata() {
            Ok(meta) => meta,
            Err(err) => {
                self.report_read_error(&err);
                return 0;
            }
        };
        let from = batch.lines.len();
        let position = self.events.position();
        if meta.len() < position {
            tracing::info!(
                path = %self.path().display(),
                size = meta.len(),
                position,
                "file truncated (copytruncate?); reading it from the start"
            );
            self.restart(batch, now, wall);
        } else if meta.len() > position {
            match self.rewritten(&meta) {
                Ok(false) => {}
                Ok(true) => {
                    tracing::info!(
                        path = %self.path().display(),
                        "file rewritten (the bytes before the read position changed); reading it from the start"
                    );
                    self.restart(batch, now, wall);
                }
                Err(err) => {
                    self.report_read_error(&err);
                    return 0;
                }
            }
        } else if self.events.buffered() == 0 {
            self.behind = false;
            return 0;
        }
        let Some(file) = self.file.as_ref() else {
            return 0;
        };
        let n_cut = self.events.n_cut();
        // What the file holds past the read position, and no more: a write of a few lines is
        // read into a buffer of its size, without the read that finds the end (issue 18).
        let available = meta.len().saturating_sub(self.events.position());
        let mut budget = max_bytes.min(usize::try_from(available).unwrap_or(usize::MAX));
        let mut src = Recording {
            file,
            window: &mut self.window,
        };
        let read = self.events.read(
            &mut src,
            &mut budget,
            max_lines,
            now,
            wall,
            &mut batch.lines,
        );
        if let Err(err) = read {
            self.report_read_error(&err);
        }
        self.behind = meta.len() > self.events.position();
        self.anchor_position();
        batch.count_from(from);
        if self.events.last_data() == now {
            self.last_activity = now;
        }
        if !self.fingerprint.is_complete() {
            self.grow_fingerprint();
        }
        self.events.n_cut() - n_cut
    }

    /// Whether the bytes already read changed (the file grew meanwhile): the bytes before the
    /// read position compared with the ones read, or, while the head is shorter than a full
    /// one (so it covers everything read), the head.
    fn rewritten(&mut self, meta: &std::fs::Metadata) -> io::Result<bool> {
        let Some(file) = self.file.as_ref() else {
            return Ok(false);
        };
        if self.window.known && self.fingerprint.is_complete() {
            let position = self.events.position();
            return Ok(!self.window.matches(file, position)?);
        }
        if !self.fingerprint.matches(file, meta)? {
            return Ok(true);
        }
        if !self.fingerprint.is_complete() {
            if let Ok((grown, head)) = Fingerprint::read(file, meta) {
                self.fingerprint = grown;
                self.head = head;
            }
        }
        Ok(false)
    }

    /// Hands out what timed out at `now` (an unterminated last line, a multi-line event).
    pub(super) fn poll(&mut self, batch: &mut Batch, now: Instant, wall: SystemTime) {
        let from = batch.lines.len();
        self.events.poll(now, wall, &mut batch.lines);
        batch.count_from(from);
    }

    /// Hands out everything, the unterminated last line included (the file is being closed).
    pub(super) fn flush(&mut self, batch: &mut Batch, now: Instant, wall: SystemTime) {
        let from = batch.lines.len();
        self.events.flush(now, wall, &mut batch.lines);
        batch.count_from(from);
    }

    /// Hashes a longer head while the file is shorter than the fingerprint's window, as long
    /// as the head hashed so far is unchanged.
    fn grow_fingerprint(&mut self) {
        let Some(file) = self.file.as_ref() else {
            return;
        };
        let Ok(meta) = file.metadata() else {
            return;
        };
        if let Ok((grown, head)) = Fingerprint::read(file, &meta) {
            if grown.head_len > self.fingerprint.head_len
                && self.fingerprint.matches(file, &meta).unwrap_or(false)
            {
                self.fingerprint = grown;
                self.head = head;
            }
        }
    }

    /// Starts the file over from offset 0 (it was truncated or rewritten). The content it
    /// held is kept for the tailer (a copy of it may appear). With a copy of this file being
    /// followed, the lines it holds are dropped: the copy reads them.
    fn restart(&mut self, batch: &mut Batch, now: Instant, wall: SystemTime) {
        // The old bytes may be gone: only what is at hand, no read.
        self.retired = Some(self.known(false, now));
        if self.has_copies {
            self.events.reset(0);
        } else {
            self.events.restart(now, wall, &mut batch.lines);
        }
        self.window.set(Some(Vec::new()));
        self.anchors.clear();
        let Some(file) = self.file.as_mut() else {
            return;
        };
        if let Err(err) = file.seek(SeekFrom::Start(0)) {
            self.report_read_error(&err);
            return;
        }
        // The head changed: fingerprint the new content, or the next read would take the old
        // head's absence for another rewrite and start over again.
        match file.metadata() {
            Ok(meta) => {
                if let Ok((fingerprint, head)) = Fingerprint::read(file, &meta) {
                    self.fingerprint = fingerprint;
                    self.head = head;
                }
            }
            Err(err) => self.report_read_error(&err),
        }
    }

    fn report_read_error(&mut self, err: &std::io::Error) {
        if !self.read_error_reported {
            self.read_error_reported = true;
            tracing::warn!(path = %self.path().display(), error = %err, "cannot read file");
        }
    }
}
