//! Where a file the tailer has not followed before starts: at a stored checkpoint (if its inode
//! and content are the ones read), at a copied checkpoint (if it is a copy of content already
//! read), at 0 (new content), at its end (`start_at: end`), or nowhere yet: a possible copy of a
//! followed file that is still being written waits (a *shadow*) until that file is truncated (the
//! copy then continues where the original was read to) or it turns out not to be a copy (then it
//! is read from 0). The rules of content identity are in [`crate::tail::identity`].
//!
//! Why shadows: logrotate's `copytruncate` creates the copy, fills it, then truncates the
//! original; the tailer may find the copy empty or half-written. While the original is intact
//! and the copy's bytes are its first bytes, nothing can be decided: a plain `cp` of a live log
//! must not be read twice either. Only a file named like a rotation of the original (same
//! directory, the original's name plus a suffix) is taken for a copy still being made: many
//! services start their logs with the same bytes, and those are separate files. Each round a shadow is looked at (one `fstat`, and when it grew
//! one `pread` of each file); when the original starts over, its content before is
//! `Known`, and its shadows continue at its checkpoint, reading
//! what the copy carried over the truncation (lines written between logrotate's copy and its
//! truncate that were not read yet: the "copy window" that used to be lost).

use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use crate::event::FileId;
use crate::tail::fingerprint::{Fingerprint, HEAD_BYTES, bytes_before, hash};
use crate::tail::followed::{Opened, Shadow};
use crate::tail::identity::{Known, anchor_for, head_related, named_after};
use crate::tail::tailer::Tailer;

/// Where a newly opened file starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Start {
    /// Read from this offset.
    At(u64),
    /// New and empty: decided when it has bytes.
    Unsettled,
    /// Not read while it may be a copy of a followed file still being written.
    Shadow(Shadow),
}

/// What a file not known by its inode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Identity {
    /// New content: read from 0.
    New,
    /// A copy of content read: continues at this offset.
    CopyAt(u64),
    /// Maybe a copy of this followed file (its bytes are that file's first bytes so far).
    Shadow(Shadow),
}

impl Tailer {
    /// Where `opened` (`meta`) starts: resumed at its stored checkpoint when its inode, head
    /// and the bytes before the offset are the ones read; else identified by content; `fresh`
    /// files of a `start_at: end` input (or after a lost state) at their end.
    pub(super) fn decide_start(
        &mut self,
        opened: &Opened,
        path: &Path,
        meta: &Metadata,
        at_end: bool,
        now: Instant,
    ) -> Start {
        let len = meta.len();
        let mut resumed = None;
        for checkpoint in self.resume.take_inode((meta.dev(), meta.ino())) {
            let same = checkpoint
                .fingerprint
                .matches(&opened.file, meta)
                .unwrap_or(false);
            if same && resumed.is_none() {
                resumed = Some(checkpoint);
            } else {
                // A reused inode number: its old content may have been copied elsewhere.
                self.known.push(Known::of_checkpoint(&checkpoint, now));
            }
        }
        if let Some(checkpoint) = resumed {
            if checkpoint.offset > len {
                tracing::info!(
                    path = %path.display(),
                    size = len,
                    offset = checkpoint.offset,
                    "file truncated while dingtail was not reading it; reading it from the start"
                );
            } else if checkpoint.tail.is_some_and(|tail| {
                !tail
                    .matches_at(&opened.file, checkpoint.offset)
                    .unwrap_or(false)
            }) {
                tracing::info!(
                    path = %path.display(),
                    "file rewritten while dingtail was not reading it (same first bytes, other content); reading it from the start"
                );
            } else {
                return Start::At(checkpoint.offset);
            }
            self.known.push(Known::of_checkpoint(&checkpoint, now));
        }
        if at_end {
            return Start::At(len);
        }
        if len == 0 {
            return Start::Unsettled;
        }
        match self.identify(&opened.file, path, &opened.head, len, None) {
            Identity::New => Start::At(0),
            Identity::CopyAt(offset) => {
                tracing::info!(
                    offset,
                    "a copy of content already read (copytruncate?): continuing after the part read"
                );
                Start::At(offset)
            }
            Identity::Shadow(shadow) => Start::Shadow(shadow),
        }
    }

