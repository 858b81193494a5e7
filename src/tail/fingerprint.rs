//! `Fingerprint`: who a file is, independent of its path. A rename keeps it; a new file at the
//! old path (rotation) gets a new one; a reused inode number is told apart by its first bytes.
//!
//! Device and inode alone are not enough: after a file is deleted, the file system hands its
//! inode number to the next new file, and a checkpoint would then resume a stranger at the old
//! offset. The hash of the first [`HEAD_BYTES`] bytes alone is not enough either: log files that
//! start with the same banner would collide. Together (as Vector and Filebeat do) they are.
//!
//! Files shorter than the window: the fingerprint remembers how many bytes it hashed
//! (`head_len`). Two fingerprints are the same file when device and inode agree and the other
//! file's first `head_len` bytes hash to `head_hash`; the tailer then *upgrades* the fingerprint
//! (hashes a longer head) as the file grows, until the window is full. An empty file is known by
//! device and inode alone, which is harmless: its checkpoint offset is 0. In general a checkpoint
//! offset never exceeds the length of the head its fingerprint hashed unless the head is full
//! (the tailer upgrades before it reads), so a stranger sharing inode and head could only make
//! the tailer skip bytes identical to ones already read.
//!
//! What a fingerprint cannot tell, content tells: a [`TailHash`] (the bytes just before an offset)
//! goes with every checkpoint, so that a file rewritten with the same first bytes, or a copy of a
//! file under another inode, is recognised (`crate::tail::identity`).

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use sha2::{Digest, Sha256};

/// How many leading bytes are hashed once a file is that long.
pub const HEAD_BYTES: u64 = 256;
/// How many bytes before a checkpoint's offset its [`TailHash`] covers (fewer near the start).
pub const TAIL_BYTES: u64 = 256;

/// A hash of the bytes just before an offset: `len` bytes (at most [`TAIL_BYTES`], fewer when
/// the offset is smaller) ending at the offset. With the head hash it says whether a file's
/// content up to a checkpoint is the content that was read (a copy, a same-banner rewrite).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TailHash {
    /// How many bytes it covers: `min(offset, TAIL_BYTES)` when it was taken.
    pub len: u64,
    /// The first 8 bytes of SHA-256 over those bytes.
    pub hash: u64,
}

impl TailHash {
    /// The tail hash of `bytes`, the bytes just before some offset.
    pub fn of(bytes: &[u8]) -> TailHash {
        TailHash {
            len: bytes.len() as u64,
            hash: hash(bytes),
        }
    }

    /// Reads the bytes before `offset` in `file` and hashes them; `None` when the file is
    /// shorter than `offset`.
    ///
    /// # Errors
    /// The bytes cannot be read.
    pub fn at(file: &File, offset: u64) -> io::Result<Option<TailHash>> {
        Ok(bytes_before(file, offset)?.map(|bytes| TailHash::of(&bytes)))
    }

    /// True when the `len` bytes of `file` before `offset` hash to this.
    ///
    /// # Errors
    /// The bytes cannot be read.
    pub fn matches_at(&self, file: &File, offset: u64) -> io::Result<bool> {
        if self.len > offset {
            return Ok(false);
        }
        let bytes = read_range(file, offset - self.len, self.len)?;
        Ok(bytes.len() as u64 == self.len && hash(&bytes) == self.hash)
    }
}

/// The `min(offset, TAIL_BYTES)` bytes of `file` before `offset`, or `None` when the file ends
/// before `offset`.
///
/// # Errors
/// The bytes cannot be read.
pub fn bytes_before(file: &File, offset: u64) -> io::Result<Option<Vec<u8>>> {
    let len = offset.min(TAIL_BYTES);
    let bytes = read_range(file, offset - len, len)?;
    Ok((bytes.len() as u64 == len).then_some(bytes))
}

/// A file's identity: device, inode and a hash of its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// The device the file lives on.
    pub dev: u64,
    /// The inode number.
    pub ino: u64,
    /// How many leading bytes `head_hash` covers (at most [`HEAD_BYTES`]).
    pub head_len: u64,
    /// The first 8 bytes of SHA-256 over the first `head_len` bytes.
    pub head_hash: u64,
}

impl Fingerprint {
    /// The fingerprint of the open `file` (whose metadata is `meta`), hashing as much of the
    /// window as the file holds.
    ///
    /// # Errors
    /// The head cannot be read.
    pub fn of(file: &File, meta: &Metadata) -> io::Result<Fingerprint> {
        Ok(Fingerprint::read(file, meta)?.0)
    }

