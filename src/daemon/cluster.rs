//! The daemon's side of the cluster (issue 15): narrow hooks that the main loop calls, so that
//! a daemon without `cluster:` runs no Redis code at all.
//!
//! The robots' queues stay the daemon's own; only what a due send means changes with the
//! node's [`Mode`]:
//! - `Handoff`: the batch is marked in flight in the store as for a send, then handed to Redis
//!   ([`crate::cluster::handoff`]). Redis's confirmation counts as delivery (the local rows go);
//!   no answer makes the batch doubtful, and it is handed off again by itself, with the same id
//!   — a new batch is not handed off while one is unconfirmed, so that nothing merges with it.
//!   The queues run at [`handoff_pace`]; the lease holder's node sends to DingTalk.
//! - `Local` (Redis unreachable, or this host name taken): nothing leaves; the batch folds back,
//!   durable as before.
//! - `Fallback`: the send goes to DingTalk directly, the queues at [`share`] of the budget; the
//!   node hears of each send to put it into the ledger when Redis is back.

mod silences;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use tokio::task::JoinSet;

use crate::batch::Batch;
use crate::cluster::handoff::{HandedOff, hand_off};
use crate::cluster::link::{Mode, handoff_pace, share};
use crate::cluster::node::{self, Deliver, NodeHandle, RobotSpec};
use crate::cluster::share::{self as silence_share, ShareEvent, ShareHandle};
use crate::cluster::threshold::Answer;
use crate::cluster::threshold_io;
use crate::daemon::Daemon;
use crate::daemon::deliver::{Destination, deliver};
use crate::daemon::intake::Sending;
use crate::dingtalk::draft::Note;
use crate::dingtalk::{Client, Outcome, Rejection, Verdict};
use crate::dispatch::SendOrder;
use crate::dispatch::queue::QueueConfig;
use crate::pipeline::Pipeline;

/// How long one `scope: cluster` threshold exchange may take before it counts as failed.
const THRESHOLD_TIMEOUT: Duration = Duration::from_secs(3);

/// What the deliver callback of the node reads: the daemon's current pipeline and
/// destinations (a reload replaces them).
struct Shared {
    client: Client,
    pipeline: Arc<Pipeline>,
    destinations: BTreeMap<String, Destination>,
}

/// The cluster as the main loop holds it.
pub(crate) struct ClusterHook {
    node: NodeHandle,
    /// The settings the node runs with (a reload does not change them).
    config: crate::config::ClusterConfig,
    mode: Mode,
    lease: Duration,
    /// Robot name → rid.
    rids: BTreeMap<String, String>,
    tasks: JoinSet<HandedOff>,
    in_flight: HashMap<tokio::task::Id, (String, u64)>,
    shared: Arc<RwLock<Shared>>,
    /// Silences and acknowledgements shared through Redis.
    share: ShareHandle,
    /// The `scope: cluster` threshold exchange under way (at most one).
    thresholds: JoinSet<Option<Vec<Answer>>>,
}

/// The robots of `pipeline` as the node needs them.
fn robot_specs(pipeline: &Pipeline) -> Vec<RobotSpec> {
    pipeline
        .config
        .robots
        .values()
        .map(|robot| RobotSpec {
            name: robot.name.clone(),
            rid: crate::cluster::rid(robot),
            queue: QueueConfig::of(robot),
        })
        .collect()
}

/// What the cluster's tasks report to the main loop.
pub(crate) enum ClusterEvent {
    /// A hand-off ended.
    HandedOff(Result<(tokio::task::Id, HandedOff), tokio::task::JoinError>),
    /// The silence task asks something.
    Share(ShareEvent),
    /// A `scope: cluster` threshold exchange ended (`None`: it failed).
    Threshold(Option<Vec<Answer>>),
}

