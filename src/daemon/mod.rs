//! The daemon: wires the tailer, the rules, the dispatcher, the DingTalk client and the state
//! store into one event loop, and handles signals, reloads, systemd and the HTTP endpoints.
//!
//! One task tails (it owns the `Tailer` and hands over batches of lines together with the
//! checkpoints that are safe once those lines are durable); everything else happens in the main
//! loop, which owns the `Dispatcher` and the `Store`. Per batch of lines: match, add to the robots'
//! queues, then one transaction stores the gathering batches and the checkpoints. Sends run as
//! tasks; their outcomes come back to the loop, which updates the queue and the store. Keeping all
//! state changes in one loop is what makes "a checkpoint never gets ahead of durable output" and
//! "only errcode 0 removes a batch" easy to see.

mod alerts;
mod bridge;
mod chat;
mod cluster;
mod coalesce;
pub mod config_watch;
pub mod console;
pub mod deliver;
mod dirty;
pub mod http;
mod intake;
mod journal;
mod pace;
mod reload;
mod report;
pub mod signals;
mod store_health;
mod survey;
pub mod systemd;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::daemon::bridge::{TailBridge, TailCommand, TailMsg};
use crate::daemon::config_watch::ConfigWatch;
use crate::daemon::deliver::Destination;
use crate::daemon::dirty::DirtyRobots;
use crate::daemon::http::{Health, Loop};
use crate::daemon::journal::Journals;
use crate::daemon::reload::{Trigger, digest, recv_config_change, start_config_watch};
use crate::daemon::signals::{Signal, SignalStream};
use crate::daemon::survey::SurveyLoop;
use crate::daemon::systemd::Notifier;
use crate::dingtalk::{Client, ClientConfig, Outcome};
use crate::dispatch::queue::QueueConfig;
use crate::dispatch::{Dispatcher, Gathering};
use crate::event::Severity;
use crate::metrics::{Metrics, RobotLabel};
use crate::noun;
use crate::pipeline::{Pipeline, RouteScratch};
use crate::state::{Change, Store};
use crate::tail::checkpoint::{Checkpoint, CheckpointLedger};
use crate::tail::{GlobHistory, Tailer, TailerConfig};

/// How `dingtail run` was asked to behave.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The main config file.
    pub config_path: PathBuf,
    /// How long a shutdown may spend sending what the rate budget allows.
    pub shutdown_timeout: Duration,
}

