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

pub mod config_watch;
pub mod deliver;
pub mod http;
pub mod signals;
pub mod systemd;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::batch::{Batch, Hit};
use crate::config::{Config, Diagnostic, Diagnostics};
use crate::daemon::config_watch::{ConfigWatch, watched_dirs};
use crate::daemon::deliver::{Destination, deliver};
use crate::daemon::http::{Health, Loop};
use crate::daemon::signals::{Signal, SignalStream};
use crate::daemon::systemd::Notifier;
use crate::dingtalk::Verdict;
use crate::dingtalk::{Client, ClientConfig, Outcome};
use crate::dispatch::queue::QueueConfig;
use crate::dispatch::{Dispatcher, Gathering, SendOrder};
use crate::event::LogLine;
use crate::metrics::{InputLabel, Metrics, OutcomeLabel, RobotLabel, RuleLabel};
use crate::pipeline::Pipeline;
use crate::state::{self, Store, globs, pending, sends};
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
const RELOAD_DEBOUNCE: Duration = Duration::from_millis(300);
/// How often the loop refreshes its status, metrics and health beat when nothing else happens.
const TICK: Duration = Duration::from_secs(1);
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
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let mut signals = SignalStream::install().context("cannot install signal handlers")?;

    let state_dir = pipeline.config.state_dir.clone();
    let mut store = Store::open(&state_dir)
        .with_context(|| format!("cannot open the state in {}", state_dir.display()))?;
    let first_start = store.is_first_start();
    let checkpoints = store
        .load_checkpoints()
        .context("cannot read the checkpoints")?;
    // Everything undelivered from the last run is pending again. Fold it into the gathering
    // generation on disk too, so that this run's in-flight ids cannot collide with old ones.
    let restored = store
        .transaction(|tx| {
            let all = pending::load_all(tx)?;
            for (robot, batch) in &all {
                pending::replace_all(tx, robot, batch)?;
            }
            Ok(all)
        })
        .context("cannot read the pending events")?;

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
    let history = if first_start {
        GlobHistory::FirstStart
    } else {
        let known = globs::load(store.connection()).context("cannot read the scanned globs")?;
        if known.is_empty() {
            // A state dir from before globs were recorded.
            GlobHistory::AllKnown
        } else {
            GlobHistory::Known(known)
        }
    };
    let tailer = Tailer::start_with_history(tailer_config(&pipeline.config), checkpoints, history)
        .context("cannot start tailing")?;
    // The first scan opened the files (at their end, with `start_at: end`): store where, before
    // anything else, so that a crash now does not read them from the beginning next time.
    let latest_checkpoints = tailer.checkpoints();
    let scanned = tailer.scanned_globs();
    let initial = ledger.changes(&latest_checkpoints);
    store
        .transaction(|tx| {
            state::save_checkpoint_changes(tx, &initial)?;
            globs::save(tx, &scanned)
        })
        .context("cannot store the first checkpoints")?;
    ledger.committed(&initial);
    let n_files = tailer.n_files();
    let (tail_tx, tail_rx) = mpsc::channel(4);
    let (command_tx, command_rx) = mpsc::unbounded_channel();
    // The tailer reads files with plain blocking calls: it gets a thread (and a small runtime)
    // of its own, so that a slow disk or a hung NFS read never stalls sends, reloads or /metrics.
    let tail_health = health.clone();
    let tail_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tailing thread's runtime")?;
    let tail_thread = std::thread::Builder::new()
        .name("dingtail-tail".into())
        .spawn(move || {
            tail_runtime.block_on(tail_loop(tailer, tail_tx, command_rx, tail_health));
        })
        .context("cannot start the tailing thread")?;

    let now = Instant::now();
    let mut dispatcher = Dispatcher::new(queue_configs(&pipeline.config));
    let mut n_restored = 0;
    for (robot, batch) in restored {
        n_restored += batch.count();
        if !dispatcher.has_robot(&robot) {
            tracing::warn!(
                "{} undelivered event(s) for robot `{robot}`, which is no longer configured, are kept until it is",
                batch.count()
            );
            continue;
        }
        dispatcher.restore(&robot, batch, now);
    }
    if n_restored > 0 {
        tracing::info!("{n_restored} undelivered event(s) from the last run will be sent");
    }
    seed_send_history(&store, &mut dispatcher, &pipeline.config, None);

    let config_watch = start_config_watch(&pipeline);
    let mut daemon = Daemon {
        options,
        pipeline: Arc::new(pipeline),
        destinations: BTreeMap::new(),
        store,
        dispatcher,
        client,
        metrics,
        health,
        notifier,
        command_tx,
        tail_rx,
        sends: JoinSet::new(),
        in_flight: HashMap::new(),
        dirty: BTreeSet::new(),
        ledger,
        // Never empty before the first lines: a commit before them (a restored batch sent at
        // once) must not read as "every file was let go".
        latest_checkpoints,
        saved_globs: scanned.clone(),
        latest_globs: scanned,
        n_files,
        last_delivery: None,
        store_failing: false,
        reload_status: None,
        last_status: String::new(),
        last_refusal: None,
        digest: 0,
        config_watch,
        match_buf: Vec::new(),
    };
    daemon.destinations = destinations(&daemon.pipeline.config);
    daemon.digest = digest(&daemon.pipeline);
    daemon.notifier.ready(&daemon.status());
    for warning in &daemon.pipeline.warnings {
        tracing::warn!("{warning}");
    }
    tracing::info!(
        "dingtail running: {} input(s), {} rule(s), {} robot(s), state in {}",
        daemon.pipeline.config.inputs.len(),
        daemon.n_rules(),
        daemon.pipeline.config.robots.len(),
        state_dir.display()
    );

    daemon.main_loop(&mut signals).await;
    daemon.shutdown().await;
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
    Ok(())
}