/// Waits for the next hand-off to end or the next request of the silence task (never, without
/// a cluster).
pub(crate) async fn next_event(hook: &mut Option<ClusterHook>) -> ClusterEvent {
    let Some(hook) = hook else {
        return std::future::pending().await;
    };
    tokio::select! {
        Some(joined) = hook.tasks.join_next_with_id(), if !hook.tasks.is_empty() => {
            ClusterEvent::HandedOff(joined)
        }
        Some(event) = hook.share.next() => ClusterEvent::Share(event),
        Some(joined) = hook.thresholds.join_next(), if !hook.thresholds.is_empty() => {
            ClusterEvent::Threshold(joined.ok().flatten())
        }
        else => std::future::pending().await,
    }
}

impl Daemon {
    /// With `cluster:`, starts the node and puts the queues in the node's mode.
    ///
    /// # Errors
    /// The Redis URL is unusable, or another daemon runs with this host name.
    pub(crate) async fn start_cluster(&mut self) -> anyhow::Result<()> {
        let Some(config) = self.pipeline.config.cluster.clone() else {
            return Ok(());
        };
        let shared = Arc::new(RwLock::new(Shared {
            client: self.client.clone(),
            pipeline: self.pipeline.clone(),
            destinations: self.destinations.clone(),
        }));
        let reader = shared.clone();
        let deliver: Deliver = Arc::new(move |robot: String, batch: Batch, repeat: bool| {
            let current = reader.read().ok().map(|shared| {
                (
                    shared.client.clone(),
                    shared.pipeline.clone(),
                    shared.destinations.get(&robot).cloned(),
                )
            });
            Box::pin(async move {
                let Some((client, pipeline, Some(destination))) = current else {
                    return Outcome::Rejected {
                        code: 0,
                        reason: Rejection::Request(format!("robot `{robot}` is not configured")),
                        errmsg: String::new(),
                    };
                };
                let notes = if repeat {
                    vec![Note::PossibleRepeat]
                } else {
                    Vec::new()
                };
                deliver(&client, pipeline, &robot, &destination, &batch, notes).await
            })
        });
        let host = self.pipeline.config.host.clone();
        let node = node::start(
            &config,
            &host,
            self.pipeline.config.state_dir.clone(),
            robot_specs(&self.pipeline),
            deliver,
            self.metrics.clone(),
        )
        .await
        .context("cannot join the cluster")?;
        let mode = node.status.borrow().mode;
        tracing::info!(
            "cluster: host `{host}` through Redis at {} ({})",
            config.redis_shown,
            describe(mode)
        );
        // A fresh or recovered database has lost the silences: what was in step is forgotten
        // rather than taken for unmutes here (which would end them on every host).
        let state_lost = self.store.is_first_start() || self.store.recovered().is_some();
        let share = silence_share::start(
            node.conn.clone(),
            node.keys.clone(),
            host.clone(),
            self.pipeline.config.state_dir.clone(),
            state_lost,
            self.metrics.clone(),
        );
        self.alerts.share_ends(true);
        // `scope: cluster` rules count here until the first threshold exchange succeeds.
        self.metrics
            .cluster_threshold_local
            .set(i64::from(!self.alerts.scope.is_empty()));
        self.cluster = Some(ClusterHook {
            share,
            node,
            config: config.clone(),
            mode,
            lease: config.lease,
            rids: rids(&self.pipeline),
            tasks: JoinSet::new(),
            in_flight: HashMap::new(),
            shared,
            thresholds: JoinSet::new(),
        });
        self.apply_cluster_mode();
        Ok(())
    }

