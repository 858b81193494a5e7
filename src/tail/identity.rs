//! Content identity (issue 19): what is known of content that was read, so that a file is
//! recognised by its bytes as well as by its inode.
//!
//! A [`Fingerprint`] says who a file is while it keeps its inode. Two things it cannot see:
//! a *copy* (logrotate's `copytruncate` copies `app.log` to `app.log.1`, a new inode, then
//! truncates the original; with a glob like `app.log*` the copy would be read again from its
//! start) and a *look-alike* (a file truncated and rewritten with the same first 256 bytes, a
//! banner, would be taken for the old content and skipped). Both are told by the bytes just
//! before a checkpoint's offset: each checkpoint carries their [`TailHash`].
//!
//! A `Known` is the content of one file generation: its head, the checkpoint reached in it,
//! and a few `Anchor`s (recent read positions and checkpoints with their tail hashes; one
//! is taken after every read, so they are there whether or not checkpoints are asked for, as
//! in `dingtail tail`). A new file (another inode)
//! whose head is that content's head and whose bytes before an anchor hash the same is a copy
//! of that content: it continues at the checkpoint (or at its own end when it is shorter), so
//! neither the part read nor the part a copy carried over the truncation (the "copy window")
//! is lost or repeated. A file whose head matches but whose bytes before the anchor do not is
//! new content. Several anchors, not one, because a copy may be shorter than the checkpoint
//! reached in the original after the copy was taken (lines written between logrotate's copy and
//! its truncate, read from the original).
//!
//! An anchor at or inside the first [`HEAD_BYTES`] only repeats the head, so it proves nothing
//! and is not used: a file shorter than that is recognised as a copy only of a followed file
//! whose first bytes are kept in memory, and only under a rotation's name (`named_after`: many
//! services start their logs with the same line). What is compared is never a whole file: the
//! head, and at most [`TAIL_BYTES`] before one offset.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::tail::checkpoint::Checkpoint;
use crate::tail::fingerprint::{Fingerprint, HEAD_BYTES, TailHash};
use crate::tail::resume::{RESUME_KEEP, RESUME_MAX};

#[cfg(doc)]
use crate::tail::fingerprint::TAIL_BYTES;

/// How many recent read positions and checkpoints (with their tail hashes) a followed file
/// keeps.
pub(super) const ANCHORS: usize = 8;

/// A checkpoint offset and the hash of the bytes before it, as they were read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Anchor {
    pub(super) offset: u64,
    pub(super) tail: TailHash,
}

/// Recent anchors of one file generation, oldest first, at most [`ANCHORS`].
#[derive(Clone, Debug, Default)]
pub(super) struct Anchors(VecDeque<Anchor>);

impl Anchors {
    /// Records an anchor (a read position or a checkpoint that moved), newest last; one per
    /// offset.
    pub(super) fn push(&mut self, anchor: Anchor) {
        self.0.retain(|known| known.offset != anchor.offset);
        self.0.push_back(anchor);
        while self.0.len() > ANCHORS {
            self.0.pop_front();
        }
    }

    /// The tail hash recorded for `offset`, if an anchor is at `offset`.
    pub(super) fn at(&self, offset: u64) -> Option<TailHash> {
        self.0
            .iter()
            .rev()
            .find(|anchor| anchor.offset == offset)
            .map(|anchor| anchor.tail)
    }

    /// Forgets them all (the file starts over with new content).
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    /// The anchors, oldest first.
    pub(super) fn to_vec(&self) -> Vec<Anchor> {
        self.0.iter().copied().collect()
    }
}

/// What is known of the content of one file generation that was read.
#[derive(Clone, Debug)]
pub(super) struct Known {
    /// Its head (device and inode are those of the file it was read in).
    pub(super) fingerprint: Fingerprint,
    /// The head bytes themselves, when they were kept (followed files).
    pub(super) head: Option<Vec<u8>>,
    /// Recent checkpoints, oldest first.
    pub(super) anchors: Vec<Anchor>,
    /// How far it was read.
    pub(super) checkpoint: u64,
    /// Where it was last seen.
    pub(super) path: PathBuf,
    /// When it was last known.
    pub(super) since: Instant,
}

impl Known {
    /// The content a stored checkpoint describes.
    pub(super) fn of_checkpoint(checkpoint: &Checkpoint, now: Instant) -> Known {
        Known {
            fingerprint: checkpoint.fingerprint,
            head: None,
            anchors: checkpoint
                .tail
                .map(|tail| Anchor {
                    offset: checkpoint.offset,
                    tail,
                })
                .into_iter()
                .collect(),
            checkpoint: checkpoint.offset,
            path: checkpoint.path.clone(),
            since: now,
        }
    }

    /// True when a file of `len` bytes whose first bytes are `head` (all of them when it is
    /// shorter than [`HEAD_BYTES`]) starts like this content.
    pub(super) fn head_related(&self, head: &[u8], len: u64) -> bool {
        head_related(self.head.as_deref(), &self.fingerprint, head, len)
    }