/// What asked for a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    /// SIGHUP: always reload and report.
    Signal,
    /// A watched file changed.
    FileChange,
}

/// What the tailing task hands to the main loop.
enum TailMsg {
    /// Lines read, and the checkpoints that are safe once they are durable.
    Lines {
        lines: Vec<LogLine>,
        checkpoints: Vec<Checkpoint>,
        globs: BTreeSet<(String, String)>,
        n_files: usize,
    },
    /// The last lines (held multi-line events) after a shutdown request; the task then ends.
    Final {
        lines: Vec<LogLine>,
        checkpoints: Vec<Checkpoint>,
    },
}

/// What the main loop asks of the tailing task.
enum TailCommand {
    Reconfigure(TailerConfig),
    Shutdown,
}

async fn tail_loop(
    mut tailer: Tailer,
    tx: mpsc::Sender<TailMsg>,
    mut commands: mpsc::UnboundedReceiver<TailCommand>,
    health: Arc<Health>,
) {
    let mut beat = tokio::time::interval(TICK);
    let mut sent = (tailer.checkpoints(), tailer.scanned_globs());
    loop {
        health.beat(Loop::Tail);
        let lines = tokio::select! {
            biased;
            command = commands.recv() => match command {
                // Events the new settings close (a removed input's, a changed joining's) go
                // out with the checkpoints that pass them.
                Some(TailCommand::Reconfigure(config)) => tailer.reconfigure(config),
                Some(TailCommand::Shutdown) | None => {
                    // The checkpoints before the shutdown: an event a `Joiner` still holds is
                    // not cut in two, it is read again whole after the next start.
                    let checkpoints = tailer.checkpoints();
                    drop(tailer.shutdown());
                    // The receiver waits for this message; if it is gone there is nobody to tell.
                    let _sent = tx.send(TailMsg::Final { lines: Vec::new(), checkpoints }).await;
                    return;
                }
            },
            _ = beat.tick() => Vec::new(),
            lines = tailer.next_batch() => lines,
        };
        // Lines, or positions that moved without lines (a file opened at its end by an input a
        // reload added, a file let go): both go to the main loop to be stored.
        let checkpoints = tailer.checkpoints();
        let globs = tailer.scanned_globs();
        if lines.is_empty() && checkpoints == sent.0 && globs == sent.1 {
            continue;
        }
        sent = (checkpoints.clone(), globs.clone());
        let n_files = tailer.n_files();
        if tx
            .send(TailMsg::Lines {
                lines,
                checkpoints,
                globs,
                n_files,
            })
            .await
            .is_err()
        {
            return;
        }
    }
}

