//! `Tailer`: owns the table of followed files (keyed by an id, indexed by device and inode) and
//! runs the loop: rescan when due, read in bounded chunks round robin, hand out a batch, wait.
//! How files are found, opened, drained and closed is in [`crate::tail::table`]; the module
//! documentation of [`crate::tail`] walks through the whole life of a file.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::InputConfig;
use crate::event::{FileId, LogLine};
use crate::intake::Framing;
use crate::tail::checkpoint::Checkpoint;
use crate::tail::clock::{Clock, SystemClock};
use crate::tail::discover::InputGlobs;
use crate::tail::followed::{Batch, Followed};
use crate::tail::history::{GlobHistory, ScannedGlobs};
use crate::tail::identity::KnownList;
use crate::tail::resume::ResumeList;
use crate::tail::sniff::Skip;
use crate::tail::watch::{Wake, Watch};

/// At most this many bytes are read from one file per turn.
pub const FILE_CHUNK: usize = 64 * 1024;
/// At most this many lines are taken from one file per turn.
pub const FILE_LINES: usize = 1024;
/// A batch holds at most about this many lines.
pub const MAX_BATCH_LINES: usize = 4096;
/// A batch holds at most about this many bytes of text.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// One `next_batch` call reads at most this much before it returns (even empty-handed, when
/// the bytes were a skipped over-long line), so that it never runs for long.
const MAX_READ_PER_CALL: u64 = 16 * 1024 * 1024;

/// What the tailer follows. A file matched by several inputs belongs to the first of them.
#[derive(Clone, Debug)]
pub struct TailerConfig {
    /// The inputs, each with its globs and line settings.
    pub inputs: Vec<InputConfig>,
}

/// Errors of the tailer.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// A glob does not compile.
    #[error("input `{input}`: bad glob `{glob}`: {source}")]
    Glob {
        /// The input.
        input: String,
        /// The glob.
        glob: String,
        /// What globset said.
        source: globset::Error,
    },
}

/// How long a file that is no longer matched (rotated away, deleted) must stay quiet before it
/// is closed: five poll intervals, at least one second.
pub fn drain_grace(poll_interval: Duration) -> Duration {
    (poll_interval * 5).max(Duration::from_secs(1))
}

/// The slow safety rescan under inotify: ten poll intervals, at least one second.
fn safety_rescan(poll_interval: Duration) -> Duration {
    (poll_interval * 10).max(Duration::from_secs(1))
}

/// What the tailer counts for metrics and `check`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TailStats {
    /// Files followed: open, parked or being drained.
    pub n_files: usize,
    /// Of them, parked: closed to stay within the descriptor budget, reopened when they grow.
    pub n_parked: usize,
    /// How many files may be open at once (the descriptor budget, `crate::fdlimit`).
    pub max_open: usize,
    /// Files not followed because they looked binary, so far.
    pub n_binary: u64,
    /// Files not followed because they are compressed (by their magic bytes), so far.
    pub n_compressed: u64,
}

/// One configured input, its globs compiled.
#[derive(Debug)]
pub(super) struct Input {
    pub(super) config: InputConfig,
    pub(super) globs: InputGlobs,
    pub(super) framing: Framing,
}