/// How long saving a rule file must be quiet before it is reloaded.
pub(crate) const RELOAD_DEBOUNCE: Duration = Duration::from_millis(300);
/// How often the loop refreshes its status, metrics and health beat when nothing else happens.
pub(crate) const TICK: Duration = Duration::from_secs(1);
/// A loop that has not beaten for this long makes `/healthz` answer 503.
const HEALTH_STALE: Duration = Duration::from_secs(30);
/// Connect and whole-request timeouts towards DingTalk.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs the daemon until SIGTERM/SIGINT; returns after a graceful shutdown.
///
/// # Errors
/// Start-up failures (state directory, signal handlers, HTTP listener, tailer); the caller prints
/// them and exits non-zero. Once running, faults are logged and the daemon keeps going.
pub async fn run(pipeline: Pipeline, options: RunOptions) -> anyhow::Result<()> {
    let notifier = Notifier::from_env();
    let metrics = Arc::new(if pipeline.config.cluster.is_some() {
        Metrics::with_cluster()
    } else {
        Metrics::new()
    });
    let health = Arc::new(Health::default());
    let mut signals = SignalStream::install().context("cannot install signal handlers")?;
    // A write past RLIMIT_FSIZE must fail with EFBIG (a store that cannot write degrades
    // delivery), not kill the daemon.
    signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    )
    .context("cannot install the SIGXFSZ handler")?;

    let state_dir = pipeline.config.state_dir.clone();
    let mut store = Store::open(&state_dir)
        .with_context(|| format!("cannot open the state in {}", state_dir.display()))?;
    let first_start = store.is_first_start();
    let checkpoints = store
        .load_checkpoints()
        .context("cannot read the checkpoints")?;
    let journal_cursors = store
        .load_journal_cursors()
        .context("cannot read the journal cursors")?;
    // Everything undelivered from the last run is pending again. A store that can be read but
    // not written does not stop the start: delivery runs degraded until it can write.
    let mut startup_failure = None;
    let restored = match store.restore_undelivered() {
        Ok(restored) => restored,
        Err(err) => {
            let restored = store
                .load_undelivered()
                .context("cannot read the pending events")?;
            startup_failure = Some(err);
            restored
        }
    };

    let client = Client::new(ClientConfig {
        connect_timeout: CONNECT_TIMEOUT,
        request_timeout: REQUEST_TIMEOUT,
    })
    .context("cannot build the HTTP client")?;

    let listen = pipeline.config.listen;
    let http_task = match listen {
        Some(addr) => Some(
            http::serve(addr, metrics.clone(), health.clone(), HEALTH_STALE)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?,
        ),
        None => None,
    };

    // What the table holds, so that each commit writes only the checkpoints that moved.
    let mut ledger = CheckpointLedger::from_stored(&checkpoints);
    let history = if let Some(recovery) = store.recovered() {
        tracing::error!(
            "the state database was unusable ({}); it was moved to {} and a new one started: every file starts at its end, lines written while dingtail was down are not read",
            recovery.damage,
            recovery.moved_to.display()
        );
        GlobHistory::Lost
    } else if first_start {
        GlobHistory::FirstStart
    } else {
        let known = store
            .load_globs()
            .context("cannot read the scanned globs")?;
        if known.is_empty() {
            // A state dir from before globs were recorded.
            GlobHistory::AllKnown
        } else {
            GlobHistory::Known(known)
        }
    };
    let mut tailer =
        Tailer::start_with_history(tailer_config(&pipeline.config), checkpoints, history)
            .context("cannot start tailing")?;
    // The first scan opened the files (at their end, with `start_at: end`): store where, before
    // anything else, so that a crash now does not read them from the beginning next time.
    let latest_checkpoints = tailer.checkpoints();
    let scanned = tailer.scanned_globs();
    let initial = ledger.changes(&latest_checkpoints);
    let mut saved_globs = scanned.clone();
    match store.commit(&[Change::Checkpoints(&initial), Change::Globs(&scanned)]) {
        Ok(()) => ledger.committed(&initial),
        Err(err) => {
            // Retried by the first commit of the main loop.
            saved_globs.clear();
            startup_failure.get_or_insert(err);
        }
    }
    let n_files = tailer.n_files();
    bridge::publish(&metrics, &tailer.stats());
    // Reads that begin from now on can tell the alert kinds that the inputs caught up.
    let tail_started = Instant::now();
    let tail = TailBridge::spawn(tailer, pace::read_gap_of(&pipeline.config), health.clone())?;

    let now = Instant::now();
    let mut dispatcher = Dispatcher::new(QueueConfig::of_robots(&pipeline.config));
    let (mut n_restored, mut n_doubtful) = (0, 0);
    for (robot, undelivered) in restored {
        let n = undelivered.pending.count() + undelivered.doubtful.count();
        if !dispatcher.has_robot(&robot) {
            tracing::warn!(
                "{} for robot `{robot}`, which is no longer configured, are kept until it is",
                noun::count(n, "undelivered event")
            );
            continue;
        }
        n_restored += n;
        n_doubtful += undelivered.doubtful.count();
        dispatcher.restore(&robot, undelivered.pending, undelivered.doubtful, now);
    }
    if n_restored > 0 {
        tracing::info!(
            "{} from the last run will be sent ({n_doubtful} of them marked as possible repeats: they were sent without a known answer)",
            noun::count(n_restored, "undelivered event")
        );
    }
    seed_send_history(&store, &mut dispatcher, &pipeline.config, None);
    // Alert kinds (issue 13): trackers and silences as stored, behind until the inputs catch up.
    // (`tail_started`, not now: the tail thread's first read may already be over, and it reports
    // again only when something changes.)
    let alerts = alerts::Alerts::start(&store, &pipeline, tail_started);

    let config_watch = start_config_watch(&pipeline);
    let pipeline = Arc::new(pipeline);
    // The warnings `check` prints, logged now and hourly while they hold.
    let survey = SurveyLoop::start(&pipeline, &metrics, Instant::now());
    let journals = Journals::start(&pipeline.config, journal_cursors);
    let mut daemon = Daemon {
        options,
        pipeline,
        survey,
        destinations: BTreeMap::new(),
        store,
        dispatcher,
        alerts,
        client,
        metrics,
        health,
        notifier,
        tail,
        sends: JoinSet::new(),
        in_flight: HashMap::new(),
        dirty: DirtyRobots::default(),
        ledger,
        // Never empty before the first lines: a commit before them (a restored batch sent at
        // once) must not read as "every file was let go".
        latest_checkpoints,
        checkpoints_owed: false,
        saved_globs,
        latest_globs: scanned,
        n_files,
        last_delivery: None,
        store_failure: None,
        reload_status: None,
        last_status: String::new(),
        last_refusal: None,
        digest: 0,
        config_watch,
        route_scratch: RouteScratch::default(),
        journals,
        chat: chat::ChatSide::new(),
        cluster: None,
    };
    daemon.destinations = destinations(&daemon.pipeline.config);
    if daemon.journals.unsaved().is_some() {
        // Where each new journald input started: a restart before its first entry reads on
        // from there.
        daemon.commit(None);
    }
    daemon.digest = digest(&daemon.pipeline);
    daemon.start_cluster().await?;
    if let Some(err) = startup_failure {
        daemon.note_store_result::<()>(Err(err), "cannot write the state at start");
    }
    if let Some(recovery) = daemon.store.recovered().cloned() {
        daemon.self_alert(
            Severity::Critical,
            "dingtail: state database replaced",
            format!(
                "the state database was unusable ({}); it was moved to {} and a new one started. \
                 Every file starts at its end: lines written while dingtail was down are not read, \
                 and alerts undelivered then are lost",
                recovery.damage,
                recovery.moved_to.display()
            ),
        );
    }
    daemon
        .sync_chat()
        .await
        .context("cannot start answering back (chat:)")?;
    daemon.notifier.ready(&daemon.status());
    tracing::info!(
        "dingtail running: {}, {}, {}, state in {}",
        noun::count(daemon.pipeline.config.inputs.len(), "input"),
        noun::count(daemon.n_rules(), "rule"),
        noun::count(daemon.pipeline.config.robots.len(), "robot"),
        state_dir.display()
    );

    daemon.main_loop(&mut signals).await;
    let stopped = daemon.shutdown().await;
    let tail_thread = daemon.tail.thread;
    // A read stuck on a dead NFS server must not keep the daemon from exiting: wait a little,
    // then leave the thread behind (the process exits anyway).
    let stopped_by = Instant::now() + Duration::from_secs(2);
    while !tail_thread.is_finished() && Instant::now() < stopped_by {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if tail_thread.is_finished() {
        if tail_thread.join().is_err() {
            tracing::warn!("the tailing thread ended abnormally");
        }
    } else {
        tracing::warn!("the tailing thread did not stop in time; exiting without it");
    }
    if let Some(task) = http_task {
        task.abort();
    }
    stopped
}