/// The main loop's state.
struct Daemon {
    options: RunOptions,
    pipeline: Arc<Pipeline>,
    destinations: BTreeMap<String, Destination>,
    store: Store,
    dispatcher: Dispatcher,
    client: Client,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    notifier: Notifier,
    command_tx: mpsc::UnboundedSender<TailCommand>,
    tail_rx: mpsc::Receiver<TailMsg>,
    sends: JoinSet<Outcome>,
    /// Which send task carries which batch, so that a task that fails still reports its batch.
    in_flight: HashMap<tokio::task::Id, (String, u64)>,
    /// Robots whose gathering batch changed since the last successful commit.
    dirty: BTreeSet<String>,
    /// The checkpoints as stored: commits write only what moved since.
    ledger: CheckpointLedger,
    /// The tailer's latest checkpoints (safe once every match before them is stored).
    latest_checkpoints: Vec<Checkpoint>,
    /// The globs the tailer has scanned, and what the store holds of them.
    latest_globs: BTreeSet<(String, String)>,
    saved_globs: BTreeSet<(String, String)>,
    n_files: usize,
    last_delivery: Option<SystemTime>,
    store_failing: bool,
    reload_status: Option<String>,
    /// The STATUS= last sent, so that an idle daemon does not repeat it every tick.
    last_status: String,
    last_refusal: Option<String>,
    digest: u64,
    config_watch: Option<(ConfigWatch, mpsc::Receiver<()>, BTreeSet<PathBuf>)>,
    match_buf: Vec<crate::rules::RuleMatch>,
}

impl Daemon {
    async fn main_loop(&mut self, signals: &mut SignalStream) {
        let watchdog = self.notifier.watchdog_interval();
        let mut tick = tokio::time::interval(TICK);
        // Half of WATCHDOG_USEC, from this loop: a wedged loop stops the keep-alives.
        let mut keep_alive = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        loop {
            self.health.beat(Loop::Dispatch);
            let wake_at = self.dispatch(Gathering::Wait);
            let sleep = tokio::time::sleep_until(
                wake_at.map_or_else(|| tokio::time::Instant::now() + TICK * 60, Into::into),
            );
            tokio::select! {
                message = self.tail_rx.recv() => match message {
                    Some(TailMsg::Lines { lines, checkpoints, globs, n_files }) => {
                        self.latest_globs = globs;
                        self.n_files = n_files;
                        self.metrics
                            .files_watched
                            .set(i64::try_from(n_files).unwrap_or(i64::MAX));
                        self.on_lines(lines, checkpoints);
                    }
                    Some(TailMsg::Final { lines, checkpoints }) => {
                        // Not asked for: the tailer stopped on its own. Keep what it gave.
                        self.on_lines(lines, checkpoints);
                        tracing::error!("the tailer stopped; shutting down");
                        return;
                    }
                    None => {
                        tracing::error!("the tailing task ended; shutting down");
                        return;
                    }
                },
                Some(joined) = self.sends.join_next_with_id() => self.on_sent(joined),
                () = sleep => {}
                signal = signals.next() => match signal {
                    Some(Signal::Reload) => {
                        tracing::info!("SIGHUP: reloading the configuration");
                        self.reload(Trigger::Signal);
                    }
                    Some(Signal::Shutdown) | None => {
                        tracing::info!("stopping: persisting and sending what the rate limit allows");
                        return;
                    }
                },
                Some(()) = recv_config_change(&mut self.config_watch) => {
                    self.reload(Trigger::FileChange);
                }
                _ = keep_alive.tick(), if watchdog.is_some() => {
                    // Only while the tailing thread beats too: a wedged tailer gets the daemon
                    // restarted, not just a wedged main loop.
                    if self.health.is_alive(HEALTH_STALE) {
                        self.notifier.watchdog();
                    }
                }
                _ = tick.tick() => {
                    if self.store_failing || !self.dirty.is_empty() {
                        self.commit(None);
                    }
                    self.refresh_gauges();
                }
            }
        }
    }

