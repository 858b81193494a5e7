//! `dingtail run` end to end against the DingTalk stand-in (issue 5): floods under the rate limit
//! with exact counts, kill -9 and SIGTERM in the middle of a flood, an outage, a throttle answer,
//! and one test at DingTalk's real 60 s window. Signing and keyword security are on throughout.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::daemon::Daemon;
use crate::support::harness::Dir;
use crate::support::standin::{Failure, For, Received, Standin, StandinConfig};

/// The stand-in with signing and a keyword, 20 messages per `window`, blocking for `pause`.
fn standin(window: Duration, pause: Duration) -> Standin {
    Standin::start_with(StandinConfig {
        keywords: vec!["告警".into()],
        window,
        throttle_pause: pause,
        ..StandinConfig::signed()
    })
}

/// A config that tails `logs/*.log` from the beginning and sends matches of `FLOOD <n>` to the
/// stand-in's robot.
fn config(dir: &Dir, standin: &Standin, linger: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    dir.create(
        "rules.yaml",
        "- name: flood
  input: app
  match: 'FLOOD (?P<n>\\d+)'
  severity: warning
  robot: ops
  title: 'flood line {{ n }}'
  template: '{{ line }}'
- name: boom
  input: app
  match: 'BOOM'
  severity: critical
  robot: ops
  template: '{{ line }}'
",
    );
    dir.create(
        "dingtail.yaml",
        format!(
            "language: en
state_dir: state
inputs:
  app:
    paths: [\"logs/*.log\"]
    start_at: beginning
    poll_interval: 200ms
robots:
{}    linger: {linger}
rules: [\"rules.yaml\"]
",
            standin.robot_yaml("ops")
        ),
    )
}

/// How many matches a delivered message stands for.
fn count_of(received: &Received) -> u64 {
    received.alerts()
}

fn delivered_total(standin: &Standin) -> u64 {
    standin.delivered().iter().map(count_of).sum()
}

/// Appends `FLOOD 0..n` to `path`, `n` lines spread evenly over `over`, in small bursts.
fn flood(path: &Path, n: u64, over: Duration) -> thread::JoinHandle<()> {
    let path = path.to_path_buf();
    thread::spawn(move || {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let start = Instant::now();
        let bursts: u64 = 100;
        let per_burst = n.div_ceil(bursts);
        let mut i = 0;
        for burst in 0..bursts {
            let mut chunk = String::new();
            while i < n && i < (burst + 1) * per_burst {
                chunk.push_str(&format!(
                    "2026-11-25 10:00:00 app FLOOD {i} something broke\n"
                ));
                if i % 7 == 0 {
                    chunk.push_str("2026-11-25 10:00:00 app INFO all fine\n");
                }
                i += 1;
            }
            file.write_all(chunk.as_bytes()).unwrap();
            let due = start + over.mul_f64((burst + 1) as f64 / bursts as f64);
            thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    })
}

/// Waits until the delivered counts add up to at least `n` (or panics with what arrived).
fn wait_total(standin: &Standin, daemon: &Daemon, n: u64, timeout: Duration) {
    let ok = standin.wait_for(
        |received| {
            received
                .iter()
                .filter(|r| r.is_delivered())
                .map(count_of)
                .sum::<u64>()
                >= n
        },
        timeout,
    );
    assert!(
        ok,
        "delivered counts reached {} of {n} within {timeout:?}{}",
        delivered_total(standin),
        daemon.describe()
    );
}

/// The count of the last message that reached the stand-in: the batch that may have been in
/// flight when the daemon was killed (call it right after the kill).
fn in_flight_at_kill(standin: &Standin) -> u64 {
    standin
        .received()
        .iter()
        .rev()
        .find(|r| r.body.is_some())
        .filter(|r| r.is_delivered())
        .map_or(0, count_of)
}

/// The delivered counts add up to `n` exactly, or to `n` plus the batch that was in flight at
/// the kill (delivered, but its deletion not yet committed): nothing else may come twice.
fn assert_at_most_one_batch_twice(standin: &Standin, n: u64, in_flight: u64) {
    let total = delivered_total(standin);
    assert!(
        total == n || total == n + in_flight,
        "the counts add up to {total}, expected {n} or {n} + {in_flight} (the batch in flight at the kill)"
    );
}

fn assert_never_throttled(standin: &Standin, window: Duration) {
    let throttled: Vec<_> = standin
        .received()
        .into_iter()
        .filter(|r| matches!(r.errcode(), Some(130_101 | 410_100)))
        .collect();
    assert!(
        throttled.is_empty(),
        "the robot was throttled: {throttled:#?}"
    );
    let max = standin.max_in_any_window(window);
    assert!(max <= 20, "{max} requests within one {window:?} window");
}

#[test]
fn a_flood_of_10000_lines_stays_under_the_limit_and_counts_are_exact() {
    let window = Duration::from_secs(3);
    let standin = standin(window, Duration::from_secs(30));
    let dir = Dir::new("flood");
    let config = config(&dir, &standin, "200ms");
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    let writer = flood(&dir.join("logs/app.log"), 10_000, Duration::from_secs(30));
    // A critical event in the middle of the noise is not held back behind it.
    thread::sleep(Duration::from_secs(10));
    let boom_at = Instant::now();
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("logs/app.log"))
        .unwrap();
    log.write_all(b"2026-11-25 10:00:10 app BOOM disk on fire\n")
        .unwrap();
    let ok = standin.wait_for(
        |received| {
            received
                .iter()
                .any(|r| r.is_delivered() && r.visible_text().contains("BOOM disk on fire"))
        },
        Duration::from_secs(10),
    );
    assert!(
        ok,
        "the critical line was not delivered within 10 s during the flood"
    );
    let boom_latency = boom_at.elapsed();
    writer.join().unwrap();
    wait_total(&standin, &daemon, 10_001, Duration::from_secs(60));
    // Give a wrongly duplicated batch the chance to show up.
    thread::sleep(Duration::from_secs(2));
    assert_eq!(
        delivered_total(&standin),
        10_001,
        "every match counted exactly once"
    );
    assert_never_throttled(&standin, window);
    // Spread over the minute, not 20 at once and then silence: under the flood every window saw
    // messages.
    let delivered = standin.delivered();
    let n_messages = delivered.len();
    assert!(
        n_messages > 20,
        "a 30 s flood is spread over many summaries, got {n_messages}"
    );
    for message in &delivered {
        assert!(
            message.visible_text().contains("告警"),
            "keyword in every message"
        );
    }
    assert_eq!(daemon.stop().code(), Some(0));
    eprintln!(
        "critical line delivered {boom_latency:?} after it was written, {n_messages} messages"
    );
}

#[test]
fn kill_9_in_the_middle_of_a_flood_loses_nothing() {
    let window = Duration::from_secs(3);
    let standin = standin(window, Duration::from_secs(30));
    let dir = Dir::new("kill9");
    let config = config(&dir, &standin, "200ms");
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    let writer = flood(&dir.join("logs/app.log"), 6_000, Duration::from_secs(12));
    thread::sleep(Duration::from_secs(5));
    daemon.kill9();
    let in_flight = in_flight_at_kill(&standin);
    let before = delivered_total(&standin);
    assert!(before > 0, "something was delivered before the kill");
    // Restarted at once: the rate limit still counts what was sent before the kill.
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    writer.join().unwrap();
    wait_total(&standin, &daemon, 6_000, Duration::from_secs(60));
    thread::sleep(Duration::from_secs(3));
    assert_at_most_one_batch_twice(&standin, 6_000, in_flight);
    assert_never_throttled(&standin, window);
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn sigterm_during_a_flood_stops_in_bounded_time_and_the_rest_follows_after_restart() {
    let window = Duration::from_secs(3);
    let standin = standin(window, Duration::from_secs(30));
    let dir = Dir::new("sigterm");
    let config = config(&dir, &standin, "200ms");
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    let writer = flood(&dir.join("logs/app.log"), 4_000, Duration::from_secs(8));
    thread::sleep(Duration::from_secs(4));
    let asked = Instant::now();
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(15));
    let took = asked.elapsed();
    assert_eq!(status.code(), Some(0), "{}", daemon.describe());
    // The default shutdown timeout is 5 s; allow for the rest of the shutdown.
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    writer.join().unwrap();
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    wait_total(&standin, &daemon, 4_000, Duration::from_secs(60));
    thread::sleep(Duration::from_secs(2));
    assert_eq!(
        delivered_total(&standin),
        4_000,
        "nothing lost, nothing twice"
    );
    assert_never_throttled(&standin, window);
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn an_outage_of_500s_and_refused_connections_loses_nothing() {
    let window = Duration::from_secs(3);
    let standin = standin(window, Duration::from_secs(30));
    let dir = Dir::new("outage");
    let config = config(&dir, &standin, "200ms");
    standin.fail(Failure::Http500, For::Time(Duration::from_secs(4)));
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    let writer = flood(&dir.join("logs/app.log"), 2_000, Duration::from_secs(8));
    thread::sleep(Duration::from_secs(4));
    standin.refuse_for(Duration::from_secs(4));
    writer.join().unwrap();
    wait_total(&standin, &daemon, 2_000, Duration::from_secs(90));
    thread::sleep(Duration::from_secs(2));
    assert_eq!(delivered_total(&standin), 2_000, "everything arrives, once");
    let n_500 = standin
        .received()
        .iter()
        .filter(|r| r.answer == crate::support::standin::Answer::Http(500))
        .count();
    assert!(n_500 > 0, "the outage was seen by the daemon");
    let logs = daemon.stderr().join("\n");
    assert!(logs.contains("retrying with backoff"), "{logs}");
    assert!(
        !logs.contains(standin.token()) && !logs.contains(standin.secret().unwrap()),
        "no secret in the logs"
    );
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn a_throttle_answer_makes_the_robot_quiet_for_the_pause_then_it_delivers() {
    let window = Duration::from_secs(3);
    let pause = Duration::from_secs(4);
    let standin = standin(window, pause);
    let dir = Dir::new("throttle");
    let config = config(&dir, &standin, "100ms");
    standin.throttle_now();
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    let writer = flood(&dir.join("logs/app.log"), 50, Duration::from_secs(1));
    writer.join().unwrap();
    wait_total(&standin, &daemon, 50, Duration::from_secs(30));
    let received = standin.received();
    let first_throttle = received
        .iter()
        .find(|r| r.errcode() == Some(130_101))
        .expect("the first send was throttled");
    let next = received
        .iter()
        .find(|r| r.at > first_throttle.at)
        .expect("a later request");
    let quiet = next.at - first_throttle.at;
    assert!(
        quiet >= pause - Duration::from_millis(200),
        "the robot must stay quiet for the throttle pause ({pause:?}), was {quiet:?}"
    );
    assert_eq!(delivered_total(&standin), 50);
    assert!(daemon.stderr().join("\n").contains("throttled"));
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn the_real_60_second_window_is_never_exceeded() {
    let window = Duration::from_secs(60);
    let standin = standin(window, Duration::from_secs(600));
    let dir = Dir::new("window60");
    let config = config(&dir, &standin, "0s");
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    // One match every 50 ms for 70 s: far more than 20 lone alerts a minute would allow.
    let writer = flood(&dir.join("logs/app.log"), 1_400, Duration::from_secs(70));
    writer.join().unwrap();
    wait_total(&standin, &daemon, 1_400, Duration::from_secs(40));
    assert_eq!(delivered_total(&standin), 1_400);
    assert_never_throttled(&standin, window);
    let max = standin.max_delivered_in_any_window(window);
    assert!(
        max >= 15,
        "the budget is used, not wasted: {max} in the busiest minute"
    );
    assert_eq!(daemon.stop().code(), Some(0));
}

/// Appends `FLOOD 0..n` over about `over`, reopening the path when logrotate (create mode)
/// replaced it, like an application told to reopen its log.
fn flood_reopening(path: &Path, n: u64, over: Duration) -> thread::JoinHandle<()> {
    use std::os::unix::fs::MetadataExt;
    let path = path.to_path_buf();
    thread::spawn(move || {
        let open = |path: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap()
        };
        let mut file = open(&path);
        let mut ino = file.metadata().unwrap().ino();
        let pause = over / u32::try_from(n / 10).unwrap();
        for i in 0..n {
            if i % 10 == 0 {
                thread::sleep(pause);
                if let Ok(meta) = std::fs::metadata(&path) {
                    if meta.ino() != ino {
                        file = open(&path);
                        ino = file.metadata().unwrap().ino();
                    }
                }
            }
            file.write_all(format!("2026-11-25 app FLOOD {i} broke\n").as_bytes())
                .unwrap();
        }
    })
}

#[test]
fn kill_9_during_logrotate_rotations_loses_nothing() {
    let window = Duration::from_secs(3);
    let standin = standin(window, Duration::from_secs(30));
    let dir = Dir::new("kill9-rotate");
    let config = config(&dir, &standin, "200ms");
    // Rotated generations stay matched, so one rotated while the daemon is down is found again
    // by its fingerprint and only its unread part is read.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("logs/*.log", "logs/app.log*")).unwrap();
    let log = dir.join("logs/app.log");
    let rotate_conf = dir.create(
        "logrotate.conf",
        format!(
            "{} {{\n    rotate 50\n    missingok\n    nocompress\n    create\n}}\n",
            log.display()
        ),
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    let mut in_flight = 0;
    let writer = flood_reopening(&log, 3_000, Duration::from_secs(6));
    for i in 0..5 {
        thread::sleep(Duration::from_millis(1_000));
        let output = std::process::Command::new("logrotate")
            .arg("-f")
            .arg("-s")
            .arg(dir.join("logrotate.state"))
            .arg(&rotate_conf)
            .output()
            .expect("run logrotate (apt-get install -y logrotate)");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        if i == 1 {
            daemon.kill9();
            in_flight = in_flight_at_kill(&standin);
        }
        if i == 2 {
            // Restarted after a rotation that happened while it was down.
            daemon = Daemon::start(dir.path(), &config, &[]);
        }
    }
    writer.join().unwrap();
    wait_total(&standin, &daemon, 3_000, Duration::from_secs(60));
    thread::sleep(Duration::from_secs(3));
    assert_at_most_one_batch_twice(&standin, 3_000, in_flight);
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn refused_content_is_resent_as_counts_and_later_alerts_get_through() {
    let window = Duration::from_secs(3);
    let standin = standin(window, Duration::from_secs(30));
    let dir = Dir::new("content-refused");
    let config = config(&dir, &standin, "300ms");
    // DingTalk's content filter refuses the first message (430101).
    standin.fail(Failure::Errcode(430_101), For::Requests(1));
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    let log = dir.join("logs/app.log");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    file.write_all(b"app FLOOD 1 forbidden words\napp FLOOD 2 forbidden words\n")
        .unwrap();
    wait_total(&standin, &daemon, 2, Duration::from_secs(20));
    let first = standin.delivered().remove(0);
    assert!(
        !first.visible_text().contains("forbidden words"),
        "the retry carries counts, not the refused lines: {}",
        first.visible_text()
    );
    file.write_all(b"app BOOM later\n").unwrap();
    wait_total(&standin, &daemon, 3, Duration::from_secs(20));
    assert!(
        standin
            .delivered()
            .iter()
            .any(|r| r.visible_text().contains("BOOM later")),
        "later alerts are not blocked by the refused one"
    );
    assert_eq!(delivered_total(&standin), 3);
    assert!(daemon.stderr().join("\n").contains(
        "content filter blocked the message; sending the counts again without sample lines"
    ));
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn events_of_a_robot_missing_from_the_config_wait_for_it_to_come_back() {
    let window = Duration::from_secs(3);
    let standin = standin(window, Duration::from_secs(30));
    let dir = Dir::new("robot-back");
    let config = config(&dir, &standin, "200ms");
    let full_config = std::fs::read_to_string(&config).unwrap();
    let full_rules = std::fs::read_to_string(dir.join("rules.yaml")).unwrap();
    // The robot is unreachable: 25 events stay pending.
    standin.fail(Failure::Http500, For::Time(Duration::from_secs(3600)));
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    let writer = flood(&dir.join("logs/app.log"), 25, Duration::from_millis(500));
    writer.join().unwrap();
    daemon.wait_for_log("retrying with backoff", Duration::from_secs(15));
    assert_eq!(daemon.stop().code(), Some(0));

    // Restarted with a config that no longer has the robot (nor rules for it).
    let without = full_config.replace(
        &standin.robot_yaml("ops"),
        "  console:\n    webhook: stdout\n",
    );
    std::fs::write(&config, &without).unwrap();
    std::fs::write(dir.join("rules.yaml"), "[]\n").unwrap();
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    daemon.wait_for_log("no longer configured", Duration::from_secs(15));

    // The robot comes back by a reload, and DingTalk recovers: everything arrives, once.
    standin.clear_failures();
    std::fs::write(dir.join("rules.yaml"), &full_rules).unwrap();
    std::fs::write(&config, &full_config).unwrap();
    daemon.signal("HUP");
    wait_total(&standin, &daemon, 25, Duration::from_secs(30));
    thread::sleep(Duration::from_secs(1));
    assert_eq!(delivered_total(&standin), 25);
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn content_refused_twice_is_given_up_and_nothing_else_is() {
    let window = Duration::from_secs(3);
    let standin = standin(window, Duration::from_secs(30));
    let dir = Dir::new("content-given-up");
    let config = config(&dir, &standin, "300ms");
    // Refused with samples, and again as counts only.
    standin.fail(Failure::Errcode(430_101), For::Requests(2));
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("logs/app.log"))
        .unwrap();
    file.write_all(b"app FLOOD 1 forbidden\napp FLOOD 2 forbidden\n")
        .unwrap();
    daemon.wait_for_log("given up", Duration::from_secs(20));
    file.write_all(b"app BOOM afterwards\n").unwrap();
    wait_total(&standin, &daemon, 1, Duration::from_secs(20));
    assert_eq!(daemon.stop().code(), Some(0));
    // The given-up batch is not on disk any more: a restart sends nothing of it.
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    thread::sleep(Duration::from_secs(2));
    assert_eq!(
        delivered_total(&standin),
        1,
        "only the later alert was delivered"
    );
    let refused = standin
        .received()
        .iter()
        .filter(|r| r.errcode() == Some(430_101))
        .count();
    assert_eq!(refused, 2, "one try with samples, one with counts only");
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn sigterm_while_throttled_stops_at_once_and_keeps_the_events() {
    let window = Duration::from_secs(3);
    let standin = standin(window, Duration::from_secs(30));
    let dir = Dir::new("term-throttled");
    let config = config(&dir, &standin, "100ms");
    standin.throttle_now();
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    let writer = flood(&dir.join("logs/app.log"), 5, Duration::from_millis(200));
    writer.join().unwrap();
    let ok = standin.wait_for(
        |received| received.iter().any(|r| r.errcode() == Some(130_101)),
        Duration::from_secs(10),
    );
    assert!(ok, "the first send was throttled{}", daemon.describe());
    let asked = Instant::now();
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(15));
    let took = asked.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(
        took < Duration::from_secs(3),
        "nothing can be sent before the pause ends, so stopping must not wait for the timeout: {took:?}"
    );
    let logs = daemon.stderr().join("\n");
    assert!(logs.contains("5 undelivered events kept"), "{logs}");
}

#[test]
fn sending_restored_events_at_start_keeps_the_file_positions() {
    let window = Duration::from_secs(3);
    let standin = standin(window, Duration::from_secs(30));
    let dir = Dir::new("restored-positions");
    let config = config(&dir, &standin, "100ms");
    standin.fail(Failure::Http500, For::Time(Duration::from_secs(3600)));
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    let writer = flood(&dir.join("logs/app.log"), 30, Duration::from_millis(300));
    writer.join().unwrap();
    daemon.wait_for_log("retrying with backoff", Duration::from_secs(15));
    assert_eq!(daemon.stop().code(), Some(0));
    // Restarted with DingTalk back: the stored events go out at once, before any new line.
    standin.clear_failures();
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    wait_total(&standin, &daemon, 30, Duration::from_secs(20));
    thread::sleep(Duration::from_millis(500));
    daemon.kill9();
    // The file positions survived that first commit: nothing is read again.
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    daemon.wait_for_log("dingtail running", Duration::from_secs(15));
    thread::sleep(Duration::from_secs(2));
    assert_eq!(delivered_total(&standin), 30, "{}", daemon.describe());
    assert_eq!(daemon.stop().code(), Some(0));
}