/// The main loop's state.
pub(crate) struct Daemon {
    options: RunOptions,
    pipeline: Arc<Pipeline>,
    survey: SurveyLoop,
    destinations: BTreeMap<String, Destination>,
    store: Store,
    dispatcher: Dispatcher,
    /// Alert kinds and silences (issue 13).
    alerts: alerts::Alerts,
    client: Client,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    notifier: Notifier,
    tail: TailBridge,
    sends: JoinSet<Outcome>,
    /// Which send task carries which batch, so that a task that fails still reports its batch.
    in_flight: HashMap<tokio::task::Id, (String, u64)>,
    /// Robots whose batches changed since the last successful commit, and how much.
    dirty: DirtyRobots,
    /// The checkpoints as stored: commits write only what moved since.
    ledger: CheckpointLedger,
    /// The tailer's latest checkpoints (safe once every match before them is stored).
    latest_checkpoints: Vec<Checkpoint>,
    /// Checkpoints moved (with the matches before them) and are not stored yet: the next
    /// commit, at the latest the next tick's, stores them (see [`coalesce`]).
    checkpoints_owed: bool,
    /// The globs the tailer has scanned, and what the store holds of them.
    latest_globs: BTreeSet<(String, String)>,
    saved_globs: BTreeSet<(String, String)>,
    n_files: usize,
    last_delivery: Option<SystemTime>,
    /// Why the store cannot write, while it cannot (delivery is degraded meanwhile).
    store_failure: Option<String>,
    reload_status: Option<String>,
    /// The STATUS= last sent, so that an idle daemon does not repeat it every tick.
    last_status: String,
    last_refusal: Option<String>,
    digest: u64,
    config_watch: Option<(ConfigWatch, mpsc::Receiver<()>, BTreeSet<PathBuf>)>,
    route_scratch: RouteScratch,
    /// The journald inputs' readers and cursors.
    journals: Journals,
    /// Answering back: the chat link and its commands.
    chat: chat::ChatSide,
    /// `cluster:` (issue 15): the node and the hand-offs under way.
    cluster: Option<cluster::ClusterHook>,
}

impl Daemon {
    /// True when memory holds something the store does not: the tick commits it (see
    /// `daemon::coalesce`).
    fn owes_commit(&self) -> bool {
        self.store_failure.is_some()
            || !self.dirty.is_empty()
            || self.checkpoints_owed
            || !self.alerts.changes().is_empty()
    }

