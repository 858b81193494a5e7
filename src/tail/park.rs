//! Parking: following more files than there are descriptors to spare (issue 19).
//!
//! The tailer keeps at most `max_open` files open (the budget from [`crate::fdlimit`]: the soft
//! `RLIMIT_NOFILE`, raised to the hard limit at start, minus a reserve for sockets, the state
//! store, listeners and reloads). Past it, the least recently active *idle* files are parked:
//! their descriptor is closed, and everything else (fingerprint, head, `EventReader`, path,
//! checkpoint and its tail hash) is kept. Idle means read to its end at the last look, not
//! draining, no copy relation; files that hold nothing (no partial line, no event being joined)
//! go before those that do (what they hold stays in memory and times out as usual).
//!
//! A parked file costs no system call while nothing happens to it: it is looked at (one `stat`
//! of its path) when inotify reports a write to that path, and every rescan compares the size it
//! finds anyway. When its size changed it is reopened at its path, only if the path still leads
//! to the same device and inode (a rewrite is then found by the read, as for any file); to make
//! room, idle files are parked in turn, so delivery never starves however many files there are.
//! A parked file renamed out of the globs (rotated) is looked for by its inode in its directory
//! and drained like any rotated file; one that cannot be found is released.
//!
//! Running out of descriptors anyway (`EMFILE`, `ENFILE`: another part of the process, another
//! process) is handled the same way: idle files are parked and the open is retried; a file
//! that still cannot be opened is retried by the next scans, never given up.

use std::fs::File;
use std::io;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::event::FileId;
use crate::tail::tailer::Tailer;
use crate::tail::watch::Touched;

/// How many idle files are parked at once when room is needed: a batch, so that finding the
/// least recently active ones is not repeated for every file opened.
pub(super) fn park_batch(max_open: usize) -> usize {
    (max_open / 32).clamp(1, 256)
}

/// True when `err` says that no descriptor is left (for the process or the system).
pub(super) fn is_out_of_descriptors(err: &io::Error) -> bool {
    matches!(
        rustix::io::Errno::from_io_error(err),
        Some(rustix::io::Errno::MFILE | rustix::io::Errno::NFILE)
    )
}

impl Tailer {
    /// Parks idle files when the budget is used up. False when no room could be made.
    pub(super) fn make_room(&mut self) -> bool {
        if self.n_open < self.max_open {
            return true;
        }
        self.park_idle(park_batch(self.max_open)) > 0
    }

    /// Parks up to `n` files read to their end, those holding nothing and the least recently
    /// active first; returns how many.
    pub(super) fn park_idle(&mut self, n: usize) -> usize {
        let mut idle: Vec<((bool, Instant), FileId)> = self
            .files
            .values()
            .filter_map(|f| f.park_rank().map(|rank| (rank, f.id)))
            .collect();
        idle.sort_unstable();
        let mut parked = 0;
        for (_, id) in idle.into_iter().take(n) {
            if let Some(file) = self.files.get_mut(&id) {
                file.park();
                parked += 1;
            }
        }
        self.n_open = self.n_open.saturating_sub(parked);
        if parked > 0 {
            tracing::debug!(parked, open = self.n_open, "parked idle files");
        }
        parked
    }

    /// Opens `path`; out of descriptors, parks idle files and tries again.
    pub(super) fn open_path(&mut self, path: &Path) -> io::Result<File> {
        match File::open(path) {
            Err(err) if is_out_of_descriptors(&err) => {
                let parked = self.park_idle(park_batch(self.max_open).max(8));
                if !self.fd_exhaustion_reported {
                    self.fd_exhaustion_reported = true;
                    tracing::warn!(
                        error = %err,
                        parked,
                        open = self.n_open,
                        "out of file descriptors: parked idle files (they are reopened when they grow)"
                    );
                }
                File::open(path)
            }
            result => result,
        }
    }

    /// Between rescans: parked files whose path was written to are looked at; those whose size
    /// changed are to be reopened.
    pub(super) fn look_at_parked(&mut self, touched: &Touched) {
        if touched.is_empty() || self.n_open == self.files.len() {
            return;
        }
        let mut moved = false;
        for file in self.files.values_mut() {
            if file.file.is_some() || file.wake || !touched.contains(file.path()) {
                continue;
            }
            match std::fs::metadata(file.path()) {
                Ok(meta)
                    if (meta.dev(), meta.ino()) == (file.fingerprint.dev, file.fingerprint.ino) =>
                {
                    file.wake = meta.len() != file.events.position();
                }
                // Renamed or deleted: the rescan sorts it out.
                _ => moved = true,
            }
        }
        if moved {
            self.wake.rescan();
        }
    }

    /// Reopens parked files that have something to read, oldest first, parking idle files to
    /// make room.
    pub(super) fn wake_parked(&mut self, now: Instant) {
        if self.n_open == self.files.len() {
            return;
        }
        let mut waiting: Vec<(Instant, FileId)> = self
            .files
            .values()
            .filter(|f| f.file.is_none() && f.wake)
            .map(|f| (f.last_activity, f.id))
            .collect();
        if waiting.is_empty() {
            return;
        }
        waiting.sort_unstable();
        for (_, id) in waiting {
            let Some(needed) = self.files.get(&id).map(|f| f.has_copies) else {
                continue;
            };
            // An original with a copy being compared to it is opened whatever the budget (the
            // reserve covers the few there are).
            if self.n_open >= self.max_open && !self.make_room() && !needed {
                continue;
            }
            let Some(file) = self.files.get_mut(&id) else {
                continue;
            };
            match file.reopen(now) {
                Ok(true) => self.n_open += 1,
                Ok(false) => {
                    // Another file at its path: the rescan finds where it went.
                    file.wake = false;
                    self.wake.rescan();
                }
                Err(err) if is_out_of_descriptors(&err) => {
                    self.park_idle(park_batch(self.max_open));
                    break;
                }
                Err(err) => {
                    file.wake = false;
                    tracing::debug!(path = %file.path().display(), error = %err, "cannot reopen a parked file");
                    self.wake.rescan();
                }
            }
        }
    }

    /// True when a parked file waits to be reopened and room can be made now.
    pub(super) fn can_wake_more(&self) -> bool {
        if self.n_open == self.files.len() {
            return false;
        }
        let waiting = self.files.values().any(|f| f.file.is_none() && f.wake);
        waiting
            && (self.n_open < self.max_open || self.files.values().any(|f| f.park_rank().is_some()))
    }

    /// A parked file no longer matched: looks for its inode in its directory; found, it takes
    /// the new path and is reopened to be drained.
    pub(super) fn find_parked(&mut self, id: FileId) {
        let Some(file) = self.files.get_mut(&id) else {
            return;
        };
        let key = (file.fingerprint.dev, file.fingerprint.ino);
        let Some(dir) = file.path().parent() else {
            return;
        };
        if let Some(path) = find_inode(dir, key) {
            tracing::debug!(
                from = %file.path().display(),
                to = %path.display(),
                "parked file renamed: draining it"
            );
            file.events.set_path(path);
            file.wake = true;
        }
    }
}

/// The path of the entry of `dir` with device and inode `key`, if any (one listing; inode
/// numbers come with the entries, only a candidate is stat-ed).
pub(super) fn find_inode(dir: &Path, key: (u64, u64)) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.ino() == key.1)
        .map(|entry| entry.path())
        .find(|path| std::fs::metadata(path).is_ok_and(|meta| (meta.dev(), meta.ino()) == key))
}
