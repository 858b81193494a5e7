//! Tailing: every line appended to a watched file reaches the matcher once, in order, through
//! rotation, restarts and bad input (issue 3).
//!
//! The nouns, after Vector's file source: [`discover`] resolves globs into files, [`watch`] turns
//! directory events into wake-ups, [`fingerprint`] says who a file is, [`reader`] cuts bytes into
//! lines, [`multiline`] joins stack traces, [`checkpoint`] is how far a file has been handed out.
//! [`Tailer`] owns the table of followed files (keyed by an id, indexed by device and inode) and
//! runs the loop: rescan, read in bounded chunks, hand out a batch, wait.
//!
//! How a file is followed:
//! - A rescan (at start, on a directory event, on overflow, and every ten poll intervals as a
//!   safety net) matches the globs. A file seen for the first time is opened and fingerprinted;
//!   a stored checkpoint with the same fingerprint gives its offset, otherwise it is read from
//!   its beginning (from its end only when `start_at: end` applies: files seen by the first
//!   start of a state dir, or by the first scan of an input added by a reload).
//! - Each turn reads at most [`FILE_CHUNK`] bytes and [`FILE_LINES`] lines per file, round
//!   robin (resuming after the file served last), until the batch holds
//!   [`MAX_BATCH_LINES`] lines or [`MAX_BATCH_BYTES`] bytes, so a file written at full speed
//!   cannot starve the others.
//! - A file whose size drops below the read position (copytruncate), or whose first bytes
//!   changed, is read again from 0.
//! - A file no longer matched by the globs (renamed away by logrotate, or deleted) keeps its
//!   descriptor and is drained: it is read on every wake-up and at least every poll interval
//!   until it has been quiet for [`drain_grace`], then its last partial line is handed out and
//!   it is closed. Lines an application writes to the old file after the rename still arrive.
//! - Only a path known not to exist is gone. A directory that cannot be listed, or an entry that
//!   cannot be stat-ed, for any other reason (EACCES, EMFILE, EIO, ESTALE on NFS) is *unknown*:
//!   the files followed under it are kept as they are, the error is reported once, and the globs
//!   are rescanned every poll interval until it clears. Before a drained file is closed, its
//!   path is looked at once more: while it still leads to the same inode (and still matches),
//!   the file is kept.
//! - A closed file's checkpoint (unless the file was deleted) stays in the resume list (with the stored checkpoints not
//!   matched yet), at most [`RESUME_MAX`] entries, each for [`RESUME_KEEP`] after its file was
//!   last known, so that a file that comes back (renamed back, an NFS mount that recovers)
//!   resumes at its offset instead of being read again from 0.
//!
//! The checkpoint rule: a file's checkpoint offset is the end of the last line (or joined
//! event) that `next_batch` has *returned*, never further; a line still held by a `Joiner`, or
//! read but not yet returned, keeps the checkpoint before it. `next_batch` is cancel-safe: its
//! only await is the wait for a wake-up, and reading happens after it, synchronously.

pub mod checkpoint;
pub mod discover;
pub mod fingerprint;
pub mod multiline;
pub mod reader;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::ops::Bound;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{InputConfig, MultilineConfig, StartAt};
use crate::event::{FileId, LogLine};
use crate::tail::checkpoint::Checkpoint;
use crate::tail::discover::{Candidate, InputGlobs, Scan, is_gone};
use crate::tail::fingerprint::Fingerprint;
use crate::tail::multiline::Joiner;
use crate::tail::reader::{LineReader, Piece};
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
/// At most this many checkpoints of files not followed (stored ones not found yet, closed ones)
/// are kept for a file that comes back; the oldest go first.
pub const RESUME_MAX: usize = 4096;
/// A checkpoint of a file not followed is kept this long after its file was last known.
pub const RESUME_KEEP: Duration = Duration::from_secs(3600);

/// What the tailer follows. A file matched by several inputs belongs to the first of them.
#[derive(Clone, Debug)]
pub struct TailerConfig {
    /// The inputs, each with its globs and line settings.
    pub inputs: Vec<InputConfig>,
}

/// What earlier runs of this state dir scanned, which decides where `start_at` applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GlobHistory {
    /// The state dir is new: `start_at` applies to every file found by the first scan.
    FirstStart,
    /// These `(input, glob)` pairs were scanned before; files first found through other globs
    /// follow `start_at`.
    Known(BTreeSet<(String, String)>),
    /// Every configured glob counts as scanned (a state dir from before globs were recorded):
    /// every file without a checkpoint is read from its beginning.
    AllKnown,
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

/// Follows the files of a set of inputs. See the module documentation for the loop.
#[derive(Debug)]
pub struct Tailer {
    inputs: Vec<Input>,
    files: BTreeMap<FileId, Followed>,
    by_inode: HashMap<(u64, u64), FileId>,
    /// Checkpoints not matched to a followed file: stored ones not found yet and those of closed
    /// files, at most one per device and inode, bounded by [`bound_resume`].
    resume: Vec<Resume>,
    /// Inputs whose next scan is their first: `start_at` applies to the files it finds.
    /// Per input, the globs that have had a scan: a file first found through a glob that had
    /// none follows `start_at`; a file that appears later under a scanned glob is new and is
    /// read from its beginning.
    scanned: HashMap<String, HashSet<String>>,
    watch: Option<Watch>,
    wake: Arc<Wake>,
    next_id: u64,
    /// Fairness: the next turn starts after this file.
    cursor: Option<FileId>,
    /// Events closed outside `next_batch` (a reload changed a joiner), to be returned first.
    ready: VecDeque<LogLine>,
    /// Files that could not be opened and directories that could not be listed; each was
    /// reported once, and while any remains the globs are rescanned every poll interval.
    unreadable: HashSet<PathBuf>,
    last_rescan: Option<Instant>,
    /// Data was left unread by the last call: do not wait before the next one.
    more: bool,
    /// `next_batch` found nothing and went to sleep until this deadline. A call that was
    /// cancelled while asleep (the daemon's loop selects over it with a heartbeat) goes back to
    /// sleep without reading: nothing can have arrived that the wake-up would not report, so
    /// idling costs nothing per cancellation (issue 7: 1,000 files were all `fstat`ed on every
    /// heartbeat).
    asleep: Option<Instant>,
    n_truncated: u64,
    /// How many times `next_batch` looked at the files (tests check that idle means asleep).
    n_rounds: u64,
    poll_interval: Duration,
}

/// A checkpoint waiting for its file to be (found) again.
#[derive(Debug)]
struct Resume {
    checkpoint: Checkpoint,
    /// When its file was last known: loaded, closed, or seen but not openable or not listable.
    since: Instant,
}

impl Resume {
    fn key(&self) -> (u64, u64) {
        (
            self.checkpoint.fingerprint.dev,
            self.checkpoint.fingerprint.ino,
        )
    }
}

#[derive(Debug)]
struct Input {
    config: InputConfig,
    globs: InputGlobs,
}

