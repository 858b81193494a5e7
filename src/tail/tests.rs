//! The tailer's tests. Most run on a [`FakeClock`] with the polling fallback: a test calls one
//! round of the tailer's work ([`Harness::step`]) and moves the clock, so drain grace periods,
//! multi-line and partial-line timeouts and rescans happen without sleeping. A few keep the real
//! clock and inotify, to check the waiting itself (`next_batch` sleeps when idle, wakes on an
//! append, survives cancellation).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{InputConfig, MultilineConfig, StartAt};
use crate::event::LogLine;
use crate::tail::checkpoint::Checkpoint;
use crate::tail::clock::{Clock, FakeClock};
use crate::tail::watch::{Wake, Watch};
use crate::tail::{GlobHistory, MAX_BATCH_LINES, Tailer, TailerConfig};

// Content identity: copies, look-alike rewrites, rotations while down (issue 19).
mod identity;
// Directories and files that cannot be listed or stat-ed, files renamed or deleted.
mod faults;
// Parking past the descriptor budget, and files that are not text (issue 19).
mod park;

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
        timestamp: None,
    }
}

/// A tailer on a fake clock, polling (no inotify): time moves only when the test says so.
struct Harness {
    tailer: Tailer,
    clock: Arc<FakeClock>,
    /// Whether checkpoints are taken after each round (the daemon does; `dingtail tail` not).
    checkpoints: bool,
}

impl Deref for Harness {
    type Target = Tailer;
    fn deref(&self) -> &Tailer {
        &self.tailer
    }
}

impl DerefMut for Harness {
    fn deref_mut(&mut self) -> &mut Tailer {
        &mut self.tailer
    }
}

impl Harness {
    /// One round of the tailer's work at the clock's now, and the checkpoints taken after it
    /// (as the daemon's tailing thread does after every batch).
    fn step(&mut self) -> Vec<LogLine> {
        let now = self.clock.now();
        let lines = self.tailer.collect(now);
        if self.checkpoints {
            let _checkpoints = self.tailer.checkpoints();
        }
        lines
    }

    /// Never takes checkpoints, as `dingtail tail`.
    fn without_checkpoints(mut self) -> Harness {
        self.checkpoints = false;
        self
    }

    /// Rounds, one poll interval apart, until `n` lines arrived (fails after a minute of fake
    /// time).
    fn lines(&mut self, n: usize) -> Vec<LogLine> {
        let mut out = Vec::new();
        for _ in 0..600 {
            out.extend(self.step());
            if out.len() >= n {
                break;
            }
            self.clock.advance(self.tailer.poll_interval);
        }
        assert_eq!(out.len(), n, "{out:?}");
        out
    }

    /// Nothing arrives while the clock moves `wait`, a poll interval at a time.
    fn quiet(&mut self, wait: Duration) {
        let mut waited = Duration::ZERO;
        while waited < wait {
            let batch = self.step();
            assert!(batch.is_empty(), "unexpected lines: {batch:?}");
            self.clock.advance(self.tailer.poll_interval);
            waited += self.tailer.poll_interval;
        }
        let batch = self.step();
        assert!(batch.is_empty(), "unexpected lines: {batch:?}");
    }
}

fn start(inputs: Vec<InputConfig>, resume: Vec<Checkpoint>, first: bool) -> Harness {
    let history = if first {
        GlobHistory::FirstStart
    } else {
        GlobHistory::AllKnown
    };
    let clock = Arc::new(FakeClock::default());
    let tailer = Tailer::start_with(
        TailerConfig { inputs },
        resume,
        history,
        Arc::new(Wake::default()),
        Watch::polling(),
        clock.clone(),
    )
    .unwrap();
    Harness {
        tailer,
        clock,
        checkpoints: true,
    }
}

/// A tailer on the real clock with inotify, as the daemon runs it.
fn start_real(inputs: Vec<InputConfig>) -> Tailer {
    Tailer::start(TailerConfig { inputs }, vec![], true).unwrap()
}

fn append(path: &Path, text: &str) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// Truncates `path` in place (same inode), as logrotate's `copytruncate` does after its copy.
fn truncate(path: &Path) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

fn texts(lines: &[LogLine]) -> Vec<&str> {
    lines.iter().map(|l| l.text.as_str()).collect()
}