    /// Matches `lines`, queues the hits and makes them durable together with `checkpoints`.
    fn on_lines(&mut self, lines: Vec<LogLine>, checkpoints: Vec<Checkpoint>) {
        let now = Instant::now();
        let pipeline = self.pipeline.clone();
        let host = pipeline.config.host.as_str();
        // Counted per batch and input, not per line: metric lookups lock and clone labels.
        let mut read: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
        for line in &lines {
            let counts = read.entry(line.input.as_str()).or_default();
            counts.0 += 1;
            counts.1 += line.end_offset.saturating_sub(line.start_offset);
            counts.2 += u64::from(line.truncated);
            let Some(rule_set) = pipeline.rules.get(&line.input) else {
                continue;
            };
            rule_set.matches(&line.text, &mut self.match_buf);
            if self.match_buf.is_empty() {
                continue;
            }
            let file = line.path.to_string_lossy();
            for found in self.match_buf.drain(..) {
                let Some(rule) = rule_set.rules().get(found.rule) else {
                    continue;
                };
                self.metrics
                    .matches
                    .get_or_create(&RuleLabel {
                        rule: rule.name().to_string(),
                    })
                    .inc();
                for robot in rule.robots() {
                    let hit = Hit {
                        rule: rule.name(),
                        severity: rule.severity(),
                        line: &line.text,
                        file: &file,
                        host,
                        at: line.read_at,
                        mentions: rule.mentions(),
                    };
                    let render = || pipeline.renderer.render_match(rule, &found, line, host);
                    if self.dispatcher.on_hit(robot, hit, render, now) {
                        self.dirty.insert(robot.clone());
                    }
                }
            }
        }
        for (input, (n_lines, n_bytes, n_truncated)) in read {
            let input = InputLabel {
                input: input.to_string(),
            };
            self.metrics
                .lines_read
                .get_or_create(&input)
                .inc_by(n_lines);
            self.metrics
                .bytes_read
                .get_or_create(&input)
                .inc_by(n_bytes);
            if n_truncated > 0 {
                self.metrics
                    .lines_truncated
                    .get_or_create(&input)
                    .inc_by(n_truncated);
            }
        }
        self.latest_checkpoints = checkpoints;
        self.commit(None);
    }

