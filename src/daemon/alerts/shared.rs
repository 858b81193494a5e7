//! The alert kinds' side of the cluster's sharing (issues 15 and 16): what the daemon's
//! [`Alerts`] hands to `cluster::share` and takes from it. Only used with `cluster:`.
//!
//! - Silences that end are not reported here but handed to the cluster
//!   ([`Alerts::take_shared_ends`]), which has one host report them with the cluster's total.
//! - The silences with this host's counts go to the cluster as a snapshot
//!   ([`Alerts::silence_records`]); what other hosts made or ended comes back as definitions to
//!   sync with ([`Alerts::sync_silences_with`]).
//! - An acknowledgement made on another host acknowledges the matching incidents open here
//!   that opened before it (or up to [`ACK_SKEW`] after, for clocks that differ):
//!   [`Alerts::apply_shared_ack`].

use std::time::{Duration, SystemTime};

use crate::alert::{Ended, GroupKey, PhaseRecord, Silence, SilenceRecord};
use crate::daemon::alerts::Alerts;
use crate::state::silences::SharedAck;

/// How much later than another host's ack an incident here may have opened and still be
/// acknowledged by it (the hosts' clocks differ, and one cause opens incidents on several
/// hosts within moments).
pub(crate) const ACK_SKEW: Duration = Duration::from_secs(60);

impl Alerts {
    /// With `cluster:` (`on`), silences that end are handed to the cluster instead of being
    /// reported here.
    pub(crate) fn share_ends(&mut self, on: bool) {
        self.share_ends = on;
    }

    /// True when silences ended that the cluster is to report.
    pub(crate) fn has_shared_ends(&self) -> bool {
        !self.shared_ends.is_empty()
    }

    /// The silences that ended since the last call, for the cluster to report.
    pub(crate) fn take_shared_ends(&mut self) -> Vec<Ended> {
        std::mem::take(&mut self.shared_ends)
    }

    /// Every silence with what it muted here.
    pub(crate) fn silence_records(&self) -> Vec<SilenceRecord> {
        self.silences.list().into_iter().cloned().collect()
    }

    /// Makes the silences' definitions `definitions` (the state table after the cluster's
    /// changes); those that ended are reported by the next poll.
    pub(crate) fn sync_silences_with(&mut self, definitions: Vec<Silence>, now: SystemTime) {
        let ended = self.silences.sync(definitions, now);
        self.ended.extend(ended);
    }

    /// Acknowledges the open, unacknowledged incidents of `ack.rule` whose keys have its
    /// matchers and that opened no later than [`ACK_SKEW`] after it. Returns how many.
    pub(crate) fn apply_shared_ack(&mut self, ack: &SharedAck) -> usize {
        let Some(tracker) = self.trackers.get_mut(&ack.rule) else {
            return 0;
        };
        let names = tracker.spec().group_by().to_vec();
        let latest = ack.at + ACK_SKEW;
        let keys: Vec<GroupKey> = tracker
            .open_incidents()
            .into_iter()
            .filter(|record| {
                matches!(&record.phase, PhaseRecord::Firing(incident)
                    if incident.acked_at.is_none() && incident.opened_at <= latest)
            })
            .filter(|record| {
                let labels = record.key.labels(&names);
                ack.matchers
                    .iter()
                    .all(|pair| labels.iter().any(|label| label == pair))
            })
            .map(|record| record.key)
            .collect();
        for key in &keys {
            tracker.ack(key, ack.at);
        }
        // `scope: cluster`: the incidents this host owns for the cluster, whoever was asked.
        let owned = self.scope.ack_where(&ack.rule, &ack.matchers, ack.at);
        keys.len() + owned.len()
    }
}