/// Batches from `next_batch` until `n` lines arrived (fails after 5 s).
async fn next_lines(tailer: &mut Tailer, n: usize) -> Vec<LogLine> {
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

/// `next_batch` returns nothing within `wait`.
async fn next_quiet(tailer: &mut Tailer, wait: Duration) {
    if let Ok(batch) = tokio::time::timeout(wait, tailer.next_batch()).await {
        panic!("unexpected lines: {batch:?}");
    }
}

#[test]
fn the_tailer_and_its_batches_can_move_to_a_spawned_task() {
    fn assert_send<T: Send>(_: &T) {}
    let dir = tempfile::tempdir().unwrap();
    let mut tailer = start_real(vec![input(&dir.path().join("*.log"), StartAt::End)]);
    assert_send(&tailer.next_batch());
    assert_send(&tailer);
}

#[tokio::test]
async fn inotify_wakes_the_wait_for_new_files_and_appends() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = input(&dir.path().join("*.log"), StartAt::Beginning);
    // A slow poll: only inotify can make these arrive within the test's timeouts.
    config.poll_interval = Duration::from_secs(30);
    let mut tailer = start_real(vec![config]);
    assert!(!tailer.is_polling());
    append(&dir.path().join("a.log"), "created\n");
    assert_eq!(texts(&next_lines(&mut tailer, 1).await), ["created"]);
    append(&dir.path().join("a.log"), "appended\n");
    assert_eq!(texts(&next_lines(&mut tailer, 1).await), ["appended"]);
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
        Arc::new(crate::tail::clock::SystemClock),
    )
    .unwrap();
    assert!(tailer.is_polling());
    append(&dir.path().join("a.log"), "created\n");
    assert_eq!(texts(&next_lines(&mut tailer, 1).await), ["created"]);
    append(&dir.path().join("a.log"), "appended\n");
    assert_eq!(texts(&next_lines(&mut tailer, 1).await), ["appended"]);
}

#[tokio::test]
async fn idle_means_asleep() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, "one\n");
    let mut config = input(&path, StartAt::Beginning);
    config.poll_interval = Duration::from_secs(1);
    let mut tailer = start_real(vec![config]);
    next_lines(&mut tailer, 1).await;
    let rounds = tailer.n_rounds;
    next_quiet(&mut tailer, Duration::from_millis(700)).await;
    assert!(
        tailer.n_rounds - rounds <= 2,
        "{} rounds while idle: busy polling",
        tailer.n_rounds - rounds
    );
}

#[tokio::test]
async fn checkpoints_are_looked_at_again_only_after_a_round() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, "one\n");
    let mut tailer = start_real(vec![input(&path, StartAt::Beginning)]);
    assert!(tailer.read_since_checkpoints(), "never looked at yet");
    let before = tailer.checkpoints();
    assert!(!tailer.read_since_checkpoints());
    next_lines(&mut tailer, 1).await;
    assert!(tailer.read_since_checkpoints(), "a round read the line");
    let after = tailer.checkpoints();
    assert_ne!(before, after, "the line moved the checkpoint");
    assert!(!tailer.read_since_checkpoints());
    // Waits that read nothing leave it so; an append read in a round changes it.
    next_quiet(&mut tailer, Duration::from_millis(5)).await;
    append(&path, "two\n");
    next_lines(&mut tailer, 1).await;
    assert!(tailer.read_since_checkpoints());
}

#[tokio::test]
async fn a_cancelled_wait_does_not_read_the_files_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, "one\n");
    let mut tailer = start_real(vec![input(&path, StartAt::Beginning)]);
    next_lines(&mut tailer, 1).await;
    // Settle: the creation's own events may still wake it.
    let _settle = tokio::time::timeout(Duration::from_millis(200), tailer.next_batch()).await;
    let rounds = tailer.n_rounds;
    // The daemon's loop cancels `next_batch` at every heartbeat.
    for _ in 0..20 {
        next_quiet(&mut tailer, Duration::from_millis(5)).await;
    }
    assert!(
        tailer.n_rounds - rounds <= 1,
        "{} rounds for 20 cancelled waits",
        tailer.n_rounds - rounds
    );
    // And a line appended meanwhile still arrives.
    append(&path, "two\n");
    assert_eq!(texts(&next_lines(&mut tailer, 1).await), ["two"]);
}

#[test]
fn a_file_written_at_full_speed_does_not_starve_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let busy = dir.path().join("a-busy.log");
    fs::write(&busy, "x\n".repeat(200_000)).unwrap();
    append(&dir.path().join("b-quiet.log"), "quiet\n");
    let glob = dir.path().join("*.log");
    let mut tailer = start(vec![input(&glob, StartAt::Beginning)], vec![], true);
    let first = tailer.step();
    assert!(first.len() <= MAX_BATCH_LINES);
    assert!(
        first.iter().any(|l| l.text == "quiet"),
        "the quiet file waited behind {} lines of the busy one",
        first.len()
    );
}

