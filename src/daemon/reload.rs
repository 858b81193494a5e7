//! Reload: SIGHUP or a debounced change of a config or rule file loads a `Pipeline` on the side
//! and swaps it in; queues, pending batches, file positions and rate-limit history carry over.
//! A broken file is refused with its diagnostics (in the log and in `STATUS=`) and the running
//! configuration stays in force; a change that changed nothing is not reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::config::{Diagnostic, Diagnostics};
use crate::daemon::bridge::TailCommand;
use crate::daemon::config_watch::{ConfigWatch, watched_dirs};
use crate::daemon::pace;
use crate::daemon::{Daemon, RELOAD_DEBOUNCE, destinations, seed_send_history, tailer_config};
use crate::dispatch::queue::QueueConfig;
use crate::metrics::OutcomeLabel;
use crate::noun;
use crate::pipeline::Pipeline;
use crate::state::{StateError, Undelivered};

/// What asked for a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// SIGHUP: always reload and report.
    Signal,
    /// A watched file changed.
    FileChange,
}

impl Daemon {
    /// Loads the config on the side; a valid one replaces the running one, an invalid one is
    /// refused with its diagnostics and the old one keeps running. A file change that changed
    /// nothing (same bytes, or the same errors as last time) is not reported again.
    pub(crate) fn reload(&mut self, trigger: Trigger) {
        let path = self.options.config_path.clone();
        let loaded = Pipeline::load(&path);
        if trigger == Trigger::FileChange {
            let unchanged = match &loaded {
                Ok(pipeline) => self.reload_status.is_none() && digest(pipeline) == self.digest,
                Err(diagnostics) => self.last_refusal.as_deref() == Some(&diagnostics.to_string()),
            };
            if unchanged {
                tracing::debug!("config files touched but unchanged: nothing to reload");
                return;
            }
            tracing::info!("a config or rule file changed: reloading");
        }
        self.notifier.reloading();
        // A robot new to this run may have undelivered events on disk from an earlier one; they
        // must be in its queue before it takes new ones, or the first commit would overwrite them.
        let loaded = loaded.and_then(|pipeline| match self.undelivered_of_new_robots(&pipeline) {
            Ok(restored) => Ok((pipeline, restored)),
            Err(err) => Err(Diagnostics(vec![Diagnostic::at(
                &pipeline.config.state_dir,
                0,
                0,
                format!("cannot read the undelivered events of the robots this reload adds: {err}"),
            )])),
        });
        match loaded {
            Ok((pipeline, restored)) => {
                self.digest = digest(&pipeline);
                self.last_refusal = None;
                self.apply(pipeline, restored);
                self.metrics
                    .reloads
                    .get_or_create(&OutcomeLabel {
                        outcome: "ok".into(),
                    })
                    .inc();
                self.reload_status = None;
                // Its warnings are logged by the survey of the new pipeline, at the next tick.
                tracing::info!(
                    "reloaded: {}, {}, {}",
                    noun::count(self.pipeline.config.inputs.len(), "input"),
                    noun::count(self.n_rules(), "rule"),
                    noun::count(self.pipeline.config.robots.len(), "robot")
                );
            }
            Err(diagnostics) => {
                self.metrics
                    .reloads
                    .get_or_create(&OutcomeLabel {
                        outcome: "failed".into(),
                    })
                    .inc();
                tracing::error!(
                    "reload refused, the running configuration stays in force: {}",
                    noun::count(diagnostics.0.len(), "problem")
                );
                for diagnostic in &diagnostics.0 {
                    tracing::error!("{diagnostic}");
                }
                self.reload_status = diagnostics
                    .0
                    .first()
                    .map(|first| format!("reload refused: {first}"));
                self.last_refusal = Some(diagnostics.to_string());
            }
        }
        self.notifier.ready(&self.status());
    }

    /// The undelivered events stored for robots that `pipeline` configures and this run has no
    /// queue for.
    fn undelivered_of_new_robots(
        &self,
        pipeline: &Pipeline,
    ) -> Result<BTreeMap<String, Undelivered>, StateError> {
        let new: BTreeSet<&String> = pipeline
            .config
            .robots
            .keys()
            .filter(|robot| !self.dispatcher.has_robot(robot))
            .collect();
        if new.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut all = self.store.load_undelivered()?;
        all.retain(|robot, _| new.contains(robot));
        Ok(all)
    }

