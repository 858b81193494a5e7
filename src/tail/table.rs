//! The file table's reconciliation with the file system: a rescan matches the globs and opens
//! new files (skipping the ones that are not text, deciding where to start in each through
//! [`crate::tail::copies`]), follows known files to their new paths and starts draining the ones
//! no longer matched; `Tailer::release_drained` closes drained files and keeps their checkpoints
//! in the resume list. Every file enters and leaves the table through `insert_followed` and
//! `remove_followed`, which keep the inode index and the count of open descriptors.

use std::collections::HashSet;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Instant;

use crate::config::StartAt;
use crate::event::FileId;
use crate::intake::{EventReader, Origin};
use crate::tail::copies::Start;
use crate::tail::discover::{Candidate, Scan};
use crate::tail::fingerprint::{Fingerprint, bytes_before};
use crate::tail::followed::{Batch, Followed, Opened};
use crate::tail::park::{is_out_of_descriptors, park_batch};
use crate::tail::sniff::{Skip, sniff};
use crate::tail::tailer::{Tailer, drain_grace};

/// What opening a newly matched file came to.
pub(super) enum Opening {
    /// Followed (or already followed under another path).
    Followed(FileId),
    /// Not text: not followed.
    Skipped,
    /// Could not be opened or read now; retried by a later scan.
    Failed,
}

impl Tailer {
    /// Matches the globs and reconciles the file table: new files are opened, known ones
    /// followed to their new path, missing ones start draining.
    pub(super) fn rescan(&mut self, now: Instant) {
        self.last_rescan = Some(now);
        let mut scan = Scan::default();
        let mut seen: HashSet<FileId> = HashSet::new();
        let mut unopened: HashSet<(u64, u64)> = HashSet::new();
        let mut unreadable: HashSet<PathBuf> = HashSet::new();
        let mut skipped: HashSet<(u64, u64)> = HashSet::new();
        for index in 0..self.inputs.len() {
            let Some(input) = self.inputs.get(index) else {
                continue;
            };
            let candidates = input.globs.discover(&mut scan);
            let fresh: Vec<bool> = candidates
                .iter()
                .map(|candidate| {
                    self.scanned
                        .is_fresh(&input.config.name, &input.globs, &candidate.path)
                })
                .collect();
            for (candidate, fresh) in candidates.into_iter().zip(fresh) {
                let key = (candidate.meta.dev(), candidate.meta.ino());
                if let Some(id) = self.by_inode.get(&key) {
                    if seen.insert(*id) {
                        if let Some(file) = self.files.get_mut(id) {
                            file.found_at(&candidate);
                            // A parked file whose size changed has something to read.
                            if file.file.is_none() && candidate.meta.len() != file.events.position()
                            {
                                file.wake = true;
                            }
                        }
                    }
                    continue;
                }
                if self.skipped.contains_key(&key) {
                    skipped.insert(key);
                    continue;
                }
                if unopened.contains(&key) {
                    continue;
                }
                match self.open(index, &candidate, fresh, now) {
                    Opening::Followed(id) => {
                        seen.insert(id);
                    }
                    Opening::Skipped => {
                        skipped.insert(key);
                    }
                    Opening::Failed => {
                        unopened.insert(key);
                        unreadable.insert(candidate.path);
                    }
                }
            }
        }
        // Out of descriptors while listing (or stat-ing): idle files make room for the next try.
        if scan
            .unknown
            .values()
            .any(|unknown| is_out_of_descriptors(&unknown.error))
        {
            self.park_idle(park_batch(self.max_open).max(8));
        }
        // A skipped file no longer matched may come back as something else.
        self.skipped.retain(|key, _| skipped.contains(key));
        self.known.expire(now);
        for input in &self.inputs {
            self.scanned.mark(&input.config.name, &input.config.paths);
        }
        for (path, unknown) in &scan.unknown {
            if !self.unreadable.insert(path.clone()) {
                continue;
            }
            if unknown.listing {
                tracing::warn!(
                    dir = %path.display(),
                    error = %unknown.error,
                    "cannot list directory; keeping the files followed in it; will retry"
                );
            } else {
                tracing::warn!(
                    path = %path.display(),
                    error = %unknown.error,
                    "cannot stat; keeping the file if followed; will retry"
                );
            }
        }
        unreadable.extend(scan.unknown.keys().cloned());
        // Paths reported unreadable that are gone or readable now may be reported again later.
        self.unreadable.retain(|path| unreadable.contains(path));
        // A checkpoint whose file exists but cannot be opened, or may exist where nothing can be
        // learnt now, is fresh; the others age out.
        self.resume.refresh(&unopened, &scan, now);
        let mut lost_parked = Vec::new();
        for file in self.files.values_mut() {
            if seen.contains(&file.id) {
                file.gone_since = None;
            } else if scan.is_unknown(file.path()) {
                // Not listable now: neither found nor gone; keep following it as it was.
            } else if file.gone_since.is_none() {
                tracing::debug!(path = %file.path().display(), "no longer matched: draining");
                file.gone_since = Some(now);
                file.last_activity = now;
                if file.file.is_none() {
                    lost_parked.push(file.id);
                }
            }
        }
        // A parked file renamed out of the globs is drained like any other: found by its
        // inode next to where it was, and reopened.
        for id in lost_parked {
            self.find_parked(id);
        }
        if let Some(watch) = self.watch.as_mut() {
            let was_polling = watch.is_polling();
            watch.set_dirs(&scan.dirs);
            if watch.is_polling() && !was_polling {
                self.wake.read();
            }
        }
    }

