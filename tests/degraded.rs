//! Never silently stop alerting (issue 19), end to end against the DingTalk stand-in: a state
//! store that cannot write (a full disk, unwritable files) degrades delivery instead of stopping
//! it; damaged or empty databases are moved aside; answers slower than the timeout are resent
//! marked instead of inflating counts; an outage ends with a prompt delivery.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::daemon::Daemon;
use crate::support::harness::{Dir, bin};
use crate::support::http::{free_port, get, metric};
use crate::support::standin::{Failure, For, Received, Standin, StandinConfig};

/// A config with one input (`logs/app.log` from its beginning), a `flood` rule (warning) and a
/// `disk` rule (critical), both to the stand-in's robot; `extra` goes at the top level and
/// `robot_extra` into the robot.
fn config(dir: &Dir, standin: &Standin, extra: &str, robot_extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    dir.create(
        "rules.yaml",
        "- name: flood
  input: app
  match: 'FLOOD (?P<n>\\d+)'
  robot: ops
  title: 'flood {{ n }}'
- name: disk
  input: app
  match: 'No space left'
  severity: critical
  robot: ops
",
    );
    dir.create(
        "dingtail.yaml",
        format!(
            "language: en
state_dir: state
{extra}inputs:
  app:
    paths: [\"logs/app.log\"]
    start_at: beginning
    poll_interval: 200ms
robots:
{}    linger: 300ms
{robot_extra}rules: [\"rules.yaml\"]
",
            standin.robot_yaml("ops")
        ),
    )
}

fn standin() -> Standin {
    Standin::start_with(StandinConfig {
        per_minute: 1000,
        window: Duration::from_secs(60),
        ..StandinConfig::signed()
    })
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// `FLOOD from..to`, one line each.
fn flood(path: &Path, from: u64, to: u64) {
    let text: String = (from..to).map(|i| format!("app FLOOD {i}\n")).collect();
    append(path, &text);
}

/// The matches of the `flood` rule delivered, without and with the repeat mark.
fn flood_counts(standin: &Standin) -> (u64, u64) {
    counts_in(&standin.received())
}

/// [`flood_counts`] of what the stand-in received (inside `Standin::wait_for`, which holds its
/// lock: never call the stand-in from there).
fn counts_in(received: &[Received]) -> (u64, u64) {
    let mut counts = (0, 0);
    for received in received.iter().filter(|r| r.is_delivered()) {
        if !received.title().starts_with("flood") && !received.title().starts_with('[') {
            continue;
        }
        let n = flood_alerts(received);
        if received.is_possible_repeat() {
            counts.1 += n;
        } else {
            counts.0 += n;
        }
    }
    counts
}

/// How many `flood` matches one message holds: one for a lone alert, the rule's count in a
/// summary.
fn flood_alerts(received: &Received) -> u64 {
    if received.title().starts_with("flood") {
        return 1;
    }
    received
        .visible_text()
        .lines()
        .find(|line| line.starts_with("**flood** · "))
        .and_then(|line| line.split(" · ").nth(2))
        .and_then(|count| count.trim_end_matches('×').parse().ok())
        .unwrap_or(0)
}

fn texts(standin: &Standin) -> Vec<String> {
    standin
        .delivered()
        .iter()
        .map(Received::visible_text)
        .collect()
}

/// A tmpfs mounted on `path` for the test's life, or `None` where mounting is not allowed.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .status()
            .ok()?;
        status.success().then(|| Tmpfs(path.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Best effort: a tmpfs left behind is only memory.
        drop(Command::new("umount").arg("-l").arg(&self.0).status());
    }
}

/// Fills the file system of `dir` with one file until it is full; returns the file.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    drop(file.sync_all());
    filler
}

#[test]
fn a_full_disk_under_the_state_degrades_delivery_instead_of_stopping_it() {
    let dir = Dir::new("disk-full");
    let standin = standin();
    let port = free_port();
    let config = config(&dir, &standin, &format!("listen: 127.0.0.1:{port}\n"), "");
    let log = dir.join("logs/app.log");
    flood(&log, 0, 5);
    // A small tmpfs where the machine allows mounting; elsewhere a file-size limit makes the
    // state's writes fail the same way (EFBIG instead of ENOSPC).
    let tmpfs = Tmpfs::mount(&dir.join("state"), "2m");
    let mut daemon = match &tmpfs {
        Some(_) => Daemon::start(dir.path(), &config, &[]),
        None => {
            let mut cmd = Command::new("prlimit");
            cmd.current_dir(dir.path())
                .args(["--fsize=262144", "--"])
                .arg(bin())
                .args(["run", "-c"])
                .arg(&config)
                .env("RUST_LOG", "info")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            Daemon::spawn(cmd)
        }
    };
    assert!(
        standin.wait_for(
            |r| r.iter().filter(|r| r.is_delivered()).count() >= 1,
            Duration::from_secs(20)
        ),
        "the first alerts{}",
        daemon.describe()
    );
    assert_eq!(get(port, "/healthz").0, 200);

    let filler = tmpfs.as_ref().map(|t| fill(&t.0));
    // Past the limit: 2,000 matches while the store cannot write (before: 0 delivered).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut next = 5;
    while next < 2_005 && Instant::now() < deadline {
        flood(&log, next, next + 100);
        next += 100;
        std::thread::sleep(Duration::from_millis(50));
    }
    let ok = standin.wait_for(
        |r| {
            let (unmarked, marked) = counts_in(r);
            unmarked + marked >= 2_005
        },
        Duration::from_secs(60),
    );
    assert!(
        ok,
        "delivered {:?}{}",
        flood_counts(&standin),
        daemon.describe()
    );
    let texts = texts(&standin);
    assert!(
        texts.iter().any(|t| t.contains("cannot write state")),
        "one message from dingtail itself: {texts:#?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("delivery degraded")),
        "messages say that delivery is degraded: {texts:#?}"
    );
    let (status, body) = get(port, "/healthz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("cannot write state"), "{body}");
    let (_, metrics) = get(port, "/metrics");
    assert_eq!(
        metric(&metrics, "dingtail_state_degraded"),
        Some(1.0),
        "{metrics}"
    );
    assert!(metric(&metrics, "dingtail_state_errors_total").unwrap_or(0.0) >= 1.0);

    if let Some(filler) = filler {
        // Space again: the store catches up, delivery is no longer degraded.
        std::fs::remove_file(filler).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while get(port, "/healthz").0 != 200 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(get(port, "/healthz").0, 200, "{}", daemon.describe());
        let (_, metrics) = get(port, "/metrics");
        assert_eq!(metric(&metrics, "dingtail_state_degraded"), Some(0.0));
        assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.describe());
    } else {
        daemon.kill9();
    }
}

/// Runs `cmd` as the `nobody` user (root bypasses file permissions).
fn as_nobody(cmd: &mut Command) -> &mut Command {
    cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
}

/// Hands `dir` and everything under it to `nobody`.
fn give_to_nobody(dir: &Path) {
    let status = Command::new("chown")
        .args(["-R", "nobody:nogroup"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn daemon_as_nobody(dir: &Dir, config: &Path) -> Daemon {
    let mut cmd = Command::new("setpriv");
    as_nobody(&mut cmd)
        .arg(bin())
        .args(["run", "-c"])
        .arg(config)
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    Daemon::spawn(cmd)
}

#[test]
fn unwritable_state_files_degrade_delivery_and_shutdown_says_what_is_lost() {
    let dir = Dir::new("state-readonly");
    let standin = standin();
    let config = config(&dir, &standin, "", "");
    let log = dir.join("logs/app.log");
    flood(&log, 0, 3);
    give_to_nobody(dir.path());
    let mut daemon = daemon_as_nobody(&dir, &config);
    assert!(
        standin.wait_for(|r| counts_in(r).0 >= 3, Duration::from_secs(20)),
        "{}",
        daemon.describe()
    );
    assert_eq!(daemon.stop().code(), Some(0));
    // The state as it is at rest, made unwritable for the service user.
    let state = dir.join("state");
    for entry in std::fs::read_dir(&state).unwrap() {
        let path = entry.unwrap().path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o555)).unwrap();

    let mut daemon = daemon_as_nobody(&dir, &config);
    flood(&log, 3, 103);
    // Before: 0 of 100 delivered. Now every one, from memory.
    let ok = standin.wait_for(|r| counts_in(r).0 >= 103, Duration::from_secs(30));
    assert!(
        ok,
        "delivered {:?}{}",
        flood_counts(&standin),
        daemon.describe()
    );
    assert!(
        texts(&standin)
            .iter()
            .any(|t| t.contains("cannot write state")),
        "{:#?}",
        texts(&standin)
    );
    // SIGTERM cannot keep what it cannot write, and says so: the daemon stopped on a fault
    // (exit 6 in issue 12's table; 1 means an invalid configuration).
    let status = daemon.stop();
    assert_eq!(status.code(), Some(6), "{}", daemon.describe());
    let stderr = daemon.stderr().join("\n");
    assert!(
        stderr.contains("stopped without saving the state"),
        "{stderr}"
    );
    assert!(!stderr.contains("kept in the state"), "{stderr}");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Overwrites `len` bytes at `offset` of `path` with garbage.
fn scribble(path: &Path, offset: u64, len: usize) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let garbage: Vec<u8> = (0..len).map(|i| (i * 131 % 251) as u8).collect();
    file.write_all_at(&garbage, offset).unwrap();
}

/// A damaged database (`damage` applied to it at rest) is moved aside at start; the daemon says
/// so in the group, starts every file at its end (no old line is replayed) and alerts on.
fn a_damaged_database_is_moved_aside(name: &str, damage: impl Fn(&Path)) {
    let dir = Dir::new(name);
    let standin = standin();
    let config = config(&dir, &standin, "", "");
    let log = dir.join("logs/app.log");
    flood(&log, 0, 50);
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    assert!(standin.wait_for(|r| counts_in(r).0 >= 50, Duration::from_secs(20)));
    assert_eq!(daemon.stop().code(), Some(0));
    damage(&dir.join("state/state.db"));
    // While down, more lines; they are lost with the state, but no old line comes back.
    flood(&log, 50, 60);

    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    let ok = standin.wait_for(
        |r| {
            r.iter()
                .any(|r| r.visible_text().contains("state database was unusable"))
        },
        Duration::from_secs(20),
    );
    assert!(ok, "{:#?}{}", texts(&standin), daemon.describe());
    flood(&log, 60, 70);
    assert!(
        standin.wait_for(|r| counts_in(r).0 >= 60, Duration::from_secs(20)),
        "{:?}{}",
        flood_counts(&standin),
        daemon.describe()
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(flood_counts(&standin), (60, 0), "nothing replayed");
    let aside: Vec<String> = std::fs::read_dir(dir.join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("state.db.damaged-") && !name.ends_with("-wal"))
        .filter(|name| !name.ends_with("-shm"))
        .collect();
    assert_eq!(aside.len(), 1, "kept for a post-mortem: {aside:?}");
    let stderr = daemon.stderr().join("\n");
    assert!(stderr.contains("moved to"), "{stderr}");
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn a_database_with_a_garbage_page_is_moved_aside_and_alerting_goes_on() {
    a_damaged_database_is_moved_aside("db-garbage", |db| {
        let len = std::fs::metadata(db).unwrap().len();
        assert!(len >= 3 * 4096, "a database of several pages ({len} bytes)");
        scribble(db, 4096, 4096);
    });
}

#[test]
fn an_empty_database_is_not_a_first_start() {
    a_damaged_database_is_moved_aside("db-empty", |db| {
        std::fs::write(db, "").unwrap();
    });
}

#[test]
fn answers_slower_than_the_timeout_are_resent_marked_and_unmarked_counts_stay_exact() {
    let dir = Dir::new("slow-answers");
    let standin = standin();
    let config = config(
        &dir,
        &standin,
        "",
        "    timeout: 500ms\n    backoff_max: 1s\n",
    );
    let log = dir.join("logs/app.log");
    // The first requests are answered after the timeout (DingTalk took them all the same).
    standin.fail(
        Failure::Slow(Duration::from_millis(1_500)),
        For::Requests(3),
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    for burst in 0..30 {
        flood(&log, burst * 30, (burst + 1) * 30);
        std::thread::sleep(Duration::from_millis(100));
    }
    let n = 900;
    let ok = standin.wait_for(|r| counts_in(r).0 >= n, Duration::from_secs(60));
    assert!(ok, "{:?}{}", flood_counts(&standin), daemon.describe());
    // Let the possible repeats settle.
    std::thread::sleep(Duration::from_secs(3));
    let (unmarked, marked) = flood_counts(&standin);
    // Before: 14,890 counted for 9,000 lines (+65 %), timed-out batches folded into newer ones.
    assert_eq!(unmarked, n, "unmarked counts are exact");
    assert!(marked > 0, "the unanswered sends were repeated, marked");
    let stderr = daemon.stderr().join("\n");
    assert!(stderr.contains("may have delivered it"), "{stderr}");
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn after_an_outage_delivery_resumes_within_the_backoff_cap() {
    let dir = Dir::new("outage");
    let standin = standin();
    let config = config(&dir, &standin, "", "    backoff_max: 2s\n");
    let log = dir.join("logs/app.log");
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    flood(&log, 0, 1);
    assert!(standin.wait_for(|r| counts_in(r).0 >= 1, Duration::from_secs(20)));
    let outage = Duration::from_secs(12);
    standin.refuse_for(outage);
    let back_at = Instant::now() + outage;
    for i in 1..=10 {
        flood(&log, i, i + 1);
        std::thread::sleep(Duration::from_millis(500));
    }
    // The send cut off by the outage may be repeated, marked: count both.
    let ok = standin.wait_for(
        |r| {
            let (unmarked, marked) = counts_in(r);
            unmarked + marked >= 11
        },
        Duration::from_secs(40),
    );
    assert!(ok, "{:?}{}", flood_counts(&standin), daemon.describe());
    let first_after = standin
        .delivered()
        .iter()
        .map(|r| r.at)
        .filter(|at| *at >= back_at)
        .min()
        .unwrap();
    // Before: 43–48 s after a 60 s outage (backoff up to 300 s). Now at most the cap, plus the
    // rate limiter's pacing and scheduling slack.
    let late = first_after.saturating_duration_since(back_at);
    assert!(
        late <= Duration::from_secs(5),
        "first delivery {late:?} after DingTalk came back"
    );
    assert_eq!(daemon.stop().code(), Some(0));
}
