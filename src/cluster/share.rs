//! Silences and acknowledgements shared through Redis (issues 15 and 16): the task that runs
//! [`crate::cluster::silences`]' decisions against Redis for the daemon. The I/O edge; it never
//! touches the state database (the daemon does, on [`ShareEvent::Apply`]).
//!
//! Every [`SYNC_EVERY`] it reads Redis (which also forgets what is over), compares it with the
//! daemon's silences (a snapshot the daemon publishes, with what each muted here), publishes,
//! ends, and tells the daemon what to adopt and drop; it puts this host's running counts into
//! Redis; it offers the acknowledgements made here and hands the daemon those made elsewhere.
//! A silence that ends here ([`ShareHandle::ended`]) gets this host's final count into Redis,
//! and after [`crate::cluster::silences::REPORT_GRACE`] one host (the first to claim it) has it
//! reported with the cluster's total ([`ShareEvent::Report`]).
//!
//! Redis unreachable: silences hold from the state table as before; the task logs once, sets
//! `dingtail_cluster_silences_synced` to 0, and catches up when Redis answers. The ids in step
//! are kept in `<state_dir>/cluster-silences`, so that a silence unmuted from the shell while
//! the daemon was down is ended in Redis rather than adopted back (unless the state database is
//! new or was replaced: then they are adopted back, never ended).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, watch};

use crate::alert::{Ended, Muted, Silence, SilenceId, SilenceRecord};
use crate::cluster::Keys;
use crate::cluster::silence_io::{self, Published};
use crate::cluster::silences::{ReportStep, Reports, Shared, plan, total};
use crate::metrics::Metrics;
use crate::state::silences::{
    SharedAck, decode_ack, decode_muted, decode_silence, encode_ack, encode_muted, encode_silence,
};

/// How often the task meets Redis.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);
/// The file in the state dir that keeps the ids in step.
const KNOWN_FILE: &str = "cluster-silences";

/// What the task asks of the daemon.
#[derive(Clone, Debug, PartialEq)]
pub enum ShareEvent {
    /// Add these silences to the state table (other hosts made them) and delete these (ended
    /// elsewhere); then read the table again.
    Apply {
        /// To add.
        adopt: Vec<Silence>,
        /// To delete.
        drop: Vec<SilenceId>,
    },
    /// Report the end of this silence: `muted` is the cluster's total (or this host's alone
    /// when Redis could not be reached, or when its count came after the report).
    Report(Ended),
    /// Another host acknowledged: apply it to the incidents open here.
    Ack(SharedAck),
}

/// What publishing a silence came to.
enum Sharing {
    /// Redis holds it (added now, or already).
    InStep,
    /// Not shared: a clash, over by Redis's clock, or Redis failed (tried again next turn).
    NotShared,
    /// It was ended early on another host.
    EndedElsewhere,
}

