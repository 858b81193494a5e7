//! Alert kinds end to end (issue 13): `dingtail run` against the DingTalk stand-in with short
//! windows — a threshold per key, repeats folded, a resolved notice after quiet, absence and
//! recovery, no false absence after a restart with a backlog, a critical line before a doubtful
//! batch of warnings, a silence set from the shell while running with its count reported at the
//! end, and a kill -9 mid-incident that neither loses the resolved notice nor fires twice.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::daemon::Daemon;
use crate::support::harness::{Dir, stdout_ok};
use crate::support::standin::{Failure, For, Received, Standin, StandinConfig};

/// A config in English that tails `logs/*.log` from the beginning and sends to the stand-in's
/// robot `ops`, with `rules` as its rule file.
fn setup(dir: &Dir, standin: &Standin, rules: &str, robot_extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    std::fs::write(dir.join("logs/app.log"), "").unwrap();
    dir.create("rules.yaml", rules);
    dir.create(
        "dingtail.yaml",
        format!(
            "language: en
timezone: UTC
host: web-1
state_dir: state
inputs:
  app:
    paths: [\"logs/*.log\"]
    start_at: beginning
    poll_interval: 100ms
robots:
{}    linger: 200ms
{robot_extra}rules: [\"rules.yaml\"]
",
            standin.robot_yaml("ops")
        ),
    )
}

fn append(path: &Path, lines: &[&str]) {
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    let mut text = String::new();
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    file.write_all(text.as_bytes()).unwrap();
}

/// Titles and texts of the delivered messages, for failure messages.
fn shown(standin: &Standin) -> String {
    standin
        .delivered()
        .iter()
        .map(|r| format!("{} | {}", r.title(), r.visible_text().replace('\n', " / ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until a delivered message satisfies `found`.
fn wait_message(
    standin: &Standin,
    daemon: &Daemon,
    what: &str,
    timeout: Duration,
    found: impl Fn(&Received) -> bool,
) -> Received {
    let ok = standin.wait_for(
        |received| received.iter().any(|r| r.is_delivered() && found(r)),
        timeout,
    );
    assert!(
        ok,
        "no message {what} within {timeout:?}; delivered:\n{}{}",
        shown(standin),
        daemon.describe()
    );
    standin.delivered().into_iter().find(|r| found(r)).unwrap()
}

fn titled(title: &str) -> impl Fn(&Received) -> bool + '_ {
    move |r: &Received| r.title().contains(title)
}

#[test]
fn a_threshold_holds_per_key_and_the_alert_carries_its_count() {
    let standin = Standin::start_with(StandinConfig::signed());
    let dir = Dir::new("kinds-threshold");
    let config = setup(
        &dir,
        &standin,
        "- name: ssh
  input: app
  match: 'Failed password from (?P<ip>\\S+)'
  robot: ops
  title: 'ssh brute force from {{ ip }}'
  group_by: ip
  when: {count: 3, within: 20s}
",
        "",
    );
    let daemon = Daemon::start(dir.path(), &config, &[]);
    let log = dir.join("logs/app.log");
    append(
        &log,
        &[
            "Failed password from 10.0.0.1",
            "Failed password from 10.0.0.2",
            "Failed password from 10.0.0.1",
            "Failed password from 10.0.0.2",
            "Failed password from 10.0.0.2",
        ],
    );
    let alert = wait_message(
        &standin,
        &daemon,
        "for 10.0.0.2",
        Duration::from_secs(10),
        titled("10.0.0.2"),
    );
    let text = alert.visible_text();
    assert!(
        text.contains("3 matches within 20 s"),
        "the alert carries the window's count: {text}"
    );
    // Give a wrong alert for the key below the threshold the time to come.
    thread::sleep(Duration::from_secs(2));
    let delivered = standin.delivered();
    assert_eq!(delivered.len(), 1, "one alert only:\n{}", shown(&standin));
    assert!(
        !shown(&standin).contains("10.0.0.1"),
        "a key below the threshold sends nothing"
    );
}

#[test]
fn repeats_are_folded_into_one_message_with_their_count() {
    let standin = Standin::start_with(StandinConfig::signed());
    let dir = Dir::new("kinds-realert");
    let config = setup(
        &dir,
        &standin,
        "- name: disk
  input: app
  match: 'disk (?P<dev>\\S+) full'
  robot: ops
  title: 'disk {{ dev }} full'
  group_by: dev
  realert: 3s
",
        "",
    );
    let daemon = Daemon::start(dir.path(), &config, &[]);
    let log = dir.join("logs/app.log");
    append(&log, &["disk sda1 full"]);
    wait_message(
        &standin,
        &daemon,
        "for the first line",
        Duration::from_secs(10),
        titled("disk sda1 full"),
    );
    let lines: Vec<&str> = std::iter::repeat_n("disk sda1 full", 37).collect();
    append(&log, &lines);
    let repeat = wait_message(
        &standin,
        &daemon,
        "folding the repeats",
        Duration::from_secs(10),
        titled("still firing"),
    );
    assert_eq!(
        repeat.title(),
        "[warning] disk still firing (dev=sda1) on web-1"
    );
    assert!(
        repeat.visible_text().contains("+37 since"),
        "{}",
        repeat.visible_text()
    );
    assert!(repeat.visible_text().contains("(38 in total)"));
    thread::sleep(Duration::from_secs(1));
    assert_eq!(
        standin.delivered().len(),
        2,
        "37 lines, one repeat:\n{}",
        shown(&standin)
    );
}

#[test]
fn an_incident_is_resolved_once_after_quiet() {
    let standin = Standin::start_with(StandinConfig::signed());
    let dir = Dir::new("kinds-resolve");
    let config = setup(
        &dir,
        &standin,
        "- name: upstream
  input: app
  match: 'upstream (?P<peer>\\S+) timed out'
  robot: ops
  realert: 1h
  resolve: {after: 2s}
",
        "",
    );
    let daemon = Daemon::start(dir.path(), &config, &[]);
    let log = dir.join("logs/app.log");
    append(&log, &["upstream db-1 timed out"]);
    append(
        &log,
        &["upstream db-1 timed out", "upstream db-1 timed out"],
    );
    let resolved = wait_message(
        &standin,
        &daemon,
        "resolving the incident",
        Duration::from_secs(15),
        titled("[resolved]"),
    );
    assert_eq!(resolved.title(), "[resolved] upstream on web-1");
    let text = resolved.visible_text();
    assert!(text.contains("lasted"), "{text}");
    assert!(text.contains("3 matches"), "{text}");
    assert!(text.contains("2 of them not reported before"), "{text}");
    thread::sleep(Duration::from_secs(3));
    let n_resolved = standin
        .delivered()
        .iter()
        .filter(|r| r.title().contains("[resolved]"))
        .count();
    assert_eq!(n_resolved, 1, "{}", shown(&standin));
}

const HEARTBEAT: &str = "- name: beat
  input: app
  match: 'heartbeat'
  robot: ops
  severity: critical
  absent: {for: 3s}
";

#[test]
fn a_missing_heartbeat_is_reported_absent_then_recovered() {
    let standin = Standin::start_with(StandinConfig::signed());
    let dir = Dir::new("kinds-absent");
    let config = setup(&dir, &standin, HEARTBEAT, "");
    let daemon = Daemon::start(dir.path(), &config, &[]);
    let log = dir.join("logs/app.log");
    for _ in 0..4 {
        append(&log, &["heartbeat ok"]);
        thread::sleep(Duration::from_millis(500));
    }
    assert!(standin.delivered().is_empty(), "heartbeats are not alerts");
    let absent = wait_message(
        &standin,
        &daemon,
        "saying the heartbeat is absent",
        Duration::from_secs(10),
        titled("absent"),
    );
    assert_eq!(absent.title(), "[critical] beat absent on web-1");
    assert!(
        absent.visible_text().contains("no matching line for 3 s"),
        "{}",
        absent.visible_text()
    );
    append(&log, &["heartbeat ok"]);
    let back = wait_message(
        &standin,
        &daemon,
        "saying the heartbeat is back",
        Duration::from_secs(10),
        titled("[recovered]"),
    );
    assert_eq!(back.title(), "[recovered] beat on web-1");
}

#[test]
fn a_restart_with_a_backlog_of_heartbeats_is_no_absence() {
    let standin = Standin::start_with(StandinConfig::signed());
    let dir = Dir::new("kinds-backlog");
    let config = setup(&dir, &standin, HEARTBEAT, "");
    let log = dir.join("logs/app.log");
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    append(&log, &["heartbeat ok"]);
    thread::sleep(Duration::from_secs(1));
    assert!(daemon.stop().success());
    // Down for longer than `absent.for`, while the heartbeat goes on in the log.
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(5) {
        append(&log, &["heartbeat ok"]);
        thread::sleep(Duration::from_millis(250));
    }
    let daemon = Daemon::start(dir.path(), &config, &[]);
    daemon.wait_for_log("dingtail running", Duration::from_secs(10));
    thread::sleep(Duration::from_secs(2));
    assert!(
        standin.delivered().is_empty(),
        "no absence for a heartbeat in the backlog:\n{}{}",
        shown(&standin),
        daemon.describe()
    );
    // The heartbeat stops now: that absence is reported.
    wait_message(
        &standin,
        &daemon,
        "saying the heartbeat is absent",
        Duration::from_secs(10),
        titled("absent"),
    );
}

#[test]
fn a_critical_line_goes_before_a_doubtful_batch_of_warnings() {
    let standin = Standin::start_with(StandinConfig::signed());
    let dir = Dir::new("kinds-critical");
    let config = setup(
        &dir,
        &standin,
        "- name: noise
  input: app
  match: 'WARN'
  robot: ops
- name: boom
  input: app
  match: 'BOOM'
  severity: critical
  robot: ops
",
        "    timeout: 1s\n",
    );
    let daemon = Daemon::start(dir.path(), &config, &[]);
    let log = dir.join("logs/app.log");
    // The first batch of warnings gets no answer in time: it becomes doubtful.
    standin.fail(Failure::Slow(Duration::from_secs(2)), For::Requests(1));
    append(&log, &["WARN first", "WARN second"]);
    daemon.wait_for_log("no answer", Duration::from_secs(10));
    let written = Instant::now();
    let flood: Vec<String> = (0..200).map(|i| format!("WARN flood {i}")).collect();
    let mut lines: Vec<&str> = flood.iter().map(String::as_str).collect();
    lines.insert(100, "BOOM disk on fire");
    append(&log, &lines);
    let ok = standin.wait_for(
        |received| {
            received
                .iter()
                .any(|r| r.is_delivered() && r.visible_text().contains("BOOM disk on fire"))
        },
        Duration::from_secs(15),
    );
    assert!(
        ok,
        "the critical line was not delivered{}",
        daemon.describe()
    );
    let after: Vec<Received> = standin
        .received()
        .into_iter()
        .filter(|r| r.at > written && r.body.is_some())
        .collect();
    assert!(
        after[0].visible_text().contains("BOOM disk on fire"),
        "the first message after the critical line holds it, before the doubtful batch: {:#?}",
        after.iter().map(Received::title).collect::<Vec<_>>()
    );
    assert!(!after[0].is_possible_repeat());
    assert!(
        after[0].title().starts_with("[critical]"),
        "{}",
        after[0].title()
    );
}

#[test]
fn a_silence_from_the_shell_mutes_while_running_and_reports_its_count() {
    let standin = Standin::start_with(StandinConfig::signed());
    let dir = Dir::new("kinds-mute");
    let config = setup(
        &dir,
        &standin,
        "- name: nginx
  input: app
  match: 'status=(?P<status>\\d+) host=(?P<upstream>\\S+)'
  robot: ops
  title: 'nginx {{ status }} from {{ upstream }}'
",
        "",
    );
    let daemon = Daemon::start(dir.path(), &config, &[]);
    daemon.wait_for_log("dingtail running", Duration::from_secs(10));
    let out = stdout_ok(dir.command().args([
        "mute",
        "-c",
        config.to_str().unwrap(),
        "nginx",
        "--where",
        "upstream=web-3",
        "--for",
        "4s",
        "--reason",
        "deploy",
    ]));
    assert!(
        out.contains("muted rule `nginx` where upstream=web-3"),
        "{out}"
    );
    let listed = stdout_ok(
        dir.command()
            .args(["mutes", "-c", config.to_str().unwrap()]),
    );
    assert!(
        listed.contains("nginx") && listed.contains("deploy"),
        "{listed}"
    );
    // Picked up within a second.
    thread::sleep(Duration::from_millis(1500));
    let log = dir.join("logs/app.log");
    let muted: Vec<String> = (0..123)
        .map(|i| format!("status=502 host=web-3 request {i}"))
        .collect();
    let mut lines: Vec<&str> = muted.iter().map(String::as_str).collect();
    lines.push("status=502 host=web-4 request x");
    append(&log, &lines);
    let ended = wait_message(
        &standin,
        &daemon,
        "reporting what the silence muted",
        Duration::from_secs(15),
        titled("[silence ended]"),
    );
    let text = ended.visible_text();
    assert!(text.contains("123 matches while muted"), "{text}");
    assert!(text.contains("expired; set by"), "{text}");
    assert!(text.contains("deploy"), "{text}");
    let all = shown(&standin);
    assert!(
        all.contains("nginx 502 from web-4"),
        "the other host alerts: {all}"
    );
    assert!(
        !all.contains("from web-3"),
        "nothing of web-3 alerts: {all}"
    );
    // Ended and reported: cleaned up.
    let listed = stdout_ok(
        dir.command()
            .args(["mutes", "-c", config.to_str().unwrap()]),
    );
    assert_eq!(listed.trim(), "no silences");
}

#[test]
fn a_kill_9_mid_incident_neither_loses_the_resolution_nor_fires_twice() {
    let standin = Standin::start_with(StandinConfig::signed());
    let dir = Dir::new("kinds-kill9");
    let config = setup(
        &dir,
        &standin,
        "- name: api
  input: app
  match: 'ERR (?P<code>\\d+)'
  robot: ops
  title: 'api error {{ code }}'
  group_by: code
  realert: 1h
  resolve: {after: 3s}
",
        "",
    );
    let log = dir.join("logs/app.log");
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    append(&log, &["ERR 500 first"]);
    wait_message(
        &standin,
        &daemon,
        "for the first error",
        Duration::from_secs(10),
        titled("api error 500"),
    );
    append(
        &log,
        &[
            "ERR 500 two",
            "ERR 500 three",
            "ERR 500 four",
            "ERR 500 five",
        ],
    );
    // Read and committed with the incident's state, then killed mid-incident.
    thread::sleep(Duration::from_millis(800));
    daemon.kill9();
    let daemon = Daemon::start(dir.path(), &config, &[]);
    let resolved = wait_message(
        &standin,
        &daemon,
        "resolving the incident after the restart",
        Duration::from_secs(15),
        titled("[resolved]"),
    );
    let text = resolved.visible_text();
    assert!(text.contains("5 matches"), "{text}");
    assert!(text.contains("4 of them not reported before"), "{text}");
    thread::sleep(Duration::from_secs(4));
    let delivered = standin.delivered();
    let fired = delivered
        .iter()
        .filter(|r| r.title().contains("api error 500"))
        .count();
    let resolutions = delivered
        .iter()
        .filter(|r| r.title().contains("[resolved]"))
        .count();
    assert_eq!((fired, resolutions), (1, 1), "{}", shown(&standin));
}
