//! Which commits may wait (issue 18). A daemon following a busy file wakes up about as often as
//! the file is written, and a SQLite transaction per wake-up (write-ahead log appends, locks) was
//! most of its cost, even when the lines matched nothing and only a checkpoint moved.
//!
//! The rule: lines that matched something are committed at once, with the checkpoints that pass
//! them (a match is durable before its line counts as read, and a stored match's checkpoint is
//! stored with it). Checkpoints that moved only over lines that matched nothing may wait for the
//! next commit, at the latest the main loop's next tick (a second): a crash before then makes the
//! daemon read those lines again, and they match nothing again, so no alert is lost or repeated.
//! Every commit writes every checkpoint that moved since the last one, so a waiting checkpoint
//! never passes a match that is not stored.
//!
//! Kept out of the way of that rule: a commit that failed (the store is degraded and retries at
//! once), robots whose batches changed, and globs scanned for the first time.

/// What a batch of lines from the tailer changed, as far as committing is concerned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AfterLines {
    /// How many (line, rule) matches the batch had.
    pub(crate) matched: u64,
    /// Some robot's gathering batch changed since the last successful commit.
    pub(crate) dirty: bool,
    /// The scanned globs differ from the stored ones.
    pub(crate) globs_moved: bool,
    /// The last commit failed.
    pub(crate) degraded: bool,
}

impl AfterLines {
    /// True when the commit must happen now; false when only checkpoints over lines that matched
    /// nothing moved, and they may wait for the next commit or tick.
    pub(crate) fn must_commit(&self) -> bool {
        self.matched > 0 || self.dirty || self.globs_moved || self.degraded
    }
}

#[cfg(test)]
mod tests {
    use crate::daemon::coalesce::AfterLines;

    #[test]
    fn only_checkpoints_over_lines_that_matched_nothing_may_wait() {
        let quiet = AfterLines::default();
        assert!(!quiet.must_commit());
        for urgent in [
            AfterLines {
                matched: 1,
                ..quiet
            },
            AfterLines {
                dirty: true,
                ..quiet
            },
            AfterLines {
                globs_moved: true,
                ..quiet
            },
            AfterLines {
                degraded: true,
                ..quiet
            },
        ] {
            assert!(urgent.must_commit(), "{urgent:?}");
        }
    }
}