    /// A send is due: hands it to Redis, folds it back, or (returned) lets it go to DingTalk.
    pub(crate) fn cluster_route(&mut self, order: SendOrder) -> Option<SendOrder> {
        let Some(hook) = self.cluster.as_mut() else {
            return Some(order);
        };
        let Some(rid) = hook.rids.get(&order.robot).cloned() else {
            return Some(order);
        };
        let now = Instant::now();
        let unconfirmed_waits = self
            .dispatcher
            .doubtful(&order.robot)
            .is_some_and(|doubtful| !doubtful.is_empty());
        match hook.mode {
            Mode::Fallback { .. } => {
                hook.node.note_direct_send(&rid, now);
                Some(order)
            }
            Mode::Handoff if order.repeat || !unconfirmed_waits => {
                let SendOrder {
                    robot,
                    id,
                    batch,
                    repeat,
                } = order;
                let sending = Sending {
                    robot: &robot,
                    id,
                    batch: &batch,
                    repeat,
                };
                if !self.commit(Some(sending)) {
                    self.dirty.insert(robot.clone());
                }
                // Present: checked above, and nothing in between removes it.
                let hook = self.cluster.as_mut()?;
                let (conn, keys, host) = (
                    hook.node.conn.clone(),
                    hook.node.keys.clone(),
                    hook.node.host.clone(),
                );
                let retry_for = hook.lease;
                let task = hook.tasks.spawn(async move {
                    hand_off(conn, &keys, &rid, &host, &batch, retry_for).await
                });
                hook.in_flight.insert(task.id(), (robot, id));
                None
            }
            // Redis unreachable, or an unconfirmed hand-off waits: the batch stays here.
            Mode::Handoff | Mode::Local => {
                self.dispatcher.on_verdict(
                    &order.robot,
                    order.id,
                    Verdict::Transient,
                    now,
                    rand::random::<f64>(),
                );
                None
            }
        }
    }

    /// A hand-off ended: Redis has the batch (the local copy goes), does not (it stays), or may
    /// (it is handed off again by itself).
    pub(crate) fn on_handed_off(
        &mut self,
        joined: Result<(tokio::task::Id, HandedOff), tokio::task::JoinError>,
    ) {
        let (task, result) = match joined {
            Ok(done) => done,
            Err(err) => (
                err.id(),
                HandedOff::Unconfirmed {
                    reason: format!("the hand-off task failed: {err}"),
                },
            ),
        };
        let Some((robot, id)) = self
            .cluster
            .as_mut()
            .and_then(|hook| hook.in_flight.remove(&task))
        else {
            return;
        };
        let verdict = match &result {
            HandedOff::Done => {
                tracing::debug!("cluster: robot `{robot}`: batch {id} handed off");
                self.dispatcher.lift_network_waits();
                Verdict::Delivered
            }
            HandedOff::NotAdded { reason } => {
                tracing::warn!("cluster: robot `{robot}`: hand-off failed ({reason}); kept here");
                Verdict::Transient
            }
            HandedOff::Unconfirmed { reason } => {
                tracing::warn!(
                    "cluster: robot `{robot}`: hand-off unconfirmed ({reason}); kept here and handed off again by itself (Redis adds it once)"
                );
                Verdict::Unknown
            }
        };
        let now = Instant::now();
        self.dispatcher
            .on_verdict(&robot, id, verdict, now, rand::random::<f64>());
        // The robot's rows as it now stands, with the checkpoints (see `Daemon::commit_with`).
        self.dirty.insert(robot);
        self.commit_with(None, &[], "cannot record a hand-off");
    }

