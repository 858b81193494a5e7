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

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use sha2::{Digest, Sha256};

/// How many leading bytes are hashed once a file is that long.
pub const HEAD_BYTES: u64 = 256;

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
        let head_len = meta.len().min(HEAD_BYTES);
        let head = read_head(file, head_len)?;
        Ok(Fingerprint {
            dev: meta.dev(),
            ino: meta.ino(),
            head_len: head.len() as u64,
            head_hash: hash(&head),
        })
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
        let head = read_head(file, self.head_len)?;
        Ok(head.len() as u64 == self.head_len && hash(&head) == self.head_hash)
    }

    /// True when the window is full: the fingerprint will not change while the file lives.
    pub fn is_complete(&self) -> bool {
        self.head_len >= HEAD_BYTES
    }
}

fn read_head(file: &File, len: u64) -> io::Result<Vec<u8>> {
    let mut head = vec![0; usize::try_from(len).unwrap_or(0)];
    let mut filled = 0;
    while filled < head.len() {
        let rest = head.get_mut(filled..).unwrap_or_default();
        match file.read_at(rest, filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    head.truncate(filled);
    Ok(head)
}

fn hash(bytes: &[u8]) -> u64 {
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