/// Follows the files of a set of inputs. See the module documentation of [`crate::tail`].
#[derive(Debug)]
pub struct Tailer {
    pub(super) inputs: Vec<Input>,
    pub(super) files: BTreeMap<FileId, Followed>,
    pub(super) by_inode: HashMap<(u64, u64), FileId>,
    /// Checkpoints not matched to a followed file (see [`crate::tail::resume`]).
    pub(super) resume: ResumeList,
    /// Content no longer in the file it was read in (see [`crate::tail::identity`]).
    pub(super) known: KnownList,
    /// Files not followed because they are not text, by device and inode (each reported
    /// once); forgotten when a scan no longer matches them.
    pub(super) skipped: HashMap<(u64, u64), Skip>,
    pub(super) n_binary: u64,
    pub(super) n_compressed: u64,
    /// At most this many files are open at once; the others are parked
    /// (see [`crate::tail::park`]).
    pub(super) max_open: usize,
    /// How many followed files have a descriptor.
    pub(super) n_open: usize,
    /// Some file is a possible copy of another (see [`crate::tail::copies`]).
    pub(super) any_shadows: bool,
    /// Running out of descriptors was reported (once until it clears).
    pub(super) fd_exhaustion_reported: bool,
    /// Which globs have had a scan (see [`crate::tail::history`]).
    pub(super) scanned: ScannedGlobs,
    pub(super) watch: Option<Watch>,
    pub(super) wake: Arc<Wake>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) next_id: u64,
    /// Fairness: the next turn starts after this file.
    cursor: Option<FileId>,
    /// Files that could not be opened and directories that could not be listed; each was
    /// reported once, and while any remains the globs are rescanned every poll interval.
    pub(super) unreadable: HashSet<PathBuf>,
    pub(super) last_rescan: Option<Instant>,
    /// Data was left unread by the last call: do not wait before the next one.
    more: bool,
    /// The inputs with data left unread by the last read (empty: every file was read to its
    /// end); `None` before the first read after a start or a reconfiguration.
    behind: Option<BTreeSet<String>>,
    /// `next_batch` found nothing and went to sleep until this deadline. A call that was
    /// cancelled while asleep (the daemon's loop selects over it with a heartbeat) goes back to
    /// sleep without reading: nothing can have arrived that the wake-up would not report, so
    /// idling costs nothing per cancellation (issue 7: 1,000 files were all `fstat`ed on every
    /// heartbeat).
    asleep: Option<Instant>,
    n_truncated: u64,
    /// An emptied batch given back by the consumer ([`Tailer::recycle`]): the next batch is
    /// filled into it, without growing a new vector line by line (issue 18).
    spare: Vec<LogLine>,
    /// How many times the files were looked at (tests check that idle means asleep).
    pub(super) n_rounds: u64,
    /// `n_rounds` when [`Tailer::checkpoints`] was last asked.
    looked_at: u64,
    pub(super) poll_interval: Duration,
}

impl Tailer {
    /// Starts following `config`'s inputs. `resume`: the checkpoints from the `Store`;
    /// `first_start`: `Store::is_first_start()` (then `start_at` applies to the files found
    /// now). The first scan runs here.
    ///
    /// # Errors
    /// A glob does not compile.
    pub fn start(
        config: TailerConfig,
        resume: Vec<Checkpoint>,
        first_start: bool,
    ) -> Result<Tailer, TailError> {
        let history = if first_start {
            GlobHistory::FirstStart
        } else {
            GlobHistory::AllKnown
        };
        Tailer::start_with_history(config, resume, history)
    }

    /// Like [`Tailer::start`], with the globs scanned by earlier runs (`scanned_globs`, stored):
    /// `start_at` applies to the files first found through a glob no earlier run scanned, so that
    /// an input or path added to the config starts at the end of its files after a restart too.
    ///
    /// # Errors
    /// A glob does not compile.
    pub fn start_with_history(
        config: TailerConfig,
        resume: Vec<Checkpoint>,
        history: GlobHistory,
    ) -> Result<Tailer, TailError> {
        let wake = Arc::new(Wake::default());
        let watch = Watch::new(Arc::clone(&wake));
        Tailer::start_with(config, resume, history, wake, watch, Arc::new(SystemClock))
    }

