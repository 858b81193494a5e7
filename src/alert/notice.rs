//! `Notice`: a message a [`crate::alert::Tracker`] decides on its own, from its timers rather
//! than from a line — a repeat with the matches folded since the last message, a resolved
//! incident, an absent key, a key that came back.
//!
//! A firing alert is not a notice: it is the matching line itself, sent as today's alerts are
//! ([`crate::alert::Decision::Alert`]), so that the message shows the line. Notices carry data
//! only; `render` words them ("+37 since 12:04", "静默期间 123 次" is the silence's).

use std::time::{Duration, SystemTime};

use crate::alert::key::GroupKey;

/// One message a tracker decided on, for one key of one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// The rule's name.
    pub rule: String,
    /// The key.
    pub key: GroupKey,
    /// The key's `group_by` names with their values, in order (empty without `group_by`).
    pub labels: Vec<(String, String)>,
    /// When it was decided (timer clock: the `now` of the poll).
    pub at: SystemTime,
    /// What happened.
    pub kind: NoticeKind,
}

/// What a [`Notice`] reports. Event times are the lines' times; durations of quiet are measured
/// on the timer clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoticeKind {
    /// An incident goes on: `folded` matches since the last message ("+37 since 12:04").
    Repeat {
        /// Matches since the last message of the incident, exact.
        folded: u64,
        /// Event time of the first of them.
        since: SystemTime,
        /// All matches of the incident so far, including the ones that fired it.
        total: u64,
    },
    /// An incident is over: no match for `resolve.after`. Sent once per incident, only for keys
    /// that fired, and only with `notify` (else a last [`NoticeKind::Repeat`] carries what was
    /// not reported yet, if anything).
    Resolved {
        /// Event time of the incident's first match (the oldest in the window that fired it).
        first: SystemTime,
        /// Event time of its last match.
        last: SystemTime,
        /// `last - first`.
        duration: Duration,
        /// All its matches.
        total: u64,
        /// Matches since its last message, not reported otherwise (folded or held by an ack).
        unreported: u64,
        /// When it was acknowledged, if it was.
        acked_at: Option<SystemTime>,
    },
    /// A heartbeat key had no match for `absent.for` (once per absence).
    Absent {
        /// Event time of its last match; `None` for the key of a rule without `group_by` that
        /// never matched since the tracker began.
        last_seen: Option<SystemTime>,
        /// `absent.for`.
        for_: Duration,
        /// How long it has been quiet (at least `for_`; more after a restart).
        silent_for: Duration,
    },
    /// An absent key matched again (once per absence).
    Recovered {
        /// Event time of its last match before the absence.
        last_seen: Option<SystemTime>,
        /// Event time of the match that ended it.
        back: SystemTime,
        /// How long it was quiet (timer clock).
        absent_for: Duration,
    },
}

impl NoticeKind {
    /// The matches this notice reports for the first time (what a silence that mutes it counts):
    /// the folded ones of a repeat, the unreported ones of a resolution, none otherwise.
    pub fn n_matches(&self) -> u64 {
        match self {
            NoticeKind::Repeat { folded, .. } => *folded,
            NoticeKind::Resolved { unreported, .. } => *unreported,
            NoticeKind::Absent { .. } | NoticeKind::Recovered { .. } => 0,
        }
    }
}