/// One followed file.
#[derive(Debug)]
struct Followed {
    id: FileId,
    input: String,
    path: PathBuf,
    fingerprint: Fingerprint,
    file: File,
    reader: LineReader,
    joiner: Option<Joiner>,
    multiline: Option<MultilineConfig>,
    /// The checkpoint: end of the last line returned by `next_batch`.
    emitted: u64,
    /// A cut line's tail was skipped from `.0` (the cut) to `.1`: once the cut line is
    /// returned, the checkpoint may jump to `.1`.
    skipped: Option<(u64, u64)>,
    /// End of the last line cut at `max_line_bytes` whose tail is being skipped.
    last_cut_end: Option<u64>,
    /// Not matched by the last rescan since then: draining.
    gone_since: Option<Instant>,
    last_data: Instant,
    read_error_reported: bool,
    /// Its path could not be stat-ed before closing it (reported once).
    path_error_reported: bool,
}

/// A line read from a file, owned, before it goes to a joiner or the batch.
enum Owned {
    Line(u64, u64, String, bool),
    Skipped(u64),
}

/// The batch being filled, with its limits.
struct Batch {
    lines: Vec<LogLine>,
    n_bytes: usize,
}

impl Batch {
    fn is_full(&self) -> bool {
        self.lines.len() >= MAX_BATCH_LINES || self.n_bytes >= MAX_BATCH_BYTES
    }
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
        Tailer::start_with(config, resume, history, wake, watch)
    }

    /// The `(input, glob)` pairs that have had a scan, to be stored and given back to
    /// [`Tailer::start_with_history`] after a restart.
    pub fn scanned_globs(&self) -> BTreeSet<(String, String)> {
        self.scanned
            .iter()
            .flat_map(|(input, globs)| globs.iter().map(|glob| (input.clone(), glob.clone())))
            .collect()
    }

    fn start_with(
        config: TailerConfig,
        resume: Vec<Checkpoint>,
        history: GlobHistory,
        wake: Arc<Wake>,
        watch: Watch,
    ) -> Result<Tailer, TailError> {
        let inputs = compile(config.inputs)?;
        let scanned = match history {
            GlobHistory::FirstStart => HashMap::new(),
            GlobHistory::Known(known) => {
                let mut scanned: HashMap<String, HashSet<String>> = HashMap::new();
                for (input, glob) in known {
                    scanned.entry(input).or_default().insert(glob);
                }
                scanned
            }
            GlobHistory::AllKnown => inputs
                .iter()
                .map(|i| {
                    (
                        i.config.name.clone(),
                        i.config.paths.iter().cloned().collect(),
                    )
                })
                .collect(),
        };
        let now = Instant::now();
        let mut resume: Vec<Resume> = resume
            .into_iter()
            .map(|checkpoint| Resume {
                checkpoint,
                since: now,
            })
            .collect();
        bound_resume(&mut resume, now);
        let mut tailer = Tailer {
            poll_interval: poll_interval(&inputs),
            inputs,
            files: BTreeMap::new(),
            by_inode: HashMap::new(),
            resume,
            scanned,
            watch: Some(watch),
            wake,
            next_id: 1,
            cursor: None,
            ready: VecDeque::new(),
            unreadable: HashSet::new(),
            last_rescan: None,
            more: false,
            asleep: None,
            n_truncated: 0,
            n_rounds: 0,
        };
        tailer.rescan(now);
        Ok(tailer)
    }

    /// Waits until lines are available and returns a batch of them (at most about
    /// [`MAX_BATCH_LINES`] lines or [`MAX_BATCH_BYTES`] bytes), read fairly across files, and the
    /// multi-line events closed by their timeout. Never busy-polls: with nothing to read it
    /// sleeps until a file-system event, a joiner deadline or the next periodic check.
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
                    let lines = self.collect(Instant::now());
                    if !lines.is_empty() {
                        return lines;
                    }
                    if self.more {
                        tokio::task::yield_now().await;
                        continue;
                    }
                    let deadline = self.deadline(Instant::now());
                    self.asleep = Some(deadline);
                    deadline
                }
            };
            // A wake-up that came while no call was waiting is kept as the `Notify`'s permit,
            // and a deadline that passed meanwhile fires at once.
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep_until(deadline.into()) => {}
            }
            self.asleep = None;
        }
    }

    /// Offsets safe to persist now, one per known file: the end of the last line handed out by
    /// `next_batch`, never past the start of a multi-line event still held in a joiner. The
    /// resume list (stored checkpoints of files not found yet, checkpoints of closed files; see
    /// [`RESUME_MAX`]) is included, so it survives a restart. At most one per device and inode.
    pub fn checkpoints(&self) -> Vec<Checkpoint> {
        self.files
            .values()
            .map(|file| Checkpoint {
                fingerprint: file.fingerprint,
                path: file.path.clone(),
                offset: file.emitted,
            })
            .chain(self.resume.iter().map(|r| r.checkpoint.clone()))
            .collect()
    }

    /// Applies a reloaded config: added inputs start (`start_at` applies to their first scan),
    /// removed ones stop (their files are closed), files of kept inputs keep their positions
    /// (a changed multi-line setting closes the event being joined; it is returned by the next
    /// `next_batch`).
    pub fn reconfigure(&mut self, config: TailerConfig) {
        let inputs = match compile(config.inputs) {
            Ok(inputs) => inputs,
            Err(err) => {
                tracing::error!(error = %err, "reload: keeping the previous inputs");
                return;
            }
        };
        let names: HashSet<&str> = inputs.iter().map(|i| i.config.name.as_str()).collect();
        let removed: Vec<FileId> = self
            .files
            .values()
            .filter(|f| !names.contains(f.input.as_str()))
            .map(|f| f.id)
            .collect();
        for id in removed {
            if let Some(mut file) = self.files.remove(&id) {
                self.by_inode
                    .remove(&(file.fingerprint.dev, file.fingerprint.ino));
                if let Some(event) = file.joiner.as_mut().and_then(Joiner::flush) {
                    self.ready.push_back(event);
                }
            }
        }
        // Globs no longer configured are forgotten: configured again later, they are new.
        self.scanned.retain(
            |name, globs| match inputs.iter().find(|i| i.config.name == *name) {
                Some(input) => {
                    globs.retain(|glob| input.config.paths.contains(glob));
                    !globs.is_empty()
                }
                None => false,
            },
        );
        for file in self.files.values_mut() {
            let Some(input) = inputs.iter().find(|i| i.config.name == file.input) else {
                continue;
            };
            file.reader.set_max_line_bytes(input.config.max_line_bytes);
            if !same_multiline(file.multiline.as_ref(), input.config.multiline.as_ref()) {
                if let Some(event) = file.joiner.as_mut().and_then(Joiner::flush) {
                    self.ready.push_back(event);
                }
                file.multiline = input.config.multiline.clone();
                file.joiner = file.multiline.as_ref().map(Joiner::new);
            }
        }
        self.poll_interval = poll_interval(&inputs);
        self.inputs = inputs;
        self.asleep = None;
        self.wake.rescan();
    }

    /// Stops reading and closes the multi-line events being joined; returns them (the daemon
    /// handles them like a last batch, then saves `checkpoints()`). Files stay open until the
    /// tailer is dropped; `next_batch` never resolves after this.
    pub fn shutdown(&mut self) -> Vec<LogLine> {
        self.watch = None;
        let mut batch = Batch {
            lines: Vec::new(),
            n_bytes: 0,
        };
        self.take_ready(&mut batch);
        for file in self.files.values_mut() {
            if let Some(event) = file.joiner.as_mut().and_then(Joiner::flush) {
                file.emit(event, &mut batch);
            }
        }
        batch.lines
    }

    /// How many files are followed (including ones being drained).
    pub fn n_files(&self) -> usize {
        self.files.len()
    }

    /// How many lines were cut at `max_line_bytes` so far.
    pub fn n_truncated(&self) -> u64 {
        self.n_truncated
    }

    /// True when inotify is not used and files are polled every poll interval.
    pub fn is_polling(&self) -> bool {
        self.watch.as_ref().is_some_and(Watch::is_polling)
    }

    /// One round of work: rescan if due, read turns until the batch is full or nothing moves,
    /// close timed-out events, release drained files.
    fn collect(&mut self, now: Instant) -> Vec<LogLine> {
        self.n_rounds += 1;
        let mut batch = Batch {
            lines: Vec::new(),
            n_bytes: 0,
        };
        self.take_ready(&mut batch);
        if self.wake.take_rescan() || self.rescan_due(now) {
            self.rescan(now);
        }
        self.more = false;
        let mut n_read = 0u64;
        loop {
            let (progressed, n) = self.turn(&mut batch, now);
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
            if let Some(event) = file.joiner.as_mut().and_then(|j| j.poll(now)) {
                file.emit(event, &mut batch);
            }
        }
        if !self.more {
            self.release_drained(now, &mut batch);
        }
        batch.lines
    }

    /// Moves the events closed by `reconfigure` into the batch; the checkpoint of a file still
    /// followed moves past them now that they are handed out (nothing else of that file was
    /// handed out since: reading only happens in `collect`).
    fn take_ready(&mut self, batch: &mut Batch) {
        while let Some(line) = self.ready.pop_front() {
            match self.files.get_mut(&line.file_id) {
                Some(file) => file.emit(line, batch),
                None => {
                    batch.n_bytes += line.text.len();
                    batch.lines.push(line);
                }
            }
        }
    }

    /// Reads one chunk from each file, round robin from the cursor. Returns whether anything was
    /// read or handed out, and how many bytes were read.
    fn turn(&mut self, batch: &mut Batch, now: Instant) -> (bool, u64) {
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
            let Some(file) = self.files.get_mut(&id) else {
                continue;
            };
            // Consumed, read, handed out: lines taken into a joiner are progress too.
            let before = (
                file.reader.offset(),
                file.reader.position(),
                batch.lines.len(),
            );
            let n_cut = file.read(batch, now);
            self.n_truncated += n_cut;
            let after = (
                file.reader.offset(),
                file.reader.position(),
                batch.lines.len(),
            );
            if after != before {
                progressed = true;
            }
            n_read += after.1.saturating_sub(before.1);
            self.cursor = Some(id);
        }
        (progressed, n_read)
    }

    fn rescan_due(&self, now: Instant) -> bool {
        let Some(last) = self.last_rescan else {
            return true;
        };
        let every = if self.is_polling() || !self.unreadable.is_empty() {
            self.poll_interval
        } else {
            safety_rescan(self.poll_interval)
        };
        now.saturating_duration_since(last) >= every
    }

    /// When `next_batch` must look again even without an event.
    fn deadline(&self, now: Instant) -> Instant {
        let every = if self.is_polling() || !self.unreadable.is_empty() {
            self.poll_interval
        } else {
            safety_rescan(self.poll_interval)
        };
        let mut deadline = self.last_rescan.map_or(now, |last| last + every);
        for file in self.files.values() {
            if let Some(at) = file.joiner.as_ref().and_then(Joiner::deadline) {
                deadline = deadline.min(at);
            }
            if file.gone_since.is_some() {
                deadline = deadline.min(now + self.poll_interval);
            }
        }
        deadline.max(now)
    }

    /// Matches the globs and reconciles the file table: new files are opened, known ones
    /// followed to their new path, missing ones start draining.
    fn rescan(&mut self, now: Instant) {
        self.last_rescan = Some(now);
        let mut scan = Scan::default();
        let mut seen: HashSet<FileId> = HashSet::new();
        let mut unopened: HashSet<(u64, u64)> = HashSet::new();
        let mut unreadable: HashSet<PathBuf> = HashSet::new();
        for index in 0..self.inputs.len() {
            let Some(input) = self.inputs.get(index) else {
                continue;
            };
            let candidates = input.globs.discover(&mut scan);
            let scanned = self.scanned.get(&input.config.name);
            let fresh: Vec<bool> = candidates
                .iter()
                .map(|candidate| {
                    !input
                        .globs
                        .patterns_matching(&candidate.path)
                        .any(|glob| scanned.is_some_and(|known| known.contains(glob)))
                })
                .collect();
            for (candidate, fresh) in candidates.into_iter().zip(fresh) {
                let key = (candidate.meta.dev(), candidate.meta.ino());
                if let Some(id) = self.by_inode.get(&key) {
                    if seen.insert(*id) {
                        if let Some(file) = self.files.get_mut(id) {
                            file.found_at(&candidate);
                        }
                    }
                    continue;
                }
                if unopened.contains(&key) {
                    continue;
                }
                match self.open(index, &candidate, fresh, now) {
                    Some(id) => {
                        seen.insert(id);
                    }
                    None => {
                        unopened.insert(key);
                        unreadable.insert(candidate.path);
                    }
                }
            }
        }
        for input in &self.inputs {
            self.scanned
                .entry(input.config.name.clone())
                .or_default()
                .extend(input.config.paths.iter().cloned());
        }
        for (path, unknown) in &scan.unknown {
            if !self.unreadable.insert(path.clone()) {
                continue;
            }
            if unknown.listing {
                tracing::warn!(
                    dir = %path.display(),
                    error = %unknown.error,
                    "cannot list directory; keeping the files followed in it; will retry"
                );
            } else {
                tracing::warn!(
                    path = %path.display(),
                    error = %unknown.error,
                    "cannot stat; keeping the file if followed; will retry"
                );
            }
        }
        unreadable.extend(scan.unknown.keys().cloned());
        // Paths reported unreadable that are gone or readable now may be reported again later.
        self.unreadable.retain(|path| unreadable.contains(path));
        // A checkpoint whose file exists but cannot be opened, or may exist where nothing can be
        // learnt now, is fresh; the others age out.
        for resume in &mut self.resume {
            if unopened.contains(&resume.key()) || scan.is_unknown(&resume.checkpoint.path) {
                resume.since = now;
            }
        }
        bound_resume(&mut self.resume, now);
        for file in self.files.values_mut() {
            if seen.contains(&file.id) {
                file.gone_since = None;
            } else if scan.is_unknown(&file.path) {
                // Not listable now: neither found nor gone; keep following it as it was.
            } else if file.gone_since.is_none() {
                tracing::debug!(path = %file.path.display(), "no longer matched: draining");
                file.gone_since = Some(now);
                file.last_data = now;
            }
        }
        if let Some(watch) = self.watch.as_mut() {
            let was_polling = watch.is_polling();
            watch.set_dirs(&scan.dirs);
            if watch.is_polling() && !was_polling {
                self.wake.read();
            }
        }
    }

    /// Opens a newly matched file and decides where to start in it.
    fn open(
        &mut self,
        input_index: usize,
        candidate: &Candidate,
        fresh: bool,
        now: Instant,
    ) -> Option<FileId> {
        let input = &self.inputs.get(input_index)?.config;
        let path = &candidate.path;
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(err) => {
                if self.unreadable.insert(path.clone()) {
                    tracing::warn!(
                        path = %path.display(),
                        error = %err,
                        "cannot open file; will retry"
                    );
                }
                return None;
            }
        };
        let opened = file.metadata().and_then(|meta| {
            let fingerprint = Fingerprint::of(&file, &meta)?;
            Ok((meta, fingerprint))
        });
        let (meta, fingerprint) = match opened {
            Ok(opened) => opened,
            Err(err) => {
                if self.unreadable.insert(path.clone()) {
                    tracing::warn!(
                        path = %path.display(),
                        error = %err,
                        "cannot read file; will retry"
                    );
                }
                return None;
            }
        };
        if self.unreadable.remove(path) {
            tracing::info!(path = %path.display(), "file is readable now");
        }
        let key = (meta.dev(), meta.ino());
        if let Some(id) = self.by_inode.get(&key) {
            // Replaced between the scan and the open by a file we already follow.
            return Some(*id);
        }
        let resumed = self
            .resume
            .iter()
            .position(|r| {
                r.checkpoint
                    .fingerprint
                    .matches(&file, &meta)
                    .unwrap_or(false)
            })
            .map(|i| self.resume.swap_remove(i).checkpoint);
        // Another file's checkpoint with this inode (a reused number) is stale now.
        self.resume.retain(|r| r.key() != key);
        let offset = match resumed {
            Some(cp) if cp.offset <= meta.len() => cp.offset,
            // Truncated while we were away.
            Some(_) => 0,
            None if fresh && input.start_at == StartAt::End => meta.len(),
            None => 0,
        };
        if let Err(err) = file.seek(SeekFrom::Start(offset)) {
            tracing::warn!(path = %path.display(), error = %err, "cannot seek; will retry");
            return None;
        }
        tracing::debug!(path = %path.display(), offset, "following file");
        let id = FileId(self.next_id);
        self.next_id += 1;
        self.by_inode.insert(key, id);
        self.files.insert(
            id,
            Followed {
                id,
                input: input.name.clone(),
                path: path.clone(),
                fingerprint,
                file,
                reader: LineReader::new(input.max_line_bytes, offset),
                joiner: input.multiline.as_ref().map(Joiner::new),
                multiline: input.multiline.clone(),
                emitted: offset,
                skipped: None,
                last_cut_end: None,
                gone_since: None,
                last_data: now,
                read_error_reported: false,
                path_error_reported: false,
            },
        );
        Some(id)
    }

    /// Closes draining files that have been quiet for the grace period, after handing out their
    /// joined event and unterminated last line; their checkpoints go to the resume list. A file
    /// whose path still leads to it (or cannot be looked at) is kept.
    fn release_drained(&mut self, now: Instant, batch: &mut Batch) {
        let grace = drain_grace(self.poll_interval);
        let done: Vec<FileId> = self
            .files
            .values()
            .filter(|f| {
                f.gone_since.is_some() && now.saturating_duration_since(f.last_data) >= grace
            })
            .map(|f| f.id)
            .collect();
        for id in done {
            let Some(file) = self.files.get_mut(&id) else {
                continue;
            };
            let matched = self
                .inputs
                .iter()
                .find(|i| i.config.name == file.input)
                .is_some_and(|i| i.globs.matches(&file.path));
            if matched && file.still_at_path(now) {
                continue;
            }
            let Some(mut file) = self.files.remove(&id) else {
                continue;
            };
            let key = (file.fingerprint.dev, file.fingerprint.ino);
            self.by_inode.remove(&key);
            let partial = file.reader.take_partial().map(|piece| owned(piece, &mut 0));
            if let Some(Owned::Line(start, end, text, truncated)) = partial {
                let line = file.line(start, end, text, truncated);
                file.push(line, now, batch);
            }
            if let Some(event) = file.joiner.as_mut().and_then(Joiner::flush) {
                file.emit(event, batch);
            }
            tracing::debug!(
                path = %file.path.display(),
                offset = file.emitted,
                "drained and closed"
            );
            self.resume.retain(|r| r.key() != key);
            // A deleted file cannot come back, and its inode number will serve another file.
            if file.file.metadata().is_ok_and(|meta| meta.nlink() == 0) {
                continue;
            }
            self.resume.push(Resume {
                checkpoint: Checkpoint {
                    fingerprint: file.fingerprint,
                    path: file.path.clone(),
                    offset: file.emitted,
                },
                since: now,
            });
            bound_resume(&mut self.resume, now);
        }
    }
}