    /// The general constructor: a watch (or the polling fallback) waking `wake`, and a clock.
    pub(super) fn start_with(
        config: TailerConfig,
        resume: Vec<Checkpoint>,
        history: GlobHistory,
        wake: Arc<Wake>,
        watch: Watch,
        clock: Arc<dyn Clock>,
    ) -> Result<Tailer, TailError> {
        let inputs = compile(config.inputs)?;
        let scanned = ScannedGlobs::new(history, configured(&inputs));
        let now = clock.now();
        let mut tailer = Tailer {
            poll_interval: poll_interval(&inputs),
            inputs,
            files: BTreeMap::new(),
            by_inode: HashMap::new(),
            resume: ResumeList::new(resume, now),
            known: KnownList::default(),
            skipped: HashMap::new(),
            n_binary: 0,
            n_compressed: 0,
            max_open: crate::fdlimit::file_budget(crate::fdlimit::current().soft),
            n_open: 0,
            any_shadows: false,
            fd_exhaustion_reported: false,
            scanned,
            watch: Some(watch),
            wake,
            clock,
            next_id: 1,
            cursor: None,
            unreadable: HashSet::new(),
            last_rescan: None,
            more: false,
            asleep: None,
            n_truncated: 0,
            spare: Vec::new(),
            n_rounds: 0,
            looked_at: u64::MAX,
            behind: None,
        };
        tailer.rescan(now);
        // Files rotated away while dingtail was down and no longer matched: drained from their
        // checkpoints.
        tailer.recover_rotated(now);
        tailer
            .wake
            .track_touched(tailer.n_open < tailer.files.len());
        Ok(tailer)
    }

    /// The `(input, glob)` pairs that have had a scan, to be stored and given back to
    /// [`Tailer::start_with_history`] after a restart.
    pub fn scanned_globs(&self) -> BTreeSet<(String, String)> {
        self.scanned.pairs()
    }

    /// Waits until lines are available and returns a batch of them (at most about
    /// [`MAX_BATCH_LINES`] lines or [`MAX_BATCH_BYTES`] bytes), read fairly across files, and the
    /// events closed by their timeout. Never busy-polls: with nothing to read it sleeps until a
    /// file-system event, a timeout or the next periodic check.
    ///
    /// Cancel-safe: dropping the future loses nothing. After [`Tailer::shutdown`] it never
    /// resolves.
    pub async fn next_batch(&mut self) -> Vec<LogLine> {
        loop {
            if self.watch.is_none() {
                return std::future::pending().await;
            }
            let deadline = match self.asleep {
                Some(deadline) => deadline,
                None => {
                    let lines = self.collect(self.clock.now());
                    if !lines.is_empty() {
                        if !self.more {
                            // Everything was read: the next call waits for a wake-up (one
                            // that came meanwhile is kept as the permit, or waits in the
                            // inotify queue) instead of looking at every file again for
                            // nothing (issue 18).
                            self.asleep = Some(self.deadline(self.clock.now()));
                        }
                        return lines;
                    }
                    if self.more {
                        tokio::task::yield_now().await;
                        continue;
                    }
                    let deadline = self.deadline(self.clock.now());
                    self.asleep = Some(deadline);
                    deadline
                }
            };
            // A wake-up that came while no call was waiting is kept as the `Notify`'s permit,
            // and a deadline that passed meanwhile fires at once.
            // On Linux the watch's events are read here, on the tailing thread (issue 18).
            tokio::select! {
                () = self.wake.notified() => {}
                () = async {
                    match self.watch.as_mut() {
                        Some(watch) => watch.events().await,
                        None => std::future::pending().await,
                    }
                } => {}
                () = tokio::time::sleep_until(deadline.into()) => {}
            }
            self.asleep = None;
        }
    }

    /// False when no round of reading ran since [`Tailer::checkpoints`] was last asked: files'
    /// positions, the set of files, the globs, the counts and who is behind change only in a
    /// round (or in [`Tailer::reconfigure`], after which the caller asks anyway), so an idle
    /// caller need not build a thousand checkpoints a second to find them unchanged.
    pub fn read_since_checkpoints(&self) -> bool {
        self.looked_at != self.n_rounds
    }

