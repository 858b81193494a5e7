//! Silences shared through Redis (issues 15 and 16): what one host does with its own silences
//! (the state table `dingtail mute` and the chat write), what Redis holds, and what ended — pure,
//! tested on a fake clock; [`crate::cluster::share`] does the I/O.
//!
//! Every host keeps every silence of the cluster in its own state table, so silences hold while
//! Redis is down and survive restarts; Redis is where hosts meet. Each turn, [`plan`] compares
//! the table with Redis and with the ids that were in step at the last turn (`known`):
//! - a silence of the table that Redis lacks is **published** (made here, or Redis lost it);
//! - a silence of Redis that the table lacks is **adopted** — unless it was in step before, in
//!   which case it was unmuted here (the shell's `unmute` deletes the row) and it is **ended**
//!   in Redis (a tombstone, kept until the silence's own end, so that no host publishes it again);
//! - a silence of the table that Redis has ended is **dropped** from the table (the daemon then
//!   ends it as removed and reports what it muted);
//! - a silence whose id Redis holds with another definition is a **clash** (two hosts drew the
//!   same 30 random bits within a second): the local one stays local, and is logged.
//!
//! What each host muted stays counted on that host ([`crate::alert::SilenceSet`]); running counts
//! go to Redis per host, and when a silence ends, [`Reports`] decides when this host tries to be
//! the one that reports it (after [`REPORT_GRACE`], so that the other hosts' final counts are in)
//! and, if Redis cannot be reached for [`LOCAL_REPORT_AFTER`], reports its own count alone. The
//! report carries [`total`], the sum over hosts.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use crate::alert::{Ended, Muted, Silence, SilenceId};

/// How long after a silence ends its report waits for the other hosts' final counts.
pub const REPORT_GRACE: Duration = Duration::from_secs(4);
/// Redis unreachable this long after a silence ended: this host reports what it muted alone.
pub const LOCAL_REPORT_AFTER: Duration = Duration::from_secs(60);

/// What Redis holds: the cluster's silences and the ids ended early (tombstones).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shared {
    /// The silences in force or to come.
    pub silences: Vec<Silence>,
    /// Silences unmuted before their end, anywhere in the cluster.
    pub ended: BTreeSet<SilenceId>,
}

/// What one turn does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Silences of the table to add to Redis.
    pub publish: Vec<Silence>,
    /// Silences of Redis to add to the table.
    pub adopt: Vec<Silence>,
    /// Ids to delete from the table: ended elsewhere.
    pub drop: Vec<SilenceId>,
    /// Silences to end in Redis: unmuted here.
    pub end: Vec<Silence>,
    /// Ids Redis holds with another definition than the table's.
    pub clash: Vec<SilenceId>,
    /// Ids in step now (in the table and in Redis alike); the I/O adds those it publishes and
    /// adopts once done.
    pub known: BTreeSet<SilenceId>,
}

/// Compares the state table (`local`) with Redis (`shared`), given the ids in step at the last
/// turn (`known`) and the local-only ids (`clashed`), at `now`.
pub fn plan(
    local: &[Silence],
    shared: &Shared,
    known: &BTreeSet<SilenceId>,
    clashed: &BTreeSet<SilenceId>,
    now: SystemTime,
) -> Plan {
    let mut out = Plan::default();
    let in_redis: BTreeMap<&SilenceId, &Silence> =
        shared.silences.iter().map(|s| (s.id(), s)).collect();
    let in_table: BTreeMap<&SilenceId, &Silence> = local.iter().map(|s| (s.id(), s)).collect();
    for silence in local {
        let id = silence.id();
        if shared.ended.contains(id) {
            if !clashed.contains(id) {
                out.drop.push(id.clone());
            }
            continue;
        }
        match in_redis.get(id) {
            Some(theirs) if *theirs == silence => {
                out.known.insert(id.clone());
            }
            Some(_) => out.clash.push(id.clone()),
            // Over: it ends here by itself (the daemon reports it), and Redis drops it.
            None if silence.ends() <= now || clashed.contains(id) => {}
            // Made here, or Redis lost it (a restart without persistence).
            None => out.publish.push(silence.clone()),
        }
    }
    for silence in &shared.silences {
        let id = silence.id();
        if in_table.contains_key(id) || silence.ends() <= now {
            continue;
        }
        if known.contains(id) {
            out.end.push(silence.clone());
        } else {
            out.adopt.push(silence.clone());
        }
    }
    out
}

/// The sum of what each host muted: counts added, the first and last times over all hosts.
pub fn total<'a>(counts: impl IntoIterator<Item = &'a Muted>) -> Muted {
    counts
        .into_iter()
        .fold(Muted::default(), |sum, muted| Muted {
            matches: sum.matches + muted.matches,
            notices: sum.notices + muted.notices,
            first: min_some(sum.first, muted.first),
            last: sum.last.max(muted.last),
        })
}

fn min_some(a: Option<SystemTime>, b: Option<SystemTime>) -> Option<SystemTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// A silence that ended here, waiting to be reported.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Waiting {
    ended: Ended,
    /// When this host learned of the end (its clock).
    since: SystemTime,
    /// The final count is in Redis.
    counted: bool,
}

/// What to do about an ended silence now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportStep {
    /// Put this host's final count into Redis (and end the silence there if it was unmuted
    /// before its time).
    Count(Ended),
    /// Try to be the host that reports it: the winner reports the cluster's total.
    Claim(Ended),
    /// Redis has been unreachable too long: report this host's count alone.
    Alone(Ended),
}

/// The silences that ended on this host and are not reported yet.
#[derive(Clone, Debug, Default)]
pub struct Reports {
    waiting: BTreeMap<SilenceId, Waiting>,
}

impl Reports {
    /// Nothing waiting.
    pub fn new() -> Reports {
        Reports::default()
    }

    /// `ended` ended on this host, learned at `now`.
    pub fn push(&mut self, ended: Ended, now: SystemTime) {
        let id = ended.silence.id().clone();
        self.waiting.insert(
            id,
            Waiting {
                ended,
                since: now,
                counted: false,
            },
        );
    }

    /// What is due at `now`, `connected` saying whether Redis answered lately. A count comes
    /// first; a claim [`REPORT_GRACE`] after the end; alone after [`LOCAL_REPORT_AFTER`] without
    /// Redis.
    pub fn due(&self, now: SystemTime, connected: bool) -> Vec<ReportStep> {
        let mut out = Vec::new();
        for waiting in self.waiting.values() {
            let age = now.duration_since(waiting.since).unwrap_or_default();
            if !connected {
                if age >= LOCAL_REPORT_AFTER {
                    out.push(ReportStep::Alone(waiting.ended.clone()));
                }
                continue;
            }
            if !waiting.counted {
                out.push(ReportStep::Count(waiting.ended.clone()));
            } else if age >= REPORT_GRACE {
                out.push(ReportStep::Claim(waiting.ended.clone()));
            }
        }
        out
    }

    /// This host's final count of `id` is in Redis.
    pub fn counted(&mut self, id: &SilenceId) {
        if let Some(waiting) = self.waiting.get_mut(id) {
            waiting.counted = true;
        }
    }

    /// `id` is reported (here or by another host), or reported alone: forget it.
    pub fn done(&mut self, id: &SilenceId) {
        self.waiting.remove(id);
    }

    /// When [`Reports::due`] may next have something, if anything waits.
    pub fn next_due(&self) -> Option<SystemTime> {
        self.waiting
            .values()
            .map(|waiting| {
                if waiting.counted {
                    waiting.since + REPORT_GRACE
                } else {
                    waiting.since
                }
            })
            .min()
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// True when none waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests;
