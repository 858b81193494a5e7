//! The chat's commands on the alert kinds' state (issues 13 and 16): `mute`, `unmute`, `mutes`,
//! `ack`, and the silences and incidents `status` lists.
//!
//! Decisions are methods of [`Alerts`] that take `now` and return what happened, so that they
//! are tested on a fake clock; [`Daemon`]'s side (at the end) checks names against the loaded
//! rules, commits, and words the reply (`chat::words`).
//!
//! A silence typed in the chat is the same object as one from `dingtail mute`: it is added to
//! the daemon's [`crate::alert::SilenceSet`] as made here, and the next commit writes its
//! definition into the same `silences` table the shell writes (the commit is made before the
//! reply: a silence that could not be stored is taken back and the reply says so). `unmute`
//! ends silences as the shell's does: what they muted is reported in the group, and their rows
//! are deleted in the same transaction as that message. Before each command the definitions are
//! read again if another process changed them, so that ids and rules from the shell are known.
//! With `cluster:`, silences reach the other hosts through the state table
//! (`cluster::share` publishes what the table holds) and an `ack` is offered to them too
//! (`Daemon::share_ack`); the reply describes what the answering host holds.

use std::time::SystemTime;

use crate::alert::{
    Ended, PhaseRecord, Silence, SilenceDraft, SilenceError, SilenceId, SilenceRecord,
};
use crate::chat::command::{Matcher, Mute};
use crate::chat::words::{self, Clock, IncidentView, SilenceView};
use crate::chat::{Author, ChatRequest, Command};
use crate::daemon::Daemon;
use crate::daemon::alerts::Alerts;
use crate::lang::Language;
use crate::pipeline::TargetError;

/// Draws of a silence id before giving up (ids are 30 random bits: a clash is rare).
const ID_DRAWS: usize = 16;

/// What an `ack` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AckResult {
    /// The rule has no tracker (no alert keys): its lines never stay firing.
    NotTracked,
    /// Nothing open and unacknowledged matched: the matchers' labels echo back.
    NothingFiring,
    /// These keys (as labels) were acknowledged.
    Acked(Vec<Vec<(String, String)>>),
}