    /// Offsets safe to persist now, one per known file: the end of the last event handed out
    /// by `next_batch`, never past the start of a record still held (a multi-line event being
    /// joined, an unterminated last line). The resume list (stored checkpoints of files not
    /// found yet, checkpoints of closed files) is included, so it survives a restart. At most
    /// one per device and inode. A file that may be a copy of another still being written
    /// is as far as its bytes are the other's checkpointed ones. Each carries the hash of the
    /// bytes before its offset, computed only for the offsets that moved.
    pub fn checkpoints(&mut self) -> Vec<Checkpoint> {
        self.looked_at = self.n_rounds;
        let originals: HashMap<FileId, u64> = if self.any_shadows {
            self.files
                .values()
                .filter(|f| f.has_copies)
                .map(|f| (f.id, f.events.checkpoint()))
                .collect()
        } else {
            HashMap::new()
        };
        let mut out = Vec::with_capacity(self.files.len());
        for file in self.files.values_mut() {
            let checkpoint = match file.copy_of {
                Some(shadow) => {
                    let offset = originals
                        .get(&shadow.of)
                        .map_or(0, |original| shadow.len.min(*original));
                    Checkpoint {
                        fingerprint: file.fingerprint,
                        path: file.path().to_path_buf(),
                        offset,
                        tail: file.tail_at(offset, true),
                    }
                }
                None => file.checkpoint(),
            };
            out.push(checkpoint);
        }
        out.extend(self.resume.checkpoints().cloned());
        out
    }

    /// Which inputs the last read left data unread in (a backlog; empty once every file was
    /// read to its end), or `None` before the first read since the start or the latest
    /// [`Tailer::reconfigure`]. Alert kinds start their quiet periods when an input is caught
    /// up (issue 13).
    pub fn behind_inputs(&self) -> Option<&BTreeSet<String>> {
        self.behind.as_ref()
    }

    /// Applies a reloaded config: added inputs start (`start_at` applies to their first scan),
    /// removed ones stop (their files are closed), files of kept inputs keep their positions.
    /// Returns the events this closes (a removed input's held events, a multi-line event whose
    /// joining changed): they are handed out now, and the checkpoints move past them.
    pub fn reconfigure(&mut self, config: TailerConfig) -> Vec<LogLine> {
        let inputs = match compile(config.inputs) {
            Ok(inputs) => inputs,
            Err(err) => {
                tracing::error!(error = %err, "reload: keeping the previous inputs");
                return Vec::new();
            }
        };
        let (now, wall) = (self.clock.now(), self.clock.wall());
        let mut batch = Batch::default();
        let names: HashSet<&str> = inputs.iter().map(|i| i.config.name.as_str()).collect();
        let removed: Vec<FileId> = self
            .files
            .values()
            .filter(|f| !names.contains(f.input.as_str()))
            .map(|f| f.id)
            .collect();
        for id in removed {
            if let Some(mut file) = self.remove_followed(id) {
                file.events.flush_held(now, wall, &mut batch.lines);
            }
        }
        self.scanned.retain_configured(configured(&inputs));
        for file in self.files.values_mut() {
            let Some(input) = inputs.iter().find(|i| i.config.name == file.input) else {
                continue;
            };
            file.events
                .reconfigure(&input.framing, now, wall, &mut batch.lines);
        }
        self.poll_interval = poll_interval(&inputs);
        self.inputs = inputs;
        self.asleep = None;
        self.behind = None;
        self.wake.rescan();
        batch.lines
    }

    /// Stops reading and closes the multi-line events being joined; returns them (the daemon
    /// handles them like a last batch, then saves `checkpoints()`). Files stay open until the
    /// tailer is dropped; `next_batch` never resolves after this.
    pub fn shutdown(&mut self) -> Vec<LogLine> {
        self.watch = None;
        let (now, wall) = (self.clock.now(), self.clock.wall());
        let mut batch = Batch::default();
        for file in self.files.values_mut() {
            file.events.flush_held(now, wall, &mut batch.lines);
        }
        batch.lines
    }

