//! The cluster node: one task per daemon that beats, holds the robots' sender leases and sends
//! what every host handed off. The I/O edge of the cluster: it asks the pure [`Link`],
//! [`LeaseTimer`] and [`HolderQueue`] what to do and does it against Redis and DingTalk.
//!
//! Every `lease / 3` it beats (claims its host name, says how many matches it holds, learns the
//! host count and whether Redis is reachable) and claims or renews each robot's lease. On a
//! takeover it creates the robot's consumer group if needed, reads which entries the last
//! holder had in flight (they go out alone, marked as possible repeats) and claims every entry
//! not acknowledged (`XAUTOCLAIM`); while holding it polls for new entries every
//! [`READ_EVERY`]. Sends run as tasks: the ledger's permit first (which also checks the lease
//! and records the entries in flight), then the POST through the daemon's own delivery; the
//! entries are acknowledged only after errcode 0. The daemon talks to the node through a
//! [`NodeHandle`].

mod send;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::batch::Batch;
use crate::cluster::holder::{HolderQueue, LeaseTimer};
use crate::cluster::link::{Change, Link, Mode};
use crate::cluster::node::send::SendDone;
use crate::cluster::{Keys, redis_io};
use crate::config::ClusterConfig;
use crate::dingtalk::Outcome;
use crate::dispatch::queue::QueueConfig;
use crate::metrics::{Metrics, RobotLabel};

/// How often the holder looks for new hand-offs.
pub const READ_EVERY: Duration = Duration::from_millis(200);
/// Entries read per call.
const READ_COUNT: usize = 500;
/// Hosts whose heartbeat is older than this are not counted for the fallback share.
const HOSTS_RECENT: Duration = Duration::from_secs(600);
/// The file in the state dir that keeps the host count for a start while Redis is down.
const HOSTS_FILE: &str = "cluster-hosts";

/// Delivers one batch to a robot (the daemon's delivery): robot name, batch, possible repeat.
pub type Deliver = Arc<dyn Fn(String, Batch, bool) -> BoxFuture<'static, Outcome> + Send + Sync>;

/// One robot as the node sees it.
#[derive(Clone, Debug)]
pub struct RobotSpec {
    /// The robot's name.
    pub name: String,
    /// Its id in the key space ([`crate::cluster::rid`]).
    pub rid: String,
    /// Its timing (budget, window, pauses).
    pub queue: QueueConfig,
}

/// What the node tells the daemon.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeStatus {
    /// Hand off, keep local, or send directly.
    pub mode: Mode,
    /// Hosts last seen.
    pub hosts: Option<u32>,
    /// Another running daemon has this host name: this one neither hands off nor sends.
    pub conflict: bool,
    /// Robots whose lease this host holds.
    pub senders: BTreeSet<String>,
}

/// Why the node did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The URL was refused by the client (never shown: it may hold the password).
    #[error("cluster: cannot use the Redis URL {shown}: {kind}")]
    Url {
        /// The URL without its password.
        shown: String,
        /// What kind of problem.
        kind: String,
    },
    /// Another daemon runs with this host name.
    #[error(
        "cluster: another dingtail is running as host `{host}` (its heartbeat in Redis is live); \
         give each daemon its own `host:`"
    )]
    NameTaken {
        /// The host name.
        host: String,
    },
}