    /// What `file` (`len` bytes, starting with `head`) is, compared with the followed files
    /// (other than `this`), the content they held before they started over, the stored
    /// checkpoints not matched yet.
    pub(super) fn identify(
        &self,
        file: &File,
        path: &Path,
        head: &[u8],
        len: u64,
        this: Option<FileId>,
    ) -> Identity {
        // Cheap filters first: this runs for every new file, against every followed file.
        let head_hash = (len >= HEAD_BYTES).then(|| hash(head));
        let may_relate = |fingerprint: &Fingerprint, other_path: &Path| match head_hash {
            Some(hash) => fingerprint.is_complete() && fingerprint.head_hash == hash,
            // A short file is only ever a copy under a rotation's name.
            None => named_after(path, other_path),
        };
        for (id, other) in &self.files {
            if Some(*id) == this
                || other.copy_of.is_some()
                || other.unsettled
                || !may_relate(&other.fingerprint, other.path())
                || !head_related(Some(&other.head), &other.fingerprint, head, len)
            {
                continue;
            }
            // Content beyond the head, or a short content under a rotation's name.
            let named = named_after(path, other.path());
            let anchored = |other: &crate::tail::followed::Followed| {
                (len <= HEAD_BYTES && named)
                    || anchor_for(&other.anchors_view(), len)
                        .is_some_and(|a| a.tail.matches_at(file, a.offset).unwrap_or(false))
            };
            let shadow = Identity::Shadow(Shadow { of: *id, len });
            let Some(other_file) = other.file.as_ref() else {
                // Parked (idle, read to its end). Under a rotation's name it may be a copy
                // still being made: wait for it, with the original reopened to compare;
                // otherwise only what is known of it is compared.
                if named {
                    return shadow;
                }
                if anchored(other) {
                    return Identity::CopyAt(other.events.checkpoint().min(len));
                }
                continue;
            };
            match other.intact() {
                // Its first bytes so far, under a rotation's name: maybe a copy being made.
                Ok((true, size)) => {
                    if named && size >= len && same_bytes_before(other_file, file, len) {
                        return shadow;
                    }
                    // logrotate may truncate it between the look above and the comparison
                    // (the copy is opened as soon as it is complete): then what it held
                    // decides, as below, rather than the bytes that are gone.
                    if named && matches!(other.intact(), Ok((false, _))) && anchored(other) {
                        return shadow;
                    }
                }
                // Truncated or rewritten, not noticed yet: what it held before decides, and
                // its start-over settles the copy.
                Ok((false, _)) => {
                    if anchored(other) {
                        return shadow;
                    }
                }
                Err(_) => {}
            }
        }
        for known in self.known.newest_first() {
            if may_relate(&known.fingerprint, &known.path) {
                if let Ok(Some(offset)) = known.copy_offset(file, path, head, len) {
                    return Identity::CopyAt(offset);
                }
            }
        }
        let now = self.clock.now();
        for checkpoint in self.resume.checkpoints() {
            if head_hash.is_some() && may_relate(&checkpoint.fingerprint, &checkpoint.path) {
                let known = Known::of_checkpoint(checkpoint, now);
                if let Ok(Some(offset)) = known.copy_offset(file, path, head, len) {
                    return Identity::CopyAt(offset);
                }
            }
        }
        Identity::New
    }

    /// Each round: settles the shadows that are no copy (their original is gone, or their
    /// bytes are no longer the original's) and marks the files that have shadows.
    pub(super) fn check_copies(&mut self) {
        if !self.any_shadows {
            return;
        }
        let shadows: Vec<(FileId, Shadow)> = self
            .files
            .values()
            .filter_map(|f| f.copy_of.map(|shadow| (f.id, shadow)))
            .collect();
        for (id, shadow) in shadows {
            let verdict = self.look_at_shadow(id, shadow);
            let Some(file) = self.files.get_mut(&id) else {
                continue;
            };
            match verdict {
                ShadowVerdict::Still(len) => {
                    file.copy_of = Some(Shadow { len, ..shadow });
                }
                ShadowVerdict::Wait => {}
                ShadowVerdict::NotACopy => {
                    tracing::debug!(
                        path = %file.path().display(),
                        "not a copy after all; reading it from the start"
                    );
                    file.copy_of = None;
                }
            }
        }
        self.mark_originals();
    }