    fn apply(&mut self, pipeline: Pipeline, restored: BTreeMap<String, Undelivered>) {
        let old = &self.pipeline.config;
        if pipeline.config.state_dir != old.state_dir {
            tracing::warn!(
                "`state_dir` changed to {}; it takes effect after a restart",
                pipeline.config.state_dir.display()
            );
        }
        if pipeline.config.listen != old.listen {
            tracing::warn!("`listen` changed; it takes effect after a restart");
        }
        if self
            .tail
            .commands
            .send(TailCommand::Reconfigure(
                tailer_config(&pipeline.config),
                pace::read_gap_of(&pipeline.config),
            ))
            .is_err()
        {
            tracing::error!("cannot hand the new inputs to the tailer; they apply after a restart");
        }
        let new_robots: BTreeSet<String> = pipeline
            .config
            .robots
            .keys()
            .filter(|robot| !self.dispatcher.has_robot(robot))
            .cloned()
            .collect();
        self.dispatcher
            .reconfigure(QueueConfig::of_robots(&pipeline.config));
        let now = Instant::now();
        for (robot, undelivered) in restored {
            tracing::info!(
                "robot `{robot}`: {} from before will be sent",
                noun::count(
                    undelivered.pending.count() + undelivered.doubtful.count(),
                    "undelivered event"
                )
            );
            self.dispatcher
                .restore(&robot, undelivered.pending, undelivered.doubtful, now);
        }
        if !new_robots.is_empty() {
            seed_send_history(
                &self.store,
                &mut self.dispatcher,
                &pipeline.config,
                Some(&new_robots),
            );
        }
        let destinations = destinations(&pipeline.config);
        for (robot, destination) in &destinations {
            if self.destinations.get(robot) != Some(destination) {
                // A new webhook, secret or keywords: a rejection of the old ones says nothing.
                self.dispatcher.lift_rejection(robot);
            }
        }
        self.destinations = destinations;
        self.alerts.reconfigure(&self.pipeline, &pipeline, now);
        let dirs = watched_dirs(&pipeline.config.source, &pipeline.config.rule_globs);
        let same_dirs = pipeline.config.reload_on_change
            && self
                .config_watch
                .as_ref()
                .is_some_and(|(_, _, watched)| *watched == dirs);
        self.pipeline = Arc::new(pipeline);
        if !same_dirs {
            self.config_watch = start_config_watch(&self.pipeline);
        }
        self.cluster_reconfigured();
        self.apply_journals();
    }
}

/// The next debounced change of a watched config file (never, without a watch).
pub(crate) async fn recv_config_change(
    watch: &mut Option<(ConfigWatch, mpsc::Receiver<()>, BTreeSet<PathBuf>)>,
) -> Option<()> {
    match watch {
        Some((_, rx, _)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Watches the folders of the config and rule files, unless `reload_on_change: false`.
pub(crate) fn start_config_watch(
    pipeline: &Pipeline,
) -> Option<(ConfigWatch, mpsc::Receiver<()>, BTreeSet<PathBuf>)> {
    let config = &pipeline.config;
    if !config.reload_on_change {
        return None;
    }
    let mut dirs = watched_dirs(&config.source, &config.rule_globs);
    // The state database changes all the time; a folder that is also the state directory would
    // turn every commit into a reload. Such a layout is reloaded by SIGHUP only.
    if dirs.remove(&config.state_dir) {
        tracing::warn!(
            "{} holds both config files and the state; changes there are applied on SIGHUP only",
            config.state_dir.display()
        );
    }
    match ConfigWatch::start(&dirs, RELOAD_DEBOUNCE, Duration::from_secs(2)) {
        Ok((watch, rx)) => Some((watch, rx, dirs)),
        Err(err) => {
            tracing::warn!("cannot watch the config files ({err}); SIGHUP still reloads");
            None
        }
    }
}

/// A digest of the files a pipeline was loaded from (the main file and every rule file), so that a
/// change event that changed nothing (an editor's swap file, a touch) does not reload.
pub(crate) fn digest(pipeline: &Pipeline) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for path in std::iter::once(&pipeline.config.source).chain(&pipeline.rule_files) {
        path.hash(&mut hasher);
        std::fs::read(path).unwrap_or_default().hash(&mut hasher);
    }
    hasher.finish()
}