/// Drops the resume entries whose file was last known [`RESUME_KEEP`] ago or longer, then the
/// oldest beyond [`RESUME_MAX`].
fn bound_resume(resume: &mut Vec<Resume>, now: Instant) {
    resume.retain(|r| now.saturating_duration_since(r.since) < RESUME_KEEP);
    if resume.len() > RESUME_MAX {
        resume.sort_by_key(|r| std::cmp::Reverse(r.since));
        resume.truncate(RESUME_MAX);
    }
}

impl Followed {
    /// Asked before closing a file no scan found: true (and the file is no longer draining)
    /// when its path still leads to its inode; true as well (and it is looked at again after
    /// another grace period) when the path cannot be stat-ed for a reason other than not
    /// existing. False when the path is gone or holds another file.
    fn still_at_path(&mut self, now: Instant) -> bool {
        match std::fs::metadata(&self.path) {
            Ok(meta)
                if (meta.dev(), meta.ino()) == (self.fingerprint.dev, self.fingerprint.ino) =>
            {
                tracing::debug!(
                    path = %self.path.display(),
                    "not found by the scan but still at its path: kept"
                );
                self.gone_since = None;
                true
            }
            Ok(_) => false,
            Err(err) if is_gone(&err) => false,
            Err(err) => {
                if !self.path_error_reported {
                    self.path_error_reported = true;
                    tracing::warn!(
                        path = %self.path.display(),
                        error = %err,
                        "cannot stat a file that seems gone; keeping it; will retry"
                    );
                }
                self.last_data = now;
                true
            }
        }
    }