impl Alerts {
    /// Adds a silence made from `draft` with an id drawn from `draw` (random bits), as made
    /// here: the next commit writes its definition.
    ///
    /// # Errors
    /// The draft is invalid, or no free id after [`ID_DRAWS`] draws.
    pub(crate) fn add_silence(
        &mut self,
        draft: &SilenceDraft,
        now: SystemTime,
        mut draw: impl FnMut() -> u64,
    ) -> Result<Silence, SilenceError> {
        let mut last = None;
        for _ in 0..ID_DRAWS {
            let silence = Silence::new(SilenceId::from_bits(draw()), draft.clone(), now)?;
            match self.silences.add(silence.clone()) {
                Ok(()) => return Ok(silence),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or(SilenceError::NoRule))
    }

    /// Takes back a silence [`Alerts::add_silence`] made whose commit failed (it muted nothing
    /// yet: nothing is reported).
    pub(crate) fn take_back(&mut self, id: &SilenceId, now: SystemTime) {
        self.silences.remove(id, now);
    }

    /// Ends the silence whose id is `target`, else every silence of the rule `target`: they
    /// are reported with their counts by the next poll. Returns them (empty: none matched).
    pub(crate) fn unmute(&mut self, target: &str, now: SystemTime) -> Vec<Ended> {
        let by_id = SilenceId::parse(target).and_then(|id| self.silences.remove(&id, now));
        let ended = match by_id {
            Some(ended) => vec![ended],
            None => self.silences.remove_rule(target, now),
        };
        self.ended.extend(ended.iter().cloned());
        ended
    }

    /// The silences in effect or to come at `now`, ending soonest first.
    pub(crate) fn silence_views(&self, now: SystemTime) -> Vec<SilenceView> {
        self.silences
            .list()
            .into_iter()
            .filter(|record| record.silence.ends() > now)
            .map(silence_view)
            .collect()
    }

    /// The open incidents and absent heartbeats of every rule, by rule then key.
    pub(crate) fn incident_views(&self) -> Vec<IncidentView> {
        let mut views = Vec::new();
        for (rule, tracker) in &self.trackers {
            let names = tracker.spec().group_by();
            for record in tracker.open_incidents() {
                let (since, acked) = match &record.phase {
                    PhaseRecord::Firing(incident) => {
                        (incident.opened_at, incident.acked_at.is_some())
                    }
                    PhaseRecord::Absent { silent_since } => (*silent_since, false),
                    PhaseRecord::Idle | PhaseRecord::Recovering { .. } => continue,
                };
                views.push(IncidentView {
                    rule: rule.clone(),
                    key: record.key.labels(names),
                    since,
                    acked,
                });
            }
        }
        views
    }

    /// Acknowledges the open, unacknowledged incidents of `rule` whose keys have `matchers`.
    pub(crate) fn ack(
        &mut self,
        rule: &str,
        matchers: &[(String, String)],
        now: SystemTime,
    ) -> AckResult {
        let Some(tracker) = self.trackers.get_mut(rule) else {
            return AckResult::NotTracked;
        };
        let names = tracker.spec().group_by().to_vec();
        let mut keys = tracker.ack_where(matchers, now);
        // `scope: cluster`: the incidents this host owns for the cluster.
        keys.extend(self.scope.ack_where(rule, matchers, now));
        if keys.is_empty() {
            return AckResult::NothingFiring;
        }
        AckResult::Acked(keys.iter().map(|key| key.labels(&names)).collect())
    }
}

fn silence_view(record: &SilenceRecord) -> SilenceView {
    let silence = &record.silence;
    SilenceView {
        id: silence.id().to_string(),
        rule: silence.rule().to_owned(),
        matchers: silence.matchers().to_vec(),
        ends: silence.ends(),
        author: silence.author().to_owned(),
        reason: silence.reason().to_owned(),
        muted: record.muted.matches,
    }
}

fn ended_view(ended: &Ended) -> SilenceView {
    silence_view(&SilenceRecord {
        silence: ended.silence.clone(),
        muted: ended.muted,
    })
}

fn pairs(matchers: &[Matcher]) -> Vec<(String, String)> {
    matchers
        .iter()
        .map(|m| (m.key.clone(), m.value.clone()))
        .collect()
}

/// Who a chat command names and records: the sender's nick, else their staff id, else words for
/// "someone in the chat" in the configured language.
fn who(author: &Author, lang: Language) -> String {
    let nick = author.nick.trim();
    if !nick.is_empty() {
        return nick.chars().take(Silence::MAX_AUTHOR_CHARS).collect();
    }
    author.staff_id.clone().unwrap_or_else(|| {
        match lang {
            Language::ZhCn => "群成员",
            Language::En => "someone in the chat",
        }
        .to_owned()
    })
}

impl Daemon {
    /// `mute`, `unmute`, `mutes` and `ack` from the chat: carried out, committed, and worded.
    pub(crate) fn silence_command(&mut self, request: &ChatRequest, clock: &Clock) -> String {
        let lang = self.pipeline.config.language;
        // What the shell changed meanwhile (ids, rules) is known before acting.
        self.sync_silences();
        let who = who(&request.author, lang);
        match &request.command {
            Command::Mute(mute) => self.chat_mute(mute, &who, clock),
            Command::Unmute { target } => {
                let ended = self.alerts.unmute(target, clock.now);
                if ended.is_empty() {
                    return words::no_silence(lang, target);
                }
                for silence in &ended {
                    tracing::info!(
                        "chat: {who:?} ended silence {} of rule `{}`",
                        silence.silence.id(),
                        silence.silence.rule()
                    );
                }
                // Reported and deleted in one commit.
                self.poll_alerts();
                let views: Vec<SilenceView> = ended.iter().map(ended_view).collect();
                words::unmuted(lang, &who, &views)
            }
            Command::Mutes => words::mutes(lang, clock, &self.alerts.silence_views(clock.now)),
            Command::Ack { rule, matchers } => {
                if !self.pipeline.has_rule(rule) {
                    return words::unknown_rule(lang, rule);
                }
                let matchers = pairs(matchers);
                let result = self.alerts.ack(rule, &matchers, clock.now);
                // With `cluster:`, the incidents of other hosts too (they may fire there when
                // nothing does here).
                let shared = result != AckResult::NotTracked
                    && self.share_ack(rule, &matchers, clock.now, &who);
                match result {
                    AckResult::NotTracked => words::not_acknowledgeable(lang, rule),
                    AckResult::NothingFiring if shared => {
                        words::ack_passed_on(lang, &who, rule, &matchers)
                    }
                    AckResult::NothingFiring => words::nothing_firing(lang, rule, &matchers),
                    AckResult::Acked(keys) => {
                        tracing::info!(
                            "chat: {who:?} acknowledged rule `{rule}` ({} keys)",
                            keys.len()
                        );
                        self.commit(None);
                        words::acked(lang, &who, rule, &keys)
                    }
                }
            }
            // Answered elsewhere.
            Command::Status | Command::Test { .. } | Command::Help => String::new(),
        }
    }

    fn chat_mute(&mut self, mute: &Mute, who: &str, clock: &Clock) -> String {
        let lang = self.pipeline.config.language;
        let matchers = pairs(&mute.matchers);
        let names = matchers.iter().map(|(name, _)| name.as_str());
        match self.pipeline.check_silence_target(&mute.rule, names) {
            Ok(()) => {}
            Err(TargetError::NoRule { rule, .. }) => return words::unknown_rule(lang, &rule),
            Err(TargetError::NoName { rule, name, hint }) => {
                return words::unknown_name(lang, &rule, &name, hint.as_deref());
            }
        }
        let now = clock.now;
        let draft = SilenceDraft {
            rule: mute.rule.clone(),
            matchers,
            starts: now,
            ends: now + mute.duration,
            reason: mute.reason.clone().unwrap_or_default(),
            author: who.to_owned(),
        };
        let silence = match self.alerts.add_silence(&draft, now, rand::random::<u64>) {
            Ok(silence) => silence,
            Err(err) => return words::not_stored(lang, &err.to_string()),
        };
        if !self.commit(None) {
            self.alerts.take_back(silence.id(), now);
            let why = self.store_failure.as_deref().unwrap_or("the commit failed");
            return words::not_stored(lang, why);
        }
        tracing::info!(
            "chat: {who:?} muted rule `{}` until {:?}, id {}",
            silence.rule(),
            jiff::Timestamp::try_from(silence.ends()).ok(),
            silence.id()
        );
        let view = silence_view(&SilenceRecord {
            silence,
            muted: crate::alert::Muted::default(),
        });
        words::muted(lang, clock, who, &view, mute.duration)
    }
}

#[cfg(test)]
mod tests;