    /// Makes the state on disk catch up with memory, in one transaction: the gathering batch of
    /// every robot changed since the last successful commit, the checkpoints that moved since, and,
    /// with `send`, a batch about to be sent marked in flight. On failure nothing moves forward
    /// on disk; the robots stay dirty and the next commit (the next lines, the next send, or the
    /// next tick) carries all of it. Checkpoints are written only together with every match
    /// before them, so they never get ahead of durable output.
    fn commit(&mut self, send: Option<(&str, u64, &Batch)>) -> bool {
        let changes = self.ledger.changes(&self.latest_checkpoints);
        let globs_moved = self.latest_globs != self.saved_globs;
        if changes.is_empty() && self.dirty.is_empty() && send.is_none() && !globs_moved {
            return true;
        }
        let latest_globs = &self.latest_globs;
        let dispatcher = &self.dispatcher;
        let dirty = &self.dirty;
        let result = self.store.transaction(|tx| {
            for robot in dirty {
                if let Some((sending, _, batch)) = send {
                    if sending == robot {
                        // Nothing else is in flight for this robot: its rows are this batch.
                        pending::replace_all(tx, robot, batch)?;
                        continue;
                    }
                }
                match dispatcher.gathering(robot) {
                    Some(batch) if dispatcher.is_in_flight(robot) => {
                        pending::put_gathering(tx, robot, batch)?;
                    }
                    // Nothing in flight: the gathering batch is all there is. Rewriting all of
                    // the robot's rows also clears what a failed commit after a send left.
                    Some(batch) => pending::replace_all(tx, robot, batch)?,
                    // The robot's queue is gone (a reload removed it once it was empty): what
                    // is left on disk was delivered.
                    None => pending::replace_all(tx, robot, &Batch::default())?,
                }
            }
            state::save_checkpoint_changes(tx, &changes)?;
            if globs_moved {
                globs::save(tx, latest_globs)?;
            }
            if let Some((robot, id, _)) = send {
                pending::mark_in_flight(tx, robot, id)?;
                sends::record(tx, robot, SystemTime::now())?;
            }
            Ok(())
        });
        let ok = result.is_ok();
        if ok {
            self.dirty.clear();
            self.ledger.committed(&changes);
            if globs_moved {
                self.saved_globs.clone_from(&self.latest_globs);
            }
        }
        self.note_store_result(result, "cannot store matches and checkpoints");
        ok
    }

    fn note_store_result<T>(&mut self, result: Result<T, state::StateError>, what: &str) {
        match result {
            Ok(_) => {
                if self.store_failing {
                    tracing::info!("the state store works again");
                    self.store_failing = false;
                }
            }
            Err(err) => {
                if !self.store_failing {
                    tracing::error!(
                        "{what}: {err}; keeping them in memory and retrying every second"
                    );
                    self.store_failing = true;
                }
            }
        }
    }

    /// Starts every send that is due; returns when to look again.
    fn dispatch(&mut self, gathering: Gathering) -> Option<Instant> {
        let decisions = self.dispatcher.poll(Instant::now(), gathering);
        for order in decisions.sends {
            self.start_send(order);
        }
        decisions.wake_at
    }

    fn start_send(&mut self, order: SendOrder) {
        let SendOrder { robot, id, batch } = order;
        let now = Instant::now();
        let Some(destination) = self.destinations.get(&robot).cloned() else {
            // The robot was removed by a reload while it still had undelivered events: they stay
            // queued, and on disk as they are, until a config names it again.
            self.dispatcher
                .on_verdict(&robot, id, Verdict::Rejected, now, 0.5);
            return;
        };
        // Marked in flight together with everything not yet on disk (this robot's unsaved
        // matches above all), or not sent at all.
        if !self.commit(Some((&robot, id, &batch))) {
            self.dispatcher
                .on_verdict(&robot, id, Verdict::Transient, now, rand::random::<f64>());
            self.dirty.insert(robot);
            return;
        }
        let client = self.client.clone();
        let pipeline = self.pipeline.clone();
        let handle = self
            .sends
            .spawn(async move { deliver(&client, pipeline, &destination, &batch).await });
        self.in_flight.insert(handle.id(), (robot, id));
    }