/// The daemon's side of the node.
pub struct NodeHandle {
    /// The Redis connection (shared, reconnecting), for hand-offs.
    pub conn: ConnectionManager,
    /// The key names.
    pub keys: Keys,
    /// This daemon's name in the cluster.
    pub host: String,
    /// What the node says, updated as it changes.
    pub status: watch::Receiver<NodeStatus>,
    robots: watch::Sender<Vec<RobotSpec>>,
    pending: watch::Sender<u64>,
    direct: mpsc::UnboundedSender<(String, Instant)>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl NodeHandle {
    /// The robots changed (reload).
    pub fn set_robots(&self, robots: Vec<RobotSpec>) {
        self.robots.send_replace(robots);
    }

    /// How many matches this host holds (for `cluster status`).
    pub fn set_pending(&self, n: u64) {
        self.pending.send_replace(n);
    }

    /// This host sent to robot `rid` directly at `at` (fallback): the ledger learns it when
    /// Redis is back.
    pub fn note_direct_send(&self, rid: &str, at: Instant) {
        if self.direct.send((rid.to_owned(), at)).is_err() {
            // The node is gone only at shutdown.
            tracing::debug!("cluster: the node has stopped; a direct send is not recorded");
        }
    }

    /// Gives the leases back and stops, waiting at most `within` (a send under way ends first).
    pub async fn stop(self, within: Duration) {
        self.stop.send_replace(true);
        let task = self.task;
        if tokio::time::timeout(within, task).await.is_err() {
            tracing::warn!("cluster: the node did not stop in time");
        }
    }
}

/// Starts the node for `host`. A live heartbeat of another instance with the same name refuses
/// the start (after waiting one lease for a crashed predecessor's to lapse); Redis unreachable
/// does not (the daemon starts keeping everything local).
///
/// # Errors
/// The URL is unusable, or the host name is taken.
pub async fn start(
    config: &ClusterConfig,
    host: &str,
    state_dir: PathBuf,
    robots: Vec<RobotSpec>,
    deliver: Deliver,
    metrics: Arc<Metrics>,
) -> Result<NodeHandle, StartError> {
    let url_error = |err: redis::RedisError| StartError::Url {
        shown: config.redis_shown.clone(),
        kind: format!("{:?}", err.kind()),
    };
    let client = redis::Client::open(config.redis.expose()).map_err(url_error)?;
    let timeout = (config.lease / 3).clamp(Duration::from_millis(300), Duration::from_secs(3));
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500));
    let mut conn =
        ConnectionManager::new_lazy_with_config(client, manager_config).map_err(url_error)?;
    let keys = Keys::new(&config.key_prefix);
    let instance = format!("{:016x}", rand::random::<u64>());
    let saved_hosts = std::fs::read_to_string(state_dir.join(HOSTS_FILE))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok());
    let mut link = Link::new(
        config.fallback_after,
        config.fallback,
        saved_hosts,
        Instant::now(),
    );
    // The name check: a claim held by another instance is either live (refuse) or a crashed
    // predecessor's (it lapses within a lease).
    let give_up = Instant::now() + config.lease + Duration::from_secs(1);
    let ttl = ms(config.lease);
    loop {
        let beat =
            redis_io::heartbeat(&mut conn, &keys, host, &instance, ttl, 0, ms(HOSTS_RECENT)).await;
        match beat {
            Ok(beat) if !beat.conflict => {
                link.on_ok(Instant::now(), beat.hosts);
                save_hosts(&state_dir, beat.hosts);
                break;
            }
            Ok(_) if Instant::now() < give_up => {
                tokio::time::sleep(config.lease / 10).await;
            }
            Ok(_) => {
                return Err(StartError::NameTaken {
                    host: host.to_owned(),
                });
            }
            Err(err) => {
                tracing::warn!(
                    "cluster: Redis at {} is unreachable ({err}); matches are kept here until it is",
                    config.redis_shown
                );
                link.on_error(Instant::now());
                break;
            }
        }
    }
    let mode = link.mode(Instant::now());
    let (status_tx, status) = watch::channel(NodeStatus {
        mode,
        hosts: link.hosts(),
        conflict: false,
        senders: BTreeSet::new(),
    });
    let (robots_tx, robots_rx) = watch::channel(robots);
    let (pending_tx, pending_rx) = watch::channel(0);
    let (direct_tx, direct_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let node = Node {
        conn: conn.clone(),
        keys: keys.clone(),
        host: host.to_owned(),
        holder_id: format!("{host}/{instance}"),
        instance,
        config: config.clone(),
        state_dir,
        link,
        robots: robots_rx,
        pending: pending_rx,
        direct: direct_rx,
        stop: stop_rx,
        status: status_tx,
        metrics,
        deliver,
        held: BTreeMap::new(),
        direct_sends: BTreeMap::new(),
        holder_sends: BTreeMap::new(),
        sends: JoinSet::new(),
        acks: Vec::new(),
        next_beat: Instant::now(),
        send_after: Instant::now(),
        conflict: false,
        redis_clock: None,
    };
    let task = tokio::spawn(node.run());
    Ok(NodeHandle {
        conn,
        keys,
        host: host.to_owned(),
        status,
        robots: robots_tx,
        pending: pending_tx,
        direct: direct_tx,
        stop: stop_tx,
        task,
    })
}