    /// Takes back a batch the consumer is done with (its lines dropped here): the next batch
    /// reuses its allocation. Of several, the largest is kept, but none with room for more than
    /// [`FILE_LINES`] lines: a catch-up's big batches are rare, and a quiet daemon should not
    /// hold their room.
    pub fn recycle(&mut self, mut lines: Vec<LogLine>) {
        lines.clear();
        if lines.capacity() > self.spare.capacity() && lines.capacity() <= FILE_LINES {
            self.spare = lines;
        }
    }

    /// How many files are followed (including ones being drained and parked ones).
    pub fn n_files(&self) -> usize {
        self.files.len()
    }

    /// What the tailer counts (files, parked files, the descriptor budget, skipped files).
    pub fn stats(&self) -> TailStats {
        TailStats {
            n_files: self.files.len(),
            n_parked: self.files.len().saturating_sub(self.n_open),
            max_open: self.max_open,
            n_binary: self.n_binary,
            n_compressed: self.n_compressed,
        }
    }

    /// How many lines were cut at `max_line_bytes` so far.
    #[cfg(test)]
    pub fn n_truncated(&self) -> u64 {
        self.n_truncated
    }

    /// True when inotify is not used and files are polled every poll interval.
    pub fn is_polling(&self) -> bool {
        self.watch.as_ref().is_some_and(Watch::is_polling)
    }

    /// One round of work: rescan if due, read turns until the batch is full or nothing moves,
    /// hand out what timed out, release drained files.
    pub(super) fn collect(&mut self, now: Instant) -> Vec<LogLine> {
        self.n_rounds += 1;
        let wall = self.clock.wall();
        let mut batch = Batch {
            lines: std::mem::take(&mut self.spare),
            n_bytes: 0,
        };
        let touched = self.wake.take_touched();
        if self.wake.take_rescan() || self.rescan_due(now) {
            self.rescan(now);
        } else {
            self.look_at_parked(&touched);
        }
        if self.n_open > self.max_open {
            self.park_idle(self.n_open - self.max_open);
        }
        self.check_copies();
        self.wake_parked(now);
        self.more = false;
        let mut n_read = 0u64;
        let mut again = false;
        let mut progressed_inputs = BTreeSet::new();
        loop {
            let (progressed, n) = self.turn(&mut batch, now, again, &mut progressed_inputs);
            again = true;
            n_read += n;
            if batch.is_full() || (progressed && n_read >= MAX_READ_PER_CALL) {
                self.more = true;
                break;
            }
            if !progressed {
                break;
            }
        }
        for file in self.files.values_mut() {
            file.poll(&mut batch, now, wall);
        }
        // Parked files with bytes to read wait for room that reading made.
        if !self.more && self.can_wake_more() {
            self.more = true;
        }
        if !self.more {
            self.release_drained(now, &mut batch);
            progressed_inputs.clear();
        }
        if batch.lines.is_empty() {
            self.spare = std::mem::take(&mut batch.lines);
        }
        self.behind = Some(progressed_inputs);
        // Writes to parked files are noted from now on (files parked in this round included).
        self.wake.track_touched(self.n_open < self.files.len());
        batch.lines
    }

