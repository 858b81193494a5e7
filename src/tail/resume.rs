//! The resume list: checkpoints not matched to a followed file, kept for a file that comes back.
//!
//! Two kinds of entries: stored checkpoints whose file has not been found yet (a restart), and
//! checkpoints of files the tailer closed (renamed away and drained, or let go). A file that
//! reappears — renamed back, an NFS mount that recovers, a file found again after a restart —
//! resumes at its offset instead of being read again from 0. Entries are keyed like the
//! checkpoint table, by device and inode (at most one each), and bounded: at most [`RESUME_MAX`]
//! of them, each for [`RESUME_KEEP`] after its file was last known.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::tail::checkpoint::Checkpoint;
use crate::tail::discover::Scan;

/// At most this many checkpoints of files not followed (stored ones not found yet, closed ones)
/// are kept for a file that comes back; the oldest go first.
pub const RESUME_MAX: usize = 4096;
/// A checkpoint of a file not followed is kept this long after its file was last known.
pub const RESUME_KEEP: Duration = Duration::from_secs(3600);

/// A checkpoint waiting for its file to be (found) again.
#[derive(Debug)]
pub(super) struct Resume {
    pub(super) checkpoint: Checkpoint,
    /// When its file was last known: loaded, closed, or seen but not openable or not listable.
    pub(super) since: Instant,
}

impl Resume {
    fn key(&self) -> (u64, u64) {
        self.checkpoint.key()
    }
}

/// The entries, bounded by age and count.
#[derive(Debug, Default)]
pub(super) struct ResumeList {
    entries: Vec<Resume>,
}

impl ResumeList {
    /// The stored checkpoints of a start, all last known `now`.
    pub(super) fn new(checkpoints: Vec<Checkpoint>, now: Instant) -> ResumeList {
        let mut list = ResumeList {
            entries: checkpoints
                .into_iter()
                .map(|checkpoint| Resume {
                    checkpoint,
                    since: now,
                })
                .collect(),
        };
        list.bound(now);
        list
    }

    /// Takes every entry of an inode (`(dev, ino)`): the caller resumes the one whose content
    /// is the file's, and keeps the others as content that may have been copied elsewhere.
    pub(super) fn take_inode(&mut self, key: (u64, u64)) -> Vec<Checkpoint> {
        let mut taken = Vec::new();
        let mut i = 0;
        while i < self.entries.len() {
            if self.entries.get(i).is_some_and(|r| r.key() == key) {
                taken.push(self.entries.swap_remove(i).checkpoint);
            } else {
                i += 1;
            }
        }
        taken
    }

    /// Keeps `checkpoint` for a file just closed (replacing an older entry of its inode).
    pub(super) fn keep(&mut self, checkpoint: Checkpoint, now: Instant) {
        let key = checkpoint.key();
        self.entries.retain(|r| r.key() != key);
        self.entries.push(Resume {
            checkpoint,
            since: now,
        });
        self.bound(now);
    }

    /// Forgets the entry of an inode (a deleted file cannot come back).
    pub(super) fn forget(&mut self, key: (u64, u64)) {
        self.entries.retain(|r| r.key() != key);
    }

    /// After a scan: entries whose file exists but could not be opened (`unopened`), or may
    /// exist where the scan learnt nothing, are fresh again; the others age out.
    pub(super) fn refresh(&mut self, unopened: &HashSet<(u64, u64)>, scan: &Scan, now: Instant) {
        for resume in &mut self.entries {
            if unopened.contains(&resume.key()) || scan.is_unknown(&resume.checkpoint.path) {
                resume.since = now;
            }
        }
        self.bound(now);
    }

    /// The checkpoints kept.
    pub(super) fn checkpoints(&self) -> impl Iterator<Item = &Checkpoint> {
        self.entries.iter().map(|r| &r.checkpoint)
    }

    /// Drops the entries whose file was last known [`RESUME_KEEP`] ago or longer, then the
    /// oldest beyond [`RESUME_MAX`].
    fn bound(&mut self, now: Instant) {
        bound_resume(&mut self.entries, now);
    }
}

pub(super) fn bound_resume(resume: &mut Vec<Resume>, now: Instant) {
    resume.retain(|r| now.saturating_duration_since(r.since) < RESUME_KEEP);
    if resume.len() > RESUME_MAX {
        resume.sort_by_key(|r| std::cmp::Reverse(r.since));
        resume.truncate(RESUME_MAX);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::tail::checkpoint::Checkpoint;
    use crate::tail::fingerprint::Fingerprint;
    use crate::tail::resume::{RESUME_KEEP, RESUME_MAX, Resume, bound_resume};

    #[test]
    fn the_resume_list_is_bounded_by_age_and_count() {
        let now = Instant::now();
        let entry = |ino: u64, age: Duration| Resume {
            checkpoint: Checkpoint {
                fingerprint: Fingerprint {
                    dev: 1,
                    ino,
                    head_len: 0,
                    head_hash: 0,
                },
                path: format!("/var/log/{ino}.log").into(),
                offset: ino,
                tail: None,
            },
            since: now.checked_sub(age).unwrap(),
        };
        let mut resume = vec![
            entry(1, RESUME_KEEP + Duration::from_secs(1)),
            entry(2, RESUME_KEEP - Duration::from_secs(1)),
        ];
        bound_resume(&mut resume, now);
        let kept: Vec<u64> = resume.iter().map(|r| r.checkpoint.offset).collect();
        assert_eq!(kept, [2], "the one last known too long ago goes");

        let n = RESUME_MAX as u64 + 10;
        // Entry i was last known i milliseconds ago: the 10 oldest go.
        let mut resume: Vec<Resume> = (0..n).map(|i| entry(i, Duration::from_millis(i))).collect();
        bound_resume(&mut resume, now);
        assert_eq!(resume.len(), RESUME_MAX);
        assert!(
            resume
                .iter()
                .all(|r| r.checkpoint.offset < RESUME_MAX as u64)
        );
    }
}