/// One robot on this node: its lease, and its queue while held.
struct Held {
    spec: RobotSpec,
    lease: LeaseTimer,
    /// Shared with the send task, which checks it before spending a permit and before posting.
    held_until: Arc<Mutex<Option<Instant>>>,
    queue: Option<HolderQueue>,
    next_read: Instant,
    /// When the queue wants to be polled again.
    wake: Option<Instant>,
    sending: bool,
}

struct Node {
    conn: ConnectionManager,
    keys: Keys,
    host: String,
    instance: String,
    holder_id: String,
    config: ClusterConfig,
    state_dir: PathBuf,
    link: Link,
    robots: watch::Receiver<Vec<RobotSpec>>,
    pending: watch::Receiver<u64>,
    direct: mpsc::UnboundedReceiver<(String, Instant)>,
    stop: watch::Receiver<bool>,
    status: watch::Sender<NodeStatus>,
    metrics: Arc<Metrics>,
    deliver: Deliver,
    /// Per rid.
    held: BTreeMap<String, Held>,
    /// Direct sends per rid (fallback), for the ledger when Redis is back.
    direct_sends: BTreeMap<String, VecDeque<Instant>>,
    /// Sends as holder per rid, of the last two windows.
    holder_sends: BTreeMap<String, VecDeque<Instant>>,
    sends: JoinSet<SendDone>,
    /// Acknowledgements Redis has not taken yet: (rid, entries).
    acks: Vec<(String, Vec<String>)>,
    next_beat: Instant,
    /// After a reconnection the holder waits for the other hosts to re-seed the ledger.
    send_after: Instant,
    conflict: bool,
    /// Redis's clock at the last heartbeat (ms), and when that was here.
    redis_clock: Option<(i64, Instant)>,
}

impl Node {
    async fn run(mut self) {
        self.sync_robots();
        loop {
            let wake = self.step().await;
            let sleep = tokio::time::sleep_until(wake.into());
            tokio::select! {
                () = sleep => {}
                Some(done) = self.sends.join_next() => match done {
                    Ok(done) => self.on_send_done(done).await,
                    Err(err) => tracing::error!("cluster: a send task failed: {err}"),
                },
                Some((rid, at)) = self.direct.recv() => {
                    self.direct_sends.entry(rid).or_default().push_back(at);
                }
                Ok(()) = self.robots.changed() => self.sync_robots(),
                _ = self.stop.changed() => break,
            }
        }
        self.shutdown().await;
    }

    /// Does what is due; returns when to look again.
    async fn step(&mut self) -> Instant {
        let now = Instant::now();
        if now >= self.next_beat {
            self.beat().await;
            self.next_beat = Instant::now() + self.config.lease / 3;
        }
        self.flush_acks().await;
        let rids: Vec<String> = self.held.keys().cloned().collect();
        for rid in rids {
            self.step_robot(&rid).await;
        }
        let mut wake = self.next_beat;
        for held in self.held.values() {
            if let Some(at) = held.lease.next_claim() {
                wake = wake.min(at);
            }
            if held.queue.is_some() {
                wake = wake.min(held.next_read);
                if let Some(at) = held.wake {
                    wake = wake.min(at);
                }
            }
        }
        wake.max(Instant::now() + Duration::from_millis(10))
    }