/// The daemon's side of the task.
pub struct ShareHandle {
    snapshot: watch::Sender<Option<Vec<SilenceRecord>>>,
    ended: mpsc::UnboundedSender<Ended>,
    acks: mpsc::UnboundedSender<SharedAck>,
    events: mpsc::UnboundedReceiver<ShareEvent>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ShareHandle {
    /// The daemon's silences now, with what each muted here.
    pub fn snapshot(&self, records: Vec<SilenceRecord>) {
        self.snapshot.send_if_modified(|old| {
            let changed = old.as_ref() != Some(&records);
            if changed {
                *old = Some(records);
            }
            changed
        });
    }

    /// A silence ended here (expired or removed), with what it muted here: the task reports it.
    pub fn ended(&self, ended: Ended) {
        if self.ended.send(ended).is_err() {
            tracing::debug!("cluster: the silence task has stopped; an end is not shared");
        }
    }

    /// An acknowledgement made here: offered to every host.
    pub fn ack(&self, ack: SharedAck) {
        if self.acks.send(ack).is_err() {
            tracing::debug!("cluster: the silence task has stopped; an ack is not shared");
        }
    }

    /// The next thing the task asks of the daemon.
    pub async fn next(&mut self) -> Option<ShareEvent> {
        self.events.recv().await
    }

    /// Stops the task, waiting at most `within`.
    pub async fn stop(self, within: Duration) {
        self.stop.send_replace(true);
        if tokio::time::timeout(within, self.task).await.is_err() {
            tracing::warn!("cluster: the silence task did not stop in time");
        }
    }
}

/// Starts the task for `host` on `conn`. `state_lost`: the state database is new or was
/// replaced (damaged), so the ids in step that `state_dir` remembers are forgotten — the
/// silences they name are adopted again, not ended as if unmuted here.
pub fn start(
    conn: ConnectionManager,
    keys: Keys,
    host: String,
    state_dir: PathBuf,
    state_lost: bool,
    metrics: Arc<Metrics>,
) -> ShareHandle {
    let (snapshot_tx, snapshot) = watch::channel(None);
    let (ended_tx, ended) = mpsc::unbounded_channel();
    let (acks_tx, acks) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let (stop_tx, stop) = watch::channel(false);
    let known = if state_lost {
        BTreeSet::new()
    } else {
        load_known(&state_dir)
    };
    let task = Task {
        conn,
        keys,
        host,
        state_dir,
        metrics,
        snapshot,
        ended,
        acks,
        events: events_tx,
        stop,
        known,
        clashed: BTreeSet::new(),
        reports: Reports::new(),
        counted: BTreeMap::new(),
        offers: Vec::new(),
        seen_acks: None,
        connected: true,
    };
    ShareHandle {
        snapshot: snapshot_tx,
        ended: ended_tx,
        acks: acks_tx,
        events,
        stop: stop_tx,
        task: tokio::spawn(task.run()),
    }
}

struct Task {
    conn: ConnectionManager,
    keys: Keys,
    host: String,
    state_dir: PathBuf,
    metrics: Arc<Metrics>,
    snapshot: watch::Receiver<Option<Vec<SilenceRecord>>>,
    ended: mpsc::UnboundedReceiver<Ended>,
    acks: mpsc::UnboundedReceiver<SharedAck>,
    events: mpsc::UnboundedSender<ShareEvent>,
    stop: watch::Receiver<bool>,
    /// The ids in step at the last turn.
    known: BTreeSet<SilenceId>,
    /// Ids another host holds with another definition: these silences stay local.
    clashed: BTreeSet<SilenceId>,
    reports: Reports,
    /// The counts last put into Redis, per silence.
    counted: BTreeMap<SilenceId, Muted>,
    /// Acknowledgements made here that Redis has not taken yet.
    offers: Vec<SharedAck>,
    /// The acknowledgements Redis offered at the last read (`None` before the first read).
    seen_acks: Option<BTreeSet<String>>,
    /// Whether Redis answered at the last turn.
    connected: bool,
}

impl Task {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(SYNC_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.turn().await,
                Some(ended) = self.ended.recv() => {
                    self.reports.push(ended, SystemTime::now());
                    self.step_reports().await;
                }
                Some(ack) = self.acks.recv() => {
                    self.offers.push(ack);
                    self.offer_acks().await;
                }
                _ = self.stop.changed() => break,
            }
        }
        // What ended just before the stop still gets its count into Redis.
        self.step_reports().await;
    }

    async fn turn(&mut self) {
        self.sync().await;
        self.offer_acks().await;
        self.step_reports().await;
        self.metrics
            .cluster_silences_synced
            .set(i64::from(self.connected));
    }

    fn set_connected(&mut self, ok: bool, err: Option<&redis::RedisError>) {
        if self.connected && !ok {
            tracing::warn!(
                "cluster: cannot share silences through Redis ({}); they hold on this host from its state and are shared again when Redis answers",
                err.map_or_else(String::new, ToString::to_string)
            );
        } else if !self.connected && ok {
            tracing::info!("cluster: sharing silences through Redis again");
        }
        self.connected = ok;
    }

    /// One comparison of the daemon's silences with Redis.
    async fn sync(&mut self) {
        let Some(records) = self.snapshot.borrow().clone() else {
            // The daemon has not said what it holds yet.
            return;
        };
        let held = match silence_io::read(&mut self.conn, &self.keys).await {
            Ok(held) => held,
            Err(err) => {
                self.set_connected(false, Some(&err));
                return;
            }
        };
        self.set_connected(true, None);
        let now = SystemTime::now();
        let mut shared = Shared::default();
        for (id, data) in &held.silences {
            match decode_silence(id, data) {
                Ok(silence) => shared.silences.push(silence),
                Err(err) => tracing::debug!("cluster: shared silence `{id}` left out: {err}"),
            }
        }
        shared.ended = held
            .ended
            .iter()
            .filter_map(|id| SilenceId::parse(id))
            .collect();
        // As Redis would hold them (times in ms), so that a silence made here compares equal.
        let local: Vec<Silence> = records.iter().map(|r| as_shared(&r.silence)).collect();
        let plan = plan(&local, &shared, &self.known, &self.clashed, now);
        let mut known = plan.known.clone();
        let mut drop = plan.drop.clone();
        for silence in &plan.publish {
            match self.publish(silence).await {
                Sharing::InStep => {
                    known.insert(silence.id().clone());
                }
                Sharing::EndedElsewhere => drop.push(silence.id().clone()),
                Sharing::NotShared => {}
            }
        }
        for silence in &plan.end {
            match silence_io::end(
                &mut self.conn,
                &self.keys,
                silence.id().as_str(),
                ms(silence.ends()),
            )
            .await
            {
                Ok(()) => tracing::info!(
                    "cluster: silence {} of rule `{}` was unmuted here; ended on every host",
                    silence.id(),
                    silence.rule()
                ),
                Err(err) => {
                    // Still known: tried again next turn.
                    known.insert(silence.id().clone());
                    tracing::debug!("cluster: cannot end silence {}: {err}", silence.id());
                }
            }
        }
        for id in &plan.clash {
            self.clash(id);
        }
        if !plan.adopt.is_empty() || !drop.is_empty() {
            let event = ShareEvent::Apply {
                adopt: plan.adopt.clone(),
                drop,
            };
            if self.events.send(event).is_err() {
                return;
            }
        }
        if known != self.known {
            save_known(&self.state_dir, &known);
            self.known = known;
        }
        self.put_counts(&records).await;
        self.take_acks(&held.acks);
        self.metrics
            .cluster_silences
            .set(i64::try_from(shared.silences.len()).unwrap_or(i64::MAX));
    }

    /// Publishes `silence`.
    async fn publish(&mut self, silence: &Silence) -> Sharing {
        let data = match encode_silence(silence) {
            Ok(data) => data,
            Err(err) => {
                tracing::warn!("cluster: cannot encode silence {}: {err}", silence.id());
                return Sharing::NotShared;
            }
        };
        let id = silence.id().as_str();
        match silence_io::publish(&mut self.conn, &self.keys, id, &data, ms(silence.ends())).await {
            Ok(Published::Added) => {
                tracing::info!(
                    "cluster: silence {} of rule `{}` shared with every host",
                    silence.id(),
                    silence.rule()
                );
                Sharing::InStep
            }
            Ok(Published::Held(theirs)) => {
                if decode_silence(id, &theirs).is_ok_and(|theirs| theirs == *silence) {
                    Sharing::InStep
                } else {
                    self.clash(silence.id());
                    Sharing::NotShared
                }
            }
            Ok(Published::Ended) => Sharing::EndedElsewhere,
            Ok(Published::Over) => Sharing::NotShared,
            Err(err) => {
                tracing::debug!("cluster: cannot publish silence {id}: {err}");
                Sharing::NotShared
            }
        }
    }

    fn clash(&mut self, id: &SilenceId) {
        if self.clashed.insert(id.clone()) {
            tracing::error!(
                "cluster: silence id {id} is another host's silence too (two ids drawn alike); this host's stays local — unmute it and mute again to share it"
            );
        }
    }

    /// Puts this host's running counts into Redis (those that moved).
    async fn put_counts(&mut self, records: &[SilenceRecord]) {
        for record in records {
            let id = record.silence.id();
            if self.clashed.contains(id) || self.counted.get(id) == Some(&record.muted) {
                continue;
            }
            if record.muted == Muted::default() {
                continue;
            }
            let Ok(data) = encode_muted(&record.muted) else {
                continue;
            };
            // Kept past the silence's end, for a report made while this host is down.
            let keep = record
                .silence
                .ends()
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .as_secs()
                + silence_io::COUNT_KEEP_SECS;
            let put = silence_io::count(
                &mut self.conn,
                &self.keys,
                id.as_str(),
                &self.host,
                &data,
                keep,
            )
            .await;
            if put.is_ok() {
                self.counted.insert(id.clone(), record.muted);
            }
        }
        let live: BTreeSet<&SilenceId> = records.iter().map(|r| r.silence.id()).collect();
        self.counted.retain(|id, _| live.contains(id));
    }

    /// Hands the daemon the acknowledgements other hosts made since the last read.
    /// (After a start every acknowledgement Redis still offers is new: the daemon applies each
    /// only to incidents that opened before it.)
    fn take_acks(&mut self, offered: &[String]) {
        let seen = self.seen_acks.take().unwrap_or_default();
        for data in offered.iter().filter(|data| !seen.contains(*data)) {
            let Ok(ack) = decode_ack(data) else {
                continue;
            };
            if ack.host != self.host && self.events.send(ShareEvent::Ack(ack)).is_err() {
                break;
            }
        }
        self.seen_acks = Some(offered.iter().cloned().collect());
    }

    async fn offer_acks(&mut self) {
        let offers = std::mem::take(&mut self.offers);
        for ack in offers {
            let Ok(data) = encode_ack(&ack) else {
                continue;
            };
            if let Err(err) = silence_io::offer_ack(&mut self.conn, &self.keys, &data).await {
                tracing::debug!("cluster: cannot offer an acknowledgement yet: {err}");
                // Kept while other hosts would still take it.
                let age = SystemTime::now().duration_since(ack.at).unwrap_or_default();
                if age < Duration::from_millis(silence_io::ACK_KEEP_MS) {
                    self.offers.push(ack);
                }
            }
        }
    }

    /// Counts, claims and reports the silences that ended here.
    async fn step_reports(&mut self) {
        let now = SystemTime::now();
        for step in self.reports.due(now, self.connected) {
            match step {
                ReportStep::Count(ended) => self.final_count(ended).await,
                ReportStep::Claim(ended) => self.claim(ended).await,
                ReportStep::Alone(ended) => {
                    tracing::warn!(
                        "cluster: silence {} ended while Redis is unreachable; this host reports what it muted alone",
                        ended.silence.id()
                    );
                    self.reports.done(ended.silence.id());
                    self.report(ended);
                }
            }
        }
    }

    async fn final_count(&mut self, ended: Ended) {
        let id = ended.silence.id().clone();
        if self.clashed.contains(&id) {
            self.reports.done(&id);
            self.report(ended);
            return;
        }
        // Unmuted before its time (here, or elsewhere and learned here): ended for everyone.
        if ended.at < ended.silence.ends()
            && let Err(err) = silence_io::end(
                &mut self.conn,
                &self.keys,
                id.as_str(),
                ms(ended.silence.ends()),
            )
            .await
        {
            self.set_connected(false, Some(&err));
            return;
        }
        let Ok(data) = encode_muted(&ended.muted) else {
            self.reports.done(&id);
            self.report(ended);
            return;
        };
        let keep = silence_io::COUNT_KEEP_SECS;
        match silence_io::count(
            &mut self.conn,
            &self.keys,
            id.as_str(),
            &self.host,
            &data,
            keep,
        )
        .await
        {
            Ok(false) => {
                self.counted.remove(&id);
                self.reports.counted(&id);
            }
            Ok(true) => {
                // Reported already (this host was late: down, or slow to learn of the end).
                self.reports.done(&id);
                if ended.muted.matches > 0 || ended.muted.notices > 0 {
                    tracing::info!(
                        "cluster: silence {id} was reported before this host's count came in; this host reports its own"
                    );
                    self.report(ended);
                }
            }
            Err(err) => self.set_connected(false, Some(&err)),
        }
    }

    async fn claim(&mut self, ended: Ended) {
        let id = ended.silence.id().clone();
        match silence_io::claim(&mut self.conn, &self.keys, id.as_str(), &self.host).await {
            Ok(Some(counts)) => {
                self.reports.done(&id);
                let mut hosts = 0;
                let muted: Vec<Muted> = counts
                    .iter()
                    .filter_map(|(host, data)| match decode_muted(data) {
                        Ok(muted) => {
                            hosts += 1;
                            Some(muted)
                        }
                        Err(err) => {
                            tracing::warn!(
                                "cluster: the count of host `{host}` for silence {id} left out: {err}"
                            );
                            None
                        }
                    })
                    .collect();
                let mut report = ended;
                report.muted = if muted.is_empty() {
                    report.muted
                } else {
                    total(&muted)
                };
                tracing::info!(
                    "cluster: this host reports silence {id}: {} matches muted on {hosts} host(s)",
                    report.muted.matches
                );
                self.report(report);
            }
            Ok(None) => {
                self.reports.done(&id);
                tracing::debug!("cluster: silence {id} is reported by another host");
            }
            Err(err) => self.set_connected(false, Some(&err)),
        }
    }

    fn report(&self, ended: Ended) {
        if self.events.send(ShareEvent::Report(ended)).is_err() {
            tracing::debug!("cluster: the daemon is gone; a silence's end is not reported");
        }
    }
}

/// `silence` as it comes back from Redis (its times in whole milliseconds).
fn as_shared(silence: &Silence) -> Silence {
    encode_silence(silence)
        .ok()
        .and_then(|data| decode_silence(silence.id().as_str(), &data).ok())
        .unwrap_or_else(|| silence.clone())
}

fn ms(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn load_known(state_dir: &std::path::Path) -> BTreeSet<SilenceId> {
    std::fs::read_to_string(state_dir.join(KNOWN_FILE))
        .map(|text| text.lines().filter_map(SilenceId::parse).collect())
        .unwrap_or_default()
}

fn save_known(state_dir: &std::path::Path, known: &BTreeSet<SilenceId>) {
    let text: String = known.iter().map(|id| format!("{id}\n")).collect();
    if let Err(err) = std::fs::write(state_dir.join(KNOWN_FILE), text) {
        tracing::debug!("cluster: cannot save the silences in step: {err}");
    }
}
