//! `KeyRecord`: the durable form of one key of a [`crate::alert::Tracker`], and
//! [`TrackerChanges`]: the records to write since the last commit.
//!
//! Records are plain data (no serde: `state` owns the encoding and stores
//! [`RECORD_VERSION`] with them). The handshake is the one of `tail::checkpoint::CheckpointLedger`:
//! the daemon takes [`crate::alert::Tracker::changes`], writes them in the transaction that also
//! writes the batches holding the decisions and notices that produced them, and only after that
//! commit succeeded calls [`crate::alert::Tracker::committed`]. A failed commit changes nothing;
//! the next changes hold everything not stored yet. After a `kill -9`, the stored records given
//! to [`crate::alert::Tracker::restore`] are exactly the state that the stored batches reflect:
//! no notice is lost (its cause is not stored either, so it is decided again) and none is
//! doubled (its effect on the state is stored with it).

use std::time::{Duration, SystemTime};

use crate::alert::key::GroupKey;

/// The version of the record layout; `state` stores it and refuses (or migrates) others.
pub const RECORD_VERSION: u32 = 1;

/// One key of one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    /// The key.
    pub key: GroupKey,
    /// Event times of the key's last matches for `when`, oldest first (at most `count`; empty
    /// while firing or without `when`).
    pub window: Vec<SystemTime>,
    /// Event time of the key's latest match (`None`: never matched).
    pub last_seen: Option<SystemTime>,
    /// Timer time of the key's latest match (`None`: never matched); quiet periods count from
    /// it, or from the latest catch-up if that is later.
    pub last_active: Option<SystemTime>,
    /// Where the key stands.
    pub phase: PhaseRecord,
}

/// Where a key stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PhaseRecord {
    /// Below the `when` threshold; or, for a heartbeat rule, present.
    Idle,
    /// An incident is open.
    Firing(IncidentRecord),
    /// A heartbeat key reported absent.
    Absent {
        /// Quiet since then (timer clock).
        silent_since: SystemTime,
    },
    /// An absent heartbeat key matched again; its recovery notice is due.
    Recovering {
        /// Event time of its last match before the absence.
        last_seen: Option<SystemTime>,
        /// Event time of the match that ended the absence.
        back: SystemTime,
        /// How long it was quiet.
        absent_for: Duration,
    },
}

/// An open incident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentRecord {
    /// Timer time of the firing alert.
    pub opened_at: SystemTime,
    /// Event time of its first match.
    pub first: SystemTime,
    /// Event time of its last match.
    pub last: SystemTime,
    /// All its matches.
    pub total: u64,
    /// Matches since its last message (folded or held by an ack).
    pub folded: u64,
    /// Event time of the first of them.
    pub folded_since: Option<SystemTime>,
    /// The current `realert` period ends here (timer clock); `None`: no period running.
    pub gate_until: Option<SystemTime>,
    /// When it was acknowledged.
    pub acked_at: Option<SystemTime>,
}

/// The records to write so that the stored ones equal the tracker's keys, relative to the last
/// commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackerChanges {
    /// Records to insert or replace, one per key.
    pub upserts: Vec<KeyRecord>,
    /// Keys whose records are to be deleted.
    pub removals: Vec<GroupKey>,
    /// The change counter these changes go up to (for [`crate::alert::Tracker::committed`]).
    pub through: u64,
}

impl TrackerChanges {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.removals.is_empty()
    }
}