#[test]
fn an_unterminated_last_line_arrives_after_the_partial_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, "one\nlast");
    let mut tailer = start(vec![input(&path, StartAt::Beginning)], vec![], true);
    assert_eq!(texts(&tailer.lines(1)), ["one"]);
    assert_eq!(tailer.checkpoints()[0].offset, 4);
    // 5 s of quiet (the default partial_timeout) and it is a line.
    tailer.clock.advance(Duration::from_millis(4900));
    assert!(tailer.step().is_empty());
    tailer.clock.advance(Duration::from_millis(100));
    let got = tailer.step();
    assert_eq!(texts(&got), ["last"]);
    assert_eq!((got[0].start_offset, got[0].end_offset), (4, 8));
    assert_eq!(tailer.checkpoints()[0].offset, 8);
    // What the writer adds later is a line of its own.
    append(&path, " more\n");
    assert_eq!(texts(&tailer.lines(1)), [" more"]);
}

#[test]
fn appended_lines_arrive_and_the_checkpoint_follows_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, "one\ntwo\n");
    let mut tailer = start(vec![input(&path, StartAt::Beginning)], vec![], true);
    assert_eq!(tailer.n_files(), 1);
    assert_eq!(texts(&tailer.lines(2)), ["one", "two"]);
    append(&path, "three\npart");
    let got = tailer.lines(1);
    assert_eq!(texts(&got), ["three"]);
    assert_eq!((got[0].start_offset, got[0].end_offset), (8, 14));
    let checkpoints = tailer.checkpoints();
    assert_eq!(checkpoints.len(), 1);
    assert_eq!(checkpoints[0].offset, 14, "not past the partial line");
    assert_eq!(checkpoints[0].path, path);
}

#[test]
fn start_at_end_applies_at_first_start_only_and_new_files_start_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("old.log"), "history\n");
    let glob = dir.path().join("*.log");
    let mut tailer = start(vec![input(&glob, StartAt::End)], vec![], true);
    append(&dir.path().join("old.log"), "new\n");
    append(&dir.path().join("later.log"), "created later\n");
    let mut got: Vec<String> = tailer.lines(2).into_iter().map(|l| l.text).collect();
    got.sort();
    assert_eq!(got, ["created later", "new"]);

    // Not a first start, no checkpoint: from the beginning.
    append(&dir.path().join("unknown.log"), "while down\n");
    let mut again = start(
        vec![input(&dir.path().join("unknown.log"), StartAt::End)],
        vec![],
        false,
    );
    assert_eq!(texts(&again.lines(1)), ["while down"]);
}

#[test]
fn resumes_a_file_rotated_while_down_at_its_unread_part() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, &format!("{}\n", "a".repeat(300)));
    append(&path, "read before stop\n");
    let glob = dir.path().join("app.log*");
    let mut tailer = start(vec![input(&glob, StartAt::Beginning)], vec![], true);
    tailer.lines(2);
    let saved = tailer.checkpoints();
    drop(tailer);

    // While down: more lines, then rename + create.
    append(&path, "unread 1\nunread 2\n");
    fs::rename(&path, dir.path().join("app.log.1")).unwrap();
    append(&path, "new file\n");

    let mut tailer = start(vec![input(&glob, StartAt::End)], saved, false);
    let mut got: Vec<String> = tailer.lines(3).into_iter().map(|l| l.text).collect();
    got.sort();
    assert_eq!(got, ["new file", "unread 1", "unread 2"]);
    tailer.quiet(Duration::from_millis(300));
}

#[test]
fn rename_rotation_drains_the_old_file_and_reads_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, "before\n");
    let mut tailer = start(vec![input(&path, StartAt::Beginning)], vec![], true);
    tailer.lines(1);
    let mut old = OpenOptions::new().append(true).open(&path).unwrap();
    fs::rename(&path, dir.path().join("app.log.1")).unwrap();
    append(&path, "new\n");
    // The application writes to its old descriptor until it reopens.
    old.write_all(b"late\n").unwrap();
    let mut got: Vec<String> = tailer.lines(2).into_iter().map(|l| l.text).collect();
    got.sort();
    assert_eq!(got, ["late", "new"]);
    // The old file is released after the grace period (1 s at this poll interval); its
    // checkpoint stays in the resume list, at its end.
    drop(old);
    tailer.quiet(Duration::from_millis(1500));
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

#[test]
fn a_truncated_file_is_read_again_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, "first line that is long\n");
    let mut tailer = start(vec![input(&path, StartAt::Beginning)], vec![], true);
    tailer.lines(1);
    fs::write(&path, "").unwrap();
    append(&path, "after\n");
    let got = tailer.lines(1);
    assert_eq!(texts(&got), ["after"]);
    assert_eq!(got[0].start_offset, 0);
    assert_eq!(tailer.checkpoints()[0].offset, 6);
    // Growing again is not mistaken for another rewrite (the fingerprint follows the new
    // head).
    append(&path, "more\n");
    assert_eq!(texts(&tailer.lines(1)), ["more"]);
    tailer.quiet(Duration::from_millis(300));
}

