//! The bridge between the tailing thread and the main loop. The tailer reads files with plain
//! blocking calls, so it runs on a thread (and a small runtime) of its own: a slow disk or a hung
//! NFS read never stalls sends, reloads or `/metrics`. It hands the main loop batches of events
//! together with the checkpoints that are safe once those events are durable, and takes
//! reconfigure and shutdown commands. Each batch also says which inputs are still behind
//! ([`CatchUp`]), so that alert kinds start their quiet periods only once the inputs caught up.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::mpsc;

use crate::daemon::TICK;
use crate::daemon::http::{Health, Loop};
use crate::daemon::pace::Pace;
use crate::event::LogLine;
use crate::metrics::{Metrics, ReasonLabel};
use crate::tail::checkpoint::Checkpoint;
use crate::tail::{TailStats, Tailer, TailerConfig};

/// What the tailing thread hands to the main loop.
pub(crate) enum TailMsg {
    /// Events read, and the checkpoints that are safe once they are durable.
    Lines {
        lines: Vec<LogLine>,
        checkpoints: Vec<Checkpoint>,
        globs: BTreeSet<(String, String)>,
        stats: TailStats,
        catch_up: CatchUp,
    },
    /// The checkpoints at a shutdown request; the thread then ends.
    Final { checkpoints: Vec<Checkpoint> },
}

/// How far the tailer has read, as of `at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CatchUp {
    /// When the read this describes began (a reload or a pause before it is taken into account).
    pub(crate) at: Instant,
    /// The inputs with data left unread (empty: every file read to its end); `None` before the
    /// first read since the start or a reconfiguration.
    pub(crate) behind: Option<BTreeSet<String>>,
}

/// What the main loop asks of the tailing thread.
pub(crate) enum TailCommand {
    /// New inputs, and the gap between rounds of reading for the new robots
    /// (`daemon::pace::read_gap_of`).
    Reconfigure(TailerConfig, Duration),
    Shutdown,
}

/// The main loop's end of the bridge.
pub(crate) struct TailBridge {
    pub(crate) commands: mpsc::UnboundedSender<TailCommand>,
    pub(crate) messages: mpsc::Receiver<TailMsg>,
    pub(crate) thread: JoinHandle<()>,
    /// Batches the main loop is done with go back to be dropped and filled again: growing a
    /// fresh vector of lines in the tailing thread for every batch, while the main loop freed
    /// the last one, made the allocator consolidate on every wake-up (issue 18). Nobody waits
    /// on it.
    recycled: std::sync::mpsc::Sender<Vec<LogLine>>,
}

impl TailBridge {
    /// Gives a batch the main loop is done with back to the tailing thread, lines and all: they
    /// are dropped there, by the thread that allocated them, whose allocator takes its own
    /// memory back at a fraction of the cost of freeing it from another thread (issue 18).
    pub(crate) fn recycle(&self, lines: Vec<LogLine>) {
        if lines.capacity() > 0 {
            // The thread is gone: its lines are dropped here.
            let _gone = self.recycled.send(lines);
        }
    }
}

impl TailBridge {
    /// Moves `tailer` to a thread of its own; rounds that read lines are at least `read_gap`
    /// apart (see `daemon::pace`).
    pub(crate) fn spawn(
        tailer: Tailer,
        read_gap: Duration,
        health: Arc<Health>,
    ) -> anyhow::Result<TailBridge> {
        let (tail_tx, tail_rx) = mpsc::channel(4);
        let (command_tx, command_rx) = mpsc::unbounded_channel();
        let (recycled_tx, recycled_rx) = std::sync::mpsc::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the tailing thread's runtime")?;
        let thread = std::thread::Builder::new()
            .name("dingtail-tail".into())
            .spawn(move || {
                runtime.block_on(tail_loop(
                    tailer,
                    read_gap,
                    tail_tx,
                    command_rx,
                    recycled_rx,
                    health,
                ));
            })
            .context("cannot start the tailing thread")?;
        Ok(TailBridge {
            commands: command_tx,
            messages: tail_rx,
            thread,
            recycled: recycled_tx,
        })
    }
}