    async fn main_loop(&mut self, signals: &mut SignalStream) {
        let watchdog = self.notifier.watchdog_interval();
        let mut tick = tokio::time::interval(TICK);
        // Half of WATCHDOG_USEC, from this loop: a wedged loop stops the keep-alives.
        let mut keep_alive = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        loop {
            self.health.beat(Loop::Dispatch);
            self.poll_alerts();
            let wake_at = self.dispatch(Gathering::Wait);
            let wake_at = match (wake_at, self.alerts_wake()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleep = tokio::time::sleep_until(
                wake_at.map_or_else(|| tokio::time::Instant::now() + TICK * 60, Into::into),
            );
            tokio::select! {
                message = self.tail.messages.recv() => match message {
                    Some(TailMsg::Lines { lines, checkpoints, globs, stats, catch_up }) => {
                        self.latest_globs = globs;
                        self.n_files = stats.n_files;
                        bridge::publish(&self.metrics, &stats);
                        self.on_lines(lines, checkpoints);
                        self.alerts
                            .on_catch_up(&catch_up, Instant::now(), SystemTime::now());
                    }
                    Some(TailMsg::Final { checkpoints }) => {
                        // Not asked for: the tailer stopped on its own. Keep what it gave.
                        self.on_lines(Vec::new(), checkpoints);
                        tracing::error!("the tailer stopped; shutting down");
                        return;
                    }
                    None => {
                        tracing::error!("the tailing task ended; shutting down");
                        return;
                    }
                },
                Some(joined) = self.sends.join_next_with_id() => self.on_sent(joined),
                Some(event) = self.journals.recv() => self.on_journal(event),
                Some(request) = self.chat.next_request() => self.on_chat(request),
                event = cluster::next_event(&mut self.cluster) => match event {
                    cluster::ClusterEvent::HandedOff(joined) => self.on_handed_off(joined),
                    cluster::ClusterEvent::Share(event) => self.on_share(event),
                    cluster::ClusterEvent::Threshold(answers) => self.on_threshold_answers(answers),
                },
                () = sleep => {}
                signal = signals.next() => match signal {
                    Some(Signal::Reload) => {
                        tracing::info!("SIGHUP: reloading the configuration");
                        self.reload(Trigger::Signal);
                        self.sync_chat_after_reload().await;
                    }
                    Some(Signal::Shutdown) | None => {
                        tracing::info!("stopping: persisting and sending what the rate limit allows");
                        return;
                    }
                },
                Some(()) = recv_config_change(&mut self.config_watch) => {
                    self.reload(Trigger::FileChange);
                    self.sync_chat_after_reload().await;
                }
                _ = keep_alive.tick(), if watchdog.is_some() => {
                    // Only while the tailing thread beats too: a wedged tailer gets the daemon
                    // restarted, not just a wedged main loop.
                    if self.health.is_alive(HEALTH_STALE) {
                        self.notifier.watchdog();
                    }
                }
                _ = tick.tick() => {
                    self.sync_silences();
                    if self.owes_commit() {
                        self.commit(None);
                    }
                    self.cluster_tick();
                    self.refresh_gauges();
                    self.publish_chat_health();
                    self.survey.tick(&self.pipeline, &self.metrics, Instant::now());
                }
            }
        }
    }

    /// SIGTERM/SIGINT: stop reading, persist, send what the budget allows within the shutdown
    /// timeout, and leave the rest on disk for the next start.
    async fn shutdown(&mut self) -> anyhow::Result<()> {
        self.notifier.stopping();
        self.journals.stop();
        self.stop_chat().await;
        let deadline = Instant::now() + self.options.shutdown_timeout;
        if self.tail.commands.send(TailCommand::Shutdown).is_ok() {
            loop {
                let remaining = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(remaining, self.tail.messages.recv()).await {
                    Ok(Some(TailMsg::Lines {
                        lines,
                        checkpoints,
                        globs,
                        ..
                    })) => {
                        self.latest_globs = globs;
                        self.on_lines(lines, checkpoints);
                    }
                    Ok(Some(TailMsg::Final { checkpoints })) => {
                        self.on_lines(Vec::new(), checkpoints);
                        break;
                    }
                    Ok(None) => break,
                    Err(_) => {
                        tracing::warn!("the tailer did not stop in time");
                        break;
                    }
                }
            }
        }
        loop {
            let wake_at = self.dispatch(Gathering::Skip);
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            // Nothing in flight and nothing sendable before the deadline (all sent, or every
            // robot waiting for its rate slot, a throttle pause or a backoff): stop now.
            if self.sends.is_empty() && wake_at.is_none_or(|w| w >= deadline) {
                break;
            }
            let until = wake_at.map_or(deadline, |w| w.min(deadline));
            tokio::select! {
                Some(joined) = self.sends.join_next_with_id() => self.on_sent(joined),
                () = tokio::time::sleep_until(until.into()) => {}
            }
        }
        self.cluster_stop(deadline).await;
        self.sends.abort_all();
        // Whatever waits for a commit, and a last try at what a failed commit left in memory.
        if self.owes_commit() {
            self.commit(None);
        }
        let left = self.dispatcher.n_undelivered();
        if let Some(reason) = &self.store_failure {
            anyhow::bail!(
                "stopped without saving the state (cannot write state: {reason}): {} and the latest file positions are lost; lines read since the last saved position will be read again at the next start",
                noun::count(left, "undelivered event")
            );
        }
        if left > 0 {
            tracing::info!(
                "{} kept in the state; they are sent after the next start",
                noun::count(left, "undelivered event")
            );
        }
        tracing::info!("stopped");
        Ok(())
    }

    fn refresh_gauges(&mut self) {
        let now = Instant::now();
        self.alerts.refresh_gauges(&self.metrics);
        for (robot, n) in self.dispatcher.undelivered() {
            self.metrics
                .pending_events
                .get_or_create(&RobotLabel {
                    robot: robot.to_string(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        for (robot, budget) in self.dispatcher.budgets(now) {
            self.metrics
                .rate_budget_left
                .get_or_create(&RobotLabel { robot })
                .set(i64::try_from(budget).unwrap_or(i64::MAX));
        }
        self.metrics
            .files_watched
            .set(i64::try_from(self.n_files).unwrap_or(i64::MAX));
        let status = self.status();
        if status != self.last_status {
            self.notifier.status(&status);
            self.last_status = status;
        }
    }

    fn n_rules(&self) -> usize {
        self.pipeline.n_rules()
    }

    /// The one-line summary for systemd's STATUS=.
    fn status(&self) -> String {
        let last = self.last_delivery.map_or_else(
            || "never".to_string(),
            |at| humantime::format_rfc3339_seconds(at).to_string(),
        );
        let mut status = format!(
            "{}, {}, {}, last delivery {last}",
            noun::count(self.n_files, "file"),
            noun::count(self.n_rules(), "rule"),
            noun::count(self.dispatcher.n_undelivered(), "pending event")
        );
        if let Some(reason) = &self.store_failure {
            status.push_str("; DEGRADED: cannot write state: ");
            status.push_str(reason);
        }
        if let Some(reload) = &self.reload_status {
            status.push_str("; ");
            status.push_str(reload);
        }
        if let Some(problem) = self.journals.problem() {
            status.push_str("; journal: ");
            status.push_str(&problem);
        }
        if let Some(link) = self.chat.link_status() {
            status.push_str("; ");
            status.push_str(&chat::status_word(&link));
        }
        status
    }
}

/// Gives the robots' queues the sends of the last window from before this start (or, with
/// `only`, of those robots), so that a restart does not reset what DingTalk still counts.
pub(crate) fn seed_send_history(
    store: &Store,
    dispatcher: &mut Dispatcher,
    config: &Config,
    only: Option<&BTreeSet<String>>,
) {
    let longest = config
        .robots
        .values()
        .map(|robot| robot.window)
        .max()
        .unwrap_or(Duration::from_secs(60));
    // The limiter guards a little more than the window; twice the window covers it.
    let recent = match store.recent_sends(SystemTime::now(), longest * 2) {
        Ok(recent) => recent,
        Err(err) => {
            tracing::error!("cannot read the send history: {err}; rate limits start afresh");
            return;
        }
    };
    let now = Instant::now();
    for (robot, ages) in recent {
        if only.is_some_and(|only| !only.contains(&robot)) {
            continue;
        }
        let sent: Vec<Instant> = ages
            .iter()
            .filter_map(|age| now.checked_sub(*age))
            .collect();
        dispatcher.seed_history(&robot, &sent);
    }
}

pub(crate) fn tailer_config(config: &Config) -> TailerConfig {
    TailerConfig {
        inputs: config.inputs.values().cloned().collect(),
    }
}

pub(crate) fn destinations(config: &Config) -> BTreeMap<String, Destination> {
    config
        .robots
        .iter()
        .map(|(name, robot)| (name.clone(), Destination::of(robot)))
        .collect()
}

pub(crate) fn unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