    /// Reads one chunk from each file, round robin from the cursor. Returns whether anything was
    /// read or handed out, and how many bytes were read; adds the inputs of the files that moved
    /// to `moved`. `again`: a later turn of the same round, which skips the files the earlier
    /// turns read to their end (the size they saw), as a write since wakes the tailer again: a
    /// write of a few lines costs one look at the file, not two (issue 18).
    fn turn(
        &mut self,
        batch: &mut Batch,
        now: Instant,
        again: bool,
        moved: &mut BTreeSet<String>,
    ) -> (bool, u64) {
        let wall = self.clock.wall();
        let ids: Vec<FileId> = match self.cursor {
            // The cursor's file may be gone: start strictly after its id, wherever that is.
            Some(cursor) => self
                .files
                .range((Bound::Excluded(cursor), Bound::Unbounded))
                .chain(self.files.range(..=cursor))
                .map(|(id, _)| *id)
                .collect(),
            None => self.files.keys().copied().collect(),
        };
        let mut progressed = false;
        let mut n_read = 0;
        for id in ids {
            if batch.is_full() {
                break;
            }
            if self.files.get(&id).is_some_and(|f| f.unsettled) && !self.settle(id) {
                // Not text: no longer followed.
                self.remove_followed(id);
                continue;
            }
            let Some(file) = self.files.get_mut(&id) else {
                continue;
            };
            if file.file.is_none() || file.copy_of.is_some() || file.unsettled {
                // Parked, a possible copy, or still empty.
                continue;
            }
            if again && !file.behind && file.events.buffered() == 0 {
                continue;
            }
            // Consumed, read, handed out: lines taken into a joiner are progress too.
            let before = (
                file.events.offset(),
                file.events.position(),
                batch.lines.len(),
            );
            let max_lines = FILE_LINES.min(MAX_BATCH_LINES.saturating_sub(batch.lines.len()));
            let n_cut = file.read(batch, FILE_CHUNK, max_lines.max(1), now, wall);
            self.n_truncated += n_cut;
            let after = (
                file.events.offset(),
                file.events.position(),
                batch.lines.len(),
            );
            if after != before {
                progressed = true;
                if !moved.contains(&file.input) {
                    moved.insert(file.input.clone());
                }
            }
            n_read += after.1.saturating_sub(before.1);
            let retired = file.take_retired();
            self.cursor = Some(id);
            if let Some(known) = retired {
                self.retire(id, known);
            }
        }
        (progressed, n_read)
    }

    fn rescan_every(&self) -> Duration {
        if self.is_polling() || !self.unreadable.is_empty() {
            self.poll_interval
        } else {
            safety_rescan(self.poll_interval)
        }
    }

    pub(super) fn rescan_due(&self, now: Instant) -> bool {
        self.last_rescan
            .is_none_or(|last| now.saturating_duration_since(last) >= self.rescan_every())
    }

    /// When `next_batch` must look again even without an event.
    fn deadline(&self, now: Instant) -> Instant {
        let mut deadline = self
            .last_rescan
            .map_or(now, |last| last + self.rescan_every());
        for file in self.files.values() {
            if let Some(at) = file.events.deadline() {
                deadline = deadline.min(at);
            }
            if file.gone_since.is_some() || file.wake || file.copy_of.is_some() {
                deadline = deadline.min(now + self.poll_interval);
            }
        }
        deadline.max(now)
    }
}

impl Batch {
    fn is_full(&self) -> bool {
        self.lines.len() >= MAX_BATCH_LINES || self.n_bytes >= MAX_BATCH_BYTES
    }
}

fn compile(configs: Vec<InputConfig>) -> Result<Vec<Input>, TailError> {
    configs
        .into_iter()
        .map(|config| {
            let globs = InputGlobs::new(&config).map_err(|(glob, source)| TailError::Glob {
                input: config.name.clone(),
                glob,
                source,
            })?;
            let framing = Framing::of(&config);
            Ok(Input {
                config,
                globs,
                framing,
            })
        })
        .collect()
}

/// The configured inputs as (name, globs).
fn configured(inputs: &[Input]) -> impl Iterator<Item = (&str, &[String])> {
    inputs
        .iter()
        .map(|i| (i.config.name.as_str(), i.config.paths.as_slice()))
}

fn poll_interval(inputs: &[Input]) -> Duration {
    inputs
        .iter()
        .map(|i| i.config.poll_interval)
        .min()
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_millis(10))
}
