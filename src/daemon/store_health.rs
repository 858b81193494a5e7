//! Degraded, not silent: what the daemon does when its state store fails.
//!
//! A store that cannot write (a full disk, a read-only file, a damaged database) must not stop
//! alerting, least of all the alert about the full disk. While it fails, the daemon keeps
//! delivering from memory (at least once: a restart may repeat what was sent, and lose what was
//! never written), marks every message as degraded, retries the store every tick, and says so
//! everywhere: the log (once), `/healthz` (503 with the reason), `STATUS=`, the metrics
//! `dingtail_state_errors_total` and `dingtail_state_degraded`, and one message from dingtail
//! itself to the robots of critical rules. A database found damaged is moved aside and a fresh
//! one started, written again from what memory holds.

use std::collections::BTreeSet;
use std::time::{Instant, SystemTime};

use crate::batch::{Hit, Rendered};
use crate::daemon::Daemon;
use crate::dingtalk::escape;
use crate::event::{Mentions, Severity};
use crate::state::StateError;
use crate::tail::checkpoint::CheckpointLedger;

/// The rule name of dingtail's own alerts (reserved: no rule file may use it).
pub(crate) const SELF_RULE: &str = crate::config::rules::RESERVED_RULE;

impl Daemon {
    /// Takes note of how a commit of the store went: the first failure degrades delivery, the
    /// first success after failures ends it. A damaged database is replaced at once.
    pub(crate) fn note_store_result<T>(&mut self, result: Result<T, StateError>, what: &str) {
        match result {
            Ok(_) => {
                if self.store_failure.take().is_some() {
                    tracing::info!("the state store works again; delivery is no longer degraded");
                    self.metrics.state_degraded.set(0);
                    self.health.set_problem("state", None);
                    self.self_alert(
                        Severity::Info,
                        "dingtail: the state store works again",
                        "dingtail can write its state again; delivery is no longer degraded"
                            .to_string(),
                    );
                }
            }
            Err(err) => {
                self.metrics.state_errors.inc();
                if err.is_corrupt() && self.start_over(&err) {
                    return;
                }
                if self.store_failure.is_some() {
                    return;
                }
                let reason = err.reason();
                tracing::error!(
                    "{what}: {err}; delivering from memory (degraded: a restart may repeat or lose events) and retrying every second"
                );
                self.metrics.state_degraded.set(1);
                self.health
                    .set_problem("state", Some(format!("cannot write state: {reason}")));
                self.self_alert(
                    Severity::Critical,
                    "dingtail: cannot write state",
                    format!(
                        "cannot write state: {reason}. dingtail keeps alerting from memory; a \
                         restart may repeat or lose events until this is fixed"
                    ),
                );
                self.store_failure = Some(reason);
            }
        }
    }

    /// The database is damaged: moves it aside, starts a fresh one and writes everything
    /// memory holds into it. Returns false when that failed too (the store stays failing).
    fn start_over(&mut self, err: &StateError) -> bool {
        let moved_to = match self.store.start_over() {
            Ok(moved_to) => moved_to,
            Err(again) => {
                tracing::error!(
                    "the state database is damaged ({err}) and cannot be replaced: {again}"
                );
                return false;
            }
        };
        tracing::error!(
            "the state database was damaged ({err}); it was moved to {} and a new one started; everything in memory is written to it",
            moved_to.display()
        );
        // The fresh database holds nothing: every checkpoint, every robot's undelivered events
        // and the scanned globs are written again by the next commit.
        self.ledger = CheckpointLedger::default();
        self.saved_globs.clear();
        self.alerts.rewrite_all();
        let robots: Vec<String> = self
            .dispatcher
            .undelivered()
            .map(|(robot, _)| robot.to_string())
            .collect();
        self.dirty.extend(robots);
        self.self_alert(
            Severity::Critical,
            "dingtail: state database replaced",
            format!(
                "the state database was damaged ({}); it was moved to {} and a new one started. \
                 Events are kept in memory and written again; lines written while dingtail \
                 cannot have read them may be missed",
                err.reason(),
                moved_to.display()
            ),
        );
        true
    }

    /// Queues a message from dingtail itself to the robots of critical rules (every robot when
    /// no rule is critical), like a match of a rule of its own.
    pub(crate) fn self_alert(&mut self, severity: Severity, title: &str, text: String) {
        let pipeline = self.pipeline.clone();
        let mut robots: BTreeSet<&String> = pipeline
            .rules
            .values()
            .flat_map(|set| set.rules())
            .filter(|rule| rule.severity() == Severity::Critical)
            .flat_map(|rule| rule.robots())
            .collect();
        if robots.is_empty() {
            robots = pipeline.config.robots.keys().collect();
        }
        let mentions = Mentions::default();
        let now = Instant::now();
        for robot in robots {
            let hit = Hit {
                rule: SELF_RULE,
                severity,
                line: &text,
                file: "",
                host: &pipeline.config.host,
                at: SystemTime::now(),
                mentions: &mentions,
                top: &[],
            };
            // The reason comes from the OS (paths, error text): escaped like log text.
            let markup = pipeline.renderer.robot_msgtype(robot).markup();
            let render = || Rendered {
                title: escape::title(&format!("{title} on {}", pipeline.config.host)),
                text: escape::value(&text, markup),
                markup,
                link: None,
            };
            if self.dispatcher.on_hit(robot, hit, render, now) {
                self.dirty.insert(robot.clone());
            }
        }
    }
}
