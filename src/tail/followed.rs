//! `Followed`: one open file the tailer follows: its descriptor, its identity, and the
//! `EventReader` that turns its bytes into events. It decides, per read, whether the file was
//! truncated or rewritten (then it starts over at 0), and whether a rotated-away file still sits
//! at its path.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Instant, SystemTime};

use crate::event::{FileId, LogLine};
use crate::intake::EventReader;
use crate::tail::checkpoint::Checkpoint;
use crate::tail::discover::{Candidate, is_gone};
use crate::tail::fingerprint::Fingerprint;

/// One followed file.
#[derive(Debug)]
pub(super) struct Followed {
    pub(super) id: FileId,
    pub(super) input: String,
    pub(super) fingerprint: Fingerprint,
    pub(super) file: File,
    pub(super) events: EventReader,
    /// Not matched by the last rescan since then: draining.
    pub(super) gone_since: Option<Instant>,
    /// The last sign of life: data read, the start of draining, a path that could not be
    /// looked at. A draining file quiet for the grace period is closed.
    pub(super) last_activity: Instant,
    read_error_reported: bool,
    /// Its path could not be stat-ed before closing it (reported once).
    path_error_reported: bool,
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

impl Followed {
    pub(super) fn new(
        id: FileId,
        input: String,
        fingerprint: Fingerprint,
        file: File,
        events: EventReader,
        now: Instant,
    ) -> Followed {
        Followed {
            id,
            input,
            fingerprint,
            file,
            events,
            gone_since: None,
            last_activity: now,
            read_error_reported: false,
            path_error_reported: false,
        }
    }

    /// The path the file was last seen at.
    pub(super) fn path(&self) -> &Path {
        &self.events.origin().path
    }

    /// Where a restart may resume this file.
    pub(super) fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            fingerprint: self.fingerprint,
            path: self.path().to_path_buf(),
            offset: self.events.checkpoint(),
        }
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

    /// Reads one chunk (at most `max_bytes` bytes and `max_lines` lines) and hands out the
    /// events it completes. Returns how many lines were cut at `max_line_bytes`.
    pub(super) fn read(
        &mut self,
        batch: &mut Batch,
        max_bytes: usize,
        max_lines: usize,
        now: Instant,
        wall: SystemTime,
    ) -> u64 {
        let meta = match self.file.metadata() {
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
            match self.fingerprint.matches(&self.file, &meta) {
                Ok(true) if !self.fingerprint.is_complete() => {
                    if let Ok(grown) = Fingerprint::of(&self.file, &meta) {
                        self.fingerprint = grown;
                    }
                }
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(
                        path = %self.path().display(),
                        "file rewritten from its start (copytruncate?); reading it from the start"
                    );
                    self.restart(batch, now, wall);
                }
                Err(err) => {
                    self.report_read_error(&err);
                    return 0;
                }
            }
        } else if self.events.buffered() == 0 {
            return 0;
        }
        let n_cut = self.events.n_cut();
        // What the file holds past the read position, and no more: a write of a few lines is
        // read into a buffer of its size, without the read that finds the end (issue 18).
        let available = meta.len().saturating_sub(self.events.position());
        let mut budget = max_bytes.min(usize::try_from(available).unwrap_or(usize::MAX));
        let read = self.events.read(
            &mut self.file,
            &mut budget,
            max_lines,
            now,
            wall,
            &mut batch.lines,
        );
        if let Err(err) = read {
            self.report_read_error(&err);
        }
        batch.count_from(from);
        if self.events.last_data() == now {
            self.last_activity = now;
        }
        if !self.fingerprint.is_complete() {
            self.grow_fingerprint();
        }
        self.events.n_cut() - n_cut
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
        let Ok(meta) = self.file.metadata() else {
            return;
        };
        if let Ok(grown) = Fingerprint::of(&self.file, &meta) {
            if grown.head_len > self.fingerprint.head_len
                && self.fingerprint.matches(&self.file, &meta).unwrap_or(false)
            {
                self.fingerprint = grown;
            }
        }
    }

    /// Starts the file over from offset 0 (it was truncated or rewritten).
    fn restart(&mut self, batch: &mut Batch, now: Instant, wall: SystemTime) {
        self.events.restart(now, wall, &mut batch.lines);
        if let Err(err) = self.file.seek(SeekFrom::Start(0)) {
            self.report_read_error(&err);
        }
        // The head changed: fingerprint the new content, or the next read would take the old
        // head's absence for another rewrite and start over again.
        match self.file.metadata() {
            Ok(meta) => {
                if let Ok(fingerprint) = Fingerprint::of(&self.file, &meta) {
                    self.fingerprint = fingerprint;
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
