//! The daemon's side of the silences and acknowledgements shared through Redis (issues 15 and
//! 16), with `cluster:` only: what the main loop hands to `cluster::share` (the silences with
//! this host's counts every tick, the silences that ended, the chat's acknowledgements) and what
//! it does with the task's [`ShareEvent`]s — adopted and dropped silences go into the state
//! table (so they hold while Redis is down and survive a restart) and into the daemon's
//! silences; a report joins the rule's robots' batches like any notice; another host's
//! acknowledgement acknowledges the matching incidents open here.

use std::time::{Instant, SystemTime};

use crate::alert::{Silence, SilenceId};
use crate::cluster::share::ShareEvent;
use crate::daemon::Daemon;
use crate::state::StateError;
use crate::state::silences::SharedAck;

impl Daemon {
    /// Silences that ended go to the cluster, which has one host report them with every host's
    /// count.
    pub(crate) fn share_ended_silences(&mut self) {
        let Some(hook) = self.cluster.as_ref() else {
            return;
        };
        for ended in self.alerts.take_shared_ends() {
            hook.share.ended(ended);
        }
    }

    /// An acknowledgement made here (chat): offered to every host. False without `cluster:`.
    pub(crate) fn share_ack(
        &self,
        rule: &str,
        matchers: &[(String, String)],
        at: SystemTime,
        by: &str,
    ) -> bool {
        let Some(hook) = self.cluster.as_ref() else {
            return false;
        };
        {
            hook.share.ack(SharedAck {
                // The cluster's name for this daemon (a reloaded `host:` waits for a restart).
                host: hook.node.host.clone(),
                by: by.to_owned(),
                rule: rule.to_owned(),
                matchers: matchers.to_vec(),
                at,
            });
        }
        true
    }

    /// Does what the silence task asks.
    pub(crate) fn on_share(&mut self, event: ShareEvent) {
        match event {
            ShareEvent::Apply { adopt, drop } => self.apply_shared(&adopt, &drop),
            ShareEvent::Report(ended) => {
                tracing::info!(
                    "cluster: reporting silence {} of rule `{}`: {} and {} muted in the cluster",
                    ended.silence.id(),
                    ended.silence.rule(),
                    crate::noun::count(ended.muted.matches, "match"),
                    crate::noun::count(ended.muted.notices, "notice")
                );
                if let Some(notice) = self.alerts.ended_notice(ended, &self.metrics) {
                    self.queue_notice(notice, Instant::now());
                    self.commit(None);
                }
            }
            ShareEvent::Ack(ack) => {
                let n = self.alerts.apply_shared_ack(&ack);
                if n > 0 {
                    tracing::info!(
                        "cluster: {:?} acknowledged rule `{}` on host `{}`: {n} incident(s) here acknowledged too",
                        ack.by,
                        ack.rule,
                        ack.host
                    );
                    self.commit(None);
                }
            }
        }
    }

    /// Silences other hosts made go into the state table, those ended elsewhere out of it; the
    /// daemon's silences follow (ended ones are reported by the next poll).
    fn apply_shared(&mut self, adopt: &[Silence], drop: &[SilenceId]) {
        for silence in adopt {
            match self.store.add_silence(silence) {
                Ok(()) => tracing::info!(
                    "cluster: silence {} of rule `{}` (by {:?}) adopted from another host",
                    silence.id(),
                    silence.rule(),
                    silence.author()
                ),
                Err(StateError::Duplicate(_)) => {}
                Err(err) => tracing::warn!(
                    "cluster: cannot store silence {} from another host ({err}); it holds until a restart",
                    silence.id()
                ),
            }
        }
        for id in drop {
            if let Err(err) = self.store.remove_silence(id) {
                tracing::warn!("cluster: cannot delete silence {id}, ended elsewhere: {err}");
            }
        }
        let mut definitions = match self.store.silence_definitions() {
            Ok((definitions, _)) => definitions,
            // The store cannot be read: the daemon's own silences stand for it.
            Err(_) => self
                .alerts
                .silence_records()
                .into_iter()
                .map(|record| record.silence)
                .collect(),
        };
        definitions.retain(|silence| !drop.contains(silence.id()));
        for silence in adopt {
            if !definitions.iter().any(|s| s.id() == silence.id()) {
                definitions.push(silence.clone());
            }
        }
        self.alerts
            .sync_silences_with(definitions, SystemTime::now());
        self.poll_alerts();
    }
}
