//! Alert kinds (issue 13): what a rule's matches mean beyond "every match is an alert" —
//! thresholds per key (`when`), folded repeats (`realert`), resolved notices (`resolve`), absence
//! of a heartbeat (`absent`, `forget_after`), acknowledgements — and silences.
//!
//! Everything here is pure deciding code in the shape of `dispatch::queue`: it takes `now` and
//! returns decisions, never reads the clock, never does I/O, and is tested on a fake timeline.
//! The daemon feeds a rule's [`Tracker`] every match ([`Tracker::on_match`]) and polls it when
//! [`Tracker::next_deadline`] comes ([`Tracker::poll`]); a [`SilenceSet`] decides what is muted.
//! State that must survive a `kill -9` leaves through plain records ([`KeyRecord`],
//! [`SilenceRecord`]) in a changes/committed handshake, so that `state` (the only module that
//! knows SQL) can store them in the same transaction as the batches the decisions produced.
//!
//! The module sits at the bottom of the layers, beside `event`: it depends on nothing in the
//! crate, so `config` can build an [`AlertSpec`] and `state` can persist its records.
//!
//! Two clocks: the *event time* of a match (the log's own timestamp where the input has one,
//! else the read time) places it in a `when` window and in the first/last times reported; the
//! *timer clock* `now` (the daemon's wall clock; `dingtail test --render` passes event times)
//! decides when quiet periods, repeats, absences and silences end. Times are kept to the
//! millisecond.

mod entry;
pub mod key;
pub mod notice;
pub mod record;
pub mod silence;
pub mod silence_set;
pub mod spec;
pub mod tracker;

#[cfg(test)]
mod absence_tests;
#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use crate::alert::key::GroupKey;
pub use crate::alert::notice::{Notice, NoticeKind};
pub use crate::alert::record::{
    IncidentRecord, KeyRecord, PhaseRecord, RECORD_VERSION, TrackerChanges,
};
pub use crate::alert::silence::{Silence, SilenceDraft, SilenceError, SilenceId};
pub use crate::alert::silence_set::{
    Ended, EndedBy, Muted, SilenceChanges, SilenceRecord, SilenceSet,
};
pub use crate::alert::spec::{
    Absent, AlertParts, AlertSpec, CONTEXT_NAMES, Resolve, SpecError, When,
};
pub use crate::alert::tracker::{AckOutcome, Decision, Tracker, TrackerStats};

/// "No time" in the millisecond fields of the state machines (a never-seen key, no gate).
const NONE: i64 = i64::MIN;

/// `at` in milliseconds since the Unix epoch (negative before it), saturating.
fn to_ms(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(NONE + 1, |ms| -ms),
    }
}

/// The time `ms` milliseconds after the Unix epoch (the epoch itself if out of range).
fn from_ms(ms: i64) -> SystemTime {
    let span = Duration::from_millis(ms.unsigned_abs());
    let at = if ms >= 0 {
        UNIX_EPOCH.checked_add(span)
    } else {
        UNIX_EPOCH.checked_sub(span)
    };
    at.unwrap_or(UNIX_EPOCH)
}

/// `ms` as a time, or `None` for [`NONE`].
fn from_ms_opt(ms: i64) -> Option<SystemTime> {
    (ms != NONE).then(|| from_ms(ms))
}

/// `at` in milliseconds, or [`NONE`].
fn to_ms_opt(at: Option<SystemTime>) -> i64 {
    at.map_or(NONE, to_ms)
}

/// A duration in milliseconds, saturating.
fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The span from `from` to `to` in milliseconds, zero if `to` is earlier.
fn span(from: i64, to: i64) -> Duration {
    Duration::from_millis(u64::try_from(to.saturating_sub(from)).unwrap_or(0))
}
