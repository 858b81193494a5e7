//! `Checkpoint`: how far into a file the daemon may claim to have read, keyed by the file's
//! [`Fingerprint`] rather than its path; and [`CheckpointLedger`], which turns the tailer's
//! complete view into the few rows that changed.
//!
//! The tailer reports one per followed file through `Tailer::checkpoints`; the daemon stores them
//! in the same transaction as the consequences of the lines before them, and hands the stored
//! ones back to `Tailer::start` after a restart. A checkpoint's offset is never past a line that
//! `Tailer::next_batch` has not returned, nor past the start of a multi-line event still being
//! joined.
//!
//! Storing: `state::save_checkpoints` replaces the whole table (one row per file on every batch);
//! with thousands of followed files, the daemon instead keeps a ledger of what was last
//! committed and stores only [`CheckpointChanges`] (`state::save_checkpoint_changes`). The ledger
//! is pure and learns of a commit only through [`CheckpointLedger::committed`], so a failed
//! transaction changes nothing and the next diff holds everything not stored yet. It is keyed
//! like the table, by device and inode.
//!
//! A checkpoint carries a [`TailHash`] of the bytes before its offset, so that identity is content
//! as well as inode: the tailer computes it only when a file's checkpoint moved (one `pread` of
//! at most 256 bytes, often none: the bytes just read are at hand), so an unchanged checkpoint
//! costs nothing and the ledger still writes only the rows that moved.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::tail::fingerprint::{Fingerprint, TailHash};

/// A durable position in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Which file (device, inode and head hash; survives renames).
    pub fingerprint: Fingerprint,
    /// The path the file was last seen at (for humans; identity is the fingerprint).
    pub path: PathBuf,
    /// Everything before this byte offset has been handed out.
    pub offset: u64,
    /// The hash of the bytes just before `offset`, as they were read: a file whose head matches
    /// but whose bytes there differ is new content, and a new file (another inode) whose head
    /// and bytes there match is a copy that continues at `offset`. `None`: not known (a row
    /// from before schema version 5, or a file that could not be read when it was taken).
    pub tail: Option<TailHash>,
}

impl Checkpoint {
    /// The key of its stored row: `(dev, ino)`.
    pub fn key(&self) -> (u64, u64) {
        (self.fingerprint.dev, self.fingerprint.ino)
    }
}

/// The rows to write so that the stored checkpoints equal a complete view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointChanges {
    /// Rows to insert or replace: files new since the last commit, or whose offset, path or
    /// fingerprint moved. At most one per `(dev, ino)`.
    pub upserts: Vec<Checkpoint>,
    /// `(dev, ino)` of rows to delete: files no longer in the view. Sorted.
    pub removals: Vec<(u64, u64)>,
}

impl CheckpointChanges {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.removals.is_empty()
    }
}

/// What the checkpoint table holds as far as this process knows: seeded with what was loaded
/// at start ([`CheckpointLedger::from_stored`]), moved only by [`CheckpointLedger::committed`].
#[derive(Clone, Debug, Default)]
pub struct CheckpointLedger {
    stored: HashMap<(u64, u64), Checkpoint>,
}

impl CheckpointLedger {
    /// A ledger of a table holding `stored` (what `Store::load_checkpoints` returned).
    pub fn from_stored(stored: &[Checkpoint]) -> CheckpointLedger {
        CheckpointLedger {
            stored: stored.iter().map(|cp| (cp.key(), cp.clone())).collect(),
        }
    }

    /// The rows to write so that the table holds exactly `current` (the tailer's complete view,
    /// `Tailer::checkpoints`), relative to the last commit. When `current` holds a key twice,
    /// the later entry wins, as it does in `save_checkpoints`.
    pub fn changes(&self, current: &[Checkpoint]) -> CheckpointChanges {
        let mut last: HashMap<(u64, u64), usize> = HashMap::with_capacity(current.len());
        for (index, cp) in current.iter().enumerate() {
            last.insert(cp.key(), index);
        }
        let upserts = current
            .iter()
            .enumerate()
            .filter(|(index, cp)| {
                last.get(&cp.key()) == Some(index) && self.stored.get(&cp.key()) != Some(*cp)
            })
            .map(|(_, cp)| cp.clone())
            .collect();
        let mut removals: Vec<(u64, u64)> = self
            .stored
            .keys()
            .filter(|key| !last.contains_key(key))
            .copied()
            .collect();
        removals.sort_unstable();
        CheckpointChanges { upserts, removals }
    }