    /// Like [`Fingerprint::of`], and the head bytes it hashed.
    ///
    /// # Errors
    /// The head cannot be read.
    pub fn read(file: &File, meta: &Metadata) -> io::Result<(Fingerprint, Vec<u8>)> {
        let head = read_range(file, 0, meta.len().min(HEAD_BYTES))?;
        let fingerprint = Fingerprint {
            dev: meta.dev(),
            ino: meta.ino(),
            head_len: head.len() as u64,
            head_hash: hash(&head),
        };
        Ok((fingerprint, head))
    }

    /// True when `head` (a file's first bytes, at least `head_len` of them) starts with the
    /// bytes this fingerprint hashed, whatever device and inode the file has.
    pub fn head_matches(&self, head: &[u8]) -> bool {
        head.get(..usize::try_from(self.head_len).unwrap_or(usize::MAX))
            .is_some_and(|bytes| hash(bytes) == self.head_hash)
    }

    /// True when `file` (metadata `meta`) is the file this fingerprint was taken of: same device
    /// and inode, and its first `head_len` bytes hash the same.
    ///
    /// # Errors
    /// The head cannot be read.
    pub fn matches(&self, file: &File, meta: &Metadata) -> io::Result<bool> {
        if meta.dev() != self.dev || meta.ino() != self.ino || meta.len() < self.head_len {
            return Ok(false);
        }
        let head = read_range(file, 0, self.head_len)?;
        Ok(head.len() as u64 == self.head_len && hash(&head) == self.head_hash)
    }

    /// True when the window is full: the fingerprint will not change while the file lives.
    pub fn is_complete(&self) -> bool {
        self.head_len >= HEAD_BYTES
    }
}

/// Up to `len` bytes of `file` from `start` (fewer where the file ends), read with `pread`: the
/// file's position is not moved.
///
/// # Errors
/// The bytes cannot be read.
pub fn read_range(file: &File, start: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    read_range_into(file, start, len, &mut head)?;
    Ok(head)
}

/// Like [`read_range`], into `buf` (whose allocation is reused: the check after every read of
/// a followed file, issue 18).
///
/// # Errors
/// The bytes cannot be read.
pub fn read_range_into(file: &File, start: u64, len: u64, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    buf.resize(usize::try_from(len).unwrap_or(0), 0);
    let mut filled = 0;
    while filled < buf.len() {
        let rest = buf.get_mut(filled..).unwrap_or_default();
        match file.read_at(rest, start + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    buf.truncate(filled);
    Ok(())
}

/// The first 8 bytes of SHA-256 over `bytes`, as the fingerprint and tail hashes use it.
pub fn hash(bytes: &[u8]) -> u64 {
    let digest = Sha256::digest(bytes);
    let mut first = [0u8; 8];
    for (dst, src) in first.iter_mut().zip(digest.iter()) {
        *dst = *src;
    }
    u64::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    use std::fs::{self, File, OpenOptions};
    use std::io::Write;

    use crate::tail::fingerprint::{Fingerprint, HEAD_BYTES};

    fn of(path: &std::path::Path) -> (Fingerprint, File) {
        let file = File::open(path).unwrap();
        let meta = file.metadata().unwrap();
        (Fingerprint::of(&file, &meta).unwrap(), file)
    }

    #[test]
    fn survives_rename_and_grows_until_the_window_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        fs::write(&path, "short\n").unwrap();
        let (short, _) = of(&path);
        assert_eq!(short.head_len, 6);
        assert!(!short.is_complete());

        let moved = dir.path().join("a.log.1");
        fs::rename(&path, &moved).unwrap();
        let mut append = OpenOptions::new().append(true).open(&moved).unwrap();
        append.write_all(&[b'x'; 400]).unwrap();
        let (grown, file) = of(&moved);
        assert!(grown.is_complete());
        assert_eq!(grown.head_len, HEAD_BYTES);
        // The short fingerprint still recognises the grown, renamed file.
        assert!(short.matches(&file, &file.metadata().unwrap()).unwrap());
        assert!(grown.matches(&file, &file.metadata().unwrap()).unwrap());
    }

    #[test]
    fn a_rewritten_head_or_another_inode_is_another_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        fs::write(&path, "first content\n").unwrap();
        let (before, _) = of(&path);
        // Same inode, new content (copytruncate followed by new writes).
        fs::write(&path, "other content\n").unwrap();
        let (after, file) = of(&path);
        assert_eq!((before.dev, before.ino), (after.dev, after.ino));
        assert!(!before.matches(&file, &file.metadata().unwrap()).unwrap());

        // Same content, another inode.
        let twin = dir.path().join("b.log");
        fs::write(&twin, "other content\n").unwrap();
        let (_, twin_file) = of(&twin);
        assert!(
            !after
                .matches(&twin_file, &twin_file.metadata().unwrap())
                .unwrap()
        );
    }
}