    /// Opens a newly matched file and decides where to start in it (see
    /// [`crate::tail::copies`]). A file that is not text is skipped (and reported once); past
    /// the descriptor budget, idle files are parked first, or the new file itself is parked
    /// once it has been identified.
    fn open(
        &mut self,
        input_index: usize,
        candidate: &Candidate,
        fresh: bool,
        now: Instant,
    ) -> Opening {
        let Some(input) = self.inputs.get(input_index) else {
            return Opening::Failed;
        };
        let path = candidate.path.clone();
        let input_name = input.config.name.clone();
        let framing = input.framing.clone();
        let at_end = fresh && (input.config.start_at == StartAt::End || self.scanned.all_at_end());
        self.make_room();
        let file = match self.open_path(&path) {
            Ok(file) => file,
            Err(err) => {
                if self.unreadable.insert(path.clone()) {
                    tracing::warn!(
                        path = %path.display(),
                        error = %err,
                        "cannot open file; will retry"
                    );
                }
                return Opening::Failed;
            }
        };
        let opened = file.metadata().and_then(|meta| {
            let (fingerprint, head) = Fingerprint::read(&file, &meta)?;
            Ok((meta, fingerprint, head))
        });
        let (meta, fingerprint, head) = match opened {
            Ok(opened) => opened,
            Err(err) => {
                if self.unreadable.insert(path.clone()) {
                    tracing::warn!(
                        path = %path.display(),
                        error = %err,
                        "cannot read file; will retry"
                    );
                }
                return Opening::Failed;
            }
        };
        if self.unreadable.remove(&path) {
            tracing::info!(path = %path.display(), "file is readable now");
        }
        let key = (meta.dev(), meta.ino());
        if let Some(id) = self.by_inode.get(&key) {
            // Replaced between the scan and the open by a file we already follow.
            return Opening::Followed(*id);
        }
        if let Some(skip) = sniff(&head) {
            self.skip_file(key, &path, skip);
            return Opening::Skipped;
        }
        let mut opened = Opened {
            file,
            fingerprint,
            head,
            before: None,
        };
        let start = self.decide_start(&opened, &path, &meta, at_end, now);
        let offset = match start {
            Start::At(offset) => offset,
            Start::Unsettled | Start::Shadow(_) => 0,
        };
        let prepared = opened
            .file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| bytes_before(&opened.file, offset));
        match prepared {
            Ok(before) => opened.before = before,
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "cannot seek; will retry");
                return Opening::Failed;
            }
        }
        tracing::debug!(path = %path.display(), offset, ?start, "following file");
        let id = FileId(self.next_id);
        self.next_id += 1;
        let origin = Origin {
            input: input_name.as_str().into(),
            file_id: id,
            path: path.into(),
        };
        let events = EventReader::new(&framing, origin, offset, now);
        let mut followed = Followed::new(id, input_name, opened, events, now);
        match start {
            Start::At(_) => {}
            Start::Unsettled => followed.unsettled = true,
            Start::Shadow(shadow) => followed.copy_of = Some(shadow),
        }
        let over_budget = self.n_open >= self.max_open;
        self.insert_followed(followed);
        if matches!(start, Start::Shadow(_)) {
            self.mark_originals();
        } else if over_budget {
            // No idle file could make room: this one waits, parked, for its turn.
            if let Some(file) = self.files.get_mut(&id) {
                let behind = meta.len() > offset;
                file.park();
                file.wake = behind;
                self.n_open = self.n_open.saturating_sub(1);
            }
        }
        Opening::Followed(id)
    }

    /// Adds a file to the table (and its inode to the index).
    pub(super) fn insert_followed(&mut self, followed: Followed) {
        self.by_inode.insert(
            (followed.fingerprint.dev, followed.fingerprint.ino),
            followed.id,
        );
        if followed.file.is_some() {
            self.n_open += 1;
        }
        self.files.insert(followed.id, followed);
    }

    /// Takes a file out of the table (and its inode out of the index).
    pub(super) fn remove_followed(&mut self, id: FileId) -> Option<Followed> {
        let followed = self.files.remove(&id)?;
        let key = (followed.fingerprint.dev, followed.fingerprint.ino);
        if self.by_inode.get(&key) == Some(&id) {
            self.by_inode.remove(&key);
        }
        if followed.file.is_some() {
            self.n_open = self.n_open.saturating_sub(1);
        }
        Some(followed)
    }

    /// Records that the file `key` at `path` is not followed (not text), reporting it once.
    pub(super) fn skip_file(&mut self, key: (u64, u64), path: &std::path::Path, skip: Skip) {
        if self.skipped.insert(key, skip).is_some() {
            return;
        }
        match skip {
            Skip::Binary => self.n_binary += 1,
            Skip::Compressed(_) => self.n_compressed += 1,
        }
        tracing::warn!(
            path = %path.display(),
            "not following a file that is {skip}: its lines would be garbage"
        );
    }

    /// Closes draining files that have been quiet for the grace period, after handing out their
    /// held events and unterminated last line; their checkpoints go to the resume list. A file
    /// whose path still leads to it (or cannot be looked at) is kept.
    pub(super) fn release_drained(&mut self, now: Instant, batch: &mut Batch) {
        let grace = drain_grace(self.poll_interval);
        let wall = self.clock.wall();
        let done: Vec<FileId> = self
            .files
            .values()
            .filter(|f| {
                f.gone_since.is_some() && now.saturating_duration_since(f.last_activity) >= grace
            })
            .map(|f| f.id)
            .collect();
        for id in done {
            let Some(file) = self.files.get_mut(&id) else {
                continue;
            };
            let matched = self
                .inputs
                .iter()
                .find(|i| i.config.name == file.input)
                .is_some_and(|i| i.globs.matches(file.path()));
            if matched && file.still_at_path(now) {
                continue;
            }
            let Some(mut file) = self.remove_followed(id) else {
                continue;
            };
            let key = (file.fingerprint.dev, file.fingerprint.ino);
            file.flush(batch, now, wall);
            let checkpoint = file.checkpoint();
            tracing::debug!(
                path = %file.path().display(),
                offset = checkpoint.offset,
                "drained and closed"
            );
            // A deleted file cannot come back, and its inode number will serve another file.
            let deleted = match file.file.as_ref() {
                Some(open) => open.metadata().is_ok_and(|meta| meta.nlink() == 0),
                // Parked and not found next to its path: gone as far as anyone can tell.
                None => !file.path().exists(),
            };
            if deleted {
                self.resume.forget(key);
                continue;
            }
            self.resume.keep(checkpoint, now);
        }
    }
}