    /// Records that `changes` (from [`CheckpointLedger::changes`]) were committed.
    pub fn committed(&mut self, changes: &CheckpointChanges) {
        for key in &changes.removals {
            self.stored.remove(key);
        }
        for cp in &changes.upserts {
            self.stored.insert(cp.key(), cp.clone());
        }
    }

    /// How many rows the table holds.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.stored.len()
    }

    /// True when the table is empty.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.stored.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::tail::checkpoint::{Checkpoint, CheckpointChanges, CheckpointLedger};
    use crate::tail::fingerprint::Fingerprint;

    fn checkpoint(ino: u64, offset: u64) -> Checkpoint {
        Checkpoint {
            fingerprint: Fingerprint {
                dev: 7,
                ino,
                head_len: 256,
                head_hash: ino * 31,
            },
            path: PathBuf::from(format!("/var/log/{ino}.log")),
            offset,
            tail: None,
        }
    }

    #[test]
    fn only_new_and_moved_checkpoints_are_written() {
        let mut ledger = CheckpointLedger::from_stored(&[checkpoint(1, 10), checkpoint(2, 20)]);
        let mut renamed = checkpoint(2, 20);
        renamed.path = PathBuf::from("/var/log/2.log.1");
        let current = [checkpoint(1, 10), renamed.clone(), checkpoint(3, 0)];
        let changes = ledger.changes(&current);
        assert_eq!(
            changes,
            CheckpointChanges {
                upserts: vec![renamed, checkpoint(3, 0)],
                removals: vec![],
            }
        );
        ledger.committed(&changes);
        assert!(ledger.changes(&current).is_empty(), "nothing moved since");
        let moved = [checkpoint(1, 11), current[1].clone(), current[2].clone()];
        assert_eq!(ledger.changes(&moved).upserts, [checkpoint(1, 11)]);
    }

    #[test]
    fn a_file_no_longer_in_the_view_is_removed() {
        let mut ledger = CheckpointLedger::from_stored(&[checkpoint(1, 10), checkpoint(2, 20)]);
        let changes = ledger.changes(&[checkpoint(2, 20)]);
        assert_eq!(changes.upserts, []);
        assert_eq!(changes.removals, [(7, 1)]);
        ledger.committed(&changes);
        assert_eq!(ledger.len(), 1);
        assert!(ledger.changes(&[checkpoint(2, 20)]).is_empty());
        // It comes back: written again.
        assert_eq!(
            ledger
                .changes(&[checkpoint(1, 10), checkpoint(2, 20)])
                .upserts,
            [checkpoint(1, 10)]
        );
    }

    #[test]
    fn changes_after_a_failed_commit_accumulate() {
        let mut ledger = CheckpointLedger::default();
        let first = ledger.changes(&[checkpoint(1, 10), checkpoint(2, 20)]);
        ledger.committed(&first);
        // This commit fails: `committed` is not called.
        let failed = ledger.changes(&[checkpoint(1, 15), checkpoint(2, 20)]);
        assert_eq!(failed.upserts, [checkpoint(1, 15)]);
        // The next view moved file 2 and dropped nothing; file 1's move is still due.
        let next = ledger.changes(&[checkpoint(1, 16), checkpoint(2, 25), checkpoint(3, 0)]);
        assert_eq!(
            next.upserts,
            [checkpoint(1, 16), checkpoint(2, 25), checkpoint(3, 0)]
        );
        // Another failure, and file 2 is gone in the view after it.
        let last = ledger.changes(&[checkpoint(1, 17), checkpoint(3, 5)]);
        assert_eq!(last.upserts, [checkpoint(1, 17), checkpoint(3, 5)]);
        assert_eq!(last.removals, [(7, 2)]);
        ledger.committed(&last);
        assert!(
            ledger
                .changes(&[checkpoint(1, 17), checkpoint(3, 5)])
                .is_empty()
        );
    }

    #[test]
    fn a_key_seen_twice_keeps_the_later_entry_and_a_new_fingerprint_replaces_the_row() {
        let ledger = CheckpointLedger::from_stored(&[checkpoint(1, 10)]);
        let mut reused = checkpoint(1, 0);
        reused.fingerprint.head_hash = 99;
        let changes = ledger.changes(&[checkpoint(1, 10), reused.clone()]);
        assert_eq!(changes.upserts, [reused]);
        assert_eq!(changes.removals, []);
    }
}
