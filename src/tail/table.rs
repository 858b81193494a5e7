//! The file table's reconciliation with the file system: a rescan matches the globs and opens
//! new files (deciding where to start in each), follows known files to their new paths and
//! starts draining the ones no longer matched; `Tailer::release_drained` closes drained files
//! and keeps their checkpoints in the resume list.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Instant;

use crate::config::StartAt;
use crate::event::FileId;
use crate::intake::{EventReader, Origin};
use crate::tail::discover::{Candidate, Scan};
use crate::tail::fingerprint::Fingerprint;
use crate::tail::followed::{Batch, Followed};
use crate::tail::tailer::{Tailer, drain_grace};

impl Tailer {
    /// Matches the globs and reconciles the file table: new files are opened, known ones
    /// followed to their new path, missing ones start draining.
    pub(super) fn rescan(&mut self, now: Instant) {
        self.last_rescan = Some(now);
        let mut scan = Scan::default();
        let mut seen: HashSet<FileId> = HashSet::new();
        let mut unopened: HashSet<(u64, u64)> = HashSet::new();
        let mut unreadable: HashSet<PathBuf> = HashSet::new();
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
                        }
                    }
                    continue;
                }
                if unopened.contains(&key) {
                    continue;
                }
                match self.open(index, &candidate, fresh, now) {
                    Some(id) => {
                        seen.insert(id);
                    }
                    None => {
                        unopened.insert(key);
                        unreadable.insert(candidate.path);
                    }
                }
            }
        }
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
        for file in self.files.values_mut() {
            if seen.contains(&file.id) {
                file.gone_since = None;
            } else if scan.is_unknown(file.path()) {
                // Not listable now: neither found nor gone; keep following it as it was.
            } else if file.gone_since.is_none() {
                tracing::debug!(path = %file.path().display(), "no longer matched: draining");
                file.gone_since = Some(now);
                file.last_activity = now;
            }
        }
        if let Some(watch) = self.watch.as_mut() {
            let was_polling = watch.is_polling();
            watch.set_dirs(&scan.dirs);
            if watch.is_polling() && !was_polling {
                self.wake.read();
            }
        }
    }

    /// Opens a newly matched file and decides where to start in it.
    fn open(
        &mut self,
        input_index: usize,
        candidate: &Candidate,
        fresh: bool,
        now: Instant,
    ) -> Option<FileId> {
        let input = self.inputs.get(input_index)?;
        let path = &candidate.path;
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(err) => {
                if self.unreadable.insert(path.clone()) {
                    tracing::warn!(
                        path = %path.display(),
                        error = %err,
                        "cannot open file; will retry"
                    );
                }
                return None;
            }
        };
        let opened = file.metadata().and_then(|meta| {
            let fingerprint = Fingerprint::of(&file, &meta)?;
            Ok((meta, fingerprint))
        });
        let (meta, fingerprint) = match opened {
            Ok(opened) => opened,
            Err(err) => {
                if self.unreadable.insert(path.clone()) {
                    tracing::warn!(
                        path = %path.display(),
                        error = %err,
                        "cannot read file; will retry"
                    );
                }
                return None;
            }
        };
        if self.unreadable.remove(path) {
            tracing::info!(path = %path.display(), "file is readable now");
        }
        let key = (meta.dev(), meta.ino());
        if let Some(id) = self.by_inode.get(&key) {
            // Replaced between the scan and the open by a file we already follow.
            return Some(*id);
        }
        let offset = match self.resume.take_matching(&file, &meta) {
            Some(cp) if cp.offset <= meta.len() => cp.offset,
            // Truncated while we were away.
            Some(_) => 0,
            None if fresh
                && (input.config.start_at == StartAt::End || self.scanned.all_at_end()) =>
            {
                meta.len()
            }
            None => 0,
        };
        if let Err(err) = file.seek(SeekFrom::Start(offset)) {
            tracing::warn!(path = %path.display(), error = %err, "cannot seek; will retry");
            return None;
        }
        tracing::debug!(path = %path.display(), offset, "following file");
        let id = FileId(self.next_id);
        self.next_id += 1;
        self.by_inode.insert(key, id);
        let origin = Origin {
            input: input.config.name.clone(),
            file_id: id,
            path: path.clone(),
        };
        let events = EventReader::new(&input.framing, origin, offset, now);
        let followed = Followed::new(
            id,
            input.config.name.clone(),
            fingerprint,
            file,
            events,
            now,
        );
        self.files.insert(id, followed);
        Some(id)
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
            let Some(mut file) = self.files.remove(&id) else {
                continue;
            };
            let key = (file.fingerprint.dev, file.fingerprint.ino);
            self.by_inode.remove(&key);
            file.flush(batch, now, wall);
            let checkpoint = file.checkpoint();
            tracing::debug!(
                path = %file.path().display(),
                offset = checkpoint.offset,
                "drained and closed"
            );
            // A deleted file cannot come back, and its inode number will serve another file.
            if file.file.metadata().is_ok_and(|meta| meta.nlink() == 0) {
                self.resume.forget(key);
                continue;
            }
            self.resume.keep(checkpoint, now);
        }
    }
}