    fn sync_robots(&mut self) {
        let specs = self.robots.borrow_and_update().clone();
        let mut by_rid: BTreeMap<String, RobotSpec> = BTreeMap::new();
        for spec in specs {
            by_rid.entry(spec.rid.clone()).or_insert(spec);
        }
        self.held.retain(|rid, _| by_rid.contains_key(rid));
        for (rid, spec) in by_rid {
            match self.held.get_mut(&rid) {
                Some(held) => held.spec = spec,
                None => {
                    self.held.insert(
                        rid,
                        Held {
                            spec,
                            lease: LeaseTimer::new(self.config.lease),
                            held_until: Arc::new(Mutex::new(None)),
                            queue: None,
                            next_read: Instant::now(),
                            wake: None,
                            sending: false,
                        },
                    );
                }
            }
        }
    }

    async fn beat(&mut self) {
        let pending = *self.pending.borrow();
        let now = Instant::now();
        let beat = redis_io::heartbeat(
            &mut self.conn,
            &self.keys,
            &self.host,
            &self.instance,
            ms(self.config.lease),
            pending,
            ms(HOSTS_RECENT),
        )
        .await;
        match beat {
            Ok(beat) if beat.conflict => {
                if !self.conflict {
                    tracing::error!(
                        "cluster: another dingtail now runs as host `{}`; this one keeps its matches and neither hands off nor sends until it is gone",
                        self.host
                    );
                }
                self.conflict = true;
                self.link.on_error(now);
            }
            Ok(beat) => {
                self.conflict = false;
                self.redis_clock = Some((beat.now_ms, now));
                if self.link.hosts() != Some(beat.hosts.max(1)) {
                    save_hosts(&self.state_dir, beat.hosts);
                }
                if let Change::Reconnected { after_fallback } = self.link.on_ok(now, beat.hosts) {
                    tracing::info!(
                        "cluster: Redis at {} is reachable; handing off{}",
                        self.config.redis_shown,
                        if after_fallback {
                            " again (the direct sends stop)"
                        } else {
                            ""
                        }
                    );
                    self.reseed().await;
                    self.send_after = Instant::now() + self.config.lease / 3;
                }
            }
            Err(err) => {
                if self.link.is_connected() {
                    tracing::warn!(
                        "cluster: Redis at {} is unreachable ({err}); matches are kept here{}",
                        self.config.redis_shown,
                        if self.config.fallback {
                            format!(
                                ", and sent directly at this host's share after {}",
                                humantime::format_duration(self.config.fallback_after)
                            )
                        } else {
                            String::new()
                        }
                    );
                }
                self.link.on_error(now);
            }
        }
        let mode = if self.conflict {
            Mode::Local
        } else {
            self.link.mode(Instant::now())
        };
        self.metrics
            .cluster_connected
            .set(i64::from(self.link.is_connected()));
        if let Some(hosts) = self.link.hosts() {
            self.metrics.cluster_hosts.set(i64::from(hosts));
        }
        self.publish(mode);
    }

    fn publish(&mut self, mode: Mode) {
        let now = Instant::now();
        let senders: BTreeSet<String> = self
            .held
            .values()
            .filter(|held| held.lease.is_held(now))
            .map(|held| held.spec.name.clone())
            .collect();
        for held in self.held.values() {
            self.metrics
                .cluster_sender
                .get_or_create(&RobotLabel {
                    robot: held.spec.name.clone(),
                })
                .set(i64::from(senders.contains(&held.spec.name)));
        }
        let status = NodeStatus {
            mode,
            hosts: self.link.hosts(),
            conflict: self.conflict,
            senders,
        };
        self.status.send_if_modified(|old| {
            let changed = *old != status;
            *old = status;
            changed
        });
    }