async fn tail_loop(
    mut tailer: Tailer,
    read_gap: Duration,
    tx: mpsc::Sender<TailMsg>,
    mut commands: mpsc::UnboundedReceiver<TailCommand>,
    recycled: std::sync::mpsc::Receiver<Vec<LogLine>>,
    health: Arc<Health>,
) {
    let mut beat = tokio::time::interval(TICK);
    let mut pace = Pace::new(read_gap);
    let mut sent = (
        tailer.checkpoints(),
        tailer.scanned_globs(),
        tailer.stats(),
        tailer.behind_inputs().cloned(),
    );
    loop {
        health.beat(Loop::Tail);
        while let Ok(lines) = recycled.try_recv() {
            tailer.recycle(lines);
        }
        if let Some(until) = pace.hold(Instant::now()) {
            // The gap after a round that read lines (see `daemon::pace`), slept through with the
            // thread blocked: this runtime runs nothing but this loop, so nobody waits on it,
            // and the inotify descriptor stays registered with the reactor without an event
            // meanwhile waking the thread (the kernel keeps it for the next wait). A tokio
            // timer cost a timer-wheel entry, a wake of the runtime's own driver and a second
            // `epoll_wait` per round, and resting the descriptor two `epoll_ctl` calls and a new
            // reactor registration per round (issue 18, round 4). A command or the heartbeat
            // that comes meanwhile is served when the gap is over, at most the gap later.
            std::thread::sleep(until.saturating_duration_since(Instant::now()));
        }
        let mut at = Instant::now();
        let lines = tokio::select! {
            biased;
            command = commands.recv() => match command {
                // Events the new settings close (a removed input's, a changed joining's) go
                // out with the checkpoints that pass them.
                Some(TailCommand::Reconfigure(config, read_gap)) => {
                    pace.set_gap(read_gap);
                    tailer.reconfigure(config)
                }
                Some(TailCommand::Shutdown) | None => {
                    // The checkpoints before the shutdown: an event still held (a multi-line
                    // event, an unterminated line) is not cut in two, it is read again whole
                    // after the next start.
                    let checkpoints = tailer.checkpoints();
                    drop(tailer.shutdown());
                    // The receiver waits for this message; if it is gone there is nobody to tell.
                    let _sent = tx.send(TailMsg::Final { checkpoints }).await;
                    return;
                }
            },
            _ = beat.tick() => {
                if !tailer.read_since_checkpoints() {
                    // Idle: nothing moved since the last look (issue 18).
                    continue;
                }
                Vec::new()
            }
            (began, lines) = async { (Instant::now(), tailer.next_batch().await) } => {
                at = began;
                lines
            }
        };
        // Lines, or positions that moved without lines (a file opened at its end by an input a
        // reload added, a file let go): both go to the main loop to be stored.
        let checkpoints = tailer.checkpoints();
        let globs = tailer.scanned_globs();
        let stats = tailer.stats();
        let behind = tailer.behind_inputs().cloned();
        // The next round of reading waits until the gap after this one (see `daemon::pace`).
        pace.after_round(
            Instant::now(),
            lines.len(),
            behind.as_ref().is_some_and(BTreeSet::is_empty),
        );
        if lines.is_empty()
            && checkpoints == sent.0
            && globs == sent.1
            && stats == sent.2
            && behind == sent.3
        {
            continue;
        }
        sent = (checkpoints.clone(), globs.clone(), stats, behind.clone());
        let message = TailMsg::Lines {
            lines,
            checkpoints,
            globs,
            stats,
            catch_up: CatchUp { at, behind },
        };
        if tx.send(message).await.is_err() {
            return;
        }
    }
}

/// Shows the tailer's counts in the metrics: files followed and parked, the descriptor budget's
/// limit and use, files skipped (counters move by what is new since the last report).
pub(crate) fn publish(metrics: &Metrics, stats: &TailStats) {
    let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    metrics.files_watched.set(gauge(stats.n_files));
    metrics.files_parked.set(gauge(stats.n_parked));
    for (reason, total) in [
        ("binary", stats.n_binary),
        ("compressed", stats.n_compressed),
    ] {
        let counter = metrics.files_skipped.get_or_create(&ReasonLabel {
            reason: reason.to_string(),
        });
        counter.inc_by(total.saturating_sub(counter.get()));
    }
}

/// Refreshes the descriptor gauges: how many are open now, and the soft limit.
pub(crate) fn publish_descriptors(metrics: &Metrics) {
    if let Some(open) = crate::fdlimit::count_open() {
        metrics
            .fds_open
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }
    metrics
        .fds_limit
        .set(i64::try_from(crate::fdlimit::current().soft).unwrap_or(i64::MAX));
}