    fn look_at_shadow(&self, id: FileId, shadow: Shadow) -> ShadowVerdict {
        let Some(copy) = self.files.get(&id).and_then(|f| f.file.as_ref()) else {
            return ShadowVerdict::Wait;
        };
        let Some(original) = self.files.get(&shadow.of) else {
            return ShadowVerdict::NotACopy;
        };
        let Some(original_file) = original.file.as_ref() else {
            // Parked: reopened to be compared (`wake`) before anything is decided.
            return ShadowVerdict::Wait;
        };
        let Ok(len) = copy.metadata().map(|m| m.len()) else {
            return ShadowVerdict::Wait;
        };
        if len == shadow.len {
            return ShadowVerdict::Wait;
        }
        if len < shadow.len {
            return ShadowVerdict::NotACopy;
        }
        match original.intact() {
            Ok((true, size)) if size >= len && same_bytes_before(original_file, copy, len) => {
                ShadowVerdict::Still(len)
            }
            // A mismatch says "no copy" only if the original is still what was read: logrotate
            // may truncate it between the look above and the comparison (copytruncate while the
            // copy is examined), and a copy judged then would be read again from its start.
            Ok((true, _)) => match original.intact() {
                Ok((true, _)) => ShadowVerdict::NotACopy,
                Ok((false, _)) | Err(_) => ShadowVerdict::Wait,
            },
            // The original starts over at its next read, and settles this.
            Ok((false, _)) | Err(_) => ShadowVerdict::Wait,
        }
    }

    /// Sets `has_copies` on the files that have shadows, and clears it on the others.
    pub(super) fn mark_originals(&mut self) {
        let originals: std::collections::HashSet<FileId> = self
            .files
            .values()
            .filter_map(|f| f.copy_of.map(|shadow| shadow.of))
            .collect();
        self.any_shadows = !originals.is_empty();
        for file in self.files.values_mut() {
            file.has_copies = originals.contains(&file.id);
            if file.has_copies && file.file.is_none() {
                // Compared with its copy each round: reopened, and not parked again.
                file.wake = true;
            }
        }
    }

    /// After file `id` started over: keeps what it held, and its shadows continue where it was
    /// read to (or at their own end when shorter).
    pub(super) fn retire(&mut self, id: FileId, known: Known) {
        let copies: Vec<FileId> = self
            .files
            .values()
            .filter(|f| f.copy_of.is_some_and(|shadow| shadow.of == id))
            .map(|f| f.id)
            .collect();
        for copy_id in copies {
            let Some(copy) = self.files.get_mut(&copy_id) else {
                continue;
            };
            copy.copy_of = None;
            let len = copy
                .file
                .as_ref()
                .and_then(|f| f.metadata().ok())
                .map_or(0, |m| m.len());
            let offset = known.checkpoint.min(len);
            tracing::info!(
                path = %copy.path().display(),
                original = %known.path.display(),
                offset,
                "a copy of a file that was then truncated (copytruncate): continuing after the part read"
            );
            if let Err(err) = copy.start_at(offset) {
                tracing::warn!(path = %copy.path().display(), error = %err, "cannot read file; reading it from the start");
                let _ignored = copy.start_at(0);
            }
        }
        self.known.push(known);
        self.mark_originals();
    }

    /// Decides what an unsettled file (new and empty when opened) is, now that it may have
    /// bytes. Returns false when it must no longer be followed (it looks binary or
    /// compressed).
    pub(super) fn settle(&mut self, id: FileId) -> bool {
        let Some(followed) = self.files.get(&id) else {
            return true;
        };
        let Some(file) = followed.file.as_ref() else {
            return true;
        };
        let Ok(meta) = file.metadata() else {
            return true;
        };
        if meta.len() == 0 {
            return true;
        }
        let Ok((_, head)) = crate::tail::fingerprint::Fingerprint::read(file, &meta) else {
            return true;
        };
        if let Some(skip) = crate::tail::sniff::sniff(&head) {
            let path = followed.path().to_path_buf();
            self.skip_file((meta.dev(), meta.ino()), &path, skip);
            return false;
        }
        let path = followed.path().to_path_buf();
        let identity = self.identify(file, &path, &head, meta.len(), Some(id));
        let Some(followed) = self.files.get_mut(&id) else {
            return true;
        };
        followed.unsettled = false;
        match identity {
            Identity::New => {}
            Identity::CopyAt(offset) => {
                tracing::info!(
                    path = %followed.path().display(),
                    offset,
                    "a copy of content already read (copytruncate?): continuing after the part read"
                );
                if followed.start_at(offset).is_err() {
                    let _ignored = followed.start_at(0);
                }
            }
            Identity::Shadow(shadow) => {
                followed.copy_of = Some(shadow);
                self.mark_originals();
            }
        }
        true
    }
}

enum ShadowVerdict {
    /// Still the original's first bytes, now this many.
    Still(u64),
    /// Nothing to decide now.
    Wait,
    /// Not a copy: read it from 0.
    NotACopy,
}

/// True when the `min(len, TAIL_BYTES)` bytes before `len` are the same in both files.
fn same_bytes_before(a: &File, b: &File, len: u64) -> bool {
    match (bytes_before(a, len), bytes_before(b, len)) {
        (Ok(Some(x)), Ok(Some(y))) => x == y,
        _ => false,
    }
}
