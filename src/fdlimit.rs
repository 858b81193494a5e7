//! File descriptors (issue 19): how many the process may open, how many followed files may hold
//! one at a time, and how many are open now.
//!
//! Outside systemd the soft `RLIMIT_NOFILE` is often 1,024; with more log files than that, the
//! daemon used to fail at start, or, with files added while running, leave nothing for the
//! sockets of its sends (0 of 110 alerts delivered). So `dingtail run` (and `tail`) raise the
//! soft limit to the hard one at start ([`raise`]), and the tailer keeps at most
//! [`file_budget`] files open: the limit minus a [`reserve`] for everything else, parking the
//! least recently active idle files beyond it (`crate::tail::park`).
//!
//! The reserve, an eighth of the limit, at least 64 and at most 1,024 (and never more than
//! half): what the rest of the daemon holds at once is small and bounded. Standard streams (3);
//! the two async runtimes, the inotify instances of the tailer and of the config watch, the
//! signal pipe (about 12); the state store (`state.db`, its WAL and shared memory, a moved-aside
//! copy while recovering: 5); the `/metrics` listener and the chat callback listener or Stream
//! connection, with a few scrapes or callbacks at once (about 10); one HTTP connection per robot
//! sending, plus name lookups (a few dozen for a large config); a reload reading the config and
//! rule files one at a time, and the directories a `**` glob walks (up to 32 deep). 64 covers a
//! small setup under a 1,024 limit with room to spare; larger limits get a larger margin.

use std::io;

/// The reserve is at least this many descriptors (unless that is more than half the limit).
pub const MIN_RESERVE: u64 = 64;
/// The reserve is at most this many descriptors.
pub const MAX_RESERVE: u64 = 1024;

/// The open-file limits of this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// The soft limit: what `open` is held to.
    pub soft: u64,
    /// The hard limit the soft one may be raised to; `None` for unlimited.
    pub hard: Option<u64>,
}

/// The soft limit assumed when the system does not say (unlimited).
const ASSUMED: u64 = 1 << 20;

/// The current limits.
pub fn current() -> Limit {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    Limit {
        soft: limit.current.unwrap_or(ASSUMED),
        hard: limit.maximum,
    }
}

/// Raises the soft limit to the hard one. Returns the limits before and after.
///
/// # Errors
/// The system refused (the soft limit stays as it was).
pub fn raise() -> io::Result<(Limit, Limit)> {
    let before = current();
    let Some(hard) = before.hard else {
        // An unlimited hard limit cannot be the soft limit of open files: leave it.
        return Ok((before, before));
    };
    if before.soft >= hard {
        return Ok((before, before));
    }
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        },
    )?;
    Ok((before, current()))
}

/// Raises the soft limit and says so in the log (a refusal is a warning: the tailer then
/// parks files within the lower limit).
pub fn raise_and_log() -> Limit {
    match raise() {
        Ok((before, after)) => {
            if after.soft > before.soft {
                tracing::info!(
                    from = before.soft,
                    to = after.soft,
                    "raised the open-file limit (RLIMIT_NOFILE) to the hard limit"
                );
            }
            after
        }
        Err(err) => {
            let limit = current();
            tracing::warn!(
                error = %err,
                soft = limit.soft,
                "cannot raise the open-file limit; following files within it"
            );
            limit
        }
    }
}

/// The descriptors kept for everything but followed files under a soft limit of `limit`.
pub fn reserve(limit: u64) -> u64 {
    (limit / 8).clamp(MIN_RESERVE, MAX_RESERVE).min(limit / 2)
}

/// How many followed files may be open at once under a soft limit of `limit` (at least one).
pub fn file_budget(limit: u64) -> usize {
    usize::try_from(limit.saturating_sub(reserve(limit)).max(1)).unwrap_or(usize::MAX)
}

/// How many descriptors this process has open now (`None` where `/proc` cannot tell).
pub fn count_open() -> Option<usize> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    // The listing's own descriptor is among them.
    Some(entries.count().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use crate::fdlimit::{count_open, current, file_budget, reserve};

    #[test]
    fn the_reserve_grows_with_the_limit_within_bounds() {
        assert_eq!(reserve(1024), 128);
        assert_eq!(file_budget(1024), 896);
        assert_eq!(reserve(256), 64);
        assert_eq!(reserve(100), 50, "never more than half");
        assert_eq!(reserve(1 << 20), 1024);
        assert_eq!(file_budget(1), 1);
    }

    #[test]
    fn open_descriptors_are_counted_and_the_limit_read() {
        // Other tests open and close files meanwhile: only that it counts something.
        let _file = tempfile::tempfile().unwrap();
        assert!(count_open().unwrap() >= 1);
        assert!(current().soft > 0);
    }
}
