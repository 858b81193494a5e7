//! Which commits may wait (issue 18). A daemon following a busy file wakes up about as often as
//! the file is written, and a SQLite transaction per wake-up (write-ahead log appends, locks,
//! the matched rules' rows encoded again) was most of its cost.
//!
//! The rule: a checkpoint is only ever committed together with every match before it, so a
//! line counts as read only once its matches are durable; but the commit itself may wait for
//! the main loop's next tick (a second) or the next send, whichever comes first. A crash before
//! then leaves the checkpoint where it was: the daemon reads those lines again and matches them
//! again, so no alert is lost or repeated, exactly as for lines it had not read yet. (A line's
//! matches were committed at once in earlier rounds, ten commits a second for a file with a
//! match every tenth of a second; a send still commits first, so what goes out is always
//! durable, and the latency of an alert does not change.)
//!
//! Kept out of the way of that rule: a commit that failed (the store is degraded and retries at
//! once), matches a `scope: cluster` rule counts (their counts go to Redis, which must not take
//! counts of lines this host could read again), and globs scanned for the first time.

/// What a batch of lines from the tailer changed, as far as committing is concerned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AfterLines {
    /// Some match was counted for a `scope: cluster` rule.
    pub(crate) shared: bool,
    /// The scanned globs differ from the stored ones.
    pub(crate) globs_moved: bool,
    /// The last commit failed.
    pub(crate) degraded: bool,
}

impl AfterLines {
    /// True when the commit must happen now; false when it may wait for the next commit (a
    /// send) or tick, the checkpoints waiting with the matches before them.
    pub(crate) fn must_commit(&self) -> bool {
        self.shared || self.globs_moved || self.degraded
    }
}

#[cfg(test)]
mod tests {
    use crate::daemon::coalesce::AfterLines;

    #[test]
    fn only_shared_counts_new_globs_and_a_failed_store_commit_at_once() {
        let quiet = AfterLines::default();
        assert!(!quiet.must_commit());
        for urgent in [
            AfterLines {
                shared: true,
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
