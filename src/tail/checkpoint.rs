//! `Checkpoint`: how far into a file the daemon may claim to have read, keyed by the file's
//! [`Fingerprint`] rather than its path.
//!
//! The tailer reports one per followed file through `Tailer::checkpoints`; the daemon stores them
//! (`state::save_checkpoints`) in the same transaction as the consequences of the lines before
//! them, and hands the stored ones back to `Tailer::start` after a restart. A checkpoint's offset
//! is never past a line that `Tailer::next_batch` has not returned, nor past the start of a
//! multi-line event still being joined.

use std::path::PathBuf;

use crate::tail::fingerprint::Fingerprint;

/// A durable position in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Which file (device, inode and head hash; survives renames).
    pub fingerprint: Fingerprint,
    /// The path the file was last seen at (for humans; identity is the fingerprint).
    pub path: PathBuf,
    /// Everything before this byte offset has been handed out.
    pub offset: u64,
}