    /// Redis is back: the ledger learns this host's direct sends of the last window, and its
    /// sends as holder if Redis lost the ledger meanwhile.
    async fn reseed(&mut self) {
        let now = Instant::now();
        let direct = std::mem::take(&mut self.direct_sends);
        let own = self.holder_sends.clone();
        for (only_if_empty, sends) in [(false, direct), (true, own)] {
            for (rid, at) in sends {
                let Some(held) = self.held.get(&rid) else {
                    continue;
                };
                let window = guarded(held.spec.queue.window);
                let ages: Vec<u64> = at
                    .iter()
                    .map(|at| ms(now.saturating_duration_since(*at)))
                    .filter(|age| *age < ms(window))
                    .collect();
                if ages.is_empty() {
                    continue;
                }
                let member = format!(
                    "{}/{}:reseed:{:x}",
                    self.host,
                    self.instance,
                    rand::random::<u32>()
                );
                let call = redis_io::reseed(
                    &mut self.conn,
                    &self.keys,
                    &rid,
                    ms(window),
                    &member,
                    only_if_empty,
                    &ages,
                );
                match call.await {
                    Ok(_) if !only_if_empty => tracing::info!(
                        "cluster: robot `{}`: {} direct send(s) of the last window added to the shared budget",
                        held.spec.name,
                        ages.len()
                    ),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(
                        "cluster: robot `{}`: cannot add this host's sends to the shared budget: {err}",
                        held.spec.name
                    ),
                }
            }
        }
    }

    /// This host sent to robot `rid` as its holder at `at`: kept for a window, for the ledger
    /// (if Redis loses it) and for the queue of a later takeover.
    fn note_holder_send(&mut self, rid: &str, at: Instant) {
        let window = self.held.get(rid).map_or(Duration::from_secs(120), |held| {
            guarded(held.spec.queue.window) * 2
        });
        let sends = self.holder_sends.entry(rid.to_owned()).or_default();
        sends.push_back(at);
        while sends
            .front()
            .is_some_and(|first| at.saturating_duration_since(*first) > window)
        {
            sends.pop_front();
        }
    }

    async fn flush_acks(&mut self) {
        if self.acks.is_empty() || !self.link.is_connected() {
            return;
        }
        let acks = std::mem::take(&mut self.acks);
        for (rid, entries) in acks {
            if let Err(err) = redis_io::ack(&mut self.conn, &self.keys, &rid, &entries).await {
                tracing::warn!("cluster: cannot acknowledge delivered hand-offs yet: {err}");
                self.acks.push((rid, entries));
            }
        }
    }

    async fn shutdown(&mut self) {
        // A send under way finishes (its entries are acknowledged), nothing new starts.
        while let Some(done) = self.sends.join_next().await {
            if let Ok(done) = done {
                self.on_send_done(done).await;
            }
        }
        self.flush_acks().await;
        let rids: Vec<String> = self.held.keys().cloned().collect();
        for rid in rids {
            let Some(held) = self.held.get_mut(&rid) else {
                continue;
            };
            if held.lease.is_held(Instant::now()) {
                held.lease.release();
                if let Err(err) =
                    redis_io::release(&mut self.conn, &self.keys, &rid, &self.holder_id).await
                {
                    tracing::warn!(
                        "cluster: cannot give the lease of `{}` back: {err}",
                        held.spec.name
                    );
                }
            }
        }
    }
}

/// The ledger's window: the robot's window plus the margin the local limiter keeps (5 %, at
/// most 3 s), so that network jitter cannot make DingTalk see more than the budget.
pub fn guarded(window: Duration) -> Duration {
    window + (window / 20).min(Duration::from_secs(3))
}

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn save_hosts(state_dir: &std::path::Path, hosts: u32) {
    if let Err(err) = std::fs::write(state_dir.join(HOSTS_FILE), format!("{}\n", hosts.max(1))) {
        tracing::debug!("cluster: cannot save the host count: {err}");
    }
}

impl Node {
    /// Redis's clock now, as last heard plus the time since.
    fn redis_now_ms(&self) -> Option<u64> {
        let (at_ms, at) = self.redis_clock?;
        let at_ms = u64::try_from(at_ms).ok()?;
        Some(at_ms + ms(at.elapsed()))
    }
}

impl Held {
    fn set_held_until(&self, until: Option<Instant>) {
        if let Ok(mut guard) = self.held_until.lock() {
            *guard = until;
        }
    }
}