    /// Where `file` (at `path`, `len` bytes, starting with `head`) continues if it is a copy of
    /// this content: the checkpoint, or its own end when it is shorter. `None`: not a copy.
    ///
    /// # Errors
    /// `file` cannot be read.
    pub(super) fn copy_offset(
        &self,
        file: &File,
        path: &Path,
        head: &[u8],
        len: u64,
    ) -> io::Result<Option<u64>> {
        if !self.head_related(head, len) {
            return Ok(None);
        }
        // A file no longer than a head kept in memory was compared whole; so short a content
        // is only taken for a copy under a rotation's name.
        if len <= HEAD_BYTES && self.head.is_some() {
            let copy = named_after(path, &self.path);
            return Ok(copy.then_some(self.checkpoint.min(len)));
        }
        match anchor_for(&self.anchors, len) {
            Some(anchor) if anchor.tail.matches_at(file, anchor.offset)? => {
                Ok(Some(self.checkpoint.min(len)))
            }
            _ => Ok(None),
        }
    }
}

/// True when a file of `len` bytes starting with `head` starts like the content whose head is
/// `known_head` (bytes, when kept) or `fingerprint` (its hash): the same full head, or, for a
/// file shorter than a head, the first bytes of a head kept in memory.
pub(super) fn head_related(
    known_head: Option<&[u8]>,
    fingerprint: &Fingerprint,
    head: &[u8],
    len: u64,
) -> bool {
    match known_head {
        Some(known) if len >= HEAD_BYTES => known == head,
        Some(known) => known.len() as u64 >= len && known.starts_with(head),
        None => fingerprint.is_complete() && len >= HEAD_BYTES && fingerprint.head_matches(head),
    }
}

/// True when `copy` is named like a rotation of `original`: in the same directory, its name
/// the original's plus a suffix (`app.log.1`, `app.log-20261125`, `app.log.bak`). A few
/// identical bytes (many services start their logs alike) do not make a copy; a rotation's
/// name with them does. Content alone decides past the head (an anchor further in).
pub(super) fn named_after(copy: &Path, original: &Path) -> bool {
    let (Some(name), Some(original_name)) = (copy.file_name(), original.file_name()) else {
        return false;
    };
    let (name, original_name) = (name.as_bytes(), original_name.as_bytes());
    copy.parent() == original.parent()
        && name.len() > original_name.len()
        && name.starts_with(original_name)
}

/// The anchor that decides whether a file of `len` bytes is a copy: the one with the largest
/// offset within the file and past the head. Older anchors are not tried: a file that differs
/// from the content there is not a copy of it.
pub(super) fn anchor_for(anchors: &[Anchor], len: u64) -> Option<&Anchor> {
    anchors
        .iter()
        .filter(|anchor| anchor.offset > HEAD_BYTES && anchor.offset <= len)
        .max_by_key(|anchor| anchor.offset)
}

/// Content no longer in the file it was read in: generations of followed files that were
/// truncated or rewritten, and stored checkpoints whose inode now holds other content. Kept in
/// memory only (a copy shows up within moments, or is looked for at start), bounded like the
/// resume list.
#[derive(Debug, Default)]
pub(super) struct KnownList {
    entries: Vec<Known>,
}

impl KnownList {
    /// Keeps `known`, newest last.
    pub(super) fn push(&mut self, known: Known) {
        let now = known.since;
        self.entries.push(known);
        self.entries
            .retain(|k| now.saturating_duration_since(k.since) < RESUME_KEEP);
        if self.entries.len() > RESUME_MAX {
            let excess = self.entries.len() - RESUME_MAX;
            self.entries.drain(..excess);
        }
    }

    /// The entries, newest first.
    pub(super) fn newest_first(&self) -> impl Iterator<Item = &Known> {
        self.entries.iter().rev()
    }

    /// Forgets the entries older than [`RESUME_KEEP`].
    pub(super) fn expire(&mut self, now: Instant) {
        self.entries
            .retain(|k| now.saturating_duration_since(k.since) < RESUME_KEEP);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Instant;

    use crate::tail::fingerprint::{Fingerprint, TailHash};
    use crate::tail::identity::{Anchor, Anchors, Known, anchor_for};

    fn content(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| format!("line {i:05}\n").into_bytes())
            .collect()
    }

    fn file_with(bytes: &[u8]) -> (tempfile::NamedTempFile, std::fs::File) {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(bytes).unwrap();
        let file = std::fs::File::open(tmp.path()).unwrap();
        (tmp, file)
    }

    /// What a followed file that read `bytes` up to `checkpoint` would know, hashes only.
    fn known(bytes: &[u8], checkpoint: u64, anchors: &[u64]) -> Known {
        let (_tmp, file) = file_with(bytes);
        let (fingerprint, _head) = Fingerprint::read(&file, &file.metadata().unwrap()).unwrap();
        Known {
            fingerprint,
            head: None,
            anchors: anchors
                .iter()
                .map(|&offset| Anchor {
                    offset,
                    tail: TailHash::at(&file, offset).unwrap().unwrap(),
                })
                .collect(),
            checkpoint,
            path: "/var/log/app.log".into(),
            since: Instant::now(),
        }
    }