#[test]
fn the_checkpoint_waits_for_the_open_multiline_event() {
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
    let first = tailer.lines(1);
    assert_eq!(texts(&first), ["1 first\n  at x"]);
    assert_eq!(
        tailer.checkpoints()[0].offset,
        15,
        "the open event `2 second` starts at 15 and is not handed out yet"
    );
    let second = tailer.lines(1);
    assert_eq!(
        texts(&second),
        ["2 second\n  at y"],
        "closed by the timeout"
    );
    assert_eq!(tailer.checkpoints()[0].offset, 31);
}

#[test]
fn a_long_line_is_cut_and_the_checkpoint_passes_its_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut config = input(&path, StartAt::Beginning);
    config.max_line_bytes = 100;
    let mut data = vec![b'z'; 200_000];
    data.push(b'\n');
    data.extend_from_slice(b"\xffok\n");
    fs::write(&path, &data).unwrap();
    let mut tailer = start(vec![config], vec![], true);
    let got = tailer.lines(2);
    assert!(got[0].truncated && got[0].text.len() == 100);
    assert_eq!(got[1].text, "\u{fffd}ok");
    assert_eq!(tailer.n_truncated(), 1);
    assert_eq!(tailer.checkpoints()[0].offset, data.len() as u64);
}

#[test]
fn the_same_file_through_a_symlink_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("real.log");
    append(&path, "once\n");
    std::os::unix::fs::symlink(&path, dir.path().join("link.log")).unwrap();
    let glob = dir.path().join("*.log");
    let mut tailer = start(vec![input(&glob, StartAt::Beginning)], vec![], true);
    assert_eq!(texts(&tailer.lines(1)), ["once"]);
    tailer.quiet(Duration::from_millis(300));
    assert_eq!(tailer.n_files(), 1);
}

#[test]
fn reconfigure_keeps_positions_and_starts_and_stops_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.log");
    let b = dir.path().join("b.log");
    append(&a, "a1\n");
    append(&b, "b1\n");
    let mut tailer = start(vec![input(&a, StartAt::Beginning)], vec![], true);
    assert_eq!(texts(&tailer.lines(1)), ["a1"]);
    let mut second = input(&b, StartAt::Beginning);
    second.name = "second".into();
    tailer.reconfigure(TailerConfig {
        inputs: vec![input(&a, StartAt::Beginning), second.clone()],
    });
    append(&a, "a2\n");
    let mut got: Vec<String> = tailer.lines(2).into_iter().map(|l| l.text).collect();
    got.sort();
    assert_eq!(got, ["a2", "b1"], "a kept its position; b started");
    tailer.reconfigure(TailerConfig {
        inputs: vec![second],
    });
    append(&a, "a3\n");
    tailer.quiet(Duration::from_millis(300));
    assert_eq!(tailer.n_files(), 1);
}

#[tokio::test]
async fn after_a_batch_that_read_everything_the_next_wait_looks_at_no_file_until_woken() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, "one\n");
    let mut config = input(&path, StartAt::Beginning);
    config.poll_interval = Duration::from_secs(30);
    let mut tailer = start_real(vec![config]);
    next_lines(&mut tailer, 1).await;
    let rounds = tailer.n_rounds;
    next_quiet(&mut tailer, Duration::from_millis(300)).await;
    assert_eq!(tailer.n_rounds, rounds, "an empty look after the batch");
    // An append wakes it, and it reads.
    append(&path, "two\n");
    assert_eq!(texts(&next_lines(&mut tailer, 1).await), ["two"]);
}

#[test]
fn a_recycled_batch_is_filled_again_without_a_new_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut h = start(vec![input(&path, StartAt::Beginning)], vec![], true);
    append(&path, "one\ntwo\n");
    h.lines(2);
    h.recycle(Vec::with_capacity(64));
    // An empty round keeps the spare for the next batch.
    h.quiet(Duration::from_millis(100));
    append(&path, "three\n");
    let next = h.step();
    assert_eq!(texts(&next), ["three"]);
    assert!(next.capacity() >= 64, "{}", next.capacity());
    // Of several, the largest is kept; the batch handed out took its allocation along.
    h.recycle(Vec::with_capacity(128));
    h.recycle(Vec::with_capacity(1));
    append(&path, "four\n");
    let next = h.step();
    assert_eq!(texts(&next), ["four"]);
    assert!(next.capacity() >= 128, "{}", next.capacity());
    append(&path, "five\n");
    assert!(h.step().capacity() < 64, "nothing was given back since");
    // A catch-up's big batch is not kept.
    h.recycle(Vec::with_capacity(crate::tail::FILE_LINES + 1));
    append(&path, "six\n");
    assert!(h.step().capacity() < 64, "a big batch was kept");
}
