//! Tailing: every line appended to a watched file reaches the matcher once, in order, through
//! rotation, restarts and bad input (issue 3).
//!
//! The nouns, after Vector's file source: [`discover`] resolves globs into files, [`watch`] turns
//! directory events into wake-ups, [`fingerprint`] says who a file is, [`identity`] what content
//! was read (so that copies and look-alikes are told by their bytes), [`copies`] where a new file
//! starts, [`followed`] is one file (its bytes become events through `intake::EventReader`, the
//! same reader `dingtail test` uses), [`checkpoint`] is how far a file has been handed out,
//! [`resume`] keeps the checkpoints of files not followed now, [`recover`] finds files rotated
//! away while dingtail was down, [`park`] keeps within the descriptor budget, [`sniff`] skips what
//! is not text, [`history`] remembers which globs have had a scan, and [`clock`] is where time
//! comes from. [`Tailer`] ([`tailer`], [`table`]) owns the table of followed files (keyed by an
//! id, indexed by device and inode) and runs the loop: rescan, read in bounded chunks, hand out a
//! batch, wait.
//!
//! How a file is followed:
//! - A rescan (at start, on a directory event, on overflow, and every ten poll intervals as a
//!   safety net) matches the globs. Compressed names are skipped. A file seen for the first time
//!   is opened and fingerprinted (and skipped if its first bytes are compressed or binary); a
//!   stored checkpoint with the same fingerprint and the same bytes before its offset gives its
//!   offset; a copy of content already read continues where that content was read to; a
//!   possible copy still being made waits ([`copies`]); otherwise the file is read from its
//!   beginning (from its end only when `start_at: end` applies: files seen by the first start of
//!   a state dir, or by the first scan of an input added by a reload).
//! - Each turn reads at most [`FILE_CHUNK`] bytes and [`FILE_LINES`] lines per file, round
//!   robin (resuming after the file served last), until the batch holds
//!   [`MAX_BATCH_LINES`] lines or [`MAX_BATCH_BYTES`] bytes, so a file written at full speed
//!   cannot starve the others.
//! - A file whose size drops below the read position (copytruncate), or whose bytes before the
//!   read position changed (a rewrite, even one starting with the same banner), is read again
//!   from 0.
//! - A file no longer matched by the globs (renamed away by logrotate, or deleted) keeps its
//!   descriptor and is drained: it is read on every wake-up and at least every poll interval
//!   until it has been quiet for [`drain_grace`], then its last partial line is handed out and
//!   it is closed. A file still followed hands out an unterminated last line once it has been
//!   quiet for its input's `partial_timeout`. Lines an application writes to the old file after the rename still arrive.
//!   Files rotated out of the globs while dingtail was down are drained the same way.
//! - Past the descriptor budget, idle files are parked (closed, everything else kept) and
//!   reopened when they grow ([`park`]).
//! - Only a path known not to exist is gone. A directory that cannot be listed, or an entry that
//!   cannot be stat-ed, for any other reason (EACCES, EMFILE, EIO, ESTALE on NFS) is *unknown*:
//!   the files followed under it are kept as they are, the error is reported once, and the globs
//!   are rescanned every poll interval until it clears. Before a drained file is closed, its
//!   path is looked at once more: while it still leads to the same inode (and still matches),
//!   the file is kept.
//! - A closed file's checkpoint (unless the file was deleted) stays in the resume list (with the
//!   stored checkpoints not matched yet), at most [`RESUME_MAX`] entries, each for
//!   [`RESUME_KEEP`] after its file was last known, so that a file that comes back (renamed back,
//!   an NFS mount that recovers) resumes at its offset instead of being read again from 0.
//!
//! The checkpoint rule: a file's checkpoint offset is the end of the last line (or joined
//! event) that `next_batch` (or `reconfigure`, or `shutdown`) has *returned*, never further; a
//! line still held (by the decoder or a `Joiner`, or an unterminated last line), or read but not
//! yet returned, keeps the checkpoint before it. Each checkpoint carries the hash of the bytes
//! before its offset, computed when the offset moved. `next_batch` is cancel-safe: its
//! only await is the wait for a wake-up, and reading happens after it, synchronously.

pub mod checkpoint;
pub mod clock;
pub mod copies;
pub mod discover;
pub mod fingerprint;
pub mod followed;
pub mod history;
pub mod identity;
#[cfg(target_os = "linux")]
pub(crate) mod inotify;
#[cfg(not(target_os = "linux"))]
pub(crate) mod notify_watch;
pub mod park;
pub mod recover;
pub mod resume;
pub mod sniff;
pub mod table;
pub mod tailer;
pub mod watch;

pub use crate::tail::history::GlobHistory;
pub use crate::tail::resume::{RESUME_KEEP, RESUME_MAX};
pub use crate::tail::tailer::{
    FILE_CHUNK, FILE_LINES, MAX_BATCH_BYTES, MAX_BATCH_LINES, TailError, TailStats, Tailer,
    TailerConfig, drain_grace,
};

#[cfg(test)]
mod tests;