    fn copy_offset(known: &Known, bytes: &[u8]) -> Option<u64> {
        let (_tmp, file) = file_with(bytes);
        let (_, head) = Fingerprint::read(&file, &file.metadata().unwrap()).unwrap();
        let path = std::path::Path::new("/var/log/app.log.1");
        known
            .copy_offset(&file, path, &head, bytes.len() as u64)
            .unwrap()
    }

    #[test]
    fn a_copy_continues_at_the_checkpoint_and_new_content_is_new() {
        let original = content(100);
        let known = known(&original, 600, &[600]);
        // The copy holds more than was read: it continues at the checkpoint.
        assert_eq!(copy_offset(&known, &original), Some(600));
        // Same head (the first 256 bytes), other bytes before the checkpoint: new content.
        let mut lookalike = original[..300].to_vec();
        lookalike.extend(b"something else entirely, written after the banner\n".repeat(10));
        assert_eq!(copy_offset(&known, &lookalike), None);
        // Another head altogether.
        assert_eq!(copy_offset(&known, &content(100)[11..]), None);
        // Shorter than the checkpoint, and only that anchor: cannot be told, so new.
        assert_eq!(copy_offset(&known, &original[..500]), None);
    }

    #[test]
    fn a_copy_shorter_than_the_checkpoint_is_matched_by_an_older_anchor() {
        let original = content(100);
        // Read up to 1000; anchors at 400, 700 and 1000.
        let known = known(&original, 1000, &[400, 700, 1000]);
        // The copy stopped at 800 (taken before the last read): matched at 700, it is read
        // content all through.
        assert_eq!(copy_offset(&known, &original[..800]), Some(800));
        // Diverging after 700 but before its end: the newest anchor within it decides.
        let mut diverged = original[..650].to_vec();
        diverged.extend(vec![b'x'; 150]);
        assert_eq!(copy_offset(&known, &diverged), None);
    }

    #[test]
    fn anchors_inside_the_head_prove_nothing() {
        let anchors = [
            Anchor {
                offset: 100,
                tail: TailHash { len: 100, hash: 1 },
            },
            Anchor {
                offset: 256,
                tail: TailHash { len: 256, hash: 2 },
            },
        ];
        assert_eq!(anchor_for(&anchors, 10_000), None);
        let mut ring = Anchors::default();
        for offset in 0..20 {
            ring.push(Anchor {
                offset: offset * 300,
                tail: TailHash { len: 256, hash: 0 },
            });
        }
        let kept = ring.to_vec();
        assert_eq!(kept.len(), super::ANCHORS);
        assert_eq!(kept.last().map(|a| a.offset), Some(19 * 300));
        assert_eq!(ring.at(19 * 300), Some(TailHash { len: 256, hash: 0 }));
        assert_eq!(
            ring.at(12 * 300),
            Some(TailHash { len: 256, hash: 0 }),
            "every kept anchor answers"
        );
        assert_eq!(ring.at(11 * 300), None, "the oldest were let go");
        // A read position that is then a checkpoint is kept once, as the newest.
        ring.push(Anchor {
            offset: 15 * 300,
            tail: TailHash { len: 256, hash: 0 },
        });
        let offsets: Vec<u64> = ring.to_vec().iter().map(|a| a.offset / 300).collect();
        assert_eq!(offsets, [12, 13, 14, 16, 17, 18, 19, 15]);
    }

    #[test]
    fn a_short_file_is_a_copy_only_of_a_head_kept_in_memory() {
        let original = content(10);
        let mut with_head = known(&original, 110, &[110]);
        // Hashes only: a file shorter than a head cannot be told.
        assert_eq!(copy_offset(&with_head, &original[..55]), None);
        with_head.head = Some(original[..110].to_vec());
        assert_eq!(copy_offset(&with_head, &original[..55]), Some(55));
        assert_eq!(copy_offset(&with_head, &original[..110]), Some(110));
        assert_eq!(copy_offset(&with_head, b"line 00000\nother\n"), None);
        // The same few bytes under another name are another file's.
        let (_tmp, file) = file_with(&original[..55]);
        let (_, head) = Fingerprint::read(&file, &file.metadata().unwrap()).unwrap();
        let other = std::path::Path::new("/var/log/other.log");
        assert_eq!(
            with_head.copy_offset(&file, other, &head, 55).unwrap(),
            None
        );
    }

    #[test]
    fn rotations_are_named_after_their_original() {
        use std::path::Path;
        let original = Path::new("/var/log/app.log");
        for copy in [
            "/var/log/app.log.1",
            "/var/log/app.log-20261125",
            "/var/log/app.log.bak",
        ] {
            assert!(super::named_after(Path::new(copy), original), "{copy}");
        }
        for other in [
            "/var/log/app.log",
            "/var/log/app.lo",
            "/var/log/other.log",
            "/tmp/app.log.1",
        ] {
            assert!(!super::named_after(Path::new(other), original), "{other}");
        }
    }
}