    fn on_sent(&mut self, joined: Result<(tokio::task::Id, Outcome), tokio::task::JoinError>) {
        let (task, outcome) = match joined {
            Ok(done) => done,
            Err(err) => {
                // Send tasks do not panic by design; if one did (or was cancelled), its batch is
                // treated as not delivered, so the robot's queue does not wait for it forever.
                tracing::error!("a send task failed: {err}");
                (
                    err.id(),
                    Outcome::Transient {
                        reason: format!("the send task failed: {err}"),
                    },
                )
            }
        };
        let Some((robot, id)) = self.in_flight.remove(&task) else {
            return;
        };
        let label = RobotLabel {
            robot: robot.clone(),
        };
        let now = Instant::now();
        match &outcome {
            Outcome::Delivered => {
                self.metrics.messages_sent.get_or_create(&label).inc();
                self.last_delivery = Some(SystemTime::now());
                self.metrics.last_delivery_seconds.set(unix_seconds());
                tracing::debug!("robot `{robot}`: batch {id} delivered");
            }
            Outcome::Throttled { code, .. } => {
                self.metrics.messages_throttled.get_or_create(&label).inc();
                // The queue pauses for the configured `throttle_pause`; say until when.
                let pause = self
                    .pipeline
                    .config
                    .robots
                    .get(&robot)
                    .map_or(crate::dingtalk::THROTTLE_PAUSE, |r| r.throttle_pause);
                tracing::warn!(
                    "robot `{robot}`: DingTalk throttled it (errcode {code}); quiet until {} and batching meanwhile",
                    humantime::format_rfc3339_seconds(SystemTime::now() + pause)
                );
            }
            Outcome::Rejected { code, reason } if outcome.verdict() == Verdict::RejectedContent => {
                self.metrics.messages_failed.get_or_create(&label).inc();
                tracing::error!(
                    "robot `{robot}`: DingTalk refused the message's content (errcode {code}): {reason}; sending the counts again without sample lines"
                );
            }
            Outcome::Rejected { code, reason } => {
                self.metrics.messages_failed.get_or_create(&label).inc();
                tracing::error!(
                    "robot `{robot}`: DingTalk rejected the message (errcode {code}): {reason}; the events are kept and retried slowly — check the robot's webhook, secret and keywords"
                );
            }
            Outcome::Transient { reason } => {
                self.metrics.messages_failed.get_or_create(&label).inc();
                tracing::warn!(
                    "robot `{robot}`: delivery failed ({reason}); retrying with backoff"
                );
            }
        }
        let dropped =
            self.dispatcher
                .on_verdict(&robot, id, outcome.verdict(), now, rand::random::<f64>());
        if dropped > 0 {
            self.metrics
                .events_dropped
                .get_or_create(&label)
                .inc_by(dropped);
            tracing::error!(
                "robot `{robot}`: DingTalk refused even the counts of {dropped} event(s) without their lines; they are given up so that later alerts get through"
            );
        }
        let dispatcher = &self.dispatcher;
        let result = self.store.transaction(|tx| {
            if matches!(outcome, Outcome::Delivered) || dropped > 0 {
                pending::delete_in_flight(tx, &robot, id)?;
            } else if let Some(batch) = dispatcher.gathering(&robot) {
                pending::replace_all(tx, &robot, batch)?;
            }
            sends::restamp_last(tx, &robot, SystemTime::now())?;
            Ok(())
        });
        if result.is_err() {
            self.dirty.insert(robot);
        }
        self.note_store_result(result, "cannot record a delivery");
    }