    /// Every tick: follow the node's mode, tell it how much this host holds.
    pub(crate) fn cluster_tick(&mut self) {
        let pending = self.dispatcher.n_undelivered();
        let Some(hook) = self.cluster.as_mut() else {
            return;
        };
        hook.node.set_pending(pending);
        hook.share.snapshot(self.alerts.silence_records());
        if hook.thresholds.is_empty()
            && let Some(steps) = self.alerts.scope.take_steps(SystemTime::now())
        {
            let mut conn = hook.node.conn.clone();
            let keys = hook.node.keys.clone();
            // The cluster's name for this daemon (a reloaded `host:` waits for a restart).
            let host = hook.node.host.clone();
            let hold_ms = u64::try_from(hook.lease.as_millis()).unwrap_or(u64::MAX);
            self.metrics.cluster_threshold_flushes.inc();
            hook.thresholds.spawn(async move {
                let exchange = threshold_io::exchange(&mut conn, &keys, &host, hold_ms, &steps);
                match tokio::time::timeout(THRESHOLD_TIMEOUT, exchange).await {
                    Ok(Ok(answers)) => Some(answers),
                    Ok(Err(err)) => {
                        tracing::debug!("cluster: a threshold exchange failed: {err}");
                        None
                    }
                    Err(_) => {
                        tracing::debug!("cluster: a threshold exchange timed out");
                        None
                    }
                }
            });
        }
        let mode = hook.node.status.borrow().mode;
        if mode == hook.mode {
            return;
        }
        tracing::info!("cluster: {}", describe(mode));
        hook.mode = mode;
        self.apply_cluster_mode();
        if mode != Mode::Local {
            // Batches kept while Redis was unreachable go now (handed off, or directly at the
            // share), not after their backoff.
            self.dispatcher.lift_network_waits();
        }
    }

    /// A reload replaced the pipeline: the node and the deliver callback follow, and the queues
    /// keep the cluster's pace.
    pub(crate) fn cluster_reconfigured(&mut self) {
        let Some(hook) = self.cluster.as_mut() else {
            if self.pipeline.config.cluster.is_some() {
                tracing::warn!("`cluster` was added; it takes effect after a restart");
            }
            return;
        };
        if self.pipeline.config.cluster.as_ref() != Some(&hook.config)
            || self.pipeline.config.host != hook.node.host
        {
            tracing::warn!(
                "`cluster` or `host` changed; the cluster keeps its settings until a restart"
            );
        }
        if let Ok(mut shared) = hook.shared.write() {
            shared.pipeline = self.pipeline.clone();
            shared.destinations = self.destinations.clone();
        }
        hook.rids = rids(&self.pipeline);
        hook.node.set_robots(robot_specs(&self.pipeline));
        self.apply_cluster_mode();
    }

    /// Shutdown: hands off what is due within `deadline`, then gives the leases back.
    pub(crate) async fn cluster_stop(&mut self, deadline: Instant) {
        if self.cluster.is_none() {
            return;
        }
        loop {
            self.dispatch(crate::dispatch::Gathering::Skip);
            let Some(hook) = self.cluster.as_mut() else {
                return;
            };
            if hook.tasks.is_empty() || Instant::now() >= deadline {
                break;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, hook.tasks.join_next_with_id()).await {
                Ok(Some(joined)) => self.on_handed_off(joined),
                Ok(None) | Err(_) => break,
            }
        }
        if let Some(mut hook) = self.cluster.take() {
            hook.tasks.abort_all();
            let within = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(2));
            hook.share.stop(Duration::from_secs(2)).await;
            hook.node.stop(within).await;
        }
    }

    /// Puts every robot's queue at the pace of the current mode.
    fn apply_cluster_mode(&mut self) {
        let Some(hook) = self.cluster.as_ref() else {
            return;
        };
        let mode = hook.mode;
        let configs = QueueConfig::of_robots(&self.pipeline.config)
            .into_iter()
            .map(|(name, config)| {
                let config = match mode {
                    Mode::Handoff | Mode::Local => handoff_pace(config),
                    Mode::Fallback { hosts } => share(config, hosts),
                };
                (name, config)
            });
        self.dispatcher.reconfigure(configs);
    }
}

fn rids(pipeline: &Pipeline) -> BTreeMap<String, String> {
    pipeline
        .config
        .robots
        .values()
        .map(|robot| (robot.name.clone(), crate::cluster::rid(robot)))
        .collect()
}

fn describe(mode: Mode) -> String {
    match mode {
        Mode::Handoff => "handing batches off to the robots' senders".into(),
        Mode::Local => "Redis unreachable: matches are kept here".into(),
        Mode::Fallback { hosts } => format!(
            "Redis unreachable for too long: sending directly at this host's share (1/{hosts}) of each robot's budget"
        ),
    }
}
