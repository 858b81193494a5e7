//! At start: files rotated while dingtail was down that the globs no longer match.
//!
//! With a glob that matches only the live name (`app.log`), a file renamed to `app.log.1` while
//! dingtail was down is not found by the first scan, and the lines written to it after the last
//! checkpoint would be lost. So, after the first scan, the stored checkpoints still unmatched
//! are looked for in the directories of their stored paths: by inode (`create` rotation: the
//! file was renamed; one listing per directory, the entries carry their inode numbers), and by
//! content next to the old name (`copytruncate` rotation: the old inode now holds new content,
//! and a file named like the old one plus a suffix, `app.log.1`, whose head and bytes before
//! the checkpoint are the ones read, is the copy). Such a file is followed from its checkpoint
//! as a file being drained: it is read until quiet, then released like any rotated file. The
//! input it belongs to is the one whose globs match its stored path.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::event::FileId;
use crate::intake::{EventReader, Origin};
use crate::tail::checkpoint::Checkpoint;
use crate::tail::fingerprint::{Fingerprint, bytes_before};
use crate::tail::followed::{Followed, Opened};
use crate::tail::identity::Known;
use crate::tail::sniff::{compressed_name, sniff};
use crate::tail::tailer::Tailer;

/// What a directory holds: its entries' names by inode number.
type Listing = Vec<(u64, PathBuf)>;

impl Tailer {
    /// Follows, as drained files, the files of stored checkpoints that were rotated out of the
    /// globs while dingtail was down. Called once, after the first scan.
    pub(super) fn recover_rotated(&mut self, now: Instant) {
        let renamed: Vec<Checkpoint> = self.resume.checkpoints().cloned().collect();
        let moved: Vec<Known> = self
            .known
            .newest_first()
            .filter(|known| known.fingerprint.is_complete())
            .cloned()
            .collect();
        if renamed.is_empty() && moved.is_empty() {
            return;
        }
        let mut listings: BTreeMap<PathBuf, Listing> = BTreeMap::new();
        let dirs = renamed
            .iter()
            .map(|cp| cp.path.as_path())
            .chain(moved.iter().map(|k| k.path.as_path()))
            .filter_map(Path::parent);
        for dir in dirs {
            if !listings.contains_key(dir) {
                listings.insert(dir.to_path_buf(), list(dir));
            }
        }
        for checkpoint in renamed {
            let Some(listing) = checkpoint.path.parent().and_then(|d| listings.get(d)) else {
                continue;
            };
            let key = checkpoint.key();
            let Some((_, path)) = listing.iter().find(|(ino, _)| *ino == key.1) else {
                continue;
            };
            let path = path.clone();
            if let Some(offset) = self.recognise_renamed(&checkpoint, &path) {
                self.resume.take_inode(key);
                self.follow_rotated(&checkpoint.path, path, offset, now);
            }
        }
        let mut taken: HashSet<PathBuf> = HashSet::new();
        for known in moved {
            let (Some(dir), Some(name)) = (known.path.parent(), known.path.file_name()) else {
                continue;
            };
            let Some(listing) = listings.get(dir) else {
                continue;
            };
            let candidates: Vec<PathBuf> = listing
                .iter()
                .map(|(_, path)| path)
                .filter(|path| is_rotation_of(path, name.to_os_string()))
                .filter(|path| !taken.contains(*path))
                .cloned()
                .collect();
            for path in candidates {
                if let Some(offset) = self.recognise_copy(&known, &path) {
                    taken.insert(path.clone());
                    self.follow_rotated(&known.path, path, offset, now);
                    break;
                }
            }
        }
    }

    /// The offset to drain `path` from if it is the file of `checkpoint` (same inode, head and
    /// bytes before the offset) and not followed.
    fn recognise_renamed(&self, checkpoint: &Checkpoint, path: &Path) -> Option<u64> {
        let file = File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        if self.by_inode.contains_key(&(meta.dev(), meta.ino()))
            || !checkpoint.fingerprint.matches(&file, &meta).ok()?
            || meta.len() < checkpoint.offset
        {
            return None;
        }
        let same = checkpoint
            .tail
            .is_none_or(|tail| tail.matches_at(&file, checkpoint.offset).unwrap_or(false));
        same.then_some(checkpoint.offset)
    }

    /// The offset to drain `path` from if it is a copy of `known` and not followed.
    fn recognise_copy(&self, known: &Known, path: &Path) -> Option<u64> {
        if compressed_name(path).is_some() {
            return None;
        }
        let file = File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || self.by_inode.contains_key(&(meta.dev(), meta.ino())) {
            return None;
        }
        let (_, head) = Fingerprint::read(&file, &meta).ok()?;
        known.copy_offset(&file, path, &head, meta.len()).ok()?
    }

    /// Follows `path` from `offset` as a file being drained, in the input whose globs match
    /// `stored` (its path when it was read).
    fn follow_rotated(&mut self, stored: &Path, path: PathBuf, offset: u64, now: Instant) {
        let Some(input) = self.inputs.iter().find(|i| i.globs.matches(stored)) else {
            return;
        };
        let input_name = input.config.name.clone();
        let framing = input.framing.clone();
        let Ok(mut file) = File::open(&path) else {
            return;
        };
        let Ok(meta) = file.metadata() else {
            return;
        };
        let Ok((fingerprint, head)) = Fingerprint::read(&file, &meta) else {
            return;
        };
        if sniff(&head).is_some() || file.seek(SeekFrom::Start(offset)).is_err() {
            return;
        }
        let before = bytes_before(&file, offset).ok().flatten();
        tracing::info!(
            path = %path.display(),
            was = %stored.display(),
            offset,
            "rotated while dingtail was down: reading the rest of it"
        );
        let id = FileId(self.next_id);
        self.next_id += 1;
        let origin = Origin {
            input: input_name.as_str().into(),
            file_id: id,
            path: path.into(),
        };
        let events = EventReader::new(&framing, origin, offset, now);
        let opened = Opened {
            file,
            fingerprint,
            head,
            before,
        };
        let mut followed = Followed::new(id, input_name, opened, events, now);
        followed.gone_since = Some(now);
        self.insert_followed(followed);
    }
}

/// The entries of `dir` with their inode numbers (nothing when it cannot be listed).
fn list(dir: &Path) -> Listing {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| (entry.ino(), entry.path()))
                .collect()
        })
        .unwrap_or_default()
}

/// True when `path`'s name is `name` plus a suffix (`app.log.1`, `app.log-20261125`): how
/// rotations next to a file are named.
fn is_rotation_of(path: &Path, name: OsString) -> bool {
    let Some(file_name) = path.file_name() else {
        return false;
    };
    let (candidate, name) = (file_name.as_bytes(), name.as_bytes());
    candidate.len() > name.len() && candidate.starts_with(name)
}