    /// The file was matched at `candidate.path` by a rescan: follow a rename.
    fn found_at(&mut self, candidate: &Candidate) {
        if self.path == candidate.path {
            return;
        }
        let same = std::fs::metadata(&self.path)
            .is_ok_and(|m| (m.dev(), m.ino()) == (self.fingerprint.dev, self.fingerprint.ino));
        if !same {
            tracing::debug!(
                from = %self.path.display(),
                to = %candidate.path.display(),
                "file renamed"
            );
            self.path = candidate.path.clone();
        }
    }

    /// Reads one chunk and hands out its lines (to the joiner, or the batch). Returns how many
    /// lines were cut at `max_line_bytes`.
    fn read(&mut self, batch: &mut Batch, now: Instant) -> u64 {
        let meta = match self.file.metadata() {
            Ok(meta) => meta,
            Err(err) => {
                self.report_read_error(&err);
                return 0;
            }
        };
        let position = self.reader.position();
        if meta.len() < position {
            tracing::info!(
                path = %self.path.display(),
                size = meta.len(),
                position,
                "file truncated (copytruncate?); reading it from the start"
            );
            self.restart(batch);
        } else if meta.len() > position {
            match self.fingerprint.matches(&self.file, &meta) {
                Ok(true) if !self.fingerprint.is_complete() => {
                    if let Ok(grown) = Fingerprint::of(&self.file, &meta) {
                        self.fingerprint = grown;
                    }
                }
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(
                        path = %self.path.display(),
                        "file rewritten from its start (copytruncate?); reading it from the start"
                    );
                    self.restart(batch);
                }
                Err(err) => {
                    self.report_read_error(&err);
                    return 0;
                }
            }
        } else if self.reader.buffered() == 0 {
            return 0;
        }
        let mut budget = FILE_CHUNK;
        let mut n_cut = 0;
        for _ in 0..FILE_LINES {
            if batch.is_full() {
                break;
            }
            let piece = match self.reader.next_piece(&mut self.file, &mut budget) {
                Ok(Some(piece)) => owned(piece, &mut n_cut),
                Ok(None) => break,
                Err(err) => {
                    self.report_read_error(&err);
                    break;
                }
            };
            self.last_data = now;
            match piece {
                Owned::Line(start, end, text, truncated) => {
                    let line = self.line(start, end, text, truncated);
                    self.push(line, now, batch);
                    if truncated {
                        self.last_cut_end = Some(end);
                    }
                }
                Owned::Skipped(end) => {
                    let held = self.joiner.as_ref().and_then(Joiner::open_start).is_some();
                    match self.last_cut_end.take() {
                        Some(cut) if held => self.skipped = Some((cut, end)),
                        Some(cut) if self.emitted == cut => self.emitted = end,
                        _ => {}
                    }
                }
            }
        }
        if self.reader.position() > position {
            self.last_data = now;
        }
        if !self.fingerprint.is_complete() {
            if let Ok(meta) = self.file.metadata() {
                if let Ok(grown) = Fingerprint::of(&self.file, &meta) {
                    if grown.head_len > self.fingerprint.head_len
                        && self.fingerprint.matches(&self.file, &meta).unwrap_or(false)
                    {
                        self.fingerprint = grown;
                    }
                }
            }
        }
        n_cut
    }

    fn line(&self, start: u64, end: u64, text: String, truncated: bool) -> LogLine {
        LogLine {
            input: self.input.clone(),
            file_id: self.id,
            path: self.path.clone(),
            start_offset: start,
            end_offset: end,
            text,
            truncated,
            read_at: SystemTime::now(),
        }
    }

    /// Sends a line through the joiner (if any) into the batch.
    fn push(&mut self, line: LogLine, now: Instant, batch: &mut Batch) {
        match self.joiner.as_mut() {
            Some(joiner) => {
                if let Some(event) = joiner.push(line, now) {
                    self.emit(event, batch);
                }
            }
            None => self.emit(line, batch),
        }
    }

    /// Puts a line (or closed event) into the batch and moves the checkpoint past it.
    fn emit(&mut self, line: LogLine, batch: &mut Batch) {
        self.emitted = line.end_offset;
        if let Some((cut, skip_end)) = self.skipped {
            if line.end_offset == cut {
                self.emitted = skip_end;
                self.skipped = None;
            }
        }
        batch.n_bytes += line.text.len();
        batch.lines.push(line);
    }

    /// Starts the file over from offset 0 (it was truncated or rewritten).
    fn restart(&mut self, batch: &mut Batch) {
        if let Some(event) = self.joiner.as_mut().and_then(Joiner::flush) {
            self.emit(event, batch);
        }
        self.reader.reset(0);
        self.emitted = 0;
        self.skipped = None;
        self.last_cut_end = None;
        if let Err(err) = self.file.seek(SeekFrom::Start(0)) {
            self.report_read_error(&err);
        }
        // The head changed: fingerprint the new content, or the next read would take the old
        // head's absence for another rewrite and start over again.
        match self.file.metadata() {
            Ok(meta) => {
                if let Ok(fingerprint) = Fingerprint::of(&self.file, &meta) {
                    self.fingerprint = fingerprint;
                }
            }
            Err(err) => self.report_read_error(&err),
        }
    }

    fn report_read_error(&mut self, err: &std::io::Error) {
        if !self.read_error_reported {
            self.read_error_reported = true;
            tracing::warn!(path = %self.path.display(), error = %err, "cannot read file");
        }
    }
}

