//! The survey while the daemon runs (issue 12): the warnings `dingtail check` prints are logged
//! at start and then once an hour while they hold (a warning that appears later is logged when it
//! is first seen), and `dingtail_input_files{input}` follows the files each input matches.
//!
//! A survey walks the inputs' globs, so after the first one (done at start, before the main loop)
//! it runs on a blocking thread every [`SURVEY_EVERY`], or at once after a reload; the main loop
//! only looks, once per tick, whether the last one has finished.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use tokio::task::JoinHandle;

use crate::metrics::{InputLabel, Metrics};
use crate::pipeline::Pipeline;
use crate::survey::{Reminder, Survey, survey};

/// How often the files are counted again (warnings are still repeated only hourly).
pub(crate) const SURVEY_EVERY: Duration = Duration::from_secs(60);

/// The running daemon's survey: when the next is due, the one under way, what was said.
#[derive(Debug)]
pub(crate) struct SurveyLoop {
    reminder: Reminder,
    next_at: Instant,
    running: Option<JoinHandle<Survey>>,
    /// The pipeline last surveyed: a reload makes a new one, surveyed at once.
    surveyed: Option<Arc<Pipeline>>,
}

impl SurveyLoop {
    /// Surveys `pipeline` now (the start), logs every warning and sets the gauges.
    pub(crate) fn start(pipeline: &Arc<Pipeline>, metrics: &Metrics, now: Instant) -> SurveyLoop {
        let mut survey_loop = SurveyLoop {
            reminder: Reminder::default(),
            next_at: now + SURVEY_EVERY,
            running: None,
            surveyed: Some(pipeline.clone()),
        };
        survey_loop.report(&survey(pipeline), metrics, now);
        survey_loop
    }

    /// Called on every tick of the main loop: takes a finished survey's result, and starts the
    /// next one when it is due or the pipeline changed.
    pub(crate) fn tick(&mut self, pipeline: &Arc<Pipeline>, metrics: &Metrics, now: Instant) {
        if let Some(running) = self.running.as_mut() {
            match running.now_or_never() {
                None => return,
                Some(Ok(found)) => self.report(&found, metrics, now),
                Some(Err(err)) => tracing::warn!("the survey of the inputs failed: {err}"),
            }
            self.running = None;
        }
        let reloaded = !self
            .surveyed
            .as_ref()
            .is_some_and(|surveyed| Arc::ptr_eq(surveyed, pipeline));
        if now < self.next_at && !reloaded {
            return;
        }
        self.next_at = now + SURVEY_EVERY;
        self.surveyed = Some(pipeline.clone());
        let pipeline = pipeline.clone();
        self.running = Some(tokio::task::spawn_blocking(move || survey(&pipeline)));
    }

    fn report(&mut self, found: &Survey, metrics: &Metrics, now: Instant) {
        metrics.input_files.clear();
        for (input, n_files) in &found.files {
            metrics
                .input_files
                .get_or_create(&InputLabel {
                    input: input.clone(),
                })
                .set(i64::try_from(*n_files).unwrap_or(i64::MAX));
        }
        for warning in self.reminder.due(&found.warnings, now) {
            tracing::warn!("{warning}");
        }
    }
}
