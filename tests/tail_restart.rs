//! The tailer and the `Store` together, stopped abruptly at random points while a writer appends
//! and rotates: after every restart, the lines committed so far plus the ones read after it are
//! every line, and none twice.
//!
//! Each session does what the daemon does: `next_batch`, then one transaction that records the
//! lines (standing in for the pending batches) and saves `checkpoints()`. A "crash" drops the
//! tailer and the store between `next_batch` and the commit, at random, so the batch just read is
//! lost with the process and must be read again by the next session. Rotation (rename + create)
//! happens while sessions run and while none does; the rotated files stay matched by the glob,
//! so a file rotated while down is recognised by fingerprint and resumed at its checkpoint.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use dingtail::config::{InputConfig, StartAt};
use dingtail::state::{Change, Store};
use dingtail::tail::{Tailer, TailerConfig};

const N_LINES: u64 = 20_000;
const LINES_PER_FILE: u64 = 3_000;

/// A small deterministic generator (the seed is printed on failure).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Writes numbered lines, renaming `app.log` to `app.log.<k>` every `LINES_PER_FILE` lines and
/// writing a few more lines to the old descriptor before reopening, like an application that
/// reopens its log a moment after the rotation.
fn writer(dir: PathBuf) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let path = dir.join("app.log");
        let open = |path: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap()
        };
        let mut file = open(&path);
        let mut pending_reopen = None;
        for i in 0..N_LINES {
            if i > 0 && i % LINES_PER_FILE == 0 {
                fs::rename(&path, dir.join(format!("app.log.{}", i / LINES_PER_FILE))).unwrap();
                pending_reopen = Some(i + 20);
            }
            if pending_reopen == Some(i) {
                file = open(&path);
                pending_reopen = None;
            }
            file.write_all(format!("{i:08}\n").as_bytes()).unwrap();
            if i % 20 == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
    })
}

#[tokio::test(flavor = "current_thread")]
async fn restarts_at_random_points_lose_nothing_and_repeat_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    fs::create_dir(&logs).unwrap();
    fs::write(logs.join("app.log"), "").unwrap();
    let state_dir = tmp.path().join("state");
    let input = InputConfig {
        name: "app".into(),
        paths: vec![logs.join("app.log*").display().to_string()],
        exclude: vec![],
        start_at: StartAt::Beginning,
        poll_interval: Duration::from_millis(100),
        max_line_bytes: 1024,
        multiline: None,
        decoding: dingtail::config::Decoding::default(),
        journald: None,
        timestamp: None,
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = Lcg(seed);
    let writing = writer(logs.clone());

    let mut committed: BTreeMap<u64, usize> = BTreeMap::new();
    let mut n_sessions = 0;
    let mut n_crashes = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed.len() < N_LINES as usize {
        assert!(
            Instant::now() < deadline,
            "seed {seed}: only {} of {N_LINES} lines after {n_sessions} sessions",
            committed.len()
        );
        n_sessions += 1;
        let mut store = Store::open(&state_dir).unwrap();
        let resume = store.load_checkpoints().unwrap();
        let mut tailer = Tailer::start(
            TailerConfig {
                inputs: vec![input.clone()],
            },
            resume,
            store.is_first_start(),
        )
        .unwrap();
        let n_batches = 1 + rng.below(6);
        for _ in 0..n_batches {
            let Ok(batch) =
                tokio::time::timeout(Duration::from_millis(500), tailer.next_batch()).await
            else {
                break;
            };
            if rng.below(4) == 0 {
                // Crash before the commit: the batch dies with the process.
                n_crashes += 1;
                break;
            }
            let checkpoints = tailer.checkpoints();
            store
                .commit(&[Change::AllCheckpoints(&checkpoints)])
                .unwrap();
            // Committed: the batch's lines count as read.
            for line in &batch {
                let number: u64 = line.text.parse().unwrap();
                *committed.entry(number).or_default() += 1;
            }
        }
        drop(tailer);
        drop(store);
        // Sometimes stay down for a while (rotations happen meanwhile).
        if rng.below(3) == 0 {
            tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
        }
    }
    writing.join().unwrap();

    let duplicated: Vec<u64> = committed
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| *k)
        .collect();
    assert!(
        duplicated.is_empty(),
        "seed {seed}: {} lines committed twice over {n_sessions} sessions: {:?}",
        duplicated.len(),
        &duplicated[..duplicated.len().min(20)]
    );
    assert_eq!(committed.len() as u64, N_LINES, "seed {seed}");
    assert!(
        n_sessions > 3 && n_crashes > 0,
        "seed {seed}: the test must restart and crash ({n_sessions} sessions, {n_crashes} crashes)"
    );
}