    /// Loads the config on the side; a valid one replaces the running one, an invalid one is
    /// refused with its diagnostics and the old one keeps running. A file change that changed
    /// nothing (same bytes, or the same errors as last time) is not reported again.
    fn reload(&mut self, trigger: Trigger) {
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
                for warning in &self.pipeline.warnings {
                    tracing::warn!("{warning}");
                }
                tracing::info!(
                    "reloaded: {} input(s), {} rule(s), {} robot(s)",
                    self.pipeline.config.inputs.len(),
                    self.n_rules(),
                    self.pipeline.config.robots.len()
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
                    "reload refused, the running configuration stays in force: {} problem(s)",
                    diagnostics.0.len()
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
    ) -> Result<BTreeMap<String, Batch>, state::StateError> {
        let new: BTreeSet<&String> = pipeline
            .config
            .robots
            .keys()
            .filter(|robot| !self.dispatcher.has_robot(robot))
            .collect();
        if new.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut all = pending::load_all(self.store.connection())?;
        all.retain(|robot, _| new.contains(robot));
        Ok(all)
    }

    fn apply(&mut self, pipeline: Pipeline, restored: BTreeMap<String, Batch>) {
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
            .command_tx
            .send(TailCommand::Reconfigure(tailer_config(&pipeline.config)))
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
        self.dispatcher.reconfigure(queue_configs(&pipeline.config));
        let now = Instant::now();
        for (robot, batch) in restored {
            tracing::info!(
                "robot `{robot}`: {} undelivered event(s) from before will be sent",
                batch.count()
            );
            self.dispatcher.restore(&robot, batch, now);
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
    }

    /// SIGTERM/SIGINT: stop reading, persist, send what the budget allows within the shutdown
    /// timeout, and leave the rest on disk for the next start.
    async fn shutdown(&mut self) {
        self.notifier.stopping();
        let deadline = Instant::now() + self.options.shutdown_timeout;
        if self.command_tx.send(TailCommand::Shutdown).is_ok() {
            loop {
                let remaining = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(remaining, self.tail_rx.recv()).await {
                    Ok(Some(TailMsg::Lines {
                        lines,
                        checkpoints,
                        globs,
                        ..
                    })) => {
                        self.latest_globs = globs;
                        self.on_lines(lines, checkpoints);
                    }
                    Ok(Some(TailMsg::Final { lines, checkpoints })) => {
                        self.on_lines(lines, checkpoints);
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
        self.sends.abort_all();
        // A last try at whatever a failed commit left in memory.
        if self.store_failing || !self.dirty.is_empty() {
            self.commit(None);
        }
        let left = self.dispatcher.n_undelivered();
        if left > 0 {
            tracing::info!(
                "{left} undelivered event(s) kept in the state; they are sent after the next start"
            );
        }
        tracing::info!("stopped");
    }

    fn refresh_gauges(&mut self) {
        let now = Instant::now();
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
            "{} file(s), {} rule(s), {} pending event(s), last delivery {last}",
            self.n_files,
            self.n_rules(),
            self.dispatcher.n_undelivered()
        );
        if let Some(reload) = &self.reload_status {
            status.push_str("; ");
            status.push_str(reload);
        }
        status
    }
}

async fn recv_config_change(
    watch: &mut Option<(ConfigWatch, mpsc::Receiver<()>, BTreeSet<PathBuf>)>,
) -> Option<()> {
    match watch {
        Some((_, rx, _)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn start_config_watch(
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
fn digest(pipeline: &Pipeline) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for path in std::iter::once(&pipeline.config.source).chain(&pipeline.rule_files) {
        path.hash(&mut hasher);
        std::fs::read(path).unwrap_or_default().hash(&mut hasher);
    }
    hasher.finish()
}

/// Gives the robots' queues the sends of the last window from before this start (or, with
/// `only`, of those robots), so that a restart does not reset what DingTalk still counts.
fn seed_send_history(
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
    let recent = match sends::recent(store.connection(), SystemTime::now(), longest * 2) {
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

fn tailer_config(config: &Config) -> TailerConfig {
    TailerConfig {
        inputs: config.inputs.values().cloned().collect(),
    }
}

fn queue_configs(config: &Config) -> Vec<(String, QueueConfig)> {
    config
        .robots
        .iter()
        .map(|(name, robot)| {
            (
                name.clone(),
                QueueConfig {
                    per_minute: robot.per_minute,
                    window: robot.window,
                    linger: robot.linger,
                    throttle_pause: robot.throttle_pause,
                },
            )
        })
        .collect()
}

fn destinations(config: &Config) -> BTreeMap<String, Destination> {
    config
        .robots
        .iter()
        .map(|(name, robot)| (name.clone(), Destination::of(robot)))
        .collect()
}

fn unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The default path of the main config, for messages.
pub fn default_config_path() -> &'static Path {
    Path::new(crate::config::DEFAULT_CONFIG_PATH)
}