/// Copies a piece out of the reader's buffer (decoding lossily) and counts a cut.
fn owned(piece: Piece<'_>, n_cut: &mut u64) -> Owned {
    match piece {
        Piece::Line {
            start,
            end,
            bytes,
            truncated,
        } => {
            if truncated {
                *n_cut += 1;
            }
            Owned::Line(
                start,
                end,
                String::from_utf8_lossy(bytes).into_owned(),
                truncated,
            )
        }
        Piece::Skipped { end } => Owned::Skipped(end),
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
            Ok(Input { config, globs })
        })
        .collect()
}

fn poll_interval(inputs: &[Input]) -> Duration {
    inputs
        .iter()
        .map(|i| i.config.poll_interval)
        .min()
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_millis(10))
}

/// The slow safety rescan under inotify: ten poll intervals, at least one second.
fn safety_rescan(poll_interval: Duration) -> Duration {
    (poll_interval * 10).max(Duration::from_secs(1))
}

fn same_multiline(a: Option<&MultilineConfig>, b: Option<&MultilineConfig>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.start.as_str() == b.start.as_str()
                && a.max_lines == b.max_lines
                && a.timeout == b.timeout
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, OpenOptions};
    use std::io::{ErrorKind, Write};
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::config::{InputConfig, MultilineConfig, StartAt};
    use crate::event::LogLine;
    use crate::tail::checkpoint::Checkpoint;
    use crate::tail::fingerprint::Fingerprint;
    use crate::tail::watch::{Wake, Watch};
    use crate::tail::{
        GlobHistory, MAX_BATCH_LINES, RESUME_KEEP, RESUME_MAX, Resume, Tailer, TailerConfig,
        bound_resume,
    };

    fn input(glob: &Path, start_at: StartAt) -> InputConfig {
        InputConfig {
            name: "app".into(),
            paths: vec![glob.display().to_string()],
            exclude: vec![],
            start_at,
            poll_interval: Duration::from_millis(100),
            max_line_bytes: 1024,
            multiline: None,
            decoding: crate::config::Decoding::default(),
            journald: None,
        }
    }

    fn start(inputs: Vec<InputConfig>, resume: Vec<Checkpoint>, first: bool) -> Tailer {
        Tailer::start(TailerConfig { inputs }, resume, first).unwrap()
    }

    #[test]
    fn the_tailer_and_its_batches_can_move_to_a_spawned_task() {
        fn assert_send<T: Send>(_: &T) {}
        let dir = tempfile::tempdir().unwrap();
        let mut tailer = start(
            vec![input(&dir.path().join("*.log"), StartAt::End)],
            vec![],
            true,
        );
        assert_send(&tailer.next_batch());
        assert_send(&tailer);
    }

    #[tokio::test]
    async fn without_inotify_polling_finds_and_reads_files() {
        let dir = tempfile::tempdir().unwrap();
        let glob = dir.path().join("*.log");
        let wake = Arc::new(Wake::default());
        let mut tailer = Tailer::start_with(
            TailerConfig {
                inputs: vec![input(&glob, StartAt::Beginning)],
            },
            vec![],
            GlobHistory::FirstStart,
            Arc::clone(&wake),
            Watch::polling(),
        )
        .unwrap();
        assert!(tailer.is_polling());
        append(&dir.path().join("a.log"), "created\n");
        assert_eq!(texts(&lines(&mut tailer, 1).await), ["created"]);
        append(&dir.path().join("a.log"), "appended\n");
        assert_eq!(texts(&lines(&mut tailer, 1).await), ["appended"]);
    }

    #[tokio::test]
    async fn idle_means_asleep() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, "one\n");
        let mut config = input(&path, StartAt::Beginning);
        config.poll_interval = Duration::from_secs(1);
        let mut tailer = start(vec![config], vec![], true);
        lines(&mut tailer, 1).await;
        let rounds = tailer.n_rounds;
        quiet(&mut tailer, Duration::from_millis(700)).await;
        assert!(
            tailer.n_rounds - rounds <= 2,
            "{} rounds while idle: busy polling",
            tailer.n_rounds - rounds
        );
    }

    #[tokio::test]
    async fn a_cancelled_wait_does_not_read_the_files_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, "one\n");
        let mut tailer = start(vec![input(&path, StartAt::Beginning)], vec![], true);
        lines(&mut tailer, 1).await;
        // Settle: the creation's own events may still wake it.
        let _settle = tokio::time::timeout(Duration::from_millis(200), tailer.next_batch()).await;
        let rounds = tailer.n_rounds;
        // The daemon's loop cancels `next_batch` at every heartbeat.
        for _ in 0..20 {
            quiet(&mut tailer, Duration::from_millis(5)).await;
        }
        assert!(
            tailer.n_rounds - rounds <= 1,
            "{} rounds for 20 cancelled waits",
            tailer.n_rounds - rounds
        );
        // And a line appended meanwhile still arrives.
        append(&path, "two\n");
        assert_eq!(texts(&lines(&mut tailer, 1).await), ["two"]);
    }

    #[tokio::test]
    async fn a_file_written_at_full_speed_does_not_starve_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let busy = dir.path().join("a-busy.log");
        fs::write(&busy, "x\n".repeat(200_000)).unwrap();
        append(&dir.path().join("b-quiet.log"), "quiet\n");
        let glob = dir.path().join("*.log");
        let mut tailer = start(vec![input(&glob, StartAt::Beginning)], vec![], true);
        let first = tokio::time::timeout(Duration::from_secs(5), tailer.next_batch())
            .await
            .unwrap();
        assert!(first.len() <= MAX_BATCH_LINES);
        assert!(
            first.iter().any(|l| l.text == "quiet"),
            "the quiet file waited behind {} lines of the busy one",
            first.len()
        );
    }

    fn append(path: &Path, text: &str) {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    /// Batches until `n` lines arrived (fails after 5 s).
    async fn lines(tailer: &mut Tailer, n: usize) -> Vec<LogLine> {
        let mut out = Vec::new();
        while out.len() < n {
            let batch = tokio::time::timeout(Duration::from_secs(5), tailer.next_batch())
                .await
                .unwrap_or_else(|_| panic!("only {} of {n} lines: {out:?}", out.len()));
            out.extend(batch);
        }
        assert_eq!(out.len(), n, "{out:?}");
        out
    }

    fn texts(lines: &[LogLine]) -> Vec<&str> {
        lines.iter().map(|l| l.text.as_str()).collect()
    }

    /// Nothing more arrives within `wait`.
    async fn quiet(tailer: &mut Tailer, wait: Duration) {
        if let Ok(batch) = tokio::time::timeout(wait, tailer.next_batch()).await {
            panic!("unexpected lines: {batch:?}");
        }
    }

    #[tokio::test]
    async fn appended_lines_arrive_and_the_checkpoint_follows_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, "one\ntwo\n");
        let mut tailer = start(vec![input(&path, StartAt::Beginning)], vec![], true);
        assert_eq!(tailer.n_files(), 1);
        assert_eq!(texts(&lines(&mut tailer, 2).await), ["one", "two"]);
        append(&path, "three\npart");
        let got = lines(&mut tailer, 1).await;
        assert_eq!(texts(&got), ["three"]);
        assert_eq!((got[0].start_offset, got[0].end_offset), (8, 14));
        let checkpoints = tailer.checkpoints();
        assert_eq!(checkpoints.len(), 1);
        assert_eq!(checkpoints[0].offset, 14, "not past the partial line");
        assert_eq!(checkpoints[0].path, path);
    }

    #[tokio::test]
    async fn start_at_end_applies_at_first_start_only_and_new_files_start_at_zero() {
        let dir = tempfile::tempdir().unwrap();
        append(&dir.path().join("old.log"), "history\n");
        let glob = dir.path().join("*.log");
        let mut tailer = start(vec![input(&glob, StartAt::End)], vec![], true);
        append(&dir.path().join("old.log"), "new\n");
        append(&dir.path().join("later.log"), "created later\n");
        let mut got: Vec<String> = lines(&mut tailer, 2)
            .await
            .into_iter()
            .map(|l| l.text)
            .collect();
        got.sort();
        assert_eq!(got, ["created later", "new"]);

        // Not a first start, no checkpoint: from the beginning.
        append(&dir.path().join("unknown.log"), "while down\n");
        let mut again = start(
            vec![input(&dir.path().join("unknown.log"), StartAt::End)],
            vec![],
            false,
        );
        assert_eq!(texts(&lines(&mut again, 1).await), ["while down"]);
    }

    #[tokio::test]
    async fn resumes_a_file_rotated_while_down_at_its_unread_part() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, &format!("{}\n", "a".repeat(300)));
        append(&path, "read before stop\n");
        let glob = dir.path().join("app.log*");
        let mut tailer = start(vec![input(&glob, StartAt::Beginning)], vec![], true);
        lines(&mut tailer, 2).await;
        let saved = tailer.checkpoints();
        drop(tailer);

        // While down: more lines, then rename + create.
        append(&path, "unread 1\nunread 2\n");
        fs::rename(&path, dir.path().join("app.log.1")).unwrap();
        append(&path, "new file\n");

        let mut tailer = start(vec![input(&glob, StartAt::End)], saved, false);
        let mut got: Vec<String> = lines(&mut tailer, 3)
            .await
            .into_iter()
            .map(|l| l.text)
            .collect();
        got.sort();
        assert_eq!(got, ["new file", "unread 1", "unread 2"]);
        quiet(&mut tailer, Duration::from_millis(300)).await;
    }

    #[tokio::test]
    async fn rename_rotation_drains_the_old_file_and_reads_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, "before\n");
        let mut tailer = start(vec![input(&path, StartAt::Beginning)], vec![], true);
        lines(&mut tailer, 1).await;
        let mut old = OpenOptions::new().append(true).open(&path).unwrap();
        fs::rename(&path, dir.path().join("app.log.1")).unwrap();
        append(&path, "new\n");
        // The application writes to its old descriptor until it reopens.
        old.write_all(b"late\n").unwrap();
        let mut got: Vec<String> = lines(&mut tailer, 2)
            .await
            .into_iter()
            .map(|l| l.text)
            .collect();
        got.sort();
        assert_eq!(got, ["late", "new"]);
        // The old file is released after the grace period (1 s at this poll interval); its
        // checkpoint stays in the resume list, at its end.
        drop(old);
        quiet(&mut tailer, Duration::from_millis(1500)).await;
        assert_eq!(tailer.n_files(), 1, "the drained file was closed");
        let rotated = fs::metadata(dir.path().join("app.log.1")).unwrap();
        let checkpoints = tailer.checkpoints();
        assert_eq!(checkpoints.len(), 2, "{checkpoints:?}");
        assert!(
            checkpoints
                .iter()
                .any(|cp| cp.fingerprint.ino == rotated.ino() && cp.offset == rotated.len()),
            "{checkpoints:?}"
        );
    }

    #[tokio::test]
    async fn a_truncated_file_is_read_again_from_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, "first line that is long\n");
        let mut tailer = start(vec![input(&path, StartAt::Beginning)], vec![], true);
        lines(&mut tailer, 1).await;
        fs::write(&path, "").unwrap();
        append(&path, "after\n");
        let got = lines(&mut tailer, 1).await;
        assert_eq!(texts(&got), ["after"]);
        assert_eq!(got[0].start_offset, 0);
        assert_eq!(tailer.checkpoints()[0].offset, 6);
        // Growing again is not mistaken for another rewrite (the fingerprint follows the new
        // head).
        append(&path, "more\n");
        assert_eq!(texts(&lines(&mut tailer, 1).await), ["more"]);
        quiet(&mut tailer, Duration::from_millis(300)).await;
    }

    #[tokio::test]
    async fn the_checkpoint_waits_for_the_open_multiline_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let mut config = input(&path, StartAt::Beginning);
        config.multiline = Some(MultilineConfig {
            start: regex::Regex::new(r"^\d").unwrap(),
            max_lines: 100,
            timeout: Duration::from_millis(300),
        });
        append(&path, "1 first\n  at x\n2 second\n  at y\n");
        let mut tailer = start(vec![config], vec![], true);
        let first = lines(&mut tailer, 1).await;
        assert_eq!(texts(&first), ["1 first\n  at x"]);
        assert_eq!(
            tailer.checkpoints()[0].offset,
            15,
            "the open event `2 second` starts at 15 and is not handed out yet"
        );
        let second = lines(&mut tailer, 1).await;
        assert_eq!(
            texts(&second),
            ["2 second\n  at y"],
            "closed by the timeout"
        );
        assert_eq!(tailer.checkpoints()[0].offset, 31);
    }

    #[tokio::test]
    async fn a_long_line_is_cut_and_the_checkpoint_passes_its_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let mut config = input(&path, StartAt::Beginning);
        config.max_line_bytes = 100;
        let mut data = vec![b'z'; 200_000];
        data.push(b'\n');
        data.extend_from_slice(b"\xffok\n");
        fs::write(&path, &data).unwrap();
        let mut tailer = start(vec![config], vec![], true);
        let got = lines(&mut tailer, 2).await;
        assert!(got[0].truncated && got[0].text.len() == 100);
        assert_eq!(got[1].text, "\u{fffd}ok");
        assert_eq!(tailer.n_truncated(), 1);
        assert_eq!(tailer.checkpoints()[0].offset, data.len() as u64);
    }

    #[tokio::test]
    async fn the_same_file_through_a_symlink_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("real.log");
        append(&path, "once\n");
        std::os::unix::fs::symlink(&path, dir.path().join("link.log")).unwrap();
        let glob = dir.path().join("*.log");
        let mut tailer = start(vec![input(&glob, StartAt::Beginning)], vec![], true);
        assert_eq!(texts(&lines(&mut tailer, 1).await), ["once"]);
        quiet(&mut tailer, Duration::from_millis(300)).await;
        assert_eq!(tailer.n_files(), 1);
    }

    #[tokio::test]
    async fn reconfigure_keeps_positions_and_starts_and_stops_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.log");
        let b = dir.path().join("b.log");
        append(&a, "a1\n");
        append(&b, "b1\n");
        let mut tailer = start(vec![input(&a, StartAt::Beginning)], vec![], true);
        assert_eq!(texts(&lines(&mut tailer, 1).await), ["a1"]);
        let mut second = input(&b, StartAt::Beginning);
        second.name = "second".into();
        tailer.reconfigure(TailerConfig {
            inputs: vec![input(&a, StartAt::Beginning), second.clone()],
        });
        append(&a, "a2\n");
        let mut got: Vec<String> = lines(&mut tailer, 2)
            .await
            .into_iter()
            .map(|l| l.text)
            .collect();
        got.sort();
        assert_eq!(got, ["a2", "b1"], "a kept its position; b started");
        tailer.reconfigure(TailerConfig {
            inputs: vec![second],
        });
        append(&a, "a3\n");
        quiet(&mut tailer, Duration::from_millis(300)).await;
        assert_eq!(tailer.n_files(), 1);
    }

    /// Lists or stats of `path` fail with `kind` from now on (`None`: they work again), and the
    /// tailer rescans at once.
    fn fault(tailer: &mut Tailer, path: &Path, kind: Option<ErrorKind>) {
        for input in &mut tailer.inputs {
            input.globs.inject_fault(path, kind);
        }
        tailer.wake.rescan();
    }

    #[tokio::test]
    async fn a_directory_that_cannot_be_listed_keeps_its_files_and_their_positions() {
        for kind in [
            ErrorKind::PermissionDenied,
            ErrorKind::StaleNetworkFileHandle,
            ErrorKind::Other, // EIO, EMFILE
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("app.log");
            append(&path, "one\n");
            let glob = dir.path().join("*.log");
            let mut tailer = start(vec![input(&glob, StartAt::Beginning)], vec![], true);
            assert_eq!(texts(&lines(&mut tailer, 1).await), ["one"]);

            fault(&mut tailer, dir.path(), Some(kind));
            // Longer than the drain grace (1 s): an unknown directory is not an empty one.
            quiet(&mut tailer, Duration::from_millis(1500)).await;
            assert_eq!(tailer.n_files(), 1, "{kind:?}: the file was closed");
            assert!(
                tailer.unreadable.contains(dir.path()),
                "{kind:?}: reported (once) and retried every poll interval"
            );
            append(&path, "two\n");
            assert_eq!(texts(&lines(&mut tailer, 1).await), ["two"], "{kind:?}");

            fault(&mut tailer, dir.path(), None);
            append(&path, "three\n");
            assert_eq!(
                texts(&lines(&mut tailer, 1).await),
                ["three"],
                "{kind:?}: not read again from 0"
            );
            quiet(&mut tailer, Duration::from_millis(300)).await;
            assert!(tailer.unreadable.is_empty(), "{kind:?}");
            assert_eq!(tailer.checkpoints()[0].offset, 14, "{kind:?}");
        }
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_stated_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, "one\n");
        // A literal path: no listing, only a stat.
        let mut tailer = start(vec![input(&path, StartAt::Beginning)], vec![], true);
        assert_eq!(texts(&lines(&mut tailer, 1).await), ["one"]);
        fault(&mut tailer, &path, Some(ErrorKind::StaleNetworkFileHandle));
        quiet(&mut tailer, Duration::from_millis(1500)).await;
        assert_eq!(tailer.n_files(), 1);
        fault(&mut tailer, &path, None);
        append(&path, "two\n");
        assert_eq!(texts(&lines(&mut tailer, 1).await), ["two"]);
        quiet(&mut tailer, Duration::from_millis(300)).await;
    }

    #[tokio::test]
    async fn a_file_missed_by_a_scan_but_still_at_its_path_is_not_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, "one\n");
        let glob = dir.path().join("*.log");
        let mut tailer = start(vec![input(&glob, StartAt::Beginning)], vec![], true);
        assert_eq!(texts(&lines(&mut tailer, 1).await), ["one"]);
        // The listing claims the directory is gone (a spurious ENOENT): the scan misses the
        // file, it drains, and the look at its path before closing keeps it.
        fault(&mut tailer, dir.path(), Some(ErrorKind::NotFound));
        quiet(&mut tailer, Duration::from_millis(1500)).await;
        assert_eq!(tailer.n_files(), 1, "closed although still at its path");
        fault(&mut tailer, dir.path(), None);
        append(&path, "two\n");
        assert_eq!(texts(&lines(&mut tailer, 1).await), ["two"]);
        quiet(&mut tailer, Duration::from_millis(300)).await;
    }

    #[tokio::test]
    async fn a_file_renamed_away_and_back_resumes_at_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let away = dir.path().join("app.moved");
        append(&path, "one\ntwo\n");
        let glob = dir.path().join("*.log");
        let mut tailer = start(vec![input(&glob, StartAt::Beginning)], vec![], true);
        assert_eq!(texts(&lines(&mut tailer, 2).await), ["one", "two"]);
        fs::rename(&path, &away).unwrap();
        quiet(&mut tailer, Duration::from_millis(1500)).await;
        assert_eq!(tailer.n_files(), 0, "released after the drain grace");
        let checkpoints = tailer.checkpoints();
        assert_eq!(checkpoints.len(), 1, "kept for a return: {checkpoints:?}");
        assert_eq!(checkpoints[0].offset, 8);

        fs::rename(&away, &path).unwrap();
        append(&path, "three\n");
        assert_eq!(
            texts(&lines(&mut tailer, 1).await),
            ["three"],
            "resumed, not read again from 0"
        );
        assert_eq!(tailer.n_files(), 1);
        assert_eq!(tailer.checkpoints().len(), 1, "one checkpoint per inode");
        quiet(&mut tailer, Duration::from_millis(300)).await;
    }

    #[tokio::test]
    async fn a_deleted_file_leaves_no_checkpoint_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, "one\n");
        let glob = dir.path().join("*.log");
        let mut tailer = start(vec![input(&glob, StartAt::Beginning)], vec![], true);
        assert_eq!(texts(&lines(&mut tailer, 1).await), ["one"]);
        fs::remove_file(&path).unwrap();
        quiet(&mut tailer, Duration::from_millis(1500)).await;
        assert_eq!(tailer.n_files(), 0);
        assert!(
            tailer.checkpoints().is_empty(),
            "{:?}",
            tailer.checkpoints()
        );
    }

    #[test]
    fn the_resume_list_is_bounded_by_age_and_count() {
        let now = Instant::now();
        let entry = |ino: u64, age: Duration| Resume {
            checkpoint: Checkpoint {
                fingerprint: Fingerprint {
                    dev: 1,
                    ino,
                    head_len: 0,
                    head_hash: 0,
                },
                path: format!("/var/log/{ino}.log").into(),
                offset: ino,
            },
            since: now.checked_sub(age).unwrap(),
        };
        let mut resume = vec![
            entry(1, RESUME_KEEP + Duration::from_secs(1)),
            entry(2, RESUME_KEEP - Duration::from_secs(1)),
        ];
        bound_resume(&mut resume, now);
        let kept: Vec<u64> = resume.iter().map(|r| r.checkpoint.offset).collect();
        assert_eq!(kept, [2], "the one last known too long ago goes");

        let n = RESUME_MAX as u64 + 10;
        // Entry i was last known i milliseconds ago: the 10 oldest go.
        let mut resume: Vec<Resume> = (0..n).map(|i| entry(i, Duration::from_millis(i))).collect();
        bound_resume(&mut resume, now);
        assert_eq!(resume.len(), RESUME_MAX);
        assert!(
            resume
                .iter()
                .all(|r| r.checkpoint.offset < RESUME_MAX as u64)
        );
    }
}
